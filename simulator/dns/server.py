"""The lab's authoritative DNS server: UDP and TCP on one port, on trio.

This module only moves bytes: every query goes to :meth:`ZoneSet.answer`,
which decides everything (the nanonameserver shape, style.md §2.5). Bad
clients cost at most their own connection: a malformed datagram gets FORMERR
or nothing, a TCP peer that stalls, lies in its length prefix or hangs up
halfway is disconnected, and the server keeps serving everyone else.
"""

from __future__ import annotations

import contextlib
import errno
from functools import partial

import trio

from simulator.dns.zone import ZoneSet
from simulator.errors import FedsimError
from simulator.net import Reporter, contain, peer_label, serve_guarded, stderr_reporter

__all__ = ["DnsListenError", "serve_dns"]

# A TCP client gets this long to send each complete query (and to accept each reply)
# before we hang up (RFC 7766 §6.2.3 suggests seconds, not minutes, for a busy server).
IDLE_TIMEOUT = 10.0
# Queries are small (a name, a type, an OPT record). Anything larger over TCP is junk
# or an attack, and its connection is closed rather than buffered.
MAX_TCP_QUERY = 4096
MAX_UDP_DATAGRAM = 65535
RECEIVE_CHUNK = 4096
# Port 0: UDP picks a free port, then TCP must bind the same number, which another
# process may hold; try again with a fresh UDP port this many times.
BIND_ATTEMPTS = 5
LISTEN_BACKLOG = 128
# recvfrom() may report a previous datagram's ICMP error on some platforms: not fatal.
_TRANSIENT_UDP_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


class DnsListenError(FedsimError):
    """The DNS server cannot listen where the lab says.

    Attributes:
        host: the address asked for.
        port: the port asked for.
        reason: the operating system's explanation.
    """

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(
            f"dns: cannot listen on {shown}: {reason} "
            "(fix: choose a free port or a local address in [dns] listen)"
        )


async def _bind_pair(host: str, port: int) -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """Bind a UDP and a TCP socket to the same address and port."""
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
    except OSError as exc:
        raise DnsListenError(host, port, str(exc)) from None
    family, _, _, _, sockaddr = infos[0]
    for attempt in range(BIND_ATTEMPTS):
        udp = trio.socket.socket(family, trio.socket.SOCK_DGRAM)
        try:
            await udp.bind(sockaddr)
        except OSError as exc:
            udp.close()
            raise DnsListenError(host, port, exc.strerror or str(exc)) from None
        bound_port = udp.getsockname()[1]
        tcp = trio.socket.socket(family, trio.socket.SOCK_STREAM)
        try:
            # Lets a restarted lab reuse its port while old connections sit in TIME_WAIT.
            tcp.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            await tcp.bind((sockaddr[0], bound_port, *sockaddr[2:]))
            tcp.listen(LISTEN_BACKLOG)
        except OSError as exc:
            tcp.close()
            udp.close()
            if port != 0 or attempt == BIND_ATTEMPTS - 1:
                raise DnsListenError(host, port, exc.strerror or str(exc)) from None
            continue
        return udp, tcp
    raise AssertionError("unreachable: the last attempt returns or raises")


async def serve_dns(
    zones: ZoneSet,
    host: str,
    port: int,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    report: Reporter | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``zones`` over UDP and TCP on ``host``:``port`` until cancelled.

    Args:
        zones: what to answer.
        host: a local address, IPv4 or IPv6 ("127.0.0.1", "::1").
        port: the port for both transports; 0 picks a free one.
        idle_timeout: seconds a TCP client has to send each query (and take
            each reply) before it is disconnected.
        report: where a fedsim bug reached by one query or connection is reported
            (the Edge's events in a lab; stderr by default). The server goes on.
        task_status: receives the (host, port) actually bound.

    Raises:
        DnsListenError: the address or port cannot be bound.
    """
    report = report or stderr_reporter()
    udp, tcp = await _bind_pair(host, port)
    with udp, tcp:
        listener = trio.SocketListener(tcp)
        bound = udp.getsockname()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_udp, zones, udp, report)
            handler = partial(_serve_tcp, zones, idle_timeout=idle_timeout)
            nursery.start_soon(
                partial(serve_guarded, handler, [listener], server="dns-tcp", report=report)
            )
            task_status.started((str(bound[0]), int(bound[1])))


async def _serve_udp(zones: ZoneSet, sock: trio.socket.SocketType, report: Reporter) -> None:
    while True:
        try:
            data, peer = await sock.recvfrom(MAX_UDP_DATAGRAM)
        except OSError as exc:
            if exc.errno in _TRANSIENT_UDP_ERRNOS:
                continue
            raise
        # One datagram is one unit of failure, as a connection is for TCP.
        reply = contain(
            "dns-udp", peer_label(peer), report, partial(zones.answer, data, transport="udp")
        )
        if reply is None:
            continue
        # The client went away or is unreachable: its problem, not the server's.
        with contextlib.suppress(OSError):
            await sock.sendto(reply, peer)


async def _receive_until(stream: trio.SocketStream, buffer: bytearray, size: int) -> bool:
    """Read into ``buffer`` until it holds ``size`` bytes; False when the peer hangs up first."""
    while len(buffer) < size:
        chunk = await stream.receive_some(RECEIVE_CHUNK)
        if not chunk:
            return False
        buffer += chunk
    return True


async def _next_tcp_query(stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
    """One length-prefixed query (RFC 1035 §4.2.2), or None to close the connection."""
    if not await _receive_until(stream, buffer, 2):
        return None
    length = int.from_bytes(buffer[:2], "big")
    if length == 0 or length > MAX_TCP_QUERY:
        return None
    if not await _receive_until(stream, buffer, 2 + length):
        return None  # a short read: the prefix promised more than arrived
    query = bytes(buffer[2 : 2 + length])
    del buffer[: 2 + length]
    return query


async def _serve_tcp(zones: ZoneSet, stream: trio.SocketStream, *, idle_timeout: float) -> None:
    """Answer queries on one TCP connection until it closes, stalls or misbehaves.

    A peer that resets or breaks the connection raises out of here; the guard
    that runs every connection (:func:`simulator.net.serve_guarded`) contains it.
    """
    buffer = bytearray()
    while True:
        query = None
        with trio.move_on_after(idle_timeout):
            query = await _next_tcp_query(stream, buffer)
        if query is None:
            return
        reply = zones.answer(query, transport="tcp")
        if reply is None:
            continue  # a silent name: the client sees a timeout for this query only
        with trio.move_on_after(idle_timeout) as sending:
            await stream.send_all(len(reply).to_bytes(2, "big") + reply)
        if sending.cancelled_caught:
            return
