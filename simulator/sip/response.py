"""build_response: the response a UAS sends to a request (RFC 3261 §8.2.6).

Copies Via (all values, in order), From, To, Call-ID and CSeq from the
request as RFC 3261 §8.2.6.2 requires, adds the To tag, and lets the caller
append to the top Via what Microsoft's Edge appends (``received``,
``ms-received-port``, ``ms-received-cid``: ms-federation.md §7.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from simulator.sip.abnf import _FAST_TOKEN, GEN_VALUE_RE, TOKEN_RE
from simulator.sip.headers import Headers, canonical_name, check_pairs, split_top_level
from simulator.sip.message import Request, Response, trusted_response
from simulator.sip.uri import Param, parse_via

__all__ = ["REASON_PHRASES", "build_response"]

#: Standard reason phrases: RFC 3261 §21 unless marked. 504 is spelt the way
#: Microsoft's servers write it ("Server time-out", ms-federation.md §7.1/§7.2;
#: RFC 3261 writes "Server Time-out").
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",  # RFC 6228
    200: "OK",
    202: "Accepted",  # RFC 6665
    204: "No Notification",  # RFC 5839
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",  # RFC 3903
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",  # RFC 4412
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",  # RFC 4028
    423: "Interval Too Brief",
    428: "Use Identity Header",  # RFC 4474
    429: "Provide Referrer Identity",  # RFC 3892
    433: "Anonymity Disallowed",  # RFC 5079
    436: "Bad Identity-Info",  # RFC 4474
    437: "Unsupported Certificate",  # RFC 4474
    438: "Invalid Identity Header",  # RFC 4474
    439: "First Hop Lacks Outbound Support",  # RFC 5626
    440: "Max-Breadth Exceeded",  # RFC 5393
    469: "Bad Info Package",  # RFC 6086
    470: "Consent Needed",  # RFC 5360
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",  # RFC 6665
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",  # RFC 3329
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",  # RFC 8599
    580: "Precondition Failure",  # RFC 3312
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",  # RFC 8197
    608: "Rejected",  # RFC 8688
}


#: The default copy_order: RFC 3261 §8.2.6.2's headers, in the order Microsoft writes them.
DEFAULT_COPY_ORDER = ("Via", "Call-ID", "CSeq", "From", "To")


def _order(copy_order: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, canonical_name(name)) for name in copy_order)


_DEFAULT_ORDER = _order(DEFAULT_COPY_ORDER)


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    via_params: Iterable[Param] = (),
    copy_order: Sequence[str] = DEFAULT_COPY_ORDER,
) -> Response:
    """Build the response to ``request`` (RFC 3261 §8.2.6.2).

    Args:
        request: the request being answered.
        status: the status code, 100-699.
        reason: the reason phrase; None takes it from :data:`REASON_PHRASES`.
        to_tag: added as ``;tag=`` to the To value when it has no tag yet.
        headers: more header lines, appended after the copied ones.
        body: the response body (Content-Length is derived from it).
        via_params: parameters set on (or appended to) the top Via, e.g.
            ``("received", "10.48.36.47")``; the rest of that Via is kept as received.
        copy_order: which request headers to copy and in what order. The
            names given here are the names written (a request's ``v:`` comes
            out as ``Via:``); values are copied as received.

    Returns:
        The Response.

    Raises:
        ValueError: no reason given and ``status`` is not in the table, a bad
            header, a to_tag that is not a token, or a bad Via parameter.
        SipParseError: the request's top Via is malformed (never for a parsed request).
    """
    table_reason = reason is None
    if reason is None:
        try:
            reason = REASON_PHRASES[status]
        except KeyError:
            raise ValueError(f"no standard reason phrase for {status}: pass reason=") from None
    if to_tag is not None and not TOKEN_RE.fullmatch(to_tag):
        raise ValueError(f"to_tag must be a token, not {to_tag!r}")
    # Validated: they come from the caller (check_pairs is Headers() without the object).
    extra_pairs, extra_keys = check_pairs(headers) if headers else ((), ())
    via_params = tuple(via_params)
    # Copied lines come from a Headers, so they are valid already; the Via
    # params are checked by _with_top_via_params and the tag just above.
    request_keys = request.headers._keys
    request_pairs = request.headers._pairs
    copied = None
    if copy_order is DEFAULT_COPY_ORDER:
        copied = _copy_default(request, request_keys, request_pairs, to_tag, via_params)
    if copied is None:
        copied = _copy_in_order(request, copy_order, to_tag, via_params)
    pairs, keys = copied
    all_headers = Headers._trusted((*pairs, *extra_pairs), (*keys, *extra_keys))
    if (
        table_reason
        and type(status) is int
        and type(body) is bytes
        and "content-length" not in extra_keys
    ):
        # Nothing Response.__post_init__ checks can be wrong: skip it.
        return trusted_response(status, reason, all_headers, body)
    return Response(status=status, reason=reason, headers=all_headers, body=body)


def _copy_in_order(
    request: Request, copy_order: Sequence[str], to_tag: str | None, via_params: tuple[Param, ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The lines build_response copies, in ``copy_order`` (any request, any order)."""
    request_keys = request.headers._keys
    request_pairs = request.headers._pairs
    order = _DEFAULT_ORDER if copy_order is DEFAULT_COPY_ORDER else _order(copy_order)
    pairs: list[tuple[str, str]] = []
    keys: list[str] = []
    for out_name, key in order:
        count = request_keys.count(key)
        if count == 0:
            continue
        # tuple.index searches in C: no Python loop over the request's other lines.
        at = request_keys.index(key)
        for i in range(count):
            if i:
                at = request_keys.index(key, at + 1)
            value = request_pairs[at][1]
            if key == "via":
                if via_params:
                    value = _with_top_via_params(request, value, via_params)
                    via_params = ()  # only the top Via
            elif key == "to" and to_tag is not None and request.to.tag is None:
                value = f"{value};tag={to_tag}"
            pairs.append((out_name, value))
            keys.append(key)
    return tuple(pairs), tuple(keys)


