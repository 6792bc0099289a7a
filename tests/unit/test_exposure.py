"""Which listen addresses expose the listener to other machines (R8)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pocketci_tui.cli import main
from pocketci_tui.intake.exposure import exposure_warning, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_quiet(host: str) -> None:
    assert is_loopback(host)
    assert exposure_warning(host, 8080) == ""


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "ci.example.org"])
def test_other_addresses_warn_with_the_way_out(host: str) -> None:
    assert not is_loopback(host)
    warning = exposure_warning(host, 8080)
    assert "exposed to other machines" in warning
    assert "127.0.0.1:8080" in warning
    assert "tunnel" in warning


def test_check_warns_when_the_listener_is_exposed(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-loopback listen address is a WARN line with the tunnel advice, not silence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (hermetic_home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\nsecrets: {{backend: plaintext}}\n"
        "repos: [{name: acme/api}]\n"
    )
    subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", "webhook-secret", "--stdin"],
        input="a-long-webhook-secret",
        text=True,
        capture_output=True,
        check=True,
    )
    code = main(["check", "--host", "0.0.0.0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "WARN  listen" in out
    assert "exposes the webhook listener to other machines" in out
    assert "tunnel" in out
    main(["check"])
    assert "WARN  listen" not in capsys.readouterr().out
