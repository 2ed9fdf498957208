"""The federation side of the Edge: mutual TLS on 5061, one loop per connection.

Every out-of-dialog request goes through the same steps as on a real Access
Edge (reference §2.2): the peer's certificate facts are taken once per
connection, the callback SRV of the request's domain is resolved (cached per
TTL), :func:`simulator.policy.decide_inbound` decides, and the answer is either
the emulated Skype user's or the bare ``504 Server time-out`` of the seeds,
with the Edge log record and the JSON event written before the reply leaves.

This module only gathers facts and carries bytes; every decision is pure code
in :mod:`simulator.policy`, every string comes from :mod:`simulator.diagnostics`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import socket
import ssl
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeVar

import trio
from cryptography import x509

from simulator.diagnostics import (
    RESULT_CODES,
    EdgeLogRecord,
    EdgeLogTemplate,
    EventTemplate,
    LogContext,
    decision_event,
    edge_log_stamp,
    format_edge_log,
    json_string,
)
from simulator.dns import Resolver, SrvAnswer
from simulator.edge.events import EventLog
from simulator.edge.replies import error_response_for
from simulator.edge.sdp import build_answer
from simulator.edge.tls import TlsStream
from simulator.net import InternalError, detach_socket, serve_guarded
from simulator.pki import facts_from_der, verify_chain
from simulator.policy import (
    ALLOW,
    Decision,
    EdgeSettings,
    InboundRoute,
    Parties,
    PeerCertificate,
    Rejection,
    SrvLookup,
    SrvTarget,
    decide_inbound,
    inbound_route,
    screen_inbound,
    user_answer,
)
from simulator.sip import (
    FramingError,
    Headers,
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    build_response,
    parse_message,
    parse_name_addr,
    serialize,
)

#: The Edge record's "pid.tid": this process, and the thread that runs trio.
PID = os.getpid() & 0xFFFF
TID = threading.get_native_id() & 0xFFFF

K = TypeVar("K")
V = TypeVar("V")

#: How many INVITE transactions and dialogs we remember for CANCEL/BYE matching.
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Timeouts and sizes of the federation listener; every one is a setting.

    ``max_connections`` bounds the whole listener and ``max_connections_per_peer``
    one source IP (an Expressway-E cluster node needs a handful; a runaway or
    hostile peer must not take every slot). Beyond either, a new connection is
    reset before its handshake and existing ones keep working.
    """

    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    max_connections: int = 1000
    max_connections_per_peer: int = 100
    max_header_bytes: int = StreamFramer.DEFAULT_MAX_HEADER_BYTES
    max_body_bytes: int = StreamFramer.DEFAULT_MAX_BODY_BYTES
    ring_seconds: float = 0.0
    dns_timeout: float = 2.0
    dns_attempts: int = 2

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_connections_per_peer"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1")
        for name in ("handshake_timeout", "idle_timeout", "dns_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be > 0")


@dataclass(slots=True)
class TrustStore:
    """The CAs the Edge trusts, plus every lab CA for path building (Python 3.11 cannot
    show us the peer's intermediates)."""

    roots: list[x509.Certificate]
    public_roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]


