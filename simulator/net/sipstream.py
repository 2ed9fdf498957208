"""One SIP stream per connection: the only place fedsim reads and frames SIP off a connection.

Theory of operation
-------------------
Every SIP connection fedsim has, the Edge's two ports, the Edge's partner legs
and the simulated Expressway-E's (``fedsim peer``, ``fedsim call``), is a
:class:`SipStream` over a ``trio.abc.Stream`` (a TLS stream in production, a
``trio.testing.memory_stream_pair`` half in tests). It owns four policies, so
that no listener can differ from another in them:

**Framing and parsing.** Bytes go to the sans-I/O :class:`~simulator.sip.StreamFramer`
(RFC 3261 §18.3, Content-Length framing, size limits); each framed message is
parsed. A CRLF CRLF ping is answered with a CRLF pong (RFC 5626 §3.5.1) here.

**Unparsable input.** A message that frames but does not parse is handed to the
owner's ``on_unparsable(raw, error)``, which records it and returns the reply to
send (a ``400`` built by :func:`~simulator.sip.error_response_for`) or None; the
stream goes on, since framing is intact. A framing error (no Content-Length, a
bad one, an oversize message) is answered the same way and ends the stream:
RFC 3261 §18.3 leaves nothing but closing.

**The idle deadline.** ``idle_timeout`` bounds how long the peer may stay silent,
and also how long it may leave our replies unread (a send that blocks counts
against the same deadline). The owner runs the connection inside
:meth:`idle_scope`, one cancel scope whose deadline :meth:`next_message` pushes
back before each read, but only once it has drifted by a sixteenth of the
timeout: moving a deadline costs more than parsing an ACK. Without a scope each
read has its own ``move_on_after``.

**Corking, and the log before the reply.** With ``cork=True`` replies written
while a burst of pipelined requests is being answered wait in a list and leave
in one write just before the next read (one TLS record and one syscall per
burst instead of one per request); :meth:`release` sends what is waiting before
a long wait (a DNS query the cache cannot answer), so no reply waits on another
request's DNS. Whatever the path, ``before_send()`` runs right before any byte
leaves: the Edge passes its recorder's flush, so the event of a decision is on
disk before the reply that announces it. This module is the only place where
that happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from simulator.sip import (
    FramingError,
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    parse_message,
)

__all__ = ["PONG", "READ_SIZE", "SipStream", "Unparsable"]

#: Bytes asked of the stream per read (a TLS record is at most 16 KiB plus overhead).
READ_SIZE = 65536
#: RFC 5626 §3.5.1: the answer to a double-CRLF ping is a single CRLF.
PONG = b"\r\n"
#: The idle deadline is pushed back once it has drifted by this part of the timeout.
DEADLINE_SLACK = 1 / 16

#: ``on_unparsable(raw, error)``: record the bad input, return the reply to send (or None).
Unparsable = Callable[[bytes, SipParseError], bytes | None]
#: ``on_wire(direction, data)``: every message received ("in") or sent ("out"), for taps.
WireTap = Callable[[str, bytes], None]


class SipStream:
    """SIP messages over one byte stream (see the module's theory of operation).

    Args:
        stream: the connected stream; the owner closes it.
        idle_timeout: seconds of silence (or of unread replies) before the stream
            ends; None waits forever.
        max_header_bytes / max_body_bytes: the framer's limits (oversize: 513/413).
        on_unparsable: records a message that cannot be used and returns its reply.
        before_send: runs right before any byte leaves (the recorder's flush).
        cork: hold replies while a burst is answered (the Edge's two ports).
        drop: a prefix of messages to skip without parsing (the federation port's ACKs:
            ``b"ACK "``).
        on_wire: sees every whole message received and every message sent.
        send_lock: taken around each write, for a stream that refuses two concurrent
            senders (trio.SSLStream; the Edge's TlsStream orders them itself).
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        idle_timeout: float | None = None,
        max_header_bytes: int = StreamFramer.DEFAULT_MAX_HEADER_BYTES,
        max_body_bytes: int = StreamFramer.DEFAULT_MAX_BODY_BYTES,
        on_unparsable: Unparsable | None = None,
        before_send: Callable[[], None] | None = None,
        cork: bool = False,
        drop: bytes | None = None,
        on_wire: WireTap | None = None,
        send_lock: trio.Lock | None = None,
    ) -> None:
        self.stream = stream
        self.idle_timeout = idle_timeout
        self.framer = StreamFramer(max_header_bytes=max_header_bytes, max_body_bytes=max_body_bytes)
        self.on_unparsable = on_unparsable
        self.before_send = before_send
        self.cork = cork
        self.drop = drop
        self.on_wire = on_wire
        self.send_lock = send_lock
        #: True while a burst is answered: sends wait in :attr:`pending`.
        self.corked = False
        self.pending: list[bytes] = []
        #: Why the stream ended, when the peer broke SIP framing (for callers that report it).
        self.framing_error: FramingError | None = None
        self._scope: trio.CancelScope | None = None

    # -- the idle deadline ---------------------------------------------------------

    def idle_scope(self) -> trio.CancelScope:
        """The cancel scope to run this connection in: its deadline is the idle deadline.

        A handler still running when the peer has been silent, or has left our
        replies unread, for ``idle_timeout`` is cancelled with it.
        """
        deadline = (
            math.inf if self.idle_timeout is None else trio.current_time() + self.idle_timeout
        )
        self._scope = trio.CancelScope(deadline=deadline)
        return self._scope

    # -- receiving -------------------------------------------------------------------

    async def next_message(self) -> Request | Response | None:
        """The next message that parses; None at EOF, at the idle deadline, or when framing
        is lost (after its error reply).

        Raises:
            trio.BrokenResourceError: the peer reset or broke the connection.
            trio.ClosedResourceError: the stream was closed under us.
        """
        while True:
            try:
                item = self.framer.next_message()
            except FramingError as exc:
                # RFC 4475 ncl/mcl01: framing is lost; answer if we can, then close.
                self.framing_error = exc
                await self.reject(exc.offending, exc)
                return None
            if item is Need.DATA:
                # One read, after the replies so far have left (inlined: the hot path).
                await self.uncork()
                timeout = self.idle_timeout
                scope = self._scope
                if timeout is None:
                    data = bytes(await self.stream.receive_some(READ_SIZE))
                elif scope is not None:
                    due = trio.current_time() + timeout
                    if due - scope.deadline > timeout * DEADLINE_SLACK:
                        scope.deadline = due
                    data = bytes(await self.stream.receive_some(READ_SIZE))
                else:
                    data = b""
                    with trio.move_on_after(timeout):
                        data = bytes(await self.stream.receive_some(READ_SIZE))
                if not data:
                    return None  # EOF, or silence for idle_timeout
                self.framer.receive_data(data)
                if self.cork:
                    self.corked = True
                continue
            if item is KeepAlive.PING:
                await self.send(PONG)
                continue
            assert isinstance(item, bytes)
            if self.on_wire is not None:
                self.on_wire("in", item)
            if self.drop is not None and item.startswith(self.drop):
                continue
            try:
                return parse_message(item)
            except SipParseError as exc:
                await self.reject(item, exc)

    async def reject(self, raw: bytes, exc: SipParseError) -> None:
        """Apply the unparsable-input policy to ``raw`` (a request found bad after parsing too)."""
        if self.on_unparsable is None:
            return
        reply = self.on_unparsable(raw, exc)
        if reply is not None:
            await self.send(reply)

    # -- sending ---------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Send one serialized message (or pong); while corked it waits for the burst's end.

        Several tasks may send on one stream (a ringing or NOTIFY task): the TLS
        stream orders their writes, so records never interleave.
        """
        if self.on_wire is not None and data != PONG:
            self.on_wire("out", data)
        if self.corked:
            self.pending.append(data)
            return
        if self.before_send is not None:
            self.before_send()  # the event is on disk before its reply leaves
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        if self.send_lock is None:
            await self.stream.send_all(data)
            return
        async with self.send_lock:
            await self.stream.send_all(data)

    async def uncork(self) -> None:
        """End a burst: what waits leaves now, in one write."""
        self.corked = False
        if self.before_send is not None:
            self.before_send()
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            await self._write(data)

    async def release(self) -> None:
        """Send what the burst has answered so far, and go on holding what follows."""
        if self.pending:
            await self.uncork()
            self.corked = True
