"""A simulated Skype for Business client: one request to the Edge's clients port.

It sends what the seed's client log shows (reference §7.1): a From tag and an
``epid`` of 10 lower-case hex digits, a 32-hex Call-ID, CSeq 1, a TLS Via, and
the harmless Microsoft ``Supported`` tokens of reference §7.3 (not
``Proxy-Require: ms-benotify``, which a partner would refuse with 420). Its
INVITE offers what a Skype client offers (:func:`simulator.skype.media.make_offer`:
``RTP/SAVP`` with its key under Microsoft's default policy; docs/reference/skype-user.md
§2), or an IM session; its SUBSCRIBE asks for presence with the Lync client's
``Accept`` list (reference 3.3). After a 2xx, :mod:`simulator.peer.dialog` goes
on (ACK, BYE through the Record-Route set, RFC 3261 §12.2.1.1; or waiting for
the called user's BYE; a subscription's NOTIFYs); after a failure, the ACK on
the INVITE's branch (§17.1.1.3).
"""

from __future__ import annotations

import base64
import random
import ssl
from dataclasses import dataclass, field
from typing import Literal, get_args

import trio

from simulator.errors import FedsimError
from simulator.peer.conn import PeerClosed, SipConnection
from simulator.peer.dialog import Afterwards, Staging, after_invite, after_subscribe, new_branch
from simulator.peer.requests import build_dialog_request
from simulator.peer.sdp import Offer, build_im_offer
from simulator.peer.tlserrors import Phase, describe_network_error
from simulator.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    build_response,
    parse_uri,
)
from simulator.skype.media import MediaEncryption, MediaSettings, make_offer

#: Methods ``fedsim client`` sends.
METHODS: tuple[str, ...] = ("INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE")
#: The client's media policy behind each offer (``srtp`` is Microsoft's default).
_POLICY: dict[str, MediaEncryption] = {
    "srtp": "required",
    "best-effort": "supported",
    "plain": "rejected",
}
#: A Lync/SfB client's presence SUBSCRIBE Accept list (V, docs/reference/skype-user.md 3.3).
PRESENCE_ACCEPT = (
    "application/msrtc-event-categories+xml, text/xml+msrtc.pidf, application/xpidf+xml, "
    "application/pidf+xml, application/rlmi+xml, multipart/related"
)
ClientOffer = Literal["srtp", "best-effort", "plain", "none", "im"]
#: What ``fedsim client --offer`` takes, the default first.
CLIENT_OFFERS: tuple[ClientOffer, ...] = get_args(ClientOffer)
#: Harmless Microsoft client extensions (reference §7.3, camel-sipe).
SUPPORTED = ("ms-delayed-accept", "ms-renders-gif")
#: What the simulated client calls itself (no Microsoft User-Agent string is on record).
USER_AGENT = "fedsim simulated Skype for Business client"
#: Body of a MESSAGE (RFC 3428).
MESSAGE_TEXT = b"Hello from a simulated Skype for Business client (fedsim)"


@dataclass(frozen=True, slots=True, kw_only=True)
class SkypeCallResult:
    """Everything one client request produced.

    Attributes:
        request: what was sent (or would have been: ``local`` is None when the
            connection failed).
        responses: every response to it, in arrival order.
        final: the final response, or None.
        ack / bye: the ACK and BYE sent after an INVITE's final response.
        bye_responses: responses to the BYE.
        error: one line when no final response arrived (TLS, connect, timeout).
        local: our (ip, port) on the connection.
        after: what followed a 2xx (the user's BYE, NOTIFYs, every message).
    """

    request: Request
    responses: tuple[Response, ...]
    final: Response | None
    ack: Request | None = None
    bye: Request | None = None
    bye_responses: tuple[Response, ...] = ()
    error: str | None = None
    local: tuple[str, int] | None = None
    after: Afterwards = field(default_factory=Afterwards)


def _check_uri(what: str, value: str) -> SipUri:
    try:
        uri = parse_uri(value)
    except SipParseError as exc:
        raise FedsimError(
            f"{what} {value!r} is not a SIP URI ({exc}); write it like sip:bob@cms.steven.lab"
        ) from None
    if not isinstance(uri, SipUri):
        raise FedsimError(f"{what} {value!r} must be a sip: or sips: URI")
    return uri


