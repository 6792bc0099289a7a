"""store layer of pocketci-tui."""
