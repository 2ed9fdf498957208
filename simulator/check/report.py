"""The pure core of ``fedsim check``: gathered facts in, a :class:`Report` out.

No I/O and no clock: the caller passes what DNS answered, the certificates it
read and ``now``. Each of Microsoft's rules (reference §1.7, §2.1, §2.2, §6;
the Cisco note's DNS and Certificate sections) becomes a :class:`RuleResult`
with its evidence, in the order the Edge applies them; then the Edge's own
policy functions (:func:`simulator.policy.decide_inbound` and the
``outbound_*`` steps) say what Skype would answer, so the prediction and
``fedsim serve`` can never disagree on a rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

from simulator.diagnostics import MS_DIAGNOSTICS, RESULT_CODES, LogContext, format_edge_log
from simulator.diagnostics.catalogue import Fidelity
from simulator.pki.facts import (
    CertificateFacts,
    ChainVerdict,
    facts_from_certificate,
    verify_chain,
)
from simulator.pki.revocation import revocation_status
from simulator.policy import (
    DEFAULT_PROFILE,
    Decision,
    EdgeRules,
    EdgeSettings,
    Parties,
    PeerCertificate,
    ProfileName,
    RevocationStatus,
    SrvLookup,
    SrvTarget,
    client_usage,
    decide_inbound,
    in_exact_domain,
    inbound_handshake_refusal,
    inbound_route,
    name_matches,
    normalise_domain,
    outbound_after_srv,
    outbound_check_peer,
    outbound_no_address,
    outbound_route,
    profile,
    revocation_refusal,
    srv_name,
)
from simulator.policy.facts import Chain

Direction = Literal["inbound", "outbound"]
Status = Literal["pass", "fail", "warn", "skip"]
AddressOutcome = Literal["ok", "nxdomain", "nodata", "servfail", "refused", "timeout"]

#: Both directions, in the order they are reported.
DIRECTIONS: tuple[Direction, ...] = ("inbound", "outbound")
#: The Edge machine name of the Cisco note's log records ([CISCO]).
EDGE_MACHINE = "sfvedge"
#: Call-ID and CSeq of the request the prediction is about (there is no real call).
CHECK_CALL_ID = "fedsim-check"
CHECK_CSEQ = "1 INVITE"
#: What each DNS outcome means, for evidence lines.
_OUTCOME_TEXT: dict[str, str] = {
    "nxdomain": "NXDOMAIN: the name does not exist",
    "nodata": "NODATA: the name exists but has no record of that type",
    "servfail": "SERVFAIL: the DNS server failed to answer",
    "refused": "REFUSED: the DNS server refused the query",
    "timeout": "no answer: the DNS server did not reply in time",
}
_ANY_EKU = "2.5.29.37.0"  # anyExtendedKeyUsage (RFC 5280 §4.2.1.12)
_USER = re.compile(r"[-A-Za-z0-9_.!~*'()&=+$,;?/]+")  # RFC 3261 §25.1 user


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressLookup:
    """The A/AAAA answer for one SRV target.

    Attributes:
        name: the host, without the root dot.
        outcome: "ok" exactly when ``addresses`` is not empty.
        addresses: IPv4 then IPv6 addresses, as text.
    """

    name: str
    outcome: AddressOutcome
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.outcome == "ok") != bool(self.addresses):
            raise ValueError("an 'ok' address lookup has addresses; any other outcome has none")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckFacts:
    """Everything ``fedsim check`` gathered, as plain data.

    Attributes:
        domain: the partner's (Expressway side's) SIP domain, lower-case.
        dns_server: the server asked, ``host:port``.
        dns_source: where that server came from (``--dns``, ``/etc/resolv.conf``).
        srv: the lookup of ``_sipfederationtls._tcp.<domain>``, targets in RFC 2782 order.
        addresses: the A/AAAA lookup of each distinct SRV target, in SRV order.
        leaf: the Expressway-E certificate.
        intermediates: the CA certificates sent with it (``--cert`` file, ``--chain``).
        cert_source: the file(s) the certificates came from.
        roots: private CAs the Edge trusts (imported into its Trusted Root store).
        public_roots: the public CAs (the system store, or ``--public-trust``).
        trust_source: one line naming where ``roots`` and ``public_roots`` came from.
        crls: what each CRL distribution point of the certificates served (None:
            could not be fetched), for rule 8.
    """

    domain: str
    dns_server: str
    dns_source: str
    srv: SrvLookup
    addresses: tuple[AddressLookup, ...]
    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()
    cert_source: str
    roots: tuple[x509.Certificate, ...] = ()
    public_roots: tuple[x509.Certificate, ...] = ()
    trust_source: str
    crls: Mapping[str, bytes | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if normalise_domain(self.srv.name) != srv_name(self.domain):
            raise ValueError(f"srv is the lookup of {self.srv.name!r}, not of {self.domain!r}")

    def address_of(self, host: str) -> AddressLookup | None:
        """The address lookup of ``host`` (case and root dot ignored), if one was made."""
        wanted = normalise_domain(host)
        return next((a for a in self.addresses if normalise_domain(a.name) == wanted), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """How the Skype side is set up, and which directions to predict.

    Attributes:
        skype_domain: the Skype users' SIP domain (the To of an inbound call).
        edge_fqdn: the Access Edge external FQDN: ``source=`` of ms-diagnostics.
        from_user / to_user: user parts of the calling and called URIs.
        hosted: Office 365 rules: the certificate must chain to a public CA.
        directions: which calls to predict.
        rules: the Edge's ``[edge.rules]`` (``--rule``), over the profile's defaults.
        profile: the emulated product (``--profile``): its ``Server`` header.
        peer_port: the port printed in the Edge record's ``Peer:`` (a real record
            shows the Expressway-E's TCP source port, unknown before a call).
    """

    skype_domain: str = "skype.lab"
    edge_fqdn: str = "sip.skype.lab"
    from_user: str = "user"
    to_user: str = "user"
    hosted: bool = False
    directions: tuple[Direction, ...] = DIRECTIONS
    peer_port: int = 5061
    rules: EdgeRules = field(default_factory=EdgeRules)
    profile: ProfileName = DEFAULT_PROFILE

    def __post_init__(self) -> None:
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise ValueError(f"directions must be inbound and/or outbound: {self.directions!r}")
        for what, user in (("from_user", self.from_user), ("to_user", self.to_user)):
            if not _USER.fullmatch(user):
                raise ValueError(f"{what} must be a SIP user part, not {user!r}")
        EdgeSettings(fqdn=self.edge_fqdn, domains=(self.skype_domain,))  # validates both


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleResult:
    """One of Microsoft's rules, judged.

    Attributes:
        number: 1-based, in the order the Edge applies the rules.
        key: stable kebab-case id (JSON, tests).
        title: what the rule requires, one line.
        status: "pass", "fail", "warn" (may fail; Microsoft's behaviour is not
            documented) or "skip" (an earlier rule failed, or not for these directions).
        applies: the directions the rule matters for.
        evidence: what was found, one line each.
    """

    number: int
    key: str
    title: str
    status: Status
    applies: tuple[Direction, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What Skype would answer in one direction.

    Attributes:
        direction: "inbound" (the Expressway-E calls a Skype user) or "outbound".
        call: the call the prediction is about, one line.
        accepted: the call would get through the Edge.
        summary: one line: what happens.
        decision: the Edge's decision for a refusal (status, headers, Edge log
            record), None when accepted.
        edge_log: the formatted Edge log record of a refusal (inbound only: the
            outbound artefact is the client's ms-diagnostics).
        catalogue_fix: the catalogue's generic fix for the code that decided.
    """

    direction: Direction
    call: str
    accepted: bool
    summary: str
    decision: Decision | None
    edge_log: str | None
    catalogue_fix: str | None

    @property
    def fidelity(self) -> Fidelity:
        """How far the predicted wire answer is known to match Microsoft's.

        The Edge log record carries its own fidelity (``decision.edge_log.fidelity``).
        """
        return "verbatim" if self.decision is None else self.decision.fidelity


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The whole preflight: rules, answers, fixes and the verdict."""

    domain: str
    options: CheckOptions
    checked_at: dt.datetime
    dns_server: str
    dns_source: str
    certificate: CertificateFacts
    cert_source: str
    rules: tuple[RuleResult, ...]
    answers: tuple[Answer, ...]
    fixes: tuple[str, ...]

    @property
    def federates(self) -> bool:
        """True when every direction asked for would get through the Edge."""
        return all(a.accepted for a in self.answers)


@dataclass(frozen=True, slots=True)
class _Chains:
    now: ChainVerdict  # at ``now``: validity of leaf and CAs
    path: ChainVerdict  # at a time inside the leaf's window: is the path trusted


@dataclass(frozen=True, slots=True)
class _Ctx:
    facts: CheckFacts
    options: CheckOptions
    now: dt.datetime
    cert: CertificateFacts
    chains: _Chains
    in_domain: tuple[SrvTarget, ...]
    suggestion: str


def build_report(facts: CheckFacts, options: CheckOptions, *, now: dt.datetime) -> Report:
    """Judge every rule and predict the Edge's answers.

    Args:
        facts: what was gathered (DNS answers, certificates, trust anchors).
        options: the Skype side's setup and the directions to predict.
        now: the time to check validity at (aware).

    Returns:
        The report; ``report.federates`` is the verdict.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cert = facts_from_certificate(facts.leaf)
    srv = facts.srv
    in_domain = tuple(t for t in srv.targets if in_exact_domain(t.target, facts.domain))
    ctx = _Ctx(
        facts=facts,
        options=options,
        now=now,
        cert=cert,
        chains=_chains(facts, now),
        in_domain=in_domain,
        suggestion=_suggest_host(facts.domain, cert, srv),
    )
    rules = (
        _rule_srv(ctx),
        _rule_in_domain(ctx),
        _rule_address(ctx),
        _rule_cert_name(ctx),
        _rule_chain(ctx),
        _rule_validity(ctx),
        _rule_eku(ctx),
        _rule_revocation(ctx),
    )
    settings = _settings(options)
    peer = _peer(ctx)
    answers = tuple(
        _inbound(ctx, settings, peer) if d == "inbound" else _outbound(ctx, settings, peer)
        for d in DIRECTIONS
        if d in options.directions
    )
    return Report(
        domain=facts.domain,
        options=options,
        checked_at=now,
        dns_server=facts.dns_server,
        dns_source=facts.dns_source,
        certificate=cert,
        cert_source=facts.cert_source,
        rules=rules,
        answers=answers,
        fixes=_fixes(ctx, rules, answers),
    )


