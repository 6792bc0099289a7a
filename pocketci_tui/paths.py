"""Where pocketci-tui keeps its configuration and data.

Defaults come from platformdirs. ``POCKETCI_TUI_HOME`` puts both under one folder
(``config.yaml`` at its top, data beside it), and ``--config`` / ``--data-dir`` override either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "pocketci-tui"
HOME_ENV = "POCKETCI_TUI_HOME"


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The resolved locations of one pocketci-tui instance.

    Attributes:
        config_file: The user configuration (``config.yaml``); it may not exist yet.
        data_dir: The root of everything pocketci-tui writes.
    """

    config_file: Path
    data_dir: Path

    @property
    def config_dir(self) -> Path:
        """The folder holding the config file (and the secrets index or encrypted file)."""
        return self.config_file.parent

    @property
    def db_file(self) -> Path:
        """The SQLite database of events and runs."""
        return self.data_dir / "pocketci.db"

    @property
    def logs_dir(self) -> Path:
        """Run logs, one file per run."""
        return self.data_dir / "logs"

    @property
    def work_dir(self) -> Path:
        """Mirrors, checkouts and per-run scratch space."""
        return self.data_dir / "work"

    @property
    def cache_dir(self) -> Path:
        """Caches that can be rebuilt (the Dagger module catalog)."""
        return self.data_dir / "cache"

    @property
    def app_log(self) -> Path:
        """The app's own log (errors, warnings, the SDK's output)."""
        return self.data_dir / "pocketci-tui.log"


def resolve_paths(config: Path | None = None, data_dir: Path | None = None) -> AppPaths:
    """Resolve the config file and data folder from options, environment and defaults.

    Args:
        config: ``--config``, if given.
        data_dir: ``--data-dir``, if given.

    Returns:
        The resolved paths, absolute.
    """
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        base = Path(home).expanduser()
        default_config = base / "config.yaml"
        default_data = base / "data"
    else:
        default_config = platformdirs.user_config_path(APP_NAME) / "config.yaml"
        default_data = platformdirs.user_data_path(APP_NAME)
    return AppPaths(
        config_file=(config or default_config).expanduser().absolute(),
        data_dir=(data_dir or default_data).expanduser().absolute(),
    )
