"""Dispatch: the engine that turns stored deliveries into runs, and the contract it offers.

The :class:`Engine` owns its parts: a :class:`DispatchQueue` of typed requests, the event
pipeline (checkout, catalog, match), the run executor, and the :class:`LiveState` (live runs,
their tails, the problems found). It publishes what happens as frozen notices for its
subscribers.
"""

from pocketci_tui.engine.dispatch.approval import ForkApproval, HeadSecrets, fork_approval
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.engine.dispatch.dispatcher import Engine
from pocketci_tui.engine.dispatch.live import LiveRun, LiveState
from pocketci_tui.engine.dispatch.notices import EngineError
from pocketci_tui.engine.dispatch.pipeline import SECRET_RETRY_SECONDS
from pocketci_tui.engine.dispatch.queue import DispatchQueue, DispatchRequest

__all__ = [
    "SECRET_RETRY_SECONDS",
    "DispatchQueue",
    "DispatchRequest",
    "Engine",
    "EngineClient",
    "EngineError",
    "ForkApproval",
    "HeadSecrets",
    "LiveRun",
    "LiveState",
    "fork_approval",
]
