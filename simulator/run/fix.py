"""What to change so a call of a lab goes through, in the lab's own names (pure).

``fedsim explain`` gives the catalogue's fix for a code ("add the SRV target to
the certificate"); here the same advice is written with this lab's domain,
SRV name, certificate and peer names, in the lab file's terms (``[dns]
records``, ``[certs."vcse.steven.lab"] san``, ``[edge] trust``) and, where one
exists, the Skype for Business cmdlet an administrator would run. One function
per rule of the Edge's event, looked up in :data:`FIXES`; a rule without one
falls back to the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from simulator.diagnostics import MS_DIAGNOSTICS, RESULT_CODES
from simulator.run.model import CallReport, LabCert, LabFacts, LabPeer

#: The SRV service Microsoft federation uses (reference §1.7).
SRV_PREFIX = "_sipfederationtls._tcp."


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _Ctx:
    """The facts a fix names, taken from the call's event and the lab."""

    call: CallReport
    facts: LabFacts
    event: Mapping[str, object]
    data: Mapping[str, object]  # the Edge log record's Data fields

    @property
    def domain(self) -> str:
        value = self.event.get("domain") or self.data.get("domain")
        if value:
            return str(value)
        uri = self.call.trace.to_uri if self.outbound else self.call.trace.from_uri
        return uri.rsplit("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]

    @property
    def outbound(self) -> bool:
        return self.call.trace.direction == "outbound"

    @property
    def srv(self) -> Mapping[str, object]:
        return _map(_map(self.event.get("extra")).get("srv"))

    @property
    def srv_name(self) -> str:
        return str(self.srv.get("name") or SRV_PREFIX + self.domain)

    @property
    def targets(self) -> list[str]:
        return [self.lab_target(t) for t in _strs(self.srv.get("targets"))]

    @property
    def tried(self) -> list[Mapping[str, object]]:
        return [_map(t) for t in _strs_any(_map(self.event.get("extra")).get("targets_tried"))]

    @property
    def peer(self) -> LabPeer | None:
        return self.facts.peer(self.call.trace.peer_name)

    @property
    def peer_cert(self) -> LabCert | None:
        peer = self.peer
        return self.facts.cert(peer.cert) if peer is not None else None

    @property
    def cert_label(self) -> str:
        peer = self.peer
        return f"'{peer.cert}'" if peer is not None else "of the Expressway-E"

    @property
    def cert_names(self) -> list[str]:
        names = list(self.call.trace.peer_cert_names)
        cert = self.peer_cert
        if not names and cert is not None:
            names = list(cert.sans) or ([cert.cn] if cert.cn else [])
        return names

    def lab_target(self, target: str) -> str:
        """``vcse.steven.lab:35497`` -> ``vcse.steven.lab:5061``: the port the lab file wrote."""
        host, _, port = target.rpartition(":")
        for peer in self.facts.peers:
            if peer.port is not None and port == str(peer.port) and peer.listen:
                return f"{host}:{peer.listen.rpartition(':')[2]}"
        return target

    def suggestion(self) -> str:
        """A host directly in the domain: one the certificate names, else ``<label>.<domain>``."""
        domain = self.domain.lower()
        for name in self.cert_names:
            head, _, rest = name.lower().partition(".")
            if rest == domain and head and head != "*":
                return name.lower()
        source = (self.targets or self.cert_names or ["vcse"])[0]
        return f"{source.split('.', 1)[0].split(':', 1)[0]}.{domain}"

    def add_san(self, host: str) -> str:
        """How to add ``host`` to the peer certificate's SANs, or "" when it is there."""
        if host.lower() in (n.lower() for n in self.cert_names):
            return ""
        peer = self.peer
        if peer is None:
            return f"add {host} to the Expressway-E certificate's SANs"
        sans = [*(n for n in self.cert_names if n.lower() != host.lower()), host]
        listed = ", ".join(f'"{n}"' for n in sans)
        return (
            f"add {host} to the SANs of certificate '{peer.cert}' "
            f'([certs."{peer.cert}"] san = [{listed}])'
        )


def _strs_any(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _srv_not_in_domain(c: _Ctx) -> str:
    host = c.suggestion()
    now = ", ".join(c.targets) or "no target"
    text = (
        f"Point {c.srv_name} at a host directly in {c.domain}, e.g. {host} (it points to {now}): "
        f"in [dns] records, '{c.srv_name}. 300 IN SRV 0 0 5061 {host}.' and "
        f"'{host}. 300 IN A 127.0.0.1'"
    )
    san = c.add_san(host)
    return text + (f"; and {san}." if san else ".")


def _srv_missing(c: _Ctx) -> str:
    host = c.suggestion()
    san = c.add_san(host)
    return (
        f"Publish the SRV record of {c.domain}: in [dns] records, "
        f"'{c.srv_name}. 300 IN SRV 0 0 5061 {host}.' with '{host}. 300 IN A 127.0.0.1'"
        + (f"; and {san}." if san else ".")
    )


def _srv_unanswered(c: _Ctx) -> str:
    outcome = str(c.srv.get("outcome") or c.data.get("dns-result") or "no answer").upper()
    text = (
        f"The Edge's DNS query for {c.srv_name} got {outcome}: make the resolver the Edge "
        f"uses ([edge] dns, default the lab's own DNS) answer for {c.domain}"
    )
    name = c.srv_name.rstrip(".").lower()
    for key, names in (("silent", c.facts.dns_silent), ("servfail", c.facts.dns_servfail)):
        if name in (n.rstrip(".").lower() for n in names):
            text += f"; this lab lists {name} in [dns] {key}: remove it there"
    return text + "."


def _no_address(c: _Ctx) -> str:
    host = str(c.data.get("fqdn") or "")
    if not host:
        missing = [t for t in c.tried if not _strs_any(t.get("addresses"))]
        host = str((missing or [{}])[0].get("target", c.suggestion()))
    host = host.rpartition(":")[0] if ":" in host else host
    return f"Publish an A record for {host}: '{host}. 300 IN A 127.0.0.1' in [dns] records."


def _cert_mismatch(c: _Ctx) -> str:
    expected = str(c.data.get("expected-fqdn") or c.data.get("tls-target") or c.suggestion())
    names = ", ".join(c.cert_names) or "no usable name"
    text = f"Certificate {c.cert_label} names {names}, not {expected}: " + (
        c.add_san(expected) or f"put {expected} in its SANs"
    )
    domain = c.domain.lower()
    direct = [n for n in c.cert_names if n.lower().partition(".")[2] == domain]
    if direct and direct[0].lower() != expected.lower():
        text += f", or point {c.srv_name} at {direct[0]}, which it already names"
    return text + "."


def _proxy_mismatch(c: _Ctx) -> str:
    proxy = str(c.data.get("proxy-fqdn") or "?")
    names = ", ".join(c.cert_names) or "no usable name"
    return (
        f"The allowed partner {c.domain} is pinned to proxy_fqdn {proxy}, and certificate "
        f"{c.cert_label} names {names}: {c.add_san(proxy) or f'put {proxy} in its SANs'}, "
        f"or set proxy_fqdn to a name it carries in [[edge.allowed]]."
    )


def _trust_edge(c: _Ctx) -> str | None:
    """The Edge does not trust the peer's certificate: the trust fix, if that is the reason."""
    cert = c.peer_cert
    if cert is None:
        return None
    root = cert.root or cert.issuer_name
    root_cert = c.facts.cert(root)
    if c.facts.hosted and not (root_cert is not None and root_cert.public):
        return (
            f"Office 365 (hosted) trusts only public CAs: issue certificate {c.cert_label} from "
            f"a public root (a [certs] root with public = true), not '{root}'."
        )
    if root is not None and root not in c.facts.edge_trust:
        now = ", ".join(c.facts.edge_trust) or "nothing"
        return (
            f"Make the Edge trust '{root}', the root of certificate {c.cert_label}: add it to "
            f"[edge] trust (now {now}), or issue the certificate from a CA the Edge trusts."
        )
    return None


def _renew(c: _Ctx) -> str | None:
    cert = c.peer_cert
    if cert is None or cert.validity == "valid":
        return None
    return (
        f"Renew certificate {c.cert_label} ({cert.validity}: valid {cert.not_before} to "
        f'{cert.not_after}): drop its validity, not_before and not_after in [certs."{cert.name}"].'
    )


def _eku(c: _Ctx) -> str | None:
    cert = c.peer_cert
    if cert is None or not cert.eku or "clientAuth" in cert.eku:
        return None
    return (
        f"Issue certificate {c.cert_label} with both EKUs (it has {', '.join(cert.eku)}): "
        f'eku = ["serverAuth", "clientAuth"] in [certs."{cert.name}"]; the Expressway-E is '
        "the TLS client inbound."
    )


def _untrusted(c: _Ctx) -> str:
    return _trust_edge(c) or _generic(c) or "Make the Edge trust the certificate's root CA."


def _validity(c: _Ctx) -> str:
    return _renew(c) or _generic(c) or "Renew the certificate."


def _handshake_refused(c: _Ctx) -> str:
    """Inbound: the Edge's TLS layer refused the peer; say which of its checks failed."""
    for check in (_trust_edge, _renew, _eku):
        text = check(c)
        if text is not None:
            return text
    peer = c.peer
    name = peer.name if peer is not None else "the peer"
    return (
        f"The Edge refused the TLS handshake of {name}: compare the TLS profiles "
        f"([edge] tls, [peers.{name}] tls) and the certificate it sends."
    )


def _partner_refused(c: _Ctx) -> str:
    """Outbound: the partner Expressway-E refused the Edge's handshake."""
    peer = c.peer
    edge_cert = c.facts.cert(c.facts.edge_cert)
    root = (edge_cert.root or edge_cert.issuer_name) if edge_cert is not None else None
    if peer is not None and root is not None and root not in peer.trust:
        now = ", ".join(peer.trust) or "nothing"
        return (
            f"The Expressway-E '{peer.name}' does not trust '{root}', the root of the Edge's "
            f"certificate '{c.facts.edge_cert}': add it to [peers.{peer.name}] trust (now {now}) "
            "(on a real Expressway-E: upload the CA to its trusted CA list)."
        )
    edge_tls = dict(c.facts.profile).get("tls", "default")
    peer_tls = peer.tls if peer is not None else "default"
    return (
        f"Give the Edge and the Expressway-E a TLS version and cipher in common "
        f"([edge] tls = {edge_tls}, [peers.{peer.name if peer else 'NAME'}] tls = {peer_tls})."
    )


def _connect_failed(c: _Ctx) -> str:
    target = c.lab_target(str(c.event.get("peer") or c.data.get("fqdn") or "the SRV target"))
    return (
        f"Nothing accepted the Edge's connection to {target}: run the Expressway-E there "
        "(a [peers.NAME] whose listen port is the SRV record's port) or correct the SRV port."
    )


def _blocked(c: _Ctx) -> str:
    return (
        f"Remove {c.domain} from [edge] blocked "
        f"(on the Edge: Remove-CsBlockedDomain -Identity {c.domain})."
    )


def _not_allowed(c: _Ctx) -> str:
    return (
        f"Add {c.domain} to [edge] allowed (New-CsAllowedDomain -Identity {c.domain}), "
        'or open federation: [edge] federation = "discovery".'
    )


def _federation_off(_c: _Ctx) -> str:
    return (
        'Turn federation on: [edge] federation = "discovery" '
        "(Set-CsAccessEdgeConfiguration -AllowFederatedUsers $true)."
    )


def _accepted(c: _Ctx) -> str:
    status = c.call.got.status
    if status is not None and status >= 300:
        who = c.call.trace.to_uri
        return (
            f"Nothing to fix in federation: the call crossed the Edge and {who} answered {status}."
        )
    return "Nothing to fix: the call went through."


Fix = Callable[[_Ctx], str]

#: The Edge event's ``rule`` -> how to fix it (prefix match for ``connect-*``).
FIXES: dict[str, Fix] = {
    "accepted": _accepted,
    "forwarded": _accepted,
    "srv-not-in-domain": _srv_not_in_domain,
    "srv-nxdomain": _srv_missing,
    "srv-nodata": _srv_missing,
    "srv-timeout": _srv_unanswered,
    "srv-servfail": _srv_unanswered,
    "srv-refused": _srv_unanswered,
    "no-address": _no_address,
    "cert-mismatch": _cert_mismatch,
    "proxy-fqdn-mismatch": _proxy_mismatch,
    "untrusted-root": _untrusted,
    "cert-bad-chain": _untrusted,
    "cert-expired": _validity,
    "cert-not-yet-valid": _validity,
    "cert-wrong-usage": lambda c: _eku(c) or _generic(c) or "Issue the certificate with both EKUs.",
    "tls-handshake-failed": _handshake_refused,
    "tls-alert": _partner_refused,
    "tls-reset": _partner_refused,
    "tls-failed": _partner_refused,
    "connect-": _connect_failed,
    "blocked-domain": _blocked,
    "domain-not-allowed": _not_allowed,
    "federation-off": _federation_off,
}


def _generic(c: _Ctx) -> str | None:
    """The catalogue's fix for the code that decided (what ``fedsim explain`` says)."""
    code = c.call.got.ms_diagnostics
    if code is not None and code in MS_DIAGNOSTICS:
        return MS_DIAGNOSTICS[code].fix
    symbol = c.call.got.edge_log
    if symbol is not None and symbol in RESULT_CODES:
        return RESULT_CODES[symbol].fix
    return None


def fix_for(call: CallReport, facts: LabFacts) -> str | None:
    """What to change for ``call`` to go through, naming this lab's hosts, records and certificates.

    Returns:
        One paragraph; None when nothing is known (no event, no catalogue entry).
    """
    event = call.trace.event or {}
    data = _map(_map(event.get("edge_log")).get("data"))
    ctx = _Ctx(call, facts, event, data)
    rule = str(event.get("rule") or call.got.rule or "")
    fix = FIXES.get(rule) or next(
        (f for key, f in FIXES.items() if key.endswith("-") and rule.startswith(key)), None
    )
    if fix is not None:
        return fix(ctx)
    return _generic(ctx)


__all__ = ["FIXES", "fix_for"]
