"""Place one call into an Edge as a Cisco Expressway-E does: mutual TLS, one request, its answer.

The transaction is the RFC 3261 client side on a reliable transport: no
retransmissions (§17.1.1.2: Timer A is not used over TLS), one overall
``timeout`` in place of Timer B/F. After the final response the ACK follows
§17.1.1.3 (non-2xx: same branch) or §13.2.2.4 (2xx: a new transaction), and a
BYE ends the call if asked. Network and TLS trouble never raises: it is
reported in :attr:`CallResult.tls_error` in words (see :mod:`.tlserrors`).
What follows a 2xx (the ACK or none, an IM, the BYE or the called user's, a
subscription's NOTIFYs) is :mod:`simulator.peer.dialog`'s, staged by
:class:`~simulator.peer.dialog.Staging`.
"""

from __future__ import annotations

import contextlib
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from simulator.errors import FedsimError
from simulator.peer import requests
from simulator.peer.conn import PeerClosed, SipConnection
from simulator.peer.dialog import Afterwards, Staging, after_invite, after_subscribe
from simulator.peer.sdp import Offer
from simulator.peer.tlserrors import Phase, describe_closed, describe_network_error
from simulator.sip import FramingError, Request, Response

#: Builds the request once our local address on the connection is known.
_Builder = Callable[[tuple[str, int] | None], Request]

#: How long a clean TLS close (close_notify) may take once the call is over.
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    """What happened to one call.

    Attributes:
        request: the request we sent (or would have sent, when the connection failed).
        responses: every response to it, in order (100, 180, 200 ... or 504).
        final: the final response, or None (timeout, TLS refusal, connection lost).
        tls_error: why no final response came, when it was the network or TLS
            (e.g. ``TLS alert: unknown ca (the Edge refused our certificate)``).
        local_port: our port on the connection (0 when it was never made).
        forwarded_dialog: True when a 200 to INVITE was followed by ACK, BYE and a
            2xx to the BYE: the call really went through and was torn down.
        timed_out: True when ``timeout`` ran out before a final response.
        ack: the ACK we sent, if any.
        bye: the BYE we sent, if any.
        bye_responses: every response to the BYE, in order.
        dialog_error: why ACK/BYE did not complete after a 2xx, if they did not.
        tls_version: the protocol version our handshake negotiated ("TLSv1.2"), None
            when there was no handshake or it failed.
        later: every message after the final response, ACK and BYE included, each
            with True when we sent it.
        notifies: the NOTIFYs of a subscription, in order.
        user_bye: the BYE the called user sent, if any.
        bye_after: seconds from the 200 to that BYE.
        retransmissions: retransmissions of the 200 received (we did not ACK).
    """

    request: Request
    responses: tuple[Response, ...]
    final: Response | None
    tls_error: str | None
    local_port: int
    forwarded_dialog: bool
    timed_out: bool = False
    ack: Request | None = None
    bye: Request | None = None
    bye_responses: tuple[Response, ...] = ()
    dialog_error: str | None = None
    tls_version: str | None = None
    later: tuple[tuple[bool, Request | Response], ...] = ()
    notifies: tuple[Request, ...] = ()
    user_bye: Request | None = None
    bye_after: float | None = None
    retransmissions: int = 0

    def __post_init__(self) -> None:
        if self.final is not None and self.final not in self.responses:
            raise ValueError("the final response must be one of the responses")


