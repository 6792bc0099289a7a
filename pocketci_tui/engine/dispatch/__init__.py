"""Dispatch: the engine that turns stored deliveries into runs, and the contract it offers.

It owns the queue, the event pipeline (checkout, catalog, match) and the run executor, and
publishes what happens as frozen activity records for its subscribers.
"""

from pocketci_tui.engine.dispatch.approval import ForkApproval, HeadSecrets, fork_approval
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.engine.dispatch.dispatcher import Engine

__all__ = ["Engine", "EngineClient", "ForkApproval", "HeadSecrets", "fork_approval"]
