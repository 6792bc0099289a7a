"""The dispatch engine, in four parts, each a subpackage whose ``__init__`` is its public face.

- ``git``: the hardened git command and the workspace (mirrors, fetches, checkouts).
- ``dagger``: the module catalog (introspection), the ``dagger call`` spec and its runner.
- ``match``: the pure matcher (function names, argument defaults, path patterns).
- ``dispatch``: the engine itself, which turns stored deliveries into runs.

``proc`` (child processes) and ``masking`` (secret values out of output) serve them all.
"""
