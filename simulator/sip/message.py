"""Request and Response: frozen, slotted, keyword-only SIP messages.

A message holds its header lines as received (:class:`Headers`) and parses
the few it needs on demand: Call-ID, CSeq, From, To, Via, Max-Forwards. The
parser has already validated those for a message it returns, and leaves the
parsed values in the cache so the accessors cost nothing.

Content-Length is never a header here: it is derived from ``body``. The
parser removes it, the serializer writes it (RFC 3261 §20.14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulator.sip import abnf
from simulator.sip.builder import builder_for
from simulator.sip.errors import SipParseError
from simulator.sip.headers import Headers
from simulator.sip.uri import (
    NameAddr,
    Via,
    name_addr_from_match,
    parse_name_addr,
    parse_via,
    via_from_match,
)

__all__ = ["KNOWN_METHODS", "MAX_CSEQ", "Request", "Response"]

#: RFC 3261 §8.1.1.5: "The sequence number MUST be expressible as a 32-bit unsigned integer".
MAX_CSEQ = 2**32 - 1

#: RFC 3261 §20.22: Max-Forwards is "an integer in the range 0-255".
MAX_FORWARDS_LIMIT = 255

#: Methods some RFC defines, plus Microsoft's (SERVICE, BENOTIFY, NEGOTIATE appear in
#: Lync/Skype traces). A CSeq mismatch on any other method is 501, not 400 (RFC 4475 §3.1.2.18).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",  # RFC 3261
        "PRACK",  # RFC 3262
        "SUBSCRIBE",
        "NOTIFY",  # RFC 6665
        "PUBLISH",  # RFC 3903
        "INFO",  # RFC 6086
        "REFER",  # RFC 3515
        "MESSAGE",  # RFC 3428
        "UPDATE",  # RFC 3311
        "SERVICE",
        "BENOTIFY",
        "NEGOTIATE",  # Microsoft [MS-SIPRE]
    }
)

_VERSION_RE = re.compile(abnf.SIP_VERSION)

#: Every Max-Forwards value written without leading zeros, and its number.
_MAX_FORWARDS_TEXT = {str(n): n for n in range(MAX_FORWARDS_LIMIT + 1)}


def _missing(name: str) -> SipParseError:
    return SipParseError(f"no {name} header", offending=name.encode(), status_hint=400)


def parse_cseq(value: str) -> tuple[int, str]:
    """Parse a CSeq value ("0009 INVITE" -> (9, "INVITE")).

    Raises:
        SipParseError: (400) not ``1*DIGIT LWS Method``, or over 2**32-1 (RFC 4475 scalar02).
    """
    fast = abnf.FAST_CSEQ_RE.fullmatch(value)
    if fast is not None:
        return int(fast.group("number")), fast.group("method")
    m = abnf.CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError("bad CSeq", offending=value.encode("utf-8", "surrogateescape"))
    digits = m.group("number").lstrip("0") or "0"
    # Length first: int() of a huge digit string is slow (and over 4300 digits, an error).
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise SipParseError("CSeq number over 2**32-1", offending=value.encode())
    return int(digits), m.group("method")


def parse_max_forwards(value: str) -> int:
    """Parse a Max-Forwards value ("0068" -> 68).

    Raises:
        SipParseError: (400) not digits, or over 255 (RFC 4475 scalar02).
    """
    known = _MAX_FORWARDS_TEXT.get(value)
    if known is not None:
        return known
    if not abnf.DIGITS_RE.fullmatch(value):
        raise SipParseError("bad Max-Forwards", offending=value.encode("utf-8", "surrogateescape"))
    digits = value.lstrip("0") or "0"
    if len(digits) > 3 or int(digits) > MAX_FORWARDS_LIMIT:
        raise SipParseError("Max-Forwards over 255", offending=value.encode())
    return int(digits)


class _Accessors:
    """Cached header accessors shared by Request and Response.

    ``_cache`` holds, per key, the parsed value; or, for a message from
    parse_message, the fast-path regex match(es) the parser validated the header
    with ("to"/"from": one match, "vias": a list of matches, one per Via line),
    which the accessor turns into the value on first use.
    """

    __slots__ = ()

    headers: Headers
    _cache: dict[str, object]

    @property
    def call_id(self) -> str:
        """The Call-ID value.

        Raises:
            SipParseError: the header is missing (never for a message from parse_message).
        """
        value = self.headers.get("Call-ID")
        if value is None:
            raise _missing("Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from CSeq.

        Raises:
            SipParseError: missing or malformed (never for a message from parse_message).
        """
        cached = self._cache.get("cseq")
        if cached is None:
            value = self.headers.get("CSeq")
            if value is None:
                raise _missing("CSeq")
            cached = self._cache["cseq"] = parse_cseq(value)
        assert isinstance(cached, tuple)
        return cached

    def _name_addr(self, key: str, name: str) -> NameAddr:
        cached = self._cache.get(key)
        if type(cached) is NameAddr:
            return cached
        if isinstance(cached, re.Match):
            # The parser's fast-path match of this very header: build from its groups.
            built = self._cache[key] = name_addr_from_match(cached)
            return built
        value = self.headers.get(name)
        if value is None:
            raise _missing(name)
        parsed = self._cache[key] = parse_name_addr(value)
        return parsed

    @property
    def from_(self) -> NameAddr:
        """The parsed From (``from`` is a Python keyword).

        Raises:
            SipParseError: missing or malformed (never for a message from parse_message).
        """
        return self._name_addr("from", "From")

    @property
    def to(self) -> NameAddr:
        """The parsed To.

        Raises:
            SipParseError: missing or malformed (never for a message from parse_message).
        """
        return self._name_addr("to", "To")

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first, across all Via lines (a fresh list each call).

        Raises:
            SipParseError: a malformed Via (never for a message from parse_message).
        """
        cached = self._cache.get("vias")
        if type(cached) is tuple:
            return list(cached)
        if type(cached) is list:
            # The parser's fast-path matches of every Via line: build from their groups.
            built = tuple([via_from_match(m) for m in cached])
        else:
            vias: list[Via] = []
            for name, value in self.headers:
                if name.lower() in ("via", "v"):
                    vias.extend(parse_via(value))
            built = tuple(vias)
        self._cache["vias"] = built
        return list(built)

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or None when absent (RFC 2543 peers, RFC 4475 inv2543).

        Raises:
            SipParseError: malformed (never for a message from parse_message).
        """
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_max_forwards(value)


