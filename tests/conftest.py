"""Shared fixtures. Every test runs with its own config, data and XDG folders under tmp_path."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from pocketci_tui.paths import AppPaths  # noqa: E402
from pocketci_tui.secrets import MemorySecretStore  # noqa: E402
from pocketci_tui.store import Store  # noqa: E402

WEBHOOK_SECRET = "test-webhook-secret-0123456789"
"""The webhook secret tests sign with (stored under the default name ``webhook-secret``)."""

PAYLOADS_DIR = TESTS_DIR / "fixtures" / "payloads"


@pytest.fixture(autouse=True)
def hermetic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point POCKETCI_TUI_HOME and every XDG folder at tmp dirs, so nothing touches $HOME."""
    home = tmp_path / "pocketci-home"
    home.mkdir()
    monkeypatch.setenv("POCKETCI_TUI_HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CACHE_HOME", "xdg-cache"),
        ("XDG_RUNTIME_DIR", "xdg-runtime"),
    ):
        path = tmp_path / sub
        path.mkdir(mode=0o700)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return home


@pytest.fixture
def app_paths(hermetic_home: Path) -> AppPaths:
    """The paths of a test instance (config.yaml and data under POCKETCI_TUI_HOME)."""
    return AppPaths(config_file=hermetic_home / "config.yaml", data_dir=hermetic_home / "data")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store in a tmp folder, closed after the test."""
    s = await Store.open(tmp_path / "db" / "pocketci.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def memory_secrets() -> MemorySecretStore:
    """An in-memory secret store holding the test webhook secret."""
    return MemorySecretStore({"webhook-secret": WEBHOOK_SECRET})


@pytest.fixture
def payloads_dir() -> Path:
    """The folder of realistic GitHub payload fixtures."""
    return PAYLOADS_DIR
