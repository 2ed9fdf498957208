"""The federation port: mutual TLS on 5061, where federated Expressway-Es call in.

Theory of operation
-------------------
A connection is accepted through the guard (:mod:`simulator.net.guard`), so
nothing it raises can reach another connection. Over-limit connections are
reset before any handshake work; the handshake then runs with its own
deadline, and a refused one (no certificate, an untrusted chain, a TLS version
the profile does not speak) ends in a TCP reset, as Microsoft's Edge does
(reference §6: the far side reports 10054), with a ``tls-handshake-failed``
event and an inferred Edge record. The peer's certificate is turned into the
policy's facts once per connection; when the rule ``revocation`` asks for it,
the chain's CRLs are fetched then (OpenSSL fetches none), and a revoked (or,
under "hard", unverifiable) certificate is refused the same way.

Then one :class:`~simulator.net.sipstream.SipStream` carries the connection
(framing, pongs, bad input, the idle deadline, corking: see its module). Every
out-of-dialog request goes through :func:`_new_request`, top to bottom:

1. **screen** it (:func:`simulator.policy.screen_inbound`): URIs that cannot name
   a federated domain are answered 416/400/481 at once;
2. **route** it: the caller's domain and SRV name, remembered per caller; the
   first Route header (:class:`~simulator.policy.Hop`) and the called user's
   per-user facts (:class:`~simulator.policy.LocalUser`, remembered per pair);
3. **resolve** the callback SRV (kept while the DNS answer holds; when the DNS
   server must be asked, the replies already corked leave first); a discovered
   partner's request is counted (:meth:`EdgeState.partner_load`);
4. **decide** (:func:`simulator.policy.decide_inbound`): a pure function of
   (route, peer certificate, SRV answer, settings, hop, user, load), so the
   verdict is cached on the connection under exactly those (the peer and the
   settings are the connection's), with its event and record compiled once;
5. **answer**: the bare refusal, or the called Skype user's answer
   (:class:`simulator.skype.user.SkypeUser`), built before anything is recorded
   so the event says what goes on the wire;
6. **record** the event (and the Edge record), held;
7. **send**: the SIP stream flushes the records, then the reply leaves.

Requests inside a dialog, CANCEL and ACK go to the emulated user directly, and
so do the peer's answers to the user's own BYEs and NOTIFYs; what the user
sends later (a retransmitted 200, the BYE of a call never ACKed, a NOTIFY at
expiry) comes from its timers, run in the connection's nursery
(:mod:`simulator.edge.userwire`).
Where the fast paths are: an ACK is dropped unparsed while no 200 of the user
waits for one (the ACK of a refused call is a third of its cost), verdicts and
routes are recognised by identity, the event line is a template filled with
pre-encoded values, and a burst of pipelined requests is answered in one TLS
write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
from dataclasses import dataclass, field
from functools import partial

import trio

from simulator.edge.eventcodec import Verdict
from simulator.edge.state import EdgeState, checked_peer
from simulator.edge.taps import Tap, tap_for
from simulator.edge.userwire import UserLink
from simulator.net import detach_socket, serve_guarded
from simulator.net.sipstream import SipStream
from simulator.net.tls import TlsStream
from simulator.policy import (
    Hop,
    InboundRoute,
    LocalUser,
    PartnerLoad,
    PeerCertificate,
    Rejection,
    SrvLookup,
    callback_srv,
    client_usage,
    decide_inbound,
    inbound_hop,
    revocation_refusal,
    screen_inbound,
)
from simulator.sip import (
    Request,
    Response,
    SipParseError,
    build_response,
    error_response_for,
    serialize,
)
from simulator.skype.user import Answer, Leg, SkypeUser

#: Verdicts remembered per connection (one per decision's arguments).
MAX_VERDICTS = 256
#: What a verdict is cached under: route and SRV answer by identity, then hop, user, load.
VerdictKey = tuple[int, int, Hop | None, LocalUser, PartnerLoad]
#: Seconds a closing connection may take to send its close_notify.
CLOSE_TIMEOUT = 1.0
#: What starts an ACK on the wire (the prefix the stream may drop unparsed).
ACK = b"ACK "


@dataclass(slots=True, eq=False)
class FederationConnection:
    """One accepted federation connection, after its handshake."""

    sip: SipStream
    tls: TlsStream
    peer_ip: str
    peer_port: int
    peer: PeerCertificate
    leg: Leg
    #: The connection's name in events and in the Edge records' ``Peer:``.
    label: str
    #: Its wire tap (trace.log, the capture): None when they are off.
    tap: Tap | None = None
    #: Where the user's answers go (set once the connection's nursery is open).
    link: UserLink | None = None
    verdicts: dict[VerdictKey, tuple[InboundRoute, SrvLookup | None, Verdict]] = field(
        default_factory=dict
    )


async def serve_federation(
    edge: EdgeState,
    user: SkypeUser,
    ssl_context: ssl.SSLContext,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the federation port (mutual TLS) until cancelled; report (host, port) bound.

    Resource handling:
        Every connection runs through :func:`simulator.net.serve_guarded`, which
        closes it however it ends; the listeners close when this is cancelled.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))
    await serve_guarded(
        partial(handle_connection, edge, user, ssl_context),
        listeners,
        server="federation",
        report=edge.report_internal,
    )


def _reset(sock: socket.socket | trio.socket.SocketType) -> None:
    """Make the close a TCP reset, as Microsoft's Edge does when it refuses a peer's
    certificate: the peer sees WSAECONNRESET, not a TLS alert (reference §6, risual:
    1047 with WinsockFailureCode 10054)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _tls_reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return str(cause or exc) or type(exc).__name__


