"""The Edge's clock texts: the record stamp and the event time say the same instant."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trio

from simulator.diagnostics import edge_log_stamp
from simulator.dns import Resolver
from simulator.edge.app import edge_settings
from simulator.edge.events import EventLog
from simulator.edge.federation import Edge, TrustStore
from simulator.lab import builtin_lab


async def test_stamps_are_now_in_both_formats(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    edge = Edge(
        settings=edge_settings(builtin_lab()),
        users={},
        resolver=Resolver(("127.0.0.1", 9)),
        trust=TrustStore(roots=[], public_roots=[], intermediates=[]),
        events=log,
    )
    seen = set()
    for _ in range(30):  # across many milliseconds and, at times, a second boundary
        before = dt.datetime.now(dt.UTC)
        record, iso = edge.stamps()
        after = dt.datetime.now(dt.UTC)
        when = dt.datetime.fromisoformat(iso)
        assert iso == when.isoformat(timespec="milliseconds")
        assert record == edge_log_stamp(when)
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= when <= after
        seen.add(iso)
        await trio.sleep(0.04)
    assert len(seen) > 20
    log.close()
