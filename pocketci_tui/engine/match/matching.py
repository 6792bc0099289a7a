"""Which functions of a Dagger module run for an event, and why the others do not (SPEC 4.6).

This module is pure: it takes the module's catalog, the event, the changed files and the
names of the configured secrets, and returns a :class:`~pocketci_tui.model.MatchResult`.

The rules, with the choices this implementation makes where the seed left a gap:

* **Tiers.** Four trigger names are built from the event (see
  :func:`~pocketci_tui.engine.match.naming.tier_names`): ``on<Vendor><Event><Filter>``,
  ``on<Vendor><Event>``, ``on<Vendor>`` and ``dispatch``. A function belongs to the first tier
  whose name it equals or ends with after a prefix (``testOnGithubPullRequest``); see
  :func:`~pocketci_tui.engine.match.naming.belongs_to`. Functions that belong to no tier (helpers
  such as ``build`` or ``publish``) are not triggers and are not reported at all.
* **Winning tier.** Tiers are tried from 1 to 4; the first tier with at least one accepted
  function wins and all of its accepted functions run. Functions of the later tiers are
  reported as skipped because the earlier tier matched first; functions of earlier tiers keep
  the reason they were not accepted.
* **Arguments a tier passes.** Tier 2 passes ``filter``; tier 3 ``filter`` and ``event``;
  tier 4 ``filter``, ``event`` and ``vendor``; tier 1 none. A function that lacks an argument
  its tier passes is not run. A function may also declare one of the three its tier does not
  pass: its default is still checked, and it is passed only when it is required (no default,
  not optional), since pocketci knows the value; otherwise Dagger uses the default.
* **Defaults of** ``filter``/``event``/``vendor``. Whatever the tier, a declared default is a
  list of accepted values: a JSON string is split on commas, a JSON list gives one entry per
  element; entries are GitHub branch/tag patterns (see
  :class:`~pocketci_tui.engine.match.patterns.RefFilter`). An empty default (``""``, ``[]``) or
  none accepts anything. The value checked is the event's filter, its event type (``push``,
  ``pull_request``, ``tag``...) and its vendor (``github``).
* ``onChanges``. Its default is a list of path patterns with GitHub ``paths`` semantics. The
  function runs only if a changed file is selected, and then receives **all** the changed files
  comma-joined (the seed's behaviour: "the list of files that changed"), not only the selected
  ones; the event trigger file carries the same list. An empty default or none puts no
  condition on the changes. When the changes could not be computed (``changes`` is None) every
  file counts as changed: the condition holds and the value passed is the empty string, which
  tells the function that the list is unknown (an empty list never reaches a function through
  a condition, since nothing then matches).
* **Required arguments.** ``src`` (a ``Directory``) and ``eventTrigger`` (a ``File``) must be
  declared. Any other argument without a default that is not optional must be one pocketci
  supplies: ``filter``, ``event``, ``vendor``, ``onChanges``, or a secret named in
  ``pocketci.yaml``. Otherwise the function is not run and the reason names the argument.
* **Secrets.** A function receives exactly the configured secrets it declares an argument for
  (by name; the argument names ``src``, ``eventTrigger``, ``filter``, ``event``, ``vendor`` and
  ``onChanges`` are never secrets).
* **Names.** A function whose name, or one of whose argument names, is not a GraphQL
  identifier (``[_A-Za-z][_0-9A-Za-z]*``, at most :data:`MAX_NAME_LENGTH` characters) is never
  called: its kebab-case form could read as a flag of ``dagger call`` (``-OnGithubPush`` would
  become ``--on-github-push``). It is reported as skipped with that reason.
* **Runs per event.** At most :data:`MAX_RUNS_PER_EVENT` functions run for one event; the
  accepted functions past that number (in catalog order) are reported as skipped with a reason
  that starts with :data:`RUN_CAP_REASON`. Default lists of ``filter``/``event``/``vendor`` and
  ``onChanges`` hold at most :data:`MAX_DEFAULT_ENTRIES` entries.
* **Order of reasons.** A function that cannot be called (a bad name, a missing or mistyped
  ``src`` or ``eventTrigger``, a missing tier argument, a required argument nobody supplies,
  an invalid pattern) is reported as such first, because it would fail on every event; then
  the vendor, event and filter defaults are checked, then ``onChanges``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from pocketci_tui.engine.match.naming import belongs_to, tier_names
from pocketci_tui.engine.match.patterns import PathBatch, PathFilter, PatternError, RefFilter
from pocketci_tui.model import (
    ArgSpec,
    Decision,
    Event,
    FunctionCall,
    FunctionSpec,
    MatchResult,
    ModuleCatalog,
    bounded,
)

__all__ = [
    "MAX_DEFAULT_ENTRIES",
    "MAX_NAME_LENGTH",
    "MAX_RUNS_PER_EVENT",
    "RESERVED_ARGS",
    "RUN_CAP_REASON",
    "TIER_ARGS",
    "function_tier",
    "is_identifier",
    "match",
    "paths_allow",
]

SRC = "src"
EVENT_TRIGGER = "eventTrigger"
FILTER = "filter"
EVENT = "event"
VENDOR = "vendor"
ON_CHANGES = "onChanges"

TIER_ARGS: dict[int, tuple[str, ...]] = {
    1: (),
    2: (FILTER,),
    3: (FILTER, EVENT),
    4: (FILTER, EVENT, VENDOR),
}
"""The plain arguments each tier passes."""

RESERVED_ARGS = frozenset({SRC, EVENT_TRIGGER, FILTER, EVENT, VENDOR, ON_CHANGES})
"""Argument names pocketci fills itself; never treated as secrets."""

_REQUIRED_TYPES = {SRC: "Directory", EVENT_TRIGGER: "File"}

MAX_RUNS_PER_EVENT = 32
"""The most functions run for one event; further accepted ones are skipped with a reason."""

RUN_CAP_REASON = "not run: more functions matched than the"
"""How the reason of an accepted function skipped by :data:`MAX_RUNS_PER_EVENT` starts."""

MAX_NAME_LENGTH = 256
"""The longest function or argument name pocketci-tui calls."""

MAX_DEFAULT_ENTRIES = 1000
"""The most entries a ``filter``/``event``/``vendor`` or ``onChanges`` default may list."""

_IDENTIFIER_RE = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def is_identifier(name: str) -> bool:
    """Tell whether ``name`` can be a GraphQL name (and so never reads as a flag).

    Args:
        name: A function or argument name from the module's catalog.

    Returns:
        True for ``[_A-Za-z][_0-9A-Za-z]*`` of at most :data:`MAX_NAME_LENGTH` characters.
    """
    return len(name) <= MAX_NAME_LENGTH and _IDENTIFIER_RE.fullmatch(name) is not None


def function_tier(name: str, names: Sequence[str | None]) -> int | None:
    """Return the tier (1-4) a function belongs to, or None when it is not a trigger.

    Args:
        name: The lowerCamelCase function name.
        names: The four tier names from :func:`~pocketci_tui.engine.match.naming.tier_names`.

    Returns:
        The first tier whose name the function equals or ends with after a prefix.
    """
    for tier, tier_name in enumerate(names, start=1):
        if tier_name is not None and belongs_to(name, tier_name):
            return tier
    return None


def paths_allow(patterns: Sequence[str], changes: Sequence[str] | None) -> bool:
    """Apply the repository-level ``paths`` of ``pocketci.yaml`` (SPEC 4.6.8).

    Args:
        patterns: The ``paths`` patterns; an empty list (or only blank entries) puts no
            condition.
        changes: The changed files, or None when they could not be computed (then every
            file counts as changed).

    Returns:
        True when the event may go on: no patterns, unknown changes, or a changed file is
        selected.

    Raises:
        PatternError: When a pattern cannot be compiled.
    """
    path_filter = PathFilter(patterns)
    if path_filter.empty or changes is None:
        return True
    return path_filter.any_match(changes)


class _Changes:
    """The changed files of one event, prepared once for every function that looks at them."""

    __slots__ = ("_batch", "_joined", "paths")

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        self._batch: PathBatch | None = None
        self._joined: str | None = None

    @property
    def batch(self) -> PathBatch:
        if self._batch is None:
            self._batch = PathBatch(self.paths)
        return self._batch

    @property
    def joined(self) -> str:
        if self._joined is None:
            self._joined = ",".join(self.paths)
        return self._joined


@dataclass(frozen=True, slots=True)
class _Outcome:
    accepted: bool
    reason: str
    call: FunctionCall | None = None


def _describe(default: Any) -> str:
    if isinstance(default, str):
        return bounded(repr(default), 200)
    return bounded(json.dumps(default), 200)


def _too_many(entries: Sequence[Any], what: str) -> None:
    if len(entries) > MAX_DEFAULT_ENTRIES:
        raise PatternError(f"{len(entries)} {what}, more than {MAX_DEFAULT_ENTRIES}")


def _entries(default: Any) -> RefFilter:
    """Turn a decoded ``filter``/``event``/``vendor`` default into a :class:`RefFilter`."""
    if default is None:
        return RefFilter("")
    if isinstance(default, list):
        _too_many(default, "entries")
        return RefFilter.from_entries(_scalar(x) for x in default if x is not None)
    text = _scalar(default)
    _too_many(text.split(",", MAX_DEFAULT_ENTRIES + 1), "entries")
    return RefFilter(text)


def _path_patterns(default: Any) -> PathFilter:
    """Turn a decoded ``onChanges`` default into a :class:`PathFilter`."""
    if default is None:
        return PathFilter([])
    if isinstance(default, list):
        _too_many(default, "patterns")
        return PathFilter(_scalar(x) for x in default if x is not None)
    text = _scalar(default)
    _too_many(text.split(",", MAX_DEFAULT_ENTRIES + 1), "patterns")
    return PathFilter.from_csv(text)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _decoded_default(arg: ArgSpec) -> Any:
    """Return the decoded default of an argument, or None when it has none."""
    if not arg.has_default:
        return None
    try:
        return arg.default
    except ValueError:
        # Not JSON: take the text as it is (a lenient reading of a malformed answer).
        return arg.default_json


def _evaluate(  # noqa: C901 - one numbered check after another, read in order
    fn: FunctionSpec,
    tier: int,
    tier_name: str,
    event: Event,
    changes: _Changes | None,
    secret_names: Collection[str],
) -> _Outcome:
    args = {a.name: a for a in fn.args}
    tier_label = f"tier {tier} ({tier_name})"

    # 0. Could its name, or an argument's, be read as anything but a name?
    if not is_identifier(fn.name):
        return _Outcome(False, "not called: its name is not a GraphQL identifier")
    for declared in fn.args:
        if not is_identifier(declared.name):
            return _Outcome(
                False,
                f"not called: the name of its argument {bounded(repr(declared.name), 80)} is not "
                "a GraphQL identifier",
            )

    # 1. Can it be called at all?
    for name, type_name in _REQUIRED_TYPES.items():
        arg = args.get(name)
        if arg is None:
            return _Outcome(False, f"missing the {name} argument ({type_name})")
        if arg.type_name.lower() != type_name.lower():
            return _Outcome(
                False, f"the {name} argument must be a {type_name}, not {arg.type_name}"
            )
    for name in TIER_ARGS[tier]:
        if name not in args:
            return _Outcome(False, f"missing the {name} argument that {tier_label} passes")
    for arg in fn.args:
        if arg.required and arg.name not in RESERVED_ARGS and arg.name not in secret_names:
            return _Outcome(
                False,
                f"required argument {arg.name} ({arg.type_name}) has no default and no "
                "configured secret of that name",
            )

    # 2. Do its defaults accept this event?
    values = {VENDOR: event.vendor, EVENT: event.event_type, FILTER: event.filter}
    for name in (VENDOR, EVENT, FILTER):
        arg = args.get(name)
        if arg is None:
            continue
        default = _decoded_default(arg)
        try:
            accepted = _entries(default).matches(values[name])
        except PatternError as exc:
            return _Outcome(False, f"invalid {name} default: {exc}")
        if not accepted:
            return _Outcome(
                False,
                f"{name} {values[name]!r} is not accepted by its default {_describe(default)}",
            )

    # 3. Does a changed file select it?
    changes_note = ""
    on_changes = args.get(ON_CHANGES)
    if on_changes is not None:
        default = _decoded_default(on_changes)
        try:
            path_filter = _path_patterns(default)
        except PatternError as exc:
            return _Outcome(False, f"invalid onChanges default: {exc}")
        if not path_filter.empty:
            if changes is None:
                changes_note = "; changed files unknown, onChanges counts as matched"
            elif not changes.paths:
                return _Outcome(False, f"no file changed, onChanges {_describe(default)} needs one")
            else:
                total = len(changes.paths)
                selected = path_filter.count(changes.batch)
                if not selected:
                    return _Outcome(
                        False,
                        f"none of the {total} changed files matches onChanges {_describe(default)}",
                    )
                changes_note = f"; {selected} of {total} changed files match onChanges"

    # Accepted: build the call.
    call_args: list[tuple[str, str]] = []
    for name in (FILTER, EVENT, VENDOR):
        arg = args.get(name)
        if arg is not None and (name in TIER_ARGS[tier] or arg.required):
            call_args.append((name, values[name]))
    if on_changes is not None:
        call_args.append((ON_CHANGES, "" if changes is None else changes.joined))
    secrets = tuple(
        a.name for a in fn.args if a.name in secret_names and a.name not in RESERVED_ARGS
    )
    call = FunctionCall(function=fn.name, args=tuple(call_args), secrets=secrets)
    return _Outcome(True, f"matches {tier_label}{changes_note}", call)


def match(
    catalog: ModuleCatalog,
    event: Event,
    changes: Sequence[str] | None,
    secret_names: Collection[str],
    *,
    only: Collection[str] | None = None,
) -> MatchResult:
    """Decide which functions of the module run for an event (SPEC 4.6).

    Args:
        catalog: The module's main object functions, with their arguments and defaults.
        event: The normalized event.
        changes: The changed files (repository paths), or None when the diff could not be
            computed (then every file counts as changed, see the module docstring).
        secret_names: The argument names ``pocketci.yaml`` has secrets for.
        only: For a re-run of some functions: only these count towards
            :data:`MAX_RUNS_PER_EVENT` (so any function can be re-run).

    Returns:
        The winning tier (or None) and one decision per trigger function, in catalog order.
    """
    names = tier_names(event.vendor, event.event_type, event.filter)
    by_tier: dict[int, list[int]] = {}
    tier_of: dict[int, int] = {}
    for index, fn in enumerate(catalog.functions):
        tier = function_tier(fn.name, names)
        if tier is not None:
            by_tier.setdefault(tier, []).append(index)
            tier_of[index] = tier

    outcomes: dict[int, _Outcome] = {}
    winner: int | None = None
    secrets = frozenset(secret_names)
    prepared = None if changes is None else _Changes(changes)
    for tier in sorted(by_tier):
        tier_name = names[tier - 1]
        assert tier_name is not None
        for index in by_tier[tier]:
            fn = catalog.functions[index]
            outcomes[index] = _evaluate(fn, tier, tier_name, event, prepared, secrets)
        if any(outcomes[index].accepted for index in by_tier[tier]):
            winner = tier
            break

    decisions: list[Decision] = []
    accepted = 0
    for index, fn in enumerate(catalog.functions):
        tier = tier_of.get(index)
        if tier is None:
            continue
        outcome = outcomes.get(index)
        if outcome is None:
            assert winner is not None
            decisions.append(
                Decision(
                    function=fn.name,
                    tier=tier,
                    matched=False,
                    reason=f"tier {winner} ({names[winner - 1]}) matched first",
                )
            )
            continue
        if outcome.accepted and (only is None or fn.name in only):
            accepted += 1
            if accepted > MAX_RUNS_PER_EVENT:
                outcome = _Outcome(
                    False,
                    f"{RUN_CAP_REASON} {MAX_RUNS_PER_EVENT} pocketci-tui runs per event "
                    "(the first ones in the module's order ran)",
                )
        decisions.append(
            Decision(
                function=fn.name,
                tier=tier,
                matched=outcome.accepted,
                reason=outcome.reason,
                call=outcome.call,
            )
        )
    return MatchResult(tier=winner, decisions=tuple(decisions))
