"""One lab with every server and leg fedsim runs, for the fault tests.

``fault_lab`` starts, in the test's nursery and on loopback with free ports:

- a simulated Expressway-E (``serve_peer``) as the outbound partner of
  ``partner.lab`` (its port is written into the SRV record once bound);
- a bound, listening socket the test accepts on itself, as the outbound partner
  of ``fault.lab`` (certificate ``vcse.fault.lab``): a misbehaving partner the
  test scripts byte by byte;
- the lab (``serve_lab``): DNS (UDP and TCP), the federation port, the clients
  port and the outbound connector, with short timeouts so that a stalled peer
  costs a test about a second.

Names in the lab DNS: ``steven.lab`` (an accepted inbound partner, certificate
``vcse.steven.lab``), ``partner.lab`` (outbound, to the peer above),
``fault.lab`` (outbound, to the test's own listener), ``slow.lab`` and
``slowout.lab`` (their SRV is never answered: the Edge waits for DNS up to
``DNS_TIMEOUT``). ``host="::1"`` runs all of it on IPv6 (AAAA records).

:meth:`FaultLab.stop` stops the lab and its peer and waits until the event log
is closed, so a test can count events once nothing can be added any more.
Test modules cannot import this file (``--import-mode=importlib``): everything
comes through the fixture, and the helpers every fault test needs
(:meth:`FaultLab.all_listeners_answer`) are methods of what it returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import dnslib
import pytest
import trio

from simulator.dns.zone import ZoneSet
from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.outbound import OutboundLimits
from simulator.edge.state import Limits
from simulator.lab import Lab, load_lab_text, with_overrides
from simulator.net import InternalError
from simulator.peer import serve_peer
from simulator.pki import client_context, issue_pki, server_context
from simulator.sip import KeepAlive, Need, Response, StreamFramer, parse_message

#: Seconds the Edge waits for a silent DNS name (then 504).
DNS_TIMEOUT = 0.5
#: Seconds a connection may stay silent (or refuse to read) before the server closes it.
IDLE_TIMEOUT = 1.5
#: Upper bound on any one exchange in these tests: a hung server fails the test.
STEP = 10.0
#: Overrides that go to the outbound connector rather than to the listeners' Limits.
OUTBOUND_KEYS = ("connect_timeout", "partner_handshake_timeout", "transaction_timeout")

LAB = '''
name = "faults"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]

[dns]
silent = ["_sipfederationtls._tcp.slow.lab", "_sipfederationtls._tcp.slowout.lab"]
records = """
lab.                 300 IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300
_sipfederationtls._tcp.steven.lab.  300 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab.                    300 IN {rr} {addr}
_sipfederationtls._tcp.partner.lab. 300 IN SRV 0 0 {port} vcse.partner.lab.
vcse.partner.lab.                   300 IN {rr} {addr}
_sipfederationtls._tcp.fault.lab.   300 IN SRV 0 0 {fault_port} vcse.fault.lab.
vcse.fault.lab.                     300 IN {rr} {addr}
"""

[certs.public-root]
ca = true
public = true
cn = "fedsim Lab Public Root CA"

[certs."sip.skype.lab"]
issuer = "public-root"
cn = "sip.skype.lab"
san = ["sip.skype.lab"]

[certs."vcse.steven.lab"]
issuer = "public-root"
cn = "vcse.steven.lab"
san = ["vcse.steven.lab"]

[certs."vcse.partner.lab"]
issuer = "public-root"
cn = "vcse.partner.lab"
san = ["vcse.partner.lab"]

[certs."vcse.fault.lab"]
issuer = "public-root"
cn = "vcse.fault.lab"
san = ["vcse.fault.lab"]
'''


def lab_text(host: str, port: int, fault_port: int) -> str:
    """The lab above for listeners on ``host`` (A or AAAA records to match)."""
    rr = "AAAA" if ":" in host else "A"
    return (
        LAB.replace("{rr}", rr)
        .replace("{addr}", host)
        .replace("{fault_port}", str(fault_port))
        .replace("{port}", str(port))
    )


def _options(call: str, uri: str, sender: str, host: str) -> bytes:
    sent_by = f"[{host}]" if ":" in host else host
    return (
        f"OPTIONS {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {sent_by}:5061;branch=z9hG4bK{call}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <{sender}>;tag=abc\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def _dns_query_tcp(address: tuple[str, int], name: str) -> dnslib.DNSRecord:
    """One SRV query over TCP (blocking socket: it runs in a thread)."""
    wire = dnslib.DNSRecord.question(name, "SRV").pack()
    with socket.create_connection(address, timeout=STEP) as sock:
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        data = b""
        while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the DNS server closed the connection without an answer")
            data += chunk
    return dnslib.DNSRecord.parse(data[2:])


def _dns_query_udp(address: tuple[str, int], name: str) -> dnslib.DNSRecord | None:
    wire = dnslib.DNSRecord.question(name, "SRV").pack()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(wire, address)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
    return dnslib.DNSRecord.parse(data)


@dataclass
class FaultLab:
    """A running lab, its partners, and what each reported."""

    lab: Lab
    addresses: LabAddresses
    logs: Path
    peer: tuple[str, int]
    host: str
    #: The listening socket of ``fault.lab``'s partner: the test accepts the Edge on it.
    fault_listener: trio.socket.SocketType
    peer_reports: list[InternalError] = field(default_factory=list)
    #: (method, Call-ID) of every request the peer took off the wire.
    partner_requests: list[tuple[str, str]] = field(default_factory=list)
    #: Every name the lab DNS was asked, in order (both transports).
    questions: list[str] = field(default_factory=list)
    _stops: list[tuple[trio.CancelScope, trio.Event]] = field(default_factory=list)
    _asked: dict[str, trio.Event] = field(default_factory=dict)

    @property
    def federation(self) -> tuple[str, int]:
        return self.addresses.federation

    @property
    def clients(self) -> tuple[str, int]:
        return self.addresses.clients

    @property
    def dns(self) -> tuple[str, int]:
        return self.addresses.dns

    def path(self, name: str) -> Path:
        return self.addresses.issued[name].cert_path

    def client_context(self, name: str | None) -> ssl.SSLContext:
        """A TLS client context presenting ``name``'s certificate (None: no certificate)."""
        issued = self.addresses.issued
        return client_context(
            cert=issued[name].cert_path if name else None,
            key=issued[name].key_path if name else None,
            chain=issued[name].chain_path if name else None,
            trust=[issued["public-root"].cert_path],
        )

    def server_context(self, name: str) -> ssl.SSLContext:
        """A partner's TLS server context: ``name``'s certificate, the Edge's required."""
        issued = self.addresses.issued[name]
        return server_context(
            cert=issued.cert_path,
            key=issued.key_path,
            chain=issued.chain_path,
            trust=[self.addresses.issued["public-root"].cert_path],
            require_client_cert=True,
        )

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    def internal_errors(self) -> list[dict[str, object]]:
        return [e for e in self.events() if e.get("kind") == "internal-error"]

    def heard(self, qname: str) -> None:
        """Called by the DNS spy with every question's name."""
        self.questions.append(qname)
        event = self._asked.get(qname)
        if event is not None:
            event.set()

    async def asked(self, qname: str) -> None:
        """Wait until the lab DNS has been asked ``qname`` (the Edge is resolving it)."""
        if qname in self.questions:
            return
        event = self._asked.setdefault(qname, trio.Event())
        with trio.fail_after(STEP):
            await event.wait()

    async def stop(self) -> None:
        """Stop the lab and its peer; return once the event log is closed."""
        for scope, _ in self._stops:
            scope.cancel()
        with trio.fail_after(STEP):
            for _, done in self._stops:
                await done.wait()

    # --- every listener answers ---------------------------------------------------------

    async def sip_final(
        self, address: tuple[str, int], cert: str | None, request: bytes
    ) -> Response | None:
        """Send ``request`` on a new TLS connection; its final response (None: closed)."""
        tcp = await trio.open_tcp_stream(*address)
        tls = trio.SSLStream(tcp, self.client_context(cert), server_hostname="sip.skype.lab")
        framer = StreamFramer()
        try:
            with trio.fail_after(STEP):
                await tls.do_handshake()
                await tls.send_all(request)
                while True:
                    item = framer.next_message()
                    if isinstance(item, bytes):
                        message = parse_message(item)
                        if isinstance(message, Response) and message.status >= 200:
                            return message
                        continue
                    if item is KeepAlive.PING:
                        continue
                    assert item is Need.DATA
                    try:
                        data = await tls.receive_some(65536)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return None
                    if not data:
                        return None
                    framer.receive_data(data)
        finally:
            await trio.aclose_forcefully(tls)

    async def options_status(self, leg: Literal["federation", "clients"], call: str) -> int | None:
        """The status of an OPTIONS on a new connection to ``leg`` (a local user's)."""
        if leg == "federation":
            request = _options(call, "sip:stejanss@skype.lab", "sip:2000@steven.lab", self.host)
            final = await self.sip_final(self.federation, "vcse.steven.lab", request)
        else:
            request = _options(call, "sip:2000@partner.lab", "sip:bob@skype.lab", self.host)
            final = await self.sip_final(self.clients, None, request)
        return None if final is None else final.status

    async def dns_tcp_answers(self, name: str = "_sipfederationtls._tcp.steven.lab") -> bool:
        reply = await trio.to_thread.run_sync(_dns_query_tcp, self.dns, name)
        return bool(reply.rr)

    async def all_listeners_answer(self, tag: str) -> None:
        """The federation port, the clients port (through the partner) and the lab DNS
        (TCP and UDP) all answer."""
        assert await self.options_status("federation", f"fed-{tag}") == 200
        assert await self.options_status("clients", f"cli-{tag}") == 200
        assert await self.dns_tcp_answers(), "DNS over TCP stopped answering"
        srv = "_sipfederationtls._tcp.steven.lab"
        udp = await trio.to_thread.run_sync(_dns_query_udp, self.dns, srv)
        assert udp is not None, "DNS over UDP stopped answering"
        assert udp.rr


