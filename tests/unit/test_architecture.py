"""The layering of SPEC section 3, checked by import-linter over the whole package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


CONTRACTS = [
    "The core never imports the UI",
    "The package's layers",
    "The engine's parts",
    "The dispatch engine's parts",
    "The control socket's parts",
    "No import cycles between siblings",
    "The UI's parts",
]


def test_the_layers_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe is not None, "import-linter is part of the test extras"
    result = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout
