"""``python -m simulator.fuzz.soak --seconds 600``: mixed good and bad traffic against a real
``fedsim serve`` from several processes, then the verdict.

The conductor starts ``fedsim serve`` (built-in lab, free loopback ports, a
private work directory) and ``--workers`` worker processes (this module with
``--worker``). Each worker loops for ``--seconds``. On the federation port
(mutual TLS): good OPTIONS and INVITE dialogs, 504 partners, malformed
requests, mutated INVITEs, plaintext on the TLS port, handshakes without a
certificate and resets mid-message. On the clients port (TLS, no client
certificate, as a Skype client): local-user OPTIONS and INVITEs, outbound calls
that fail in DNS (``cms.steven.lab``: 504 with ms-diagnostics 1009),
unroutable Request-URIs (484), mutated INVITEs, and clients that go away
abruptly (a reset or a FIN without close_notify, in the middle of a request or
after ``100 Trying``). Each worker reports the Call-IDs the Edge took with a
decision due (answered, or a 100 seen). Meanwhile the conductor samples the
server's RSS. Then it checks, and exits 1 if any check fails:

* the server is alive at the end and stops on SIGTERM with exit status 0;
* RSS shows no growth trend (the last third's peak within 20 % + 16 MiB of the
  first third's peak, after warm-up);
* ``fedsim: stopped: N requests, E events, 0 unwritten`` and E == lines in
  events.jsonl; every Call-ID a worker saw answered (or saw 100 Trying for,
  before it went away) has its event line;
* no traceback in the server's output, no ``internal-error`` event.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulator.fuzz.sip import mutate
from simulator.sip import KeepAlive, Need, SipParseError, StreamFramer

__all__ = ["SoakResult", "main", "run_soak"]

STOPPED = re.compile(r"^fedsim: stopped: (\d+) requests, (\d+) events, (\d+) unwritten", re.M)
IO_TIMEOUT = 10.0
#: The discovered-partner rate the soak's Edge allows (the default, 20/s, is a real
#: Edge's and would answer most good requests 503).
SOAK_RATE = 1_000_000
#: The traffic mix, drawn uniformly (OPTIONS twice as often). The ``c``-kinds go to
#: the clients port: a local user, an outbound call refused after DNS (1009), an
#: unroutable Request-URI (484), a mutated INVITE, a client that goes away abruptly.
KINDS = (
    "options",
    "options",
    "invite",
    "reject",
    "malformed",
    "mutated",
    "plain",
    "nocert",
    "reset",
    "clocal",
    "coutbound",
    "cunroutable",
    "cmutated",
    "cabort",
)
#: Kinds whose every request must be answered as expected (a worker error otherwise).
EXCHANGES = ("options", "invite", "reject", "malformed", "clocal", "coutbound", "cunroutable")
#: Domains the clients port cannot turn into a DNS question (RFC 3261 §21.4.22: 484).
UNROUTABLE = (".".join(["a"] * 150) + ".lab", "[::1]", "x" * 64 + ".lab")


# --- worker ---------------------------------------------------------------------------------


def _request(method: str, call: str, *, domain: str = "steven.lab", extra: str = "") -> bytes:
    return (
        f"{method} sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call}{method.lower()}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:2000@{domain}>;tag=soak\r\n"
        f"To: <sip:stejanss@skype.lab>{extra}\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


#: An SDES key line (RFC 4568), so the seed's users, who require SRTP, take the call.
SDES = b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BEJSwt1ILT8x2ksrr33NdrSdq9vxqMudDTZ2taz1\r\n"


def _to_tag(message: bytes) -> str:
    tag = re.search(rb"(?im)^To: .*;tag=([^;\r]*)\r$", message)
    return tag[1].decode("latin-1") if tag else ""


def _end_dialog(conn: _Conn, call: str, tag: str, request: Callable[[str], bytes]) -> None:
    """ACK the 200 (its retransmissions stop) and BYE the call; the BYE must get 200."""
    conn.send(request("ACK").replace(b"\r\nCall-ID", f";tag={tag}\r\nCall-ID".encode(), 1))
    bye = request("BYE").replace(b"CSeq: 1 BYE", b"CSeq: 2 BYE")
    conn.send(bye.replace(b"\r\nCall-ID", f";tag={tag}\r\nCall-ID".encode(), 1))
    status, got, _ = conn.message()
    if (status, got) != (200, call):
        raise ConnectionError(f"expected 200 to the BYE of {call}, got {(status, got)}")


def _invite(call: str) -> bytes:
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    body += b"m=audio 30000 RTP/AVP 8 0\r\n" + SDES
    head = _request("INVITE", call).replace(
        b"Content-Length: 0\r\n\r\n",
        b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(body),
    )
    return head + body


def _client_request(method: str, call: str, uri: str) -> bytes:
    """A Skype client's request on the clients port (alice of the Edge's own domain)."""
    body = b""
    if method == "INVITE":
        # What a Skype client offers under Microsoft's default policy: SRTP with its key.
        body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        body += b"m=audio 30000 RTP/SAVP 8 0\r\n" + SDES
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bK{call}{method.lower()}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:alice@skype.lab>;tag=soak\r\n"
        f"To: <{uri}>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <sip:alice@127.0.0.1:5062;transport=tls>\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class _Conn:
    """A blocking TLS connection (mutual with a client certificate) with a SIP framer."""

    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname="sip.skype.lab")
        self.framer = StreamFramer(max_body_bytes=1 << 20)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, str]:
        """(status, Call-ID) of the next response."""
        status, call, _ = self.message()
        return status, call

    def message(self) -> tuple[int, str, bytes]:
        """(status, Call-ID, the whole message) of the next response."""
        while True:
            item = self.framer.next_message()
            if isinstance(item, bytes):
                start = re.match(rb"SIP/2\.0 (\d{3}) ", item)
                if start is None:
                    continue  # a NOTIFY or other request from the Edge
                call = re.search(rb"(?im)^Call-ID: (.*?)\r$", item)
                return int(start[1]), call[1].decode("latin-1") if call else "", item
            if item is KeepAlive.PING:
                continue
            assert item is Need.DATA
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the Edge")
            self.framer.receive_data(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def run_worker(
    number: int, port: int, certs: Path, seconds: float, clients_port: int
) -> dict[str, object]:
    """Loop mixed traffic for ``seconds``; return what the Edge answered.

    ``port`` is the federation port, ``clients_port`` the clients port.
    """
    rng = random.Random(number)
    good_ctx = ssl.create_default_context(cafile=str(certs / "public-root.crt"))
    good_ctx.check_hostname = False
    good_ctx.load_cert_chain(certs / "vcse.steven.lab.crt", certs / "vcse.steven.lab.key")
    bare_ctx = ssl.create_default_context(cafile=str(certs / "public-root.crt"))
    bare_ctx.check_hostname = False
    answered: list[str] = []
    kinds: dict[str, int] = {}
    errors: list[str] = []
    conn: _Conn | None = None
    client: _Conn | None = None  # the clients port: no certificate (bare_ctx)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        call = f"soak{number}-{n}"
        kind = rng.choice(KINDS)
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            if kind in ("options", "invite", "reject", "malformed"):
                conn = conn or _Conn(port, good_ctx)
                _exchange(conn, kind, call, answered)
            elif kind in ("clocal", "coutbound", "cunroutable"):
                client = client or _Conn(clients_port, bare_ctx)
                _client_exchange(client, kind, call, answered, rng)
            elif kind == "cmutated":
                hostile = _Conn(clients_port, bare_ctx)
                try:
                    hostile.sock.settimeout(0.5)
                    hostile.send(mutate(_client_request("INVITE", call, "sip:bob@skype.lab"), rng))
                    with contextlib.suppress(OSError, ConnectionError, SipParseError):
                        hostile.response()
                finally:
                    hostile.close()
            elif kind == "cabort":
                _client_abort(clients_port, bare_ctx, call, answered, rng)
            elif kind == "mutated":
                hostile = _Conn(port, good_ctx)
                try:
                    hostile.sock.settimeout(0.5)
                    hostile.send(mutate(_invite(call), rng))
                    with contextlib.suppress(OSError, ConnectionError, SipParseError):
                        hostile.response()
                finally:
                    hostile.close()
            elif kind == "plain":
                with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
                    raw.sendall(b"GET / HTTP/1.0\r\n\r\n" if n % 2 else _request("OPTIONS", call))
                    with contextlib.suppress(OSError):
                        raw.recv(100)
            elif kind == "nocert":
                with contextlib.suppress(OSError):
                    bare = _Conn(port, bare_ctx)
                    bare.send(_request("OPTIONS", call))
                    bare.sock.recv(100)
                    bare.close()
            else:
                cut = _Conn(port, good_ctx)
                cut.send(_invite(call)[: rng.randint(1, 200)])
                _reset(cut.sock)
        except (OSError, ConnectionError, SipParseError) as exc:
            for open_conn in (conn, client):
                if open_conn is not None:
                    open_conn.close()
            conn = client = None
            if kind in EXCHANGES:
                errors.append(f"{kind} {call}: {exc!r}")
    for open_conn in (conn, client):
        if open_conn is not None:
            open_conn.close()
    return {"worker": number, "answered": answered, "kinds": kinds, "errors": errors}


def _exchange(conn: _Conn, kind: str, call: str, answered: list[str]) -> None:
    if kind == "options":
        conn.send(_request("OPTIONS", call))
        expect = [200]
    elif kind == "reject":
        conn.send(_request("OPTIONS", call, domain="acano.steven.lab"))
        expect = [504]
    elif kind == "malformed":
        conn.send(_request("OPTIONS", call).replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"))
        expect = [400]
    else:
        conn.send(_invite(call))
        expect = [100, 180, 200]
    got = [conn.message() for _ in expect]
    if [status for status, _, _ in got] != expect or {c for _, c, _ in got} != {call}:
        raise ConnectionError(f"expected {expect} for {call}, got {[g[:2] for g in got]}")
    if kind == "invite":
        _end_dialog(conn, call, _to_tag(got[-1][2]), lambda m: _request(m, call))
    if kind != "malformed":
        answered.append(call)  # a decision: its event line must exist


def _client_exchange(
    conn: _Conn, kind: str, call: str, answered: list[str], rng: random.Random
) -> None:
    """One request of a Skype client and the answers it must get."""
    if kind == "clocal":
        method = rng.choice(("OPTIONS", "INVITE"))
        conn.send(_client_request(method, call, "sip:bob@skype.lab"))
        expect = [200] if method == "OPTIONS" else [100, 180, 200]
    elif kind == "coutbound":
        # The seed's failure 2: cms.steven.lab's SRV target sits in a subdomain.
        conn.send(_client_request("INVITE", call, "sip:x@cms.steven.lab"))
        expect = [100, 504]
    else:
        conn.send(_client_request("INVITE", call, f"sip:bob@{rng.choice(UNROUTABLE)}"))
        expect = [484]
    got = [conn.message() for _ in expect]
    if [status for status, _, _ in got] != expect or {c for _, c, _ in got} != {call}:
        raise ConnectionError(f"expected {expect} for {call}, got {[g[:2] for g in got]}")
    if kind == "coutbound" and not re.search(rb"(?im)^ms-diagnostics: 1009;", got[-1][2]):
        raise ConnectionError(f"{call}: 504 without ms-diagnostics 1009")
    if expect[-1] == 200 and len(expect) > 1:
        uri = "sip:bob@skype.lab"
        _end_dialog(conn, call, _to_tag(got[-1][2]), lambda m: _client_request(m, call, uri))
    answered.append(call)


def _client_abort(
    port: int, ctx: ssl.SSLContext, call: str, answered: list[str], rng: random.Random
) -> None:
    """A Skype client that goes away abruptly: a reset, or a FIN without close_notify
    (closing a Python TLS socket sends none), in the middle of its request or after
    the Edge's 100 Trying (the Edge took the request: its event must still come)."""
    cut = _Conn(port, ctx)
    try:
        invite = _client_request("INVITE", call, "sip:x@cms.steven.lab")
        if rng.random() < 0.5:
            cut.send(invite[: rng.randint(1, len(invite) - 1)])
        else:
            cut.send(invite)
            status, _, _ = cut.message()
            if status != 100:
                raise ConnectionError(f"{call}: {status} instead of 100 Trying")
            answered.append(call)
        if rng.random() < 0.5:
            _reset(cut.sock)
    finally:
        cut.close()


# --- conductor ------------------------------------------------------------------------------


@dataclass
class SoakResult:
    """What the soak saw and the checks that failed (empty: passed)."""

    failures: list[str] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    answered: int = 0
    summary: str = ""
    kinds: dict[str, int] = field(default_factory=dict)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Output:
    """Non-blocking reader of a child's merged output."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.text = ""

    def pump(self, timeout: float) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            if not sel.select(timeout):
                return
        with contextlib.suppress(BlockingIOError):
            self.text += os.read(self.fd, 1 << 16).decode("utf-8", "replace")

    def wait_for(self, pattern: re.Pattern[str], limit: float) -> re.Match[str] | None:
        deadline = time.monotonic() + limit
        while (found := pattern.search(self.text)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.pump(min(left, 0.5))
        return found


def run_soak(seconds: float, *, workers: int = 4, work: Path | None = None) -> SoakResult:
    """Run the soak; ``work`` keeps logs and certs (default: a temporary directory)."""
    result = SoakResult()
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fedsim-soak-")))
        _conduct(seconds, workers, work, result)
    return result


def _conduct(seconds: float, workers: int, work: Path, result: SoakResult) -> None:
    # Port 0 everywhere: fedsim serve binds free ports itself and prints them, so no
    # other process can take a port between our choosing it and serve binding it.
    argv = [
        sys.executable, "-m", "simulator", "serve",
        "--listen", "127.0.0.1:0", "--clients", "127.0.0.1:0",
        "--dns-listen", "127.0.0.1:0",
        "--log-dir", str(work / "logs"), "--certs-dir", str(work / "certs"),
        # steven.lab is a discovered partner: its 20 messages/s would throttle the soak.
        "--rule", f"discovered_rate={SOAK_RATE}",
    ]  # fmt: skip
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    children: list[subprocess.Popen[bytes]] = []
    try:
        out = _Output(server)
        if out.wait_for(re.compile(r"^decisions \(", re.M), 60) is None:
            result.failures.append(f"fedsim serve did not start:\n{out.text[-2000:]}")
            return
        bound = re.search(r"^  federation  127\.0\.0\.1:(\d+) ", out.text, re.M)
        if bound is None:
            result.failures.append(f"no federation address in the banner:\n{out.text[-2000:]}")
            return
        fed = int(bound[1])
        clients = re.search(r"^  clients     127\.0\.0\.1:(\d+) ", out.text, re.M)
        if clients is None:
            result.failures.append(f"no clients address in the banner:\n{out.text[-2000:]}")
            return
        for number in range(workers):
            child = subprocess.Popen(
                [sys.executable, "-m", "simulator.fuzz.soak", "--worker", str(number),
                 "--port", str(fed), "--clients-port", clients[1],
                 "--certs", str(work / "certs"), "--seconds", str(seconds)],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            children.append(child)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result.rss_kib.append(_rss_kib(server.pid))
            out.pump(min(1.0, max(0.0, deadline - time.monotonic())))
        answered: set[str] = set()
        for child in children:
            stdout, _ = child.communicate(timeout=seconds + 60)
            report = json.loads(stdout.decode().strip().splitlines()[-1])
            answered.update(report["answered"])
            for kind, count in report["kinds"].items():
                result.kinds[kind] = result.kinds.get(kind, 0) + count
            if report["errors"]:
                result.failures.append(f"worker {report['worker']}: {report['errors'][:5]}")
        result.answered = len(answered)
        if server.poll() is not None:
            result.failures.append(f"fedsim serve died (status {server.returncode})")
            return
        result.rss_kib.append(_rss_kib(server.pid))
        os.kill(server.pid, signal.SIGTERM)
        stopped = out.wait_for(STOPPED, 60)
        if server.wait(timeout=60) != 0:
            result.failures.append(f"fedsim serve exited {server.returncode} on SIGTERM")
        out.pump(0.1)
        _verdict(result, out.text, stopped, answered, work / "logs" / "events.jsonl")
    finally:
        for proc in (*children, server):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def _verdict(
    result: SoakResult,
    output: str,
    stopped: re.Match[str] | None,
    answered: set[str],
    events_path: Path,
) -> None:
    fail = result.failures.append
    if stopped is None:
        fail(f"no 'fedsim: stopped' line:\n{output[-2000:]}")
        return
    result.summary = stopped[0]
    written, unwritten = int(stopped[2]), int(stopped[3])
    events = [json.loads(line) for line in events_path.read_text("utf-8").splitlines()]
    if unwritten:
        fail(f"{unwritten} events could not be written")
    if written != len(events):
        fail(f"the Edge says {written} events, events.jsonl has {len(events)}")
    logged = {str(e.get("call_id")) for e in events}
    missing = answered - logged
    if missing:
        fail(f"{len(missing)} answered requests have no event, e.g. {sorted(missing)[:5]}")
    if "Traceback" in output or "internal error" in output:
        fail(f"unexpected exception in the server output:\n{output[-3000:]}")
    if any(e.get("kind") == "internal-error" for e in events):
        fail("internal-error events in events.jsonl")
    samples = result.rss_kib[len(result.rss_kib) // 6 :]  # skip warm-up
    if len(samples) >= 6:
        third = len(samples) // 3
        first, last = max(samples[:third]), max(samples[-third:])
        if last > first * 1.2 + 16 * 1024:
            fail(f"RSS grew from {first} KiB to {last} KiB")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.fuzz.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="default: 600")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--work-dir", type=Path, help="keep logs and certs here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clients-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        report = run_worker(args.worker, args.port, args.certs, args.seconds, args.clients_port)
        print(json.dumps(report), flush=True)
        return 0
    result = run_soak(args.seconds, workers=args.workers, work=args.work_dir)
    rss = result.rss_kib
    print(f"soak: {args.seconds:g} s, {args.workers} workers, traffic {result.kinds}")
    print(f"soak: {result.answered} decisions answered; {result.summary}")
    if rss:
        print(f"soak: server RSS {rss[0]} -> {rss[-1]} KiB (peak {max(rss)})")
    for failure in result.failures:
        print(f"soak: FAIL {failure}", file=sys.stderr)
    print("soak: " + ("FAILED" if result.failures else "passed"))
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
