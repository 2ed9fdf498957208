"""``make bench``: fedsim's cost per call against Kamailio and a bare trio + ssl responder.

See :mod:`simulator.bench.run` for what is measured and bench/README.md for the figures.
"""

from __future__ import annotations

from simulator.bench.run import FIGURES, FULL, QUICK, Plan, bench, format_table, main

__all__ = ["FIGURES", "FULL", "QUICK", "Plan", "bench", "format_table", "main"]
