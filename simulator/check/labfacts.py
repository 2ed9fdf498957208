"""Gather a lab's facts for ``fedsim check --lab``: its DNS through the Edge's resolver, its PKI.

The lab's own DNS server (the code ``fedsim serve`` runs) is started on a free
loopback port for the time of the check, and every name a call needs is asked
through :class:`simulator.dns.Resolver` with the Edge's limits, so a timeout, a
SERVFAIL or an RFC 2782 order is exactly what the running Edge would see.

Revocation: the CRLs of each peer's chain are what ``fedsim serve`` would serve
(the issued CA's CRL file, for a distribution point under the base URL the PKI
was issued with), or fetched over HTTP like the Edge does (a certificate's own
``crl_url``), and judged by :func:`simulator.pki.revocation_status`.
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
from simulator.edge.crl import fetch
from simulator.lab import Lab
from simulator.lab.files import tls_files
from simulator.lab.settings import edge_settings
from simulator.pki import (
    IssuedCert,
    crl_url_for,
    crl_urls,
    load_pem_certificates,
    revocation_status,
    verify_chain,
)
from simulator.policy import RevocationStatus, SrvLookup, SrvTarget, srv_name
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


def lab_crl_base(lab: Lab) -> str:
    """The CRL server's base URL for a PKI issued only to be checked (never served)."""
    host, port = lab.pki.crl_listen
    return f"http://{host}:{port}"


async def _revocation(
    trust: Trust,
    issued: dict[str, IssuedCert],
    crl_base: str | None,
    resolver: Resolver,
    now: dt.datetime,
) -> dict[str, RevocationStatus]:
    """What the CRLs say about each peer's chain, as the Edge would find it."""
    served: dict[str, bytes] = {}
    if crl_base is not None:
        for name, cert in issued.items():
            if cert.crl_path is not None:
                served[crl_url_for(crl_base, name)] = cert.crl_path.read_bytes()
    out: dict[str, RevocationStatus] = {}
    for name, leaf in trust.leaves.items():
        verdict = verify_chain(
            leaf,
            trust.intermediates,
            trust.roots,
            now=now,
            public_roots=trust.public_roots,
            usage="any",
        )
        if verdict.status != "trusted":
            out[name] = "unchecked"
            continue
        fetched: dict[str, bytes | None] = {}
        for url in crl_urls(verdict.path):
            fetched[url] = served[url] if url in served else await fetch(url, resolver)
        out[name] = revocation_status(verdict.path, fetched, now=now)
    return out


async def gather_lab_facts(
    lab: Lab,
    issued: dict[str, IssuedCert],
    *,
    now: dt.datetime,
    rng: random.Random | None = None,
    crl_base: str | None = None,
) -> LabFacts:
    """Serve the lab's zones on a free port and resolve what its calls need.

    ``crl_base`` is the CRL server URL the PKI was issued with (its CRLs are read
    from the issued files, not served).
    """
    trust = lab_trust(lab, issued)
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
        revocation = await _revocation(trust, issued, crl_base, resolver, now)
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
    return LabFacts(srv=lookups, addresses=addresses, trust=trust, now=now, revocation=revocation)


__all__ = ["gather_lab_facts", "lab_crl_base", "lab_trust"]