# --- chain ----------------------------------------------------------------------------


def _chains(facts: CheckFacts, now: dt.datetime) -> _Chains:
    """Verify at ``now``, and again inside the leaf's window to judge the path alone.

    verify_chain stops at the leaf's validity window, so for an expired leaf it
    says nothing about trust; the second run answers rule 5 independently of rule 6.
    """
    at_now = verify_chain(
        facts.leaf, facts.intermediates, facts.roots, now=now, public_roots=facts.public_roots
    )
    start, end = facts.leaf.not_valid_before_utc, facts.leaf.not_valid_after_utc
    probe = min(max(now, start), end)
    if probe == now:
        return _Chains(now=at_now, path=at_now)
    path = verify_chain(
        facts.leaf, facts.intermediates, facts.roots, now=probe, public_roots=facts.public_roots
    )
    return _Chains(now=at_now, path=path)


def _path_trusted(verdict: ChainVerdict) -> bool:
    # A CA out of its window is reported only after the path reached an anchor.
    return verdict.status == "trusted" or (
        verdict.status in ("expired", "not-yet-valid") and verdict.root_subject is not None
    )


def _peer(ctx: _Ctx) -> PeerCertificate:
    """The certificate as the Edge's policy sees it (EKU left out: see rule 7)."""
    path, at_now = ctx.chains.path, ctx.chains.now
    chain: Chain
    if not _path_trusted(path):
        chain = path.status
    elif at_now.status in ("expired", "not-yet-valid"):
        chain = at_now.status
    else:
        chain = "trusted"
    return PeerCertificate(
        display_name=ctx.cert.display_name(),
        names=ctx.cert.names_for_matching(),
        chain=chain,
        public_root=path.root_is_public,
        revocation=_revocation(ctx),
    )


