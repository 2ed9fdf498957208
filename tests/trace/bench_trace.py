"""Micro-benchmark of ``--trace`` and ``--pcap``: what they add to one bench call in-process.

Not a test (no ``test_`` prefix, so pytest does not collect it). Run it with

    .venv/bin/python tests/trace/bench_trace.py [--repeat 200] [--number 200]

One call of ``make bench``'s SIPp scenario is three messages through the Edge:
the INVITE in, the 504 out, the ACK in. The last case sends them through the
Edge's own taps (:mod:`simulator.edge.taps`: the transaction's correlation id,
the record, the packets, one write of each file per call), what ``fedsim serve
--trace --pcap`` adds to a call. It prints, per operation, the best of
``repeat`` runs of ``number`` calls, in µs per call (time.perf_counter, runs
interleaved), next to what the SIP core spends on the same call (parse the
INVITE and the ACK, build and serialize the 504), so the ratio reads the same
on any machine. Writes go to the null device: the cost of building the bytes
and of the system call, not of a disk.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from simulator.edge.recorder import Recorder
from simulator.edge.taps import TRACE_LOG, tap_for
from simulator.sip import parse_message
from simulator.trace import WireMessage, format_protocol_record
from simulator.trace.pcap import PcapWriter

EDGE = ("127.0.0.1", 5061)
PEER = ("127.0.0.1", 40123)


def _bench_sip() -> ModuleType:
    """tests/sip/bench_sip.py: the SIPp INVITE and ACK, and the Edge's 504."""
    path = Path(__file__).parents[1] / "sip" / "bench_sip.py"
    spec = importlib.util.spec_from_file_location("_bench_sip", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best(fns: list[Callable[[], object]], number: int, repeat: int) -> list[float]:
    """Best of ``repeat`` runs of ``number`` calls of each function, in µs per call."""
    best = [float("inf")] * len(fns)
    clock = time.perf_counter
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = clock()
            for _ in range(number):
                fn()
            best[i] = min(best[i], clock() - start)
    return [b / number * 1e6 for b in best]


def main(argv: list[str] | None = None) -> int:
    """Print µs per bench call."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    sip = _bench_sip()
    invite, ack = sip.SIPP_INVITE, sip.SIPP_ACK
    response = sip._respond(sip._request(invite))
    call = [
        WireMessage(time.time(), "incoming", "external", EDGE, PEER, "100", invite),
        WireMessage(time.time(), "outgoing", "external", EDGE, PEER, "100", response),
        WireMessage(time.time(), "incoming", "external", EDGE, PEER, "100", ack),
    ]
    null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    writer = PcapWriter.create(os.devnull)
    seq = iter(range(1 << 62))

    def sip_core() -> object:
        parse_message(invite)
        parse_message(ack)
        return sip._respond(sip._request(invite))

    def trace() -> object:
        for message in call:
            null.write(
                format_protocol_record(
                    message, machine="sfvedge", pid=1, tid=1, seq=next(seq),
                    correlation_id=1, instance_id=1, peer="partner.bench:40123",
                )
            )  # fmt: skip
        return None

    def pcap() -> object:
        for message in call:
            writer.write(message)
        return None

    work = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    (work / TRACE_LOG).symlink_to(os.devnull)
    recorder = Recorder(work, stderr=sys.stderr)
    recorder.start_taps(trace=True, pcap=Path(os.devnull))
    tap = tap_for(recorder.taps, "external", EDGE, PEER, "partner.bench:40123", "100")
    assert tap is not None
    assert recorder.taps is not None
    taps = recorder.taps

    def both() -> object:
        for message in call:
            tap("in" if message.direction == "incoming" else "out", message.data)
        taps.flush()
        return None

    cases: list[tuple[str, Callable[[], object]]] = [
        ("SIP core (parse INVITE+ACK, 504)", sip_core),
        ("--trace: 3 TF_PROTOCOL records", trace),
        ("--pcap: 3 messages, buffered", pcap),
        ("--trace --pcap through the Edge's taps", both),
    ]
    timings = _best([fn for _, fn in cases], args.number, args.repeat)
    width = max(len(name) for name, _ in cases)
    for (name, _), us in zip(cases, timings, strict=True):
        print(f"{name:<{width}}  {us:8.2f} us/call  ({us / timings[0]:.2f} x SIP core)")
    null.close()
    writer.close()
    recorder.close()
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