@dataclass(slots=True)
class Edge:
    """Everything an Edge connection needs, shared by all connections."""

    settings: EdgeSettings
    users: Mapping[str, int]
    resolver: Resolver
    trust: TrustStore
    events: EventLog
    machine: str = "sfvedge"
    limits: Limits = field(default_factory=Limits)
    rng: random.Random = field(default_factory=random.Random)
    connections: int = 0
    #: Open connections per source IP (entries are removed when they reach 0).
    per_peer: dict[str, int] = field(default_factory=dict)
    connection_counter: int = 0
    record_seq: int = 0
    _stamp_second: int = -1
    _stamp_prefixes: tuple[str, str] = ("", "")
    requests: int = 0
    internal_errors: int = 0
    dialogs: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict)
    srv_lookups: OrderedDict[SrvAnswer, SrvLookup] = field(default_factory=OrderedDict)
    #: Per SRV name, a lookup that cannot change until (trio time, resolver generation).
    last_srv: dict[str, tuple[SrvLookup, float, int]] = field(default_factory=dict)
    uri_texts: dict[object, str] = field(default_factory=dict)
    routes: OrderedDict[Parties, InboundRoute] = field(default_factory=OrderedDict)
    invites: OrderedDict[tuple[str, str], tuple[str, trio.Event]] = field(
        default_factory=OrderedDict
    )

    #: Out-of-dialog requests on the clients port whose event is not written yet (ids).
    open_requests: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        # The log's shutdown summary compares requests with events (issue 8).
        self.events.request_counter = lambda: self.requests

    def recorded(self, request: object) -> None:
        """Note that ``request``'s event is written (see clients._handle_request)."""
        self.open_requests.discard(id(request))

    def report_internal(self, fault: InternalError) -> None:
        """Record a fedsim bug reached by one connection (the guard contained it)."""
        self.internal_errors += 1
        self.events.internal_error(fault)

    def log_record(
        self,
        record: EdgeLogRecord,
        *,
        when: dt.datetime,
        start_line: str,
        call_id: str,
        cseq: str,
        peer: str,
    ) -> str:
        """Format one Edge log record with this Edge's machine, pid.tid and sequence."""
        ctx = LogContext(
            machine=self.machine,
            pid=PID,
            tid=TID,
            when=when,
            seq=self.next_record_seq(),
            correlation_id=self.rng.getrandbits(32),
            start_line=start_line,
            call_id=call_id,
            cseq=cseq,
            peer=peer,
        )
        return format_edge_log(record, ctx)

    def next_record_seq(self) -> int:
        """The next Edge record's sequence number (8 hex digits, so it wraps at 2**32)."""
        self.record_seq = (self.record_seq + 1) & 0xFFFFFFFF
        return self.record_seq

    def stamps(self) -> tuple[str, str]:
        """Now, as the Edge record prints it and as ISO 8601 to the millisecond (UTC).

        Formatting a time costs more than the rest of an event: the date and time are
        formatted once per second, and each request only adds its milliseconds.
        """
        ms = time.time_ns() // 1_000_000
        second, milli = divmod(ms, 1000)
        if second != self._stamp_second:
            when = dt.datetime.fromtimestamp(second, dt.UTC)
            self._stamp_second = second
            self._stamp_prefixes = (edge_log_stamp(when)[:-4], when.isoformat()[:19])
        record, iso = self._stamp_prefixes
        return f"{record}.{milli:03d}", f"{iso}.{milli:03d}+00:00"

    def uri_text(self, uri: object) -> str:
        """``str(uri)``, remembered: the same partner URIs come back on every call."""
        try:
            return self.uri_texts[uri]
        except KeyError:
            text = str(uri)
            if len(self.uri_texts) >= MAX_REMEMBERED:
                self.uri_texts.clear()
            self.uri_texts[uri] = text
            return text
        except TypeError:  # an unhashable URI value: render it every time
            return str(uri)

    def new_tag(self) -> str:
        """A To tag as the Edge writes them: 32 upper-case hex digits (reference §7.1)."""
        return f"{self.rng.getrandbits(128):032X}"

    @staticmethod
    def remember(table: OrderedDict[K, V], key: K, value: V) -> None:
        """Store ``value`` as the newest entry, forgetting the oldest beyond MAX_REMEMBERED."""
        table[key] = value
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED:
            table.popitem(last=False)


