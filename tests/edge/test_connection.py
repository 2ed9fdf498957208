"""One federation connection, byte by byte: keep-alives, bad requests, pipelining,
SUBSCRIBE/NOTIFY and CANCEL, seen from a raw mutual-TLS client."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trio

from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.state import Limits
from simulator.lab import Lab, builtin_lab, with_overrides
from simulator.lab.model import SipTimers
from simulator.pki import client_context
from simulator.sip import KeepAlive, Need, Request, Response, StreamFramer, parse_message

LOOPBACK = ("127.0.0.1", 0)


def invite(call: str, *, domain: str = "steven.lab", branch: str = "z9hG4bKraw1") -> bytes:
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    body += b"m=audio 30000 RTP/AVP 8 0\r\n"
    head = (
        f"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch={branch}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:2000@{domain}>;tag=abc\r\n"
        f"To: <sip:stejanss@skype.lab>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 7 INVITE\r\n"
        f"Contact: <sip:2000@127.0.0.1:5061;transport=tls>\r\n"
        f"Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def simple(method: str, call: str, *, extra: str = "", to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{method.lower()}{call}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:2000@steven.lab>;tag=abc\r\n"
        f"To: <sip:stejanss@skype.lab>{tag}\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


@dataclass
class Client:
    stream: trio.SSLStream[trio.SocketStream]
    framer: StreamFramer

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self) -> Response | Request | KeepAlive | bytes:
        """The next message, or b"" when the Edge closed the connection."""
        with trio.fail_after(5):
            while True:
                item = self.framer.next_message()
                if isinstance(item, bytes):
                    return parse_message(item)
                if item is KeepAlive.PING:
                    return item
                assert item is Need.DATA
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return b""
                if not data:
                    return b""
                self.framer.receive_data(bytes(data))

    async def response(self) -> Response:
        item = await self.receive()
        assert isinstance(item, Response), item
        return item


@dataclass
class Edge:
    addresses: LabAddresses
    clients: list[Client]

    async def connect(self) -> Client:
        peer = self.addresses.issued["vcse.steven.lab"]
        ctx = client_context(
            cert=peer.cert_path,
            key=peer.key_path,
            trust=[self.addresses.issued["public-root"].cert_path],
        )
        tcp = await trio.open_tcp_stream(*self.addresses.federation)
        tls = trio.SSLStream(tcp, ctx, server_hostname="sip.skype.lab")
        client = Client(stream=tls, framer=StreamFramer())
        self.clients.append(client)
        await tls.do_handshake()
        return client


async def start_edge(
    nursery: trio.Nursery, tmp_path: Path, limits: Limits, lab: Lab | None = None
) -> LabAddresses:
    """The built-in lab's Edge (or ``lab``'s) on free loopback ports, with ``limits``."""
    lab = with_overrides(
        lab or builtin_lab(), listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK
    )
    addresses: LabAddresses = await nursery.start(
        lambda task_status: serve_lab(
            lab,
            log_dir=tmp_path / "logs",
            certs_dir=tmp_path / "certs",
            limits=limits,
            task_status=task_status,
        )
    )
    return addresses


@pytest.fixture
async def edge(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Edge]:
    addresses = await start_edge(nursery, tmp_path, Limits(ring_seconds=0.5))
    running = Edge(addresses=addresses, clients=[])
    yield running
    for client in running.clients:
        await trio.aclose_forcefully(client.stream)


async def test_keepalive_ping_gets_pong_and_connection_keeps_serving(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(b"\r\n\r\n")  # RFC 5626 §3.5.1 ping
    with trio.fail_after(5):
        assert await client.stream.receive_some(100) == b"\r\n"  # pong
    await client.send(simple("OPTIONS", "ka1"))
    assert (await client.response()).status == 200


async def test_malformed_request_gets_400_and_connection_keeps_serving(edge: Edge) -> None:
    client = await edge.connect()
    bad = simple("OPTIONS", "bad1").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    await client.send(bad)
    reply = await client.response()
    assert reply.status == 400
    assert reply.call_id == "bad1"
    await client.send(simple("OPTIONS", "good1"))
    assert (await client.response()).status == 200


async def test_wrong_version_gets_505(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(simple("OPTIONS", "v7").replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1))
    assert (await client.response()).status == 505


async def test_pipelined_requests_each_get_their_answer(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(b"".join(simple("OPTIONS", f"p{i}") for i in range(5)))
    calls = [(await client.response()).call_id for _ in range(5)]
    assert calls == [f"p{i}" for i in range(5)]


async def test_one_byte_at_a_time(edge: Edge) -> None:
    client = await edge.connect()
    for byte in simple("OPTIONS", "slow"):
        await client.send(bytes([byte]))
    assert (await client.response()).status == 200


async def test_framing_error_closes_the_connection(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(simple("OPTIONS", "neg").replace(b"Content-Length: 0", b"Content-Length: -5"))
    first = await client.receive()
    if isinstance(first, Response):
        assert first.status == 400
        first = await client.receive()
    assert first == b""  # closed: RFC 4475 §3.1.2.3, framing cannot be recovered


async def test_subscribe_gets_200_then_a_notify_with_the_pidf(edge: Edge) -> None:
    client = await edge.connect()
    extra = "Event: presence\r\nExpires: 600\r\nContact: <sip:2000@127.0.0.1;transport=tls>\r\n"
    await client.send(simple("SUBSCRIBE", "sub1", extra=extra))
    accepted = await client.response()
    assert accepted.status == 200
    assert accepted.headers.get("Expires") == "600"
    notify = await client.receive()
    assert isinstance(notify, Request)
    assert notify.method == "NOTIFY"
    assert notify.call_id == "sub1"
    assert notify.headers.get("Subscription-State") == "active;expires=600"
    assert notify.headers.get("Content-Type") == "application/pidf+xml"
    assert b"<basic>open</basic>" in notify.body
    assert notify.from_.tag == accepted.to.tag
    assert notify.headers.get("Server") is None  # a request names its sender in User-Agent


async def test_cancel_while_ringing_gets_200_and_487(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(invite("c1", branch="z9hG4bKcancel1"))
    assert (await client.response()).status == 100
    ringing = await client.response()
    assert ringing.status == 180
    cancel = (
        b"CANCEL sip:stejanss@skype.lab SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKcancel1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:2000@steven.lab>;tag=abc\r\n"
        b"To: <sip:stejanss@skype.lab>\r\nCall-ID: c1\r\nCSeq: 7 CANCEL\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    await client.send(cancel)
    statuses = {(await client.response()).status for _ in range(2)}
    assert statuses == {200, 487}


async def test_bye_outside_any_dialog_gets_481(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(simple("BYE", "nodialog", to_tag="DEADBEEF"))
    assert (await client.response()).status == 481


async def test_unanswered_ring_becomes_200_with_sdp_answer(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(invite("ring1"))
    assert (await client.response()).status == 100
    assert (await client.response()).status == 180
    ok = await client.response()
    assert ok.status == 200
    # stejanss's site supports plain RTP: the offer's codecs, in its order
    assert b" RTP/AVP 8 0\r\n" in ok.body


async def _record(client: Client) -> bytes:
    """The plaintext of the next TLS record the Edge sent (one SSL_read)."""
    with trio.fail_after(5):
        return bytes(await client.stream.receive_some(65536))


def _events(edge: Edge) -> list[str]:
    path = edge.addresses.log_dir / "events.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


async def test_a_pipelined_burst_is_answered_in_one_write_after_its_events(edge: Edge) -> None:
    client = await edge.connect()
    await client.send(b"".join(simple("OPTIONS", f"burst{i}") for i in range(5)))
    record = await _record(client)
    # Five answers in one TLS record: one write for the burst, not one per request...
    assert record.count(b"SIP/2.0 200 OK\r\n") == 5
    # ...and their five events were on disk before it left.
    calls = [line for line in _events(edge) if '"call_id":"burst' in line]
    assert len(calls) == 5


async def test_a_burst_does_not_hold_earlier_answers_across_a_dns_query(edge: Edge) -> None:
    client = await edge.connect()
    bad = simple("OPTIONS", "bad1").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
    # The OPTIONS needs the SRV of steven.lab, not cached yet: the 400 goes first.
    await client.send(bad + simple("OPTIONS", "after-dns"))
    first = await _record(client)
    assert first.startswith(b"SIP/2.0 400 ")
    assert first.count(b"SIP/2.0 ") == 1
    second = await _record(client)
    assert second.startswith(b"SIP/2.0 200 OK\r\n")
    assert b"Call-ID: after-dns\r\n" in second
    # Now the answer is cached: the same burst leaves in one write.
    await client.send(bad + simple("OPTIONS", "cached"))
    both = await _record(client)
    assert both.count(b"SIP/2.0 ") == 2
    assert b"Call-ID: cached\r\n" in both


async def test_a_busy_connection_outlives_the_idle_timeout_and_a_silent_one_is_closed(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    addresses = await start_edge(nursery, tmp_path, Limits(idle_timeout=0.4))
    client = await Edge(addresses=addresses, clients=[]).connect()
    try:
        started = trio.current_time()
        for n in range(8):  # 1.2 s of traffic, three times the idle timeout
            await trio.sleep(0.15)
            await client.send(simple("OPTIONS", f"busy{n}"))
            assert (await client.response()).status == 200
        assert trio.current_time() - started > 1.0
        silent = trio.current_time()
        assert await client.receive() == b""  # closed for idling...
        assert 0.3 < trio.current_time() - silent < 3  # ...after about the timeout
    finally:
        await trio.aclose_forcefully(client.stream)


async def test_a_peer_that_never_reads_its_answers_is_closed_at_the_idle_timeout(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    addresses = await start_edge(nursery, tmp_path, Limits(idle_timeout=0.5))
    peer = addresses.issued["vcse.steven.lab"]
    ctx = client_context(
        cert=peer.cert_path, key=peer.key_path, trust=[addresses.issued["public-root"].cert_path]
    )
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers pile up fast
    await sock.connect(addresses.federation)
    tls = trio.SSLStream(trio.SocketStream(sock), ctx, server_hostname="sip.skype.lab")
    await tls.do_handshake()
    burst = b"".join(simple("OPTIONS", f"deaf{n}") for n in range(50))
    started = trio.current_time()
    with trio.fail_after(30):
        try:
            while True:  # the Edge blocks sending answers, then stops reading us
                await tls.send_all(burst)
        except trio.BrokenResourceError:
            pass
    # Closed: once the Edge's sends blocked, the idle deadline ended the connection.
    assert trio.current_time() - started < 20
    await trio.aclose_forcefully(tls)


async def test_a_200_never_acked_is_retransmitted_then_the_user_hangs_up(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """RFC 3261 §13.3.1.4 on the wire: the 200 again and again, then BYE at 64*T1."""
    seed = builtin_lab()
    fast = replace(seed, edge=replace(seed.edge, timers=SipTimers(t1=0.02, t2=0.16)))
    edge = Edge(addresses=await start_edge(nursery, tmp_path, Limits(), fast), clients=[])
    client = await edge.connect()
    await client.send(invite("noack"))
    assert [(await client.response()).status for _ in range(3)] == [100, 180, 200]
    again = 0
    while isinstance(message := await client.receive(), Response):
        assert message.status == 200  # the same 200, retransmitted
        again += 1
    assert isinstance(message, Request)
    assert message.method == "BYE"
    assert message.call_id == "noack"
    # T1 doubling to T2 within 64*T1: ten of them, unless the machine was late for the last
    assert 1 <= again <= 10
    reply = (
        b"SIP/2.0 200 OK\r\n"
        + b"".join(
            f"{k}: {v}\r\n".encode()
            for k, v in message.headers
            if k in ("Via", "From", "To", "Call-ID", "CSeq")
        )
        + b"Content-Length: 0\r\n\r\n"
    )
    await client.send(reply)
    await client.send(simple("OPTIONS", "after"))  # the connection still serves
    assert (await client.response()).status == 200
    ended = [json.loads(line) for line in _events(edge) if '"kind":"call-ended"' in line]
    assert [(e["call_id"], e["cause"], e["retransmissions"]) for e in ended] == [
        ("noack", "no-ack", again)
    ]
    await trio.aclose_forcefully(client.stream)