def _revocation(ctx: _Ctx) -> RevocationStatus:
    """What the chain's CRLs say, as the Edge's rule looks at them ("unchecked" when off)."""
    at_now = ctx.chains.now
    if ctx.options.rules.revocation == "off" or at_now.status != "trusted":
        return "unchecked"
    return revocation_status(at_now.path, ctx.facts.crls, now=ctx.now)


# --- the rules ------------------------------------------------------------------------


def _srv_line(t: SrvTarget) -> str:
    return f"SRV {t.priority} {t.weight} {t.port} {t.host}"


def _rule_srv(ctx: _Ctx) -> RuleResult:
    srv = ctx.facts.srv
    title = f"SRV {srv_name(ctx.facts.domain)} resolves"
    if srv.outcome == "ok":
        count = len(srv.targets)
        evidence = (
            f"{count} target{'s' if count > 1 else ''} from {ctx.facts.dns_server}, "
            "in the order the Edge tries them (RFC 2782):",
            *(f"  {_srv_line(t)}" for t in srv.targets),
        )
        status: Status = "pass"
    else:
        evidence = (f"{_OUTCOME_TEXT[srv.outcome]} (asked {ctx.facts.dns_server})",)
        status = "fail"
    return RuleResult(
        number=1, key="srv", title=title, status=status, applies=DIRECTIONS, evidence=evidence
    )


