"""``fedsim run``: lab files end to end on loopback, judged call by call; reports and ladders.

Also the run's results as JSON (read back and merged across shards) and as one
HTML page with the three views of every call.
"""

from __future__ import annotations

from simulator.run.model import (
    TLS_REFUSED,
    CallReport,
    CallTrace,
    LabFacts,
    LabReport,
    Mismatch,
    Outcome,
    WireMessage,
    compare,
)
from simulator.run.page import render_page
from simulator.run.results import RunResults, load_results, merge_results, results_json
from simulator.run.runner import (
    LabFile,
    discover,
    load_lab_files,
    matches,
    rewrite_srv_ports,
    run_lab,
    run_labs,
)
from simulator.run.shard import Shard, parse_shard, shard_ids
from simulator.run.views import CallViews, call_views

__all__ = [
    "TLS_REFUSED",
    "CallReport",
    "CallTrace",
    "CallViews",
    "LabFacts",
    "LabFile",
    "LabReport",
    "Mismatch",
    "Outcome",
    "RunResults",
    "Shard",
    "WireMessage",
    "call_views",
    "compare",
    "discover",
    "load_lab_files",
    "load_results",
    "matches",
    "merge_results",
    "parse_shard",
    "render_page",
    "results_json",
    "rewrite_srv_ports",
    "run_lab",
    "run_labs",
    "shard_ids",
]
