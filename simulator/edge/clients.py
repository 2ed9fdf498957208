"""The Edge's internal side: simulated Skype clients send their requests here.

On a real deployment the client talks to its Front End, which hands federated
traffic to the Access Edge's internal interface; fedsim folds the two into one
TLS listener (server authentication only: clients present no certificate).
A request whose Request-URI is in a domain homed on this Edge is answered
locally, as the called user would; any other domain goes out through
:class:`simulator.edge.outbound.Outbound` (reference §2.1).

Every request's top Via gets ``ms-received-port`` and ``ms-received-cid`` when
it arrives (plus ``received`` when RFC 3261 §18.2.1 / RFC 3581 ask for it), so
every answer, local or relayed, echoes them as the seed's client log shows
(reference §7.1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from dataclasses import dataclass
from functools import partial

import trio

from simulator.edge.federation import Edge
from simulator.edge.outbound import Outbound, client_response
from simulator.edge.replies import error_response_for
from simulator.edge.sdp import build_answer
from simulator.edge.tls import TlsStream
from simulator.net import PEER_FAULTS, detach_socket, serve_guarded
from simulator.policy import ALLOW, IN_DIALOG_ONLY, unroutable_domain
from simulator.sip import (
    FramingError,
    Headers,
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    canonical_name,
    parse_message,
    parse_uri,
    parse_via,
)
from simulator.sip.headers import split_top_level

#: Methods answered 501 when a local user is called with them (we do not emulate them).
LOCAL_METHODS = frozenset({"INVITE", "OPTIONS", "MESSAGE"})


@dataclass(slots=True, eq=False)
class ClientConnection:
    """One accepted client connection (satisfies :class:`simulator.edge.outbound.ClientLink`)."""

    stream: TlsStream
    peer_ip: str
    peer_port: int
    local_ip: str
    cid: str

    async def send(self, data: bytes) -> None:
        # Several request tasks answer on one connection: TlsStream orders their writes.
        await self.stream.send_all(data)


def clients_context(server: ssl.SSLContext) -> ssl.SSLContext:
    """Turn a server context into the clients listener's: no client certificate asked."""
    server.verify_mode = ssl.CERT_NONE
    return server


def stamp_via(request: Request, *, ip: str, port: int, cid: str) -> Request:
    """Add what the Edge writes on a received request's top Via (reference §7.1).

    ``ms-received-port`` and ``ms-received-cid`` always; ``received`` when the
    sent-by host is not the source address (RFC 3261 §18.2.1) or ``rport`` asks
    for it, with the rport value filled in (RFC 3581 §4).
    """
    pairs = list(request.headers.pairs)
    for i, (name, value) in enumerate(pairs):
        if canonical_name(name) != "via":
            continue
        pieces = split_top_level(value)
        top = parse_via(pieces[0])[0]
        params: list[tuple[str, str | None]] = []
        if top.rport is not None:
            params += [("rport", str(port)), ("received", ip)]
        elif top.host.strip("[]") != ip:
            params.append(("received", ip))
        params += [("ms-received-port", str(port)), ("ms-received-cid", cid)]
        stamped = str(top.with_params(*params))
        pairs[i] = (name, ",".join([stamped, *pieces[1:]]))
        break
    return Request(
        method=request.method,
        uri=request.uri,
        headers=Headers(pairs),
        body=request.body,
        version=request.version,
    )


async def serve_clients(
    edge: Edge,
    ssl_context: ssl.SSLContext,
    host: str,
    port: int,
    *,
    connector: Outbound,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the clients port (TLS, server auth only) until cancelled; report (host, port).

    Args:
        edge: the Edge shared with the federation listener (settings, users, logs).
        ssl_context: a server context that asks for no client certificate.
        host / port: where to listen (port 0: any free port).
        connector: the running outbound connector for foreign domains.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))
    await serve_guarded(
        partial(handle_client, edge, connector, ssl_context),
        listeners,
        server="clients",
        report=edge.report_internal,
    )


