"""The SQLite store of events and runs (the source of truth)."""

from pocketci_tui.store.db import Replayed, Store, StoreError

__all__ = ["Replayed", "Store", "StoreError"]
