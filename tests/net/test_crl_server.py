"""The CRL server: the sans-I/O HTTP reader, then the server against good and hostile clients."""

from __future__ import annotations

import contextlib
import shutil
import socket

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from simulator.dns import Resolver
from simulator.edge import crl as crl_module
from simulator.edge.crl import CrlFetcher, CrlService, fetch, open_crl_service, serve_crls
from simulator.net import InternalError
from simulator.net.http import (
    MAX_REQUEST_BYTES,
    HttpError,
    read_request,
    read_response,
    response,
    split_url,
)

CRL = b"0\x82\x01\x00fake-der-crl"
HOST = b"Host: 127.0.0.1\r\n"


# --- the reader, pure ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "method", "path"),
    [
        (b"GET /root.crl HTTP/1.1\r\n" + HOST + b"\r\n", "GET", "/root.crl"),
        (b"HEAD /root.crl?x=1 HTTP/1.1\r\n" + HOST + b"Accept: */*\r\n\r\n", "HEAD", "/root.crl"),
        (b"GET /root.crl HTTP/1.0\r\n\r\n", "GET", "/root.crl"),  # 1.0 needs no Host
    ],
)
def test_a_get_or_head_is_read(data: bytes, method: str, path: str) -> None:
    request = read_request(data)
    assert request is not None
    assert (request.method, request.path) == (method, path)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /root.crl HTTP/1.1\r\n\r\n", 400),  # RFC 9112 §3.2: HTTP/1.1 needs Host
        (b"POST /root.crl HTTP/1.1\r\n" + HOST + b"\r\n", 405),
        (b"GET /root.crl HTTP/2.0\r\n" + HOST + b"\r\n", 505),
        (b"GET http://x/root.crl HTTP/1.1\r\n" + HOST + b"\r\n", 400),  # not origin-form
        (b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n", 400),
        (b"GET /root.crl HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS ClientHello
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),  # the HTTP/2 preface
        (b"GET /" + b"a" * MAX_REQUEST_BYTES, 414),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_BYTES, 431),
    ],
)
def test_anything_else_is_refused_with_a_status(data: bytes, status: int) -> None:
    with pytest.raises(HttpError) as caught:
        read_request(data)
    assert caught.value.status == status


def test_a_partial_request_waits_for_more() -> None:
    whole = b"GET /root.crl HTTP/1.1\r\n" + HOST + b"\r\n"
    for cut in range(1, len(whole)):
        assert read_request(whole[:cut]) is None
    assert read_request(whole) is not None


@given(st.binary(max_size=600))
def test_the_reader_never_raises_anything_but_http_error(data: bytes) -> None:
    status = None
    try:
        read_request(data)
    except HttpError as exc:
        status = exc.status
    assert status in (None, 400, 405, 414, 431, 505)


def test_responses_read_back() -> None:
    wire = response(200, CRL, content_type="application/pkix-crl")
    assert read_response(wire, complete=False) == (200, CRL)
    assert read_response(wire[:-3], complete=False) is None
    with pytest.raises(HttpError):
        read_response(wire[:-3], complete=True)
    without_length = b"HTTP/1.0 200 OK\r\n\r\n" + CRL
    assert read_response(without_length, complete=False) is None
    assert read_response(without_length, complete=True) == (200, CRL)
    with pytest.raises(HttpError):
        read_response(b"SIP/2.0 200 OK\r\n\r\n", complete=True)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("http://127.0.0.1:8081/root.crl", ("127.0.0.1", 8081, "/root.crl")),
        ("http://crl.lab/x.crl", ("crl.lab", 80, "/x.crl")),
        ("http://[::1]:81/x", ("::1", 81, "/x")),
    ],
)
def test_split_url(url: str, parts: tuple[str, int, str]) -> None:
    assert split_url(url) == parts


