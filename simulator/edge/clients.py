"""The Edge's internal side: simulated Skype clients send their requests here.

On a real deployment the client talks to its Front End, which hands federated
traffic to the Access Edge's internal interface; fedsim folds the two into one
TLS listener (server authentication only: clients present no certificate).
Each request is screened (:func:`simulator.policy.screen_outbound`: 416, 484,
483); one for a domain homed behind this Edge is answered by the called Skype
user (:class:`simulator.skype.user.SkypeUser`, the same user the federation
port reaches); any other leaves through the relay
(:class:`simulator.edge.outbound.Outbound`, reference §2.1).

Every request's top Via gets ``ms-received-port`` and ``ms-received-cid`` when
it arrives (plus ``received`` when RFC 3261 §18.2.1 / RFC 3581 ask for it), so
every answer, local or relayed, echoes them as the seed's client log shows
(reference §7.1).

Each request runs in its own task, so an INVITE waiting for the partner does
not hold up the CANCEL, ACK or BYE that follow on the same connection. When the
client leaves, the requests already taken finish (a partner send is never cut,
and each still gets its event; answers to a client that left are dropped),
within the longest a call can take.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from functools import partial

import trio

from simulator.edge.envelope import CLIENT_COPY_ORDER, client_response
from simulator.edge.inbound import CLOSE_TIMEOUT
from simulator.edge.outbound import Outbound
from simulator.edge.state import EdgeState
from simulator.edge.taps import Tap, tap_for
from simulator.edge.userwire import UserLink
from simulator.net import PEER_FAULTS, detach_socket, serve_guarded
from simulator.net.sipstream import SipStream
from simulator.net.tls import TlsStream
from simulator.policy import Rejection, screen_outbound
from simulator.sip import (
    Request,
    Response,
    SipParseError,
    error_response_for,
    serialize,
)
from simulator.sip.proxy import stamp_via
from simulator.skype.user import Answer, Leg, SkypeUser


@dataclass(slots=True, eq=False)
class ClientConnection:
    """One accepted client connection (a :class:`simulator.edge.outbound.ClientLink`)."""

    sip: SipStream
    peer_ip: str
    peer_port: int
    cid: str
    leg: Leg
    #: Its wire tap (trace.log, the capture): None when they are off.
    tap: Tap | None = None
    #: Where the user's answers go (set once the connection's nursery is open).
    link: UserLink | None = None

    @property
    def label(self) -> str:
        host = f"[{self.peer_ip}]" if ":" in self.peer_ip else self.peer_ip
        return f"{host}:{self.peer_port}"

    async def send(self, data: bytes) -> None:
        await self.sip.send(data)


def clients_context(server: ssl.SSLContext) -> ssl.SSLContext:
    """Turn a server context into the clients listener's: no client certificate asked."""
    server.verify_mode = ssl.CERT_NONE
    return server


