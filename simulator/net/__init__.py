"""trio I/O shared by every server and leg fedsim runs (edge/, peer/, dns/server.py).

:mod:`simulator.net.guard` runs each connection so that no peer can take a
server down.
"""

from __future__ import annotations

from simulator.net.guard import (
    PEER_FAULTS,
    InternalError,
    Reporter,
    contain,
    detach_socket,
    peer_label,
    run_guarded,
    serve_guarded,
    stderr_reporter,
    unexpected_errors,
)

__all__ = [
    "PEER_FAULTS",
    "InternalError",
    "Reporter",
    "contain",
    "detach_socket",
    "peer_label",
    "run_guarded",
    "serve_guarded",
    "stderr_reporter",
    "unexpected_errors",
]
