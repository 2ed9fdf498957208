"""``fedsim client`` as a user runs it: a subprocess against a running lab."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest
import trio

SRV_1009 = """
_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 0 0 5061 vcse.sub.cms.steven.lab.
vcse.sub.cms.steven.lab.               300 IN A   127.0.0.1
"""


async def fedsim(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(60):
        return await trio.run_process(
            [sys.executable, "-m", "simulator", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


def edge_args(lab: Any) -> list[str]:
    host, port = lab.addresses.clients
    ca = lab.addresses.issued["public-root"].cert_path
    return ["--edge", f"{host}:{port}", "--ca", str(ca), "--server-name", "sip.skype.lab"]


async def test_client_prints_the_504_and_decodes_1009(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_1009)
    done = await fedsim(
        "client",
        *edge_args(lab),
        "--to",
        "sip:stejanss.space@cms.steven.lab",
        "--expect-status",
        "504",
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "> INVITE sip:stejanss.space@cms.steven.lab SIP/2.0" in out
    assert "< SIP/2.0 100 Trying" in out
    assert "< SIP/2.0 504 Server time-out" in out
    assert "ms-diagnostics 1009: No match for domain in DNS SRV results" in out
    assert "  fqdn1 = vcse.sub.cms.steven.lab:5061" in out
    assert "  source = sip.skype.lab (the server that generated it)" in out
    assert "  meaning: " in out
    assert "  fix: " in out
    assert "> ACK sip:stejanss.space@cms.steven.lab SIP/2.0" in out


async def test_client_exit_1_when_the_status_is_not_the_expected_one(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_1009)
    done = await fedsim(
        "client", *edge_args(lab), "--to", "sip:space@cms.steven.lab", "--expect-status", "200"
    )
    assert done.returncode == 1
    assert "fedsim: expected 200, got 504" in done.stdout.decode()


async def test_client_ca_that_is_not_pem_is_bad_input() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = await fedsim(
        "client", "--edge", f"127.0.0.1:{port}", "--ca", __file__, "--to", "sip:a@b.lab"
    )
    assert done.returncode == 2, done.stderr.decode()


async def test_client_exit_1_when_nothing_listens(outbound_lab: Any) -> None:
    lab = await outbound_lab(records="")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ca = lab.addresses.issued["public-root"].cert_path
    done = await fedsim(
        "client", "--edge", f"127.0.0.1:{port}", "--ca", str(ca), "--to", "sip:a@b.lab"
    )
    assert done.returncode == 1
    assert "no final response: connection refused" in done.stdout.decode()


@pytest.mark.parametrize(
    "args",
    [
        ["--to", "not a uri"],
        ["--to", "sip:a@b.lab", "--method", "BYE"],
        ["--to", "sip:a@b.lab", "--edge", "nowhere"],
        ["--to", "sip:a@b.lab", "--timeout", "0"],
        ["--to", "sip:a@b.lab", "--expect-status", "99"],
        [],
    ],
)
async def test_client_bad_input_exits_2(args: list[str]) -> None:
    done = await fedsim("client", *args)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("fedsim: ") or "usage:" in err
    assert "Traceback" not in err


async def test_client_says_what_the_user_reads_for_a_1002(outbound_lab: Any) -> None:
    """Field cases §2d: without a lab, the client cannot know which client it stands for."""
    lab = await outbound_lab(records="", edge="users = { carol = { federation = false } }")
    done = await fedsim(
        "client",
        *edge_args(lab),
        "--from",
        "sip:carol@skype.lab",
        "--to",
        "sip:joe@contoso-federated.lab",
        "--expect-status",
        "403",
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "ms-diagnostics 1002: From URI not authorized to communicate with federated" in out
    assert (
        "a Skype for Business user reads: This message was not delivered to "
        "joe@contoso-federated.lab because the address is outside your organization and is not "
        "federated with your company, or the address is incorrect. Please contact your support "
        "team with this information." in out
    )
    assert (
        "a Teams user reads: We can't set up the conversation because your organizations are "
        "not set up to talk to each other." in out
    )
