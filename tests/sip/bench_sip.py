"""Micro-benchmark of the SIP core: what one INVITE -> 504 -> ACK call costs in-process.

Not a test (no ``test_`` prefix, so pytest does not collect it). Run it with

    .venv/bin/python tests/sip/bench_sip.py [--repeat 200] [--number 200]

It prints, per operation, the best of ``repeat`` runs of ``number`` calls, in µs per
call (time.perf_counter; runs of all operations interleaved). The machine is shared:
compare ratios between runs made back to back, not absolute numbers between days.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

from simulator.sip import (
    Request,
    StreamFramer,
    build_response,
    parse_message,
    serialize,
)


def _seed_invite() -> bytes:
    """The seed INVITE of tests/sip/test_response.py (3 Vias, Contact, SDP body)."""
    path = Path(__file__).with_name("test_response.py")
    spec = importlib.util.spec_from_file_location("_sip_test_response", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seed = module.SEED_INVITE
    assert isinstance(seed, bytes)
    return seed


#: What SIPp sends for simulator/bench/uac_invite_504.xml (values filled in).
_SDP = (
    b"v=0\r\no=- 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
SIPP_INVITE = (
    b"INVITE sip:service@edge.bench SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5071;branch=z9hG4bK-12345-1-0\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Bench Partner" <sip:2000@partner.bench>;tag=12345SIPpTag001\r\n'
    b"To: <sip:service@edge.bench>\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:2000@127.0.0.1:5071;transport=tls>\r\n"
    b"User-Agent: SIPp fedsim bench\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(_SDP)).encode() + b"\r\n"
    b"\r\n" + _SDP
)
SIPP_ACK = (
    b"ACK sip:service@edge.bench SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5071;branch=z9hG4bK-12345-1-0\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Bench Partner" <sip:2000@partner.bench>;tag=12345SIPpTag001\r\n'
    b"To: <sip:service@edge.bench>;tag=C65A7B0A8766A5F1D386474833D07882\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\n"
    b"CSeq: 1 ACK\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

#: What the Edge appends to the top Via (ms-federation.md §7.2).
VIA_PARAMS = (
    ("received", "127.0.0.1"),
    ("ms-received-port", "5071"),
    ("ms-received-cid", "100"),
)


def _best(fns: list[Callable[[], object]], number: int, repeat: int) -> list[float]:
    """Best of ``repeat`` runs of ``number`` calls of each function, in µs per call.

    The runs are interleaved (a, b, c, a, b, c, ...) so that every function gets
    the same share of the quiet moments of a shared, noisy machine.
    """
    best = [float("inf")] * len(fns)
    clock = time.perf_counter
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = clock()
            for _ in range(number):
                fn()
            best[i] = min(best[i], clock() - start)
    return [b / number * 1e6 for b in best]


def _request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def _respond(request: Request) -> bytes:
    response = build_response(
        request,
        504,
        to_tag="C65A7B0A8766A5F1D386474833D07882",
        via_params=VIA_PARAMS,
        headers=[("Server", "RTC/6.0")],
    )
    return serialize(response)


def _edge_reads(data: bytes) -> object:
    """Parse, then read what the Edge reads for a federated INVITE (federation.py)."""
    request = _request(data)
    return (
        request.to.tag,
        request.call_id,
        request.cseq,
        str(request.from_.uri),
        str(request.to.uri),
        request.vias[0].branch,
        request.headers.get("P-Asserted-Identity"),
    )


def _framer_one_by_one(messages: list[bytes]) -> Callable[[], object]:
    """Each message arrives in its own read (one TLS record), as SIPp sends them."""
    framer = StreamFramer()

    def run() -> object:
        out = None
        for data in messages:
            framer.receive_data(data)
            out = framer.next_message()
            framer.next_message()  # Need.DATA
        return out

    return run


def main(argv: list[str] | None = None) -> int:
    """Print µs per operation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    seed = _seed_invite()
    seed_req = _request(seed)
    sipp_req = _request(SIPP_INVITE)
    seed_framer = _framer_one_by_one([seed])
    sipp_framer = _framer_one_by_one([SIPP_INVITE, SIPP_ACK])
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("parse_message(seed INVITE)", lambda: parse_message(seed), 1),
        ("parse_message(SIPp INVITE)", lambda: parse_message(SIPP_INVITE), 1),
        ("parse_message(SIPp ACK)", lambda: parse_message(SIPP_ACK), 1),
        ("parse + Edge reads (SIPp INVITE)", lambda: _edge_reads(SIPP_INVITE), 1),
        ("parse + Edge reads (SIPp ACK)", lambda: _edge_reads(SIPP_ACK), 1),
        ("build_response(504)+serialize (seed)", lambda: _respond(seed_req), 1),
        ("build_response(504)+serialize (SIPp)", lambda: _respond(sipp_req), 1),
        ("framer per message (seed INVITE)", seed_framer, 1),
        ("framer per message (SIPp INVITE+ACK)", sipp_framer, 2),
    ]
    width = max(len(name) for name, _, _ in cases)
    timings = _best([fn for _, fn, _ in cases], args.number, args.repeat)
    for (name, _, per), us in zip(cases, timings, strict=True):
        print(f"{name:<{width}}  {us / per:8.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
