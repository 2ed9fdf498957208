"""The facts of a lab for reports: its policy, DNS, certificates (as issued) and peers.

The page (``fedsim run --html``) shows them next to the calls, and the views
and fixes name them ("add vcse.acano.steven.lab to the SANs of certificate
'vcse.steven.lab'"). Certificates are read back from the PEM files the run
issued, so names, issuer and dates are the ones the Edge and the peers used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from simulator.errors import FedsimError
from simulator.lab import CertFiles, CertRef, Lab, TrustRef, UserSpec
from simulator.pki import facts_from_certificate, load_pem_certificates
from simulator.pki.lab import IssuedCert
from simulator.policy import TenantSettings
from simulator.run.model import LabCert, LabFacts, LabPeer


def _tenant_text(tenant: TenantSettings) -> str:
    """An Office 365 tenant's federation settings, in one line."""
    if not tenant.allow_federated_users:
        return "federation off (AllowFederatedUsers False)"
    parts = [
        f"allowed only {', '.join(tenant.allowed_domains)}"
        if tenant.allowed_domains
        else "open federation"
    ]
    if tenant.blocked_domains:
        parts.append(f"blocked {', '.join(tenant.blocked_domains)}")
    if tenant.block_all_subdomains:
        parts.append("sub-domains blocked too")
    if tenant.treat_discovered_as_unverified:
        parts.append("discovered partners unverified (contacts only)")
    return "; ".join(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def lab_cert(
    name: str,
    cert: x509.Certificate,
    *,
    now: dt.datetime,
    issuer_name: str | None = None,
    root: str | None = None,
    public: bool = False,
) -> LabCert:
    """A :class:`LabCert` from a parsed certificate; ``validity`` is judged at ``now``."""
    facts = facts_from_certificate(cert)
    if now < facts.not_before:
        validity = "not-yet-valid"
    elif now > facts.not_after:
        validity = "expired"
    else:
        validity = "valid"
    return LabCert(
        name=name,
        subject=facts.subject,
        issuer=facts.issuer,
        cn=facts.subject_cn,
        sans=facts.dns_sans,
        eku=facts.eku,
        not_before=_iso(facts.not_before),
        not_after=_iso(facts.not_after),
        validity=validity,
        ca=facts.is_ca,
        public=public,
        issuer_name=issuer_name,
        root=root,
        sha256=facts.sha256,
    )


def _read(path: Path) -> list[x509.Certificate]:
    try:
        return load_pem_certificates(path.read_bytes(), source=str(path))
    except (OSError, FedsimError):
        return []


def _ref_name(ref: CertRef | TrustRef) -> str:
    if isinstance(ref, CertFiles):
        return ref.cert.name
    if isinstance(ref, Path):
        return ref.name
    return ref


def _root_of(lab: Lab, name: str) -> str | None:
    """The lab name of the root ``name`` chains to (None for a root itself)."""
    seen: set[str] = set()
    current = name
    while current not in seen:
        seen.add(current)
        try:
            issuer = lab.cert_spec(current).issuer
        except KeyError:
            return None
        if issuer is None:
            return current if current != name else None
        current = issuer
    return None


def lab_facts(
    lab: Lab,
    issued: Mapping[str, IssuedCert],
    *,
    ports: Mapping[str, int],
    now: dt.datetime,
) -> LabFacts:
    """Collect the facts of ``lab`` as it ran.

    Args:
        lab: the lab as written (placeholder ports, not the rewritten ones).
        issued: the PKI the run issued, by ``[certs]`` name.
        ports: peer name -> the port it listened on in this run.
        now: when the lab ran (certificate validity is judged then).
    """
    certs: list[LabCert] = []
    for spec in lab.certs:
        item = issued.get(spec.name)
        parsed = _read(item.cert_path) if item is not None else []
        if parsed:
            certs.append(
                lab_cert(
                    spec.name,
                    parsed[0],
                    now=now,
                    issuer_name=spec.issuer,
                    root=_root_of(lab, spec.name),
                    public=spec.public and spec.issuer is None,
                )
            )
    # Certificates and trust anchors given as PEM files rather than [certs] names.
    files: list[Path] = []
    for ref in (lab.edge.cert, *(p.cert for p in lab.peers.values())):
        if isinstance(ref, CertFiles):
            files.append(ref.cert)
    for trust in (lab.edge.trust, *(p.trust for p in lab.peers.values())):
        files.extend(t for t in trust if isinstance(t, Path))
    for path in dict.fromkeys(files):
        certs.extend(lab_cert(path.name, c, now=now) for c in _read(path)[:1])
    edge = lab.edge
    policy: list[tuple[str, str]] = [("federation", edge.federation)]
    if edge.blocked:
        policy.append(("blocked", ", ".join(edge.blocked)))
    for allowed in edge.allowed:
        value = allowed.domain
        if allowed.proxy_fqdn:
            value += f" (proxy_fqdn {allowed.proxy_fqdn})"
        policy.append(("allowed", value))
    policy += [
        ("hosted", "true" if edge.hosted else "false"),
        ("domain_source", edge.domain_source),
    ]
    if edge.users:
        policy.append(("users", ", ".join(_user(u, s) for u, s in edge.users.items())))
    for provider in edge.hosting_providers:
        flags: list[str] = [provider.verification]
        if provider.shared_address_space:
            flags.append("shared address space")
        if not provider.enabled:
            flags.append("disabled")
        policy.append(
            ("hosting_provider", f"{provider.name}: {provider.proxy_fqdn} ({', '.join(flags)})")
        )
    if (tenant := edge.tenant) is not None:
        policy.append(("tenant", _tenant_text(tenant)))
    rules = edge.rules
    policy.append(
        (
            "revocation, discovered",
            f"{rules.revocation}; {rules.discovered_rate}/s, {rules.discovered_contacts} users, "
            f"then {rules.discovered_refusal}",
        )
    )
    profile = [
        ("tls", edge.tls),
        ("server_header", edge.server_header),
        ("machine", edge.machine),
    ]
    zones: list[tuple[str, str]] = []
    for zone in lab.dns.zones:
        try:
            zones.append((zone.name, zone.read_text(encoding="utf-8")))
        except OSError as exc:
            zones.append((zone.name, f"; cannot read: {exc.strerror or exc}"))
    peers = tuple(
        LabPeer(
            name=name,
            cert=_ref_name(peer.cert),
            trust=tuple(_ref_name(t) for t in peer.trust),
            tls=peer.tls,
            answer=peer.answer,
            listen=f"{peer.listen[0]}:{peer.listen[1]}" if peer.listen is not None else None,
            port=ports.get(name),
            require_client_cert=peer.require_client_cert,
        )
        for name, peer in lab.peers.items()
    )
    return LabFacts(
        edge_fqdn=edge.fqdn,
        domains=edge.domains,
        edge_cert=_ref_name(edge.cert),
        edge_trust=tuple(_ref_name(t) for t in edge.trust),
        policy=tuple(policy),
        profile=tuple(profile),
        federation=edge.federation,
        hosted=edge.hosted,
        dns_records=lab.dns.records,
        dns_zones=tuple(zones),
        dns_silent=lab.dns.silent,
        dns_servfail=lab.dns.servfail,
        certs=tuple(certs),
        peers=peers,
    )


__all__ = ["lab_cert", "lab_facts"]


def _user(name: str, spec: UserSpec) -> str:
    """``bob=486``, or every setting of a user given as a table."""
    default = UserSpec()
    parts = [str(spec.answer)] if spec.answer != default.answer else []
    if not spec.federation:
        parts.append("no federation")
    if spec.presence != default.presence:
        parts.append(spec.presence)
    if spec.contacts:
        parts.append("contacts " + " ".join(spec.contacts))
    return f"{name}={' '.join(parts) or 'listed'}"
