"""A home folder for tests and benchmarks that start the real ``pocketci-tui`` program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def write_home(
    home: Path, *, port: int, secret: str, repos: str, extra: str = ""
) -> dict[str, str]:
    """Write ``config.yaml`` and store the webhook secret with the real ``secrets set``.

    The listener is on loopback at ``port`` and secrets are in the plaintext file (no keyring
    needed by the program under test).

    Args:
        home: The folder (created if missing); ``POCKETCI_TUI_HOME`` points at it.
        port: The listener's port.
        secret: The webhook secret to store as ``webhook-secret``.
        repos: The YAML flow list of repositories.
        extra: More top-level YAML lines for the config.

    Returns:
        This process's environment with ``POCKETCI_TUI_HOME`` set to ``home``.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\nsecrets: {{backend: plaintext}}\n"
        f"repos: {repos}\n{extra}",
        encoding="utf-8",
    )
    env = {**os.environ, "POCKETCI_TUI_HOME": str(home)}
    subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", "webhook-secret", "--stdin"],
        input=secret,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    return env
