"""Interop: a real SIPp UAS as the federated partner, behind stunnel in server mode.

The Skype client's INVITE goes through fedsim's outbound connector, which opens
mutual TLS to stunnel (stunnel verifies the Edge's certificate against the lab's
CA, ``verifyChain = yes``) and stunnel hands plain TCP to SIPp (Debian's SIPp has
no TLS, shared/interop/README.md §0). SIPp answers 200 with the Record-Route it
received, then the client's ACK and BYE arrive through the Edge.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

HERE = Path(__file__).resolve().parent


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:``port`` (kernel state, no connection made)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":  # 0A = TCP_LISTEN
            return True
    return False


async def wait_listening(port: int, proc: trio.Process, what: str) -> None:
    # SIPp prints nothing when it is ready: watch the kernel's socket table instead.
    with trio.fail_after(15):
        while not listening(port):
            if proc.returncode is not None:
                pytest.fail(f"{what} exited with {proc.returncode} before listening on {port}")
            await trio.sleep(0.02)


async def read_until(stream: trio.abc.ReceiveStream, pattern: str, what: str) -> str:
    text = ""
    with trio.move_on_after(15):
        while not re.search(pattern, text):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            text += chunk.decode("utf-8", "replace")
        else:
            return text
    pytest.fail(f"{what} did not print /{pattern}/:\n{text[-3000:]}")


async def stop(proc: trio.Process) -> None:
    """Kill by PID (the process we started) and reap it."""
    if proc.returncode is None:
        proc.kill()
    with trio.move_on_after(5) as scope:
        scope.shield = True
        await proc.wait()


@pytest.mark.interop
async def test_sipp_partner_behind_stunnel_answers_a_forwarded_invite(
    outbound_lab: Any, tmp_path: Path
) -> None:
    sipp, stunnel = require_tool("sipp"), require_tool("stunnel")
    sipp_port, tls_port = free_port(), free_port()
    lab = await outbound_lab(
        records=f"""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {tls_port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_port=tls_port,
    )
    issued = lab.addresses.issued
    config = tmp_path / "stunnel-server.conf"
    config.write_text(
        "foreground = yes\n"
        "pid =\n"
        "debug = 6\n"  # level 6 prints "bound to", our readiness line
        "[partner-tls]\n"
        f"accept = 127.0.0.1:{tls_port}\n"
        f"connect = 127.0.0.1:{sipp_port}\n"
        f"cert = {issued['vcse.steven.lab'].cert_path}\n"
        f"key = {issued['vcse.steven.lab'].key_path}\n"
        f"CAfile = {issued['public-root'].cert_path}\n"
        "verifyChain = yes\n"
        "requireCert = yes\n"
        "sslVersionMin = TLSv1.2\n",
        encoding="utf-8",
    )
    sipp_log = tmp_path / "sipp.out"
    procs: list[trio.Process] = []
    try:
        with sipp_log.open("wb") as out:
            uas = await trio.lowlevel.open_process(
                [
                    sipp,
                    "-sf",
                    str(HERE / "uas.xml"),
                    "-t",
                    "t1",
                    "-i",
                    "127.0.0.1",
                    "-p",
                    str(sipp_port),
                    "-m",
                    "1",
                    "-nostdin",
                    "-timeout",
                    "30s",
                    "-trace_logs",
                    "-log_file",
                    str(tmp_path / "sipp_logs.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        procs.append(uas)
        await wait_listening(sipp_port, uas, "sipp")
        tunnel = await trio.lowlevel.open_process(
            [stunnel, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(tunnel)
        assert tunnel.stdout is not None
        await read_until(tunnel.stdout, rf"bound to 127\.0\.0\.1:{tls_port}\b", "stunnel")

        result = await lab.call("sip:2000@steven.lab")

        assert result.error is None, result.error
        assert [r.status for r in result.responses] == [100, 180, 200]
        final = result.final
        # SIPp echoed the Edge's Record-Route; the Edge relayed it and removed its own Via.
        assert final.headers.get_all("Record-Route") == [
            "<sip:sip.skype.lab:5061;transport=tls;lr>"
        ]
        assert len(final.vias) == 1
        assert final.vias[0].branch == result.request.vias[0].branch
        assert result.ack is not None
        assert result.ack.headers.get("Route") == "<sip:sip.skype.lab:5061;transport=tls;lr>"
        assert [r.status for r in result.bye_responses] == [200]
        with trio.fail_after(30):
            code = await uas.wait()
        assert code == 0, sipp_log.read_text(errors="replace")[-3000:]
        logged = (tmp_path / "sipp_logs.log").read_text(errors="replace")
        call_id = result.request.call_id
        assert f"{call_id} INVITE from the Edge, Record-Route sip.skype.lab:5061;" in logged
        rules = [(e["rule"], e["method"]) for e in lab.events()]
        assert rules == [("forwarded", "INVITE"), ("in-dialog", "ACK"), ("forwarded", "BYE")]
    finally:
        for proc in reversed(procs):
            await stop(proc)