@dataclass(slots=True, kw_only=True)
class _Progress:
    """Mutable record of a call in flight; survives a timeout that cancels the call."""

    request: Request
    responses: list[Response] = field(default_factory=list)
    final: Response | None = None
    tls_error: str | None = None
    local_port: int = 0
    ack: Request | None = None
    bye: Request | None = None
    bye_responses: list[Response] = field(default_factory=list)
    dialog_error: str | None = None
    tls_version: str | None = None
    after: Afterwards = field(default_factory=Afterwards)
    answered_at: float = 0.0

    def result(self, *, timed_out: bool, timeout: float) -> CallResult:
        after = self.after
        bye = next((m for sent, m in after.messages if sent and _is(m, "BYE")), None)
        if isinstance(bye, Request):
            self.bye = bye
            self.bye_responses = [
                m
                for sent, m in after.messages
                if not sent and isinstance(m, Response) and requests.answers(m, bye)
            ]
        forwarded = any(200 <= r.status < 300 for r in self.bye_responses)
        dialog_error = self.dialog_error or after.error
        if timed_out and self.bye is not None and not forwarded and dialog_error is None:
            dialog_error = f"no final response to the BYE within {timeout:g} s"
        if timed_out and self.final is not None and dialog_error is None:
            dialog_error = _unfinished(self.request, self.final, after, timeout)
        return CallResult(
            request=self.request,
            responses=tuple(self.responses),
            final=self.final,
            tls_error=self.tls_error,
            local_port=self.local_port,
            forwarded_dialog=forwarded,
            timed_out=timed_out and self.final is None and self.tls_error is None,
            ack=self.ack,
            bye=self.bye,
            bye_responses=tuple(self.bye_responses),
            dialog_error=dialog_error,
            tls_version=self.tls_version,
            later=tuple(after.messages),
            notifies=tuple(after.notifies),
            user_bye=after.bye,
            bye_after=after.bye_after,
            retransmissions=after.retransmissions,
        )


def _is(message: Request | Response, method: str) -> bool:
    return isinstance(message, Request) and message.method == method


def _unfinished(request: Request, final: Response, after: Afterwards, timeout: float) -> str | None:
    """What was still awaited when the deadline ran out, if anything."""
    if final.status >= 300:
        return None
    if (
        request.method == "INVITE"
        and after.bye is None
        and not any(_is(m, "BYE") for _, m in after.messages)
    ):
        return f"the called user sent no BYE within {timeout:g} s"
    if request.method == "SUBSCRIBE":
        if not after.notifies:
            return f"no NOTIFY within {timeout:g} s"
        return f"the subscription did not end within {timeout:g} s"
    return None


async def place_call(
    *,
    edge: tuple[str, int],
    ssl_context: ssl.SSLContext,
    server_hostname: str,
    from_uri: str,
    to_uri: str,
    pai: str | None = None,
    route: str | None = None,
    method: str = "INVITE",
    hang_up: bool = True,
    timeout: float = 10.0,  # noqa: ASYNC109 (the contract: one bound for the whole call)
    rng: random.Random | None = None,
    offer: Offer = "best-effort",
    staging: Staging | None = None,
    text: str | None = None,
    expires: int | None = None,
) -> CallResult:
    """Open mutual TLS to ``edge``, send one request, and collect its answer.

    Args:
        edge: (host, port) of the Edge's federation listener.
        ssl_context: client context: our certificate and the CAs we trust for the Edge.
        server_hostname: SNI and the name checked against the Edge's certificate
            (when the context checks host names).
        from_uri: caller (From, Contact user).
        to_uri: callee (Request-URI, To).
        pai: P-Asserted-Identity, when the caller's domain should come from it.
        route: a Route header to send (an Expressway with a pre-loaded route).
        method: INVITE, MESSAGE, OPTIONS or SUBSCRIBE.
        hang_up: after a 200 to INVITE, send BYE and wait for its answer (False:
            ACK and stop); ``staging`` says more and wins.
        timeout: seconds for the whole exchange (connect, handshake, answer, BYE).
        rng: source of Call-ID, tags, branch and CSeq (tests pass a seeded one).
        offer: the INVITE's SDP (:data:`simulator.peer.sdp.OFFERS`).
        staging: what we do after a 2xx (:class:`~simulator.peer.dialog.Staging`);
            None: ACK, then BYE as ``hang_up`` says.
        text: a MESSAGE's body, or the first message of an IM session.
        expires: a SUBSCRIBE's Expires.

    Returns:
        The :class:`CallResult`; network and TLS failures are in ``tls_error``.

    Raises:
        FedsimError: bad inputs (unknown method, a URI that is not a SIP URI,
            a port out of range, a timeout that is not positive).
    """
    host, port = edge
    if not 0 < port < 65536:
        raise FedsimError(f"Edge port {port} is outside 1-65535")
    if not timeout > 0:
        raise FedsimError(f"timeout must be a positive number of seconds, not {timeout}")
    rng = rng if rng is not None else random.Random()
    ids = requests.CallIds.generate(rng)

    def build(local: tuple[str, int] | None) -> Request:
        return requests.build_request(
            method=method,
            from_uri=from_uri,
            to_uri=to_uri,
            pai=pai,
            local=local,
            ids=ids,
            route=route,
            offer=offer,
            text=text,
            expires=expires,
        )

    # Validates the inputs before any I/O, and stands in the result if we never connect.
    progress = _Progress(request=build(None))
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if staging is None:
        staging = Staging(end="bye" if hang_up else "leave")
    with trio.move_on_after(timeout) as scope:
        await _run(progress, edge, ssl_context, server_hostname, build, staging, rng, target)
    return progress.result(timed_out=scope.cancelled_caught, timeout=timeout)


