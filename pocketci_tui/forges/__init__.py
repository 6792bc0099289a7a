"""forges layer of pocketci-tui."""
