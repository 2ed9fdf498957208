"""bytes -> Request | Response, validating what RFC 3261 requires of every message.

One framed message in (from :class:`~simulator.sip.framing.StreamFramer`, or
a whole UDP datagram), a message out, or :class:`SipParseError` with the
status to answer. Like h11's ``next_event``: any other exception escaping
``parse_message`` is a bug, and the fuzz tests look for one.

The work is done once: the header block is split and unfolded in one pass,
the headers every element must understand (To, From, CSeq, Call-ID, Via,
Max-Forwards, Contact, Date, Content-Length) are validated, and every other
header is kept as raw text. Validation tries one regex per header kind first
(``abnf.FAST_*``, a strict subset of the grammar) and runs the full grammar
only when it fails, so every error is the full grammar's. From, To and Via are
kept as text and parsed on first access (the accessors cache them): they are
valid, so that parse cannot fail.
"""

from __future__ import annotations

import re

from simulator.sip import abnf
from simulator.sip.errors import SipParseError
from simulator.sip.headers import KNOWN_SPELLINGS, Headers, canonical_name, split_top_level
from simulator.sip.message import (
    KNOWN_METHODS,
    Request,
    Response,
    parse_cseq,
    parse_max_forwards,
    trusted_request,
    trusted_response,
)
from simulator.sip.uri import SipUri, parse_name_addr, parse_uri, parse_via

__all__ = ["parse_message"]

#: RFC 3261 §8.1.1: a request MUST carry these (Max-Forwards too, but RFC 2543
#: peers omit it and RFC 4475 inv2543 asks us to accept that).
_REQUIRED = ("to", "from", "cseq", "call-id", "via")
_REQUIRED_SET = frozenset(_REQUIRED)

#: RFC 3261 §20 and RFC 4475 §3.3.8 (multi01): at most one line each.
_SINGLE = ("call-id", "to", "from", "cseq", "max-forwards", "content-length")

#: Printable names for error messages.
_NAMES = {
    "to": "To",
    "from": "From",
    "cseq": "CSeq",
    "call-id": "Call-ID",
    "via": "Via",
    "max-forwards": "Max-Forwards",
    "content-length": "Content-Length",
}

#: The headers validated at parse time (everything else is kept as raw text).
_WATCHED = frozenset(
    {"to", "from", "cseq", "call-id", "via", "max-forwards", "content-length", "contact", "date"}
)

#: How much of the input an error quotes when the problem is the message as a whole.
_EXCERPT = 200


