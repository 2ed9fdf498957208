"""Just enough of RFC 4566 to read an offer: lines in, plain data out.

Theory: an SDP body is a sequence of ``<type>=<value>`` lines (RFC 4566 §5): a
session part, then one block per ``m=`` line. fedsim only has to *answer*
offers, so this module keeps every line it meets (attributes stay strings) and
leaves their meaning to :mod:`simulator.skype.media`: which ``a=crypto`` line is
usable (RFC 4568), which payload type is which codec (``a=rtpmap``, RFC 3551's
static table), whether the peer does ICE. It is strict about the things an
answer depends on (``v=0`` first, the ``m=`` line grammar, ports) and lenient
about the rest (unknown line types, blank lines, ``\\n`` without ``\\r``), the
way real endpoints are: a Lync 2007 fallback offer has an ``m=`` line with no
formats (``m=audio 0 RTP/AVP``, pidgin-sipe), the Lync IM offer ends with a blank
line.

Anything that is not SDP raises :class:`SdpError`, the only exception here; the
caller answers it with the Skype client's 52063 (docs/reference/skype-user.md 2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Attribute",
    "MediaDescription",
    "SdpError",
    "SessionDescription",
    "parse_sdp",
]

#: RFC 4566 §5.14: ``m=<media> <port>[/<number of ports>] <proto> <fmt> ...``.
#: Tokens are visible ASCII; a missing format list is tolerated (see the module doc).
_M_LINE = re.compile(
    r"(?P<media>[!-~]+) (?P<port>[0-9]{1,5})(?:/(?P<count>[0-9]{1,5}))? "
    r"(?P<proto>[!-~]+)(?P<formats>(?: +[!-~]+)*) *"
)
_LINE = re.compile(r"(?P<type>[a-z])=(?P<value>.*)")
#: Attribute names are tokens (RFC 4566 §9 att-field); the value is anything after ":".
_ATTRIBUTE = re.compile(r"(?P<name>[!-9;-~]+)(?::(?P<value>.*))?")

#: Larger bodies are refused: no real offer comes near it, and parsing stays cheap.
MAX_SDP_BYTES = 65536


class SdpError(ValueError):
    """The body is not an SDP fedsim can read (the peer's fault, never fedsim's)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """One ``a=`` line: ``a=name`` (``value`` None) or ``a=name:value``."""

    name: str
    value: str | None


def _values(attributes: tuple[Attribute, ...], name: str) -> tuple[str, ...]:
    wanted = name.lower()
    return tuple(a.value or "" for a in attributes if a.name.lower() == wanted)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One ``m=`` block of an SDP.

    Attributes:
        media: the media type as written (``audio``, ``video``, ``message``...).
        port: the transport port; 0 means the stream is refused or disabled.
        proto: the transport protocol as written (``RTP/AVP``, ``RTP/SAVP``, ``sip``...).
        formats: the format list (payload types for RTP, ``null`` or a URI for ``sip``).
        connection: the block's own ``c=`` address, if it has one.
        attributes: the block's ``a=`` lines in order.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: tuple[Attribute, ...] = ()

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of attribute ``name`` (case-insensitive), "" for a flag."""
        return _values(self.attributes, name)

    def first(self, name: str) -> str | None:
        """The first value of attribute ``name``, or None when it is absent."""
        found = self.values(name)
        return found[0] if found else None

    def has(self, name: str) -> bool:
        """Whether attribute ``name`` is present (with or without a value)."""
        return bool(self.values(name))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A parsed SDP body: session-level lines and the media blocks in order.

    Attributes:
        origin: the ``o=`` value, if present.
        connection: the session-level ``c=`` address, if present.
        attributes: session-level ``a=`` lines (ICE credentials can live here).
        media: the ``m=`` blocks in order (RFC 3264 answers keep that order).
    """

    origin: str | None
    connection: str | None
    attributes: tuple[Attribute, ...]
    media: tuple[MediaDescription, ...]

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of session-level attribute ``name`` (case-insensitive)."""
        return _values(self.attributes, name)


def _connection_address(value: str) -> str:
    """The address of ``c=IN IP4 192.0.2.1`` (RFC 4566 §5.7); TTL or count suffixes dropped."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line: {value!r}")
    return parts[2].split("/", 1)[0]


def _attribute(value: str) -> Attribute:
    match = _ATTRIBUTE.fullmatch(value)
    if match is None:
        raise SdpError(f"bad a= line: {value!r}")
    return Attribute(name=match["name"], value=match["value"])


def _media(value: str) -> MediaDescription:
    match = _M_LINE.fullmatch(value)
    if match is None:
        raise SdpError(f"bad m= line: {value!r}")
    port = int(match["port"])
    if port > 65535:
        raise SdpError(f"m= port out of range: {value!r}")
    return MediaDescription(
        media=match["media"],
        port=port,
        proto=match["proto"],
        formats=tuple(match["formats"].split()),
    )


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (RFC 4566) into plain data.

    Args:
        body: the message body, as received.

    Returns:
        The session description; attribute meanings are not interpreted here.

    Raises:
        SdpError: not UTF-8, too large, no ``v=0`` first, a line that is not
            ``<letter>=<value>``, or a malformed ``c=``, ``m=`` or ``a=`` line.
    """
    if len(body) > MAX_SDP_BYTES:
        raise SdpError(f"SDP of {len(body)} bytes is over {MAX_SDP_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError(f"SDP is not UTF-8 ({exc.reason})") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    origin: str | None = None
    session_connection: str | None = None
    session_attributes: list[Attribute] = []
    blocks: list[tuple[MediaDescription, list[Attribute], list[str]]] = []
    for line in lines[1:]:
        match = _LINE.fullmatch(line)
        if match is None:
            raise SdpError(f"not an SDP line: {line!r}")
        kind, value = match["type"], match["value"]
        if kind == "m":
            blocks.append((_media(value), [], []))
        elif kind == "a":
            (blocks[-1][1] if blocks else session_attributes).append(_attribute(value))
        elif kind == "c":
            address = _connection_address(value)
            if blocks:
                blocks[-1][2].append(address)
            else:
                session_connection = address
        elif kind == "o" and not blocks:
            origin = value
        # Other line types (s=, t=, b=, k=, i=, ...) do not change an answer.
    media = tuple(
        MediaDescription(
            media=m.media,
            port=m.port,
            proto=m.proto,
            formats=m.formats,
            connection=connections[0] if connections else None,
            attributes=tuple(attributes),
        )
        for m, attributes, connections in blocks
    )
    return SessionDescription(
        origin=origin,
        connection=session_connection,
        attributes=tuple(session_attributes),
        media=media,
    )
