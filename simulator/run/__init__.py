"""``fedsim run``: lab files end to end on loopback, judged call by call; reports and ladders."""

from __future__ import annotations

from simulator.run.model import (
    TLS_REFUSED,
    CallReport,
    CallTrace,
    LabReport,
    Mismatch,
    Outcome,
    compare,
)
from simulator.run.runner import (
    LabFile,
    discover,
    load_lab_files,
    matches,
    rewrite_srv_ports,
    run_lab,
    run_labs,
)

__all__ = [
    "TLS_REFUSED",
    "CallReport",
    "CallTrace",
    "LabFile",
    "LabReport",
    "Mismatch",
    "Outcome",
    "compare",
    "discover",
    "load_lab_files",
    "matches",
    "rewrite_srv_ports",
    "run_lab",
    "run_labs",
]
