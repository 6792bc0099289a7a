"""The webhook intake: verify, store durably, then acknowledge (SPEC 4.4).

The names below are imported on first use, so that importing a light part of the package
(``intake.rejections``) does not import aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pocketci_tui.intake.app import make_intake_app
    from pocketci_tui.intake.listener import Listener, ListenerError, bind_sockets
    from pocketci_tui.intake.parts import MAX_BODY, EventSink, IntakeLimits

__all__ = [
    "MAX_BODY",
    "EventSink",
    "IntakeLimits",
    "Listener",
    "ListenerError",
    "bind_sockets",
    "make_intake_app",
]

_WHERE = {
    "MAX_BODY": "parts",
    "EventSink": "parts",
    "IntakeLimits": "parts",
    "make_intake_app": "app",
    "Listener": "listener",
    "ListenerError": "listener",
    "bind_sockets": "listener",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
