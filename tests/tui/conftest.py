"""Fixtures for the UI tests: a real instance (store, engine, listener, stand-in dagger)."""

from __future__ import annotations

from pathlib import Path

import pytest
from daggerstub import install_fake_dagger

from .harness import Rig, make_rig


@pytest.fixture(scope="session")
def shared_dagger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One stand-in ``dagger`` and one catalog cache for the session: the module is the same in
    every test, so only the first test pays for introspection."""
    base = tmp_path_factory.mktemp("shared-dagger")
    return install_fake_dagger(base), base / "catalog-seed"


@pytest.fixture
def rig(tmp_path: Path, hermetic_home: Path, shared_dagger: tuple[Path, Path]) -> Rig:
    """A configured instance with a repository to build and the stand-in dagger."""
    bin_dir, seed = shared_dagger
    return make_rig(tmp_path, bin_dir, seed)
