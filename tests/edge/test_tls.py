"""TlsStream, the Edge's lean server-side TLS, against trio's own SSLStream as the client."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trustme

from simulator.net.tls import TlsStream

CA = trustme.CA()
SERVER = CA.issue_cert("edge.test")
CLIENT = CA.issue_cert("peer.test")


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    SERVER.configure_cert(context)
    CA.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(*, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context()
    CA.configure_trust(context)
    if with_cert:
        CLIENT.configure_cert(context)
    return context


async def connected(
    *, with_cert: bool = True
) -> tuple[TlsStream, trio.SSLStream[trio.SocketStream]]:
    """A (server TlsStream, client SSLStream) pair on loopback, before the handshake."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    accepted = await listeners[0].accept()
    await listeners[0].aclose()
    server = TlsStream(socket.socket(fileno=accepted.socket.detach()), server_context())
    client = trio.SSLStream(tcp, client_context(with_cert=with_cert), server_hostname="edge.test")
    return server, client


@asynccontextmanager
async def pair() -> AsyncIterator[tuple[TlsStream, trio.SSLStream[trio.SocketStream]]]:
    """A handshaken (server TlsStream, client SSLStream) pair on loopback."""
    server, client = await connected()
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                nursery.start_soon(client.do_handshake)
        yield server, client
    finally:
        await trio.aclose_forcefully(client)
        await trio.aclose_forcefully(server)


async def test_handshake_gives_the_client_certificate_and_data_flows_both_ways() -> None:
    async with pair() as (server, client):
        pem = CLIENT.cert_chain_pems[0].bytes().decode()
        assert server.getpeercert() == ssl.PEM_cert_to_DER_cert(pem)
        assert server.version in ("TLSv1.2", "TLSv1.3")
        await client.send_all(b"INVITE")
        assert await server.receive_some() == b"INVITE"
        await server.send_all(b"SIP/2.0 504")
        assert await client.receive_some() == b"SIP/2.0 504"


async def test_records_already_received_come_back_in_one_read() -> None:
    async with pair() as (server, client):
        for n in range(5):  # five TLS records
            await client.send_all(b"record %d;" % n)
        await trio.sleep(0.2)  # all of them reach the server's socket
        assert await server.receive_some() == b"record 0;record 1;record 2;record 3;record 4;"


async def test_max_bytes_is_honoured_and_the_rest_kept() -> None:
    async with pair() as (server, client):
        await client.send_all(b"0123456789")
        assert await server.receive_some(4) == b"0123"
        assert await server.receive_some(100) == b"456789"
        with pytest.raises(ValueError, match="at least 1"):
            await server.receive_some(0)


async def test_close_notify_reads_as_end_of_stream() -> None:
    async with pair() as (server, client):
        await client.aclose()
        with trio.fail_after(5):
            assert await server.receive_some() == b""


async def test_tcp_close_without_close_notify_is_a_broken_resource() -> None:
    async with pair() as (server, client):
        await client.transport_stream.aclose()  # ragged EOF
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            await server.receive_some()


async def test_a_closed_stream_refuses_use_and_closes_once() -> None:
    async with pair() as (server, _client):
        await server.aclose()
        await server.aclose()  # idempotent
        with pytest.raises(trio.ClosedResourceError):
            await server.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await server.send_all(b"x")


async def test_concurrent_writers_never_interleave_records() -> None:
    # Two tasks send 200 KiB each; the socket buffer fills, so both wait to write.
    blocks = {b"A": b"A" * 200_000, b"B": b"B" * 200_000}
    async with pair() as (server, client):
        received = bytearray()

        async def read_all() -> None:
            while len(received) < 400_000:
                received.extend(await client.receive_some(65536))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                for block in blocks.values():
                    nursery.start_soon(server.send_all, block)
        # Each send_all arrives as one contiguous run, and every record decrypted.
        text = bytes(received)
        assert text in (blocks[b"A"] + blocks[b"B"], blocks[b"B"] + blocks[b"A"])


async def test_a_flooding_peer_does_not_starve_other_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small socket reads and a small fair share, so that the data already waiting in
    # the socket takes many reads that never block.
    monkeypatch.setattr("simulator.net.tls.READ_SIZE", 2048)
    monkeypatch.setattr("simulator.net.tls.FAIR_SHARE", 4)
    total = 40 * 4096
    async with pair() as (server, client):
        for _ in range(40):
            await client.send_all(b"x" * 4096)
        await trio.sleep(0.3)  # all of it reaches the server's socket
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.lowlevel.checkpoint()
            start = ticks
            received = 0
            while received < total:
                received += len(await server.receive_some(65536))
            during = ticks - start
            nursery.cancel_scope.cancel()
        # The reader never waited for data, yet the ticker ran: it was let in.
        assert during >= 5


