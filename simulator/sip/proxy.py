"""What a stateful proxy does to the messages it relays (RFC 3261 §16), as pure functions.

The Edge relays a Skype client's request to a federated partner: it puts its
own Via on top, decrements Max-Forwards, drops the Route entries that name it,
and Record-Routes dialog-creating requests (§16.6); it takes its Via off the
responses before relaying them (§16.7); it builds the CANCEL of a relayed
INVITE (§16.10) and the ACK of a non-2xx final answer on its own leg
(§17.1.1.3). Nothing here knows about sockets or the Edge's state.
"""

from __future__ import annotations

from simulator.sip.errors import SipParseError
from simulator.sip.headers import Headers, canonical_name, split_top_level
from simulator.sip.message import Request, Response
from simulator.sip.uri import parse_name_addr, parse_via

#: RFC 3261 §8.1.1.7 magic cookie of every branch a proxy makes.
BRANCH_COOKIE = "z9hG4bK"
#: RFC 3261 §8.1.1.6 / §16.6 step 3: Max-Forwards of a request that had none.
DEFAULT_MAX_FORWARDS = 70


def _normal(host: str) -> str:
    return host.strip().rstrip(".").lower()


def names_us(value: str, fqdn: str) -> bool:
    """A Route/Record-Route value that names the proxy ``fqdn`` (loose routing, §16.4)."""
    try:
        uri = parse_name_addr(value).uri
    except SipParseError:
        return False
    host = getattr(uri, "host", None)
    return isinstance(host, str) and _normal(host) == _normal(fqdn)


def proxied_request(
    request: Request,
    *,
    fqdn: str,
    port: int,
    branch: str,
    record_route: bool,
    max_forwards: int,
) -> Request:
    """The request as the proxy forwards it (RFC 3261 §16.6).

    Our Via goes on top (``SIP/2.0/TLS <fqdn>:<port>;branch=...``), Max-Forwards
    is set to ``max_forwards`` (the caller decremented it), Route entries naming
    us are removed (§16.4), and for dialog-creating requests a
    ``Record-Route: <sip:<fqdn>:<port>;transport=tls;lr>`` goes first so that
    in-dialog requests come back through us. Everything else is kept as received.
    """
    pairs: list[tuple[str, str]] = [("Via", f"SIP/2.0/TLS {fqdn}:{port};branch={branch}")]
    have_mf = False
    last_via = 0
    for name, value in request.headers.pairs:
        key = canonical_name(name)
        if key == "max-forwards":
            if have_mf:
                continue
            value, have_mf = str(max_forwards), True
        elif key == "route":
            kept = [v.strip() for v in split_top_level(value) if not names_us(v, fqdn)]
            if not kept:
                continue
            value = ", ".join(kept)
        pairs.append((name, value))
        if key == "via":
            last_via = len(pairs)
    if not have_mf:
        pairs.insert(last_via or 1, ("Max-Forwards", str(max_forwards)))
    if record_route:
        rr = f"<sip:{fqdn}:{port};transport=tls;lr>"
        pairs.insert(last_via or 1, ("Record-Route", rr))
    return Request(
        method=request.method, uri=request.uri, headers=Headers(pairs), body=request.body
    )


def pop_top_via(headers: Headers) -> tuple[str | None, Headers]:
    """Remove the first Via value (RFC 3261 §16.7 step 3); return its branch and the rest."""
    pairs: list[tuple[str, str]] = []
    branch: str | None = None
    done = False
    for name, value in headers.pairs:
        if not done and canonical_name(name) == "via":
            done = True
            pieces = split_top_level(value)
            try:
                branch = parse_via(pieces[0])[0].branch
            except SipParseError:
                branch = None
            rest = ",".join(pieces[1:]).strip()
            if rest:
                pairs.append((name, rest))
            continue
        pairs.append((name, value))
    return branch, Headers(pairs)


def relayed_response(response: Response, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    """``response`` without the proxy's Via (§16.7 step 3), with ``extra`` headers appended."""
    _, headers = pop_top_via(response.headers)
    for name, value in extra:
        headers = headers.append(name, value)
    return Response(
        status=response.status, reason=response.reason, headers=headers, body=response.body
    )


def top_branch(message: Request | Response) -> str | None:
    """The branch of the top Via, or None when there is none (or it cannot be read)."""
    try:
        vias = message.vias
    except SipParseError:
        return None
    return vias[0].branch if vias else None


def cancel_request(forwarded: Request) -> Request:
    """The CANCEL of a forwarded INVITE (RFC 3261 §9.1: its top Via, Route set and CSeq number)."""
    headers = forwarded.headers
    pairs = [
        ("Via", split_top_level(headers.get("Via") or "")[0]),
        ("Max-Forwards", str(DEFAULT_MAX_FORWARDS)),
        *(("Route", r) for r in headers.get_all("Route")),
        ("From", headers.get("From") or ""),
        ("To", headers.get("To") or ""),
        ("Call-ID", forwarded.call_id),
        ("CSeq", f"{forwarded.cseq[0]} CANCEL"),
    ]
    return Request(method="CANCEL", uri=forwarded.uri, headers=Headers(pairs))


def ack_for_failure(forwarded: Request, final: Response) -> Request:
    """The ACK of a non-2xx final answer, on the same branch (RFC 3261 §17.1.1.3)."""
    pairs = [
        ("Via", split_top_level(forwarded.headers.get("Via") or "")[0]),
        ("Max-Forwards", str(DEFAULT_MAX_FORWARDS)),
        ("From", forwarded.headers.get("From") or ""),
        ("To", final.headers.get("To") or forwarded.headers.get("To") or ""),
        ("Call-ID", forwarded.call_id),
        ("CSeq", f"{forwarded.cseq[0]} ACK"),
    ]
    return Request(method="ACK", uri=forwarded.uri, headers=Headers(pairs))


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
