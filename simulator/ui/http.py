"""A small HTTP/1.1 server for the live page: h11 driven by trio, every connection guarded.

Why h11 on trio rather than an ASGI server: the page is a handful of routes on
loopback, and the Edge is a trio program whose every listener must run through
:func:`simulator.net.serve_guarded` (one place that contains what a peer can do).
An ASGI server brings its own accept loop, worker model and configuration; h11
is the sans-I/O HTTP/1.1 state machine those servers are built on (hypercorn's
too), so the loop below is the whole server: read, hand bytes to h11, answer.

Bad input: what h11 refuses (garbage, a header block over
:data:`MAX_HEADER_BYTES`) gets ``400 Bad Request`` and the connection closes; a
body over :data:`MAX_BODY_BYTES` gets 413. A client that trickles its request
(slowloris) has :data:`REQUEST_SECONDS` from the first byte of a request (and
of the connection's idle time) to finish it; then it gets 408 and is closed. A
client that stops reading (a page or an event stream it no longer takes) is
closed when a send has waited :data:`SEND_SECONDS`. At most
:data:`MAX_CONNECTIONS` connections are served at once (503 past that) and
:data:`MAX_STREAMS` of them may hold a server-sent event stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import trio

from simulator.net import Reporter, serve_guarded

#: The request line and headers, at most (h11 answers more with an error we turn into 400).
MAX_HEADER_BYTES = 16 * 1024
#: A request body (a form with a lab's DNS records), at most.
MAX_BODY_BYTES = 256 * 1024
#: Seconds a request may take from its first byte (or the connection's idle start) to its end.
REQUEST_SECONDS = 10.0
#: Connections served at once; event streams held at once.
MAX_CONNECTIONS = 64
MAX_STREAMS = 16
#: Seconds between two keep-alive comments on an event stream (a gone browser shows then).
KEEPALIVE_SECONDS = 15.0
#: Seconds a client may take to accept what we send (one that stops reading is dropped).
SEND_SECONDS = 10.0

#: Sent with every response: nothing is cached, sniffed, framed or referred elsewhere.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One request as the application sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    def form(self) -> dict[str, str]:
        """The body as an HTML form (``application/x-www-form-urlencoded``), last value wins."""
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpResponse:
    """A whole response."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EventStream:
    """A ``text/event-stream`` response: each encoded event received on ``channel``.

    The stream ends when the channel's sending side closes; ``closed`` is called
    when it ends either way (the browser left, or the server stopped it).
    """

    channel: trio.MemoryReceiveChannel[bytes]
    closed: Callable[[], None] = lambda: None


Handler = Callable[[HttpRequest], Awaitable[HttpResponse | EventStream]]


def text_response(status: int, text: str) -> HttpResponse:
    """A plain-text response (errors, one line)."""
    return HttpResponse(status=status, body=(text.rstrip("\n") + "\n").encode())


def sse_event(kind: str, data: str) -> bytes:
    """One server-sent event (``event:`` and a ``data:`` line per line of ``data``)."""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {kind}\n{lines}\n".encode()


