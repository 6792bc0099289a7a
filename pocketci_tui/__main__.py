"""``python -m pocketci_tui`` runs the command line."""

from pocketci_tui.cli import main

raise SystemExit(main())
