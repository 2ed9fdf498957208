"""The ``fedsim`` subcommands, one module each.

Each module listed in :data:`COMMANDS` defines ``register(subparsers)``, which
adds its parser and sets ``func`` (a callable taking the parsed namespace and
returning the exit status) as the parser default.
"""

from __future__ import annotations

COMMANDS: tuple[str, ...] = ("serve", "call", "client", "peer", "certs", "explain", "check", "run")
