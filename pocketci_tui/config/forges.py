"""The ``forges:`` section of ``config.yaml``: each forge's address and webhook secret.

A forge's base URL is checked here once (http(s), a host, no credentials), so every part that
derives a clone or API URL from it can trust it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pocketci_tui.config.reading import ConfigError, Reader
from pocketci_tui.model import VENDORS

FORGE_DEFAULT_URLS = {"github": "https://github.com", "gitlab": "https://gitlab.com"}
"""Where a forge's repositories live when ``forges.<vendor>.url`` is not set; Gitea and
Forgejo are always someone's own server, so they have no default."""


@dataclass(frozen=True, slots=True)
class ForgeSettings:
    """One forge's entry under ``forges:``; every field is optional.

    Attributes:
        url: The forge's base URL (``https://git.example.org``), without a trailing slash;
            clone URLs are derived from it. Empty: the forge's public host, if it has one.
        api_url: The forge's API URL, for talking back to it; empty when not needed.
        webhook_secret: NAME of the secret-store entry holding this forge's webhook secret;
            empty means the top-level ``webhook-secret``.
    """

    url: str = ""
    api_url: str = ""
    webhook_secret: str = ""


def check_base_url(url: str, key: str = "url") -> str:
    """Check a forge's base URL and return it without a trailing slash.

    Args:
        url: ``https://git.example.org`` or ``https://example.org/gitea`` (http for a forge
            on the local network).
        key: The config key, for messages.

    Raises:
        ValueError: Not http(s), no host, a user name or password, a query or a fragment.
    """
    parts = urlsplit(url)
    shown = _without_userinfo(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{key}: {shown!r} is not an http(s) URL with a host")
    if "@" in parts.netloc:
        raise ValueError(
            f"{key}: {shown!r} holds a user name or password; keep tokens in the secret store"
        )
    if parts.query or parts.fragment or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError(f"{key}: {shown!r} has a query, a fragment, spaces or control characters")
    return url.rstrip("/")


def _without_userinfo(url: str) -> str:
    """``url`` for an error message: whatever precedes an ``@`` in its authority (a user name
    and a token, pasted by mistake) replaced by ``***``, so the message never repeats it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def parse_forges(r: Reader) -> dict[str, ForgeSettings]:
    """Read ``forges:``: vendor -> {url, api-url, webhook-secret}, every field optional."""
    r.check_keys(VENDORS)
    forges: dict[str, ForgeSettings] = {}
    for vendor in VENDORS:
        if vendor not in r.data:
            continue
        f = r.sub(vendor)
        f.check_keys(("url", "api-url", "webhook-secret"))
        urls = {}
        for key in ("url", "api-url"):
            value = f.text(key, "")
            try:
                urls[key] = check_base_url(value, f.where(key)) if value else ""
            except ValueError as exc:
                raise ConfigError(
                    str(exc), "give the forge's address, like https://git.example.org"
                ) from None
        forges[vendor] = ForgeSettings(
            url=urls["url"],
            api_url=urls["api-url"],
            webhook_secret=f.secret_name("webhook-secret", ""),
        )
    return forges