def _over_limit(edge: EdgeState, peer_ip: str) -> str | None:
    if edge.connections >= edge.limits.max_connections:
        return "connection limit reached"
    if edge.per_peer.get(peer_ip, 0) >= edge.limits.max_connections_per_peer:
        return "per-peer connection limit reached"
    return None


async def handle_connection(
    edge: EdgeState, user: SkypeUser, ssl_context: ssl.SSLContext, stream: trio.SocketStream
) -> None:
    """Limits, handshake, then the connection's requests until it closes or idles out."""
    try:
        peer_addr = stream.socket.getpeername()
        local_addr = stream.socket.getsockname()
    except OSError:
        return  # gone before we looked: the guard closes the stream
    peer_ip, peer_port = str(peer_addr[0]), int(peer_addr[1])
    address = f"[{peer_ip}]:{peer_port}" if ":" in peer_ip else f"{peer_ip}:{peer_port}"
    over = _over_limit(edge, peer_ip)
    if over is not None:
        # Refuse cleanly (a reset, no handshake work spent on it); others keep working.
        _reset(stream.socket)
        edge.recorder.tls_failure(address, over)
        return
    edge.connections += 1
    edge.per_peer[peer_ip] = edge.per_peer.get(peer_ip, 0) + 1
    cid = edge.next_cid()
    # The TLS stream owns the socket from here (see net/tls.py for why not trio.SSLStream).
    tls = TlsStream(detach_socket(stream), ssl_context)
    conn: FederationConnection | None = None
    try:
        try:
            with trio.fail_after(edge.limits.handshake_timeout):
                await tls.do_handshake()
        except trio.TooSlowError:
            edge.recorder.tls_failure(address, "TLS handshake timed out")
            tls.abort()
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            edge.recorder.tls_failure(address, _tls_reason(exc))
            _reset(tls.socket)
            tls.abort()
            return
        der = tls.getpeercert(binary_form=True)
        if not der:
            edge.recorder.tls_failure(address, "no client certificate")
            await trio.aclose_forcefully(tls)
            return
        peer = await checked_peer(
            der, edge, now=dt.datetime.now(dt.UTC), usage=client_usage(edge.settings)
        )
        revoked = revocation_refusal(peer, edge.settings)
        if revoked is not None:
            # Schannel checks revocation while it builds the chain: the peer is refused
            # as at the handshake (reference 1.2, §6; the form is unverified).
            _rule, _symbol, schannel, what = revoked
            edge.recorder.tls_failure(address, f"the certificate {what} ({schannel})")
            _reset(tls.socket)
            tls.abort()
            return
        conn = _connection(edge, tls, peer, peer_ip, peer_port, local_addr, cid)
        async with (
            trio.open_nursery() as nursery
        ):  # the user's timers live as long as the connection
            conn.link = UserLink(
                user=user,
                send=conn.sip.send,
                nursery=nursery,
                recorder=edge.recorder,
                direction="inbound",
                peer=conn.label,
                after=partial(_ack_filter, conn, user),
            )
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await _serve(edge, user, conn)
            nursery.cancel_scope.cancel()
    finally:
        edge.connections -= 1
        left = edge.per_peer.get(peer_ip, 1) - 1
        if left > 0:
            edge.per_peer[peer_ip] = left
        else:
            edge.per_peer.pop(peer_ip, None)
        # A close_notify when the peer is still there; a reset when it stopped reading.
        await tls.close_within(CLOSE_TIMEOUT)
        if conn is not None and conn.tap is not None:
            conn.tap.closed()