@pytest.mark.parametrize("url", ["https://x/y", "ldap://x/y", "http://x:99999/y", "http:/x"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(ValueError, match=r"http://|port"):
        split_url(url)


# --- the server ------------------------------------------------------------------------------


@pytest.fixture
async def served(nursery: trio.Nursery) -> tuple[CrlService, list[InternalError]]:
    service = await open_crl_service("127.0.0.1", 0)
    service.store["/root.crl"] = CRL
    faults: list[InternalError] = []
    await nursery.start(
        lambda task_status: serve_crls(service, report=faults.append, task_status=task_status)
    )
    return service, faults


def _port(service: CrlService) -> int:
    return int(service.base.rsplit(":", 1)[1])


async def _exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        got = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                got += chunk
    return got


async def test_get_head_and_a_missing_crl(served: tuple[CrlService, list[InternalError]]) -> None:
    service, faults = served
    port = _port(service)
    got = await _exchange(port, b"GET /root.crl HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/pkix-crl\r\n" in got
    assert got.endswith(b"\r\n\r\n" + CRL)
    head = await _exchange(port, b"HEAD /root.crl HTTP/1.0\r\n\r\n")
    assert head.endswith(f"Content-Length: {len(CRL)}\r\nConnection: close\r\n\r\n".encode())
    missing = await _exchange(port, b"GET /other.crl HTTP/1.1\r\nHost: x\r\n\r\n")
    assert missing.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert faults == []


@pytest.mark.parametrize(
    ("garbage", "status"),
    [
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32), b"400"),
        (b"OPTIONS sip:x SIP/2.0\r\n\r\n", b"400"),
        (b"DELETE /root.crl HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_REQUEST_BYTES + 10), b"431"),
    ],
)
async def test_garbage_gets_an_answer_and_the_server_goes_on(
    served: tuple[CrlService, list[InternalError]], garbage: bytes, status: bytes
) -> None:
    service, faults = served
    port = _port(service)
    got = await _exchange(port, garbage)
    assert got.startswith(b"HTTP/1.1 " + status)
    assert (await _exchange(port, b"GET /root.crl HTTP/1.0\r\n\r\n")).endswith(CRL)
    assert faults == []


async def test_a_client_that_leaves_or_stays_silent_costs_its_connection_only(
    served: tuple[CrlService, list[InternalError]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service, faults = served
    port = _port(service)
    monkeypatch.setattr(crl_module, "REQUEST_TIMEOUT", 0.2)
    gone = await trio.open_tcp_stream("127.0.0.1", port)
    await gone.send_all(b"GET /ro")
    await gone.aclose()
    silent = await trio.open_tcp_stream("127.0.0.1", port)
    with trio.fail_after(5):
        assert await silent.receive_some(100) == b""  # closed after the request deadline
    await silent.aclose()
    assert (await _exchange(port, b"GET /root.crl HTTP/1.0\r\n\r\n")).endswith(CRL)
    assert faults == []


async def test_a_client_that_stops_reading_the_answer_is_dropped(
    served: tuple[CrlService, list[InternalError]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRL larger than the socket buffers, never read: the send gives up at the
    deadline and the connection closes, short of the whole body."""
    service, faults = served
    port = _port(service)
    monkeypatch.setattr(crl_module, "REQUEST_TIMEOUT", 0.5)
    big = bytes(16 << 20)
    service.store["/big.crl"] = big
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    async with trio.SocketStream(sock) as stalled:
        await stalled.send_all(b"GET /big.crl HTTP/1.0\r\n\r\n")
        await trio.sleep(2)  # reading nothing, well past the deadline
        got = 0
        with trio.fail_after(10), contextlib.suppress(trio.BrokenResourceError):
            while chunk := await stalled.receive_some(1 << 20):
                got += len(chunk)
    assert got < len(big)
    assert faults == []
    assert (await _exchange(port, b"GET /root.crl HTTP/1.0\r\n\r\n")).endswith(CRL)


async def test_the_edge_fetcher_gets_it_and_remembers(
    served: tuple[CrlService, list[InternalError]],
) -> None:
    service, _ = served
    resolver = Resolver(("127.0.0.1", 9), timeout=0.2, attempts=1)
    assert await fetch(f"{service.base}/root.crl", resolver) == CRL
    assert await fetch(f"{service.base}/none.crl", resolver) is None  # a 404
    assert await fetch("http://127.0.0.1:1/x.crl", resolver) is None  # refused
    assert await fetch("http://crl.unknown.lab/x.crl", resolver, timeout=1) is None  # no DNS
    fetcher = CrlFetcher(resolver)
    assert await fetcher.get(f"{service.base}/root.crl") == CRL
    assert await fetcher.get(f"{service.base}/root.crl") == CRL
    assert fetcher.fetches == 1


async def test_curl_fetches_the_crl(served: tuple[CrlService, list[InternalError]]) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not on PATH: make test (.ci/ensure-packages) installs the real peers")
    service, _ = served
    result = await trio.run_process(
        [curl, "--silent", "--show-error", "--fail", f"{service.base}/root.crl"],
        capture_stdout=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, CRL)
    result = await trio.run_process(
        [curl, "--silent", "--fail", f"{service.base}/none.crl"], capture_stdout=True, check=False
    )
    assert result.returncode == 22  # curl: an HTTP error (404) with --fail
