"""The webhook intake: verify, store durably, then acknowledge (SPEC 4.4)."""

from pocketci_tui.intake.app import MAX_BODY, EventSink, IntakeLimits, make_intake_app
from pocketci_tui.intake.listener import Listener, ListenerError

__all__ = ["MAX_BODY", "EventSink", "IntakeLimits", "Listener", "ListenerError", "make_intake_app"]
