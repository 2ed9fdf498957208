"""The partner's server side: a simulated Expressway-E answering calls the Edge sends out.

It is what the Edge's outbound connector reaches after SRV and A lookups: a
mutual-TLS listener (the ``ssl_context`` decides whether the Edge's certificate
is requested and which CAs it must chain to, so "the Expressway does not trust
the Edge" is staged with a trust list that lacks the Edge's CA) that answers
like an Expressway-E whose zone routes the call to an endpoint:

- INVITE: ``100 Trying``, then ``answer`` (200 with an SDP answer and a
  Contact; or 404/480/486/503/... with the standard reason phrase and no
  ms-diagnostics, which Expressway never sends). The answer follows the zone's
  media encryption (``media``: ``auto`` answers SRTP to a keyed offer, ``plain``
  cannot encrypt, ``srtp`` must): an offer it cannot take gets ``488``. With
  ``ring_seconds`` it sends ``180 Ringing`` and waits that long, so a CANCEL can arrive in time
  (``200`` to the CANCEL, ``487`` to the INVITE, RFC 3261 §9.2).
- ACK is absorbed; BYE ends a dialog (``481`` for one we never made);
  OPTIONS gets 200; MESSAGE gets 200 (or ``answer``).
- SUBSCRIBE for presence: 200 and PIDF NOTIFYs with the ``presence`` it is given,
  as the IM and Presence Service behind an Expressway-E (:mod:`simulator.peer.presence`).

Many requests per connection, CRLF keep-alive pongs (RFC 5626 §3.5.1), a
handshake timeout, and no client can stop the listener.
"""

from __future__ import annotations

import contextlib
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import trio

from simulator.errors import FedsimError
from simulator.net import PEER_FAULTS, Reporter, serve_guarded, stderr_reporter
from simulator.peer import requests, sdp
from simulator.peer.conn import PeerClosed, SipConnection
from simulator.peer.presence import PeerPresence
from simulator.peer.tlserrors import Phase, describe_network_error
from simulator.sip import (
    REASON_PHRASES,
    FramingError,
    Request,
    Response,
    SipParseError,
    SipUri,
    build_response,
    parse_uri,
)
from simulator.skype.presence import availability

#: Seconds a client may take to finish the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds a connection may stay silent before we close it (Expressway's TLS idle default is long).
IDLE_TIMEOUT = 600.0
#: How long we linger after sending a TLS alert, so closing does not reset it away.
ALERT_LINGER = 1.0
#: What the simulated Expressway calls itself in responses.
SERVER = requests.USER_AGENT
#: Methods we know but do not serve: 405 with Allow (RFC 3261 §8.2.1); others get 501.
KNOWN_UNSERVED = frozenset({"NOTIFY", "REFER", "PRACK", "PUBLISH", "REGISTER"})
#: Where the (absent) media of our answers would go.
MEDIA_PORT = 24000

#: Reason phrase of a status missing from the standard table, by class (RFC 3261 §21).
CLASS_REASONS: dict[int, str] = {
    1: "Progress",
    2: "OK",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}

OnRequest = Callable[[Request, tuple[str, int]], None]
OnTlsError = Callable[[str, tuple[str, int]], None]


def check_answer(answer: int) -> int:
    """Return ``answer`` if a UAS may answer INVITE with it (200 or 300-699)."""
    if answer != 200 and not 300 <= answer <= 699:
        raise FedsimError(f"answer {answer} must be 200 or a failure status in 300-699")
    return answer


