"""The Edge's clocks: record and event times agree; kept SRV lookups expire with the DNS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import trio
import trio.testing

from simulator.diagnostics import edge_log_stamp
from simulator.dns import Resolver
from simulator.edge.app import edge_settings
from simulator.edge.recorder import Recorder
from simulator.edge.state import EdgeState, TrustStore
from simulator.lab import builtin_lab
from simulator.policy import SrvLookup


def _edge(tmp_path: Path) -> EdgeState:
    """An Edge with no peer connections, enough for its clocks and caches."""
    return EdgeState(
        settings=edge_settings(builtin_lab()),
        users={},
        resolver=Resolver(("127.0.0.1", 9)),
        trust=TrustStore(roots=[], public_roots=[], intermediates=[]),
        recorder=Recorder(tmp_path),
    )


async def test_stamps_are_now_in_both_formats(tmp_path: Path) -> None:
    edge = _edge(tmp_path)
    seen = set()
    for _ in range(30):  # across many milliseconds and, at times, a second boundary
        before = dt.datetime.now(dt.UTC)
        record, iso = edge.recorder.stamps()
        after = dt.datetime.now(dt.UTC)
        when = dt.datetime.fromisoformat(iso)
        assert iso == when.isoformat(timespec="milliseconds")
        assert record == edge_log_stamp(when)
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= when <= after
        seen.add(iso)
        await trio.sleep(0.04)
    assert len(seen) > 20
    edge.recorder.close()


async def test_a_kept_srv_lookup_lasts_as_long_as_the_resolvers_answer(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    edge = _edge(tmp_path)
    name = "_sipfederationtls._tcp.steven.lab"
    lookup = SrvLookup(name=name, outcome="nxdomain", targets=())
    edge.lookups.keep(name, lookup, 10)
    assert edge.lookups.kept(name) is lookup
    mock_clock.jump(10)  # the resolver's answer has expired: ask it again
    assert edge.lookups.kept(name) is None
    assert edge.lookups.needs_query(name)
    edge.lookups.keep(name, lookup, 10)
    edge.resolver.clear_cache()  # so has its cache
    assert edge.lookups.kept(name) is None
    edge.recorder.close()
