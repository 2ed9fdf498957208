"""The bench's ceiling: a trio mutual-TLS responder that answers every request with 504.

It does the least a SIP server over TLS can do: the same TLS context and TLS
stream as the Edge (ECDSA lab certificate, client certificate required,
``simulator.net.tls.TlsStream``), framing by ``Content-Length``, and a fixed
``504 Server time-out`` that copies only the five headers a response must echo
(RFC 3261 §8.2.6.2: Via, From, To with a tag, Call-ID, CSeq). ACKs and responses
get no answer; a CRLF CRLF ping gets a CRLF pong (RFC 5626 §3.5.1). No parsing, no
policy, no logs: what trio + ssl cost alone, so ``fedsim / ceiling`` is the price
of fedsim's own per-request work.

Run: ``python -m simulator.bench.ceiling --cert C --key K --ca CA`` prints
``ready 127.0.0.1:PORT`` once listening.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import ssl
from pathlib import Path

import trio

from simulator.net import serve_guarded, stderr_reporter
from simulator.net.tls import TlsStream
from simulator.pki import server_context

_ECHO = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:", b"cseq:")
_TO = (b"to:", b"t:")
_STATUS = b"SIP/2.0 504 Server time-out\r\n"
_TAIL = b"Content-Length: 0\r\n\r\n"


def answer(head: bytes) -> bytes | None:
    """The fixed 504 for one request's header block, or None (ACK, a response)."""
    if head.startswith((b"ACK ", b"SIP/2.0 ")):
        return None
    out = [_STATUS]
    for line in head.split(b"\r\n")[1:]:
        lower = line[:9].lower()
        if lower.startswith(_ECHO):
            if lower.startswith(_TO) and b";tag=" not in line:
                line += b";tag=ceiling"
            out.append(line + b"\r\n")
    out.append(_TAIL)
    return b"".join(out)


def _content_length(head: bytes) -> int:
    lower = head.lower()
    for key in (b"\r\ncontent-length:", b"\r\nl:"):
        at = lower.find(key)
        if at >= 0:
            end = lower.find(b"\r\n", at + 2)
            value = head[at + len(key) : end if end >= 0 else len(head)]
            return int(value.strip() or b"0")
    return 0


def split_messages(buffer: bytes) -> tuple[list[bytes], bytes, bool]:
    """Cut complete messages off ``buffer``: (header blocks, rest, a ping was seen)."""
    heads: list[bytes] = []
    ping = False
    while True:
        stripped = buffer.lstrip(b"\r\n")
        if len(buffer) - len(stripped) >= 4:
            ping = True
        buffer = stripped
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return heads, buffer, ping
        head = buffer[:end]
        total = end + 4 + _content_length(head)
        if len(buffer) < total:
            return heads, buffer, ping
        heads.append(head)
        buffer = buffer[total:]


async def _handle(stream: trio.SocketStream, context: ssl.SSLContext) -> None:
    tls = TlsStream(socket.socket(fileno=stream.socket.detach()), context)
    buffer = b""
    try:
        await tls.do_handshake()
        while True:
            data = await tls.receive_some(65536)
            if not data:
                return
            heads, buffer, ping = split_messages(buffer + data)
            replies = [r for r in map(answer, heads) if r is not None]
            if ping:
                replies.append(b"\r\n")
            if replies:
                await tls.send_all(b"".join(replies))
    except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
        pass
    finally:
        await trio.aclose_forcefully(tls)


async def serve_ceiling(
    context: ssl.SSLContext,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer every request on every mutual-TLS connection with 504 until cancelled."""
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
    bound = listeners[0].socket.getsockname()
    task_status.started((str(bound[0]), int(bound[1])))

    async def handler(stream: trio.SocketStream) -> None:
        await _handle(stream, context)

    # The same guarded runner as every fedsim server: the ceiling measures our stack.
    await serve_guarded(handler, listeners, server="ceiling", report=stderr_reporter())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench.ceiling")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="CA that signs client certs")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    context = server_context(cert=args.cert, key=args.key, trust=[args.ca])

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(serve_ceiling, context, "127.0.0.1", args.port)
            print(f"ready {host}:{port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