#: Decisions remembered per connection (one per domain and SRV answer).
MAX_VERDICTS = 256


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy decision with what is logged for it, cached per connection."""

    decision: Decision
    event: EventTemplate
    #: The Edge record of the decision on this connection (None when nothing is logged).
    record: EdgeLogTemplate | None


@dataclass(slots=True)
class Connection:
    """One accepted federation connection."""

    stream: TlsStream
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int
    cid: str
    peer: PeerCertificate
    log: EventLog
    verdicts: dict[tuple[int, int], tuple[InboundRoute, SrvLookup | None, Verdict]] = field(
        default_factory=dict
    )
    #: While a burst of pipelined requests is answered, replies wait here and leave
    #: together in one TLS write (one syscall instead of one per request).
    corked: bool = False
    pending: list[bytes] = field(default_factory=list)
    #: What the Edge adds to the top Via of every request it answers (reference §7.2).
    via_params: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self.via_params = (
            ("received", self.peer_ip),
            ("ms-received-port", str(self.peer_port)),
            ("ms-received-cid", self.cid),
        )

    async def send(self, data: bytes) -> None:
        """Send ``data`` once the logs are flushed; while corked, queue it instead."""
        if self.corked:
            self.pending.append(data)
            return
        self.log.flush()  # the event is on disk before its reply leaves
        # TlsStream orders concurrent writers (a ringing or NOTIFY task) itself.
        await self.stream.send_all(data)

    async def uncork(self) -> None:
        """End a burst: flush the logs, then send the queued replies in one write."""
        self.corked = False
        self.log.flush()
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            await self.stream.send_all(data)

    async def release_burst(self) -> None:
        """Send what the burst has answered so far, and go on holding what follows."""
        if self.pending:
            await self.uncork()
            self.corked = True


def peer_certificate(
    der: bytes,
    trust: TrustStore,
    *,
    now: dt.datetime,
    usage: Literal["client", "server"] = "client",
) -> PeerCertificate:
    """Turn a peer's DER certificate into the policy's facts (once per connection).

    ``usage`` is the role the certificate plays: "client" for a partner calling in,
    "server" for a partner the Edge calls out to.
    """
    facts = facts_from_der(der)
    leaf = x509.load_der_x509_certificate(der)
    verdict = verify_chain(
        leaf,
        trust.intermediates,
        trust.roots,
        now=now,
        public_roots=trust.public_roots,
        usage=usage,
    )
    return PeerCertificate(
        display_name=facts.display_name(),
        names=facts.names_for_matching(),
        chain=verdict.status,
        public_root=verdict.root_is_public,
    )


async def serve_federation(
    edge: Edge,
    ssl_context: ssl.SSLContext,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the federation port (mutual TLS) until cancelled; report (host, port) bound."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))
    await serve_guarded(
        partial(handle_connection, edge, ssl_context),
        listeners,
        server="federation",
        report=edge.report_internal,
    )


async def handle_connection(
    edge: Edge, ssl_context: ssl.SSLContext, stream: trio.SocketStream
) -> None:
    """Handshake, then serve requests on one connection until it closes or idles out."""
    try:
        peer_addr = stream.socket.getpeername()
        local_addr = stream.socket.getsockname()
    except OSError:
        await stream.aclose()
        return
    peer_ip, peer_port = str(peer_addr[0]), int(peer_addr[1])
    over = None
    if edge.connections >= edge.limits.max_connections:
        over = "connection limit reached"
    elif edge.per_peer.get(peer_ip, 0) >= edge.limits.max_connections_per_peer:
        over = "per-peer connection limit reached"
    if over is not None:
        # Over a limit: refuse cleanly (a reset, no handshake work spent on it);
        # existing connections keep working.
        _reset(stream)
        await trio.aclose_forcefully(stream)
        _record_tls_failure(edge, peer_ip, peer_port, over)
        return
    edge.connections += 1
    edge.per_peer[peer_ip] = edge.per_peer.get(peer_ip, 0) + 1
    edge.connection_counter += 1
    # ms-received-cid: the seeds show "100" and "6DA00", i.e. a connection number
    # followed by "00" in hex (inferred from two samples).
    cid = f"{edge.connection_counter * 0x100:X}"
    # The TLS stream owns the socket from here (see tls.py for why not trio.SSLStream).
    tls = TlsStream(detach_socket(stream), ssl_context)
    try:
        try:
            with trio.fail_after(edge.limits.handshake_timeout):
                await tls.do_handshake()
        except trio.TooSlowError:
            _record_tls_failure(edge, peer_ip, peer_port, "TLS handshake timed out")
            tls.abort()
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            _record_tls_failure(edge, peer_ip, peer_port, _tls_reason(exc))
            _reset(tls.socket)
            tls.abort()
            return
        der = tls.getpeercert(binary_form=True)
        if not der:
            _record_tls_failure(edge, peer_ip, peer_port, "no client certificate")
            await trio.aclose_forcefully(tls)
            return
        conn = Connection(
            stream=tls,
            peer_ip=peer_ip,
            peer_port=peer_port,
            local_ip=str(local_addr[0]),
            local_port=int(local_addr[1]),
            cid=cid,
            peer=peer_certificate(der, edge.trust, now=dt.datetime.now(dt.UTC)),
            log=edge.events,
        )
        async with trio.open_nursery() as nursery:
            await _serve_requests(edge, conn, nursery)
            nursery.cancel_scope.cancel()
    finally:
        edge.connections -= 1
        left = edge.per_peer.get(peer_ip, 1) - 1
        if left > 0:
            edge.per_peer[peer_ip] = left
        else:
            edge.per_peer.pop(peer_ip, None)
        await _close(tls)


async def _close(tls: TlsStream) -> None:
    """Close with a TLS close_notify when the peer is still there, never hang on it."""
    with trio.move_on_after(1) as scope:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await tls.aclose()
    if scope.cancelled_caught:
        await trio.aclose_forcefully(tls)


def _reset(stream: trio.SocketStream | socket.socket) -> None:
    """Make the close a TCP reset, as Microsoft's Edge does when it refuses a peer's
    certificate: the peer sees WSAECONNRESET, not a TLS alert (reference §6, risual:
    1047 with WinsockFailureCode 10054)."""
    with contextlib.suppress(OSError):
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _tls_reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return str(cause or exc) or type(exc).__name__


async def _serve_requests(edge: Edge, conn: Connection, nursery: trio.Nursery) -> None:
    """Serve until the peer closes, idles out or breaks the connection."""
    # The peer went away (reset, or no close_notify): nothing left to answer.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await _request_loop(edge, conn, nursery)


async def _request_loop(edge: Edge, conn: Connection, nursery: trio.Nursery) -> None:
    """Serve until the peer closes or stays silent for ``idle_timeout`` seconds.

    One cancel scope serves the whole connection: its deadline is pushed back before
    a read only once it has drifted by a sixteenth of the timeout, since entering a
    scope (or moving a deadline) per read costs more than parsing an ACK. A request
    being answered has at least 15/16 of the timeout; a peer that stops reading our
    replies (so that sending blocks) is closed at the deadline like a silent one.
    """
    framer = StreamFramer(
        max_header_bytes=edge.limits.max_header_bytes,
        max_body_bytes=edge.limits.max_body_bytes,
    )
    timeout = edge.limits.idle_timeout
    with trio.CancelScope(deadline=trio.current_time() + timeout) as idle:
        await _serve_messages(edge, conn, nursery, framer, idle)
        # The last burst's replies (a framing error ends the loop), within the deadline:
        # a peer that stopped reading cannot hold the connection open.
        await conn.uncork()


async def _serve_messages(
    edge: Edge,
    conn: Connection,
    nursery: trio.Nursery,
    framer: StreamFramer,
    idle: trio.CancelScope,
) -> None:
    timeout = edge.limits.idle_timeout
    slack = timeout / 16
    while True:
        try:
            item = framer.next_message()
        except FramingError as exc:
            # RFC 4475 ncl/mcl01: framing is lost; answer if we can, then close.
            await _answer_unparsable(edge, conn, exc)
            return
        if item is Need.DATA:
            # Everything received so far is answered: out it goes before we wait.
            await conn.uncork()
            due = trio.current_time() + timeout
            if due - idle.deadline > slack:
                idle.deadline = due
            data = await conn.stream.receive_some(65536)
            if not data:
                return
            framer.receive_data(bytes(data))
            conn.corked = True
            continue
        if item is KeepAlive.PING:
            await conn.send(b"\r\n")  # RFC 5626 §3.5.1 pong
            continue
        assert isinstance(item, bytes)
        if item.startswith(b"ACK "):
            # An ACK ends a transaction (RFC 3261 §17.2.1) or confirms a dialog we
            # keep no state for; nothing is ever answered or logged for it, so it is
            # not parsed either (a third of the per-call cost of a refused INVITE).
            continue
        try:
            message = parse_message(item)
        except SipParseError as exc:
            await _answer_unparsable(edge, conn, exc, raw=item)
            continue
        if isinstance(message, Response):
            continue  # answers to our NOTIFYs, or strays: a UAS drops them
        try:
            await _handle_request(edge, conn, message, nursery)
        except SipParseError as exc:
            # A header the parser keeps as raw text (P-Asserted-Identity, Contact) is
            # read later and can still be malformed: 400, as for any unparsable request.
            await _answer_unparsable(edge, conn, exc, raw=item)


async def _answer_unparsable(
    edge: Edge, conn: Connection, exc: SipParseError, raw: bytes | None = None
) -> None:
    data = raw if raw is not None else exc.offending
    reply = error_response_for(
        data, exc.status_hint, server=edge.settings.server_header, to_tag=edge.new_tag()
    )
    edge.events.write(
        {
            "time": _now_iso(),
            "direction": "inbound",
            "kind": "malformed",
            "peer": f"{conn.peer.display_name}:{conn.peer_port}",
            "status": exc.status_hint if reply is not None else None,
            "error": str(exc),
        },
        flush=False,  # flushed by conn.send, or by the uncork before the next read
    )
    if reply is not None:
        await conn.send(reply)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _respond(
    edge: Edge,
    conn: Connection,
    request: Request,
    status: int,
    *,
    to_tag: str | None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """Serialize a response with the Edge's Via additions (reference §7.2)."""
    response = build_response(
        request,
        status,
        to_tag=to_tag,
        headers=headers,
        body=body,
        via_params=conn.via_params,
    )
    return serialize(response)