#: The keys of the default copy when the request has one line of each.
_DEFAULT_KEYS_ONE_VIA = tuple(key for _, key in _DEFAULT_ORDER)


def _copy_default(
    request: Request,
    request_keys: tuple[str, ...],
    request_pairs: tuple[tuple[str, str], ...],
    to_tag: str | None,
    via_params: tuple[Param, ...],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]] | None:
    """The default copy (Via, Call-ID, CSeq, From, To) when each but Via is one line.

    What _copy_in_order does for that case, in a few C-level calls;
    None (the loop then runs) when a header is missing or repeated.
    """
    count = request_keys.count
    n_via = count("via")
    if not n_via or count("call-id") != 1 or count("cseq") != 1 or count("from") != 1:
        return None
    if count("to") != 1:
        return None
    index = request_keys.index
    at = index("via")
    top = request_pairs[at][1]
    if via_params:
        top = _with_top_via_params(request, top, via_params)
    to = request_pairs[index("to")][1]
    if to_tag is not None and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    tail = (
        ("Call-ID", request_pairs[index("call-id")][1]),
        ("CSeq", request_pairs[index("cseq")][1]),
        ("From", request_pairs[index("from")][1]),
        ("To", to),
    )
    if n_via == 1:
        return (("Via", top), *tail), _DEFAULT_KEYS_ONE_VIA
    vias = [("Via", top)]
    for _ in range(n_via - 1):
        at = index("via", at + 1)
        vias.append(("Via", request_pairs[at][1]))
    return (*vias, *tail), ("via",) * (n_via - 1) + _DEFAULT_KEYS_ONE_VIA


#: ``;name[=value]`` runs, every name and value a token (RFC 3261 §25.1): what the
#: Edge appends to the top Via, checked in one match (see _appended_top_via_params).
#: Possessive runs (abnf's fast-path token): a third cheaper, the same language.
_TOKEN_PARAMS_RE = re.compile(rf"(?:;{_FAST_TOKEN}(?:={_FAST_TOKEN})?)++")


def _appended_top_via_params(request: Request, first: str, params: tuple[Param, ...]) -> str | None:
    """``params`` rendered to append to the top Via ``first``, or None for the general path.

    The usual case, which needs no Via parsed or built: the parser's fast-path
    match of the top Via is in the cache (one per Via line, so it matched
    ``first`` itself), and every parameter is new and a token. One regex match
    checks the rendered text; counting ";" and "=" proves that no name or value
    holds either, so the match cannot straddle two parameters. A name counts as
    present when it occurs anywhere in the Via's parameters (a value too): the
    general path then decides, so the check can only be too cautious.
    """
    cached = request._cache.get("vias")
    if type(cached) is not list:
        return None
    match = cached[0]
    if match.string is not first:
        return None
    # ";name[=token]" runs of tokens (abnf.FAST_VIA), and the names added so far.
    present = match.group(4).lower()  # group 4 is "params" (uri._check_groups)
    text = ""
    n_values = 0
    for name, value in params:
        if type(name) is not str:
            return None
        low = name.lower()
        if low in present:
            return None
        present += ";" + low
        if value is None:
            text += ";" + name
        elif type(value) is str:
            text += f";{name}={value}"
            n_values += 1
        else:
            return None
    if (
        text.count(";") != len(params)
        or text.count("=") != n_values
        or not _TOKEN_PARAMS_RE.fullmatch(text)
    ):
        return None
    return text


def _with_top_via_params(request: Request, line: str, params: tuple[Param, ...]) -> str:
    """Set ``params`` on the first Via of a Via line, keeping the rest of the line verbatim.

    ``line`` is the request's first Via line. When every parameter is new (the
    Edge's ``received``/``ms-received-*``), they are checked and appended to the
    text as received; a parameter already there is set in place by
    :meth:`Via.with_params`, which re-renders that Via.
    """
    appended = _appended_top_via_params(request, line, params)
    if appended is not None:
        return line + appended  # one Via on the line, stripped by the parser
    return _with_top_via_params_general(request, line, params)


def _with_top_via_params_general(request: Request, line: str, params: tuple[Param, ...]) -> str:
    """_with_top_via_params for any Via and any params (set in place, bad values raise)."""
    first = split_top_level(line)[0]
    # Vias the accessor has parsed, or the parser has validated (and the accessor will
    # build), have this very Via first: reuse it. Else parse just this one.
    top = request.vias[0] if "vias" in request._cache else parse_via(first)[0]
    names = {name.lower() for name, _ in top.params}
    token = TOKEN_RE.fullmatch
    gen_value = GEN_VALUE_RE.fullmatch
    text = first.strip(" \t")
    for name, value in params:
        # New, and what Via.__post_init__ accepts (RFC 3261 §25.1 generic-param)?
        if (
            type(name) is not str
            or not token(name)
            or name.lower() in names
            or (value is not None and (type(value) is not str or not gen_value(value)))
        ):
            # Set in place, or a bad parameter: Via.with_params re-renders or raises.
            return str(top.with_params(*params)) + line[len(first) :]
        names.add(name.lower())
        text += f";{name}" if value is None else f";{name}={value}"
    return text + line[len(first) :]
