"""The SQLite store of events and runs (the source of truth)."""

from pocketci_tui.store.changes import change_key
from pocketci_tui.store.db import Replayed, Store, StoreError
from pocketci_tui.store.polled import PolledChange, PollLedger

__all__ = ["PollLedger", "PolledChange", "Replayed", "Store", "StoreError", "change_key"]