def _where(host: str, domain: str) -> str:
    """Why ``host`` is not exactly in ``domain``, in words."""
    h, d = normalise_domain(host), normalise_domain(domain)
    if h == d:
        return f"it is the domain itself, not a host in {d} (undocumented: treated as not in it)"
    if h.endswith("." + d):
        return f"it is in a sub-domain of {d} ({h.split('.', 1)[1]})"
    parent = h.split(".", 1)[1] if "." in h else h
    if d.endswith("." + parent):
        return f"it is in {parent}, a parent domain of {d}"
    return f"it is in another domain ({parent})"


def _rule_in_domain(ctx: _Ctx) -> RuleResult:
    domain = ctx.facts.domain
    title = f"an SRV target is a host exactly in {domain} (one label under it)"
    srv = ctx.facts.srv
    if srv.outcome != "ok":
        return RuleResult(
            number=2,
            key="srv-in-domain",
            title=title,
            status="skip",
            applies=DIRECTIONS,
            evidence=("no SRV targets to judge (rule 1)",),
        )
    lines = []
    for t in srv.targets:
        if t in ctx.in_domain:
            lines.append(f"{t.render()}: in {domain}")
        else:
            lines.append(f"{t.render()}: NOT in {domain}: {_where(t.host, domain)}")
    if not ctx.in_domain:
        lines.append(
            "the Edge refuses targets in sub-domains or other domains even when they resolve"
        )
    return RuleResult(
        number=2,
        key="srv-in-domain",
        title=title,
        status="pass" if ctx.in_domain else "fail",
        applies=DIRECTIONS,
        evidence=tuple(lines),
    )


def _rule_address(ctx: _Ctx) -> RuleResult:
    title = "the in-domain SRV target has an address (A/AAAA)"
    skip = _skip_reason(ctx, "outbound")
    if skip is None and not ctx.in_domain:
        skip = "no SRV target in the domain (rule 2)"
    if skip is not None:
        return RuleResult(
            number=3,
            key="address",
            title=title,
            status="skip",
            applies=("outbound",),
            evidence=(skip,),
        )
    lines = []
    found = 0
    for t in ctx.in_domain:
        lookup = ctx.facts.address_of(t.host)
        if lookup is not None and lookup.outcome == "ok":
            found += 1
            lines.append(f"{t.host}: {', '.join(lookup.addresses)}")
        else:
            outcome = "timeout" if lookup is None else lookup.outcome
            lines.append(f"{t.host}: no address: {_OUTCOME_TEXT[outcome]}")
    status: Status = "pass" if found == len(ctx.in_domain) else ("warn" if found else "fail")
    if status == "warn":
        lines.append("the Edge uses the first target that resolves")
    return RuleResult(
        number=3,
        key="address",
        title=title,
        status=status,
        applies=("outbound",),
        evidence=tuple(lines),
    )


def _names_line(cert: CertificateFacts) -> str:
    if cert.dns_sans:
        line = f"certificate names (DNS SANs): {', '.join(cert.dns_sans)}"
        if cert.subject_cn and not any(
            name_matches(n, cert.subject_cn, allow_wildcard=False) for n in cert.dns_sans
        ):
            line += f" (the CN {cert.subject_cn} does not count: the certificate has DNS SANs)"
        return line
    if cert.subject_cn:
        return f"certificate names (CN, the certificate has no DNS SAN): {cert.subject_cn}"
    return "the certificate has neither a DNS SAN nor a CN"


