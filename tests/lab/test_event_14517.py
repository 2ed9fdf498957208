"""Field cases C7: an FQDN both an allowed partner server and a hosting provider: no lab starts.

Lync 2013 CU3's Access Edge refuses to start and logs event 14517; ``fedsim serve``
and ``fedsim run`` refuse the lab the same way: one ``file:line`` error, the
event's two sentences, exit status 2, nothing listening.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LAB = """\
name = "c7-both"
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["root"]
listen = "127.0.0.1:0"
clients = "127.0.0.1:0"
[[edge.allowed]]
domain = "push.lync.com"
proxy_fqdn = "sipfed.online.lync.com"
[[edge.hosting_providers]]
name = "LyncOnline"
proxy_fqdn = "sipfed.online.lync.com"
[dns]
listen = "127.0.0.1:0"
[certs.root]
ca = true
[[calls]]
direction = "outbound"
from = "sip:stejanss@skype.lab"
to = "sip:device@push.lync.com"
expect = { status = 200 }
"""

SENTENCES = (
    "  Event 14517: The server configuration validation mechanism detected some serious "
    "problems.\n"
    "  The server at FQDN [sipfed.online.lync.com] is configured as both type 'allowed partner "
    "server' and type 'IM service provider' .\n"
)


@pytest.mark.parametrize("command", ["serve", "run"])
def test_the_lab_does_not_start_and_says_event_14517(command: str, tmp_path: Path) -> None:
    lab = tmp_path / "c7.toml"
    lab.write_text(LAB, encoding="utf-8")
    argv = [sys.executable, "-m", "simulator", command, str(lab)]
    if command == "serve":
        argv += ["--log-dir", str(tmp_path / "logs"), "--certs-dir", str(tmp_path / "certs")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    first, rest = done.stderr.split("\n", 1)
    assert first.startswith(f"fedsim: error: {lab}:14: [[edge.hosting_providers]] #1 key ")
    assert "sipfed.online.lync.com is also the proxy_fqdn of the allowed partner" in first
    assert "does not start" in first
    assert rest == SENTENCES
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "certs").exists()  # it stopped before issuing anything
