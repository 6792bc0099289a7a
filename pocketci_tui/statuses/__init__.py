"""Commit statuses: each run's state reported back to its forge, through the store's outbox.

The store queues a status with every run state change (:mod:`pocketci_tui.store.outbox`), as
:class:`~pocketci_tui.statuses.routing.SettingsRouter` says; the
:class:`~pocketci_tui.statuses.sender.StatusSender` delivers them with each forge's API
(:mod:`pocketci_tui.statuses.apis`).
"""
