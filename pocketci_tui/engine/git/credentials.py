"""How a token reaches git: scoped to one origin, through the git process's environment.

The hardened runner (:mod:`.command`) starts every git process; this module decides what of a
token that process gets, and writes the two helper programs it names.

Credentials reach git through the environment of the git process only, in one of two ways:

* by default, a host-scoped credential helper script (it holds no secret; it answers with the
  password found in the environment, and only for the exact protocol and host the token was
  configured for). git asks it after the server's first ``401``, so every fetch starts with an
  anonymous round trip;
* pre-emptively (:attr:`Credentials.preemptive`): the ``Authorization: Basic`` header, given as
  ``http.<origin>/.extraHeader`` through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/
  ``GIT_CONFIG_VALUE_n`` (environment, never argv), sent from the first request on, which saves
  that round trip. No helper is configured then, so a refused token is sent exactly once and
  git fails at the ``401`` (reported as "Authentication failed"); and
  ``http.<origin>/.followRedirects=false`` is set for the same origin, which outranks any
  generic ``http.followRedirects`` (git picks the most specific URL match), so the header can
  never be carried to another host by a redirect.

The token is never in a URL, an argument or a file; the runner masks it (also in its base64
form, :meth:`Credentials.masked_forms`) in every message it produces.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pocketci_tui.engine.git.errors import GitError

__all__ = [
    "DEFAULT_USERNAME",
    "Credentials",
    "credential_env_names",
    "install_helpers",
]

DEFAULT_USERNAME = "x-access-token"
"""The basic-auth user sent with a token when the caller names none (GitHub's form)."""

_ENV_USERNAME = "POCKETCI_GIT_USERNAME"
_ENV_PASSWORD = "POCKETCI_GIT_PASSWORD"
_ENV_PROTOCOL = "POCKETCI_GIT_PROTOCOL"
_ENV_HOST = "POCKETCI_GIT_HOST"

_CREDENTIAL_HELPER = f"""#!/bin/sh
# git credential helper of pocketci-tui. It holds no secret: it answers "get" with the password
# found in the environment of the git process, and only for the protocol and host the password
# belongs to (a redirect to another host gets nothing).
[ "$1" = get ] || exit 0
proto=
host=
while IFS= read -r line; do
  case "$line" in
    protocol=*) proto=${{line#protocol=}} ;;
    host=*) host=${{line#host=}} ;;
    '') break ;;
  esac
done
[ -n "${{{_ENV_PASSWORD}:-}}" ] || exit 0
[ "$proto" = "${{{_ENV_PROTOCOL}:-}}" ] || exit 0
[ "$host" = "${{{_ENV_HOST}:-}}" ] || exit 0
printf 'username=%s\\npassword=%s\\n' "${{{_ENV_USERNAME}}}" "${{{_ENV_PASSWORD}}}"
"""

_ASKPASS = """#!/bin/sh
# GIT_ASKPASS of pocketci-tui: never answers, so git fails instead of prompting anyone.
exit 1
"""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A token for one origin (protocol + host[:port]), handed to git through its environment.

    Attributes:
        protocol: ``https`` or ``http``, as git names it.
        host: The host, with the port when the URL names one (exactly as in the URL).
        username: The user name to send: each forge expects its own (``x-access-token`` for
            GitHub, ``oauth2`` for GitLab, any name for Gitea and Forgejo).
        password: The token.
        preemptive: Send the token as a basic-auth header from the first request on (saves the
            anonymous ``401`` round trip; see the module documentation) instead of through the
            credential helper after a ``401``.
    """

    protocol: str
    host: str
    username: str
    password: str = field(repr=False)
    preemptive: bool = False

    @classmethod
    def for_url(
        cls,
        url: str,
        token: str,
        username: str = DEFAULT_USERNAME,
        *,
        preemptive: bool = False,
    ) -> Credentials:
        """Scope a token to the origin of an http(s) clone URL.

        Args:
            url: The configured clone URL (``https://host[:port]/path``), without user info.
            token: The token.
            username: The user name to send with it.
            preemptive: See :attr:`preemptive`.

        Returns:
            The credentials.

        Raises:
            GitError: The URL is not http(s), carries user info, or the token is unusable.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GitError("a token can only be used with an http(s) clone URL")
        if "@" in parts.netloc:
            raise GitError("the clone URL must not contain a user name or password")
        if not token or any(ord(c) < 0x20 or ord(c) == 0x7F for c in token):
            raise GitError("the clone token is empty or contains control characters")
        if any(ord(c) < 0x21 or ord(c) == 0x7F or c == ":" for c in username):
            raise GitError("the clone user name contains spaces, colons or control characters")
        return cls(
            protocol=parts.scheme,
            host=parts.netloc,
            username=username,
            password=token,
            preemptive=preemptive,
        )

    @property
    def origin(self) -> str:
        """``protocol://host[:port]/``: the URL prefix the pre-emptive header is scoped to."""
        return f"{self.protocol}://{self.host}/"

    def basic(self) -> str:
        """The base64 ``user:token`` of a basic-auth header."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def env(self) -> dict[str, str]:
        """The environment variables that hand the token to git (see the module docs)."""
        if self.preemptive:
            return {
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": f"http.{self.origin}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {self.basic()}",
                "GIT_CONFIG_KEY_1": f"http.{self.origin}.followRedirects",
                "GIT_CONFIG_VALUE_1": "false",
            }
        return {
            _ENV_USERNAME: self.username,
            _ENV_PASSWORD: self.password,
            _ENV_PROTOCOL: self.protocol,
            _ENV_HOST: self.host,
        }

    def masked_forms(self) -> list[str]:
        """Every form of the token an error message could carry (raw, basic-auth base64)."""
        return [self.password, self.basic()]


def install_helpers(directory: Path) -> tuple[Path, Path]:
    """Write the credential helper and the refusing askpass program into a directory.

    Args:
        directory: A private directory (created with mode 0700 if missing).

    Returns:
        The paths of the credential helper and of the askpass program.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for name, text in (("credential-helper", _CREDENTIAL_HELPER), ("askpass", _ASKPASS)):
        path = directory / name
        if not path.exists() or path.read_text() != text:
            tmp = directory / f".{name}.{os.getpid()}.tmp"
            tmp.write_text(text)
            tmp.chmod(stat.S_IRWXU)
            tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


def credential_env_names() -> Mapping[str, str]:
    """Names of the environment variables the credential helper reads."""
    return {
        "username": _ENV_USERNAME,
        "password": _ENV_PASSWORD,
        "protocol": _ENV_PROTOCOL,
        "host": _ENV_HOST,
    }
