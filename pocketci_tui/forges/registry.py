"""The forges pocketci-tui speaks, by vendor name, and which one sent a delivery.

The route ``/webhooks/{vendor}`` picks the forge; :meth:`Registry.sender` only serves to
refuse a delivery posted to another forge's URL (Gitea and Forgejo send GitHub's headers too,
so without it a Gitea delivery posted to ``/webhooks/github`` would pass as GitHub's).

A new forge is a module with one object implementing :class:`~pocketci_tui.forges.base.Forge`,
added to :func:`builtin_forges`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache

from pocketci_tui.forges.base import Forge
from pocketci_tui.model import webhook_path


class UnknownVendor(KeyError):
    """No forge of that name is registered."""


class Registry:
    """Forges by vendor name.

    Args:
        forges: The forges, each under its own ``vendor``.
    """

    def __init__(self, forges: Iterable[Forge]) -> None:
        self._forges: dict[str, Forge] = {}
        for forge in forges:
            if forge.vendor in self._forges:
                raise ValueError(f"two forges are named {forge.vendor!r}")
            self._forges[forge.vendor] = forge

    def __iter__(self) -> Iterator[Forge]:
        return iter(self._forges.values())

    def __contains__(self, vendor: object) -> bool:
        return vendor in self._forges

    @property
    def vendors(self) -> tuple[str, ...]:
        """The registered vendor names, in registration order."""
        return tuple(self._forges)

    def get(self, vendor: str) -> Forge | None:
        """Return the forge of that name, or None."""
        return self._forges.get(vendor)

    def __getitem__(self, vendor: str) -> Forge:
        forge = self._forges.get(vendor)
        if forge is None:
            known = ", ".join(self._forges)
            raise UnknownVendor(f"no forge is named {vendor!r} (known: {known})")
        return forge

    def sender(self, headers: Mapping[str, str]) -> str:
        """Tell which registered forge's headers a delivery carries, or ``""`` for none.

        A forge counts when its own event header is present and no other present forge
        mimics it (a Forgejo delivery carries ``X-Forgejo-Event``, ``X-Gitea-Event`` and
        ``X-GitHub-Event``: Forgejo mimics the other two, so it is Forgejo's). When several
        remain, none is named: the route's own checks then refuse what does not fit.

        Args:
            headers: The request headers.

        Returns:
            The vendor name, or ``""``.
        """
        present = [f for f in self._forges.values() if f.event_header in headers]
        if not present:
            return ""
        mimicked = {vendor for f in present for vendor in f.mimics}
        senders = [f.vendor for f in present if f.vendor not in mimicked]
        return senders[0] if len(senders) == 1 else ""

    def misrouted(self, vendor: str, headers: Mapping[str, str]) -> str:
        """Say why a delivery posted to ``vendor``'s URL belongs elsewhere, or ``""``.

        A delivery carrying only the headers of a forge that ``vendor`` mimics is taken when
        ``vendor`` can verify it with them: Forgejo forked from Gitea, and older Forgejo sends
        only ``X-Gitea-*`` headers, so such a delivery at ``/webhooks/forgejo`` is Forgejo's.
        GitHub's headers alone never carry a signature Gitea or Forgejo reads, so a GitHub
        delivery at their URLs is still refused.

        Args:
            vendor: The forge the route names.
            headers: The request headers.

        Returns:
            A message naming the URL path the delivery should go to, or ``""``.
        """
        sender = self.sender(headers)
        if not sender or sender == vendor:
            return ""
        this = self._forges[vendor]
        other = self._forges[sender]
        if sender in this.mimics and not this.missing_credentials(headers):
            # This forge sends the sender's headers too and finds its signature among them:
            # an older version of this forge that sent only those (Forgejo before its own
            # X-Forgejo-* headers sent only Gitea's). The route decides the forge.
            return ""
        return (
            f"this is a {other.display_name} delivery ({other.event_header}) posted to "
            f"{webhook_path(vendor)}, the URL for {this.display_name}; point the "
            f"{other.display_name} webhook at {webhook_path(sender)}"
        )


def builtin_forges() -> list[Forge]:
    """Every forge that ships with pocketci-tui."""
    from pocketci_tui.forges import gitea, github, gitlab

    return [github.FORGE, gitea.GITEA, gitea.FORGEJO, gitlab.GITLAB]


@cache
def default_registry() -> Registry:
    """The registry of the built-in forges (built once)."""
    return Registry(builtin_forges())


def forge_for(vendor: str) -> Forge:
    """Return the built-in forge of that name.

    Raises:
        UnknownVendor: No forge is named so.
    """
    return default_registry()[vendor]