async def _run(
    progress: _Progress,
    edge: tuple[str, int],
    ssl_context: ssl.SSLContext,
    server_hostname: str,
    build: _Builder,
    staging: Staging,
    rng: random.Random,
    target: str,
) -> None:
    try:
        tcp = await trio.open_tcp_stream(*edge)
    except OSError as exc:
        progress.tls_error = describe_network_error(exc, phase=Phase.CONNECT, target=target)
        return
    local_host, local_port = tcp.socket.getsockname()[:2]
    progress.local_port = local_port
    progress.request = build((local_host, local_port))
    stream = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname)
    try:
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, OSError) as exc:
            progress.tls_error = describe_network_error(exc, phase=Phase.HANDSHAKE, target=target)
            return
        progress.tls_version = stream.version()
        conn = SipConnection(stream)
        try:
            await conn.send(progress.request)
            progress.final = await _collect(conn, progress.request, progress.responses)
            progress.answered_at = trio.current_time()
        except PeerClosed:
            progress.tls_error = describe_closed(Phase.EXCHANGE, target)
            return
        except FramingError as exc:
            progress.tls_error = f"{target} sent bytes that are not SIP framing: {exc}"
            return
        except (trio.BrokenResourceError, OSError) as exc:
            progress.tls_error = describe_network_error(exc, phase=Phase.EXCHANGE, target=target)
            return
        try:
            await _finish(progress, conn, progress.final, staging, rng)
        except PeerClosed:
            progress.dialog_error = describe_closed(Phase.EXCHANGE, target)
        except FramingError as exc:
            progress.dialog_error = f"{target} sent bytes that are not SIP framing: {exc}"
        except (trio.BrokenResourceError, OSError) as exc:
            progress.dialog_error = describe_network_error(exc, phase=Phase.EXCHANGE, target=target)
    finally:
        with trio.move_on_after(CLOSE_TIMEOUT):
            with contextlib.suppress(trio.BrokenResourceError, OSError):
                # the peer may have gone first; the socket is closed either way
                await stream.aclose()


async def _collect(conn: SipConnection, request: Request, sink: list[Response]) -> Response:
    """Read until the final response to ``request``; every response to it goes to ``sink``.

    Anything else on the connection (a 2xx retransmission, a request from the
    Edge) is not ours and is skipped.
    """
    while True:
        message = await conn.receive()
        if isinstance(message, Response) and requests.answers(message, request):
            sink.append(message)
            if message.status >= 200:
                return message


async def _finish(
    progress: _Progress,
    conn: SipConnection,
    final: Response,
    staging: Staging,
    rng: random.Random,
) -> None:
    """ACK an INVITE's final response; a 2xx's dialog goes on as ``staging`` says."""
    request = progress.request

    def build(method: str, cseq: int, headers: tuple[tuple[str, str], ...], body: bytes) -> Request:
        return requests.build_dialog_request(
            request,
            final,
            method=method,
            cseq=cseq,
            branch=requests.new_branch(rng),
            headers=headers,
            body=body,
        )

    if request.method == "SUBSCRIBE" and final.status < 300:
        await after_subscribe(
            conn,
            request,
            staging,
            build=build,
            answered_at=progress.answered_at,
            user_agent=requests.USER_AGENT,
            out=progress.after,
        )
        return
    if request.method != "INVITE":
        return
    if final.status >= 300:
        progress.ack = requests.build_ack_for_failure(request, final)
        await conn.send(progress.ack)
        return
    ack = requests.build_ack_for_success(request, final, branch=requests.new_branch(rng))
    if staging.ack:
        progress.ack = ack
    await after_invite(
        conn,
        request,
        staging,
        ack=ack,
        build=build,
        answered_at=progress.answered_at,
        user_agent=requests.USER_AGENT,
        out=progress.after,
    )
