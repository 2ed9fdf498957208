"""SIP messages over one TLS stream: framing, CRLF keep-alives, parse and send.

Both sides of the simulated Expressway-E use it. Framing and parsing are the
sans-I/O :mod:`simulator.sip`; this module only pumps bytes.
"""

from __future__ import annotations

import trio

from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    parse_message,
    serialize,
)

#: Bytes asked of the stream per read.
READ_SIZE = 65536
#: RFC 5626 §3.5.1: the answer to a double-CRLF ping is a single CRLF.
PONG = b"\r\n"


class PeerClosed(Exception):
    """The other side closed the connection (EOF) while we waited for a message."""


class SipConnection:
    """Send and receive whole SIP messages on a stream.

    Args:
        stream: the TLS stream (handshake already done, or done by the first I/O).

    Attributes:
        unparsable: messages that framed but did not parse, with the error; the
            connection keeps going past them (framing is intact, RFC 3261 §18.3).
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.framer = StreamFramer()
        self.send_lock = trio.Lock()
        self.unparsable: list[tuple[bytes, SipParseError]] = []

    async def send(self, message: Request | Response) -> None:
        """Serialize and send one message (one writer at a time)."""
        await self.send_raw(serialize(message))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (pongs, or a message already serialized)."""
        # Uncontended (the usual case), take the lock without Lock.acquire's trip
        # through the scheduler; send_all is the checkpoint.
        try:
            self.send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self.send_lock.acquire()
        try:
            await self.stream.send_all(data)
        finally:
            self.send_lock.release()

    async def receive(self) -> Request | Response:
        """Return the next message that parses.

        Pings are answered with a pong (RFC 5626 §3.5.1) and skipped; messages that
        do not parse are kept in :attr:`unparsable` and skipped.

        Raises:
            PeerClosed: EOF before a whole message arrived.
            trio.BrokenResourceError: TLS or TCP failure (alerts, resets).
        """
        while True:
            item = self.framer.next_message()
            if item is Need.DATA:
                data = await self.stream.receive_some(READ_SIZE)
                if not data:
                    raise PeerClosed
                self.framer.receive_data(bytes(data))
                continue
            if item is KeepAlive.PING:
                await self.send_raw(PONG)
                continue
            assert isinstance(item, bytes)
            try:
                return parse_message(item)
            except SipParseError as exc:
                self.unparsable.append((item, exc))