def build_client_request(
    *,
    method: str,
    from_uri: str,
    to_uri: str,
    local: tuple[str, int],
    rng: random.Random,
    display_name: str | None = None,
    offer: Offer = "srtp",
    text: str | None = None,
    expires: int | None = None,
) -> Request:
    """The out-of-dialog request a Skype client sends (see the module docstring).

    Args:
        offer: the INVITE's SDP: ``srtp`` (Microsoft's default policy),
            ``best-effort``, ``plain``, ``none`` or ``im`` (an IM session).
        text: a MESSAGE's body, or an IM session's first message.
        expires: a SUBSCRIBE's Expires (default 3600).

    Raises:
        FedsimError: an unknown method or a URI that is not a SIP URI.
    """
    if method not in METHODS:
        raise FedsimError(f"method {method!r} is not one of {', '.join(METHODS)}")
    caller = _check_uri("--from", from_uri)
    _check_uri("--to", to_uri)
    host, port = local
    sent_by = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = f'"{display_name}"' if display_name else ""
    pairs = [
        ("Via", f"SIP/2.0/TLS {sent_by};branch=z9hG4bK{rng.getrandbits(64):016x}"),
        ("Max-Forwards", "70"),
        (
            "From",
            f"{name}<{from_uri}>;tag={rng.getrandbits(40):010x};epid={rng.getrandbits(40):010x}",
        ),
        ("To", f"<{to_uri}>"),
        ("Call-ID", f"{rng.getrandbits(128):032x}"),
        ("CSeq", f"1 {method}"),
        ("Contact", f"<sip:{caller.user or 'user'}@{sent_by};transport=tls>"),
        ("User-Agent", USER_AGENT),
        *(("Supported", token) for token in SUPPORTED),
        ("ms-keep-alive", "UAC;hop-hop=yes"),
    ]
    body = b""
    if method == "INVITE" and offer == "im":
        pairs.append(("Supported", "ms-embedded-first-message"))
        if text is not None:
            encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
            pairs.append(("ms-text-format", f"text/plain; charset=UTF-8; ms-body={encoded}"))
        pairs.append(("Content-Type", "application/sdp"))
        body = build_im_offer(address=host)
    elif method == "INVITE" and offer != "none":
        pairs.append(("Content-Type", "application/sdp"))
        settings = MediaSettings(encryption=_POLICY[offer])
        port = 2 * rng.randint(5000, 32000)
        body = make_offer(settings=settings, address=host, port=port, rng=rng)
    elif method == "MESSAGE":
        pairs.append(("Content-Type", "text/plain; charset=UTF-8"))
        body = MESSAGE_TEXT if text is None else text.encode("utf-8")
    elif method == "SUBSCRIBE":
        pairs += [
            ("Event", "presence"),
            ("Accept", PRESENCE_ACCEPT),
            ("Expires", str(3600 if expires is None else expires)),
        ]
    return Request(method=method, uri=to_uri, headers=Headers(pairs), body=body)


