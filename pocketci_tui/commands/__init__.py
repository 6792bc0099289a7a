"""One-shot subcommands of ``pocketci-tui`` (each module offers ``register(subparsers)``)."""