def _rule_cert_name(ctx: _Ctx) -> RuleResult:
    domain = ctx.facts.domain
    title = "the certificate names the in-domain SRV target (SAN, or CN when no SAN)"
    lines = [_names_line(ctx.cert)]
    if not ctx.in_domain:
        lines.append("no SRV target in the domain to compare with (rule 2)")
        return RuleResult(
            number=4,
            key="cert-name",
            title=title,
            status="skip",
            applies=DIRECTIONS,
            evidence=tuple(lines),
        )
    names = ctx.cert.names_for_matching()
    named = 0
    for t in ctx.in_domain:
        if any(name_matches(n, t.host, allow_wildcard=False) for n in names):
            named += 1
            lines.append(f"{t.host}: in the certificate")
        else:
            line = f"{t.host}: NOT in the certificate"
            if any(name_matches(n, t.host, allow_wildcard=True) for n in names):
                line += (
                    " (only a wildcard covers it: Microsoft does not document accepting a "
                    "peer's wildcard, and Expressway does not support wildcard certificates)"
                )
            lines.append(line)
    lines.append(f"the bare domain {domain} need not be in the certificate")
    total = len(ctx.in_domain)
    status: Status = "pass" if named == total else ("warn" if named else "fail")
    return RuleResult(
        number=4,
        key="cert-name",
        title=title,
        status=status,
        applies=DIRECTIONS,
        evidence=tuple(lines),
    )


def _label(cert: x509.Certificate) -> str:
    facts = facts_from_certificate(cert)
    return facts.display_name()


def _rule_chain(ctx: _Ctx) -> RuleResult:
    hosted = ctx.options.hosted
    title = (
        "the certificate chains to a public CA (hosted: Office 365 trusts no private CA)"
        if hosted
        else "the certificate chains to a CA the Edge trusts"
    )
    path = ctx.chains.path
    sent = ctx.facts.intermediates
    lines = [f"trusted CAs: {ctx.facts.trust_source}"]
    if sent:
        lines.append(f"sent with it: {', '.join(_label(c) for c in sent)}")
    else:
        lines.append("sent with it: no intermediate CA certificates")
    lines.append(path.detail)
    status: Status = "pass" if _path_trusted(path) else "fail"
    if hosted and status == "pass":
        if path.root_is_public:
            lines.append("its root is a public CA, as Office 365 requires")
        else:
            lines.append("its root is not a public CA: Office 365 refuses it")
            status = "fail"
    return RuleResult(
        number=5, key="chain", title=title, status=status, applies=DIRECTIONS, evidence=tuple(lines)
    )


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _rule_validity(ctx: _Ctx) -> RuleResult:
    cert, at_now = ctx.cert, ctx.chains.now
    lines = [
        f"valid from {_utc(cert.not_before)} to {_utc(cert.not_after)}; checked at {_utc(ctx.now)}"
    ]
    status: Status = "pass"
    if at_now.status in ("expired", "not-yet-valid"):
        lines.append(at_now.detail)
        status = "fail"
    elif not _path_trusted(ctx.chains.path):
        lines.append("the CAs' validity cannot be checked without a trusted chain (rule 5)")
    return RuleResult(
        number=6,
        key="validity",
        title="the certificate and its CAs are valid now",
        status=status,
        applies=DIRECTIONS,
        evidence=tuple(lines),
    )


#: The EKU each direction needs: the Expressway-E's TLS role (reference §6, RFC 5280 §4.2.1.12).
_EKU_NEEDS: dict[Direction, tuple[str, str]] = {
    "inbound": ("clientAuth", "inbound: the Expressway-E is the TLS client"),
    "outbound": ("serverAuth", "outbound: the Expressway-E is the TLS server"),
}


