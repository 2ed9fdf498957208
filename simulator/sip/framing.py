"""StreamFramer: cut a TLS/TCP byte stream into SIP messages (RFC 3261 §18.3).

On a stream the only way to find where a message ends is Content-Length, so
it is mandatory there (RFC 3261 §20.14). This is the attack surface of the
Edge, so the rules are strict and the costs are bounded:

* bytes in with ``receive_data``, messages out with ``next_message`` (h11's
  ``receive_data``/``next_event``); no I/O, no clock;
* a single CRLF between messages is skipped (RFC 3261 §7.5) and a CRLFCRLF
  between messages is an RFC 5626 §3.5.1 keep-alive ping (answer ``b"\\r\\n"``);
* the search for the end of the header block resumes where it stopped, so a
  peer dribbling one byte at a time costs O(n), not O(n^2);
* a header block over ``max_header_bytes`` is refused (513) as soon as that
  many bytes have arrived without the blank line, and a Content-Length over
  ``max_body_bytes`` is refused (413) before the body is read;
* after a :class:`FramingError` the stream is out of sync: the framer stays
  dead and raises the same error again.
"""

from __future__ import annotations

import enum
import re
from typing import NoReturn

from simulator.sip import abnf
from simulator.sip.errors import FramingError, MessageTooLarge
from simulator.sip.headers import canonical_name

__all__ = ["KeepAlive", "Need", "StreamFramer"]

_CRLF = b"\r\n"
_BLANK = b"\r\n\r\n"
#: Each Content-Length line's value (RFC 3261 §7.3.3: "l" is compact), or a fold
#: (RFC 3261 §7.3.1: CRLF then whitespace), in one scan. A line is "name: value" up
#: to the next CRLF and its name is what precedes its first colon; IGNORECASE on a
#: bytes pattern is ASCII-only, as header names are.
_CONTENT_LENGTH_RE = re.compile(
    rb"\r\n(?:([ \t])|(?:content-length|l)[ \t]*:(.*?)(?=\r\n))", re.IGNORECASE | re.DOTALL
)


class Need(enum.Enum):
    """What ``next_message`` returns when it needs more bytes before it can go on."""

    DATA = "data"


class KeepAlive(enum.Enum):
    """A keep-alive seen between messages."""

    #: RFC 5626 §3.5.1 double-CRLF ping: the server must answer b"\r\n" (pong).
    PING = "ping"


