"""The control socket: how a UI attaches to the process that owns a data folder.

The owner (``pocketci-tui serve`` or an embedded UI) serves its
:class:`~pocketci_tui.contract.CoreClient` on a Unix socket in a private folder
(:mod:`~pocketci_tui.control.location`), as versioned JSON over HTTP
(:mod:`~pocketci_tui.control.server`) with the values coded by
:mod:`~pocketci_tui.control.wire`, and its notices numbered and buffered per client
(:mod:`~pocketci_tui.control.hub`) on a websocket. An attached UI uses the same contract through
:mod:`~pocketci_tui.control.client`, so its panes, keys and actions are the embedded ones.

Nothing here imports the UI; only the command line and the UI's start import the client and
the location.
"""