async def handle_client(
    edge: Edge, connector: Outbound, ssl_context: ssl.SSLContext, stream: trio.SocketStream
) -> None:
    """Handshake, then read requests until the client closes or idles out.

    Each request is handled in its own task, so an INVITE waiting for the partner
    does not hold up the CANCEL, ACK or BYE that follow on the same connection.
    """
    try:
        peer_addr = stream.socket.getpeername()
        local_addr = stream.socket.getsockname()
    except OSError:
        await trio.aclose_forcefully(stream)
        return
    edge.connection_counter += 1
    cid = f"{edge.connection_counter * 0x100:X}"  # as federation.py: number + "00", hex
    # The TLS stream owns the socket from here (see tls.py for why not trio.SSLStream).
    tls = TlsStream(detach_socket(stream), ssl_context)
    conn = ClientConnection(
        stream=tls,
        peer_ip=str(peer_addr[0]),
        peer_port=int(peer_addr[1]),
        local_ip=str(local_addr[0]),
        cid=cid,
    )
    try:
        with trio.move_on_after(edge.limits.handshake_timeout) as handshake:
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                _tls_event(edge, conn, str(exc.__cause__ or exc) or "handshake failed")
                return
        if handshake.cancelled_caught:
            _tls_event(edge, conn, "TLS handshake timed out")
            return
        async with trio.open_nursery() as nursery:
            # The client going away (reset, no close_notify) ends the reading only.
            with contextlib.suppress(*PEER_FAULTS):
                await _read_requests(edge, connector, conn, nursery)
            # Requests already taken finish (a partner send is never cut, and each still
            # gets its event; answers to a client that left are dropped), within the
            # longest a call can take; then whatever is left is cancelled.
            nursery.cancel_scope.deadline = trio.current_time() + connector.limits.longest_call
    finally:
        await trio.aclose_forcefully(tls)


def _tls_event(edge: Edge, conn: ClientConnection, reason: str) -> None:
    now = dt.datetime.now(dt.UTC)
    edge.events.write(
        {
            "time": now.isoformat(timespec="milliseconds"),
            "direction": "outbound",
            "kind": "client-tls-failed",
            "peer_address": f"{conn.peer_ip}:{conn.peer_port}",
            "rule": "client-tls-failed",
            "status": None,
            "reason": reason,
        }
    )


async def _read_requests(
    edge: Edge, connector: Outbound, conn: ClientConnection, nursery: trio.Nursery
) -> None:
    framer = StreamFramer(
        max_header_bytes=edge.limits.max_header_bytes,
        max_body_bytes=edge.limits.max_body_bytes,
    )
    while True:
        try:
            item = framer.next_message()
        except FramingError as exc:
            await _answer_unparsable(edge, conn, exc.offending, exc.status_hint)
            return  # framing is lost (RFC 3261 §18.3): only closing is left
        if item is Need.DATA:
            with trio.move_on_after(edge.limits.idle_timeout):
                data = await conn.stream.receive_some(65536)
                if not data:
                    return
                framer.receive_data(bytes(data))
                continue
            return
        if item is KeepAlive.PING:
            await conn.send(b"\r\n")  # RFC 5626 §3.5.1 pong
            continue
        assert isinstance(item, bytes)
        try:
            message = parse_message(item)
        except SipParseError as exc:
            await _answer_unparsable(edge, conn, item, exc.status_hint)
            continue
        if isinstance(message, Response):
            await connector.response_from_client(message)
            continue
        try:
            request = stamp_via(message, ip=conn.peer_ip, port=conn.peer_port, cid=conn.cid)
        except SipParseError as exc:
            await _answer_unparsable(edge, conn, item, exc.status_hint)
            continue
        nursery.start_soon(_handle_request, edge, connector, conn, request)


async def _answer_unparsable(edge: Edge, conn: ClientConnection, raw: bytes, status: int) -> None:
    reply = error_response_for(
        raw, status, server=edge.settings.server_header, to_tag=edge.new_tag()
    )
    edge.events.write(
        {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "direction": "outbound",
            "kind": "malformed",
            "peer": f"{conn.peer_ip}:{conn.peer_port}",
            "status": status if reply is not None else None,
        }
    )
    if reply is not None:
        await conn.send(reply)


def _request_domain(request: Request) -> str | None:
    try:
        uri = parse_uri(request.uri)
    except SipParseError:
        return None
    if not isinstance(uri, SipUri):
        return None
    return uri.host.lower().rstrip(".")


async def _handle_request(
    edge: Edge, connector: Outbound, conn: ClientConnection, request: Request
) -> None:
    """Handle one request; an out-of-dialog one always gets exactly one event.

    Its event is written by whoever answers it (:meth:`Edge.recorded`); when the
    Edge stops (or the client left and the call outlived its bound) before that,
    the event says it went unanswered, so events never fall behind requests.
    """
    new = request.to.tag is None and request.method not in ("ACK", "CANCEL")
    if new:
        edge.requests += 1
        edge.open_requests.add(id(request))
    try:
        # the client left before its answer: the answer is dropped, the event stays
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await _dispatch(edge, connector, conn, request)
    finally:
        if new and id(request) in edge.open_requests:
            edge.recorded(request)
            _unanswered_event(edge, conn, request)


def _unanswered_event(edge: Edge, conn: ClientConnection, request: Request) -> None:
    edge.events.write(
        {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "direction": "outbound",
            "kind": "unanswered",
            "call_id": request.call_id,
            "method": request.method,
            "from": str(request.from_.uri),
            "to": str(request.to.uri),
            "peer": f"{conn.peer_ip}:{conn.peer_port}",
            "status": None,
            "reason": "the Edge stopped before answering",
        }
    )


