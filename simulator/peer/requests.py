"""The requests a Cisco Expressway-E sends into a federation, built as data. No I/O.

The shapes follow what an Expressway-E X14 puts on the wire towards a Skype for
Business Edge (the Cisco note in shared/seeds shows its Via, From, Call-ID and
CSeq): a TLS Via with a ``z9hG4bK`` branch, a 16-hex From tag, a uuid4 Call-ID,
a large random CSeq number, ``TANDBERG/...`` as User-Agent.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass

from simulator.errors import FedsimError
from simulator.peer import sdp
from simulator.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    parse_name_addr,
    parse_uri,
)

#: What Expressway X14 calls itself (the product code 4352 is Expressway's).
USER_AGENT = "TANDBERG/4352 (X14.0.2)"
#: Methods the simulated Expressway-E handles, advertised in Allow (RFC 3261 §20.5).
ALLOW = "INVITE,ACK,CANCEL,OPTIONS,INFO,BYE,UPDATE,MESSAGE"
#: Methods ``fedsim call`` can start a transaction with.
METHODS: tuple[str, ...] = ("INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE")
#: What a presence subscription from IM and Presence accepts (PIDF, RFC 3856).
PRESENCE_ACCEPT = "application/pidf+xml"
#: Expires of a SUBSCRIBE when none is asked for (RFC 3856 §6's default).
DEFAULT_EXPIRES = 3600
#: RFC 3261 §8.1.1.6.
MAX_FORWARDS = "70"
#: RFC 3261 §8.1.1.7: every branch we make starts with the magic cookie.
BRANCH_COOKIE = "z9hG4bK"
#: Body of a MESSAGE (RFC 3428): plain text, as an Expressway relays a chat line.
MESSAGE_TEXT = b"Hello from a simulated Expressway-E (fedsim)"
#: Sent-by of a request that never got a connection (RFC 6761 §6.4: never resolves).
UNCONNECTED_HOST = "fedsim.invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallIds:
    """The random parts of one call, drawn from the caller's ``rng`` so tests can fix them."""

    call_id: str
    from_tag: str
    branch: str
    cseq: int
    session_id: int
    rtp_port: int

    def __post_init__(self) -> None:
        if not self.branch.startswith(BRANCH_COOKIE):
            raise ValueError(f"branch must start with {BRANCH_COOKIE}: {self.branch!r}")
        if not 1 <= self.cseq < 2**31:
            raise ValueError(f"CSeq number must be in 1..2**31-1 (RFC 3261 §8.1.1.5): {self.cseq}")

    @classmethod
    def generate(cls, rng: random.Random) -> CallIds:
        """Draw a fresh set of identifiers."""
        return cls(
            call_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            from_tag=f"{rng.getrandbits(64):016x}",
            branch=new_branch(rng),
            cseq=rng.randint(1, 2**31 - 1),
            session_id=rng.randint(1, 2**31 - 1),
            rtp_port=2 * rng.randint(1163, 16383),
        )


def new_branch(rng: random.Random) -> str:
    """A new RFC 3261 §8.1.1.7 branch: the cookie and 32 random hex digits."""
    return f"{BRANCH_COOKIE}{rng.getrandbits(128):032x}"


def check_sip_uri(what: str, value: str) -> str:
    """Return ``value`` if it is a sip:/sips: URI, else raise FedsimError naming ``what``."""
    try:
        uri = parse_uri(value)
    except SipParseError as exc:
        raise FedsimError(
            f"{what} {value!r} is not a SIP URI ({exc}); write it like sip:2000@acano.steven.lab"
        ) from None
    if uri.scheme.lower() not in ("sip", "sips"):
        raise FedsimError(f"{what} {value!r} must be a sip: or sips: URI")
    return value


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build_request(
    *,
    method: str,
    from_uri: str,
    to_uri: str,
    pai: str | None,
    local: tuple[str, int] | None,
    ids: CallIds,
    route: str | None = None,
    offer: sdp.Offer = "best-effort",
    text: str | None = None,
    expires: int | None = None,
) -> Request:
    """The out-of-dialog request an Expressway-E sends to a federated Edge.

    Args:
        method: INVITE (with an SDP offer), MESSAGE (text/plain), OPTIONS (no
            body) or SUBSCRIBE (presence, PIDF).
        from_uri: caller, written in From (with a tag) and as the Contact's user.
        to_uri: Request-URI and To.
        pai: P-Asserted-Identity (RFC 3325), the URI the Edge takes the domain from.
        local: our (ip, port) on the connection, for Via and Contact; None when
            the connection was never made (the request is then only reported).
        ids: the call's random identifiers.
        route: a Route header field to send (RFC 3261 §8.1.1.1: a pre-existing route
            set), e.g. ``<sip:sip.skype.lab;lr>``; None sends none.
        offer: the INVITE's SDP (:data:`simulator.peer.sdp.OFFERS`); ``im`` opens
            a Skype IM session, whose first message rides in ``ms-text-format``.
        text: the MESSAGE body, or the IM session's first message.
        expires: a SUBSCRIBE's Expires (default 3600).

    Raises:
        FedsimError: a method we do not send, or a URI that is not a SIP URI.
    """
    if method not in METHODS:
        raise FedsimError(f"method {method!r} is not one of {', '.join(METHODS)}")
    check_sip_uri("from URI", from_uri)
    check_sip_uri("to URI", to_uri)
    if pai is not None:
        check_sip_uri("P-Asserted-Identity", pai)
    if route is not None and (not route.strip() or any(c in route for c in "\r\n")):
        raise FedsimError(
            f"Route {route!r} must be one non-empty line, e.g. <sip:sip.skype.lab;lr>"
        )
    sent_by = UNCONNECTED_HOST if local is None else _hostport(*local)
    media_host = "0.0.0.0" if local is None else local[0]
    caller = parse_uri(from_uri)
    user = (caller.user if isinstance(caller, SipUri) else None) or "expressway"
    pairs: list[tuple[str, str]] = [
        ("Via", f"SIP/2.0/TLS {sent_by};branch={ids.branch}"),
        ("Max-Forwards", MAX_FORWARDS),
        *((("Route", route),) if route is not None else ()),
        ("From", f"<{from_uri}>;tag={ids.from_tag}"),
        ("To", f"<{to_uri}>"),
        ("Call-ID", ids.call_id),
        ("CSeq", f"{ids.cseq} {method}"),
        ("Contact", f"<sip:{user}@{sent_by};transport=tls>"),
    ]
    if pai is not None:
        pairs.append(("P-Asserted-Identity", f"<{pai}>"))
    pairs += [("Allow", ALLOW), ("User-Agent", USER_AGENT)]
    body = b""
    if method == "INVITE" and offer == "im":
        # The Skype IM session (docs/reference/skype-user.md 4.1): its first message
        # rides base64 in ms-text-format.
        pairs.append(("Supported", "ms-embedded-first-message"))
        if text is not None:
            encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
            pairs.append(("ms-text-format", f"text/plain; charset=UTF-8; ms-body={encoded}"))
        pairs.append(("Content-Type", "application/sdp"))
        body = sdp.build_im_offer(address=media_host)
    elif method == "INVITE":
        pairs.append(("Supported", "replaces,timer"))
        if offer != "none":
            pairs.append(("Content-Type", "application/sdp"))
            body = sdp.build_offer(
                address=media_host,
                port=ids.rtp_port,
                session_id=ids.session_id,
                encryption=offer,
            )
    elif method == "MESSAGE":
        pairs.append(("Content-Type", "text/plain;charset=UTF-8"))
        body = MESSAGE_TEXT if text is None else text.encode("utf-8")
    elif method == "SUBSCRIBE":
        pairs.append(("Event", "presence"))
        pairs.append(("Accept", PRESENCE_ACCEPT))
        pairs.append(("Expires", str(DEFAULT_EXPIRES if expires is None else expires)))
    else:
        pairs.append(("Accept", "application/sdp"))
    return Request(method=method, uri=to_uri, headers=Headers(pairs), body=body)


