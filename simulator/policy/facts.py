"""The facts the Edge decides on, as plain frozen data.

The I/O layer gathers them (the request, the peer's certificate, the SRV
answer) and the Edge's settings come from the lab file; the rules in
:mod:`simulator.policy.inbound` and :mod:`simulator.policy.outbound` are pure
functions of these values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from simulator.policy.profiles import DEFAULT_PROFILE, PROFILE_NAMES, EdgeRules, ProfileName

Federation = Literal["discovery", "allowlist", "off"]
DomainSource = Literal["pai", "from"]
SrvOutcome = Literal["ok", "nxdomain", "nodata", "servfail", "refused", "timeout"]
Chain = Literal["trusted", "untrusted-root", "expired", "not-yet-valid", "wrong-usage", "bad-chain"]
#: What the CRLs of a peer's chain say: "unchecked" (rule off, or not looked at),
#: "good", "revoked", "offline" (a CRL could not be fetched or read), "no-cdp" (a
#: certificate names no CRL distribution point).
RevocationStatus = Literal["unchecked", "good", "revoked", "offline", "no-cdp"]
REVOCATION_STATUSES: tuple[RevocationStatus, ...] = (
    "unchecked",
    "good",
    "revoked",
    "offline",
    "no-cdp",
)
#: ``New-CsHostingProvider -VerificationLevel`` (reference §5.3).
Verification = Literal["AlwaysVerifiable", "AlwaysUnverifiable", "UseSourceVerification"]
VERIFICATION_LEVELS: tuple[Verification, ...] = (
    "AlwaysVerifiable",
    "AlwaysUnverifiable",
    "UseSourceVerification",
)
#: Where a discovered partner stands against its limits (rules ``discovered_rate``
#: and ``discovered_contacts``): "within", or which limit this request exceeds.
PartnerLoad = Literal["within", "rate", "contacts"]

#: Service name of the federation SRV record (reference §1.4).
SRV_SERVICE = "_sipfederationtls._tcp"
#: Federation port (reference §1.1).
FEDERATION_PORT = 5061

# RFC 1035 §2.3.1 label, relaxed for '_' (SRV owner names) and '*' (wildcard SANs).
_LABEL = r"(?:[A-Za-z0-9_*](?:[-A-Za-z0-9_]{0,61}[A-Za-z0-9_])?)"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")


def normalise_domain(name: str) -> str:
    """Lower-case and drop the root dot: DNS names compare case-insensitively (RFC 4343)."""
    return name.strip().rstrip(".").lower()


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS name (RFC 1035 §2.3.4: labels of 1-63, 253 in all), or None."""
    if len(name.rstrip(".")) > 253:
        return f"longer than 253 characters ({len(name.rstrip('.'))})"
    if not _HOSTNAME.fullmatch(name):
        return "not a DNS name (letters, digits, '-' in dot-separated labels of 1-63)"
    return None