async def _dispatch(
    edge: Edge, connector: Outbound, conn: ClientConnection, request: Request
) -> None:
    server = (("Server", edge.settings.server_header),)
    method = request.method
    if method == "CANCEL":
        if not await connector.cancel(conn, request):
            await conn.send(client_response(edge, request, 481, to_tag=None, headers=server))
        return
    in_dialog = request.to.tag is not None
    if (in_dialog or method == "ACK") and await connector.forward_in_dialog(conn, request):
        return
    if method == "ACK":
        return  # ACK of an error we or the partner sent (the transaction is over)
    if in_dialog:
        await _local_in_dialog(edge, conn, request)
        return
    domain = _request_domain(request)
    if domain is None:
        # RFC 3261 §8.2.2.1: a Request-URI scheme the Edge does not route.
        status, rule, why = 416, "unsupported-uri", f"Request-URI {request.uri[:60]!r}"
    else:
        problem = unroutable_domain(domain)
        # The domain becomes a DNS question: it must be a DNS name (RFC 3261 §21.4.22: 484).
        status, rule, why = 484, "unroutable-domain", f"the Request-URI's domain {problem}"
    if domain is None or problem is not None:
        _local_event(edge, conn, request, status, rule=rule, reason=why)
        await conn.send(
            client_response(edge, request, status, to_tag=edge.new_tag(), headers=server)
        )
        return
    if domain in edge.settings.domains:
        await _answer_locally(edge, conn, request)
        return
    await connector.forward_new(conn, request, domain)


async def _local_in_dialog(edge: Edge, conn: ClientConnection, request: Request) -> None:
    server = (("Server", edge.settings.server_header),)
    key = (request.call_id, request.to.tag or "")
    if key not in edge.dialogs:
        await conn.send(client_response(edge, request, 481, to_tag=None, headers=server))
        return
    if request.method == "BYE":
        del edge.dialogs[key]
    await conn.send(client_response(edge, request, 200, to_tag=None, headers=server))


async def _answer_locally(edge: Edge, conn: ClientConnection, request: Request) -> None:
    """A call between two users of this Edge's domains: answer as the called user."""
    server = ("Server", edge.settings.server_header)
    method = request.method
    uri = parse_uri(request.uri)
    user = (uri.user if isinstance(uri, SipUri) else None) or "user"
    tag = edge.new_tag()
    if method in IN_DIALOG_ONLY:
        status = 481  # RFC 3261 §12.2.2: no dialog to be in
    elif method not in LOCAL_METHODS:
        status = 501
    else:
        status = edge.users.get(user, 200)
    if method == "INVITE" and status == 200:
        contact = ("Contact", f"<sip:{user}@{edge.settings.fqdn};transport=tls>")
        await conn.send(client_response(edge, request, 180, to_tag=tag, headers=(contact, server)))
        sdp = build_answer(request.body, address=conn.local_ip, session_id=edge.rng.getrandbits(31))
        headers = (contact, ("Content-Type", "application/sdp"), server)
        edge.remember(edge.dialogs, (request.call_id, tag), "confirmed")
        reply = client_response(edge, request, 200, to_tag=tag, headers=headers, body=sdp)
    elif method == "OPTIONS" and status == 200:
        headers = (("Allow", ALLOW), ("Accept", "application/sdp"), server)
        reply = client_response(edge, request, 200, to_tag=tag, headers=headers)
    else:
        extra = (("Allow", ALLOW),) if status == 501 else ()
        reply = client_response(edge, request, status, to_tag=tag, headers=(*extra, server))
    _local_event(edge, conn, request, status)
    await conn.send(reply)


def _local_event(
    edge: Edge,
    conn: ClientConnection,
    request: Request,
    status: int,
    *,
    rule: str = "local-user",
    reason: str | None = None,
) -> None:
    """The event of a request the Edge answers itself (a local user, or a refusal)."""
    now = dt.datetime.now(dt.UTC)
    event: dict[str, object] = {
        "time": now.isoformat(timespec="milliseconds"),
        "direction": "outbound",
        "call_id": request.call_id,
        "method": request.method,
        "from": str(request.from_.uri),
        "to": str(request.to.uri),
        "domain": _request_domain(request),
        "peer": f"{conn.peer_ip}:{conn.peer_port}",
        "rule": rule,
        "accepted": status < 300,
        "status": status,
        "fidelity": "inferred",
        "extra": {"forwarded": False},
    }
    if reason is not None:
        event["reason"] = reason
    edge.recorded(request)
    edge.events.write(event)
    edge.events.say_decision(
        f"{now:%H:%M:%S} local    {request.method} {request.from_.uri} -> {request.to.uri}"
        f"  {rule}  {status}"
    )