async def _handle_request(
    edge: Edge, conn: Connection, request: Request, nursery: trio.Nursery
) -> None:
    method = request.method
    to_tag = request.to.tag
    server = ("Server", edge.settings.server_header)
    if method == "ACK":
        return  # ACK to our 2xx (dialog confirmed) or to our error (transaction done)
    if method == "CANCEL":
        await _handle_cancel(edge, conn, request)
        return
    if to_tag is not None:
        await _handle_in_dialog(edge, conn, request, to_tag)
        return
    # Every request counted here gets exactly one event line (the shutdown summary
    # and the soak compare the two).
    edge.requests += 1
    parties = screen_inbound(request, edge.settings)
    if isinstance(parties, Rejection):
        _record_rejected(edge, conn, request, parties)
        await conn.send(
            _respond(edge, conn, request, parties.status, to_tag=edge.new_tag(), headers=[server])
        )
        return
    try:
        verdict, from_text, to_text = await _decide(edge, conn, request, parties)
    except trio.Cancelled:
        # Shutdown (or the connection's end) caught the request mid-lookup: it still
        # gets its event line, so events never fall behind accepted requests.
        _record_unanswered(edge, conn, request, "the Edge stopped before deciding")
        raise
    decision = verdict.decision
    tag = edge.new_tag()
    final = decision.status if not decision.accepted else user_status(edge, request)
    _record_decision(edge, request, verdict, final, from_text, to_text)
    if not decision.accepted:
        await conn.send(
            _respond(edge, conn, request, decision.status, to_tag=tag, headers=decision.headers)
        )
        return
    await _answer_as_user(edge, conn, request, tag, nursery)