def _check_encodable(what: str, text: str) -> None:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what} cannot be encoded as UTF-8: {text!r}") from None


def _check_common(headers: object, body: object, version: str) -> None:
    if not isinstance(headers, Headers):
        raise TypeError(f"headers must be Headers, not {type(headers).__name__}")
    if not isinstance(body, bytes):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"version must look like SIP/2.0, not {version!r}")
    if "Content-Length" in headers:
        raise ValueError("Content-Length is derived from the body: do not put it in headers")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_Accessors):
    """A SIP request (RFC 3261 §7.1)."""

    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"
    _cache: dict[str, object] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not abnf.TOKEN_RE.fullmatch(self.method):
            raise ValueError(f"method must be a SIP token, not {self.method!r}")
        if not self.uri or any(c in self.uri for c in " \t\r\n"):
            raise ValueError(f"Request-URI must be one word, not {self.uri!r}")
        _check_encodable("Request-URI", self.uri)
        _check_common(self.headers, self.body, self.version)

    @property
    def start_line(self) -> str:
        """``INVITE sip:x@y SIP/2.0``."""
        return f"{self.method} {self.uri} {self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(_Accessors):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"
    _cache: dict[str, object] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError(f"status must be int, not {type(self.status).__name__}")
        if not 100 <= self.status <= 699:
            raise ValueError(f"status must be 100-699, not {self.status}")
        if "\r" in self.reason or "\n" in self.reason:
            raise ValueError(f"reason must be one line, not {self.reason!r}")
        _check_encodable("reason", self.reason)
        _check_common(self.headers, self.body, self.version)

    @property
    def start_line(self) -> str:
        """``SIP/2.0 504 Server time-out``."""
        return f"{self.version} {self.status} {self.reason}"


_REQUEST_BUILDER = builder_for(Request)
_RESPONSE_BUILDER = builder_for(Response)


def trusted_request(method: str, uri: str, headers: Headers, body: bytes) -> Request:
    """A Request from parts the parser has already validated (no second check).

    ``__post_init__`` would re-check what the parser has just checked (the
    Request-Line grammar, header lines, no Content-Length); this sets the fields
    directly, as the generated frozen ``__init__`` does, and skips that.
    """
    request = _REQUEST_BUILDER()
    request.method = method
    request.uri = uri
    request.headers = headers
    request.body = body
    request.version = "SIP/2.0"
    request._cache = {}
    request.__class__ = Request
    built: Request = request
    return built


def trusted_response(status: int, reason: str, headers: Headers, body: bytes) -> Response:
    """A Response from parts already validated (see :func:`trusted_request`)."""
    response = _RESPONSE_BUILDER()
    response.status = status
    response.reason = reason
    response.headers = headers
    response.body = body
    response.version = "SIP/2.0"
    response._cache = {}
    response.__class__ = Response
    built: Response = response
    return built
