"""The UI's key bindings by id, for remapping with ``keymap`` in ``config.yaml``.

The terminal UI defines its bindings with these ids and default keys (a test keeps the two in
step); the configuration checks a ``keymap`` against them without importing the UI. Bindings
are grouped by where they are active together (a *scope*: the main screen with the app's own
keys, the Output pane while focused, or one dialog): within a scope, a key may belong to one
binding only, or one of them would silently stop working. The Output pane's keys come before
the main screen's while it is focused (``/`` searches the output there, and filters the events
elsewhere).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "BINDINGS",
    "BINDING_IDS",
    "NEVER_TOGETHER",
    "RESERVED_KEYS",
    "effective_keymap",
    "keymap_problem",
]

_EDGES = {
    "list-half-down": "ctrl+d",
    "list-half-up": "ctrl+u",
    "list-top": "g",
    "list-bottom": "G",
}
_LIST = {"list-down": "j", "list-up": "k", **_EDGES}
"""The keys of a dialog's list (:mod:`pocketci_tui.tui.dialogs.list_keys`)."""

BINDINGS: dict[str, dict[str, str]] = {
    "main": {
        "help": "question_mark",
        "quit": "q",
        "detach": "q",
        "quit-now": "ctrl+q",
        "secrets-show": "s",
        "secrets-unlock": "u",
        "webhook-show": "w",
        "config-reload": "ctrl+l",
        "event-fire": "f",
        "run-rerun": "r",
        "run-cancel": "c",
        "event-approve": "a",
        "events-filter": "slash",
        "log-pager": "p",
        "events-failed": "F",
        "events-running": "R",
        "events-waiting": "W",
        "run-attempts": "space",
        "repos-show": "v",
        "event-details": "i",
        "event-link": "o",
        "cursor-down": "j",
        "cursor-up": "k",
        "cursor-half-down": "ctrl+d",
        "cursor-half-up": "ctrl+u",
        "cursor-top": "g",
        "cursor-bottom": "G",
        "pane-zoom": "z",
        "pane-unzoom": "escape",
    },
    "output": {
        "log-follow": "end,G",
        "log-top": "home,g",
        "log-search": "slash",
        "log-next": "n",
        "log-previous": "N",
        "log-failure": "e",
        "log-wrap": "w",
        "log-left": "h",
        "log-right": "l",
        "log-stamps": "t",
        "log-select": "V",
        "log-copy": "y",
        "log-copy-path": "Y",
    },
    "secrets": {
        "secret-new": "n",
        "secret-set": "e,enter",
        "secret-delete": "d,delete",
        "secret-unlock": "u",
        "dialog-close": "escape,q",
        **_LIST,
    },
    "secret-value": {"dialog-close": "escape"},
    "passphrase": {"dialog-close": "escape"},
    "webhook": {
        "webhook-reveal": "r",
        "webhook-generate": "g",
        "webhook-copy-url": "c",
        "webhook-copy-secret": "C",
        "dialog-close": "escape,enter,q",
    },
    "confirm": {"confirm-yes": "y,enter", "confirm-no": "n,escape"},
    "approve": {"approve-yes": "y,enter", "approve-no": "n,escape"},
    "fire": {"dialog-close": "escape", "picker-down": "down", "picker-up": "up", **_LIST},
    "setup": {"setup-next": "enter", "setup-skip": "escape"},
    "help": {"dialog-close": "escape,q,question_mark,enter", **_LIST},
    "repos": {
        "repos-close": "escape,v,q",
        "repos-down": "j",
        "repos-up": "k",
        **_EDGES,
    },
    "details": {
        "details-close": "escape,i,q",
        "details-link": "o",
        "details-down": "j,down",
        "details-up": "k,up",
        **_EDGES,
    },
    "refused": {"dialog-close": "escape,q,enter", **_LIST},
}
"""Default keys (comma-separated) of every binding id, by scope."""

BINDING_IDS: frozenset[str] = frozenset(i for scope in BINDINGS.values() for i in scope)
"""Every binding id a ``keymap`` may name."""

RESERVED_KEYS: dict[str, frozenset[str]] = {
    "main": frozenset({"tab", "shift+tab", "ctrl+p", "up", "down", "ctrl+c"}),
}
"""Keys the UI uses without a binding id (moving focus, the command palette...), by scope."""

NEVER_TOGETHER: frozenset[frozenset[str]] = frozenset({frozenset({"quit", "detach"})})
"""Bindings of one scope that are never active at the same time, so they may share a key:
``quit`` where this process owns the builds, ``detach`` where it shows another process's."""

FOLLOWS: dict[str, str] = {"detach": "quit"}
"""A binding that takes the keys of another one remapped while it keeps its own default:
``keymap: {quit: x}`` leaves with ``x`` whether the UI owns the builds or is attached."""

_KEY_RE = re.compile(r"[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*|[^\s,]")


def _keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",")]


def effective_keymap(keymap: Mapping[str, str]) -> dict[str, str]:
    """The keymap as the UI applies it: ``keymap`` plus, for a binding of :data:`FOLLOWS` it
    leaves alone, the keys of the binding it follows."""
    result = dict(keymap)
    for follower, leader in FOLLOWS.items():
        if follower not in result and leader in result:
            result[follower] = result[leader]
    return result


def keymap_problem(keymap: Mapping[str, str]) -> tuple[str, str]:
    """Find the first problem of a ``keymap``.

    Args:
        keymap: Binding id to keys (comma-separated, Textual's key names: ``ctrl+r``, ``f5``,
            ``slash``...).

    Returns:
        (the keymap entry at fault, what is wrong with it), or ("", "") when it is fine.
    """
    for binding_id, value in keymap.items():
        if binding_id not in BINDING_IDS:
            return binding_id, (
                "unknown binding id (known ids: " + ", ".join(sorted(BINDING_IDS)) + ")"
            )
        keys = _keys(value)
        bad = [k for k in keys if not _KEY_RE.fullmatch(k)]
        if not value.strip() or bad:
            return binding_id, (
                f"expected keys like 'ctrl+r' or 'f5', comma-separated, got {value!r}"
            )
    keymap = effective_keymap(keymap)
    for scope, defaults in BINDINGS.items():
        owner: dict[str, str] = {}
        reserved = RESERVED_KEYS.get(scope, frozenset())
        # Remapped bindings first, so a conflict is reported on the entry the user wrote.
        order = sorted(defaults, key=lambda i: i not in keymap)
        for binding_id in order:
            for key in _keys(keymap.get(binding_id, defaults[binding_id])):
                if key in reserved and binding_id in keymap:
                    return binding_id, f"{key!r} is reserved by the UI ({_scope_name(scope)})"
                other = owner.get(key)
                if (
                    other is not None
                    and other != binding_id
                    and frozenset({other, binding_id}) not in NEVER_TOGETHER
                ):
                    culprit = binding_id if binding_id in keymap else other
                    rival = other if culprit == binding_id else binding_id
                    return culprit, (
                        f"{key!r} is also the key of {rival} ({_scope_name(scope)}); one of "
                        f"them would stop working: give {rival} another key as well, or "
                        f"choose a free key"
                    )
                owner.setdefault(key, binding_id)
    return "", ""


def _scope_name(scope: str) -> str:
    if scope == "output":
        return "Output pane"
    return "main screen" if scope == "main" else f"{scope} dialog"