async def _decide(
    edge: Edge, conn: Connection, request: Request, parties: Parties
) -> tuple[Verdict, str, str]:
    """Route the request, resolve its SRV and let the policy decide (cached).

    The decision is a pure function of (route, peer certificate, SRV answer,
    settings): the route of a caller is remembered per Edge, and on one connection
    (one peer certificate) the same route with the same SRV answer always gets the
    same decision, computed with its event template once. Returns the verdict with
    the From and To URIs as text (for the event).
    """
    from_text = edge.uri_text(request.from_.uri)
    to_text = edge.uri_text(request.to.uri)
    route = edge.routes.get(parties)
    if route is None:
        route = inbound_route(parties, edge.settings)
        edge.remember(edge.routes, parties, route)
    name = route.srv_name
    srv: SrvLookup | None = None
    if name is not None:
        srv = _fresh_srv(edge, name)
    if name is not None and srv is None:
        # A real query may take the DNS timeout: the burst's earlier replies go first.
        answer = await edge.resolver.srv(name, before_query=conn.release_burst)
        srv = edge.srv_lookups.get(answer)
        if srv is None:
            srv = SrvLookup(
                name=name,
                outcome=answer.outcome,
                targets=tuple(
                    SrvTarget(
                        target=t.target.rstrip("."),
                        port=t.port,
                        priority=t.priority,
                        weight=t.weight,
                    )
                    for t in answer.targets
                ),
            )
            edge.remember(edge.srv_lookups, answer, srv)
        if len(answer.targets) <= 1 and answer.ttl > 0 and edge.resolver.cache:
            # One target or none: the order cannot change while the resolver holds the
            # answer, so the lookup is the same until then (answer.ttl is rounded down).
            if len(edge.last_srv) >= MAX_REMEMBERED:
                edge.last_srv.clear()
            until = trio.current_time() + answer.ttl
            edge.last_srv[name] = (srv, until, edge.resolver.generation)
    # Keyed by the lookup's identity (the entry keeps it alive, so the id stays its
    # own): SrvLookup's generated hash walks every target.
    entry = conn.verdicts.get((id(route), id(srv)))
    verdict = entry[2] if entry is not None and entry[0] is route and entry[1] is srv else None
    if verdict is None:
        decision = decide_inbound(route, conn.peer, srv, edge.settings)
        template = EventTemplate(_event_template(conn, decision, srv), EVENT_FIELDS)
        assert template.fields == EVENT_FIELDS, template.fields  # _record_decision's order
        record = None
        if decision.edge_log is not None:
            record = EdgeLogTemplate(
                decision.edge_log,
                machine=edge.machine,
                pid=PID,
                tid=TID,
                peer=f"{conn.peer.display_name}:{conn.peer_port}",
            )
        verdict = Verdict(decision=decision, event=template, record=record)
        if len(conn.verdicts) >= MAX_VERDICTS:
            conn.verdicts.clear()
        conn.verdicts[(id(route), id(srv))] = (route, srv, verdict)
    return verdict, from_text, to_text


