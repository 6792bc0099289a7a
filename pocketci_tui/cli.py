from pocketci_tui import __version__

def main(argv=None):
    print(__version__)
    return 0
