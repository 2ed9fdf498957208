"""Faults around the Edge: its DNS goes away, a partner resets mid-dialog, the disk fills,
SIGTERM arrives under load. The Edge keeps answering, and no accepted request lacks its event.

The outbound side (the Edge's own connections to partners) belongs to
tests/outbound and is not exercised here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel

from simulator.dns.server import serve_dns
from simulator.dns.zone import ZoneSet, parse_zone_text
from simulator.lab import builtin_lab
from simulator.pki import client_context

REPO = Path(__file__).resolve().parents[2]

# TTL 0: nothing is cached, so every request asks the DNS server again.
PARTNER_DNS = """\
steven.lab. 0 IN SOA ns.steven.lab. hostmaster.steven.lab. 1 3600 600 86400 0
_sipfederationtls._tcp.steven.lab. 0 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab. 0 IN A 127.0.0.1
"""
ZONES = ZoneSet.from_records(parse_zone_text(PARTNER_DNS, source="partner.zone"))


async def _options(edge: Any, sip: Any, call: str) -> int:
    client = await edge.connect()
    await client.send(sip.request("OPTIONS", call))
    status = (await client.answer()).status
    await client.aclose()
    return int(status)


# --- the lab DNS stops answering, then comes back ---------------------------------------------


async def test_edge_answers_504_while_its_dns_is_down_and_recovers(
    nursery: trio.Nursery, start_edge: Any, sip: Any
) -> None:
    dns_scope = trio.CancelScope()

    async def run_dns(port: int, *, task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        with dns_scope:
            await serve_dns(ZONES, "127.0.0.1", port, task_status=task_status)

    host, port = await nursery.start(run_dns, 0)
    seed = builtin_lab()
    lab = dataclasses.replace(seed, edge=dataclasses.replace(seed.edge, dns=(host, port)))
    edge = await start_edge(lab, dns_timeout=0.3, dns_attempts=1)

    assert await _options(edge, sip, "before") == 200
    dns_scope.cancel()  # the DNS server goes away; its port is closed
    await trio.lowlevel.checkpoint()
    assert await _options(edge, sip, "during") == 504
    dns_scope = trio.CancelScope()
    await nursery.start(run_dns, port)  # back on the same port
    assert await _options(edge, sip, "after") == 200

    events = {e["call_id"]: e for e in edge.events()}
    assert events["before"]["rule"] == "accepted"
    assert events["during"]["status"] == 504
    assert str(events["during"]["rule"]).startswith("srv-")
    assert events["during"]["edge_log"] is not None
    assert "_sipfederationtls._tcp.steven.lab" in edge.edge_log()
    assert events["after"]["rule"] == "accepted"


# --- a partner resets mid-dialog ----------------------------------------------------------------


async def test_partner_reset_after_180_costs_only_its_connection(
    start_edge: Any, sip: Any, abort: Any
) -> None:
    edge = await start_edge(ring_seconds=0.3)
    caller = await edge.connect()
    await caller.send(sip.invite("reset180"))
    assert [(await caller.response()).status for _ in range(2)] == [100, 180]
    abort(caller.stream.transport_stream)
    await caller.stream.transport_stream.aclose()  # RST while the Edge is still ringing
    bystander = await edge.connect()
    await bystander.send(sip.invite("bystander"))
    assert [(await bystander.response()).status for _ in range(3)] == [100, 180, 200]
    assert await _options(edge, sip, "after-reset") == 200
    events = edge.events()
    assert [e["call_id"] for e in events if e.get("rule") == "accepted"][:1] == ["reset180"]
    assert [e for e in events if e.get("kind") == "internal-error"] == []


async def test_partner_reset_after_200_before_ack(start_edge: Any, sip: Any, abort: Any) -> None:
    edge = await start_edge()
    caller = await edge.connect()
    await caller.send(sip.invite("reset200"))
    assert [(await caller.response()).status for _ in range(3)] == [100, 180, 200]
    abort(caller.stream.transport_stream)
    await caller.stream.transport_stream.aclose()
    assert await _options(edge, sip, "after") == 200


# --- the log directory fails ----------------------------------------------------------------


async def test_disk_full_keeps_the_edge_answering_and_counts_what_was_lost(
    start_edge: Any, sip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "full"
    logs.mkdir()
    (logs / "events.jsonl").symlink_to("/dev/full")  # every write: ENOSPC, as on a full disk
    console: list[str] = []
    edge = await start_edge(logs=logs, console=console.append)
    assert [await _options(edge, sip, f"full{i}") for i in range(3)] == [200, 200, 200]
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "cannot write logs" in line]
    assert len(warnings) == 1, err  # once, not once per record
    assert "No space left on device" in warnings[0]
    assert [line for line in console if "cannot write logs" in line] == warnings

    (logs / "events.jsonl").unlink()  # space again
    assert await _options(edge, sip, "recovered") == 200
    lines = [json.loads(line) for line in (logs / "events.jsonl").read_text().splitlines()]
    assert isinstance(lines[0].pop("time"), str)  # when the disk came back
    assert lines[0] == {"kind": "log-gap", "unwritten": 3, "unwritten_total": 3}
    assert lines[1]["call_id"] == "recovered"
    assert "writable again (3 record(s) could not be written)" in capsys.readouterr().err


async def test_events_path_that_is_a_directory_is_reported_once(
    start_edge: Any, sip: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "dirlogs"
    (logs / "events.jsonl").mkdir(parents=True)  # cannot be opened for writing, even by root
    edge = await start_edge(logs=logs)
    assert [await _options(edge, sip, f"d{i}") for i in range(2)] == [200, 200]
    err = capsys.readouterr().err
    assert err.count("cannot write logs") == 1, err
    assert "Is a directory" in err


# --- shutdown with a decision in flight --------------------------------------------------


async def test_shutdown_during_a_dns_lookup_still_writes_the_event(
    nursery: trio.Nursery, tmp_path: Path, sip: Any
) -> None:
    """The request's SRV lookup hangs (a DNS server that never answers); the Edge stops
    while waiting: the request's event is still written, as "unanswered"."""
    from simulator.edge.app import serve_lab
    from simulator.edge.state import Limits
    from simulator.lab import with_overrides

    mute = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await mute.bind(("127.0.0.1", 0))
    seed = builtin_lab()
    lab = with_overrides(
        dataclasses.replace(seed, edge=dataclasses.replace(seed.edge, dns=mute.getsockname())),
        listen=("127.0.0.1", 0),
        clients=("127.0.0.1", 0),
        dns_listen=("127.0.0.1", 0),
    )
    logs = tmp_path / "logs"
    console: list[str] = []
    stopped = trio.Event()

    def say(line: str) -> None:
        console.append(line)
        if line.startswith("fedsim: stopped"):
            stopped.set()

    scope = trio.CancelScope()

    async def run(*, task_status: trio.TaskStatus[Any]) -> None:
        with scope:
            await serve_lab(
                lab,
                log_dir=logs,
                certs_dir=tmp_path / "certs",
                console=say,
                limits=Limits(dns_timeout=30, dns_attempts=1),
                task_status=task_status,
            )

    addresses = await nursery.start(run)
    issued = addresses.issued
    ctx = client_context(
        cert=issued["vcse.steven.lab"].cert_path,
        key=issued["vcse.steven.lab"].key_path,
        trust=[issued["public-root"].cert_path],
    )
    tls = trio.SSLStream(
        await trio.open_tcp_stream(*addresses.federation), ctx, server_hostname="sip.skype.lab"
    )
    await tls.send_all(sip.request("OPTIONS", "inflight"))
    with mute, trio.fail_after(10):
        query = await mute.recv(4096)  # the Edge is now inside its SRV lookup
    assert b"_sipfederationtls" in query
    scope.cancel()
    with trio.fail_after(10):
        await stopped.wait()
    await trio.aclose_forcefully(tls)
    events = [json.loads(line) for line in (logs / "events.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["call_id"], e["status"]) for e in events] == [
        ("unanswered", "inflight", None)
    ]
    assert console[-1] == "fedsim: stopped: 1 requests, 1 events, 0 unwritten"


# --- SIGTERM under load (a real fedsim serve) ------------------------------------------------


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free for TCP now; for the DNS (kind UDP), free for both, since
    fedsim's DNS server binds TCP and UDP on the same port."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if kind != socket.SOCK_DGRAM:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port pair found in 50 tries")


def _wait_for(proc: subprocess.Popen[bytes], pattern: str, seen: list[str], limit: float) -> str:
    """Read the child's output until ``pattern`` shows (or it exits); return all text."""
    assert proc.stdout is not None
    regex = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + limit
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not regex.search("".join(seen)):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no /{pattern}/ within {limit} s:\n{''.join(seen)}")
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen.append(chunk.decode("utf-8", "replace"))
    return "".join(seen)


def test_sigterm_under_load_answers_or_closes_and_loses_no_event(tmp_path: Path) -> None:
    fed, dns_port = _free_port(), _free_port(socket.SOCK_DGRAM)
    argv = [
        sys.executable, "-m", "simulator", "serve",
        "--listen", f"127.0.0.1:{fed}", "--clients", f"127.0.0.1:{_free_port()}",
        "--dns-listen", f"127.0.0.1:{dns_port}",
        "--log-dir", str(tmp_path / "logs"), "--certs-dir", str(tmp_path / "certs"),
        # The load comes from steven.lab, a discovered partner (20 messages/s by default).
        "--rule", "discovered_rate=1000000",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    seen: list[str] = []
    answered: set[str] = set()
    try:
        _wait_for(proc, r"^decisions \(", seen, 30)
        certs = tmp_path / "certs"
        ctx = client_context(
            cert=certs / "vcse.steven.lab.crt",
            key=certs / "vcse.steven.lab.key",
            trust=[certs / "public-root.crt"],
        )
        trio.run(_load_then_sigterm, proc.pid, fed, ctx, answered)
        _wait_for(proc, r"^fedsim: stopped: ", seen, 30)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    output = "".join(seen)
    stopped = re.search(
        r"^fedsim: stopped: (\d+) requests, (\d+) events, (\d+) unwritten", output, re.M
    )
    assert stopped, output
    requests, written, unwritten = map(int, stopped.groups())
    lines = (tmp_path / "logs" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert unwritten == 0
    assert written == len(events)
    assert requests == written  # only out-of-dialog OPTIONS: one event each, even if cut off
    assert answered <= {str(e.get("call_id")) for e in events}
    assert len(answered) >= 100  # the load was real before SIGTERM
    assert "Traceback" not in output


async def _load_then_sigterm(pid: int, port: int, ctx: Any, answered: set[str]) -> None:
    """Four connections pipelining OPTIONS; SIGTERM once 100 answers are in."""
    loaded = trio.Event()

    async def worker(n: int) -> None:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        tls = trio.SSLStream(tcp, ctx, server_hostname="sip.skype.lab")
        try:
            await tls.do_handshake()
            buffer = b""
            for batch in range(200):
                calls = [f"w{n}b{batch}r{i}" for i in range(5)]
                await tls.send_all(b"".join(_options_bytes(c) for c in calls))
                while not all(c in answered for c in calls):
                    chunk = await tls.receive_some(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    for found in re.finditer(rb"SIP/2\.0 200 OK\r\n.*?\r\n\r\n", buffer, re.S):
                        call = re.search(rb"Call-ID: (\S+)", found[0])
                        if call:
                            answered.add(call[1].decode())
                    if len(answered) >= 100:
                        loaded.set()
                    buffer = (
                        buffer[buffer.rfind(b"\r\n\r\n") + 4 :] if b"\r\n\r\n" in buffer else buffer
                    )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return  # the Edge closed us at shutdown: expected
        finally:
            await trio.aclose_forcefully(tls)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(worker, n)
            await loaded.wait()
            os.kill(pid, signal.SIGTERM)


def _options_bytes(call: str) -> bytes:
    return (
        f"OPTIONS sip:stejanss@skype.lab SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:2000@steven.lab>;tag=abc\r\n"
        f"To: <sip:stejanss@skype.lab>\r\nCall-ID: {call}\r\nCSeq: 1 OPTIONS\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()
