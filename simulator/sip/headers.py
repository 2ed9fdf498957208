"""Headers: the ordered (name, value) lines of a SIP message, exactly as received.

Names keep the spelling the peer used ("v", "TO", "MaX-fOrWaRdS"), so a
message can be relayed without rewriting it; lookups are case-insensitive and
treat compact forms (RFC 3261 §7.3.3) as their long names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from simulator.sip.abnf import TOKEN_RE
from simulator.sip.builder import builder_for

__all__ = [
    "COMPACT_FORMS",
    "KNOWN_SPELLINGS",
    "LIST_HEADERS",
    "Headers",
    "canonical_name",
    "split_top_level",
]

#: Compact header names and the long names they stand for.
COMPACT_FORMS: dict[str, str] = {
    # RFC 3261 §7.3.3 and §20
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    # RFC 6665 §8.2.1 (Event, Allow-Events)
    "o": "event",
    "u": "allow-events",
    # RFC 3515 §2.1 (Refer-To), RFC 3892 §3 (Referred-By)
    "r": "refer-to",
    "b": "referred-by",
    # RFC 4028 §4 (Session-Expires)
    "x": "session-expires",
    # RFC 3841 §9 (Accept-Contact, Reject-Contact, Request-Disposition)
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
    # RFC 4474 §13.1 (Identity, Identity-Info)
    "y": "identity",
    "n": "identity-info",
}

#: Headers whose value is a comma-separated list (RFC 3261 §7.3.1: such a
#: header may be split over several lines or combined on one). get_all()
#: splits these at top-level commas. Contact "*" is never split (it is one value).
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "in-reply-to",
        "alert-info",
        "call-info",
        "error-info",
        "warning",
        "allow-events",
        "path",
        "service-route",
    }
)


#: Skips Headers.__setattr__ (its immutability check) where a Headers is being built.
_set = object.__setattr__


def canonical_name(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    low = name.lower()
    return COMPACT_FORMS.get(low, low)


#: Header names as peers usually spell them, and their lookup keys: the parser
#: looks a name up here first and only checks unusual spellings against the
#: token rule and canonical_name. Every key is a token, so skipping the check is safe.
KNOWN_SPELLINGS: dict[str, str] = {
    spelling: canonical_name(name)
    for name in (
        *COMPACT_FORMS,
        *(c.upper() for c in COMPACT_FORMS),
        "Via",
        "From",
        "To",
        "Call-ID",
        "Call-Id",
        "CSeq",
        "Max-Forwards",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Content-Disposition",
        "Content-Encoding",
        "Date",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "User-Agent",
        "Server",
        "Expires",
        "Min-Expires",
        "Subject",
        "Event",
        "Allow-Events",
        "Session-Expires",
        "Min-SE",
        "Authorization",
        "Proxy-Authorization",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Privacy",
        "Refer-To",
        "Referred-By",
        "Reason",
        "Warning",
        "Organization",
        "Priority",
        "Timestamp",
        "ms-diagnostics",
        "ms-diagnostics-public",
        "ms-edge-proxy-message-trust",
        "ms-keep-alive",
        "X-Cisco-Tenant",
        "Remote-Party-ID",
    )
    for spelling in (name, name.lower())
}


def split_top_level(text: str) -> list[str]:
    """Split ``text`` at commas outside quoted strings and ``<...>``.

    RFC 3261 §7.3.1: a comma inside a quoted display name or inside a bracketed
    URI does not separate values. Pieces are returned unstripped and empty
    pieces are kept, so strict callers can reject ``,,`` (RFC 4475 badinv01).
    An unterminated quote or bracket runs to the end of the text.
    """
    if "," not in text:
        return [text]
    if '"' not in text and "<" not in text:
        return text.split(",")
    pieces: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\":
                i += 1  # RFC 3261 §25.1 quoted-pair: the next character is literal
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif in_angle:
            if ch == ">":
                in_angle = False
        elif ch == "<":
            in_angle = True
        elif ch == ",":
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces


#: A header value with nothing to check further: printable ASCII, inner SP/HTAB only.
_PLAIN_VALUE_RE = re.compile(r"(?:[\x21-\x7e](?:[ \t\x21-\x7e]*[\x21-\x7e])?)?")


def _check_pair(name: str, value: str) -> tuple[str, str]:
    if (
        type(name) is str
        and type(value) is str
        # Every known spelling is a token: a dict lookup instead of a match.
        and (name in KNOWN_SPELLINGS or TOKEN_RE.fullmatch(name))
        # _PLAIN_VALUE_RE with string methods first: printable ASCII is
        # %x20-7E, so only the edges (no SP) are left to check.
        and (
            (value.isascii() and value.isprintable() and value[:1] != " " and value[-1:] != " ")
            or _PLAIN_VALUE_RE.fullmatch(value)
        )
    ):
        return (name, value)  # the common case: every check below would pass
    return _check_pair_why(name, value)


def _check_pair_why(name: str, value: str) -> tuple[str, str]:
    """The header line rules one by one, each failure saying why (the slow path)."""
    if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
        raise ValueError(f"header name must be a SIP token, not {name!r}")
    if not isinstance(value, str):
        raise TypeError(f"header {name} value must be str, not {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} value must not contain CR or LF: {value!r}")
    if value != value.strip(" \t"):
        raise ValueError(f"header {name} value must not start or end with whitespace: {value!r}")
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"header {name} value cannot be encoded as UTF-8: {value!r}") from None
    return (name, value)


def check_pairs(
    pairs: Iterable[tuple[str, str]],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Validate header lines as ``Headers(pairs)`` does; give the lines and their keys.

    For callers that splice the lines into other Headers (build_response): the
    checks without building a Headers object.

    Raises:
        ValueError: as :class:`Headers`.
        TypeError: a value is not a str.
    """
    checked: list[tuple[str, str]] = []
    keys: list[str] = []
    for name, value in pairs:
        checked.append(_check_pair(name, value))
        key = KNOWN_SPELLINGS.get(name)
        keys.append(canonical_name(name) if key is None else key)
    return tuple(checked), tuple(keys)


