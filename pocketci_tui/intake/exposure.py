"""Whether the listener is reachable from other machines, and what to say about it."""

from __future__ import annotations

import ipaddress

TUNNEL_ADVICE = (
    "keep `listen: {host: 127.0.0.1}` and let a tunnel or a reverse proxy with TLS reach it "
    "(for example `cloudflared tunnel --url http://127.0.0.1:PORT`, `tailscale funnel PORT`, "
    "or Caddy/nginx forwarding /webhooks/ to 127.0.0.1:PORT)"
)


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback address or ``localhost`` (only this machine)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_warning(host: str, port: int) -> str:
    """Return a warning when the listener is reachable from other machines, else ``""``.

    Args:
        host: The ``listen.host`` the listener binds.
        port: The ``listen.port``.

    Returns:
        A full sentence with what to do, or an empty string for a loopback address.
    """
    if is_loopback(host):
        return ""
    where = "every interface" if host.strip() in ("", "0.0.0.0", "::", "[::]") else host
    return (
        f"the webhook listener on {where} (port {port}) is exposed to other machines: anyone who "
        f"can reach it can send requests (only correctly signed deliveries are stored). Unless "
        f"that is what you want, {TUNNEL_ADVICE.replace('PORT', str(port))}"
    )
