"""``fedsim call`` and ``fedsim peer`` end to end, in-process and as a real process."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import pytest
import trio

from simulator.cli import main
from simulator.lab import load_lab
from simulator.peer.conn import SipConnection
from simulator.peer.labpeer import issue_lab_pki
from simulator.peer.uac import place_call
from simulator.peer.uas import serve_peer
from simulator.pki.contexts import client_context, server_context
from simulator.sip import Request, build_response

REPO = Path(__file__).resolve().parents[2]

MS_DIAG_1009 = (
    '1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";'
    'fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
)

LAB = """\
name = "peer-commands"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
listen = "127.0.0.1:5061"
cert = "sip.skype.lab"
trust = ["public-root"]

[certs.public-root]
ca = true
public = true

[certs."sip.skype.lab"]
issuer = "public-root"
cn = "sip.skype.lab"

[certs."vcse.steven.lab"]
issuer = "public-root"
cn = "vcse.steven.lab"

[peers.expe]
cert = "vcse.steven.lab"
trust = ["public-root"]
answer = 486

[[calls]]
direction = "inbound"
via = "expe"
from = "sip:2000@steven.lab"
to = "sip:stejanss@skype.lab"
expect = { status = 486 }
"""


async def run_cli(argv: Sequence[str]) -> int:
    """Run ``fedsim`` in a worker thread, so this test's event loop keeps serving."""
    return await trio.to_thread.run_sync(main, list(argv))


StartPeer = Callable[..., Awaitable[tuple[str, int]]]


@pytest.fixture
def start_peer(nursery: trio.Nursery) -> StartPeer:
    async def start(ctx: ssl.SSLContext, **options: object) -> tuple[str, int]:
        addr: tuple[str, int] = await nursery.start(
            partial(serve_peer, host="127.0.0.1", port=0, ssl_context=ctx, **options)  # type: ignore[arg-type]
        )
        return addr

    return start


def call_args(pki: object, port: int, *extra: str, cert: str = "expe") -> list[str]:
    return [
        "call",
        "--edge",
        f"127.0.0.1:{port}",
        "--cert",
        str(getattr(pki, f"{cert}_cert")),
        "--key",
        str(getattr(pki, f"{cert}_key")),
        "--ca",
        str(pki.ca),  # type: ignore[attr-defined]
        "--server-name",
        "sip.skype.lab",
        "--from",
        "sip:2000@acano.steven.lab",
        "--to",
        "sip:stejanss@skype.lab",
        *extra,
    ]


async def test_call_prints_each_status_and_the_final_message(
    start_peer: StartPeer,
    edge_server_ctx: ssl.SSLContext,
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, port = await start_peer(edge_server_ctx)
    assert await run_cli(call_args(pki_files, port)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "> INVITE sip:stejanss@skype.lab SIP/2.0"
    assert "< SIP/2.0 100 Trying" in lines
    assert "< SIP/2.0 200 OK" in lines
    assert "< Content-Type: application/sdp" in lines  # the final response in full
    assert any(line.startswith("> ACK sip:stejanss@127.0.0.1:") for line in lines)
    assert any(line.startswith("> BYE ") for line in lines)
    assert lines[-1] == "call completed: 200, ACK, BYE, 200"


async def test_show_messages_prints_the_request_in_full(
    start_peer: StartPeer,
    edge_server_ctx: ssl.SSLContext,
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, port = await start_peer(edge_server_ctx)
    argv = call_args(pki_files, port, "--method", "OPTIONS", "--show-messages")
    assert await run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "> User-Agent: TANDBERG/4352 (X14.0.2)" in out
    assert "< SIP/2.0 200 OK" in out


@pytest.mark.parametrize(("expect", "status"), [("486", 0), ("200", 1)])
async def test_expect_status_decides_the_exit_status(
    start_peer: StartPeer,
    edge_server_ctx: ssl.SSLContext,
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
    expect: str,
    status: int,
) -> None:
    _, port = await start_peer(edge_server_ctx, answer=486)
    assert await run_cli(call_args(pki_files, port, "--expect-status", expect)) == status
    out = capsys.readouterr().out
    assert "< SIP/2.0 486 Busy Here" in out
    if status:
        assert out.splitlines()[-1] == "fedsim: expected 200, got 486"


async def test_refused_certificate_exits_1_with_the_reason_on_one_line(
    start_peer: StartPeer,
    edge_server_ctx: ssl.SSLContext,
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, port = await start_peer(edge_server_ctx)
    assert await run_cli(call_args(pki_files, port, cert="rogue")) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "> INVITE sip:stejanss@skype.lab SIP/2.0",
        "no response: TLS alert: unknown ca (the Edge refused our certificate)",
    ]


async def test_ms_diagnostics_of_the_final_response_are_decoded(
    nursery: trio.Nursery,
    edge_server_ctx: ssl.SSLContext,
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def edge_504(stream: trio.SSLStream[trio.SocketStream]) -> None:
        conn = SipConnection(stream)
        invite = await conn.receive()
        assert isinstance(invite, Request)
        headers = (("ms-diagnostics", MS_DIAG_1009), ("Server", "RTC/6.0"))
        await conn.send(build_response(invite, 504, to_tag="98283FD4A66E24FF", headers=headers))
        ack = await conn.receive()
        assert isinstance(ack, Request)
        assert ack.method == "ACK"

    listeners = await nursery.start(
        partial(trio.serve_ssl_over_tcp, edge_504, 0, edge_server_ctx, host="127.0.0.1")
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    assert await run_cli(call_args(pki_files, port)) == 0
    out = capsys.readouterr().out
    assert "< SIP/2.0 504 Server time-out" in out
    assert "ms-diagnostics 1009: No match for domain in DNS SRV results" in out
    assert "  domain = cms.steven.lab" in out
    assert "  fqdn1 = vcse.sub.cms.steven.lab:5061" in out
    assert "  meaning: The SRV record of the called domain exists" in out
    assert "  fix: Point _sipfederationtls._tcp.<domain>" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--edge": "nowhere"}, "--edge 'nowhere': missing ':port'"),
        ({"--edge": "127.0.0.1:0"}, "port 0 cannot be called"),
        ({"--cert": "/nonexistent/expe.crt"}, "/nonexistent/expe.crt: certificate file not found"),
        ({"--from": "2000@acano.steven.lab"}, "from URI '2000@acano.steven.lab' is not a SIP URI"),
        ({"--timeout": "0"}, "--timeout 0.0: must be a positive number"),
        ({"--expect-status": "42"}, "--expect-status 42: a SIP status is 100-699"),
        ({"--to": None}, "missing --to"),
        ({"--via": "expe"}, "give either a lab (LAB.toml and/or --via NAME), or --cert"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    pki_files: object,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str | None],
    message: str,
) -> None:
    argv = call_args(pki_files, 5061)
    for flag, value in change.items():
        if flag in argv:
            at = argv.index(flag)
            del argv[at : at + 2]
        if value is not None:
            argv += [flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("fedsim: error: ")
    assert message in err


def write_lab(tmp_path: Path) -> Path:
    lab = tmp_path / "lab.toml"
    lab.write_text(LAB, encoding="utf-8")
    return lab


async def test_call_with_a_lab_takes_the_peer_certificate_and_the_lab_call(
    start_peer: StartPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab_path = write_lab(tmp_path)
    certs = tmp_path / "certs"
    issued = issue_lab_pki(load_lab(lab_path), certs)
    edge = issued["sip.skype.lab"]
    # The far end plays the Edge with the lab's Edge certificate and trust.
    ctx = server_context(cert=edge.cert_path, key=edge.key_path, trust=[edge.root_path])
    _, port = await start_peer(ctx)
    argv = ["call", str(lab_path), "--via", "expe", "--edge", f"127.0.0.1:{port}"]
    assert await run_cli([*argv, "--certs-dir", str(certs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "> INVITE sip:stejanss@skype.lab SIP/2.0"
    assert "< SIP/2.0 200 OK" in out


def test_call_with_an_unknown_peer_lists_the_lab_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab_path = write_lab(tmp_path)
    argv = ["call", str(lab_path), "--via", "cucm", "--certs-dir", str(tmp_path / "certs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"fedsim: error: {lab_path}: no [peers.cucm] (peers defined: expe)\n"


async def test_fedsim_peer_answers_calls_and_stops_on_sigint(tmp_path: Path) -> None:
    lab_path = write_lab(tmp_path)
    certs = tmp_path / "certs"
    issued = issue_lab_pki(load_lab(lab_path), certs)
    command = [sys.executable, "-m", "simulator", "peer", str(lab_path), "expe"]
    command += ["--listen", "127.0.0.1:0", "--certs-dir", str(certs), "--presence", "busy"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path
    )
    try:
        assert process.stdout is not None
        buffer = b""

        async def read_line() -> str:
            nonlocal buffer
            with trio.fail_after(30):
                while b"\n" not in buffer:
                    chunk = await process.stdout.receive_some(4096)  # type: ignore[union-attr]
                    assert chunk, "fedsim peer exited early"
                    buffer += chunk
            line, _, buffer = buffer.partition(b"\n")
            return line.decode()

        banner = await read_line()
        assert banner.startswith("fedsim: peer 'expe' listening on 127.0.0.1:")
        assert "presence busy" in banner
        port = int(banner.split("127.0.0.1:", 1)[1].split()[0])
        edge = issued["sip.skype.lab"]
        ctx = client_context(cert=edge.cert_path, key=edge.key_path, trust=[edge.root_path])
        result = await place_call(
            edge=("127.0.0.1", port),
            ssl_context=ctx,
            server_hostname="vcse.steven.lab",
            from_uri="sip:stejanss@skype.lab",
            to_uri="sip:stejanss.space@steven.lab",
        )
        assert result.final is not None
        assert result.final.status == 486  # the lab's answer
        invite_line = await read_line()
        assert " INVITE sip:stejanss.space@steven.lab from sip:stejanss@skype.lab " in invite_line
        assert (await read_line()).split()[1] == "ACK"
        # Presence, as IM and Presence behind the Expressway answers: 200, PIDF NOTIFYs.
        subscribed = await place_call(
            edge=("127.0.0.1", port),
            ssl_context=ctx,
            server_hostname="vcse.steven.lab",
            from_uri="sip:stejanss@skype.lab",
            to_uri="sip:stejanss.space@steven.lab",
            method="SUBSCRIBE",
        )
        assert subscribed.final is not None
        assert subscribed.final.status == 200
        states = [n.headers.get("Subscription-State") for n in subscribed.notifies]
        assert states == ["active;expires=3600", "terminated;reason=timeout"]
        assert all(b"<note>Busy</note>" in n.body for n in subscribed.notifies)
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                await stream.aclose()
