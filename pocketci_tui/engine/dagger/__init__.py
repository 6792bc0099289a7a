"""Dagger: what a module offers (the catalog) and how one of its functions is called.

The catalog introspects a module through the dagger-io SDK and caches it by content; the runner
builds and supervises one ``dagger call``. Nothing here decides which functions run.
"""

from pocketci_tui.engine.dagger.catalog import (
    Catalog,
    CatalogError,
    module_content_key,
    resolve_dagger_cli,
)
from pocketci_tui.engine.dagger.runner import CallRequest, DaggerEnv, Runner

__all__ = [
    "CallRequest",
    "Catalog",
    "CatalogError",
    "DaggerEnv",
    "Runner",
    "module_content_key",
    "resolve_dagger_cli",
]