@dataclass(slots=True, kw_only=True)
class _Peer:
    """State shared by every connection of one simulated Expressway-E."""

    ssl_context: ssl.SSLContext
    answer: int
    name: str
    ring_seconds: float
    media: sdp.AnswerEncryption
    handshake_timeout: float
    idle_timeout: float
    rng: random.Random
    on_request: OnRequest | None
    on_tls_error: OnTlsError | None
    presence: PeerPresence
    #: (Call-ID, our To tag) of the dialogs our 200s created and no BYE ended yet.
    dialogs: set[tuple[str, str]] = field(default_factory=set)
    #: (Call-ID, CSeq number) of INVITEs still ringing -> the event a CANCEL sets.
    ringing: dict[tuple[str, int], trio.Event] = field(default_factory=dict)

    def new_tag(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"


async def serve_peer(
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    answer: int = 200,
    name: str = "expe",
    on_request: OnRequest | None = None,
    on_tls_error: OnTlsError | None = None,
    ring_seconds: float = 0.0,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    idle_timeout: float = IDLE_TIMEOUT,
    rng: random.Random | None = None,
    report: Reporter | None = None,
    media: sdp.AnswerEncryption = "auto",
    presence: str = "online",
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on ``host:port`` as a simulated Expressway-E until cancelled.

    Args:
        host: address to bind (an IP literal; port 0 asks the OS for a free port).
        port: port to bind.
        ssl_context: server context: our certificate, and whether and how we check
            the Edge's (``verify_mode`` and the trusted CAs).
        answer: final status for INVITE (and MESSAGE): 200, or 300-699.
        name: the peer's name in the lab, used as the Contact user fallback.
        on_request: called with every request received and the sender's address.
        on_tls_error: called with a one-line reason when a handshake fails.
        ring_seconds: send 180 and wait this long before the final response.
        handshake_timeout: seconds a client gets to complete the TLS handshake.
        idle_timeout: seconds a silent connection (or one that takes no answers) is kept.
        rng: source of tags and SDP ids.
        report: where a fedsim bug reached by one connection is reported (stderr by
            default); the listener goes on.
        media: the zone's media encryption (``auto``, ``plain``, ``srtp``).
        presence: the state its users publish to a SUBSCRIBE (``online``, ``busy``...).
        task_status: receives the bound (host, port).

    Raises:
        FedsimError: a bad ``answer``, ``ring_seconds`` or ``presence``, or the address
            cannot be bound.
    """
    check_answer(answer)
    try:
        state = availability(presence)
    except ValueError as exc:
        raise FedsimError(str(exc)) from None
    if ring_seconds < 0:
        raise FedsimError(f"ring_seconds must not be negative, not {ring_seconds}")
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise FedsimError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another process using the port?)"
        ) from None
    rng = rng if rng is not None else random.Random()
    peer = _Peer(
        ssl_context=ssl_context,
        answer=answer,
        name=name,
        ring_seconds=ring_seconds,
        media=media,
        handshake_timeout=handshake_timeout,
        idle_timeout=idle_timeout,
        rng=rng,
        on_request=on_request,
        on_tls_error=on_tls_error,
        presence=PeerPresence(availability=state, rng=rng, user_agent=SERVER),
    )
    bound_host, bound_port = listeners[0].socket.getsockname()[:2]
    task_status.started((bound_host, bound_port))
    await serve_guarded(
        partial(_serve_connection, peer),
        listeners,
        server="peer",
        report=report or stderr_reporter(),
        expected=(*PEER_FAULTS, PeerClosed, FramingError),
    )


def _address(tcp: trio.SocketStream, *, local: bool) -> tuple[str, int]:
    try:
        name = tcp.socket.getsockname() if local else tcp.socket.getpeername()
    except OSError:  # the client is already gone
        return ("0.0.0.0", 0)
    return (str(name[0]), int(name[1]))


async def _serve_connection(peer: _Peer, tcp: trio.SocketStream) -> None:
    """One client connection: handshake, then requests until EOF, error or idle timeout."""
    remote = _address(tcp, local=False)
    local = _address(tcp, local=True)
    stream = trio.SSLStream(tcp, peer.ssl_context, server_side=True)
    with trio.move_on_after(peer.handshake_timeout) as handshake:
        try:
            await stream.do_handshake()
        except (trio.BrokenResourceError, OSError) as exc:
            if peer.on_tls_error is not None:
                target = f"{remote[0]}:{remote[1]}"
                reason = describe_network_error(exc, phase=Phase.HANDSHAKE, target=target)
                peer.on_tls_error(reason, remote)
            await _send_pending_alert(stream, tcp)
            await trio.aclose_forcefully(tcp)
            return
    if handshake.cancelled_caught:
        if peer.on_tls_error is not None:
            peer.on_tls_error(f"no TLS handshake within {peer.handshake_timeout:g} s", remote)
        await trio.aclose_forcefully(stream)
        return
    conn = SipConnection(stream)
    async with trio.open_nursery() as nursery:
        try:
            while True:
                with trio.move_on_after(peer.idle_timeout) as idle:
                    message = await conn.receive()
                    if isinstance(message, Request):
                        # Inside the deadline: a client that stops reading our answers
                        # (so that sending blocks) is closed like a silent one.
                        await _handle(peer, conn, message, remote, local, nursery)
                if idle.cancelled_caught:
                    break
        except (PeerClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away; nothing to answer any more
        except FramingError:
            pass  # RFC 3261 §18.3: the stream lost its framing; only closing is left
        finally:
            nursery.cancel_scope.cancel()
    with trio.move_on_after(ALERT_LINGER):
        with contextlib.suppress(trio.BrokenResourceError, OSError):
            # the peer may have gone first; the socket is closed either way
            await stream.aclose()


async def _send_pending_alert(
    stream: trio.SSLStream[trio.SocketStream], tcp: trio.SocketStream
) -> None:
    """Send the TLS alert OpenSSL queued when the handshake failed.

    trio marks the stream broken and drops the queued bytes when the handshake
    raises (trio/_ssl.py, ``_retry``), so the client would only see EOF. A real
    Expressway (OpenSSL) sends the alert: ``unknown ca`` (48) for a client
    certificate it does not trust, ``certificate required`` (116, TLS 1.3) for
    none. We send it too, then read until the client closes, so our close is
    not a TCP reset that could discard the alert.
    """
    outgoing = getattr(stream, "_outgoing", None)
    if not isinstance(outgoing, ssl.MemoryBIO):
        return
    alert = outgoing.read()
    if not alert:
        return
    with trio.move_on_after(ALERT_LINGER):
        try:
            await tcp.send_all(alert)
            while await tcp.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


def _response(
    peer: _Peer,
    request: Request,
    status: int,
    *,
    to_tag: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """A response from us; RFC 3261 §8.2.6.2: every one but 100 gets a To tag if it has none."""
    if to_tag is None and status > 100 and not request.to.tag:
        to_tag = peer.new_tag()
    return build_response(
        request,
        status,
        REASON_PHRASES.get(status, CLASS_REASONS[status // 100]),
        to_tag=to_tag,
        headers=(*headers, ("Server", SERVER)),
        body=body,
    )


async def _handle(
    peer: _Peer,
    conn: SipConnection,
    request: Request,
    remote: tuple[str, int],
    local: tuple[str, int],
    nursery: trio.Nursery,
) -> None:
    """Answer one request as the simulated Expressway-E."""
    if peer.on_request is not None:
        peer.on_request(request, remote)
    method = request.method
    try:
        if method == "ACK":
            return  # RFC 3261 §17.2.1: ACK ends the INVITE transaction; never answered
        if method == "INVITE":
            await _invite(peer, conn, request, local, nursery)
        elif method == "CANCEL":
            await _cancel(peer, conn, request)
        elif method == "BYE":
            key = (request.call_id, request.to.tag or "")
            if key in peer.dialogs:
                peer.dialogs.discard(key)
                await conn.send(_response(peer, request, 200))
            else:
                await conn.send(_response(peer, request, 481))
        elif method in ("OPTIONS", "INFO", "UPDATE"):
            await conn.send(_response(peer, request, 200, headers=_capabilities()))
        elif method == "MESSAGE":
            status = peer.answer
            await conn.send(_response(peer, request, status))
        elif method == "SUBSCRIBE":
            await _subscribe(peer, conn, request, local, nursery)
        elif method in KNOWN_UNSERVED:
            await conn.send(_response(peer, request, 405, headers=(("Allow", requests.ALLOW),)))
        else:
            await conn.send(_response(peer, request, 501, headers=(("Allow", requests.ALLOW),)))
    except SipParseError:
        # The request parsed but cannot be answered (e.g. a Via we cannot echo):
        # RFC 3261 §8.2 leaves nothing to send; keep serving the connection.
        return


async def _subscribe(
    peer: _Peer,
    conn: SipConnection,
    request: Request,
    local: tuple[str, int],
    nursery: trio.Nursery,
) -> None:
    async def respond(
        status: int, reason: str, tag: str | None, headers: tuple[tuple[str, str], ...]
    ) -> None:
        response = _response(peer, request, status, to_tag=tag, headers=headers)
        await conn.send(replace(response, reason=reason))

    await peer.presence.subscribe(
        conn,
        request,
        local=local,
        contact=_contact(request, local, peer.name),
        respond=respond,
        nursery=nursery,
    )


def _capabilities() -> tuple[tuple[str, str], ...]:
    """What an OPTIONS answer advertises (RFC 3261 §11.2)."""
    return (
        ("Allow", requests.ALLOW),
        ("Accept", "application/sdp"),
        ("Supported", "replaces,timer"),
    )


def _contact(request: Request, local: tuple[str, int], name: str) -> str:
    try:
        callee = parse_uri(request.uri)
    except SipParseError:
        callee = None
    user = (callee.user if isinstance(callee, SipUri) else None) or name
    host, port = local
    sent_by = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"<sip:{user}@{sent_by};transport=tls>"


async def _invite(
    peer: _Peer,
    conn: SipConnection,
    request: Request,
    local: tuple[str, int],
    nursery: trio.Nursery,
) -> None:
    """INVITE server transaction (RFC 3261 §17.2.1) on a reliable transport."""
    to_tag = request.to.tag
    if to_tag:
        # A re-INVITE (RFC 3261 §14.2): answer inside a dialog we know, else 481.
        if (request.call_id, to_tag) in peer.dialogs:
            await conn.send(_accept(peer, request, local, to_tag))
        else:
            await conn.send(_response(peer, request, 481))
        return
    # RFC 3261 §8.2.6.1: 100 Trying carries no To tag.
    await conn.send(_response(peer, request, 100))
    tag = peer.new_tag()
    if peer.ring_seconds > 0:
        await conn.send(_response(peer, request, 180, to_tag=tag))
        cancelled = trio.Event()
        key = (request.call_id, request.cseq[0])
        peer.ringing[key] = cancelled
        nursery.start_soon(_ring_then_answer, peer, conn, request, local, tag, cancelled, key)
        return
    await _answer(peer, conn, request, local, tag)


async def _ring_then_answer(
    peer: _Peer,
    conn: SipConnection,
    request: Request,
    local: tuple[str, int],
    tag: str,
    cancelled: trio.Event,
    key: tuple[str, int],
) -> None:
    try:
        with trio.move_on_after(peer.ring_seconds):
            await cancelled.wait()
        if cancelled.is_set():
            # RFC 3261 §9.2: the cancelled INVITE is answered 487.
            await conn.send(_response(peer, request, 487, to_tag=tag))
        else:
            await _answer(peer, conn, request, local, tag)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the caller left while we rang
    finally:
        peer.ringing.pop(key, None)


async def _answer(
    peer: _Peer, conn: SipConnection, request: Request, local: tuple[str, int], tag: str
) -> None:
    if peer.answer != 200:
        # Expressway relays the endpoint's failure as it is: no ms-diagnostics.
        await conn.send(_response(peer, request, peer.answer, to_tag=tag))
        return
    await conn.send(_accept(peer, request, local, tag))


def _accept(peer: _Peer, request: Request, local: tuple[str, int], tag: str) -> Response:
    """200 to an INVITE with an SDP answer, or 488 when the offer shares no codec with us."""
    session_id = peer.rng.randint(1, 2**31 - 1)
    if request.body:
        body = sdp.build_answer(
            request.body,
            address=local[0],
            port=MEDIA_PORT,
            session_id=session_id,
            encryption=peer.media,
        )
    else:
        # No offer in the INVITE: the offer goes in the 200 (RFC 3264 §5, RFC 3261 §13.2.1).
        offer: sdp.Offer = "srtp" if peer.media == "srtp" else "plain"
        body = sdp.build_offer(
            address=local[0], port=MEDIA_PORT, session_id=session_id, encryption=offer
        )
    if body is None:
        return _response(peer, request, 488, to_tag=tag)
    peer.dialogs.add((request.call_id, tag))
    headers = (
        ("Contact", _contact(request, local, peer.name)),
        ("Allow", requests.ALLOW),
        ("Supported", "replaces,timer"),
        ("Content-Type", "application/sdp"),
    )
    return _response(peer, request, 200, to_tag=tag, headers=headers, body=body)


async def _cancel(peer: _Peer, conn: SipConnection, request: Request) -> None:
    """CANCEL (RFC 3261 §9.2): 200 and a 487 for a ringing INVITE; 481 for anything else."""
    event = peer.ringing.pop((request.call_id, request.cseq[0]), None)
    if event is None:
        await conn.send(_response(peer, request, 481))
        return
    await conn.send(_response(peer, request, 200))
    event.set()
