"""The bench's trio clients, each run in its own process so its CPU is not the server's.

``latency``: one warm mutual-TLS connection, INVITEs at a fixed rate (open
loop: each is sent at its scheduled time whatever the answers do), the time
from each INVITE's send to its final response, then the ACK on the INVITE's
branch (RFC 3261 §17.1.1.3). Prints one JSON line with p50/p99/p99.9.

``idle``: opens N mutual-TLS connections (from 127.0.0.1, 127.0.0.2, ... so that
no per-peer limit of the server caps them), sends one CRLF CRLF keep-alive on
each (RFC 5626 §3.5.1; its pong, or 2 s, shows the server has finished the
handshake and holds the connection), prints ``ready N``, then holds them idle
until SIGTERM (or ``--hold`` seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import signal
import ssl
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from simulator.pki import client_context

INVITE = (
    "INVITE sip:bench@edge.bench SIP/2.0\r\n"
    "Via: SIP/2.0/TLS {ip}:{port};branch=z9hG4bK-bench-{n}\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Bench Partner" <sip:2000@partner.bench>;tag=bench{n}\r\n'
    "To: <sip:bench@edge.bench>\r\n"
    "Call-ID: {n}-bench@{ip}\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:2000@{ip}:{port};transport=tls>\r\n"
    "User-Agent: fedsim bench latency client\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n"
    "\r\n"
    "{sdp}"
)
SDP = (
    "v=0\r\n"
    "o=- 53655765 2353687637 IN IP4 {ip}\r\n"
    "s=-\r\n"
    "c=IN IP4 {ip}\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)
ACK = (
    "ACK sip:bench@edge.bench SIP/2.0\r\n"
    "Via: SIP/2.0/TLS {ip}:{port};branch=z9hG4bK-bench-{n}\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Bench Partner" <sip:2000@partner.bench>;tag=bench{n}\r\n'
    "{to}\r\n"
    "Call-ID: {n}-bench@{ip}\r\n"
    "CSeq: 1 ACK\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``samples`` (sorted or not)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _header(head: bytes, names: tuple[bytes, ...]) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        if line[:9].lower().startswith(names):
            return line
    return None


def _responses(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut complete responses (header blocks; the bench's 504s have no body) off ``buffer``."""
    heads: list[bytes] = []
    while True:
        buffer = buffer.lstrip(b"\r\n")
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return heads, buffer
        head = buffer[:end]
        length = _header(head, (b"content-length:", b"l:"))
        body = int(length.split(b":", 1)[1]) if length is not None else 0
        if len(buffer) < end + 4 + body:
            return heads, buffer
        heads.append(head)
        buffer = buffer[end + 4 + body :]


async def _connect(
    host: str,
    port: int,
    context: ssl.SSLContext,
    server_name: str,
    local_address: str | None = None,
) -> trio.SSLStream[trio.SocketStream]:
    tcp = await trio.open_tcp_stream(host, port, local_address=local_address)
    tls = trio.SSLStream(tcp, context, server_hostname=server_name)
    await tls.do_handshake()
    return tls