def _rule_eku(ctx: _Ctx) -> RuleResult:
    eku = ctx.cert.eku
    lines = [f"Extended Key Usage: {', '.join(eku)}" if eku else "no EKU extension (any usage)"]
    missing = False
    for direction in ctx.options.directions:
        needed, role = _EKU_NEEDS[direction]
        ok = not eku or needed in eku or _ANY_EKU in eku
        missing = missing or not ok
        lines.append(f"{role}: needs {needed}: {'present' if ok else 'MISSING'}")
    require = ctx.options.rules.client_eku == "require"
    inbound_missing = (
        "inbound" in ctx.options.directions
        and bool(eku)
        and "clientAuth" not in eku
        and _ANY_EKU not in eku
    )
    if missing:
        lines.append(
            "Microsoft does not document whether the Edge refuses a peer for its EKU "
            "(unverified, reference §6); this check follows the rule client_eku="
            f"{ctx.options.rules.client_eku}, as fedsim serve does"
            + (": the inbound handshake is refused" if require and inbound_missing else "")
        )
    status: Status = "pass"
    if missing:
        status = "fail" if require and inbound_missing else "warn"
    return RuleResult(
        number=7,
        key="eku",
        title="the certificate's EKU allows its TLS role",
        status=status,
        applies=ctx.options.directions,
        evidence=tuple(lines),
    )


_REVOCATION_WORDS: dict[RevocationStatus, str] = {
    "good": "no certificate of the chain is on its issuer's CRL",
    "revoked": "a certificate of the chain is REVOKED (CRYPT_E_REVOKED)",
    "offline": "a CRL could not be fetched or read (CRYPT_E_REVOCATION_OFFLINE)",
    "no-cdp": "a certificate names no CRL distribution point (CRYPT_E_NO_REVOCATION_CHECK)",
    "unchecked": "not checked",
}


def _rule_revocation(ctx: _Ctx) -> RuleResult:
    mode = ctx.options.rules.revocation
    lines = [
        f"rule revocation = {mode} (KeepCrlsUpToDateForPeers; what the Edge does with an "
        "unreachable CRL is unverified)"
    ]
    for url, data in ctx.facts.crls.items():
        lines.append(f"CRL {url}: {'fetched' if data is not None else 'could not be fetched'}")
    status: Status = "skip"
    if mode != "off" and ctx.chains.now.status == "trusted":
        found = _revocation(ctx)
        lines.append(_REVOCATION_WORDS[found])
        refused = revocation_refusal(_peer(ctx), _settings(ctx.options))
        status = "fail" if refused else ("pass" if found == "good" else "warn")
    elif mode != "off":
        lines.append("needs a trusted chain (rule 5)")
    return RuleResult(
        number=8,
        key="revocation",
        title="no certificate of the chain is revoked (its CRLs can be fetched)",
        status=status,
        applies=DIRECTIONS,
        evidence=tuple(lines),
    )


def _settings(options: CheckOptions) -> EdgeSettings:
    return EdgeSettings(
        fqdn=options.edge_fqdn,
        domains=(options.skype_domain,),
        hosted=options.hosted,
        rules=options.rules,
        profile=options.profile,
        server_header=profile(options.profile).server_header,
    )


def _skip_reason(ctx: _Ctx, direction: Direction) -> str | None:
    if direction in ctx.options.directions:
        return None
    return f"{direction} calls only, and --direction is {ctx.options.directions[0]}"


# --- the answers ----------------------------------------------------------------------


def _catalogue_fix(decision: Decision) -> str | None:
    diagnostics = decision.ms_diagnostics
    if diagnostics is not None:
        code = int(diagnostics.split(";", 1)[0])
        if code in MS_DIAGNOSTICS:
            return MS_DIAGNOSTICS[code].fix
    if decision.edge_log is not None:
        return RESULT_CODES[decision.edge_log.result.symbol].fix
    return None