def _fresh_srv(edge: Edge, name: str) -> SrvLookup | None:
    """The SRV lookup of ``name`` while the resolver's cached answer still holds."""
    last = edge.last_srv.get(name)
    if last is None:
        return None
    srv, until, generation = last
    if trio.current_time() < until and generation == edge.resolver.generation:
        return srv
    del edge.last_srv[name]
    return None


#: The fields of an inbound decision's event that change from request to request.
EVENT_FIELDS = ("time", "call_id", "method", "from", "to", "status")


def _event_template(
    conn: Connection, decision: Decision, srv: SrvLookup | None
) -> dict[str, object]:
    """The events.jsonl object of ``decision`` on ``conn``, request fields left blank."""
    return decision_event(
        decision,
        time="",
        direction="inbound",
        call_id="",
        method="",
        from_uri="",
        to_uri="",
        peer=f"{conn.peer.display_name}:{conn.peer_port}",
        extra={
            "peer_address": f"{conn.peer_ip}:{conn.peer_port}",
            "cert_names": list(conn.peer.names),
            "chain": conn.peer.chain,
            "srv": None
            if srv is None
            else {
                "name": srv.name,
                "outcome": srv.outcome,
                "targets": [f"{t.target}:{t.port}" for t in srv.targets],
            },
        },
    )


def _record_rejected(edge: Edge, conn: Connection, request: Request, rejection: Rejection) -> None:
    """The event of a request refused before policy (its URIs cannot be routed)."""
    edge.events.write(
        {
            "time": _now_iso(),
            "direction": "inbound",
            "kind": "rejected",
            "call_id": request.call_id,
            "method": request.method,
            "peer": f"{conn.peer.display_name}:{conn.peer_port}",
            "rule": rejection.rule,
            "status": rejection.status,
            "reason": rejection.why,
            "fidelity": rejection.fidelity,
        },
        flush=False,  # conn.send flushes it before the reply leaves
    )


def user_status(edge: Edge, request: Request) -> int:
    """The final status the emulated Skype user answers an accepted request with."""
    to = request.to.uri
    host = getattr(to, "host", "")
    user = getattr(to, "user", None)
    return user_answer(request.method, str(host), user, edge.settings, edge.users)


def _record_decision(
    edge: Edge, request: Request, verdict: Verdict, final: int, from_uri: str, to_uri: str
) -> None:
    decision = verdict.decision
    record_text: str | None = None
    stamp, iso = edge.stamps()
    if verdict.record is not None:
        cseq = request.cseq
        record_text = verdict.record.render(
            stamp=stamp,
            seq=edge.next_record_seq(),
            correlation_id=edge.rng.getrandbits(32),
            start_line=request.start_line,
            call_id=request.call_id,
            cseq=f"{cseq[0]} {cseq[1]}",
        )
    # The decision's status is the Edge's; an accepted request is then answered by
    # the user (486, 404...): the event says what went on the wire. In EVENT_FIELDS order:
    event = verdict.event.render_encoded(
        (
            f'"{iso}"',
            json_string(request.call_id),
            json_string(request.method),
            json_string(from_uri),
            json_string(to_uri),
            str(final),
        )
    )
    # Held until the connection's next send or uncork, which flushes before the reply.
    edge.events.write(event, record_text, flush=False)
    if edge.events.wants_decisions:  # formatting the line costs: only when shown
        edge.events.say(
            f"{iso[11:19]} inbound  {request.method} {from_uri} -> {to_uri}"
            f"  {decision.rule}  {final}"
        )