StartLab = Callable[..., Awaitable[FaultLab]]


async def _stoppable(
    scope: trio.CancelScope,
    done: trio.Event,
    serve: Callable[..., Awaitable[object]],
    *,
    task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with scope:
            await serve(task_status=task_status)
    finally:
        done.set()


@pytest.fixture
async def fault_lab(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartLab]:
    """``await fault_lab(host=..., **limits)``: the lab above, running.

    ``limits`` override the listeners' :class:`Limits` and, for the keys of
    :data:`OUTBOUND_KEYS` (``partner_handshake_timeout`` is the outbound
    ``handshake_timeout``) and ``idle_timeout``, the outbound connector's.
    """
    sockets: list[trio.socket.SocketType] = []

    async def start(host: str = "127.0.0.1", **overrides: float) -> FaultLab:
        certs, logs = tmp_path / "certs", tmp_path / "logs"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        fault_listener = trio.socket.socket(family, socket.SOCK_STREAM)
        sockets.append(fault_listener)
        await fault_listener.bind((host, 0))
        fault_listener.listen(16)
        fault_port = fault_listener.getsockname()[1]
        probe = load_lab_text(lab_text(host, 5061, fault_port), path=tmp_path / "lab.toml")
        issued = issue_pki(probe.certs, certs, now=dt.datetime.now(dt.UTC))
        partner = issued["vcse.partner.lab"]
        peer_reports: list[InternalError] = []
        partner_requests: list[tuple[str, str]] = []
        peer_ctx = server_context(
            cert=partner.cert_path,
            key=partner.key_path,
            chain=partner.chain_path,
            trust=[issued["public-root"].cert_path],
            require_client_cert=True,
        )
        idle = overrides.get("idle_timeout", IDLE_TIMEOUT)
        peer_stop = (trio.CancelScope(), trio.Event())
        peer = await nursery.start(
            _stoppable,
            *peer_stop,
            partial(
                serve_peer,
                host=host,
                port=0,
                ssl_context=peer_ctx,
                idle_timeout=idle,
                handshake_timeout=overrides.get("handshake_timeout", 2.0),
                on_request=lambda request, _remote: partner_requests.append(
                    (request.method, request.call_id)
                ),
                report=peer_reports.append,
            ),
        )
        lab = load_lab_text(lab_text(host, peer[1], fault_port), path=tmp_path / "lab.toml")
        here = (host, 0)
        lab = with_overrides(lab, listen=here, clients=here, dns_listen=here)
        limits = {
            "dns_timeout": DNS_TIMEOUT,
            "dns_attempts": 1,
            "handshake_timeout": 2.0,
            "idle_timeout": IDLE_TIMEOUT,
            **{k: v for k, v in overrides.items() if k not in OUTBOUND_KEYS},
        }
        lab_stop = (trio.CancelScope(), trio.Event())
        addresses = await nursery.start(
            _stoppable,
            *lab_stop,
            partial(
                serve_lab,
                lab,
                log_dir=logs,
                certs_dir=certs,
                limits=Limits(**limits),  # type: ignore[arg-type]
                outbound=OutboundLimits(
                    connect_timeout=overrides.get("connect_timeout", 2.0),
                    handshake_timeout=overrides.get("partner_handshake_timeout", 2.0),
                    transaction_timeout=overrides.get("transaction_timeout", 3.0),
                    idle_timeout=idle,
                ),
            ),
        )
        running = FaultLab(
            lab=lab,
            addresses=addresses,
            logs=logs,
            peer=peer,
            host=host,
            fault_listener=fault_listener,
            peer_reports=peer_reports,
            partner_requests=partner_requests,
            _stops=[lab_stop, peer_stop],
        )
        answer = ZoneSet.answer

        def spied(zones: ZoneSet, query: bytes, *, transport: Literal["udp", "tcp"]) -> object:
            # A query the spy cannot read is the server's business, not the spy's.
            with contextlib.suppress(Exception):
                running.heard(str(dnslib.DNSRecord.parse(query).q.qname).rstrip(".").lower())
            return answer(zones, query, transport=transport)

        # A spy, not a change: the test learns when the Edge asks (for "while it waits").
        monkeypatch.setattr(ZoneSet, "answer", spied)
        return running

    try:
        yield start
    finally:
        for sock in sockets:
            sock.close()