def _connection(
    edge: EdgeState,
    tls: TlsStream,
    peer: PeerCertificate,
    peer_ip: str,
    peer_port: int,
    local_addr: tuple[str, int] | tuple[str, int, int, int],
    cid: str,
) -> FederationConnection:
    label = f"{peer.display_name}:{peer_port}"
    recorder = edge.recorder
    local = (str(local_addr[0]), int(local_addr[1]))
    tap = tap_for(recorder.taps, "external", local, (peer_ip, peer_port), label, cid)

    def unparsable(raw: bytes, exc: SipParseError) -> bytes | None:
        reply = error_response_for(
            raw, exc.status_hint, server=edge.settings.server_header, to_tag=edge.new_tag()
        )
        recorder.malformed("inbound", label, exc.status_hint if reply else None, str(exc))
        return reply

    sip = SipStream(
        tls,
        idle_timeout=edge.limits.idle_timeout,
        max_header_bytes=edge.limits.max_header_bytes,
        max_body_bytes=edge.limits.max_body_bytes,
        on_unparsable=unparsable,
        before_send=recorder.flush,
        cork=True,
        # An ACK ends a transaction (RFC 3261 §17.2.1), never answered nor logged: it
        # is parsed only while a 200 of the user waits for its ACK (_ack_filter).
        drop=ACK,
        on_wire=tap,
    )
    fqdn = edge.settings.fqdn
    leg = Leg(
        local=local,
        # What the Edge adds to the top Via of every response (reference §7.2).
        via_params=(
            ("received", peer_ip),
            ("ms-received-port", str(peer_port)),
            ("ms-received-cid", cid),
        ),
        via=f"{fqdn}:{local[1]}",
        # The Edge stays in the dialogs it lets in, at the address the peer reached.
        record_route=f"<sip:{fqdn}:{local[1]};transport=tls;lr>",
    )
    return FederationConnection(
        sip=sip,
        tls=tls,
        peer_ip=peer_ip,
        peer_port=peer_port,
        peer=peer,
        leg=leg,
        label=label,
        tap=tap,
    )


def _ack_filter(conn: FederationConnection, user: SkypeUser) -> None:
    """Parse ACKs on this connection only while a 200 of the user waits for one."""
    conn.sip.drop = None if user.awaiting_ack else ACK


async def _serve(edge: EdgeState, user: SkypeUser, conn: FederationConnection) -> None:
    """Answer requests until the peer closes, breaks the connection or idles out."""
    sip = conn.sip
    with sip.idle_scope():
        while (message := await sip.next_message()) is not None:
            if isinstance(message, Response):
                # answers to the user's BYEs and NOTIFYs (a failed NOTIFY ends its
                # subscription), or strays
                user.response(message, trio.current_time())
                continue
            try:
                await _request(edge, user, conn, message)
            except SipParseError as exc:
                # A header kept as raw text (a Contact) can still be malformed when it is
                # read: 400, as for any unparsable request (the stream's policy).
                await sip.reject(serialize(message), exc)
        # The last burst's replies, within the deadline: a peer that stopped reading
        # cannot hold the connection open.
        await sip.uncork()


async def _request(
    edge: EdgeState, user: SkypeUser, conn: FederationConnection, request: Request
) -> None:
    if request.method == "CANCEL":
        await _send(conn, user.cancel(request, conn.leg))
    elif request.to.tag is not None or request.method == "ACK":
        await _send(conn, user.in_dialog(request, conn.leg, trio.current_time()))
    else:
        await _new_request(edge, user, conn, request)


