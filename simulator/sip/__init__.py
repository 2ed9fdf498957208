"""The SIP core of fedsim: RFC 3261 messages with no networking code at all.

Sans-I/O in the manner of h11: :class:`StreamFramer` cuts a TLS/TCP byte
stream into messages (RFC 3261 §18.3), :func:`parse_message` turns one into a
:class:`Request` or :class:`Response` (or raises :class:`SipParseError` with
the status to answer), :func:`build_response` answers a request
(RFC 3261 §8.2.6), and :func:`serialize` gives the bytes back. Nothing here
imports trio, socket or ssl, reads a clock or keeps global state.
"""

from __future__ import annotations

from simulator.sip.errors import FramingError, MessageTooLarge, SipError, SipParseError
from simulator.sip.framing import KeepAlive, Need, StreamFramer
from simulator.sip.headers import COMPACT_FORMS, LIST_HEADERS, Headers, canonical_name
from simulator.sip.message import KNOWN_METHODS, Request, Response
from simulator.sip.parse import parse_message
from simulator.sip.response import REASON_PHRASES, build_response
from simulator.sip.serialize import serialize
from simulator.sip.unparsable import error_response_for
from simulator.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    Via,
    parse_name_addr,
    parse_uri,
    parse_via,
)

__all__ = [
    "COMPACT_FORMS",
    "KNOWN_METHODS",
    "LIST_HEADERS",
    "REASON_PHRASES",
    "AbsoluteUri",
    "FramingError",
    "Headers",
    "KeepAlive",
    "MessageTooLarge",
    "NameAddr",
    "Need",
    "Request",
    "Response",
    "SipError",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "Via",
    "build_response",
    "canonical_name",
    "error_response_for",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "serialize",
]
