"""intake layer of pocketci-tui."""
