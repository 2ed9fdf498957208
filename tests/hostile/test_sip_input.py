"""Hostile SIP over real mutual TLS: the Edge answers or closes, and always keeps serving.

Each probe is followed by an OPTIONS "sentinel" on the same connection: its
200 proves the Edge stayed in sync after the probe; a close or a wait is the
other possible outcome, and each is only allowed where RFC 3261 §18.3 says so.

Covered elsewhere (not repeated): RFC 4475 verdicts through the pure parser
(tests/sip/test_rfc4475.py), hypothesis damage through the parser alone
(tests/sip/test_invariants.py), 1-byte TLS records and five pipelined OPTIONS
(tests/edge/test_connection.py).
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.fuzz.sip import SEEDS, check, mutate
from simulator.sip import FramingError, MessageTooLarge, Need, Request, StreamFramer

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "rfc4475"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _index() -> dict[str, str]:
    """file -> "valid", "invalid", or "valid-400" (valid, but the RFC lets a UAS answer 400:
    unksm2, whose To is not a SIP AOR)."""
    with (CORPUS / "index.tsv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {
        row["file"]: row["verdict"] + ("-400" if "400" in row["rfc_expected_behaviour"] else "")
        for row in rows
    }


def _on_a_stream(data: bytes) -> str:
    """What RFC 3261 §18.3 framing makes of ``data``: "complete", "incomplete" (a header
    block without its blank line, or a body owed: baddn and clerr as published, dblreq's
    second message) or "framing-error" (no or conflicting Content-Length: ncl, mcl01)."""
    framer = StreamFramer()
    framer.receive_data(data)
    while True:
        try:
            item = framer.next_message()
        except FramingError:
            return "framing-error"
        if item is Need.DATA:
            return "incomplete" if framer.in_message else "complete"


class Prober:
    """Sends probes with a sentinel, reconnecting when a probe costs the connection."""

    def __init__(self, edge: Any, sip: Any, wait: float = 3.0) -> None:
        self.edge, self.sip, self.wait = edge, sip, wait
        self.client: Any = None
        self.count = 0

    async def probe(self, data: bytes) -> tuple[list[int], str]:
        """Return (statuses answered before the sentinel, "answered" | "closed" | "waiting")."""
        if self.client is None:
            self.client = await self.edge.connect()
        self.count += 1
        sentinel = f"sentinel-{self.count}"
        await self.client.send(data + self.sip.request("OPTIONS", sentinel))
        statuses: list[int] = []
        outcome = "waiting"
        with trio.move_on_after(self.wait):
            while True:
                item = await self.client.receive()
                if item is None:
                    outcome = "closed"
                    break
                if not isinstance(item, Request):
                    if item.call_id == sentinel:
                        # Not 200: the probe's bytes ran into the sentinel (a lying length).
                        outcome = "answered" if item.status == 200 else "desynced"
                        break
                    statuses.append(item.status)
        if outcome != "answered":
            await self.client.aclose()
            self.client = None
        return statuses, outcome


def _judge(name: str, verdict: str, data: bytes, statuses: list[int], outcome: str) -> None:
    framing = _on_a_stream(data)
    if framing == "complete":
        assert outcome == "answered", (name, outcome)
    elif framing == "framing-error":
        assert outcome == "closed", (name, outcome)
    if framing != "complete":
        return  # inv2543 is valid on a datagram only; on a stream it has no Content-Length
    if verdict == "valid":
        assert 400 not in statuses, (name, statuses)
    else:
        assert all(status >= 400 for status in statuses), (name, statuses)


def _no_internal_errors(edge: Any) -> None:
    errors = [e for e in edge.events() if e.get("kind") == "internal-error"]
    assert errors == []


# --- RFC 4475 over mutual TLS ---------------------------------------------------------


async def test_every_rfc4475_message_on_its_own_connection(edge: Any, sip: Any) -> None:
    outcomes = {}
    for name, verdict in sorted(_index().items()):
        data = (CORPUS / name).read_bytes()
        prober = Prober(edge, sip)
        statuses, outcome = await prober.probe(data)
        _judge(name, verdict, data, statuses, outcome)
        outcomes[name] = outcome
        if prober.client is not None:
            await prober.client.aclose()
    # Framing lost (no or bad Content-Length on a stream): the Edge closes; clerr: it waits.
    assert outcomes["clerr.dat"] == "waiting"
    assert {n for n, o in outcomes.items() if o == "closed"} >= {"ncl.dat", "mcl01.dat"}
    _no_internal_errors(edge)
    await edge.still_serves()


async def test_every_rfc4475_message_on_one_connection(edge: Any, sip: Any) -> None:
    """Back to back on one connection (a new one only after the Edge closed or waits)."""
    prober = Prober(edge, sip)
    connections = 1
    for name, verdict in sorted(_index().items()):
        data = (CORPUS / name).read_bytes()
        statuses, outcome = await prober.probe(data)
        _judge(name, verdict, data, statuses, outcome)
        connections += outcome != "answered"
    assert connections < len(_index()) // 4  # almost everything shared one connection
    _no_internal_errors(edge)
    await edge.still_serves()


# --- random damage ----------------------------------------------------------------------


@FUZZ
@given(seed=st.sampled_from(SEEDS), rng=st.randoms(use_true_random=False))
def test_mutated_messages_through_the_whole_byte_path(seed: bytes, rng: random.Random) -> None:
    """Framer, parser, the fields the Edge reads and the answers it builds (h11's rule)."""
    check(mutate(seed, rng))


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_through_the_whole_byte_path(data: bytes) -> None:
    check(data)


async def test_mutated_invites_on_the_wire_never_cost_more_than_their_connection(
    edge: Any, sip: Any
) -> None:
    rng = random.Random(4475)
    prober = Prober(edge, sip, wait=1.0)
    outcomes: dict[str, int] = {}
    for i in range(120):
        data = mutate(sip.invite(f"mut{i}"), rng)
        _, outcome = await prober.probe(data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("answered", 0) > 60, outcomes
    _no_internal_errors(edge)
    await edge.still_serves()


# --- sizes --------------------------------------------------------------------------------


COMPACT = (
    b"OPTIONS sip:a@skype.lab SIP/2.0\r\nv: SIP/2.0/TLS h;branch=z9hG4bK1\r\ni: big\r\n"
    b"CSeq: 1 OPTIONS\r\nf: <sip:a@steven.lab>;tag=1\r\nt: <sip:b@skype.lab>\r\n"
)


async def test_oversize_header_block_gets_513_then_close(edge: Any) -> None:
    client = await edge.connect()
    await client.send(COMPACT + b"X-Pad: " + b"a" * 40_000 + b"\r\n\r\n")
    reply = await client.answer()
    assert (reply.call_id, reply.status) == ("big", 513)
    assert await client.closed()
    await edge.still_serves()


async def test_oversize_header_block_without_echo_lines_up_front_is_closed(
    edge: Any, sip: Any
) -> None:
    """Only the first 200 bytes of an oversize block are kept: no CSeq there, no 513."""
    client = await edge.connect()
    await client.send(sip.request("OPTIONS", "big", extra="X-Pad: " + "a" * 40_000 + "\r\n"))
    assert await client.closed()
    await edge.still_serves()


async def test_oversize_body_gets_413_before_the_body_is_read(edge: Any, sip: Any) -> None:
    client = await edge.connect()
    head = sip.request("MESSAGE", "bigbody").replace(
        b"Content-Length: 0", b"Content-Length: 10000000"
    )
    await client.send(head + b"x" * 1000)
    reply = await client.answer()
    assert reply.status == 413
    assert await client.closed()
    await edge.still_serves()


async def test_endless_header_block_is_cut_without_buffering_it(edge: Any) -> None:
    """A peer streaming header bytes forever: closed at the limit, the rest never buffered."""
    client = await edge.connect()
    chunk = b"X-Junk: " + b"j" * 8000 + b"\r\n"

    async def flood() -> None:
        try:
            await client.send(b"OPTIONS sip:a@skype.lab SIP/2.0\r\n")
            for _ in range(256):  # 2 MB, far past the 32 KiB limit
                await client.send(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(flood)
        assert await client.closed()  # no answer: there is no Via to echo
    await edge.still_serves()


@pytest.mark.parametrize("limit", [StreamFramer.DEFAULT_MAX_HEADER_BYTES, 4096])
def test_framer_memory_is_bounded_by_its_limit(limit: int) -> None:
    framer = StreamFramer(max_header_bytes=limit)
    error: MessageTooLarge | None = None
    for _ in range(160):  # 10 MB in 64 KiB reads
        try:
            framer.receive_data(b"A" * 65536)
            assert framer.buffered <= limit + 65536
            framer.next_message()
        except MessageTooLarge as exc:
            error = exc
            break
    assert error is not None
    assert error.status_hint == 513
    assert framer.buffered == 0  # dead and empty: nothing more is kept


async def test_header_with_10000_parameters(edge: Any, sip: Any) -> None:
    params = "".join(f";p{i}" for i in range(10_000))[:30_000]
    prober = Prober(edge, sip, wait=10.0)
    statuses, outcome = await prober.probe(
        sip.request("OPTIONS", "params", extra=f"X-Params: a{params}\r\n")
    )
    assert (statuses, outcome) == ([200], "answered")
    via = sip.request("OPTIONS", "viaparams").replace(b";branch=", b";a;b;c" * 4000 + b";branch=")
    statuses, outcome = await prober.probe(via)
    assert outcome == "answered"
    assert statuses in ([200], [400])


async def test_deeply_repeated_via_is_echoed_in_order(edge: Any, sip: Any) -> None:
    vias = "".join(
        f"Via: SIP/2.0/TLS 10.0.{i // 250}.{i % 250}:5061;branch=z9hG4bKv{i}\r\n"
        for i in range(600)
    )
    client = await edge.connect()
    data = sip.request("OPTIONS", "vias").replace(b"Max-Forwards", vias.encode() + b"Max-Forwards")
    await client.send(data)
    reply = await client.response()
    assert reply.status == 200
    assert len(reply.vias) == 601
    assert reply.vias[-1].branch == "z9hG4bKv599"


# --- bytes that are not text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "old", "new"),
    [
        ("call-id", b"Call-ID: nul", b"Call-ID: n\x00ul"),
        ("request-uri", b"OPTIONS sip:stejanss", b"OPTIONS sip:ste\x00janss"),
        ("unknown header", b"Max-Forwards", b"X-Nul: a\x00b\r\nMax-Forwards"),
        ("from display name", b"From: <", b'From: "\xff\xfe\xc3\x28" <'),
        (
            "unknown header utf-8",
            b"Max-Forwards",
            b"X-Bytes: \xc3\x28\xa0\xa1\xf0\x28\r\nMax-Forwards",
        ),
        ("to uri", b"To: <sip:stejanss", b"To: <sip:st\xe9janss"),
        ("method", b"OPTIONS sip:", b"OPT\xffIONS sip:"),
    ],
)
async def test_nul_and_invalid_utf8(
    edge: Any, sip: Any, where: str, old: bytes, new: bytes
) -> None:
    data = sip.request("OPTIONS", "nul")
    assert old in data, where
    prober = Prober(edge, sip)
    statuses, outcome = await prober.probe(data.replace(old, new, 1))
    assert outcome == "answered", where
    assert len(statuses) <= 1
    _no_internal_errors(edge)


async def test_malformed_p_asserted_identity_gets_400_and_the_connection_keeps_serving(
    edge: Any, sip: Any
) -> None:
    """PAI is parsed when the Edge decides, after the message parsed: still a 400."""
    prober = Prober(edge, sip)
    data = sip.request("INVITE", "badpai", extra="P-Asserted-Identity: <sip:2000@steven.lab\r\n")
    assert await prober.probe(data) == ([400], "answered")
    _no_internal_errors(edge)


async def test_non_ascii_sdp_offer_still_gets_a_final_answer(edge: Any, sip: Any) -> None:
    data = sip.invite("sdpbytes")
    bad = data.replace(
        b"m=audio 30000 RTP/AVP 8 0\r\n",
        b"m=audio 30000 RTP/AVP 8 0\r\nm=video 3227 RTPO\x9b`\xa2[/AVP 31\r\n",
    )
    head, _, body = bad.partition(b"\r\n\r\n")
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head)
    prober = Prober(edge, sip)
    statuses, outcome = await prober.probe(head + b"\r\n\r\n" + body)
    # An SDP the Skype user cannot read is refused as a client refuses it (52063).
    assert (statuses, outcome) == ([100, 488], "answered")


# --- stream shapes --------------------------------------------------------------------------


async def test_pipelined_good_bad_response_good_each_in_order(edge: Any, sip: Any) -> None:
    bad = sip.request("OPTIONS", "pbad").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
    stray = b"SIP/2.0 200 OK\r\n" + sip.request("NOTIFY", "stray").split(b"\r\n", 1)[1]
    client = await edge.connect()
    await client.send(sip.request("OPTIONS", "p1") + bad + stray + sip.request("OPTIONS", "p2"))
    replies = [await client.answer() for _ in range(3)]
    assert [(r.call_id, r.status) for r in replies] == [("p1", 200), ("pbad", 400), ("p2", 200)]


async def test_a_response_sent_to_the_edge_is_dropped(edge: Any, sip: Any) -> None:
    stray = b"SIP/2.0 180 Ringing\r\n" + sip.request("INVITE", "stray").split(b"\r\n", 1)[1]
    prober = Prober(edge, sip)
    assert await prober.probe(stray) == ([], "answered")
    assert [e for e in edge.events() if e.get("call_id") == "stray"] == []


async def test_crlf_flood_is_answered_with_pongs_and_the_request_after_it_is_served(
    edge: Any, sip: Any
) -> None:
    client = await edge.connect()
    flood = b"\r\n" * 100_000  # 200 kB: 50,000 RFC 5626 pings

    async def send() -> None:
        await client.send(flood + sip.request("OPTIONS", "afterflood"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)  # concurrently: the pongs must be read while we send
        reply = await client.response()
    assert (reply.call_id, reply.status) == ("afterflood", 200)
    await edge.still_serves()
