"""The matcher: pure functions from an event and a module's functions to the calls to make.

No I/O: function-name parsing (``naming``), path patterns (``glob_regex`` for one pattern,
``patterns`` for a filter) and the matching rules (``matching``) are plain code over plain
data, which is what lets them be fuzzed.
"""

from pocketci_tui.engine.match.matching import (
    MAX_RUNS_PER_EVENT,
    RUN_CAP_REASON,
    match,
    paths_allow,
)
from pocketci_tui.engine.match.naming import kebab

__all__ = ["MAX_RUNS_PER_EVENT", "RUN_CAP_REASON", "kebab", "match", "paths_allow"]