class Headers:
    """An immutable, ordered list of (name, value) header lines.

    Lookups (``get``, ``get_all``, ``in``) ignore case and treat compact forms
    as their long names; iteration and ``pairs`` give the lines exactly as
    stored. Two Headers are equal when their lines are identical, spelling and
    order included (that is what a relay would put on the wire).
    """

    __slots__ = ("_keys", "_pairs")

    _pairs: tuple[tuple[str, str], ...]
    _keys: tuple[str, ...]

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        """Build Headers from (name, value) pairs.

        Args:
            pairs: header lines in wire order. Values are unfolded single lines
                without leading or trailing whitespace.

        Raises:
            ValueError: a name is not a token, or a value has CR/LF, edge whitespace
                or cannot be encoded.
        """
        checked, keys = check_pairs(pairs)
        _set(self, "_pairs", checked)
        _set(self, "_keys", keys)

    @classmethod
    def _trusted(cls, pairs: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> Headers:
        """Build from lines the parser has already validated (no second check)."""
        if cls is Headers:
            built = _HEADERS_BUILDER()  # plain stores (see builder.py)
            built._pairs = pairs
            built._keys = keys
            built.__class__ = Headers
            headers: Headers = built
            return headers
        self = cls.__new__(cls)
        _set(self, "_pairs", pairs)
        _set(self, "_keys", keys)
        return self

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The header lines, in order, as (name, value)."""
        return self._pairs

    def get(self, name: str) -> str | None:
        """The value of the first line called ``name`` (or its compact form), or None."""
        key = KNOWN_SPELLINGS.get(name) if type(name) is str else None
        if key is None:
            key = canonical_name(name)
        keys = self._keys
        # A miss (P-Asserted-Identity, usually) must not cost a raised ValueError.
        if key in keys:
            return self._pairs[keys.index(key)][1]
        return None

    def get_lines(self, name: str) -> list[str]:
        """The value of every line called ``name``, as received (list headers not split)."""
        key = canonical_name(name)
        return [v for k, (_, v) in zip(self._keys, self._pairs, strict=True) if k == key]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``: all its lines, and list headers split at top-level commas.

        Empty list elements (``a,,b``) are dropped, surrounding whitespace is stripped.
        """
        key = canonical_name(name)
        values = self.get_lines(key)
        if key not in LIST_HEADERS:
            return values
        out: list[str] = []
        for value in values:
            if key == "contact" and value == "*":
                out.append(value)
                continue
            for piece in split_top_level(value):
                piece = piece.strip(" \t")
                if piece:
                    out.append(piece)
        return out

    def count(self, name: str) -> int:
        """How many lines are called ``name`` (or its compact form)."""
        return self._keys.count(canonical_name(name))

    def append(self, name: str, value: str) -> Headers:
        """A copy with the line ``name: value`` added at the end."""
        pair = _check_pair(name, value)
        return Headers._trusted((*self._pairs, pair), (*self._keys, canonical_name(name)))

    def replace(self, name: str, value: str) -> Headers:
        """A copy where the first ``name`` line becomes ``name: value`` and the others go.

        Appends the line when there is none.
        """
        pair = _check_pair(name, value)
        key = canonical_name(name)
        if key not in self._keys:
            return self.append(name, value)
        pairs: list[tuple[str, str]] = []
        keys: list[str] = []
        done = False
        for k, p in zip(self._keys, self._pairs, strict=True):
            if k == key:
                if done:
                    continue
                p = pair
                done = True
            pairs.append(p)
            keys.append(k)
        return Headers._trusted(tuple(pairs), tuple(keys))

    def remove(self, name: str) -> Headers:
        """A copy without any ``name`` line (long or compact form)."""
        key = canonical_name(name)
        kept = [(k, p) for k, p in zip(self._keys, self._pairs, strict=True) if k != key]
        return Headers._trusted(tuple(p for _, p in kept), tuple(k for k, _ in kept))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name) in self._keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        # Immutable after construction; __init__/_trusted set the slots through object.
        if hasattr(self, "_keys"):
            raise AttributeError("Headers is immutable: use append/replace/remove")
        object.__setattr__(self, name, value)


_HEADERS_BUILDER = builder_for(Headers)