def _check_hostname(what: str, name: str) -> None:
    if dns_name_problem(name) is not None:
        raise ValueError(f"{what} must be a DNS name, not {name!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedDomain:
    """An entry of the Edge's allowed list (``New-CsAllowedDomain``, reference §5.2).

    Attributes:
        domain: the partner SIP domain.
        proxy_fqdn: the partner's Access Edge / Expressway-E FQDN ("Allowed Partner
            Server", direct federation): no SRV lookup, the peer must be that server.
    """

    domain: str
    proxy_fqdn: str | None = None

    def __post_init__(self) -> None:
        _check_hostname("allowed domain", self.domain)
        if self.proxy_fqdn is not None:
            _check_hostname("proxy_fqdn", self.proxy_fqdn)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostingProvider:
    """A hosting provider (``New-CsHostingProvider``, reference §5.4), e.g. Office 365.

    Attributes:
        name: its Identity ("Office365", "SFBOnlineResources").
        proxy_fqdn: the provider's Access Edge (``sipfed.online.lync.com``): a
            domain whose SRV points there is routed to it without the same-domain
            rule, and its certificate must name it.
        verification: ``AlwaysVerifiable`` (every message verified),
            ``AlwaysUnverifiable`` (only the called user's contacts get through) or
            ``UseSourceVerification`` (the provider's own mark decides).
        shared_address_space: the provider hosts users of this Edge's own SIP
            domains (split domain, ``-EnabledSharedAddressSpace``).
        enabled: a disabled provider is ignored.
    """

    name: str
    proxy_fqdn: str
    verification: Verification = "AlwaysVerifiable"
    shared_address_space: bool = False
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.name or "\n" in self.name:
            raise ValueError("a hosting provider needs a one-line name")
        _check_hostname("hosting provider proxy_fqdn", self.proxy_fqdn)
        if self.verification not in VERIFICATION_LEVELS:
            raise ValueError(f"verification must be one of {VERIFICATION_LEVELS}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSettings:
    """An Office 365 / Teams tenant's federation (``Set-CsTenantFederationConfiguration``).

    Attributes:
        allow_federated_users: the master switch (``AllowFederatedUsers``).
        allowed_domains: ``AllowedDomains`` as a list: any entry turns open
            federation off, and only these domains federate.
        blocked_domains: ``BlockedDomains``: honoured only while federation is open.
        block_all_subdomains: a blocked domain also blocks its sub-domains.
        treat_discovered_as_unverified: ``TreatDiscoveredPartnersAsUnverified``:
            messages from an open-federation partner reach only users who have the
            sender in their contacts.
    """

    allow_federated_users: bool = True
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    block_all_subdomains: bool = False
    treat_discovered_as_unverified: bool = False

    def __post_init__(self) -> None:
        for domain in (*self.allowed_domains, *self.blocked_domains):
            _check_hostname("tenant domain", domain)

    @property
    def open(self) -> bool:
        """Open federation: no allowed list (every domain not blocked federates)."""
        return not self.allowed_domains


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalUser:
    """The Skype user on this Edge's side of a request, as the per-user rules see it.

    Inbound it is the called user, outbound the caller.

    Attributes:
        user: the URI's user part ("" when it has none).
        domain: the URI's domain (lower-case).
        federation: ``ExternalAccessPolicy.EnableFederationAccess`` (``users = { carol =
            { federation = false } }``).
        knows_peer: the federated party is on the user's contact list.
    """

    user: str
    domain: str
    federation: bool = True
    knows_peer: bool = False


def local_user(
    user: str | None,
    domain: str,
    *,
    federation: bool,
    contacts: tuple[str, ...],
    peer: tuple[str | None, str] | None,
) -> LocalUser:
    """Build the :class:`LocalUser` facts from the lab's user and the other party.

    Args:
        user / domain: our user's URI parts.
        federation: the user's ``federation`` setting.
        contacts: the user's contact list (SIP URIs; user@domain compared, case-insensitively).
        peer: the federated party's (user, domain), if known.
    """
    knows = False
    if peer is not None and contacts:
        wanted = _address(peer[0], peer[1])
        knows = any(_contact_address(c) == wanted for c in contacts)
    return LocalUser(
        user=user or "", domain=normalise_domain(domain), federation=federation, knows_peer=knows
    )


def _address(user: str | None, domain: str) -> str:
    return f"{(user or '').lower()}@{normalise_domain(domain)}"


def _contact_address(uri: str) -> str:
    text = uri.strip()
    scheme, sep, rest = text.partition(":")
    if sep and scheme.lower() in ("sip", "sips"):
        text = rest
    text = text.split(";", 1)[0].split(">", 1)[0]
    user, at, host = text.rpartition("@")
    return _address(user if at else None, host.split(":", 1)[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    """The first Route of an inbound request and the connection it arrived on (reference 4.1).

    Attributes:
        route: the first Route header field value, as received.
        local: the Edge's (address, port) on that connection.
    """

    route: str
    local: tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeSettings:
    """How the emulated Access Edge is configured (lab file ``[edge]``).

    Attributes:
        fqdn: external FQDN, the ``source=`` of ms-diagnostics ("sip.skype.lab").
        domains: SIP domains homed behind this Edge.
        federation: "discovery" (EnablePartnerDiscovery: open federation), "allowlist"
            (only allowed domains) or "off" (AllowFederatedUsers False).
        blocked: blocked domains; a blocked domain also blocks its sub-domains (I).
        allowed: allowed domains, optionally pinned to a ProxyFqdn.
        hosted: Office 365 rules: the peer certificate must chain to a public root.
        rules: the open behaviours (``[edge.rules]``, :class:`EdgeRules`): the EKU of
            inbound certificates, wildcard peer names, an SRV target equal to the
            domain, blocked sub-domains, diagnostics towards partners, and where the
            inbound caller's domain comes from.
        server_header: the ``Server:`` value of every Edge response (reference §7.3).
        profile: the emulated product (``[edge] profile``), for events and reports.
        hosting_providers: ``New-CsHostingProvider`` entries (reference §5.4).
        tenant: the Office 365 tenant's federation settings (profile office365,
            ``[edge.tenant]``); when set it replaces ``federation``, ``blocked`` and
            ``allowed``.
    """

    fqdn: str
    domains: tuple[str, ...]
    federation: Federation = "discovery"
    blocked: tuple[str, ...] = ()
    allowed: tuple[AllowedDomain, ...] = ()
    hosted: bool = False
    rules: EdgeRules = field(default_factory=EdgeRules)
    server_header: str = "RTC/6.0"
    profile: ProfileName = DEFAULT_PROFILE
    hosting_providers: tuple[HostingProvider, ...] = ()
    tenant: TenantSettings | None = None

    def __post_init__(self) -> None:
        _check_hostname("edge fqdn", self.fqdn)
        if not self.domains:
            raise ValueError("the Edge needs at least one SIP domain")
        for domain in (*self.domains, *self.blocked):
            _check_hostname("domain", domain)
        if self.federation not in ("discovery", "allowlist", "off"):
            raise ValueError(f"federation must be discovery, allowlist or off: {self.federation!r}")
        if self.profile not in PROFILE_NAMES:
            raise ValueError(f"profile must be one of {PROFILE_NAMES}: {self.profile!r}")
        allowed = [normalise_domain(a.domain) for a in self.allowed]
        if len(set(allowed)) != len(allowed):
            raise ValueError("a domain is on the allowed list twice")
        # Reference §5.2: "A domain cannot be on both lists (creating fails)."
        if both := set(allowed) & {normalise_domain(b) for b in self.blocked}:
            raise ValueError(f"on both the allowed and the blocked list: {sorted(both)}")
        if not self.server_header or "\n" in self.server_header:
            raise ValueError("server_header must be one non-empty line")
        fqdns = [normalise_domain(p.proxy_fqdn) for p in self.hosting_providers]
        if len(set(fqdns)) != len(fqdns):
            raise ValueError("two hosting providers share one proxy_fqdn")
        pinned = {normalise_domain(a.proxy_fqdn) for a in self.allowed if a.proxy_fqdn}
        if both := pinned & set(fqdns):
            # Event 14517 (field cases C7): the Access Edge service does not start.
            raise ValueError(
                f"both an allowed partner server and a hosting provider: {sorted(both)}"
            )

    @property
    def domain_source(self) -> DomainSource:
        """Where the inbound caller's domain comes from (``rules.domain_source``)."""
        return self.rules.domain_source

    def provider(self, fqdn: str) -> HostingProvider | None:
        """The enabled hosting provider whose proxy_fqdn is ``fqdn``, if any."""
        wanted = normalise_domain(fqdn)
        return next(
            (
                p
                for p in self.hosting_providers
                if p.enabled and normalise_domain(p.proxy_fqdn) == wanted
            ),
            None,
        )

    def allowed_entry(self, domain: str) -> AllowedDomain | None:
        """The allowed-list entry for exactly ``domain`` (case-insensitive), if any."""
        wanted = normalise_domain(domain)
        return next((a for a in self.allowed if normalise_domain(a.domain) == wanted), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class SrvTarget:
    """One SRV answer record (RFC 2782)."""

    target: str
    port: int
    priority: int = 0
    weight: int = 0

    def __post_init__(self) -> None:
        if self.target.rstrip(".") and not _HOSTNAME.fullmatch(self.target):
            raise ValueError(f"SRV target must be a DNS name, not {self.target!r}")
        if not self.target:
            raise ValueError("SRV target must not be empty ('.' means 'no service')")
        for name, value in (
            ("port", self.port),
            ("priority", self.priority),
            ("weight", self.weight),
        ):
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"SRV {name} must be 0..65535, not {value}")

    @property
    def host(self) -> str:
        """The target without the root dot, as the Edge prints it (``vcse.steven.lab``)."""
        return self.target.rstrip(".")

    def render(self) -> str:
        """``target:port`` as in the Edge's ``fqdn1=`` values ([CISCO])."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SrvLookup:
    """The result of resolving one SRV name.

    Attributes:
        name: the queried name, ``_sipfederationtls._tcp.<domain>``.
        outcome: "ok" with targets, "nxdomain" (name does not exist), "nodata" (name
            exists, no SRV), "servfail", "refused" or "timeout".
        targets: in the order the resolver chose (RFC 2782 priority/weight order).
    """

    name: str
    outcome: SrvOutcome
    targets: tuple[SrvTarget, ...] = ()

    def __post_init__(self) -> None:
        _check_hostname("SRV name", self.name)
        if self.outcome not in ("ok", "nxdomain", "nodata", "servfail", "refused", "timeout"):
            raise ValueError(f"unknown SRV outcome {self.outcome!r}")
        if (self.outcome == "ok") != bool(self.targets):
            raise ValueError("an 'ok' SRV lookup has targets; any other outcome has none")


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerCertificate:
    """What the Edge learns from the peer's TLS certificate.

    Attributes:
        display_name: the name the Edge prints (``certName``, ``PeerServer``): the
            subject CN, else the first DNS SAN.
        names: the names used for matching: the DNS SANs, or the CN only when the
            certificate has no DNS SAN ([CISCO]; see :func:`names_for_matching`).
        chain: the outcome of chain validation against the Edge's trust store.
        public_root: the chain ends at a publicly trusted root (Office 365 rule).
        revocation: what the CRLs of the chain said (rule ``revocation``).
    """

    display_name: str
    names: tuple[str, ...]
    chain: Chain
    public_root: bool
    revocation: RevocationStatus = "unchecked"

    def __post_init__(self) -> None:
        if not self.display_name or "\n" in self.display_name:
            raise ValueError("display_name must be one non-empty line")
        if self.chain not in (
            "trusted",
            "untrusted-root",
            "expired",
            "not-yet-valid",
            "wrong-usage",
            "bad-chain",
        ):
            raise ValueError(f"unknown chain outcome {self.chain!r}")
        if self.revocation not in REVOCATION_STATUSES:
            raise ValueError(f"unknown revocation status {self.revocation!r}")

    @classmethod
    def from_subject(
        cls,
        *,
        cn: str | None,
        dns_sans: tuple[str, ...],
        chain: Chain = "trusted",
        public_root: bool = False,
    ) -> PeerCertificate:
        """Build the facts from a certificate's CN and DNS SANs, applying the CN fallback."""
        names = names_for_matching(cn, dns_sans)
        display = cn or (dns_sans[0] if dns_sans else "")
        if not display:
            raise ValueError("a certificate with neither CN nor DNS SAN cannot be named")
        return cls(display_name=display, names=names, chain=chain, public_root=public_root)


def names_for_matching(cn: str | None, dns_sans: tuple[str, ...]) -> tuple[str, ...]:
    """Names a certificate answers to: DNS SANs, or the CN only when there is no DNS SAN.

    [CISCO]: "the FQDN in its subject alternative name (or common name, if SAN is
    not used)"; reference §6.
    """
    if dns_sans:
        return dns_sans
    return (cn,) if cn else ()
