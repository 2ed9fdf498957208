"""Real peers against ``fedsim serve`` on IPv6 (``::1``): Expressway-Es run dual-stack.

One ``fedsim serve`` of the seed lab listens on ``[::1]`` for the federation
port, the clients port and the lab DNS. ``dig`` asks the DNS over UDP and TCP,
``openssl s_client`` and ``fedsim call`` place inbound requests, SIPp (through
stunnel, which connects to ``[::1]``) places a call, ``fedsim client`` calls
out. Every accepted request is answered, and its event says what went on the
wire (issue 12: every inbound INVITE over IPv6 used to be an internal error).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Child, Procs

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]


def free_v6_port() -> int:
    """A port free on ::1 for TCP and UDP now (found by binding 0)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
            tcp.bind(("::1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("::1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free ::1 port in 50 tries")


@dataclass
class V6Lab:
    child: Child
    fed: int
    clients: int
    dns: int
    logs: Path
    certs: Path

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        lines = path.read_text("utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line]

    def fedsim(self, *args: str | Path) -> list[str | Path]:
        return [sys.executable, "-m", "simulator", *args]


@pytest.fixture
def v6lab(procs: Procs, tmp_path: Path) -> Iterator[V6Lab]:
    fed, clients, dns = free_v6_port(), free_v6_port(), free_v6_port()
    logs, certs = tmp_path / "logs", tmp_path / "certs"
    child = procs.start(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            "--listen",
            f"[::1]:{fed}",
            "--clients",
            f"[::1]:{clients}",
            "--dns-listen",
            f"[::1]:{dns}",
            "--log-dir",
            logs,
            "--certs-dir",
            certs,
        ],
        cwd=REPO,
    )
    child.out.what = "fedsim serve (IPv6)"
    child.out.wait_for(r"^decisions \(")
    assert f"federation  [::1]:{fed}" in child.out.text
    yield V6Lab(child=child, fed=fed, clients=clients, dns=dns, logs=logs, certs=certs)
    assert "Traceback" not in child.out.text


def no_internal_errors(lab: V6Lab) -> None:
    assert [e for e in lab.events() if e.get("kind") == "internal-error"] == []
    assert lab.child.proc.poll() is None, "fedsim serve died"


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_asks_the_lab_dns_over_ipv6(
    v6lab: V6Lab, procs: Procs, tool: Callable[[str], str], transport: str
) -> None:
    code, out = procs.run(
        [
            tool("dig"),
            "@::1",
            "-p",
            str(v6lab.dns),
            "+time=3",
            "+tries=1",
            transport,
            "+short",
            "_sipfederationtls._tcp.acano.steven.lab",
            "SRV",
        ],
        timeout=15,
    )
    assert code == 0, out
    assert "vcse.steven.lab." in out


def test_openssl_options_over_ipv6_gets_200_with_received_v6(
    v6lab: V6Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    certs = v6lab.certs
    child = procs.start(
        [
            tool("openssl"),
            "s_client",
            "-connect",
            f"[::1]:{v6lab.fed}",
            "-CAfile",
            certs / "public-root.crt",
            "-cert",
            certs / "vcse.steven.lab.crt",
            "-key",
            certs / "vcse.steven.lab.key",
            "-quiet",
            "-no_ign_eof",
        ],
        stdin=subprocess.PIPE,
    )
    assert child.proc.stdin is not None
    child.proc.stdin.write(
        b"OPTIONS sip:stejanss@skype.lab SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS [::1]:40000;branch=z9hG4bKv6opt\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:probe@steven.lab>;tag=1\r\n"
        b"To: <sip:stejanss@skype.lab>\r\n"
        b"Call-ID: v6-openssl\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    child.proc.stdin.flush()
    child.out.wait_for(r"SIP/2\.0 200 OK")
    child.out.wait_for(r"received=::1;ms-received-port=\d+;ms-received-cid=")
    child.proc.stdin.close()
    child.finish(timeout=10)
    [event] = [e for e in v6lab.events() if e.get("call_id") == "v6-openssl"]
    assert event["status"] == 200
    no_internal_errors(v6lab)


def test_fedsim_call_invite_over_ipv6_is_answered_and_logged_as_sent(
    v6lab: V6Lab, procs: Procs
) -> None:
    certs = v6lab.certs
    code, out = procs.run(
        v6lab.fedsim(
            "call",
            "--edge",
            f"[::1]:{v6lab.fed}",
            "--cert",
            certs / "vcse.steven.lab.crt",
            "--key",
            certs / "vcse.steven.lab.key",
            "--ca",
            certs / "public-root.crt",
            "--server-name",
            "sip.skype.lab",
            "--from",
            "sip:2000@steven.lab",
            "--to",
            "sip:stejanss@skype.lab",
            "--expect-status",
            "200",
        ),
        cwd=REPO,
        timeout=30,
    )
    assert code == 0, out
    invites = [e for e in v6lab.events() if e.get("method") == "INVITE"]
    assert [e["status"] for e in invites] == [200]
    no_internal_errors(v6lab)


def test_sipp_through_stunnel_to_the_ipv6_edge(
    v6lab: V6Lab, procs: Procs, tool: Callable[[str], str], tmp_path: Path
) -> None:
    certs = v6lab.certs
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        accept = int(probe.getsockname()[1])
    config = tmp_path / "stunnel-v6.conf"
    config.write_text(
        "\n".join(
            [
                "debug = 6",
                "foreground = yes",
                "pid =",
                "[sip-tls]",
                "client = yes",
                f"accept = 127.0.0.1:{accept}",
                f"connect = ::1:{v6lab.fed}",
                f"cert = {certs / 'vcse.steven.lab.crt'}",
                f"key = {certs / 'vcse.steven.lab.key'}",
                f"CAfile = {certs / 'public-root.crt'}",
                "verifyChain = yes",
                "checkHost = sip.skype.lab",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    tunnel = procs.start([tool("stunnel"), config])
    tunnel.out.wait_for(rf"bound to 127\.0\.0\.1:{accept}\b")
    log = tmp_path / "sipp.log"
    code, out = procs.run(
        [
            tool("sipp"),
            "-sf",
            v6lab.logs / "sipp_uac_invite.xml",
            "-t",
            "t1",
            f"127.0.0.1:{accept}",
            "-s",
            "stejanss",
            "-key",
            "from_domain",
            "steven.lab",
            "-key",
            "to_domain",
            "skype.lab",
            "-m",
            "1",
            "-timeout",
            "10s",
            "-nostdin",
            "-trace_logs",
            "-log_file",
            log,
        ],
        cwd=tmp_path,
        timeout=20,
    )
    assert code == 0, out
    finals = [line for line in log.read_text("utf-8").splitlines() if " final " in line]
    assert len(finals) == 1, finals
    assert finals[0].endswith(" final 200"), finals
    no_internal_errors(v6lab)


@pytest.mark.parametrize(
    ("to", "status"),
    [("sip:bob@skype.lab", 200), ("sip:stejanss.space@cms.steven.lab", 504)],
    ids=["local-user", "seed-1009"],
)
def test_fedsim_client_on_the_ipv6_clients_port(
    v6lab: V6Lab, procs: Procs, to: str, status: int
) -> None:
    code, out = procs.run(
        v6lab.fedsim(
            "client",
            "--edge",
            f"[::1]:{v6lab.clients}",
            "--ca",
            v6lab.certs / "public-root.crt",
            "--server-name",
            "sip.skype.lab",
            "--to",
            to,
            "--expect-status",
            str(status),
        ),
        cwd=REPO,
        timeout=30,
    )
    assert code == 0, out
    if status == 504:
        assert "1009" in out
    no_internal_errors(v6lab)