class StreamFramer:
    """Cut a byte stream into SIP messages by Content-Length (RFC 3261 §18.3).

    No I/O: feed bytes with :meth:`receive_data`, then call :meth:`next_message`
    until it returns :attr:`Need.DATA`.
    """

    #: Longest header block (start line to blank line) we buffer; beyond it, 513.
    DEFAULT_MAX_HEADER_BYTES = 32 * 1024
    #: Largest Content-Length we accept; beyond it, 413.
    DEFAULT_MAX_BODY_BYTES = 256 * 1024

    def __init__(
        self,
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        """Create a framer for one connection.

        Args:
            max_header_bytes: limit on the header block, blank line included.
            max_body_bytes: limit on Content-Length.
        """
        if max_header_bytes < 16 or max_body_bytes < 0:
            raise ValueError("max_header_bytes must be >= 16 and max_body_bytes >= 0")
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer already searched for the blank line
        self._message_end: int | None = None  # set once a header block has been framed
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """How many received bytes are waiting (for a caller's idle/slowloris policy)."""
        return len(self._buffer)

    @property
    def in_message(self) -> bool:
        """True when part of a message has arrived (a half-read message at close is an error)."""
        return self._message_end is not None or bool(self._buffer.lstrip(b"\r\n"))

    def receive_data(self, data: bytes) -> None:
        """Add received bytes. Processing happens in :meth:`next_message`.

        Raises:
            FramingError: the framer already failed (the error it failed with).
        """
        if self._error is not None:
            raise self._error
        self._buffer += data

    def next_message(self) -> bytes | Need | KeepAlive:
        """Return the next complete message, a keep-alive, or :attr:`Need.DATA`.

        Returns:
            bytes: exactly one message, header block and body (give it to parse_message).
            KeepAlive.PING: a CRLFCRLF ping was received; send b"\\r\\n".
            Need.DATA: call receive_data, then call again.

        Raises:
            MessageTooLarge: header block over the limit (513) or Content-Length
                over the limit (413). The framer is dead afterwards.
            FramingError: (400) Content-Length missing, not a number, or given
                twice with different values. The framer is dead afterwards.
        """
        if self._error is not None:
            raise self._error
        buf = self._buffer
        message_end = self._message_end
        if message_end is None:
            if buf.startswith(b"\r"):  # one test for the usual case: a message starts here
                # Between messages: skip CRLFs, spot CRLFCRLF pings (RFC 5626 §3.5.1).
                while buf.startswith(_CRLF):
                    if buf == _CRLF or buf == b"\r\n\r":
                        return Need.DATA  # a lone CRLF, or the start of a ping
                    if buf.startswith(_BLANK):
                        del buf[:4]
                        self._searched = 0
                        return KeepAlive.PING
                    del buf[:2]
                    self._searched = 0
                if buf == b"\r":
                    return Need.DATA
            # Resume the search 3 bytes back: the blank line may straddle two reads.
            searched = self._searched
            end = buf.find(_BLANK, searched - 3 if searched > 3 else 0)
            if end < 0:
                self._searched = len(buf)
                if len(buf) > self.max_header_bytes:
                    self._die(MessageTooLarge, "header block over the limit", bytes(buf[:200]), 513)
                return Need.DATA
            header_end = end + 4
            if header_end > self.max_header_bytes:
                self._die(MessageTooLarge, "header block over the limit", bytes(buf[:200]), 513)
            message_end = self._message_end = header_end + self._body_length(buf, header_end)
        size = len(buf)
        if size < message_end:
            return Need.DATA  # RFC 4475 clerr: on a stream, wait for the rest
        if size == message_end:  # the usual case: one read, one message
            message = bytes(buf)
            buf.clear()
        else:
            message = bytes(buf[:message_end])
            del buf[:message_end]
        self._message_end = None
        self._searched = 0
        return message

    def _body_length(self, buf: bytearray, header_end: int) -> int:
        """Content-Length of the header block ``buf[:header_end]`` (blank line included)."""
        found = _CONTENT_LENGTH_RE.findall(buf, 0, header_end)
        if len(found) == 1 and not found[0][0]:  # one Content-Length line, no folding
            value = found[0][1].strip(b" \t")
            if value.isdigit() and len(value) < 7:  # ASCII digits only, for bytes
                length = int(value)
                if length <= self.max_body_bytes:
                    return length
        block = bytes(buf[:header_end])
        if any(fold for fold, _ in found):
            return self._body_length_folded(block)
        values = [value.strip(b" \t").decode("latin-1") for _, value in found]
        return self._check_length(values, block)

    def _body_length_folded(self, block: bytes) -> int:
        text = abnf.FOLD_RE.sub(" ", block.decode("latin-1"))  # only ASCII matters here
        values: set[str] = set()
        for line in text.split("\r\n")[1:]:
            colon = line.find(":")
            if colon > 0 and canonical_name(line[:colon].rstrip(" \t")) == "content-length":
                values.add(line[colon + 1 :].strip(" \t"))
        return self._check_length(list(values), block)

    def _check_length(self, values: list[str], block: bytes) -> int:
        if not values:
            # RFC 3261 §18.3 / §20.14: mandatory on streams (RFC 4475 inv2543 is a datagram case).
            self._die(FramingError, "no Content-Length on a stream", block, 400)
        if len(set(values)) > 1:
            self._die(FramingError, "conflicting Content-Length values", block, 400)  # mcl01
        value = values[0]
        if not abnf.DIGITS_RE.fullmatch(value):
            self._die(FramingError, "Content-Length is not a number", block, 400)  # ncl
        digits = value.lstrip("0") or "0"
        if len(digits) > 12 or int(digits) > self.max_body_bytes:
            self._die(MessageTooLarge, "body over the limit", block, 413)
        return int(digits)

    def _die(
        self, kind: type[FramingError], message: str, offending: bytes, status: int
    ) -> NoReturn:
        self._error = kind(message, offending=offending, status_hint=status)
        self._buffer.clear()
        raise self._error
