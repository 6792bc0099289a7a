"""The SQLite store of events and runs (the source of truth)."""

from pocketci_tui.store.db import Store, StoreError

__all__ = ["Store", "StoreError"]
