"""Invariants of the inbound decision over generated labs."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from simulator.policy import (
    INBOUND_RULE_NAMES,
    AllowedDomain,
    Decision,
    EdgeRules,
    EdgeSettings,
    InboundRoute,
    Parties,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    decide_inbound,
    inbound_route,
)
from simulator.policy.facts import Chain, SrvOutcome

# A small vocabulary of names so that matches and mismatches both happen often.
DOMAINS = ("acano.steven.lab", "cms.steven.lab", "steven.lab", "example.com")
HOSTS = (
    "vcse.acano.steven.lab",
    "vcse.steven.lab",
    "vcse.sub.acano.steven.lab",
    "vcse.cms.steven.lab",
    "acano.steven.lab",
    "expe.example.com",
    "*.acano.steven.lab",
)
CHAINS: tuple[Chain, ...] = (
    "trusted",
    "untrusted-root",
    "expired",
    "not-yet-valid",
    "wrong-usage",
    "bad-chain",
)
OUTCOMES: tuple[SrvOutcome, ...] = ("ok", "nxdomain", "nodata", "servfail", "refused", "timeout")


@st.composite
def settings(draw: st.DrawFn) -> EdgeSettings:
    blocked = tuple(draw(st.sets(st.sampled_from(DOMAINS), max_size=1)))
    allowed_domains = draw(st.sets(st.sampled_from(DOMAINS), max_size=2)) - set(blocked)
    allowed = tuple(
        AllowedDomain(domain=d, proxy_fqdn=draw(st.none() | st.sampled_from(HOSTS[:4])))
        for d in sorted(allowed_domains)
    )
    return EdgeSettings(
        fqdn="sip.skype.lab",
        domains=("skype.lab",),
        federation=draw(st.sampled_from(("discovery", "allowlist", "off"))),
        blocked=blocked,
        allowed=allowed,
        hosted=draw(st.booleans()),
        rules=EdgeRules(
            domain_source=draw(st.sampled_from(("pai", "from"))),
            srv_target_equal_to_domain=draw(st.booleans()),
            peer_wildcard=draw(st.booleans()),
            block_subdomains=draw(st.booleans()),
            client_eku=draw(st.sampled_from(("require", "ignore"))),
            send_diagnostics_to_partners=draw(st.booleans()),
        ),
    )


@dataclass(frozen=True)
class InboundCase:
    """The arguments of one inbound decision (besides the settings)."""

    route: InboundRoute
    peer: PeerCertificate
    srv: SrvLookup | None


def decide(case: InboundCase, edge: EdgeSettings) -> Decision:
    return decide_inbound(case.route, case.peer, case.srv, edge)


@st.composite
def facts_for(draw: st.DrawFn, edge: EdgeSettings) -> InboundCase:
    from_domain = draw(st.sampled_from(DOMAINS))
    pai_domain = draw(st.none() | st.sampled_from(DOMAINS))
    route = inbound_route(Parties(sender=from_domain, asserted=pai_domain), edge)
    cn = draw(st.none() | st.sampled_from(HOSTS))
    sans = tuple(draw(st.lists(st.sampled_from(HOSTS), max_size=3, unique=True)))
    if cn is None and not sans:
        cn = HOSTS[0]
    peer = PeerCertificate.from_subject(
        cn=cn,
        dns_sans=sans,
        chain=draw(st.sampled_from(CHAINS)),
        public_root=draw(st.booleans()),
    )
    srv = None
    if (name := route.srv_name) is not None:
        outcome = draw(st.sampled_from(OUTCOMES))
        targets: tuple[SrvTarget, ...] = ()
        if outcome == "ok":
            hosts = draw(st.lists(st.sampled_from(HOSTS[:6]), min_size=1, max_size=3))
            targets = tuple(SrvTarget(target=h + ".", port=5061) for h in hosts)
        srv = SrvLookup(name=name, outcome=outcome, targets=targets)
    return InboundCase(route=route, peer=peer, srv=srv)


@st.composite
def labs(draw: st.DrawFn) -> tuple[InboundCase, EdgeSettings]:
    edge = draw(settings())
    return draw(facts_for(edge)), edge


@given(labs())
def test_decide_inbound_is_deterministic(lab: tuple[InboundCase, EdgeSettings]) -> None:
    facts, edge = lab
    assert decide(facts, edge) == decide(facts, edge)


@given(labs())
def test_accepted_iff_rule_is_accepted(lab: tuple[InboundCase, EdgeSettings]) -> None:
    decision = decide(*lab)
    assert decision.accepted == (decision.rule == "accepted")
    assert decision.rule in INBOUND_RULE_NAMES


@given(labs())
def test_a_refusal_has_a_status_a_log_and_diagnostics_only_when_sent_to_partners(
    lab: tuple[InboundCase, EdgeSettings],
) -> None:
    facts, edge = lab
    decision = decide(facts, edge)
    if decision.accepted:
        assert decision.status == 200
        assert decision.edge_log is None
        return
    assert decision.status >= 400
    assert decision.edge_log is not None
    assert decision.headers[-1] == ("Server", edge.server_header)
    assert decision.domain == facts.route.domain
    if not edge.rules.send_diagnostics_to_partners:
        # Diagnostics do not cross federation by default (reference §3.1, §3.3).
        assert decision.headers == (("Server", edge.server_header),)
        assert decision.ms_diagnostics is None
    elif decision.ms_diagnostics is not None:
        # What the client would get is inferred on a peer-facing answer: never verbatim.
        assert decision.fidelity != "verbatim"
        assert decision.ms_diagnostics.endswith(f'source="{edge.fqdn}"')


@given(labs())
def test_verbatim_log_records_only_for_the_seed_codes(
    lab: tuple[InboundCase, EdgeSettings],
) -> None:
    decision = decide(*lab)
    if decision.edge_log is None:
        return
    result = decision.edge_log.result
    if result.hex == "0x00000000":
        assert result.symbol.startswith("EMU_UNVERIFIED_")
        assert decision.edge_log.fidelity == "inferred"
    else:
        assert decision.rule in ("srv-not-in-domain", "cert-mismatch")


@given(labs())
def test_accepted_peers_name_an_in_domain_target_or_the_pinned_server(
    lab: tuple[InboundCase, EdgeSettings],
) -> None:
    facts, edge = lab
    decision = decide(facts, edge)
    if not decision.accepted:
        return
    assert edge.federation != "off"
    assert facts.peer.chain == "trusted"
    assert not (edge.hosted and not facts.peer.public_root)
    entry = edge.allowed_entry(decision.domain)
    if entry is not None and entry.proxy_fqdn is not None:
        assert facts.srv is None
    else:
        assert facts.srv is not None
        assert facts.srv.outcome == "ok"