def _top_via(request: Request) -> str:
    value = request.headers.get("Via")
    if value is None:
        raise ValueError("request has no Via")
    return value


def build_ack_for_failure(request: Request, response: Response) -> Request:
    """ACK for a non-2xx final to ``request`` (RFC 3261 §17.1.1.3).

    Same Request-URI, Call-ID, From and top Via (so the same branch) as the
    INVITE; To from the response (with its tag); CSeq number of the INVITE, method ACK.
    """
    cseq_number, _ = request.cseq
    to = response.headers.get("To") or request.headers.get("To") or ""
    pairs = [
        ("Via", _top_via(request)),
        ("Max-Forwards", MAX_FORWARDS),
        ("From", request.headers.get("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", f"{cseq_number} ACK"),
        ("User-Agent", USER_AGENT),
    ]
    return Request(method="ACK", uri=request.uri, headers=Headers(pairs), body=b"")


def build_dialog_request(
    request: Request,
    response: Response,
    *,
    method: str,
    cseq: int,
    branch: str,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    user_agent: str = USER_AGENT,
) -> Request:
    """A request inside the dialog a 2xx created (RFC 3261 §12.2.1.1).

    The Request-URI is the remote target (the 2xx's Contact); the route set is
    the 2xx's Record-Route reversed (§12.1.2, UAC side). The Via keeps our
    sent-by but gets a new branch: this is a new transaction. ``headers`` and
    ``body`` follow (a MESSAGE's text, a SUBSCRIBE's Event and Expires).
    """
    contact = response.headers.get("Contact")
    target = parse_name_addr(contact).uri if contact else None
    uri = str(target) if target is not None else request.uri
    routes = list(reversed(response.headers.get_all("Record-Route")))
    via = _top_via(request).split(";branch=", 1)[0]
    pairs = [
        ("Via", f"{via};branch={branch}"),
        ("Max-Forwards", MAX_FORWARDS),
        *(("Route", route) for route in routes),
        ("From", request.headers.get("From") or ""),
        ("To", response.headers.get("To") or ""),
        ("Call-ID", request.call_id),
        ("CSeq", f"{cseq} {method}"),
        ("User-Agent", user_agent),
        *headers,
    ]
    return Request(method=method, uri=uri, headers=Headers(pairs), body=body)


def build_ack_for_success(request: Request, response: Response, *, branch: str) -> Request:
    """ACK for a 2xx to an INVITE (RFC 3261 §13.2.2.4): its own transaction, CSeq of the INVITE."""
    cseq_number, _ = request.cseq
    return build_dialog_request(request, response, method="ACK", cseq=cseq_number, branch=branch)


def build_bye(request: Request, response: Response, *, branch: str) -> Request:
    """BYE ending the dialog of ``response`` (RFC 3261 §15.1.1): next CSeq number."""
    cseq_number, _ = request.cseq
    return build_dialog_request(
        request, response, method="BYE", cseq=cseq_number + 1, branch=branch
    )


def answers(response: Response, request: Request) -> bool:
    """True if ``response`` belongs to ``request``'s transaction (same Call-ID and CSeq).

    Over one TLS connection with one transaction per method in flight, Call-ID
    and CSeq identify it; the branch match of RFC 3261 §17.1.3 adds nothing on
    a connection opened for this one call.
    """
    return response.call_id == request.call_id and response.cseq == request.cseq
