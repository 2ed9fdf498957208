"""``python -m simulator.bench`` (what ``make bench`` runs)."""

from __future__ import annotations

from simulator.bench.run import main

raise SystemExit(main())