def _in_dialog(
    request: Request,
    final: Response,
    method: str,
    cseq: int,
    branch: str,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Request:
    """A request inside the dialog of a 2xx (RFC 3261 §12.2.1.1, UAC side), as the client."""
    return build_dialog_request(
        request,
        final,
        method=method,
        cseq=cseq,
        branch=branch,
        headers=headers,
        body=body,
        user_agent=USER_AGENT,
    )


def _ack_failure(request: Request, final: Response) -> Request:
    """ACK for a non-2xx final (RFC 3261 §17.1.1.3): the INVITE's Via, hence its branch."""
    pairs = [
        ("Via", request.headers.get("Via") or ""),
        ("Max-Forwards", "70"),
        ("From", request.headers.get("From") or ""),
        ("To", final.headers.get("To") or ""),
        ("Call-ID", request.call_id),
        ("CSeq", f"{request.cseq[0]} ACK"),
    ]
    return Request(method="ACK", uri=request.uri, headers=Headers(pairs))


async def _final(
    conn: SipConnection, request: Request, responses: list[Response]
) -> Response | None:
    """Read until the final response to ``request``; answer requests the Edge relays (BYE)."""
    while True:
        message = await conn.receive()
        if isinstance(message, Request):
            if message.method != "ACK":
                await conn.send(build_response(message, 200, headers=[("User-Agent", USER_AGENT)]))
            continue
        if message.call_id != request.call_id or message.cseq != request.cseq:
            continue
        responses.append(message)
        if message.status >= 200:
            return message


async def skype_call(
    *,
    edge: tuple[str, int],
    ssl_context: ssl.SSLContext,
    server_hostname: str | None,
    from_uri: str,
    to_uri: str,
    method: str = "INVITE",
    display_name: str | None = None,
    hang_up: bool = True,
    timeout: float = 10.0,  # noqa: ASYNC109 (one bound for the whole exchange, as place_call)
    rng: random.Random | None = None,
    offer: ClientOffer = "srtp",
    staging: Staging | None = None,
    text: str | None = None,
    expires: int | None = None,
) -> SkypeCallResult:
    """Connect to the Edge's clients port, send one request, and finish the exchange.

    ``staging`` says what follows a 2xx (:class:`simulator.peer.dialog.Staging`;
    None: ACK, then BYE as ``hang_up`` says). Never raises for network trouble:
    it is reported in ``error``.

    Raises:
        FedsimError: bad method or URIs (checked before connecting).
    """
    rng = rng or random.Random()
    target = f"{edge[0]}:{edge[1]}"
    if staging is None:
        staging = Staging(end="bye" if hang_up else "leave")

    def build(local: tuple[str, int], source: random.Random) -> Request:
        return build_client_request(
            method=method,
            from_uri=from_uri,
            to_uri=to_uri,
            local=local,
            rng=source,
            display_name=display_name,
            offer=offer,
            text=text,
            expires=expires,
        )

    # Validate before connecting, so bad input is exit 2 and not a network error.
    build(("0.0.0.0", 0), random.Random())
    responses: list[Response] = []
    after = Afterwards()
    request: Request | None = None
    final: Response | None = None
    ack: Request | None = None
    local: tuple[str, int] | None = None
    phase = Phase.CONNECT
    error: str | None = None
    with trio.move_on_after(timeout) as scope:
        try:
            tcp = await trio.open_tcp_stream(*edge)
            name = tcp.socket.getsockname()
            local = (str(name[0]), int(name[1]))
            stream = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname)
            phase = Phase.HANDSHAKE
            async with stream:
                await stream.do_handshake()
                phase = Phase.EXCHANGE
                conn = SipConnection(stream)
                request = build(local, rng)
                await conn.send(request)
                final = got = await _final(conn, request, responses)
                assert got is not None  # _final returns only with a final response
                ack = await _finish(conn, request, got, staging, rng, after)
        except PeerClosed:
            error = f"{target} closed the connection without a final response"
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            error = describe_network_error(exc, phase=phase, target=target)
    if scope.cancelled_caught and error is None:
        if final is None:
            error = f"no final response within {timeout:g} s"
        else:
            after.error = _unfinished(method, final, after, timeout)
    if request is None or final is None:
        return _failed(method, from_uri, to_uri, request, responses, error or "no final response")
    sent_bye = next(
        (m for sent, m in after.messages if sent and isinstance(m, Request) and m.method == "BYE"),
        None,
    )
    bye_responses = tuple(
        m
        for sent, m in after.messages
        if not sent and isinstance(m, Response) and sent_bye is not None and m.cseq == sent_bye.cseq
    )
    return SkypeCallResult(
        request=request,
        responses=tuple(responses),
        final=final,
        ack=ack,
        bye=sent_bye if isinstance(sent_bye, Request) else None,
        bye_responses=bye_responses,
        error=error,
        local=local,
        after=after,
    )


def _unfinished(method: str, final: Response, after: Afterwards, timeout: float) -> str | None:
    if final.status >= 300:
        return None
    if method == "INVITE" and after.bye is None:
        return f"the called user sent no BYE within {timeout:g} s"
    if method == "SUBSCRIBE":
        return f"the subscription did not end within {timeout:g} s"
    return None


async def _finish(
    conn: SipConnection,
    request: Request,
    final: Response,
    staging: Staging,
    rng: random.Random,
    after: Afterwards,
) -> Request | None:
    """The ACK of an INVITE's final; a 2xx's dialog as ``staging`` says. Returns the ACK sent."""

    def build(method: str, cseq: int, headers: tuple[tuple[str, str], ...], body: bytes) -> Request:
        return _in_dialog(request, final, method, cseq, new_branch(rng), headers, body)

    answered_at = trio.current_time()
    if request.method == "SUBSCRIBE" and final.status < 300:
        await after_subscribe(
            conn,
            request,
            staging,
            build=build,
            answered_at=answered_at,
            user_agent=USER_AGENT,
            out=after,
        )
        return None
    if request.method != "INVITE":
        return None
    if final.status >= 300:
        ack = _ack_failure(request, final)
        await conn.send(ack)
        return ack
    ack = _in_dialog(request, final, "ACK", request.cseq[0], new_branch(rng))
    await after_invite(
        conn,
        request,
        staging,
        ack=ack,
        build=build,
        answered_at=answered_at,
        user_agent=USER_AGENT,
        out=after,
    )
    return ack if staging.ack else None


def _failed(
    method: str,
    from_uri: str,
    to_uri: str,
    request: Request | None,
    responses: list[Response],
    error: str,
) -> SkypeCallResult:
    if request is None:
        request = build_client_request(
            method=method,
            from_uri=from_uri,
            to_uri=to_uri,
            local=("0.0.0.0", 0),
            rng=random.Random(0),
        )
    final = next((r for r in responses if r.status >= 200), None)
    return SkypeCallResult(request=request, responses=tuple(responses), final=final, error=error)