async def _new_request(
    edge: EdgeState, user: SkypeUser, conn: FederationConnection, request: Request
) -> None:
    """One out-of-dialog request, top to bottom (the module's steps 1-7)."""
    recorder = edge.recorder
    recorder.requests += 1  # every request counted here gets exactly one event
    parties = screen_inbound(request, edge.settings)  # 1. screen
    if isinstance(parties, Rejection):
        reply = build_response(
            request,
            parties.status,
            to_tag=edge.new_tag(),
            headers=(("Server", edge.settings.server_header),),
            via_params=conn.leg.via_params,
        )
        recorder.rejected("inbound", request, parties, conn.label)
        await conn.sip.send(serialize(reply))
        return
    route = edge.routes.get(parties) or edge.route(parties)  # 2. route (remembered)
    hop = inbound_hop(request, conn.leg.local)
    called = edge.request_user(request.to.uri, request.from_.uri)  # the called user
    try:
        srv = await _resolve(edge, conn, callback_srv(route, hop, edge.settings))  # 3. resolve
    except trio.Cancelled:
        # Shutdown (or the connection's end) caught the request mid-lookup: it still
        # gets its event line, so events never fall behind accepted requests.
        recorder.unanswered("inbound", request, conn.label, "the Edge stopped before deciding")
        raise
    load = edge.partner_load(route, srv, called)
    verdict = _decide(edge, conn, route, srv, hop, called, load)  # 4. decide
    decision = verdict.decision
    answer: Answer | None = None
    if decision.accepted:  # 5. answer: the called user's...
        answer = user.new_request(request, conn.leg, trio.current_time())
        messages = answer.messages
        status = answer.status if answer.status is not None else user.status_for(request)
    else:  # ...or the bare refusal
        refusal = build_response(
            request,
            decision.status,
            to_tag=edge.new_tag(),
            headers=decision.headers,
            via_params=conn.leg.via_params,
        )
        messages, status = (serialize(refusal),), decision.status
    recorder.verdict(  # 6. record what goes on the wire
        verdict,
        request,
        status=status,
        from_text=edge.uri_text(request.from_.uri),
        to_text=edge.uri_text(request.to.uri),
        user=None if answer is None else answer.info,
    )
    if answer is not None:  # 7. send (the stream flushes the records first)
        await _send(conn, answer)
        return
    for message in messages:
        await conn.sip.send(message)


async def _resolve(
    edge: EdgeState, conn: FederationConnection, name: str | None
) -> SrvLookup | None:
    """The callback SRV lookup the decision needs (None when it needs none)."""
    if name is None:
        return None
    lookups = edge.lookups
    srv = lookups.kept(name)
    if srv is not None:
        return srv
    if lookups.needs_query(name):
        # A real query may take the DNS timeout: the burst's earlier replies go first.
        await conn.sip.release()
    return await lookups.lookup(name)


def _decide(
    edge: EdgeState,
    conn: FederationConnection,
    route: InboundRoute,
    srv: SrvLookup | None,
    hop: Hop | None,
    user: LocalUser,
    load: PartnerLoad,
) -> Verdict:
    """The verdict for (route, this peer, srv, settings, hop, user, load), compiled once.

    Keyed by exactly the decision's arguments: the route's and the lookup's identity
    (the entry keeps both alive, so the ids stay theirs; SrvLookup's generated hash
    walks every target), the hop, the called user and the load by value; the peer and
    the settings are the connection's own. A verdict is never reused for another user.
    """
    key: VerdictKey = (id(route), id(srv), hop, user, load)
    entry = conn.verdicts.get(key)
    if entry is not None and entry[0] is route and entry[1] is srv:
        return entry[2]
    decision = decide_inbound(route, conn.peer, srv, edge.settings, hop=hop, user=user, load=load)
    extra = {
        "peer_address": f"{conn.peer_ip}:{conn.peer_port}",
        "cert_names": list(conn.peer.names),
        "chain": conn.peer.chain,
        "revocation": conn.peer.revocation,
        "srv": None
        if srv is None
        else {
            "name": srv.name,
            "outcome": srv.outcome,
            "targets": [f"{t.target}:{t.port}" for t in srv.targets],
        },
    }
    verdict = edge.recorder.compile(decision, direction="inbound", peer=conn.label, extra=extra)
    if len(conn.verdicts) >= MAX_VERDICTS:
        conn.verdicts.clear()
    conn.verdicts[key] = (route, srv, verdict)
    return verdict


async def _send(conn: FederationConnection, answer: Answer) -> None:
    """Send the user's answer: its events, messages and timers go through the link."""
    assert conn.link is not None  # set before the first request is read
    await conn.link.deliver(answer)
