"""The simulated Cisco Expressway-E: places calls into an Edge (UAC), answers its calls (UAS)."""

from __future__ import annotations

from simulator.peer.labpeer import (
    PeerFiles,
    issue_lab_pki,
    lab_peer,
    peer_client_context,
    peer_files,
    peer_server_context,
)
from simulator.peer.tlserrors import Phase, describe_closed, describe_network_error
from simulator.peer.uac import CallResult, place_call
from simulator.peer.uas import check_answer, serve_peer

__all__ = [
    "CallResult",
    "PeerFiles",
    "Phase",
    "check_answer",
    "describe_closed",
    "describe_network_error",
    "issue_lab_pki",
    "lab_peer",
    "peer_client_context",
    "peer_files",
    "peer_server_context",
    "place_call",
    "serve_peer",
]