def _inbound(ctx: _Ctx, settings: EdgeSettings, peer: PeerCertificate) -> Answer:
    o = ctx.options
    to_uri = f"sip:{o.to_user}@{o.skype_domain}"
    call = f"{ctx.facts.domain}'s Expressway-E sends INVITE {to_uri} to the Edge"
    # The TLS layer first, as in fedsim serve: the EKU (rule client_eku), the chain,
    # Office 365's public-CA rule refuse the handshake before any SIP is read.
    eku = ctx.cert.eku
    lacks_client = bool(eku) and "clientAuth" not in eku and _ANY_EKU not in eku
    tls_peer = peer
    if lacks_client and peer.chain == "trusted" and client_usage(settings) == "client":
        tls_peer = dataclasses.replace(peer, chain="wrong-usage")
    refusal = inbound_handshake_refusal(tls_peer, settings)
    if refusal is not None:
        return Answer(
            direction="inbound",
            call=call,
            accepted=False,
            summary=(
                f"refused at the TLS handshake: {refusal}; the Expressway-E sees a TCP reset "
                "and no SIP answer (fedsim serve does the same)"
            ),
            decision=None,
            edge_log=None,
            catalogue_fix=None,
        )
    route = inbound_route(Parties(sender=ctx.facts.domain), settings)
    decision = decide_inbound(route, peer, ctx.facts.srv, settings)
    if decision.accepted:
        return Answer(
            direction="inbound",
            call=call,
            accepted=True,
            summary=f"accepted: the Edge routes the INVITE to {to_uri} (who answers 180/200)",
            decision=None,
            edge_log=None,
            catalogue_fix=None,
        )
    assert decision.edge_log is not None  # every refusal carries one (Decision invariant)
    log = LogContext(
        machine=EDGE_MACHINE,
        pid=0,
        tid=0,
        when=ctx.now,
        seq=1,
        correlation_id=0,
        start_line=f"INVITE {to_uri} SIP/2.0",
        call_id=CHECK_CALL_ID,
        cseq=CHECK_CSEQ,
        peer=f"{peer.display_name}:{o.peer_port}",
    )
    return Answer(
        direction="inbound",
        call=call,
        accepted=False,
        summary=f"refused: {decision.explanation}",
        decision=decision,
        edge_log=format_edge_log(decision.edge_log, log),
        catalogue_fix=_catalogue_fix(decision),
    )


def _outbound(ctx: _Ctx, settings: EdgeSettings, peer: PeerCertificate) -> Answer:
    domain = ctx.facts.domain
    call = f"a Skype user calls sip:{ctx.options.from_user}@{domain}"
    decision = _outbound_decision(ctx, settings, peer)
    if isinstance(decision, Decision):
        return Answer(
            direction="outbound",
            call=call,
            accepted=False,
            summary=f"refused: {decision.explanation}",
            decision=decision,
            edge_log=None,
            catalogue_fix=_catalogue_fix(decision),
        )
    target, addresses = decision
    return Answer(
        direction="outbound",
        call=call,
        accepted=True,
        summary=(
            f"accepted: the Edge would connect to {target.render()} ({', '.join(addresses)}) "
            "over mutual TLS and forward the INVITE"
        ),
        decision=None,
        edge_log=None,
        catalogue_fix=None,
    )


def _outbound_decision(
    ctx: _Ctx, settings: EdgeSettings, peer: PeerCertificate
) -> Decision | tuple[SrvTarget, tuple[str, ...]]:
    """Run the Edge's outbound steps O4-O10 on the gathered facts; first refusal wins."""
    domain = ctx.facts.domain
    route = outbound_route(domain, settings)
    if isinstance(route, Decision):
        return route
    after = outbound_after_srv(domain, ctx.facts.srv, settings)
    if isinstance(after, Decision):
        return after
    for target in after:
        lookup = ctx.facts.address_of(target.host)
        if lookup is not None and lookup.outcome == "ok":
            refusal = outbound_check_peer(domain, target.host, peer, settings)
            return refusal if refusal is not None else (target, lookup.addresses)
    return outbound_no_address(domain, after[0].host, settings)


# --- what to change -------------------------------------------------------------------


