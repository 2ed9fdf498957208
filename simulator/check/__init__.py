"""``fedsim check``: preflight a real federation configuration against Microsoft's rules.

:mod:`simulator.check.gather` reads the files and asks DNS (I/O);
:mod:`simulator.check.report` judges the rules and predicts the Edge's answers
(pure); :mod:`simulator.check.render` prints text or JSON (pure).
"""

from __future__ import annotations

from simulator.check.render import render_json, render_text, report_to_dict
from simulator.check.report import (
    DIRECTIONS,
    AddressLookup,
    Answer,
    CheckFacts,
    CheckOptions,
    Direction,
    Report,
    RuleResult,
    Status,
    build_report,
)

__all__ = [
    "DIRECTIONS",
    "AddressLookup",
    "Answer",
    "CheckFacts",
    "CheckOptions",
    "Direction",
    "Report",
    "RuleResult",
    "Status",
    "build_report",
    "render_json",
    "render_text",
    "report_to_dict",
]