def _fail(message: str, offending: str | bytes, status: int = 400) -> SipParseError:
    if isinstance(offending, str):
        offending = offending.encode("utf-8", "surrogateescape")
    return SipParseError(message, offending=offending, status_hint=status)


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message.

    The data is one framed message (stream) or one datagram. Bytes after the
    Content-Length body are ignored (RFC 3261 §18.3, RFC 4475 dblreq); without
    a Content-Length the body is the rest of the data (datagram rule; on a
    stream the framer has already refused such a message).

    Args:
        data: the message bytes.

    Returns:
        The Request or Response, with Content-Length removed from its headers.

    Raises:
        SipParseError: the message breaks RFC 3261; ``status_hint`` is the status
            to answer a request with (400, 505 for another SIP version, 501 for
            an unknown method with a mismatched CSeq). Responses are never
            answered: drop them.
    """
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"parse_message takes bytes, not {type(data).__name__}")
        data = bytes(data)
    try:
        return _parse(data)
    except SipParseError:
        raise
    except (UnicodeError, ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        # Belt and braces: the checks below should make these impossible, but a
        # peer must never be able to crash the connection loop (h11's rule).
        raise _fail(f"malformed message ({type(exc).__name__}: {exc})", data[:_EXCERPT]) from exc


def _parse(data: bytes) -> Request | Response:
    # RFC 3261 §7.5: CRLFs before the start line are ignored.
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise _fail("no empty line after the header block", data[start : start + _EXCERPT])
    head = data[start:end].decode("utf-8", "surrogateescape")
    if "\r\n " in head or "\r\n\t" in head:
        head = abnf.FOLD_RE.sub(" ", head)  # RFC 3261 §7.3.1 (RFC 4475 wsinv)
    crlf = head.count("\r\n")
    if head.count("\r") != crlf or head.count("\n") != crlf:
        raise _fail("bare CR or LF in the header block", data[start : start + _EXCERPT])
    lines = head.split("\r\n")
    start_line = lines[0]

    # One pass: build the header lines and pick out the ones we validate.
    pairs: list[tuple[str, str]] = []
    keys: list[str] = []
    seen: dict[str, list[str]] = {}
    repeated = False  # a header that must be single came twice (checked in _check_counts)
    token = abnf.TOKEN_RE.fullmatch
    known = KNOWN_SPELLINGS.get
    watched = _WATCHED
    add_pair = pairs.append
    add_key = keys.append
    it = iter(lines)
    next(it)  # the start line
    for line in it:
        name, colon, value = line.partition(":")
        key = known(name)
        if key is None or not colon:
            name = name.rstrip(" \t")
            if not colon or not token(name):
                raise _fail("header line is not 'name: value'", line)
            key = canonical_name(name)
        value = value.strip(" \t")
        if key in watched:
            if key in seen:
                seen[key].append(value)
                repeated = repeated or key in _SINGLE
            else:
                seen[key] = [value]
            if key == "content-length":
                continue  # derived from the body, never kept (see message.py)
        add_pair((name, value))
        add_key(key)

    body_start = end + 4
    lengths = seen.get("content-length", ())
    if len(lengths) > 1:
        # RFC 4475 §3.3.9 (mcl01): which one is right cannot be known.
        raise _fail("more than one Content-Length", ", ".join(lengths))
    if lengths:
        length = _content_length(lengths[0])
        if body_start + length > len(data):
            # RFC 4475 §3.1.2.2 (clerr): on a datagram, a body shorter than
            # Content-Length is an error (a stream would wait, see framing.py).
            raise _fail("Content-Length is larger than the message", lengths[0])
        body = data[body_start : body_start + length]
    else:
        body = data[body_start:]

    headers = Headers._trusted(tuple(pairs), tuple(keys))
    # Only then can _check_counts fail (it runs after the start line is checked).
    suspect = repeated or not seen.keys() >= _REQUIRED_SET
    if start_line[:4].upper() == "SIP/":
        return _response(start_line, headers, body, seen, suspect)
    return _request(start_line, headers, body, seen, suspect)


def _content_length(value: str) -> int:
    """RFC 3261 §20.14 ``1*DIGIT``; negative or non-numeric is an error (RFC 4475 ncl)."""
    if len(value) < 10 and value.isascii() and value.isdigit():
        return int(value)
    if not abnf.DIGITS_RE.fullmatch(value):
        raise _fail("Content-Length is not a number", value)
    digits = value.lstrip("0") or "0"
    if len(digits) > 12:
        raise _fail("Content-Length is absurdly large", value)
    return int(digits)


def _request(
    start_line: str, headers: Headers, body: bytes, seen: dict[str, list[str]], suspect: bool
) -> Request:
    fast = _FAST_REQUEST_LINE(start_line)
    if fast is not None:
        method, uri_text = fast.group(1, 2)  # method, uri
    else:
        method, uri_text = _request_line(start_line)
    if suspect:
        _check_counts(seen, start_line)
    cseq_text = seen["cseq"][0]
    number, _, cseq_method = cseq_text.partition(" ")
    if cseq_method == method and number.isascii() and number.isdigit() and len(number) < 10:
        # What abnf.FAST_CSEQ matches, the method being the Request-Line's token.
        cseq: tuple[int, str] = (int(number), method)
    else:
        cseq = parse_cseq(cseq_text)
    if cseq[1] != method:
        # RFC 4475 §3.1.2.17 / §3.1.2.18: 400, or 501 when we do not know the method anyway.
        status = 400 if method in KNOWN_METHODS else 501
        raise _fail("CSeq method does not match the Request-Line", cseq_text, status)
    request = trusted_request(method, uri_text, headers, body)
    request._cache["cseq"] = cseq
    _check_common(seen, request._cache)
    return request


def _request_line(start_line: str) -> tuple[str, str]:
    """The Request-Line by the full grammar: (method, Request-URI text)."""
    m = abnf.REQUEST_LINE_RE.fullmatch(start_line)
    if m is None:
        # RFC 4475 lwsstart, trws, lwsruri: one SP between the parts, none at the end.
        raise _fail("malformed Request-Line", start_line)
    method, uri_text, version = m.group("method", "uri", "version")
    if version.upper() != "SIP/2.0":
        raise _fail("unsupported SIP version", start_line, 505)  # RFC 4475 badvers
    uri = parse_uri(uri_text)  # RFC 4475 ltgtruri: "<sip:...>" has no scheme
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 §19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
        raise _fail("escaped headers in the Request-URI", uri_text)
    return method, uri_text


def _response(
    start_line: str, headers: Headers, body: bytes, seen: dict[str, list[str]], suspect: bool
) -> Response:
    m = abnf.STATUS_LINE_RE.fullmatch(start_line)
    if m is None:
        # RFC 4475 §3.1.2.19 (bigcode): 4294967301 is not 3DIGIT.
        raise _fail("malformed Status-Line", start_line)
    version, status_text, reason = m.group("version", "status", "reason")
    if version.upper() != "SIP/2.0":
        raise _fail("unsupported SIP version", start_line, 505)
    status = int(status_text)
    if not 100 <= status <= 699:
        raise _fail("status code out of range 100-699", start_line)
    if suspect:
        _check_counts(seen, start_line)
    cseq = parse_cseq(seen["cseq"][0])  # RFC 4475 scalarlg
    response = trusted_response(status, reason or "", headers, body)
    response._cache["cseq"] = cseq
    _check_common(seen, response._cache)
    return response


def _check_counts(seen: dict[str, list[str]], start_line: str) -> None:
    missing = [_NAMES[k] for k in _REQUIRED if k not in seen]
    if missing:
        raise _fail(f"missing {', '.join(missing)}", start_line)  # RFC 4475 insuf
    repeated = [_NAMES[k] for k in _SINGLE if len(seen.get(k, ())) > 1]
    if repeated:
        raise _fail(f"more than one {', '.join(repeated)}", start_line)  # RFC 4475 multi01


#: The fast-path matchers, bound once (the hot path skips two attribute loads per call).
_FAST_REQUEST_LINE = abnf.FAST_REQUEST_LINE_RE.fullmatch
_FAST_NAME_ADDR = abnf.FAST_NAME_ADDR_RE.fullmatch
_FAST_VIA = abnf.FAST_VIA_RE.fullmatch
_FAST_CONTACT = abnf.FAST_CONTACT_RE.fullmatch
_CALLID = abnf.CALLID_RE.fullmatch


def _check_common(seen: dict[str, list[str]], cache: dict[str, object]) -> None:
    """Validate the headers every element must understand.

    From, To and Via are parsed later, by the accessors: what the fast path
    matched goes into ``cache`` so that they build from the match (see message.py).
    """
    call_id = seen["call-id"][0]
    if not _CALLID(call_id):
        raise _fail("bad Call-ID", call_id)
    max_forwards = seen.get("max-forwards")
    if max_forwards is not None:
        parse_max_forwards(max_forwards[0])  # RFC 4475 scalar02
    value = seen["to"][0]
    match = _FAST_NAME_ADDR(value)
    cache["to"] = parse_name_addr(value) if match is None else match
    value = seen["from"][0]
    match = _FAST_NAME_ADDR(value)
    cache["from"] = parse_name_addr(value) if match is None else match
    via_matches: list[re.Match[str]] | None = []
    for value in seen["via"]:
        match = _FAST_VIA(value)
        if match is None:
            parse_via(value)  # RFC 4475 badinv01
            via_matches = None  # the accessor parses them all
        elif via_matches is not None:
            via_matches.append(match)
    if via_matches is not None:
        cache["vias"] = via_matches
    contacts = seen.get("contact")
    if contacts is not None:
        for value in contacts:
            if value != "*":
                for piece in split_top_level(value) if "," in value else (value,):
                    if _FAST_CONTACT(piece) is None:
                        if not piece.strip(" \t"):
                            raise _fail("empty Contact value", value)
                        parse_name_addr(piece)  # RFC 4475 regbadct, badinv01
    dates = seen.get("date")
    if dates is not None:
        for value in dates:
            if not abnf.DATE_RE.fullmatch(value):
                raise _fail("Date is not an RFC 1123 GMT date", value)  # RFC 4475 baddate