async def _answer_as_user(
    edge: Edge, conn: Connection, request: Request, tag: str, nursery: trio.Nursery
) -> None:
    """Answer an accepted request as the called Skype user would."""
    server = ("Server", edge.settings.server_header)
    user = getattr(request.to.uri, "user", None)
    status = user_status(edge, request)
    if status == 404:
        await conn.send(_respond(edge, conn, request, 404, to_tag=tag, headers=[server]))
        return
    method = request.method
    contact = ("Contact", _contact(conn, user))
    if method == "INVITE":
        if status >= 300:
            await conn.send(_respond(edge, conn, request, status, to_tag=tag, headers=[server]))
            return
        branch = request.vias[0].branch or ""
        cancelled = trio.Event()
        edge.remember(edge.invites, (request.call_id, branch), (tag, cancelled))
        await conn.send(_respond(edge, conn, request, 180, to_tag=tag, headers=[contact, server]))
        if edge.limits.ring_seconds > 0:
            nursery.start_soon(_ring_then_answer, edge, conn, request, tag, cancelled)
            return
        await _final_200(edge, conn, request, tag)
        return
    if method == "OPTIONS":
        headers = [
            ("Allow", ALLOW),
            ("Accept", "application/sdp"),
            ("Supported", "replaces"),
            server,
        ]
        await conn.send(_respond(edge, conn, request, 200, to_tag=tag, headers=headers))
        return
    if method == "MESSAGE":
        await conn.send(_respond(edge, conn, request, status, to_tag=tag, headers=[server]))
        return
    if method == "SUBSCRIBE":
        await _handle_subscribe(edge, conn, request, tag, status)
        return
    await conn.send(
        _respond(edge, conn, request, 501, to_tag=tag, headers=[("Allow", ALLOW), server])
    )


def _contact(conn: Connection, user: str | None) -> str:
    """Our Contact: the address this connection reached, so a UA's ACK/BYE come back here."""
    host = f"[{conn.local_ip}]" if ":" in conn.local_ip else conn.local_ip
    return f"<sip:{user or 'user'}@{host}:{conn.local_port};transport=tls>"


async def _ring_then_answer(
    edge: Edge, conn: Connection, request: Request, tag: str, cancelled: trio.Event
) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await _ring(edge, conn, request, tag, cancelled)


async def _ring(
    edge: Edge, conn: Connection, request: Request, tag: str, cancelled: trio.Event
) -> None:
    with trio.move_on_after(edge.limits.ring_seconds):
        await cancelled.wait()
    if cancelled.is_set():
        server = ("Server", edge.settings.server_header)
        await conn.send(_respond(edge, conn, request, 487, to_tag=tag, headers=[server]))
        return
    await _final_200(edge, conn, request, tag)


async def _final_200(edge: Edge, conn: Connection, request: Request, tag: str) -> None:
    branch = request.vias[0].branch or ""
    entry = edge.invites.get((request.call_id, branch))
    if entry is not None and entry[1].is_set():
        return
    edge.invites.pop((request.call_id, branch), None)
    user = getattr(request.to.uri, "user", None) or "user"
    sdp = build_answer(request.body, address=conn.local_ip, session_id=edge.rng.getrandbits(31))
    headers = [
        ("Contact", _contact(conn, user)),
        ("Content-Type", "application/sdp"),
        ("Server", edge.settings.server_header),
    ]
    edge.remember(edge.dialogs, (request.call_id, tag), "confirmed")
    await conn.send(_respond(edge, conn, request, 200, to_tag=tag, headers=headers, body=sdp))


async def _handle_cancel(edge: Edge, conn: Connection, request: Request) -> None:
    """RFC 3261 §9.2: 200 to a CANCEL that matches a pending INVITE (which gets 487), else 481."""
    server = ("Server", edge.settings.server_header)
    branch = request.vias[0].branch or ""
    entry = edge.invites.pop((request.call_id, branch), None)
    if entry is None:
        await conn.send(_respond(edge, conn, request, 481, to_tag=edge.new_tag(), headers=[server]))
        return
    tag, cancelled = entry
    await conn.send(_respond(edge, conn, request, 200, to_tag=tag, headers=[server]))
    cancelled.set()


