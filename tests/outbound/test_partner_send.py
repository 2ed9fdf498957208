"""A partner connection whose send fails is retired; a client hanging up never breaks one.

Found by the outbound bench: a call cancelled while its INVITE was being written
left trio's SSLStream broken but its reader still waiting, so the connection stayed
"open" and every later call to that partner failed with 1047.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from simulator.dns import Resolver
from simulator.edge.app import edge_settings
from simulator.edge.outbound import Outbound
from simulator.edge.partners import PartnerConnection
from simulator.edge.recorder import Recorder
from simulator.edge.state import EdgeState, TrustStore
from simulator.lab import builtin_lab
from simulator.net.sipstream import SipStream
from simulator.policy import PeerCertificate
from simulator.sip import Request, parse_message

OPTIONS = (
    b"OPTIONS sip:partner.test SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKsend\r\n"
    b"From: <sip:a@skype.lab>;tag=1\r\nTo: <sip:b@partner.test>\r\nCall-ID: send-1\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


class FakeStream(trio.abc.Stream):
    """A partner stream: reads wait until it is closed; sends fail or take their time."""

    def __init__(self, *, send_fails: bool = False, send_seconds: float = 0.0) -> None:
        self.send_fails = send_fails
        self.send_seconds = send_seconds
        self.sent: list[bytes] = []
        self.closed = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.send_fails:
            raise trio.BrokenResourceError("the TLS stream is broken")
        await trio.sleep(self.send_seconds)
        self.sent.append(bytes(data))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await self.closed.wait()
        raise trio.ClosedResourceError("closed")

    async def aclose(self) -> None:
        self.closed.set()
        await trio.lowlevel.checkpoint()


@pytest.fixture
def outbound(tmp_path: Path) -> Iterator[Outbound]:
    edge = EdgeState(
        settings=edge_settings(builtin_lab()),
        users={},
        resolver=Resolver(("127.0.0.1", 9)),
        trust=TrustStore(roots=[], public_roots=[], intermediates=[]),
        recorder=Recorder(tmp_path),
    )
    yield Outbound(edge, ssl.create_default_context())
    edge.recorder.close()


def _connect(outbound: Outbound, stream: FakeStream, nursery: trio.Nursery) -> PartnerConnection:
    """What Partners.get does once a handshake succeeded: register, start the reader."""
    conn = PartnerConnection(
        key=("vcse.partner.test", 5061),
        address="127.0.0.1",
        sip=SipStream(stream),
        peer=PeerCertificate(
            display_name="vcse.partner.test",
            names=("vcse.partner.test",),
            chain="trusted",
            public_root=True,
        ),
        local=("127.0.0.1", 40000),
    )
    outbound.partners.connections[conn.key] = conn
    nursery.start_soon(outbound.partners._read, conn)
    return conn


def _request() -> Request:
    request = parse_message(OPTIONS)
    assert isinstance(request, Request)
    return request


async def test_a_failed_send_retires_the_connection(outbound: Outbound) -> None:
    stream = FakeStream(send_fails=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(outbound.run)
        conn = _connect(outbound, stream, nursery)
        with pytest.raises(trio.BrokenResourceError):
            await outbound.partners.send(conn, _request())
        # Out of use at once: the next call to this partner connects afresh...
        assert conn.closed
        assert conn.key not in outbound.partners.connections
        # ...and the stream is closed, so its reader ends and reports pending calls.
        with trio.fail_after(5):
            await stream.closed.wait()
        nursery.cancel_scope.cancel()


async def test_a_caller_cancelled_mid_send_does_not_cut_the_send(outbound: Outbound) -> None:
    stream = FakeStream(send_seconds=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(outbound.run)
        conn = _connect(outbound, stream, nursery)
        with trio.move_on_after(0.05):  # the client hung up while its INVITE was written
            await outbound.partners.send(conn, _request())
        assert stream.sent == [OPTIONS]  # the message went out whole
        assert not conn.closed
        assert outbound.partners.connections[conn.key] is conn
        nursery.cancel_scope.cancel()


async def test_a_send_the_partner_never_takes_retires_the_connection(
    outbound: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("simulator.edge.partners.PARTNER_SEND_TIMEOUT", 0.1)
    stream = FakeStream(send_seconds=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(outbound.run)
        conn = _connect(outbound, stream, nursery)
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            await outbound.partners.send(conn, _request())
        assert conn.closed
        assert isinstance(conn.failure, trio.TooSlowError)
        nursery.cancel_scope.cancel()
