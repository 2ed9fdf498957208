"""The live page's HTTP server: what it answers, and what it survives (garbage, slowloris)."""

from __future__ import annotations

import contextlib
import socket

import pytest
import trio

from simulator.lab import builtin_lab
from simulator.net import InternalError
from simulator.ui import http as uihttp
from simulator.ui.http import EventStream, HttpRequest, HttpResponse, HttpServer
from simulator.ui.live import LiveCalls
from simulator.ui.serve import LiveUi, serve_ui


async def _exchange(port: int, data: bytes, *, read_until_close: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        out = b""
        with trio.fail_after(10):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return out
                out += chunk
                if not read_until_close and b"\r\n\r\n" in out:
                    return out


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=200, body=f"{request.method} {request.path}".encode())


@pytest.fixture
async def server(nursery: trio.Nursery) -> tuple[int, list[InternalError]]:
    faults: list[InternalError] = []
    srv = HttpServer(_echo, report=faults.append)
    _host, port = await nursery.start(srv.serve, "127.0.0.1", 0)
    return port, faults


BAD = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64 + b"\r\n\r\n",  # a TLS hello
    b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * (uihttp.MAX_HEADER_BYTES + 10) + b"\r\n\r\n",
]


@pytest.mark.parametrize("data", BAD, ids=["garbage", "header", "length", "tls", "oversize"])
async def test_bad_http_gets_400_and_the_server_goes_on(
    server: tuple[int, list[InternalError]], data: bytes
) -> None:
    port, faults = server
    answer = await _exchange(port, data)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    good = await _exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200 ")
    assert good.endswith(b"GET /x")
    assert faults == []


async def test_keep_alive_serves_requests_one_after_the_other(
    server: tuple[int, list[InternalError]],
) -> None:
    port, _ = server
    two = (
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    answer = await _exchange(port, two)
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert b"GET /a" in answer
    assert answer.endswith(b"GET /b")


async def test_a_body_over_the_limit_gets_413(server: tuple[int, list[InternalError]]) -> None:
    port, _ = server
    size = uihttp.MAX_BODY_BYTES + 1
    head = f"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n".encode()
    answer = await _exchange(port, head + b"x" * size)
    assert answer.startswith(b"HTTP/1.1 413 ")


async def test_slowloris_is_cut_off_with_408(
    server: tuple[int, list[InternalError]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, faults = server
    monkeypatch.setattr(uihttp, "REQUEST_SECONDS", 0.5)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        for _ in range(3):  # a header line every 0.1 s, never the blank line
            await trio.sleep(0.1)
            await stream.send_all(b"X-A: b\r\n")
        got = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(4096):
                got += chunk
    assert got.startswith(b"HTTP/1.1 408 ")
    assert faults == []


async def test_an_idle_connection_is_closed_without_an_answer(
    server: tuple[int, list[InternalError]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = server
    monkeypatch.setattr(uihttp, "REQUEST_SECONDS", 0.2)
    assert await _exchange(port, b"") == b""


async def test_a_client_that_stops_reading_its_event_stream_is_dropped(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its send waits SEND_SECONDS at most: the connection closes, the slot is freed."""
    monkeypatch.setattr(uihttp, "SEND_SECONDS", 0.5)
    send, receive = trio.open_memory_channel[bytes](0)
    ended = trio.Event()

    async def events(_request: HttpRequest) -> EventStream:
        return EventStream(channel=receive, closed=ended.set)

    faults: list[InternalError] = []
    srv = HttpServer(events, report=faults.append)
    _host, port = await nursery.start(srv.serve, "127.0.0.1", 0)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    async with trio.SocketStream(sock) as stalled:
        await stalled.send_all(b"GET /events HTTP/1.1\r\nHost: a\r\n\r\n")  # reads nothing
        chunk = b"data: " + b"x" * 65536 + b"\n\n"
        with trio.fail_after(30):
            async with send:
                with contextlib.suppress(trio.BrokenResourceError):
                    while True:  # until the server gives up the stream and closes its end
                        await send.send(chunk)
            await ended.wait()
        assert srv.streams == 0
        assert faults == []  # a stalled client is a peer fault, not a bug
    good = await _exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert good.startswith(b"HTTP/1.1 200 ")


# --- the page's own rules -----------------------------------------------------------


@pytest.fixture
async def page(nursery: trio.Nursery) -> tuple[int, LiveUi]:
    ui = LiveUi(builtin_lab(), LiveCalls())
    _host, port = await nursery.start(
        lambda task_status: serve_ui(
            ui, "127.0.0.1", 0, report=lambda _f: None, task_status=task_status
        )
    )
    return port, ui


def _get(path: str, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


async def test_the_page_answers_only_to_its_own_host_name(page: tuple[int, LiveUi]) -> None:
    port, _ = page
    ok = await _exchange(port, _get("/", f"127.0.0.1:{port}"))
    assert ok.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Security-Policy: default-src 'none'" in ok
    assert b"<script src='/app.js' defer></script>" in ok
    rebound = await _exchange(port, _get("/", f"evil.example:{port}"))
    assert rebound.startswith(b"HTTP/1.1 421 ")


async def test_a_post_from_another_origin_is_refused(page: tuple[int, LiveUi]) -> None:
    port, _ = page
    body = b"call=1"
    request = (
        f"POST /place HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = await _exchange(port, request + body)
    assert answer.startswith(b"HTTP/1.1 403 ")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/exercise/edit", b"403"),
        ("POST", "/exercise/hint", b"403"),
        ("GET", "/call/99", b"404"),
        ("GET", "/download/1/x.txt", b"404"),
        ("GET", "/nothing", b"404"),
        ("DELETE", "/", b"405"),
    ],
)
async def test_edits_only_in_exercise_mode_and_unknown_paths(
    page: tuple[int, LiveUi], method: str, path: str, status: bytes
) -> None:
    port, _ = page
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    answer = await _exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:60]


async def test_rows_are_pushed_as_server_sent_events(page: tuple[int, LiveUi]) -> None:
    port, ui = page
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(_get("/events", f"127.0.0.1:{port}"))
        got = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in got:
                got += await stream.receive_some(4096)
            assert b"Content-Type: text/event-stream" in got
            ui.feed.observe(
                '{"time":"2026-12-03T10:00:00.000+00:00","kind":"decision","direction":"inbound",'
                '"call_id":"c1","method":"INVITE","from":"sip:a@b.lab","to":"sip:c@d.lab",'
                '"rule":"srv-not-in-domain","status":504}',
                None,
            )
            while b"event: row" not in got or b"</tr>" not in got:
                got += await stream.receive_some(4096)
    assert b"sip:a@b.lab -&gt; sip:c@d.lab" in got
    assert b"srv-not-in-domain" in got
