"""A simulated Skype for Business client: one request to the Edge's clients port.

It sends what the seed's client log shows (reference §7.1): a From tag and an
``epid`` of 10 lower-case hex digits, a 32-hex Call-ID, CSeq 1, a TLS Via, and
the harmless Microsoft ``Supported`` tokens of reference §7.3 (not
``Proxy-Require: ms-benotify``, which a partner would refuse with 420). After a
2xx to INVITE it sends ACK and BYE through the Record-Route set (RFC 3261
§12.2.1.1); after a failure, the ACK on the INVITE's branch (§17.1.1.3).
"""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass

import trio

from simulator.errors import FedsimError
from simulator.peer.conn import PeerClosed, SipConnection
from simulator.peer.tlserrors import Phase, describe_network_error
from simulator.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    build_response,
    parse_name_addr,
    parse_uri,
)
from simulator.skype.sdp import build_answer

#: Methods ``fedsim client`` sends.
METHODS: tuple[str, ...] = ("INVITE", "MESSAGE", "OPTIONS")
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
    """

    request: Request
    responses: tuple[Response, ...]
    final: Response | None
    ack: Request | None = None
    bye: Request | None = None
    bye_responses: tuple[Response, ...] = ()
    error: str | None = None
    local: tuple[str, int] | None = None


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
) -> Request:
    """The out-of-dialog request a Skype client sends (see the module docstring).

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
    if method == "INVITE":
        pairs.append(("Content-Type", "application/sdp"))
        # With no offer to answer, build_answer makes an audio offer of its own.
        body = build_answer(b"", address=host, session_id=rng.getrandbits(31))
    elif method == "MESSAGE":
        pairs.append(("Content-Type", "text/plain; charset=UTF-8"))
        body = MESSAGE_TEXT
    return Request(method=method, uri=to_uri, headers=Headers(pairs), body=body)


def _in_dialog(request: Request, final: Response, method: str, cseq: int, branch: str) -> Request:
    """ACK or BYE inside the dialog of a 2xx (RFC 3261 §12.2.1.1, UAC side)."""
    contact = final.headers.get("Contact")
    target = str(parse_name_addr(contact).uri) if contact else request.uri
    routes = list(reversed(final.headers.get_all("Record-Route")))
    via = (request.headers.get("Via") or "").split(";branch=", 1)[0]
    pairs = [
        ("Via", f"{via};branch={branch}"),
        ("Max-Forwards", "70"),
        *(("Route", r) for r in routes),
        ("From", request.headers.get("From") or ""),
        ("To", final.headers.get("To") or ""),
        ("Call-ID", request.call_id),
        ("CSeq", f"{cseq} {method}"),
        ("User-Agent", USER_AGENT),
    ]
    return Request(method=method, uri=target, headers=Headers(pairs))


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
) -> SkypeCallResult:
    """Connect to the Edge's clients port, send one request, and finish the exchange.

    Never raises for network trouble: it is reported in ``error``.

    Raises:
        FedsimError: bad method or URIs (checked before connecting).
    """
    rng = rng or random.Random()
    target = f"{edge[0]}:{edge[1]}"
    # Validate before connecting, so bad input is exit 2 and not a network error.
    build_client_request(
        method=method, from_uri=from_uri, to_uri=to_uri, local=("0.0.0.0", 0), rng=random.Random()
    )
    responses: list[Response] = []
    request: Request | None = None
    phase = Phase.CONNECT
    with trio.move_on_after(timeout):
        try:
            tcp = await trio.open_tcp_stream(*edge)
            local = tcp.socket.getsockname()
            stream = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname)
            phase = Phase.HANDSHAKE
            async with stream:
                await stream.do_handshake()
                phase = Phase.EXCHANGE
                conn = SipConnection(stream)
                request = build_client_request(
                    method=method,
                    from_uri=from_uri,
                    to_uri=to_uri,
                    local=(str(local[0]), int(local[1])),
                    rng=rng,
                    display_name=display_name,
                )
                await conn.send(request)
                final = await _final(conn, request, responses)
                assert final is not None
                ack = bye = None
                bye_responses: list[Response] = []
                if method == "INVITE":
                    if final.status < 300:
                        branch = f"z9hG4bK{rng.getrandbits(64):016x}"
                        ack = _in_dialog(request, final, "ACK", request.cseq[0], branch)
                    else:
                        ack = _ack_failure(request, final)
                    await conn.send(ack)
                    if final.status < 300 and hang_up:
                        bye = _in_dialog(
                            request,
                            final,
                            "BYE",
                            request.cseq[0] + 1,
                            f"z9hG4bK{rng.getrandbits(64):016x}",
                        )
                        await conn.send(bye)
                        await _final(conn, bye, bye_responses)
                return SkypeCallResult(
                    request=request,
                    responses=tuple(responses),
                    final=final,
                    ack=ack,
                    bye=bye,
                    bye_responses=tuple(bye_responses),
                    local=(str(local[0]), int(local[1])),
                )
        except PeerClosed:
            error = f"{target} closed the connection without a final response"
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            error = describe_network_error(exc, phase=phase, target=target)
        return _failed(method, from_uri, to_uri, request, responses, error)
    return _failed(
        method, from_uri, to_uri, request, responses, f"no final response within {timeout:g} s"
    )


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