def _suggest_host(domain: str, cert: CertificateFacts, srv: SrvLookup) -> str:
    """The Expressway-E name to publish in ``domain``.

    A certificate name already exactly in the domain; else the first label of
    the current SRV target or of the certificate's name under the domain
    (vcse.steven.lab -> vcse.acano.steven.lab, as the Cisco note fixes it).
    """
    for name in cert.names_for_matching():
        if not name.startswith("*") and in_exact_domain(name, domain):
            return normalise_domain(name)
    if srv.targets:
        label = srv.targets[0].host.split(".", 1)[0]
    else:
        label = cert.display_name().split(".", 1)[0]
    if not re.fullmatch(r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?", label):
        label = "expe"
    return f"{label.lower()}.{normalise_domain(domain)}"


def _cert_has(ctx: _Ctx, host: str) -> bool:
    return any(name_matches(n, host, allow_wildcard=False) for n in ctx.cert.names_for_matching())


def _add_to_cert(ctx: _Ctx, host: str) -> str:
    if _cert_has(ctx, host):
        return ""
    return f", and add {host} to the Expressway-E certificate's SANs"


def _fixes(
    ctx: _Ctx, rules: tuple[RuleResult, ...], answers: tuple[Answer, ...]
) -> tuple[str, ...]:
    facts, domain, host = ctx.facts, ctx.facts.domain, ctx.suggestion
    srv = facts.srv
    name = srv_name(domain)
    fixes: list[str] = []
    status = {r.key: r.status for r in rules}
    if status["srv"] == "fail":
        if srv.outcome in ("nxdomain", "nodata"):
            fixes.append(
                f"publish '{name}. IN SRV 0 0 5061 {host}.' in {domain}'s public DNS, with an "
                f"A record for {host} -> the Expressway-E's public address"
                + _add_to_cert(ctx, host)
            )
        else:
            server_host, _, port = facts.dns_server.rpartition(":")
            fixes.append(
                f"the DNS server {facts.dns_server} answered {srv.outcome.upper()} for {name}: "
                f"check it serves {domain} (dig @{server_host.strip('[]')} -p {port} {name} SRV) "
                "and that the Edge can reach DNS on TCP/UDP 53"
            )
    if status["srv-in-domain"] == "fail":
        now_at = ", ".join(t.host for t in srv.targets)
        fixes.append(
            f"point {name} at {host} (a host directly in {domain}, instead of {now_at}) with "
            f"an A record for {host} -> the Expressway-E" + _add_to_cert(ctx, host)
        )
    if status["address"] in ("fail", "warn"):
        for t in ctx.in_domain:
            lookup = facts.address_of(t.host)
            if lookup is None or lookup.outcome != "ok":
                fixes.append(
                    f"publish an A (or AAAA) record for {t.host} -> the Expressway-E's public "
                    "address"
                )
    if status["cert-name"] in ("fail", "warn"):
        others = [
            n
            for n in ctx.cert.names_for_matching()
            if in_exact_domain(n, domain) and not n.startswith("*")
        ]
        for t in ctx.in_domain:
            if _cert_has(ctx, t.host):
                continue
            fix = f"add {t.host} to the Expressway-E certificate's SANs and reissue it"
            cn = ctx.cert.subject_cn
            if ctx.cert.dns_sans and cn and normalise_domain(cn) == t.host:
                fix += " (its CN says so, but a certificate with DNS SANs is matched on them)"
            if others:
                fix += f", or point {name} at {others[0]}, which the certificate already names"
            fixes.append(fix)
    fixes.extend(_trust_fixes(ctx, status))
    if status["eku"] == "warn":
        fixes.append(
            "if the Edge refuses the TLS handshake, reissue the certificate with both serverAuth "
            "and clientAuth EKUs (the Expressway-E is TLS server outbound and client inbound); "
            "public CAs are dropping clientAuth from TLS certificates in 2026"
        )
    if not fixes:
        # A refusal no rule explains (should not happen): say what the Edge said.
        fixes.extend(a.summary for a in answers if not a.accepted)
    return tuple(dict.fromkeys(fixes))


def _trust_fixes(ctx: _Ctx, status: dict[str, Status]) -> list[str]:
    fixes: list[str] = []
    path, at_now = ctx.chains.path, ctx.chains.now
    if status["chain"] == "fail":
        if _path_trusted(path):  # hosted and private
            fixes.append(
                "Office 365 (hosted) trusts only public CAs: reissue the Expressway-E certificate "
                f"from a public CA (it now chains to {path.root_subject})"
            )
        elif path.status == "untrusted-root" and ctx.options.hosted:
            fixes.append(
                "Office 365 (hosted) trusts only public CAs: reissue the Expressway-E certificate "
                f"from a public CA (its issuer {path.root_subject} is not one)"
            )
        elif path.status == "untrusted-root":
            fixes.append(
                f"make the Edge trust the issuer {path.root_subject}: import its root CA into the "
                "Edge's Trusted Root store (here: --trust ROOT.pem) or reissue the certificate "
                "from a public CA; if the issuer is an intermediate, the Expressway-E must send "
                "it (here: --chain)"
            )
        else:
            fixes.append(f"fix the certificate chain: {path.detail}")
    if status["validity"] == "fail":
        if at_now.status == "expired":
            fixes.append(f"renew the certificate: {at_now.detail}")
        else:
            fixes.append(f"check the clocks or wait: {at_now.detail}")
    return fixes
