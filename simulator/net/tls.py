"""TLS for the Edge's connections, lean enough for load tests.

``trio.SSLStream`` does everything right and pays for it on every call: two
strict-FIFO locks, a conflict detector and a trip through the scheduler per
send and per receive, even when the socket is ready. On the bench's warm
connection that is about a quarter of the Edge's CPU per call (measured with the
bench ceiling built both ways). :class:`TlsStream` keeps the same design (an
``ssl.SSLObject`` over two memory BIOs) and the same contract for its caller
(``trio.BrokenResourceError`` from a broken or refused peer, ``b""`` at the peer's
close_notify), but talks to a non-blocking socket directly and asks trio only to
wait when the socket is not ready.

What it gives up, on purpose: it is a stream for one reader task, and a
receive that finds data at once is not a checkpoint. So that a peer which
floods the connection cannot starve the others, every 32nd such receive yields
to the scheduler anyway. Writes from several tasks (a ringing task, a NOTIFY)
are serialised by a lock, so TLS records never interleave on the wire.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import trio
import trio.lowlevel

#: Receives that may complete without blocking before one yields to the scheduler.
FAIR_SHARE = 32
#: Bytes asked of the socket per read (the largest TLS record is 16 KiB plus overhead).
READ_SIZE = 65536


class TlsStream(trio.abc.Stream):
    """TLS on a connected TCP socket: ``do_handshake``, then a trio stream.

    Args:
        sock: the connected socket; the stream owns it from now on (closing closes it).
        context: the TLS context (client certificate policy included).
        server_hostname: None on an accepted connection (the server side); the name
            to send as SNI when the Edge is the client (its outbound connections).
    """

    def __init__(
        self, sock: socket.socket, context: ssl.SSLContext, *, server_hostname: str | None = None
    ) -> None:
        sock.setblocking(False)
        self.socket = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_hostname is None,
            server_hostname=server_hostname,
        )
        self._write_lock = trio.StrictFIFOLock()
        self._eof = False
        self._closed = False
        self._broken = False  # a TLS error happened: nothing more is sent (see aclose)
        self._unyielded = 0
        self._drained = False  # the last socket read emptied the socket (see _receive_more)

    # -- the handshake -----------------------------------------------------------------

    async def do_handshake(self) -> None:
        """Run the TLS handshake to its end.

        Raises:
            trio.BrokenResourceError: the peer failed it (refused certificate, no TLS,
                an old protocol version, a reset); ``__cause__`` is the ssl or OS error.
        """
        while True:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                await self._send_pending()
                await self._receive_more()
                continue
            except ssl.SSLError as exc:
                # No alert is sent: the Edge answers a refused peer with a TCP reset.
                self._broken = True
                raise trio.BrokenResourceError(f"TLS handshake failed: {exc}") from exc
            await self._send_pending()  # the last flight (and TLS 1.3 session tickets)
            return

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        """The client certificate (DER), or None when the client sent none."""
        if not binary_form:
            raise ValueError("only the DER form is offered")
        return self._ssl.getpeercert(binary_form=True)

    @property
    def version(self) -> str | None:
        """The negotiated protocol ("TLSv1.3"), None before the handshake."""
        return self._ssl.version()

    # -- trio.abc.Stream -----------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Everything already decrypted or decryptable, up to ``max_bytes`` (at least one
        byte, waiting for it if need be); ``b""`` once the peer sent close_notify.

        Raises:
            trio.BrokenResourceError: the peer reset, or closed TCP without close_notify.
            trio.ClosedResourceError: this stream was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        limit = READ_SIZE if max_bytes is None else max_bytes
        if limit < 1:
            raise ValueError("max_bytes must be at least 1")
        while True:
            try:
                data = self._ssl.read(limit)
            except ssl.SSLWantReadError:
                if self._outgoing.pending:
                    await self._send_pending()  # a key update or refusal the peer awaits
                if self._eof:
                    raise trio.BrokenResourceError(
                        "the peer closed TCP without close_notify"
                    ) from None
                await self._receive_more()
                continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as exc:
                self._broken = True
                raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
            break
        # Whole records already received go out together: one wake-up, one reply burst.
        chunks = [data]
        size = len(data)
        while size < limit and (self._ssl.pending() or self._incoming.pending):
            try:
                more = self._ssl.read(limit - size)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break  # a partial record, or close_notify: the next call sees it
            except ssl.SSLError:
                break  # the next call raises it, after this data is served
            chunks.append(more)
            size += len(more)
        if self._outgoing.pending:
            await self._send_pending()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and put it on the wire (in order with every other write).

        Raises:
            trio.BrokenResourceError: the peer is gone.
            trio.ClosedResourceError: this stream was closed.
        """
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        try:
            self._ssl.write(data)
        except ssl.SSLError as exc:
            self._broken = True
            raise trio.BrokenResourceError(f"TLS error: {exc}") from exc
        await self._send_pending()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self.socket)

    async def aclose(self) -> None:
        """Send close_notify (not after a TLS error) and close the socket.

        As trio.SSLStream does, a stream broken by a TLS error sends nothing more:
        not the alert OpenSSL left in the outgoing buffer, not a close_notify.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if not self._broken:
                with contextlib.suppress(ssl.SSLError, ValueError):
                    self._ssl.unwrap()  # queues close_notify; the peer's is not awaited
                with contextlib.suppress(trio.BrokenResourceError):
                    await self._send_pending()
        finally:
            self._close_socket()

    def abort(self) -> None:
        """Close at once, no close_notify (the caller may have set SO_LINGER for a reset)."""
        self._closed = True
        self._close_socket()

    def _close_socket(self) -> None:
        """Close the socket, first waking any task still waiting on it.

        Another task may be blocked in a send on this socket (a stalled partner
        whose connection is retired): without notify_closing its wait would stay
        registered with trio's I/O manager for a file descriptor number the next
        socket reuses, and that socket's first wait would fail as busy.
        """
        if self.socket.fileno() >= 0:
            trio.lowlevel.notify_closing(self.socket)
        self.socket.close()

    # -- the socket ------------------------------------------------------------------------

    async def _receive_more(self) -> None:
        """Move what the socket has into the TLS object, waiting if there is nothing yet.

        After a read that did not fill the buffer the socket is almost surely empty:
        wait for it first rather than spend a system call to learn so (the wait
        returns at once if data did arrive meanwhile).
        """
        if self._drained:
            await trio.lowlevel.wait_readable(self.socket)
            self._unyielded = 0
        while True:
            try:
                data = self.socket.recv(READ_SIZE)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.socket)
                self._unyielded = 0
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"the peer's connection broke: {exc}") from exc
            break
        self._drained = len(data) < READ_SIZE
        if data:
            self._incoming.write(data)
            self._unyielded += 1
            if self._unyielded >= FAIR_SHARE:
                self._unyielded = 0
                await trio.lowlevel.checkpoint()
        else:
            self._incoming.write_eof()
            self._eof = True

    async def _send_pending(self) -> None:
        """Write every encrypted byte waiting in the outgoing BIO, in order.

        Whoever takes bytes out of the BIO holds the write lock until they are all on
        the wire, so a later writer's records cannot overtake them. When nobody holds
        it and the socket takes everything at once (the usual case), no lock is needed.
        """
        if not self._outgoing.pending:
            return
        lock = self._write_lock
        if not lock.locked():
            data = memoryview(self._outgoing.read())
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise trio.BrokenResourceError(f"the peer's connection broke: {exc}") from exc
            if sent == len(data):
                return
            lock.acquire_nowait()
            try:
                await self._send_rest(data[sent:])
            finally:
                lock.release()
            return
        await lock.acquire()
        try:
            await self._send_rest(memoryview(self._outgoing.read()))
        finally:
            lock.release()

    async def _send_rest(self, data: memoryview) -> None:
        """Put ``data`` on the wire, waiting for room (the caller holds the write lock)."""
        while data:
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.socket)
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(f"the peer's connection broke: {exc}") from exc
            data = data[sent:]
