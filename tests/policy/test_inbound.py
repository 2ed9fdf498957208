"""Inbound decisions: one table per rule, from the DESIGN and seed names."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.policy import (
    INBOUND_RULE_NAMES,
    AllowedDomain,
    Decision,
    EdgeRules,
    EdgeSettings,
    Parties,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    decide_inbound,
    inbound_log_peer,
    inbound_route,
)
from simulator.policy.facts import Chain, DomainSource, SrvOutcome
from simulator.sip import SipUri, parse_uri

EDGE = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
SERVER = (("Server", "RTC/6.0"),)


def request(from_uri: str = "sip:2000@acano.steven.lab", pai_uri: str | None = None) -> Parties:
    """The caller as screening finds it: the hosts of From and P-Asserted-Identity."""

    def host(uri: str) -> str:
        parsed = parse_uri(uri)
        assert isinstance(parsed, SipUri)
        return parsed.host.lower()

    return Parties(sender=host(from_uri), asserted=host(pai_uri) if pai_uri else None)


def cert(
    *sans: str,
    cn: str | None = "vcse.steven.lab",
    chain: Chain = "trusted",
    public_root: bool = True,
) -> PeerCertificate:
    return PeerCertificate.from_subject(cn=cn, dns_sans=sans, chain=chain, public_root=public_root)


def srv(domain: str, *targets: str, outcome: SrvOutcome = "ok") -> SrvLookup:
    return SrvLookup(
        name=f"_sipfederationtls._tcp.{domain}",
        outcome=outcome,
        targets=tuple(SrvTarget(target=t, port=5061) for t in targets),
    )


@dataclasses.dataclass(frozen=True)
class Facts:
    parties: Parties
    peer: PeerCertificate
    srv: SrvLookup | None


def facts(
    peer: PeerCertificate,
    lookup: SrvLookup | None,
    req: Parties | None = None,
) -> Facts:
    return Facts(parties=req or request(), peer=peer, srv=lookup)


def decide(f: Facts, settings: EdgeSettings) -> Decision:
    """Route, then decide: the two pure steps the Edge runs on every request."""
    return decide_inbound(inbound_route(f.parties, settings), f.peer, f.srv, settings)


GOOD_CERT = cert("vcse.acano.steven.lab", "vcse.steven.lab")
GOOD_SRV = srv("acano.steven.lab", "vcse.acano.steven.lab.")


def test_the_design_example_is_accepted() -> None:
    decision = decide(facts(GOOD_CERT, GOOD_SRV), EDGE)
    assert decision.accepted
    assert decision.rule == "accepted"
    assert decision.status == 200
    assert decision.edge_log is None
    assert decision.domain == "acano.steven.lab"


# --- srv-not-in-domain ([CISCO] S1) ------------------------------------------------


@pytest.mark.parametrize(
    ("targets", "rule", "data"),
    [
        (("vcse.acano.steven.lab",), "accepted", None),
        # The seed: SRV of the CMS domain points to the UC domain's Expressway-E.
        (
            ("vcse.steven.lab.",),
            "srv-not-in-domain",
            (("domain", "acano.steven.lab"), ("fqdn1", "vcse.steven.lab:5061")),
        ),
        (
            ("vcse.sub.acano.steven.lab",),
            "srv-not-in-domain",
            (("domain", "acano.steven.lab"), ("fqdn1", "vcse.sub.acano.steven.lab:5061")),
        ),
        # Several targets: one in the domain is enough.
        (("vcse.steven.lab", "vcse.acano.steven.lab"), "accepted", None),
        # Several bad targets: every one listed, in SRV order.
        (
            ("vcse.sub.acano.steven.lab", "vcse.steven.lab"),
            "srv-not-in-domain",
            (
                ("domain", "acano.steven.lab"),
                ("fqdn1", "vcse.sub.acano.steven.lab:5061"),
                ("fqdn2", "vcse.steven.lab:5061"),
            ),
        ),
        (
            ("acano.steven.lab",),
            "srv-not-in-domain",
            (("domain", "acano.steven.lab"), ("fqdn1", "acano.steven.lab:5061")),
        ),
    ],
)
def test_srv_targets_must_sit_exactly_in_the_domain(
    targets: tuple[str, ...], rule: str, data: tuple[tuple[str, str], ...] | None
) -> None:
    peer = cert(*(t.rstrip(".") for t in targets), "vcse.acano.steven.lab")
    decision = decide(facts(peer, srv("acano.steven.lab", *targets)), EDGE)
    assert decision.rule == rule
    if data is None:
        return
    assert (decision.status, decision.reason) == (504, "Server time-out")
    assert decision.headers == SERVER  # bare 504: no ms-diagnostics towards the peer
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == (
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    )
    assert decision.edge_log.result.hex == "0xc3e93d6f"
    assert decision.edge_log.data == data


def test_seed_no_srv_match_is_verbatim_and_several_targets_are_inferred() -> None:
    one = decide(facts(GOOD_CERT, srv("acano.steven.lab", "vcse.steven.lab")), EDGE)
    two = decide(facts(GOOD_CERT, srv("acano.steven.lab", "vcse.steven.lab", "b.steven.lab")), EDGE)
    assert one.edge_log is not None
    assert two.edge_log is not None
    assert (one.fidelity, one.edge_log.fidelity) == ("verbatim", "verbatim")
    assert (two.fidelity, two.edge_log.fidelity) == ("verbatim", "inferred")


def test_target_equal_to_domain_is_configurable_and_marked_unverified() -> None:
    lookup = srv("acano.steven.lab", "acano.steven.lab")
    peer = cert("acano.steven.lab")
    refused = decide(facts(peer, lookup), EDGE)
    assert refused.rule == "srv-not-in-domain"
    assert refused.fidelity == "unverified"
    lenient = dataclasses.replace(EDGE, rules=EdgeRules(srv_target_equal_to_domain=True))
    assert decide(facts(peer, lookup), lenient).accepted


# --- cert-mismatch ([CISCO] S3) --------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "rule"),
    [
        (cert("vcse.acano.steven.lab"), "accepted"),
        # The seed: SAN list lacks the SRV target; certName is the CN.
        (cert("vcse.steven.lab"), "cert-mismatch"),
        # CN-only certificate: the CN is matched.
        (cert(cn="vcse.acano.steven.lab"), "accepted"),
        # CN is ignored when the certificate has DNS SANs.
        (cert("vcse.steven.lab", cn="vcse.acano.steven.lab"), "cert-mismatch"),
        # The bare domain need not (and does not) help.
        (cert("acano.steven.lab"), "cert-mismatch"),
        (cert("VCSE.ACANO.STEVEN.LAB"), "accepted"),
        (cert("*.acano.steven.lab"), "cert-mismatch"),  # peer wildcard: U, off
    ],
)
def test_certificate_must_name_an_in_domain_srv_target(peer: PeerCertificate, rule: str) -> None:
    assert decide(facts(peer, GOOD_SRV), EDGE).rule == rule


def test_seed_cert_mismatch_record() -> None:
    decision = decide(facts(cert("vcse.steven.lab"), GOOD_SRV), EDGE)
    assert (decision.status, decision.headers, decision.fidelity) == (504, SERVER, "verbatim")
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"
    assert decision.edge_log.result.severity == "error"
    assert decision.edge_log.data == (
        ("expected-fqdn", "vcse.acano.steven.lab"),
        ("certName", "vcse.steven.lab"),
        ("info", "The peer certificate does not contain a matching FQDN"),
    )


def test_cert_mismatch_expects_the_first_in_domain_target_and_accepts_any() -> None:
    lookup = srv("acano.steven.lab", "vcse.steven.lab", "a.acano.steven.lab", "b.acano.steven.lab")
    refused = decide(facts(cert("other.lab"), lookup), EDGE)
    assert refused.edge_log is not None
    assert refused.edge_log.data[0] == ("expected-fqdn", "a.acano.steven.lab")
    assert decide(facts(cert("b.acano.steven.lab"), lookup), EDGE).accepted


def test_peer_wildcard_is_a_setting() -> None:
    wild = dataclasses.replace(EDGE, rules=EdgeRules(peer_wildcard=True))
    assert decide(facts(cert("*.acano.steven.lab"), GOOD_SRV), wild).accepted


# --- sender domain: PAI vs From --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "from_uri", "pai_uri", "domain"),
    [
        ("pai", "sip:a@steven.lab", "sip:a@acano.steven.lab", "acano.steven.lab"),
        ("pai", "sip:a@Acano.Steven.Lab", None, "acano.steven.lab"),
        ("from", "sip:a@steven.lab", "sip:a@acano.steven.lab", "steven.lab"),
    ],
)
def test_sender_domain_comes_from_pai_or_from(
    source: DomainSource, from_uri: str, pai_uri: str | None, domain: str
) -> None:
    settings = dataclasses.replace(EDGE, rules=EdgeRules(domain_source=source))
    req = request(from_uri, pai_uri)
    assert inbound_route(req, settings).domain == domain
    assert inbound_route(req, settings).srv_name == f"_sipfederationtls._tcp.{domain}"
    decision = decide(facts(GOOD_CERT, srv(domain, f"vcse.{domain}"), req), settings)
    assert decision.domain == domain


def test_pai_domain_decides_the_srv_check() -> None:
    req = request("sip:2000@steven.lab", "sip:2000@acano.steven.lab")
    decision = decide(facts(GOOD_CERT, srv("acano.steven.lab", "vcse.steven.lab"), req), EDGE)
    assert decision.rule == "srv-not-in-domain"
    assert decision.domain == "acano.steven.lab"


# --- policy: federation off, blocked, allow-list -----------------------------------


@pytest.mark.parametrize(
    ("settings", "domain", "rule", "symbol"),
    [
        (
            dataclasses.replace(EDGE, federation="off"),
            "acano.steven.lab",
            "federation-off",
            "EMU_UNVERIFIED_FEDERATION_DISABLED",
        ),
        (
            dataclasses.replace(EDGE, blocked=("steven.lab",)),
            "acano.steven.lab",
            "blocked-domain",
            "EMU_UNVERIFIED_BLOCKED_DOMAIN",
        ),
        (
            dataclasses.replace(EDGE, blocked=("acano.steven.lab",)),
            "acano.steven.lab",
            "blocked-domain",
            "EMU_UNVERIFIED_BLOCKED_DOMAIN",
        ),
        (
            dataclasses.replace(EDGE, federation="allowlist"),
            "acano.steven.lab",
            "domain-not-allowed",
            "EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
        ),
        (
            dataclasses.replace(
                EDGE, federation="allowlist", allowed=(AllowedDomain(domain="steven.lab"),)
            ),
            "acano.steven.lab",  # allowed entries are exact, not suffixes
            "domain-not-allowed",
            "EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
        ),
    ],
)
def test_policy_refusals_need_no_dns_and_are_unverified_403s(
    settings: EdgeSettings, domain: str, rule: str, symbol: str
) -> None:
    req = request(f"sip:2000@{domain}")
    assert inbound_route(req, settings).srv_name is None
    decision = decide(facts(GOOD_CERT, None, req), settings)
    assert decision.rule == rule
    assert (decision.status, decision.reason) == (403, "Forbidden")
    assert decision.headers == SERVER
    assert decision.fidelity == "unverified"
    assert "unverified" in decision.explanation
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == symbol
    assert decision.edge_log.result.hex == "0x00000000"


def test_blocked_parent_does_not_block_unrelated_domains() -> None:
    settings = dataclasses.replace(EDGE, blocked=("steven.lab",))
    req = request("sip:2000@acano.example.lab")
    decision = decide(
        facts(
            cert("vcse.acano.example.lab"), srv("acano.example.lab", "vcse.acano.example.lab"), req
        ),
        settings,
    )
    assert decision.accepted


def test_allowlisted_domain_without_proxy_still_uses_srv() -> None:
    settings = dataclasses.replace(
        EDGE, federation="allowlist", allowed=(AllowedDomain(domain="acano.steven.lab"),)
    )
    assert inbound_route(request(), settings).srv_name == "_sipfederationtls._tcp.acano.steven.lab"
    assert decide(facts(GOOD_CERT, GOOD_SRV), settings).accepted
    bad = decide(facts(GOOD_CERT, srv("acano.steven.lab", "vcse.steven.lab")), settings)
    assert bad.rule == "srv-not-in-domain"


# --- allowed partner server (ProxyFqdn) -------------------------------------------


PINNED = dataclasses.replace(
    EDGE, allowed=(AllowedDomain(domain="acano.steven.lab", proxy_fqdn="vcse.steven.lab"),)
)


@pytest.mark.parametrize(
    ("peer", "rule"),
    [
        (cert("vcse.steven.lab"), "accepted"),  # pinned server: SRV rule bypassed
        (cert(cn="vcse.steven.lab"), "accepted"),
        (cert("vcse.acano.steven.lab"), "proxy-fqdn-mismatch"),
        (cert("vcse.steven.lab", chain="expired"), "cert-expired"),  # trust still checked
    ],
)
def test_allowed_partner_server_must_be_the_pinned_fqdn(peer: PeerCertificate, rule: str) -> None:
    assert inbound_route(request(), PINNED).srv_name is None
    decision = decide(facts(peer, None), PINNED)
    assert decision.rule == rule


def test_proxy_fqdn_mismatch_is_a_bare_504() -> None:
    decision = decide(facts(cert("vcse.acano.steven.lab", cn="x.lab"), None), PINNED)
    assert (decision.status, decision.headers, decision.fidelity) == (504, SERVER, "unverified")
    assert decision.edge_log is not None
    assert decision.edge_log.data == (
        ("domain", "acano.steven.lab"),
        ("proxy-fqdn", "vcse.steven.lab"),
        ("certName", "x.lab"),
    )


# --- SRV lookup failures ----------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "rule", "symbol"),
    [
        ("nxdomain", "srv-nxdomain", "EMU_UNVERIFIED_NO_SRV"),
        ("nodata", "srv-nodata", "EMU_UNVERIFIED_NO_SRV"),
        ("servfail", "srv-servfail", "EMU_UNVERIFIED_DNS_FAILURE"),
        ("refused", "srv-refused", "EMU_UNVERIFIED_DNS_FAILURE"),
        ("timeout", "srv-timeout", "EMU_UNVERIFIED_DNS_FAILURE"),
    ],
)
def test_srv_lookup_failures_each_have_their_rule(
    outcome: SrvOutcome, rule: str, symbol: str
) -> None:
    decision = decide(facts(GOOD_CERT, srv("acano.steven.lab", outcome=outcome)), EDGE)
    assert decision.rule == rule
    assert (decision.status, decision.headers, decision.fidelity) == (504, SERVER, "inferred")
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == symbol
    assert decision.edge_log.data == (
        ("domain", "acano.steven.lab"),
        ("srv", "_sipfederationtls._tcp.acano.steven.lab"),
        ("dns-result", outcome.upper()),
    )


def test_missing_or_wrong_srv_facts_are_a_caller_bug() -> None:
    with pytest.raises(ValueError, match=r"facts\.srv is None"):
        decide(facts(GOOD_CERT, None), EDGE)
    with pytest.raises(ValueError, match=r"cms\.steven\.lab"):
        decide(facts(GOOD_CERT, srv("cms.steven.lab", "vcse.cms.steven.lab")), EDGE)


# --- chain and validity ------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "peer", "rule", "symbol"),
    [
        (EDGE, cert("vcse.acano.steven.lab", chain="untrusted-root"), "untrusted-root",
         "EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT"),
        # Hosted (Office 365): a private root is refused even when the Edge trusts it.
        (dataclasses.replace(EDGE, hosted=True),
         cert("vcse.acano.steven.lab", public_root=False), "untrusted-root",
         "EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT"),
        (dataclasses.replace(EDGE, hosted=True),
         cert("vcse.acano.steven.lab", public_root=False, chain="expired"), "untrusted-root",
         "EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT"),
        (EDGE, cert("vcse.acano.steven.lab", chain="expired"), "cert-expired",
         "EMU_UNVERIFIED_CERT_EXPIRED"),
        (EDGE, cert("vcse.acano.steven.lab", chain="not-yet-valid"), "cert-not-yet-valid",
         "EMU_UNVERIFIED_CERT_NOT_YET_VALID"),
        (EDGE, cert("vcse.acano.steven.lab", chain="wrong-usage"), "cert-wrong-usage",
         "EMU_UNVERIFIED_CERT_WRONG_USAGE"),
        (EDGE, cert("vcse.acano.steven.lab", chain="bad-chain"), "cert-bad-chain",
         "EMU_UNVERIFIED_CERT_BAD_CHAIN"),
    ],
)  # fmt: skip
def test_certificate_trust_and_validity(
    settings: EdgeSettings, peer: PeerCertificate, rule: str, symbol: str
) -> None:
    decision = decide(facts(peer, GOOD_SRV), settings)
    assert decision.rule == rule
    assert (decision.status, decision.headers, decision.fidelity) == (504, SERVER, "unverified")
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == symbol


def test_hosted_edge_accepts_a_public_root() -> None:
    hosted = dataclasses.replace(EDGE, hosted=True)
    assert decide(facts(GOOD_CERT, GOOD_SRV), hosted).accepted


# --- order: the first failing rule wins --------------------------------------------


@pytest.mark.parametrize(
    ("settings", "peer", "lookup", "rule"),
    [
        # Off beats blocked beats everything.
        (dataclasses.replace(EDGE, federation="off", blocked=("steven.lab",)), cert("x.lab"),
         None, "federation-off"),
        (dataclasses.replace(EDGE, federation="allowlist", blocked=("steven.lab",)),
         cert("x.lab"), None, "blocked-domain"),
        # SRV before certificate: the seed shows the NO_SRV_MATCH record for a cert that
        # would not match either.
        (EDGE, cert("x.lab", chain="expired"), srv("acano.steven.lab", "vcse.steven.lab"),
         "srv-not-in-domain"),
        (EDGE, cert("x.lab", chain="untrusted-root"), GOOD_SRV, "cert-mismatch"),
        (EDGE, cert("x.lab"), srv("acano.steven.lab", outcome="timeout"), "srv-timeout"),
    ],
)  # fmt: skip
def test_rules_run_in_microsofts_order(
    settings: EdgeSettings, peer: PeerCertificate, lookup: SrvLookup | None, rule: str
) -> None:
    assert decide(facts(peer, lookup), settings).rule == rule


def test_every_rule_name_is_listed_in_order() -> None:
    assert INBOUND_RULE_NAMES[-1] == "accepted"
    assert len(set(INBOUND_RULE_NAMES)) == len(INBOUND_RULE_NAMES)


def test_log_peer_is_certificate_name_and_source_port() -> None:
    assert inbound_log_peer(cert("vcse.steven.lab"), 25002) == "vcse.steven.lab:25002"


def test_decision_refuses_inconsistent_values() -> None:
    with pytest.raises(ValueError, match="Server"):
        Decision(
            rule="cert-mismatch",
            accepted=False,
            status=504,
            reason="Server time-out",
            domain="a.lab",
            headers=(),
            edge_log=decide(facts(cert("x.lab"), GOOD_SRV), EDGE).edge_log,
            fidelity="verbatim",
            explanation="x",
        )
    with pytest.raises(ValueError, match="accepted"):
        Decision(
            rule="accepted",
            accepted=False,
            status=504,
            reason="x",
            domain="a.lab",
            headers=SERVER,
            edge_log=None,
            fidelity="verbatim",
            explanation="x",
        )
