"""Product profiles and rules: every value sourced, every rule changes exactly its behaviour."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.diagnostics import MS_DIAGNOSTICS
from simulator.policy import (
    PROFILES,
    RULE_NAMES,
    Decision,
    EdgeRules,
    EdgeSettings,
    Parties,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    client_usage,
    decide_inbound,
    inbound_handshake_refusal,
    inbound_route,
    profile,
    rule_assignments,
    rule_value,
    version_refusal,
    with_rules,
)
from simulator.policy.facts import Chain, SrvOutcome
from simulator.policy.profiles import (
    RULE_VALUES,
    TLS_VERSIONS,
    TlsVersion,
    negotiated_version,
)

EDGE = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))


@dataclasses.dataclass(frozen=True)
class Facts:
    parties: Parties
    peer: PeerCertificate
    srv: SrvLookup | None


def request(from_host: str = "acano.steven.lab", pai_host: str | None = None) -> Parties:
    return Parties(sender=from_host, asserted=pai_host)


def cert(
    *sans: str, cn: str | None = "vcse.steven.lab", chain: Chain = "trusted"
) -> PeerCertificate:
    return PeerCertificate.from_subject(cn=cn, dns_sans=sans, chain=chain, public_root=True)


def srv(domain: str, *targets: str, outcome: SrvOutcome = "ok") -> SrvLookup:
    return SrvLookup(
        name=f"_sipfederationtls._tcp.{domain}",
        outcome=outcome,
        targets=tuple(SrvTarget(target=t, port=5061) for t in targets),
    )


def facts(peer: PeerCertificate, lookup: SrvLookup | None, req: Parties | None = None) -> Facts:
    return Facts(parties=req or request(), peer=peer, srv=lookup)


def decide(f: Facts, settings: EdgeSettings) -> Decision:
    return decide_inbound(inbound_route(f.parties, settings), f.peer, f.srv, settings)


GOOD_CERT = cert("vcse.acano.steven.lab", "vcse.steven.lab")
GOOD_SRV = srv("acano.steven.lab", "vcse.acano.steven.lab.")


def with_rule(**changes: object) -> EdgeSettings:
    return dataclasses.replace(EDGE, rules=with_rules(EDGE.rules, dict(changes)))


# -- the table ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_value_has_a_tag_and_a_source(name: str) -> None:
    p = PROFILES[name]  # type: ignore[index]
    assert set(p.rule_sources) == set(RULE_NAMES)
    for sourced in (
        p.server_header_source,
        p.trust_source,
        p.tls.versions_source,
        p.tls.ciphers_source,
        *p.rule_sources.values(),
    ):
        assert sourced.tag in ("V", "D", "I", "U")
        assert sourced.source
    assert p.tls.ciphers, "a profile offers at least one suite"
    for version in p.tls.versions:
        assert p.tls.suites_for(version), f"{name} accepts {version} but has no suite for it"


@pytest.mark.parametrize(
    ("name", "versions", "server", "public_only"),
    [
        # Reference 1.14: 2015 offers TLS 1.2, 1.1, 1.0; 2019 offers TLS 1.3, 1.2.
        ("sfb2015", ("TLSv1", "TLSv1.1", "TLSv1.2"), "RTC/6.0", False),
        ("sfb2019", ("TLSv1.2", "TLSv1.3"), "RTC/7.0", False),
        ("sfbse", ("TLSv1.2", "TLSv1.3"), "RTC/7.0", False),
        ("office365", ("TLSv1.2", "TLSv1.3"), "RTC/7.0", True),
    ],
)
def test_profiles_match_the_reference(
    name: str, versions: tuple[str, ...], server: str, public_only: bool
) -> None:
    p = profile(name)
    assert p.tls.versions == versions
    assert p.server_header == server
    assert p.public_ca_only is public_only


def test_only_verbatim_sources_are_tagged_v() -> None:
    # RTC/6.0 is in [CISCO]; RTC/7.0 in an SfB Online trace; 2019's and SE's are not.
    assert profile("sfb2015").server_header_source.tag == "V"
    assert profile("office365").server_header_source.tag == "V"
    assert profile("sfb2019").server_header_source.tag == "I"
    assert profile("sfbse").server_header_source.tag == "U"
    assert profile("office365").tls.ciphers_source.tag == "U"


def test_an_unknown_profile_or_rule_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'sfb2019'"):
        profile("sfb2109")
    with pytest.raises(ValueError, match="did you mean 'client_eku'"):
        rule_value("client_ekus", "ignore")
    with pytest.raises(ValueError, match="did you mean 'peer_wildcard'"):
        with_rules(EdgeRules(), {"peer_wildcards": True})
    with pytest.raises(ValueError, match=r"not one of require \| ignore"):
        rule_value("client_eku", "maybe")


@pytest.mark.parametrize(("name", "values"), list(RULE_VALUES.items()))
def test_rule_values_parse_from_the_command_line(name: str, values: tuple[object, ...]) -> None:
    for value in values:
        assert rule_value(name, str(value).upper()) == value


def test_rule_options_parse_in_order_and_a_later_one_wins() -> None:
    options = ["client_eku=ignore", " discovered_rate = 1000", "client_eku=require"]
    assert rule_assignments(options) == {"client_eku": "require", "discovered_rate": 1000}


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("client_eku", "--rule 'client_eku': write KEY=VALUE"),
        ("client_ekus=ignore", "--rule: unknown rule 'client_ekus' (did you mean 'client_eku'?)"),
        ("client_eku=maybe", "--rule: rule client_eku: 'maybe' is not one of require | ignore"),
        ("discovered_rate=-1", "--rule: rule discovered_rate: '-1' is not a whole number"),
    ],
)
def test_a_bad_rule_option_names_the_option(item: str, says: str) -> None:
    with pytest.raises(ValueError, match=r"^--rule") as refused:
        rule_assignments(["client_eku=ignore", item])
    assert str(refused.value).startswith(says)


def test_cipher_lists_map_schannel_names_to_openssl() -> None:
    sfb2015 = profile("sfb2015").tls
    assert "ECDHE-RSA-AES256-SHA384" in sfb2015.openssl_ciphers.split(":")
    assert sfb2015.openssl_ciphersuites == ""  # Windows Server 2012 R2 has no TLS 1.3
    sfb2019 = profile("sfb2019").tls
    # Windows Server 2022 enables two TLS 1.3 suites; CHACHA20 is off by default.
    assert sfb2019.openssl_ciphersuites == "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
    assert "RC4" not in sfb2019.openssl_ciphers


@given(
    st.sets(st.sampled_from(TLS_VERSIONS), min_size=1),
    st.sets(st.sampled_from(TLS_VERSIONS), min_size=1),
)
def test_negotiation_picks_the_highest_common_version(
    server: set[TlsVersion], client: set[TlsVersion]
) -> None:
    ordered_s = tuple(v for v in TLS_VERSIONS if v in server)
    ordered_c = tuple(v for v in TLS_VERSIONS if v in client)
    version = negotiated_version(ordered_s, ordered_c)
    common = server & client
    assert (version is None) == (not common)
    if version is not None:
        assert all(TLS_VERSIONS.index(version) >= TLS_VERSIONS.index(v) for v in common)
        assert version_refusal(ordered_s, ordered_c) == (version, None)


# -- one table per rule: both settings ----------------------------------------------------


def test_block_subdomains() -> None:
    sub = facts(GOOD_CERT, GOOD_SRV, request("acano.steven.lab"))
    blocking = dataclasses.replace(with_rule(), blocked=("steven.lab",))
    assert decide(sub, blocking).rule == "blocked-domain"
    exact = dataclasses.replace(with_rule(block_subdomains=False), blocked=("steven.lab",))
    assert decide(sub, exact).rule == "accepted"
    # The blocked domain itself stays blocked either way.
    own = facts(GOOD_CERT, None, request("steven.lab"))
    assert decide(own, exact).rule == "blocked-domain"


def test_peer_wildcard() -> None:
    wild = facts(cert("*.acano.steven.lab", cn="*.acano.steven.lab"), GOOD_SRV)
    assert decide(wild, with_rule()).rule == "cert-mismatch"
    assert decide(wild, with_rule(peer_wildcard=True)).rule == "accepted"


def test_srv_target_equal_to_domain() -> None:
    equal = facts(cert("acano.steven.lab"), srv("acano.steven.lab", "acano.steven.lab."))
    assert decide(equal, with_rule()).rule == "srv-not-in-domain"
    assert decide(equal, with_rule(srv_target_equal_to_domain=True)).rule == "accepted"


def test_domain_source() -> None:
    spoofed = facts(GOOD_CERT, GOOD_SRV, request("other.lab", "acano.steven.lab"))
    assert decide(spoofed, with_rule()).rule == "accepted"  # PAI names acano.steven.lab
    by_from = with_rule(domain_source="from")
    route = inbound_route(spoofed.parties, by_from)
    assert route.domain == "other.lab"
    assert route.srv_name == "_sipfederationtls._tcp.other.lab"


@pytest.mark.parametrize(
    ("eku", "usage", "policy_rule", "handshake"),
    [
        ("require", "client", "cert-wrong-usage", "lacks clientAuth"),
        ("ignore", "any", "accepted", None),
    ],
)
def test_client_eku(eku: str, usage: str, policy_rule: str, handshake: str | None) -> None:
    settings = with_rule(client_eku=eku)
    assert client_usage(settings) == usage
    no_client_auth = cert("vcse.acano.steven.lab", chain="wrong-usage")
    assert decide(facts(no_client_auth, GOOD_SRV), settings).rule == policy_rule
    refusal = inbound_handshake_refusal(no_client_auth, settings)
    assert (refusal is None) == (handshake is None)
    if handshake is not None:
        assert refusal is not None
        assert handshake in refusal


@pytest.mark.parametrize(
    ("chain", "public_root", "hosted", "refused"),
    [
        ("trusted", False, False, False),
        ("trusted", True, True, False),
        ("trusted", False, True, True),  # Office 365: public CAs only, at the TLS layer
        ("untrusted-root", True, False, True),
        ("expired", True, False, True),
        ("not-yet-valid", True, False, True),
        ("bad-chain", True, False, True),
    ],
)
def test_the_handshake_refuses_what_openssl_refuses(
    chain: str, public_root: bool, hosted: bool, refused: bool
) -> None:
    peer = PeerCertificate.from_subject(
        cn="vcse.steven.lab",
        dns_sans=(),
        chain=chain,  # type: ignore[arg-type]
        public_root=public_root,
    )
    settings = dataclasses.replace(EDGE, hosted=hosted)
    assert (inbound_handshake_refusal(peer, settings) is not None) == refused


@pytest.mark.parametrize(
    ("case", "code"),
    [
        (facts(GOOD_CERT, srv("acano.steven.lab", "vcse.steven.lab.")), 1009),
        (facts(cert("vcse.steven.lab"), GOOD_SRV), 1010),
        (facts(GOOD_CERT, srv("acano.steven.lab", outcome="nxdomain")), 1008),
    ],
)
def test_send_diagnostics_to_partners(case: Facts, code: int) -> None:
    bare = decide(case, with_rule())
    assert bare.ms_diagnostics is None
    sent = decide(case, with_rule(send_diagnostics_to_partners=True))
    assert sent.status == bare.status
    assert sent.rule == bare.rule
    assert sent.ms_diagnostics is not None
    assert sent.ms_diagnostics.startswith(f'{code};reason="{MS_DIAGNOSTICS[code].reason}"')
    assert sent.headers[0][0] == "ms-diagnostics"
    assert sent.headers[-1][0] == "Server"
    assert sent.fidelity != "verbatim"  # no trace shows a peer-facing ms-diagnostics


def test_federation_off_sends_1027_and_a_blocked_domain_sends_nothing() -> None:
    on = with_rule(send_diagnostics_to_partners=True)
    off = decide(facts(GOOD_CERT, None), dataclasses.replace(on, federation="off"))
    assert off.ms_diagnostics is not None
    assert off.ms_diagnostics.startswith("1027;")
    blocked = decide(facts(GOOD_CERT, None), dataclasses.replace(on, blocked=("steven.lab",)))
    assert blocked.ms_diagnostics is None  # no Microsoft id is known: none is invented
