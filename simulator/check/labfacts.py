"""Gather a lab's facts for ``fedsim check --lab``: its DNS through the Edge's resolver, its PKI.

The lab's own DNS server (the code ``fedsim serve`` runs) is started on a free
loopback port for the time of the check, and every name a call needs is asked
through :class:`simulator.dns.Resolver` with the Edge's limits, so a timeout, a
SERVFAIL or an RFC 2782 order is exactly what the running Edge would see.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import trio
from cryptography import x509

from simulator.check.lab import LabFacts, Trust
from simulator.dns import Resolver, SrvAnswer, serve_dns
from simulator.edge.app import lab_zones
from simulator.lab import Lab
from simulator.lab.files import tls_files
from simulator.lab.settings import edge_settings
from simulator.pki import IssuedCert, load_pem_certificates
from simulator.policy import SrvLookup, SrvTarget, srv_name
from simulator.sip import SipUri, parse_uri

#: The Edge's DNS limits in ``fedsim run`` (one attempt of 0.5 s): the same answers, fast.
DNS_TIMEOUT = 0.5
DNS_ATTEMPTS = 1


def _certs(paths: tuple[Path, ...] | list[Path]) -> tuple[x509.Certificate, ...]:
    out: list[x509.Certificate] = []
    for path in paths:
        out.extend(load_pem_certificates(path.read_bytes(), source=str(path)))
    return tuple(out)


def lab_trust(lab: Lab, issued: dict[str, IssuedCert]) -> Trust:
    """The Edge's trust store, the peers' certificates and whom each peer trusts."""
    material = tls_files(lab.edge.cert, lab.edge.trust, issued)
    public = [i.cert_path for i in issued.values() if i.is_ca and i.public]
    cas = [i.cert_path for i in issued.values() if i.is_ca]
    leaves: dict[str, x509.Certificate] = {}
    peer_roots: dict[str, tuple[x509.Certificate, ...]] = {}
    for name, peer in lab.peers.items():
        files = tls_files(peer.cert, peer.trust, issued)
        leaves[name] = _certs([files.cert])[0]
        peer_roots[name] = _certs(list(files.trust))
    return Trust(
        roots=_certs(list(material.trust)),
        public_roots=_certs(public),
        intermediates=_certs(cas),
        edge_leaf=_certs([material.cert])[0],
        leaves=leaves,
        peer_roots=peer_roots,
    )


def _names(lab: Lab) -> set[str]:
    """Every SRV name the lab's calls can make the Edge resolve."""
    settings = edge_settings(lab)
    names: set[str] = set()
    for call in lab.calls:
        for uri in (call.from_, call.pai, call.to):
            parsed = parse_uri(uri) if uri else None
            if isinstance(parsed, SipUri):
                names.add(srv_name(parsed.host))
    for entry in settings.allowed:
        if entry.proxy_fqdn is not None:
            names.add(entry.proxy_fqdn)
    return names


async def gather_lab_facts(
    lab: Lab, issued: dict[str, IssuedCert], *, now: dt.datetime, rng: random.Random | None = None
) -> LabFacts:
    """Serve the lab's zones on a free port and resolve what its calls need."""
    zones = lab_zones(lab)
    srv: dict[str, SrvAnswer] = {}
    addresses: dict[str, tuple[str, tuple[str, ...]]] = {}
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_dns, zones, "127.0.0.1", 0)
        target = lab.edge.dns if lab.edge.dns is not None else (host, port)
        resolver = Resolver(
            target, timeout=DNS_TIMEOUT, attempts=DNS_ATTEMPTS, rng=rng, cache=False
        )
        hosts: set[str] = set()
        for name in sorted(_names(lab)):
            if name.startswith("_sipfederationtls._tcp."):
                answer = await resolver.srv(name)
                srv[name] = answer
                hosts.update(t.target.rstrip(".").lower() for t in answer.targets)
            else:
                hosts.add(name.lower())
        for name in sorted(hosts):
            found = await resolver.addresses(name)
            addresses[name] = (found.outcome, tuple(found.addresses))
        nursery.cancel_scope.cancel()

    lookups = {
        name: SrvLookup(
            name=name,
            outcome=answer.outcome,
            targets=tuple(
                SrvTarget(
                    target=t.target.rstrip("."), port=t.port, priority=t.priority, weight=t.weight
                )
                for t in answer.targets
            ),
        )
        for name, answer in srv.items()
    }
    return LabFacts(srv=lookups, addresses=addresses, trust=lab_trust(lab, issued), now=now)


__all__ = ["gather_lab_facts", "lab_trust"]
