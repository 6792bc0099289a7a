"""pocketci-tui: a self-hosted CI runner for Dagger pipelines, with a terminal UI."""

__version__ = "0.1.0"
