"""SIP messages over one TLS stream, for the simulated Expressway-E and Skype client.

A thin face on :class:`simulator.net.sipstream.SipStream` (the one place fedsim
frames and parses SIP off a connection) for code that wants an exception at
EOF rather than None.
"""

from __future__ import annotations

import trio

from simulator.net.sipstream import PONG, READ_SIZE, SipStream
from simulator.sip import FramingError, Request, Response, SipParseError, serialize

__all__ = ["PONG", "READ_SIZE", "PeerClosed", "SipConnection"]


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
        self.unparsable: list[tuple[bytes, SipParseError]] = []
        # trio.SSLStream refuses two concurrent senders (a ringing task and the loop).
        self.send_lock = trio.Lock()
        self.sip = SipStream(stream, on_unparsable=self._keep, send_lock=self.send_lock)

    def _keep(self, raw: bytes, exc: SipParseError) -> None:
        if not isinstance(exc, FramingError):  # that one ends the stream (receive raises it)
            self.unparsable.append((raw, exc))

    async def send(self, message: Request | Response) -> None:
        """Serialize and send one message (one writer at a time)."""
        await self.send_raw(serialize(message))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (pongs, or a message already serialized)."""
        await self.sip.send(data)

    async def receive(self) -> Request | Response:
        """Return the next message that parses (pings answered, bad messages kept aside).

        Raises:
            PeerClosed: EOF before a whole message arrived.
            FramingError: the peer broke SIP framing (RFC 3261 §18.3: only closing is left).
            trio.BrokenResourceError: TLS or TCP failure (alerts, resets).
        """
        message = await self.sip.next_message()
        if message is None:
            if self.sip.framing_error is not None:
                raise self.sip.framing_error
            raise PeerClosed
        return message
