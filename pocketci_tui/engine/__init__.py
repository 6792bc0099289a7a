"""The dispatch engine: workspace, catalog, matching, runner and dispatcher."""