class HttpServer:
    """Serves ``handler`` over HTTP/1.1 (module docstring for the limits)."""

    def __init__(self, handler: Handler, *, report: Reporter) -> None:
        self.handler = handler
        self.report = report
        self.connections = 0
        self.streams = 0

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` (0: a free port) and serve until cancelled."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()
        task_status.started((str(bound[0]), int(bound[1])))
        await serve_guarded(self.connection, listeners, server="ui", report=self.report)

    async def connection(self, stream: trio.SocketStream) -> None:
        """One client connection: requests one after the other (keep-alive) until it ends."""
        self.connections += 1
        try:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
            if self.connections > MAX_CONNECTIONS:
                await _send(stream, conn, text_response(503, "too many connections"))
                return
            while await self._one(stream, conn):
                conn.start_next_cycle()
        finally:
            self.connections -= 1

    async def _one(self, stream: trio.SocketStream, conn: h11.Connection) -> bool:
        """Serve one request; True when the connection may carry another."""
        try:
            with trio.fail_after(REQUEST_SECONDS):
                request = await _read_request(stream, conn)
        except trio.TooSlowError:
            if conn.their_state is not h11.IDLE or conn.trailing_data[0]:
                await _send(stream, conn, text_response(408, "request took too long"))
            return False
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await _send(stream, conn, text_response(400, f"bad request: {exc}"))
            return False
        except _TooLarge:
            await _send(stream, conn, text_response(413, "request body too large"))
            return False
        if request is None:
            return False
        answer = await self.handler(request)
        if isinstance(answer, EventStream):
            await self._stream(stream, conn, answer)
            return False
        await _send(stream, conn, answer)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _stream(
        self, stream: trio.SocketStream, conn: h11.Connection, es: EventStream
    ) -> None:
        if self.streams >= MAX_STREAMS:
            await _send(stream, conn, text_response(503, "too many event streams"))
            return
        self.streams += 1
        try:
            headers = [("Content-Type", "text/event-stream; charset=utf-8"), *SECURITY_HEADERS]
            head = conn.send(h11.Response(status_code=200, headers=headers))
            await _write(stream, head or b"")
            while True:
                chunk = b": keep-alive\n\n"
                with trio.move_on_after(KEEPALIVE_SECONDS):
                    try:
                        chunk = await es.channel.receive()
                    except trio.EndOfChannel:
                        await _write(stream, conn.send(h11.EndOfMessage()) or b"")
                        return
                await _write(stream, conn.send(h11.Data(data=chunk)) or b"")
        finally:
            self.streams -= 1
            es.closed()
            es.channel.close()


class _TooLarge(Exception):
    """The request's body is over :data:`MAX_BODY_BYTES`."""


async def _receive(stream: trio.SocketStream, conn: h11.Connection) -> h11.Event | type[h11.PAUSED]:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]
        data = await stream.receive_some(65536)
        conn.receive_data(data)  # b"" is the peer's close: h11 then says ConnectionClosed


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> HttpRequest | None:
    """The next whole request, or None when the client closed between requests."""
    event = await _receive(stream, conn)
    if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("expected a request", error_status_hint=400)
    body = bytearray()
    while True:
        part = await _receive(stream, conn)
        if isinstance(part, h11.Data):
            body += part.data
            if len(body) > MAX_BODY_BYTES:
                raise _TooLarge
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            raise h11.RemoteProtocolError("the request ended early", error_status_hint=400)
    target = event.target.decode("ascii", errors="replace")
    split = urlsplit(target)
    headers: dict[str, str] = {}
    for name, value in event.headers:
        headers[name.decode("ascii").lower()] = value.decode("latin-1")
    return HttpRequest(
        method=event.method.decode("ascii", errors="replace"),
        path=unquote(split.path),
        query=dict(parse_qsl(split.query)),
        headers=headers,
        body=bytes(body),
    )


async def _send(stream: trio.SocketStream, conn: h11.Connection, response: HttpResponse) -> None:
    """Send a whole response (closing the connection after an error response)."""
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        *SECURITY_HEADERS,
        *response.headers,
    ]
    if response.status >= 400:
        headers.append(("Connection", "close"))
    try:
        data = conn.send(h11.Response(status_code=response.status, headers=headers))
        data = (data or b"") + (conn.send(h11.Data(data=response.body)) or b"")
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return  # the state machine cannot answer any more (a response already began)
    await _write(stream, data)


async def _write(stream: trio.SocketStream, data: bytes) -> None:
    """Send ``data`` within :data:`SEND_SECONDS`, else raise TooSlowError (a peer fault:
    the guard closes the connection, so a client that stopped reading holds no task)."""
    with trio.fail_after(SEND_SECONDS):
        await stream.send_all(data)


__all__ = [
    "KEEPALIVE_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "REQUEST_SECONDS",
    "SEND_SECONDS",
    "EventStream",
    "Handler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "sse_event",
    "text_response",
]