async def measure_latency(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    server_name: str,
    rate: float,
    count: int,
    drain: float = 5.0,
) -> dict[str, object]:
    """INVITE -> final response times (ms) of ``count`` calls sent at ``rate`` per second."""
    tls = await _connect(host, port, context, server_name)
    local = tls.transport_stream.socket.getsockname()
    ip, lport = str(local[0]), int(local[1])
    sent: dict[bytes, float] = {}
    samples: list[float] = []
    late = 0
    acks: list[bytes] = []
    done = trio.Event()
    send_lock = trio.Lock()  # the sender and the receiver (ACKs) share the stream

    async def receiver() -> None:
        buffer = b""
        while True:
            data = await tls.receive_some(65536)
            if not data:
                return
            now = time.perf_counter()
            heads, buffer = _responses(buffer + data)
            for head in heads:
                if head[8:9] == b"1":
                    continue  # provisional
                call_id = _header(head, (b"call-id:", b"i:"))
                to = _header(head, (b"to:", b"t:"))
                if call_id is None or to is None:
                    continue
                key = call_id.split(b":", 1)[1].strip()
                started = sent.pop(key, None)
                if started is None:
                    continue
                samples.append((now - started) * 1000)
                n = key.split(b"-", 1)[0].decode()
                acks.append(ACK.format(ip=ip, port=lport, n=n, to=to.decode()).encode())
            if acks:
                async with send_lock:
                    await tls.send_all(b"".join(acks))
                acks.clear()
            if len(samples) == count:
                done.set()

    sdp = SDP.format(ip=ip)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        start = trio.current_time()
        for n in range(count):
            when = start + n / rate
            if trio.current_time() - when > 0.001:
                late += 1
            await trio.sleep_until(when)
            data = INVITE.format(ip=ip, port=lport, n=n, length=len(sdp), sdp=sdp).encode()
            async with send_lock:
                sent[f"{n}-bench@{ip}".encode()] = time.perf_counter()
                await tls.send_all(data)
        with trio.move_on_after(drain):
            await done.wait()
        nursery.cancel_scope.cancel()
    await trio.aclose_forcefully(tls)
    result: dict[str, object] = {
        "sent": count,
        "answered": len(samples),
        "lost": count - len(samples),
        "late_sends": late,
    }
    if samples:
        result.update(
            p50_ms=round(percentile(samples, 50), 3),
            p99_ms=round(percentile(samples, 99), 3),
            p999_ms=round(percentile(samples, 99.9), 3),
            max_ms=round(max(samples), 3),
        )
    return result


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


#: Connections opened from one source address: fedsim's Edge admits at most 100 per
#: peer address (Limits.max_connections_per_peer), as a real Edge limits one partner.
PER_SOURCE = 50


def source_address(host: str, n: int) -> str | None:
    """Where connection ``n`` comes from: to 127.0.0.1, spread over 127.0.0.1, .2, ...
    (all loopback) ``PER_SOURCE`` at a time; elsewhere, the system's choice."""
    if host != "127.0.0.1":
        return None
    return f"127.0.0.{1 + n // PER_SOURCE}"


async def hold_idle(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    server_name: str,
    count: int,
    hold: float,
    parallel: int = 20,
) -> None:
    """Open ``count`` idle mutual-TLS connections, print ``ready N P``, hold until SIGTERM."""
    streams: list[trio.SSLStream[trio.SocketStream]] = []
    pongs = 0
    limiter = trio.CapacityLimiter(parallel)

    async def one(source: str | None) -> None:
        nonlocal pongs
        async with limiter:
            try:
                tls = await _connect(host, port, context, server_name, source)
                await tls.send_all(b"\r\n\r\n")
            except (OSError, trio.BrokenResourceError):
                return
            streams.append(tls)
            with trio.move_on_after(2):
                while True:
                    data = await tls.receive_some(4096)
                    if not data or b"\r\n" in data:
                        pongs += 1
                        break

    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for n in range(count):
                nursery.start_soon(one, source_address(host, n))
        print(f"ready {len(streams)} {pongs}", flush=True)
        with trio.move_on_after(hold):
            async for _ in signals:
                break
    for tls in streams:
        await trio.aclose_forcefully(tls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench.client")
    parser.add_argument("mode", choices=["latency", "idle"])
    parser.add_argument("--connect", required=True, help="HOST:PORT of the server")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=60.0)
    args = parser.parse_args(argv)
    host, _, port = args.connect.rpartition(":")
    context = client_context(cert=args.cert, key=args.key, trust=[args.ca])
    if args.mode == "latency":
        result = trio.run(
            lambda: measure_latency(
                host,
                int(port),
                context,
                server_name=args.server_name,
                rate=args.rate,
                count=args.count,
            )
        )
        print(json.dumps(result), flush=True)
        return 0
    raise_nofile()
    trio.run(
        lambda: hold_idle(
            host,
            int(port),
            context,
            server_name=args.server_name,
            count=args.count,
            hold=args.hold,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
