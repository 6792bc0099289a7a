"""The forges pocketci-tui speaks (GitHub, Gitea, Forgejo, GitLab), behind one interface.

:class:`Forge` is everything the intake, the engine and the commands need from a forge
(see :mod:`pocketci_tui.forges.base` for the order the intake uses it in); each vendor module
holds one object implementing it, and :func:`forge_for` finds it by vendor name, as the route
``/webhooks/{vendor}`` does through a :class:`Registry`.
"""

from __future__ import annotations

from pocketci_tui.forges.base import (
    REFIRE_HEADER,
    BodyCheck,
    DeliveryRefused,
    Forge,
    GitAuth,
    Verifier,
    refire_allowed,
    refire_signature,
)
from pocketci_tui.forges.registry import Registry, UnknownVendor, default_registry, forge_for

__all__ = [
    "REFIRE_HEADER",
    "BodyCheck",
    "DeliveryRefused",
    "Forge",
    "GitAuth",
    "Registry",
    "UnknownVendor",
    "Verifier",
    "default_registry",
    "forge_for",
    "refire_allowed",
    "refire_signature",
]