async def serve_clients(
    edge: EdgeState,
    user: SkypeUser,
    ssl_context: ssl.SSLContext,
    host: str,
    port: int,
    *,
    connector: Outbound,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the clients port (TLS, server auth only) until cancelled; report (host, port).

    Args:
        edge: the Edge shared with the federation listener (settings, recorder...).
        user: the emulated Skype user of the homed domains.
        ssl_context: a server context that asks for no client certificate.
        host / port: where to listen (port 0: any free port).
        connector: the running outbound relay for foreign domains.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    task_status.started((bound[0], bound[1]))
    await serve_guarded(
        partial(handle_client, edge, user, connector, ssl_context),
        listeners,
        server="clients",
        report=edge.report_internal,
    )


async def handle_client(
    edge: EdgeState,
    user: SkypeUser,
    connector: Outbound,
    ssl_context: ssl.SSLContext,
    stream: trio.SocketStream,
) -> None:
    """Handshake, then read requests until the client closes or idles out."""
    try:
        peer_addr = stream.socket.getpeername()
        local_addr = stream.socket.getsockname()
    except OSError:
        return  # gone before we looked: the guard closes the stream
    peer_ip, peer_port = str(peer_addr[0]), int(peer_addr[1])
    cid = edge.next_cid()
    # The TLS stream owns the socket from here (see net/tls.py for why not trio.SSLStream).
    tls = TlsStream(detach_socket(stream), ssl_context)
    address = f"[{peer_ip}]:{peer_port}" if ":" in peer_ip else f"{peer_ip}:{peer_port}"
    conn: ClientConnection | None = None
    try:
        with trio.move_on_after(edge.limits.handshake_timeout) as handshake:
            try:
                await tls.do_handshake()
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                edge.recorder.client_tls_failure(address, str(exc.__cause__ or exc))
                return
        if handshake.cancelled_caught:
            edge.recorder.client_tls_failure(address, "TLS handshake timed out")
            return
        conn = _connection(edge, tls, peer_ip, peer_port, local_addr, cid)
        async with trio.open_nursery() as nursery:
            conn.link = UserLink(
                user=user,
                send=conn.send,
                nursery=nursery,
                recorder=edge.recorder,
                direction="outbound",
                peer=conn.label,
            )
            # The client going away (reset, no close_notify) ends the reading only.
            with contextlib.suppress(*PEER_FAULTS):
                await _read_requests(edge, user, connector, conn, nursery)
            # Requests already taken finish, within the longest a call can take.
            nursery.cancel_scope.deadline = trio.current_time() + connector.limits.longest_call
    finally:
        # A close_notify when the client is still there; a reset when it stopped reading.
        await tls.close_within(CLOSE_TIMEOUT)
        if conn is not None and conn.tap is not None:
            conn.tap.closed()


def _connection(
    edge: EdgeState,
    tls: TlsStream,
    peer_ip: str,
    peer_port: int,
    local_addr: tuple[str, int] | tuple[str, int, int, int],
    cid: str,
) -> ClientConnection:
    label = f"[{peer_ip}]:{peer_port}" if ":" in peer_ip else f"{peer_ip}:{peer_port}"
    local = (str(local_addr[0]), int(local_addr[1]))
    tap = tap_for(edge.recorder.taps, "internal", local, (peer_ip, peer_port), label, cid)

    def unparsable(raw: bytes, exc: SipParseError) -> bytes | None:
        reply = error_response_for(
            raw, exc.status_hint, server=edge.settings.server_header, to_tag=edge.new_tag()
        )
        edge.recorder.malformed("outbound", label, exc.status_hint if reply else None, str(exc))
        return reply

    sip = SipStream(
        tls,
        idle_timeout=edge.limits.idle_timeout,
        max_header_bytes=edge.limits.max_header_bytes,
        max_body_bytes=edge.limits.max_body_bytes,
        on_unparsable=unparsable,
        before_send=edge.recorder.flush,
        cork=True,
        on_wire=tap,
    )
    port = local[1]
    fqdn = edge.settings.fqdn
    leg = Leg(
        local=local,
        copy_order=CLIENT_COPY_ORDER,
        via=f"{fqdn}:{port}",
        record_route=f"<sip:{fqdn}:{port};transport=tls;lr>",
        # Internal clients see the pool's diagnostics (a 404's 4005).
        diagnostics=True,
    )
    return ClientConnection(
        sip=sip, peer_ip=peer_ip, peer_port=peer_port, cid=cid, leg=leg, tap=tap
    )


async def _read_requests(
    edge: EdgeState,
    user: SkypeUser,
    connector: Outbound,
    conn: ClientConnection,
    nursery: trio.Nursery,
) -> None:
    sip = conn.sip
    with sip.idle_scope():
        while (message := await sip.next_message()) is not None:
            if isinstance(message, Response):
                if not await connector.response_from_client(message):
                    # not a relayed request's: an answer to the user's BYE or NOTIFY
                    user.response(message, trio.current_time())
                continue
            try:
                request = stamp_via(message, ip=conn.peer_ip, port=conn.peer_port, cid=conn.cid)
            except SipParseError as exc:
                await sip.reject(serialize(message), exc)
                continue
            nursery.start_soon(_handle_request, edge, user, connector, conn, request)
        await sip.uncork()


async def _handle_request(
    edge: EdgeState, user: SkypeUser, connector: Outbound, conn: ClientConnection, request: Request
) -> None:
    """Handle one request; an out-of-dialog one always gets exactly one event.

    Its event is written by whoever answers it; when the Edge stops (or the client
    left and the call outlived its bound) before that, the event says it went
    unanswered, so events never fall behind requests.
    """
    recorder = edge.recorder
    new = request.to.tag is None and request.method not in ("ACK", "CANCEL")
    if new:
        recorder.take(request)
    try:
        # the client left before its answer: the answer is dropped, the event stays
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            try:
                await _dispatch(edge, user, connector, conn, request)
            except SipParseError as exc:
                # A header kept as raw text (a Contact) can still be malformed when it is
                # read: 400, as for any unparsable request (the stream's policy).
                await conn.sip.reject(serialize(request), exc)
    finally:
        if new and not recorder.answered(request):
            recorder.unanswered(
                "outbound", request, conn.label, "the Edge stopped before answering"
            )


async def _dispatch(
    edge: EdgeState, user: SkypeUser, connector: Outbound, conn: ClientConnection, request: Request
) -> None:
    method = request.method
    if method == "CANCEL":
        if not await connector.cancel(conn, request):
            await _send(conn, user.cancel(request, conn.leg))
        return
    in_dialog = request.to.tag is not None
    if (in_dialog or method == "ACK") and await connector.forward_in_dialog(conn, request):
        return
    if in_dialog or method == "ACK":
        await _send(conn, user.in_dialog(request, conn.leg, trio.current_time()))
        return
    target = screen_outbound(request, edge.settings)
    if isinstance(target, Rejection):
        reply = client_response(
            edge,
            request,
            target.status,
            to_tag=edge.new_tag(),
            headers=(("Server", edge.settings.server_header),),
        )
        edge.recorder.rejected(
            "outbound", request, target, conn.label, {"client_address": conn.label}
        )
        await conn.send(reply)
        return
    if target.local:
        await _answer_locally(edge, user, conn, request, target.domain)
        return
    await connector.forward_new(conn, request, target.domain)


async def _answer_locally(
    edge: EdgeState, user: SkypeUser, conn: ClientConnection, request: Request, domain: str
) -> None:
    """A call between two users of this Edge's domains: the called user answers."""
    answer = user.new_request(request, conn.leg, trio.current_time())
    edge.recorder.call_event(
        "local",
        request,
        status=answer.status,
        rule="local-user",
        peer=conn.label,
        fields={
            "domain": domain,
            "accepted": answer.status is not None and answer.status < 300,
            "fidelity": "inferred",
            "extra": {"forwarded": False},
            "user": answer.info,
        },
    )
    await _send(conn, answer)


async def _send(conn: ClientConnection, answer: Answer) -> None:
    """Send the user's answer; its events and timers go through the connection's link."""
    assert conn.link is not None  # set before the first request is read
    await conn.link.deliver(answer)
