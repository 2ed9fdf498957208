"""A running outbound lab for the tests: the Edge (serve_lab), a partner (serve_peer), a client.

The lab text is written after the partner has bound its port, so the SRV
records point at the port the partner really listens on. Tests get
:func:`start` through the ``outbound_lab`` fixture (importlib mode: test
modules cannot import this file).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.outbound import OutboundLimits
from simulator.edge.state import Limits
from simulator.lab import Lab, load_lab_text, with_overrides
from simulator.peer import serve_peer
from simulator.peer.skype import SkypeCallResult, skype_call
from simulator.pki import client_context, issue_pki, server_context
from simulator.sip import Request, Response, parse_message, serialize

LOOPBACK = ("127.0.0.1", 0)

CERTS = """
[certs.public-root]
ca = true
public = true
cn = "fedsim Lab Public Root CA"

[certs.private-root]
ca = true
cn = "fedsim Lab Private Root CA"

[certs."sip.skype.lab"]
issuer = "public-root"
cn = "sip.skype.lab"
san = ["sip.skype.lab"]

[certs."vcse.steven.lab"]
issuer = "public-root"
cn = "vcse.steven.lab"
san = ["vcse.steven.lab"]

[certs."vcse.cms.steven.lab"]
issuer = "public-root"
cn = "vcse.cms.steven.lab"
san = ["vcse.cms.steven.lab"]

[certs."untrusted.vcse.cms"]
issuer = "private-root"
cn = "vcse.cms.steven.lab"
san = ["vcse.cms.steven.lab"]

[certs."expired.vcse.cms"]
issuer = "public-root"
cn = "vcse.cms.steven.lab"
san = ["vcse.cms.steven.lab"]
validity = "expired"
"""

ZONE_HEAD = """
steven.lab.  300 IN SOA ns.steven.lab. hostmaster.steven.lab. 1 3600 600 86400 300
steven.lab.  300 IN NS  ns.steven.lab.
ns.steven.lab. 300 IN A 127.0.0.1
"""


def lab_text(*, records: str, edge: str = "", dns: str = "") -> str:
    return f'''
name = "outbound-test"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]
machine = "sfvedge"
{edge}

[dns]
{dns}
records = """
{ZONE_HEAD}
{records}
"""
{CERTS}
'''


@dataclass
class PartnerLog:
    """What the partner received, with an event that fires on each arrival."""

    requests: list[tuple[Request, tuple[str, int]]] = field(default_factory=list)
    arrival: trio.Event = field(default_factory=trio.Event)

    def add(self, request: Request, remote: tuple[str, int]) -> None:
        self.requests.append((request, remote))
        self.arrival.set()
        self.arrival = trio.Event()


@dataclass
class Running:
    lab: Lab
    addresses: LabAddresses
    logs: Path
    partner: tuple[str, int] | None
    partner_log: PartnerLog

    @property
    def partner_requests(self) -> list[tuple[Request, tuple[str, int]]]:
        return self.partner_log.requests

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def edge_log(self) -> str:
        path = self.logs / "edge.log"
        return path.read_text() if path.exists() else ""

    def trace_log(self) -> str:
        path = self.logs / "trace.log"
        return path.read_text() if path.exists() else ""

    def partner_methods(self) -> list[str]:
        return [r.method for r, _ in self.partner_requests]

    async def wait_partner(self, count: int) -> list[str]:
        """Wait (bounded) until the partner has received ``count`` requests; their methods."""
        with trio.fail_after(10):
            while len(self.partner_requests) < count:
                await self.partner_log.arrival.wait()
        return self.partner_methods()

    async def call(
        self,
        to_uri: str,
        *,
        method: str = "INVITE",
        from_uri: str = "sip:stejanss@skype.lab",
        hang_up: bool = True,
    ) -> SkypeCallResult:
        root = self.addresses.issued["public-root"].cert_path
        ctx = client_context(trust=[root], check_hostname=True)
        return await skype_call(
            edge=self.addresses.clients,
            ssl_context=ctx,
            server_hostname="sip.skype.lab",
            from_uri=from_uri,
            to_uri=to_uri,
            method=method,
            display_name="Steven Janssens",
            hang_up=hang_up,
            timeout=15,
            rng=random.Random(),
        )


async def start(
    nursery: trio.Nursery,
    tmp_path: Path,
    *,
    records: str,
    edge: str = "",
    dns: str = "",
    partner_cert: str | None = None,
    partner_trust: str = "public-root",
    answer: int = 200,
    partner_port: int | None = None,
    proxy_to_partner: bool = False,
    connect_timeout: float = 2.0,
    ring_seconds: float = 0.0,
    trace: bool = False,
) -> Running:
    """Start the partner (if any), then the lab; ``{port}`` in ``records`` is the partner's.

    ``trace`` also writes the Edge's SIPStack trace (``trace.log``, :meth:`Running.trace_log`).
    """
    certs, logs = tmp_path / "certs", tmp_path / "logs"
    probe = load_lab_text(
        lab_text(records=records.replace("{port}", "5061"), edge=edge, dns=dns),
        path=tmp_path / "lab.toml",
    )
    issued = issue_pki(probe.certs, certs, now=dt.datetime.now(dt.UTC))
    partner_log = PartnerLog()
    bound: tuple[str, int] | None = None
    if partner_cert is not None:
        item = issued[partner_cert]
        ctx = server_context(
            cert=item.cert_path,
            key=item.key_path,
            chain=item.chain_path,
            trust=[issued[partner_trust].cert_path],
            require_client_cert=True,
        )
        bound = await nursery.start(
            lambda task_status: serve_peer(
                host="127.0.0.1",
                port=0,
                ssl_context=ctx,
                answer=answer,
                ring_seconds=ring_seconds,
                on_request=partner_log.add,
                task_status=task_status,
            )
        )
    port = partner_port if partner_port is not None else (bound[1] if bound else 5061)
    outbound = OutboundLimits(
        connect_timeout=connect_timeout,
        handshake_timeout=5,
        transaction_timeout=10,
        proxy_port=port if proxy_to_partner else 5061,
    )
    text = lab_text(records=records.replace("{port}", str(port)), edge=edge, dns=dns)
    lab = load_lab_text(text, path=tmp_path / "lab.toml")
    lab = with_overrides(lab, listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK)
    addresses = await nursery.start(
        lambda task_status: serve_lab(
            lab,
            log_dir=logs,
            certs_dir=certs,
            limits=Limits(dns_timeout=0.3, dns_attempts=1),
            outbound=outbound,
            trace=trace,
            task_status=task_status,
        )
    )
    return Running(lab=lab, addresses=addresses, logs=logs, partner=bound, partner_log=partner_log)


def wire(message: Request | Response) -> str:
    return serialize(message).decode()


def reparse(message: Response) -> Response:
    parsed = parse_message(serialize(message))
    assert isinstance(parsed, Response)
    return parsed


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
def outbound_lab(nursery: trio.Nursery, tmp_path: Path) -> Start:
    """``await outbound_lab(records=..., partner_cert=..., ...)``: see :func:`start`."""

    async def go(**kwargs: Any) -> Running:
        return await start(nursery, tmp_path, **kwargs)

    return go