async def test_a_refused_client_certificate_fails_the_handshake_with_the_ssl_cause() -> None:
    server, client = await connected(with_cert=False)
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            await server.do_handshake()
        except trio.BrokenResourceError as exc:
            failure.append(exc)
        server.abort()

    async def connect() -> None:
        # TLS 1.3: the client learns of the refusal on its first read, not at connect.
        try:
            await client.do_handshake()
            await client.receive_some()
        except trio.BrokenResourceError:
            pass

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            nursery.start_soon(connect)
    await trio.aclose_forcefully(client)
    assert len(failure) == 1
    assert isinstance(failure[0].__cause__, ssl.SSLError)


async def test_client_side_with_sni_against_trio_as_the_server() -> None:
    # The Edge's outbound connections: TlsStream is the client, presenting its certificate.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    server_ctx = server_context()
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _obj, name, _ctx: names.append(name)
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    accepted = await listeners[0].accept()
    await listeners[0].aclose()
    server = trio.SSLStream(accepted, server_ctx, server_side=True)
    client = TlsStream(
        socket.socket(fileno=tcp.socket.detach()), client_context(), server_hostname="edge.test"
    )
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                nursery.start_soon(client.do_handshake)
            assert names == ["edge.test"]
            assert server.getpeercert(binary_form=True)  # the client presented its own
            pem = SERVER.cert_chain_pems[0].bytes().decode()
            assert client.getpeercert() == ssl.PEM_cert_to_DER_cert(pem)
            await client.send_all(b"OPTIONS")
            assert await server.receive_some() == b"OPTIONS"
            await server.send_all(b"SIP/2.0 200 OK")
            assert await client.receive_some() == b"SIP/2.0 200 OK"
    finally:
        await trio.aclose_forcefully(server)
        await trio.aclose_forcefully(client)


async def test_after_a_failed_handshake_nothing_more_is_sent() -> None:
    # As with trio.SSLStream, and as the Edge must (a refused peer sees a reset, not an
    # alert): the alert OpenSSL leaves in the buffer for an untrusted client
    # certificate is not sent, nor a close_notify.
    stranger = trustme.CA().issue_cert("peer.test")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    accepted = await listeners[0].accept()
    await listeners[0].aclose()
    server = TlsStream(socket.socket(fileno=accepted.socket.detach()), server_context())
    context = client_context(with_cert=False)
    stranger.configure_cert(context)
    client = trio.SSLStream(tcp, context, server_hostname="edge.test")
    seen: list[BaseException] = []

    async def connect() -> None:
        try:
            await client.do_handshake()
            await client.receive_some()  # TLS 1.3: the refusal shows on the first read
        except trio.BrokenResourceError as exc:
            seen.append(exc.__cause__ or exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connect)
            with pytest.raises(trio.BrokenResourceError):
                await server.do_handshake()
            await server.aclose()
    await trio.aclose_forcefully(client)
    assert len(seen) == 1
    reason = getattr(seen[0], "reason", None) or str(seen[0])
    assert "ALERT" not in reason  # the client saw the connection end, not an alert


async def test_closing_wakes_a_blocked_writer_and_frees_the_descriptor() -> None:
    # A partner that stops reading leaves a send blocked on the socket; when the Edge
    # retires the connection, the blocked task must be woken (not left registered with
    # trio's I/O manager for a descriptor the next socket reuses: found by the fault
    # matrix, where the next connect then failed with BusyResourceError).
    async with pair() as (server, client):
        client.transport_stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fd = server.socket.fileno()
        outcome: list[BaseException] = []

        async def blocked_writer() -> None:
            try:
                with trio.fail_after(10):
                    while True:  # nobody reads: the socket fills, then the send blocks
                        await server.send_all(b"x" * 65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_writer)
            await trio.testing.wait_all_tasks_blocked()
            server.abort()
        assert outcome, "the blocked writer was not woken"
        # The descriptor number is free again: a new socket that takes it can wait on it.
        spare: list[socket.socket] = []
        try:
            while len(spare) < 64 and (not spare or spare[-1].fileno() != fd):
                spare.append(socket.socket())
            reused = spare[-1]
            assert reused.fileno() == fd
            reused.setblocking(False)
            with trio.move_on_after(0.01):
                await trio.lowlevel.wait_writable(reused)
        finally:
            for sock in spare:
                sock.close()
