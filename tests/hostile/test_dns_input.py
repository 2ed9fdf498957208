"""Hostile DNS packets against the lab's DNS server: FORMERR or silence, never a crash.

Covered in tests/dns/test_server.py (not repeated): short and junk datagrams,
TCP length prefixes above the limit or promising more than arrives, idle TCP.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
import trio

from simulator.dns.server import serve_dns
from simulator.dns.zone import ZoneSet, parse_zone_text

ZONE = """\
$ORIGIN steven.lab.
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 30
ns      A 127.0.0.1
vcse    A 127.0.0.2
vcse    AAAA ::2
_sipfederationtls._tcp SRV 0 0 5061 vcse
"""
BIG = "".join(f'big.steven.lab. 300 TXT "{"x" * 200} {i}"\n' for i in range(60))
ZONES = ZoneSet.from_records(parse_zone_text(ZONE + BIG, source="hostile.zone"))


@pytest.fixture
async def server(nursery: trio.Nursery) -> tuple[str, int]:
    address: tuple[str, int] = await nursery.start(serve_dns, ZONES, "127.0.0.1", 0)
    return address


def header(qid: int, *, qdcount: int = 1, arcount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0000, qdcount, 0, 0, arcount)


QUESTION = b"\x04vcse\x06steven\x03lab\x00" + struct.pack("!HH", 1, 1)


async def udp_ask(address: tuple[str, int], payload: bytes, wait: float = 1.0) -> bytes | None:
    """One datagram; the reply, or None when the server stays silent for ``wait`` seconds."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.connect(address)
        await sock.send(payload)
        with trio.move_on_after(wait):
            return await sock.recv(65535)
    return None


async def assert_still_answers(address: tuple[str, int]) -> None:
    """A plain A query is answered (retried as a resolver would: UDP may drop under a flood)."""
    query = dns.message.make_query("vcse.steven.lab.", "A")
    for _ in range(10):
        reply = await udp_ask(address, query.to_wire(), wait=1.0)
        if reply is not None:
            break
    assert reply is not None
    answer = dns.message.from_wire(reply)
    assert answer.id == query.id
    assert answer.rcode() == dns.rcode.NOERROR
    assert [r.to_text() for rrset in answer.answer for r in rrset] == ["127.0.0.2"]


def _rcode_or_silence(reply: bytes | None, qid: int) -> int | None:
    if reply is None:
        return None
    assert reply[:2] == struct.pack("!H", qid)
    return reply[3] & 0x0F


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(header(1) + b"\xc0\x0c" + struct.pack("!HH", 1, 1), id="pointer-to-itself"),
        pytest.param(
            header(1) + b"\xc0\x0e\xc0\x0c" + struct.pack("!HH", 1, 1), id="two-pointer-loop"
        ),
        pytest.param(header(1) + b"\x01a\xc0\x0c" + struct.pack("!HH", 1, 1), id="label-then-loop"),
        pytest.param(header(1) + b"\xc0\xff" + struct.pack("!HH", 1, 1), id="pointer-past-end"),
        pytest.param(header(1) + b"\x3fabc", id="label-longer-than-packet"),
        pytest.param(header(1) + b"\x40abc\x00\x00\x01\x00\x01", id="reserved-label-type"),
    ],
)
async def test_compression_loops_and_bad_names(server: tuple[str, int], payload: bytes) -> None:
    rcode = _rcode_or_silence(await udp_ask(server, payload), 1)
    assert rcode == dns.rcode.FORMERR
    await assert_still_answers(server)


async def test_many_questions_in_one_query(server: tuple[str, int]) -> None:
    payload = header(7, qdcount=200) + QUESTION * 200
    rcode = _rcode_or_silence(await udp_ask(server, payload), 7)
    assert rcode == dns.rcode.FORMERR  # RFC 9619: QDCOUNT must be 1
    await assert_still_answers(server)


async def test_question_count_that_lies(server: tuple[str, int]) -> None:
    payload = header(8, qdcount=65535) + QUESTION
    rcode = _rcode_or_silence(await udp_ask(server, payload), 8)
    assert rcode == dns.rcode.FORMERR
    await assert_still_answers(server)


async def test_any_query_is_answered_within_udp_size(server: tuple[str, int]) -> None:
    query = dns.message.make_query("big.steven.lab.", dns.rdatatype.ANY)
    reply = await udp_ask(server, query.to_wire())
    assert reply is not None
    assert len(reply) <= 512  # no EDNS: RFC 1035 §4.2.1, truncated with TC if needed
    answer = dns.message.from_wire(reply, ignore_trailing=True)
    assert answer.id == query.id
    await assert_still_answers(server)


@pytest.mark.parametrize("payload_size", [512, 4096, 65535])
async def test_huge_edns_sizes_are_bounded(server: tuple[str, int], payload_size: int) -> None:
    query = dns.message.make_query("big.steven.lab.", "TXT", use_edns=0, payload=payload_size)
    reply = await udp_ask(server, query.to_wire())
    assert reply is not None
    assert len(reply) <= min(payload_size, 65507)
    answer = dns.message.from_wire(reply)
    assert answer.id == query.id
    assert answer.rcode() == dns.rcode.NOERROR
    await assert_still_answers(server)


async def test_edns_version_we_do_not_speak(server: tuple[str, int]) -> None:
    query = dns.message.make_query("vcse.steven.lab.", "A", use_edns=1)
    reply = await udp_ask(server, query.to_wire())
    assert reply is not None
    answer = dns.message.from_wire(reply)
    assert answer.rcode() in (dns.rcode.BADVERS, dns.rcode.FORMERR, dns.rcode.NOERROR)
    await assert_still_answers(server)


async def test_tcp_prefix_shorter_than_the_query(server: tuple[str, int]) -> None:
    """The prefix says 10 bytes; the rest of the query becomes the next 'query': junk."""
    wire = dns.message.make_query("vcse.steven.lab.", "A").to_wire()
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*server)
        async with stream:
            await stream.send_all(b"\x00\x0a" + wire)
            received = b""
            while chunk := await stream.receive_some(65536):
                received += chunk
                if len(received) > 1 << 16:
                    break
    await assert_still_answers(server)


async def test_bounded_udp_flood_then_still_answers(server: tuple[str, int]) -> None:
    """5,000 datagrams (good, junk, loops) from one socket that never reads its replies."""
    good = dns.message.make_query("_sipfederationtls._tcp.steven.lab.", "SRV").to_wire()
    junk = [good, b"\x01", header(9) + b"\xc0\x0c\x00\x01\x00\x01", good[:14], b"\xff" * 600]
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock, trio.fail_after(60):
        await sock.connect(server)
        for i in range(5000):
            await sock.send(junk[i % len(junk)])
    await assert_still_answers(server)
