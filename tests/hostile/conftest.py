"""Hostile-input fixtures: an in-process Edge (seed lab, loopback, port 0) and raw clients.

Test modules cannot import this file (``--import-mode=importlib``), so the
helpers come as fixtures: ``start_edge(**limits)`` runs ``serve_lab`` in the
test's nursery and returns a :class:`HostileEdge`, whose methods open mutual
TLS (or raw TCP) to it and build requests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.state import Limits
from simulator.lab import Lab, builtin_lab, with_overrides
from simulator.pki import client_context
from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    parse_message,
)

LOOPBACK = ("127.0.0.1", 0)
#: Upper bound for any single exchange; a hung Edge fails the test instead of hanging it.
STEP = 10.0


def request(method: str, call: str, *, extra: str = "", domain: str = "steven.lab") -> bytes:
    """An out-of-dialog request from a partner the seed lab accepts (steven.lab)."""
    return (
        f"{method} sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{method.lower()}{call}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:2000@{domain}>;tag=abc\r\n"
        f"To: <sip:stejanss@skype.lab>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def invite(call: str, *, domain: str = "steven.lab") -> bytes:
    """A valid INVITE with an SDP offer (the base of the mutation tests)."""
    body = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 8 0\r\n"
    )
    head = (
        f"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call}\r\n"
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


@dataclass(frozen=True)
class RawResponse:
    """A response the Edge sent that fedsim's strict parser refuses (an echoed bad header)."""

    status: int
    call_id: str
    raw: bytes


def _raw_response(data: bytes) -> RawResponse:
    start = re.match(rb"SIP/2\.0 (\d{3}) ", data)
    assert start is not None, f"the Edge sent something that is not a response: {data[:200]!r}"
    call = re.search(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*(.*?)\r$", data)
    return RawResponse(
        status=int(start[1]), call_id=call[1].decode("latin-1") if call else "", raw=data
    )


@dataclass
class Client:
    """One mutual-TLS connection to the Edge with a SIP framer on the receive side."""

    stream: trio.SSLStream[trio.SocketStream]
    framer: StreamFramer = field(default_factory=lambda: StreamFramer(max_body_bytes=1 << 20))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive(self) -> Response | Request | RawResponse | None:
        """The next SIP message (pongs are skipped); None once the Edge closed."""
        with trio.fail_after(STEP):
            while True:
                item = self.framer.next_message()
                if isinstance(item, bytes):
                    try:
                        return parse_message(item)
                    except SipParseError:
                        return _raw_response(item)
                if item is KeepAlive.PING:
                    continue
                assert item is Need.DATA
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                if not data:
                    return None
                self.framer.receive_data(bytes(data))

    async def response(self) -> Response:
        """The next message, which must be a response fedsim's parser accepts."""
        item = await self.receive()
        assert isinstance(item, Response), item
        return item

    async def answer(self) -> Response | RawResponse:
        """The next message, which must be a response (parsable or not)."""
        item = await self.receive()
        assert isinstance(item, Response | RawResponse), item
        return item

    async def closed(self) -> bool:
        """True when the Edge closes the connection (after any messages still queued)."""
        while True:
            item = await self.receive()
            if item is None:
                return True

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


@dataclass
class HostileEdge:
    """A running seed-lab Edge and the files it writes."""

    lab: Lab
    addresses: LabAddresses
    logs: Path
    clients: list[Client] = field(default_factory=list)

    @property
    def federation(self) -> tuple[str, int]:
        return self.addresses.federation

    def cert(self, name: str) -> Path:
        return self.addresses.issued[name].cert_path

    def context(self, name: str | None = "vcse.steven.lab") -> ssl.SSLContext:
        """A client context presenting ``name``'s certificate (None: no certificate)."""
        issued = self.addresses.issued
        return client_context(
            cert=issued[name].cert_path if name else None,
            key=issued[name].key_path if name else None,
            chain=issued[name].chain_path if name else None,
            trust=[issued["public-root"].cert_path],
        )

    async def connect(
        self, name: str | None = "vcse.steven.lab", *, ctx: ssl.SSLContext | None = None
    ) -> Client:
        """Mutual TLS as ``name`` (the seed's good partner by default), handshake done."""
        tcp = await trio.open_tcp_stream(*self.federation)
        tls = trio.SSLStream(tcp, ctx or self.context(name), server_hostname="sip.skype.lab")
        client = Client(stream=tls)
        self.clients.append(client)
        with trio.fail_after(STEP):
            await tls.do_handshake()
        return client

    async def raw(self) -> trio.SocketStream:
        """A plain TCP connection to the federation port (no TLS at all)."""
        return await trio.open_tcp_stream(*self.federation)

    async def still_serves(self) -> None:
        """A fresh good partner connection still gets 200 to OPTIONS."""
        client = await self.connect()
        await client.send(request("OPTIONS", "alive"))
        assert (await client.response()).status == 200
        await client.aclose()

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    def edge_log(self) -> str:
        path = self.logs / "edge.log"
        return path.read_text("utf-8") if path.exists() else ""


StartEdge = Callable[..., Awaitable[HostileEdge]]


@pytest.fixture
async def start_edge(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StartEdge]:
    """``await start_edge(lab=None, logs=None, console=None, **limits)``: a running Edge."""
    started: list[HostileEdge] = []

    async def start(
        lab: Lab | None = None,
        logs: Path | None = None,
        console: Callable[[str], None] | None = None,
        **limits: float,
    ) -> HostileEdge:
        chosen = with_overrides(
            lab or builtin_lab(), listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK
        )
        # The probes come fast from steven.lab, a discovered partner: lift its 20
        # messages/s (reference §5.2), which would answer them 503.
        rules = dataclasses.replace(chosen.edge.rules, discovered_rate=1_000_000)
        chosen = dataclasses.replace(chosen, edge=dataclasses.replace(chosen.edge, rules=rules))
        log_dir = logs or tmp_path / f"logs{len(started)}"
        addresses: LabAddresses = await nursery.start(
            lambda task_status: serve_lab(
                chosen,
                log_dir=log_dir,
                certs_dir=tmp_path / "certs",
                console=console,
                limits=Limits(**limits),  # type: ignore[arg-type]
                task_status=task_status,
            )
        )
        edge = HostileEdge(lab=chosen, addresses=addresses, logs=log_dir)
        started.append(edge)
        return edge

    yield start
    for edge in started:
        for client in edge.clients:
            await client.aclose()


@pytest.fixture
async def edge(start_edge: StartEdge) -> HostileEdge:
    """The seed lab with short timeouts (DNS 0.3 s x1, handshake 1 s)."""
    return await start_edge(dns_timeout=0.3, dns_attempts=1, handshake_timeout=1.0)


def reset_socket(sock: socket.socket) -> None:
    """Arrange for close() to send a TCP RST (SO_LINGER 0): an abrupt reset."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.fixture
def abort() -> Callable[[trio.SocketStream], None]:
    """``abort(tcp)``: make closing ``tcp`` a TCP reset."""

    def run(stream: trio.SocketStream) -> None:
        reset_socket(stream.socket)  # type: ignore[arg-type]

    return run


@dataclass(frozen=True)
class Builders:
    """The request builders above, for test modules (which cannot import this file)."""

    request: Callable[..., bytes]
    invite: Callable[..., bytes]


@pytest.fixture
def sip() -> Builders:
    """``sip.request(method, call_id, extra=...)`` and ``sip.invite(call_id)``."""
    return Builders(request=request, invite=invite)
