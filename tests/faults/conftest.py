"""One lab with every server and leg fedsim runs, for the fault tests.

``fault_lab`` starts, in the test's nursery and on loopback with free ports:

- a simulated Expressway-E (``serve_peer``) as the outbound partner of
  ``partner.lab`` (its port is written into the SRV record once bound);
- the lab (``serve_lab``): DNS (UDP and TCP), the federation port, the clients
  port and the outbound connector, with short timeouts so that a stalled peer
  costs a test about a second.

Names in the lab DNS: ``steven.lab`` (an accepted inbound partner, certificate
``vcse.steven.lab``), ``partner.lab`` (outbound, to the peer above),
``slow.lab`` and ``slowout.lab`` (their SRV is never answered: the Edge waits
for DNS up to ``DNS_TIMEOUT``). Test modules cannot import this file
(``--import-mode=importlib``): everything comes through the fixture.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.outbound import OutboundLimits
from simulator.edge.state import Limits
from simulator.lab import Lab, load_lab_text, with_overrides
from simulator.net import InternalError
from simulator.peer import serve_peer
from simulator.pki import client_context, issue_pki, server_context

LOOPBACK = ("127.0.0.1", 0)
#: Seconds the Edge waits for a silent DNS name (then 504).
DNS_TIMEOUT = 0.5
#: Seconds a connection may stay silent (or refuse to read) before the server closes it.
IDLE_TIMEOUT = 1.5
#: Upper bound on any one exchange in these tests: a hung server fails the test.
STEP = 10.0

LAB = '''
name = "faults"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]

# The fuzzed requests come fast from steven.lab, a discovered partner: lift its
# 20 messages/s (reference §5.2), which would answer the later ones 503.
[edge.rules]
discovered_rate = 1000000

[dns]
silent = ["_sipfederationtls._tcp.slow.lab", "_sipfederationtls._tcp.slowout.lab"]
records = """
lab.                 300 IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300
_sipfederationtls._tcp.steven.lab.  300 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab.                    300 IN A   127.0.0.1
_sipfederationtls._tcp.partner.lab. 300 IN SRV 0 0 {port} vcse.partner.lab.
vcse.partner.lab.                   300 IN A   127.0.0.1
"""

[certs.public-root]
ca = true
public = true
cn = "fedsim Lab Public Root CA"

[certs."sip.skype.lab"]
issuer = "public-root"
cn = "sip.skype.lab"
san = ["sip.skype.lab"]

[certs."vcse.steven.lab"]
issuer = "public-root"
cn = "vcse.steven.lab"
san = ["vcse.steven.lab"]

[certs."vcse.partner.lab"]
issuer = "public-root"
cn = "vcse.partner.lab"
san = ["vcse.partner.lab"]
'''


@dataclass
class FaultLab:
    """A running lab, its partner, and what each reported."""

    lab: Lab
    addresses: LabAddresses
    logs: Path
    peer: tuple[str, int]
    peer_reports: list[InternalError] = field(default_factory=list)
    partner_requests: list[str] = field(default_factory=list)

    @property
    def federation(self) -> tuple[str, int]:
        return self.addresses.federation

    @property
    def clients(self) -> tuple[str, int]:
        return self.addresses.clients

    @property
    def dns(self) -> tuple[str, int]:
        return self.addresses.dns

    def path(self, name: str) -> Path:
        return self.addresses.issued[name].cert_path

    def client_context(self, name: str | None) -> ssl.SSLContext:
        """A TLS client context presenting ``name``'s certificate (None: no certificate)."""
        issued = self.addresses.issued
        return client_context(
            cert=issued[name].cert_path if name else None,
            key=issued[name].key_path if name else None,
            chain=issued[name].chain_path if name else None,
            trust=[issued["public-root"].cert_path],
        )

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]

    def internal_errors(self) -> list[dict[str, object]]:
        return [e for e in self.events() if e.get("kind") == "internal-error"]


StartLab = Callable[..., Awaitable[FaultLab]]


@pytest.fixture
async def fault_lab(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[StartLab]:
    """``await fault_lab(**limits)``: the lab above, running; limits override the defaults."""

    async def start(**overrides: float) -> FaultLab:
        certs, logs = tmp_path / "certs", tmp_path / "logs"
        probe = load_lab_text(LAB.replace("{port}", "5061"), path=tmp_path / "lab.toml")
        issued = issue_pki(probe.certs, certs, now=dt.datetime.now(dt.UTC))
        partner = issued["vcse.partner.lab"]
        peer_reports: list[InternalError] = []
        partner_requests: list[str] = []
        peer_ctx = server_context(
            cert=partner.cert_path,
            key=partner.key_path,
            chain=partner.chain_path,
            trust=[issued["public-root"].cert_path],
            require_client_cert=True,
        )
        peer = await nursery.start(
            lambda task_status: serve_peer(
                host="127.0.0.1",
                port=0,
                ssl_context=peer_ctx,
                idle_timeout=overrides.get("idle_timeout", IDLE_TIMEOUT),
                handshake_timeout=overrides.get("handshake_timeout", 2.0),
                on_request=lambda request, _remote: partner_requests.append(request.call_id),
                report=peer_reports.append,
                task_status=task_status,
            )
        )
        lab = load_lab_text(LAB.replace("{port}", str(peer[1])), path=tmp_path / "lab.toml")
        lab = with_overrides(lab, listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK)
        limits = {
            "dns_timeout": DNS_TIMEOUT,
            "dns_attempts": 1,
            "handshake_timeout": 2.0,
            "idle_timeout": IDLE_TIMEOUT,
            **overrides,
        }
        addresses = await nursery.start(
            lambda task_status: serve_lab(
                lab,
                log_dir=logs,
                certs_dir=certs,
                limits=Limits(**limits),  # type: ignore[arg-type]
                outbound=OutboundLimits(
                    connect_timeout=2.0,
                    handshake_timeout=2.0,
                    transaction_timeout=overrides.get("transaction_timeout", 3.0),
                    idle_timeout=overrides.get("idle_timeout", IDLE_TIMEOUT),
                ),
                task_status=task_status,
            )
        )
        return FaultLab(
            lab=lab,
            addresses=addresses,
            logs=logs,
            peer=peer,
            peer_reports=peer_reports,
            partner_requests=partner_requests,
        )

    return start
