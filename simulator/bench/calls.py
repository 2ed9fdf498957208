"""``python -m simulator.bench.calls``: how much fedsim code one inbound INVITE runs, cold and warm.

Runs the built-in lab in-process on loopback, opens one mutual-TLS connection
as the seed's partner, and sends two INVITEs that the Edge refuses with the
seed's 504 (acano.steven.lab: SRV target outside the domain): the first is
*cold* (the route, the SRV answer and the verdict are computed), the second
*warm* (all of it cached). For each, every Python call into a module of
``simulator/`` made while the request is handled is counted (``sys.setprofile``;
the client side is plain ssl and bytes, and the lab's DNS server, whose tasks
are left out, is no part of the Edge), and the modules the calls land in are
listed (``--functions``: the functions). A count, not a time: it is the same on every run
and every machine, so a change on the request path shows its cost here exactly.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import trio
import trio.lowlevel

from simulator.edge.app import serve_lab
from simulator.lab import builtin_lab, with_overrides
from simulator.pki import client_context

SIMULATOR = str(Path(__file__).resolve().parents[1])
LOOPBACK = ("127.0.0.1", 0)


def _invite(call: str, cseq: int) -> bytes:
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    body += b"m=audio 30000 RTP/AVP 8 0\r\n"
    head = (
        "INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:2000@acano.steven.lab>;tag=abc\r\n"
        "To: <sip:stejanss@skype.lab>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: {cseq} INVITE\r\n"
        "Contact: <sip:2000@127.0.0.1:5061;transport=tls>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class CallCounter:
    """Counts calls into simulator/ modules while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.calls = 0
        self.modules: collections.Counter[str] = collections.Counter()
        self.functions: collections.Counter[str] = collections.Counter()

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.armed or event != "call":
            return
        path = frame.f_code.co_filename
        if not path.startswith(SIMULATOR) or path == __file__:
            return
        try:
            task = trio.lowlevel.current_task().name
        except RuntimeError:
            return
        if "simulator.dns.server" in task:
            return  # the lab's DNS server answering, not the Edge's request path
        self.calls += 1
        name = Path(path).relative_to(SIMULATOR).as_posix()
        self.modules[name] += 1
        self.functions[f"{name}:{frame.f_code.co_qualname}"] += 1


Result = tuple[int, dict[str, int], dict[str, int]]


async def _measure(counter: CallCounter, work: Path) -> list[Result]:
    lab = with_overrides(builtin_lab(), listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK)
    results: list[Result] = []
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: serve_lab(
                lab, log_dir=work / "logs", certs_dir=work / "certs", task_status=task_status
            )
        )
        issued = addresses.issued
        ctx = client_context(
            cert=issued["vcse.steven.lab"].cert_path,
            key=issued["vcse.steven.lab"].key_path,
            trust=[issued["public-root"].cert_path],
        )
        tcp = await trio.open_tcp_stream(*addresses.federation)
        tls = trio.SSLStream(tcp, ctx, server_hostname="sip.skype.lab")
        await tls.do_handshake()
        # One request of another caller first: the connection's own setup (the peer's
        # certificate facts, compiled once per connection) is done before counting.
        await tls.send_all(_invite("warm-up", 1).replace(b"acano.steven.lab", b"nosrv.steven.lab"))
        with trio.fail_after(10):
            while b"\r\n\r\n" not in await tls.receive_some(65536):
                pass
        for n in range(2):
            counter.calls = 0
            counter.modules.clear()
            counter.functions.clear()
            counter.armed = True
            await tls.send_all(_invite(f"calls-{n}", n + 1))
            reply = b""
            with trio.fail_after(10):
                while b"\r\n\r\n" not in reply:
                    reply += await tls.receive_some(65536)
            counter.armed = False
            if not reply.startswith(b"SIP/2.0 504 "):
                raise RuntimeError(f"expected the seed's 504, got {reply[:40]!r}")
            results.append((counter.calls, dict(counter.modules), dict(counter.functions)))
        await trio.aclose_forcefully(tls)
        nursery.cancel_scope.cancel()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.bench.calls", description=__doc__)
    parser.add_argument("--functions", action="store_true", help="list calls per function too")
    args = parser.parse_args(argv)
    counter = CallCounter()
    with tempfile.TemporaryDirectory() as tmp:
        sys.setprofile(counter.profile)
        try:
            results = trio.run(_measure, counter, Path(tmp))
        finally:
            sys.setprofile(None)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    print(f"fedsim calls per refused inbound INVITE ({stamp})")
    for label, (calls, modules, functions) in zip(("cold", "warm"), results, strict=True):
        print(f"  {label}: {calls} calls in {len(modules)} modules")
        shown = functions if args.functions else modules
        for name, count in sorted(shown.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {count:5d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