async def _handle_in_dialog(edge: Edge, conn: Connection, request: Request, to_tag: str) -> None:
    server = ("Server", edge.settings.server_header)
    key = (request.call_id, to_tag)
    if key not in edge.dialogs:
        await conn.send(_respond(edge, conn, request, 481, to_tag=None, headers=[server]))
        return
    if request.method == "BYE":
        del edge.dialogs[key]
        await conn.send(_respond(edge, conn, request, 200, to_tag=None, headers=[server]))
        return
    if request.method == "INVITE":
        sdp = build_answer(request.body, address=conn.local_ip, session_id=edge.rng.getrandbits(31))
        headers = [("Content-Type", "application/sdp"), server]
        await conn.send(_respond(edge, conn, request, 200, to_tag=None, headers=headers, body=sdp))
        return
    await conn.send(_respond(edge, conn, request, 200, to_tag=None, headers=[server]))


async def _handle_subscribe(
    edge: Edge, conn: Connection, request: Request, tag: str, status: int
) -> None:
    """SUBSCRIBE: 202 Accepted, then the initial NOTIFY (RFC 6665 §4.2.1)."""
    server = ("Server", edge.settings.server_header)
    if status >= 300:
        await conn.send(_respond(edge, conn, request, status, to_tag=tag, headers=[server]))
        return
    expires = request.headers.get("Expires") or "3600"
    event = request.headers.get("Event") or "presence"
    user = getattr(request.to.uri, "user", None) or "user"
    contact = _contact(conn, user)
    await conn.send(
        _respond(
            edge,
            conn,
            request,
            202,
            to_tag=tag,
            headers=[("Expires", expires.strip()), ("Contact", contact), server],
        )
    )
    edge.remember(edge.dialogs, (request.call_id, tag), "subscription")
    target = request.headers.get("Contact")
    notify_uri = str(parse_name_addr(target).uri) if target else str(request.from_.uri)
    to_header = request.headers.get("From") or ""
    from_header = (request.headers.get("To") or "") + f";tag={tag}"
    headers = Headers(
        [
            ("Via", f"SIP/2.0/TLS {edge.settings.fqdn}:5061;branch=z9hG4bK{edge.new_tag()}"),
            ("Max-Forwards", "70"),
            ("From", from_header),
            ("To", to_header),
            ("Call-ID", request.call_id),
            ("CSeq", "1 NOTIFY"),
            ("Contact", contact),
            ("Event", event.strip()),
            ("Subscription-State", f"active;expires={expires.strip()}"),
            ("Server", edge.settings.server_header),
        ]
    )
    await conn.send(serialize(Request(method="NOTIFY", uri=notify_uri, headers=headers)))


def _record_unanswered(edge: Edge, conn: Connection, request: Request, reason: str) -> None:
    """The event of a request that was accepted off the wire but never decided."""
    edge.events.write(
        {
            "time": _now_iso(),
            "direction": "inbound",
            "kind": "unanswered",
            "call_id": request.call_id,
            "method": request.method,
            "from": str(request.from_.uri),
            "to": str(request.to.uri),
            "peer": f"{conn.peer.display_name}:{conn.peer_port}",
            "peer_address": f"{conn.peer_ip}:{conn.peer_port}",
            "status": None,
            "reason": reason,
        }
    )


def _record_tls_failure(edge: Edge, peer_ip: str, peer_port: int, reason: str) -> None:
    """A refused handshake: the event, and an inferred Edge record (no source shows one).

    Windows' Schannel refuses the peer before any SIP arrives, so the record has no
    SIP fields; Peer is the address, as no certificate name was accepted.
    """
    now = dt.datetime.now(dt.UTC)
    record = EdgeLogRecord(
        result=RESULT_CODES["EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED"],
        data=(("reason", reason),),
        fidelity="inferred",
    )
    record_text = edge.log_record(
        record, when=now, start_line="-", call_id="-", cseq="-", peer=f"{peer_ip}:{peer_port}"
    )
    edge.events.write(
        {
            "time": now.isoformat(timespec="milliseconds"),
            "direction": "inbound",
            "kind": "tls-handshake-failed",
            "peer_address": f"{peer_ip}:{peer_port}",
            "rule": "tls-handshake-failed",
            "status": None,
            "reason": reason,
            "fidelity": "inferred",
            "edge_log": {
                "result_code": record.result.hex,
                "symbol": record.result.symbol,
                "fidelity": "inferred",
            },
        },
        record_text,
    )
    edge.events.say_decision(
        f"{now:%H:%M:%S} inbound  TLS from {peer_ip}:{peer_port} refused: {reason}"
    )
