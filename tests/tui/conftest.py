"""Fixtures for the UI tests: a real instance (store, engine, listener, stand-in dagger)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Rig, make_rig


@pytest.fixture
def rig(tmp_path: Path, hermetic_home: Path) -> Rig:
    """A configured instance with a repository to build and the stand-in dagger."""
    return make_rig(tmp_path)
