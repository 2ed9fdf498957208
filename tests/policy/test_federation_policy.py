"""The rest of Microsoft's federation policy (issue 15), one table per rule.

Route headers from an untrusted source, hosting providers, split domains (1017
and INVALID_EXT_SPLIT_DOMAIN), per-user federation, discovered-partner limits,
a Teams tenant's lists, unverified senders and revocation: each a pure rule fed
with explicit inputs.
"""

from __future__ import annotations

import dataclasses

import pytest

from simulator.diagnostics import parse_ms_diagnostics
from simulator.policy import (
    AllowedDomain,
    Decision,
    EdgeRules,
    EdgeSettings,
    Hop,
    HostingProvider,
    LocalUser,
    Parties,
    PartnerLoad,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    TenantSettings,
    callback_srv,
    decide_inbound,
    discovered_partner,
    inbound_route,
    local_user,
    outbound_after_srv,
    outbound_check_peer,
    outbound_route,
    partner_load,
    revocation_refusal,
    route_names_connection,
    tenant_refusal,
)
from simulator.policy.facts import RevocationStatus

EDGE = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
O365 = HostingProvider(name="Office365", proxy_fqdn="sipfed.online.lync.com")
SHARED = dataclasses.replace(O365, shared_address_space=True)
LOCAL = ("127.0.0.1", 5061)
ROUTING_COMPONENT = "Exit - route headers from untrusted source."
SUMMARY = (
    "Domain type analysis indicates that the ms-split-domain-info header in the message is "
    "the wrong type"
)


def cert(*names: str, revocation: RevocationStatus = "unchecked") -> PeerCertificate:
    peer = PeerCertificate.from_subject(cn=names[0], dns_sans=names, public_root=True)
    return dataclasses.replace(peer, revocation=revocation)


def srv(domain: str, *targets: str) -> SrvLookup:
    return SrvLookup(
        name=f"_sipfederationtls._tcp.{domain}",
        outcome="ok",
        targets=tuple(SrvTarget(target=t, port=5061) for t in targets),
    )


GOOD_CERT = cert("vcse.acano.steven.lab")
GOOD_SRV = srv("acano.steven.lab", "vcse.acano.steven.lab")


def decide(
    settings: EdgeSettings,
    *,
    sender: str = "acano.steven.lab",
    peer: PeerCertificate = GOOD_CERT,
    lookup: SrvLookup | None = GOOD_SRV,
    hop: Hop | None = None,
    user: LocalUser | None = None,
    load: PartnerLoad = "within",
) -> Decision:
    route = inbound_route(Parties(sender=sender), settings)
    needed = callback_srv(route, hop, settings)
    return decide_inbound(
        route,
        peer,
        lookup if needed is not None else None,
        settings,
        hop=hop,
        user=user,
        load=load,
    )


def bob(**changes: object) -> LocalUser:
    return dataclasses.replace(LocalUser(user="bob", domain="skype.lab"), **changes)  # type: ignore[arg-type]


# --- 3. Route headers from an untrusted source (reference 4.1, S14) --------------------------


@pytest.mark.parametrize(
    ("route", "trusted"),
    [
        ("<sip:sip.skype.lab;lr>", True),
        ("<sip:SIP.Skype.Lab:5061;transport=tls;lr>", True),
        ("<sip:127.0.0.1:5061;lr>", True),
        ("<sip:127.0.0.1;lr>", True),
        ("<sip:vcse.steven.lab;transport=tls;lr>;ms-edge-route", False),
        ("<sip:sip.skype.lab:5070;lr>", False),
        ("<sip:10.0.0.1;lr>", False),
        ("not a route", False),
    ],
)
def test_the_first_route_must_name_the_connection(route: str, trusted: bool) -> None:
    hop = Hop(route=route, local=LOCAL)
    assert route_names_connection(hop, EDGE) is trusted
    decision = decide(EDGE, hop=hop)
    assert decision.accepted is trusted
    if not trusted:
        assert decision.rule == "route-untrusted"
        assert (decision.status, decision.reason) == (504, "Server time-out")
        assert decision.headers == (("Server", "RTC/6.0"),)
        assert decision.edge_log is not None
        assert decision.edge_log.result.hex == "0xc3e93c5e"
        assert decision.edge_log.result.symbol == "SIPPROXY_E_ROUTING"
        assert decision.component is not None
        assert decision.component.text == ROUTING_COMPONENT
        assert decision.component.result == "SIPPROXY_E_ROUTING"
        assert decision.component.location == (
            "SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest.cpp(2440)"
        )


def test_an_untrusted_route_is_refused_before_any_dns_lookup() -> None:
    route = inbound_route(Parties(sender="acano.steven.lab"), EDGE)
    bad = Hop(route="<sip:elsewhere.lab;lr>", local=LOCAL)
    assert callback_srv(route, bad, EDGE) is None
    assert callback_srv(route, None, EDGE) == route.srv_name
    # The first rule: even a blocked domain gets the routing refusal.
    blocked = dataclasses.replace(EDGE, blocked=("acano.steven.lab",))
    assert decide(blocked, hop=bad).rule == "route-untrusted"


# --- 1. Hosting providers (New-CsHostingProvider, reference 5.4) ---------------------------

PUSH_SRV = srv("push.lync.com", "sipfed.online.lync.com")
PROVIDER_CERT = cert("sipfed.online.lync.com")


def test_inbound_through_a_hosting_provider_skips_the_same_domain_rule() -> None:
    with_provider = dataclasses.replace(EDGE, hosting_providers=(O365,))
    decision = decide(with_provider, sender="push.lync.com", peer=PROVIDER_CERT, lookup=PUSH_SRV)
    assert decision.rule == "accepted"
    # Without the provider the same request fails the same-domain rule...
    without = decide(EDGE, sender="push.lync.com", peer=PROVIDER_CERT, lookup=PUSH_SRV)
    assert without.rule == "srv-not-in-domain"
    # ... and with it, the certificate must name the provider.
    wrong = decide(
        with_provider, sender="push.lync.com", peer=cert("vcse.steven.lab"), lookup=PUSH_SRV
    )
    assert wrong.rule == "cert-mismatch"
    assert wrong.edge_log is not None
    assert ("expected-fqdn", "sipfed.online.lync.com") in wrong.edge_log.data


def test_a_disabled_provider_does_not_count() -> None:
    disabled = dataclasses.replace(
        EDGE, hosting_providers=(dataclasses.replace(O365, enabled=False),)
    )
    decision = decide(disabled, sender="push.lync.com", peer=PROVIDER_CERT, lookup=PUSH_SRV)
    assert decision.rule == "srv-not-in-domain"


def test_outbound_to_a_provider_target_routes_there() -> None:
    with_provider = dataclasses.replace(EDGE, hosting_providers=(O365,))
    targets = outbound_after_srv("push.lync.com", PUSH_SRV, with_provider)
    assert isinstance(targets, tuple)
    assert [t.host for t in targets] == ["sipfed.online.lync.com"]
    # The certificate must name the provider (the tls-target).
    assert (
        outbound_check_peer("push.lync.com", "sipfed.online.lync.com", PROVIDER_CERT, with_provider)
        is None
    )
    refused = outbound_check_peer(
        "push.lync.com", "sipfed.online.lync.com", cert("vcse.steven.lab"), with_provider
    )
    assert refused is not None
    assert refused.rule == "cert-mismatch"


def test_outbound_without_the_provider_is_the_documented_unknown_domain() -> None:
    decision = outbound_after_srv("push.lync.com", PUSH_SRV, EDGE)
    assert isinstance(decision, Decision)
    assert decision.status == 504
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == "EMU_UNVERIFIED_DOMAIN_UNKNOWN"
    assert decision.edge_log.data_text() == (
        'domain="push.lync.com";fqdn1="sipfed.online.lync.com:5061";'
        'reason="The domain of the message is not configured and does not appear to belong to a '
        'federated partner"'
    )
    assert decision.component is not None
    assert decision.component.text == (
        "Exit - domain [push.lync.com] is unknown and DNS SRV results did not match anything"
    )


def test_one_fqdn_cannot_be_both_an_allowed_partner_server_and_a_provider() -> None:
    # Event 14517 (field cases C7): the Access Edge service does not start.
    with pytest.raises(ValueError, match="allowed partner server and a hosting provider"):
        dataclasses.replace(
            EDGE,
            allowed=(AllowedDomain(domain="push.lync.com", proxy_fqdn="sipfed.online.lync.com"),),
            hosting_providers=(O365,),
        )


# --- 7. Split domains: INVALID_EXT_SPLIT_DOMAIN and 1017 -----------------------------------


def test_our_own_domain_from_a_stranger_is_an_invalid_split_domain() -> None:
    decision = decide(EDGE, sender="skype.lab", peer=cert("vcse.steven.lab"))
    assert decision.rule == "split-domain-invalid"
    assert decision.status == 504
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == "SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN"
    assert decision.edge_log.result.hex == "0x00000000"  # the value is not public
    assert decision.fidelity == "unverified"


def test_a_shared_space_provider_may_send_for_our_domain() -> None:
    shared = dataclasses.replace(EDGE, hosting_providers=(SHARED,))
    resources = cert("sipfed.online.lync.com")
    decision = decide(shared, sender="skype.lab", peer=resources, lookup=None, user=bob())
    assert decision.rule == "accepted"


def test_1017_for_a_shared_space_message_to_a_domain_we_lack() -> None:
    shared = dataclasses.replace(EDGE, hosting_providers=(SHARED,))
    tenant_srv = srv("my.contoso.lab", "sipfed.online.lync.com")
    decision = decide(
        shared,
        sender="my.contoso.lab",
        peer=PROVIDER_CERT,
        lookup=tenant_srv,
        user=LocalUser(user="amy", domain="onprem.contoso.lab"),
    )
    assert decision.rule == "split-domain-type"
    assert decision.status == 403
    assert decision.ms_diagnostics is not None
    parsed = parse_ms_diagnostics(decision.ms_diagnostics)
    assert parsed.code == 1017
    assert parsed.reason == "Cannot route From and To domains in this combination"
    assert parsed.get("summary") == SUMMARY
    # A domain the topology has passes.
    ok = decide(shared, sender="my.contoso.lab", peer=PROVIDER_CERT, lookup=tenant_srv, user=bob())
    assert ok.rule == "accepted"


# --- 2. Per-user external access (EnableFederationAccess) -----------------------------------


def test_outbound_from_a_user_without_federation_gets_1002() -> None:
    decision = outbound_route(
        "steven.lab", EDGE, caller=LocalUser(user="carol", domain="skype.lab", federation=False)
    )
    assert isinstance(decision, Decision)
    assert decision.rule == "user-federation-off"
    assert (decision.status, decision.reason) == (403, "Forbidden")
    assert decision.ms_diagnostics == (
        '1002;reason="From URI not authorized to communicate with federated partners";'
        'source="sip.skype.lab"'
    )
    assert decision.fidelity == "verbatim"
    allowed = outbound_route("steven.lab", EDGE, caller=LocalUser(user="bob", domain="skype.lab"))
    assert not isinstance(allowed, Decision)


def test_inbound_to_a_user_without_federation_is_refused_the_same_way() -> None:
    carol = LocalUser(user="carol", domain="skype.lab", federation=False)
    decision = decide(EDGE, user=carol)
    assert decision.rule == "user-federation-off"
    assert decision.status == 403
    assert decision.ms_diagnostics is None  # diagnostics do not cross federation
    assert decision.fidelity == "unverified"
    loud = dataclasses.replace(EDGE, rules=EdgeRules(send_diagnostics_to_partners=True))
    told = decide(loud, user=carol)
    assert told.ms_diagnostics is not None
    assert told.ms_diagnostics.startswith("1002;")
    assert decide(EDGE, user=bob()).rule == "accepted"


def test_a_contact_list_is_matched_user_at_domain_case_insensitively() -> None:
    contacts = ("sip:2000@Acano.Steven.Lab", "sips:x@y.lab;transport=tls")
    known = local_user(
        "alice", "skype.lab", federation=True, contacts=contacts, peer=("2000", "acano.steven.lab")
    )
    stranger = local_user(
        "alice", "skype.lab", federation=True, contacts=contacts, peer=("3000", "acano.steven.lab")
    )
    assert known.knows_peer
    assert not stranger.knows_peer


# --- 4. Discovered partners: 20 messages/s, 1,000 contacts ---------------------------------


@pytest.mark.parametrize(
    ("rate", "contact", "load"),
    [
        (1, 1, "within"),
        (20, 1000, "within"),
        (21, 0, "rate"),
        (1, 1001, "contacts"),
        (30, 1001, "contacts"),
    ],
)
def test_partner_load(rate: int, contact: int, load: PartnerLoad) -> None:
    assert partner_load(rate, contact, EDGE) == load


@pytest.mark.parametrize(
    ("load", "rule"), [("rate", "discovered-rate"), ("contacts", "discovered-contacts")]
)
def test_a_discovered_partner_over_a_limit_is_refused_with_event_14508(
    load: PartnerLoad, rule: str
) -> None:
    decision = decide(EDGE, load=load)
    assert decision.rule == rule
    assert decision.status == 503  # the rule discovered_refusal's default
    assert decision.fidelity == "unverified"
    assert decision.windows_event is not None
    assert decision.windows_event.id == 14508
    assert decision.windows_event.text == (
        "At least one discovered peer has exceeded the number of internal users they can contact."
    )
    assert decision.windows_event.fidelity == ("verbatim" if load == "contacts" else "inferred")
    chosen = dataclasses.replace(EDGE, rules=EdgeRules(discovered_refusal=403))
    assert decide(chosen, load=load).status == 403


def test_allowed_partners_are_exempt_from_the_limits() -> None:
    allowed = dataclasses.replace(EDGE, allowed=(AllowedDomain(domain="acano.steven.lab"),))
    assert not discovered_partner("acano.steven.lab", GOOD_SRV, allowed)
    assert decide(allowed, load="rate").rule == "accepted"
    assert discovered_partner("acano.steven.lab", GOOD_SRV, EDGE)
    # A partner reached through a hosting provider is not "discovered" either.
    with_provider = dataclasses.replace(EDGE, hosting_providers=(O365,))
    assert not discovered_partner("push.lync.com", PUSH_SRV, with_provider)


# --- 6. The Office 365 / Teams tenant ---------------------------------------------------------


def tenant(**changes: object) -> EdgeSettings:
    return dataclasses.replace(
        EDGE,
        profile="office365",
        tenant=TenantSettings(**changes),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("settings", "domain", "rule"),
    [
        (tenant(allow_federated_users=False), "acano.steven.lab", "tenant-federation-off"),
        (tenant(allowed_domains=("steven.lab",)), "acano.steven.lab", "tenant-domain-not-allowed"),
        (tenant(allowed_domains=("acano.steven.lab",)), "acano.steven.lab", None),
        (
            tenant(blocked_domains=("acano.steven.lab",)),
            "acano.steven.lab",
            "tenant-blocked-domain",
        ),
        (tenant(blocked_domains=("steven.lab",)), "acano.steven.lab", None),
        (
            tenant(blocked_domains=("steven.lab",), block_all_subdomains=True),
            "acano.steven.lab",
            "tenant-blocked-domain",
        ),
        # Blocked domains count only while federation is open.
        (
            tenant(allowed_domains=("acano.steven.lab",), blocked_domains=("acano.steven.lab",)),
            "acano.steven.lab",
            None,
        ),
    ],
)
def test_the_tenant_lists(settings: EdgeSettings, domain: str, rule: str | None) -> None:
    found = tenant_refusal(domain, settings)
    inbound = decide(settings, sender=domain)
    outbound = outbound_route(domain, settings)
    if rule is None:
        assert found is None
        assert inbound.rule == "accepted"
        assert not isinstance(outbound, Decision)
        return
    assert inbound.rule == rule
    assert (inbound.status, inbound.ms_diagnostics) == (403, None)  # bare 403 to the partner
    assert isinstance(outbound, Decision)
    assert outbound.rule == rule
    assert outbound.status == 403
    assert outbound.ms_diagnostics is not None
    assert outbound.ms_diagnostics.startswith("1002;")
    assert outbound.fidelity == "inferred"


def test_treat_discovered_as_unverified_lets_only_contacts_through() -> None:
    settings = tenant(treat_discovered_as_unverified=True)
    stranger = decide(settings, user=bob())
    assert stranger.rule == "not-a-contact"
    assert stranger.status == 403
    assert decide(settings, user=bob(knows_peer=True)).rule == "accepted"
    # An allowed list ends open federation: nothing is "discovered" then.
    listed = tenant(treat_discovered_as_unverified=True, allowed_domains=("acano.steven.lab",))
    assert decide(listed, user=bob()).rule == "accepted"


def test_an_always_unverifiable_provider_reaches_only_contacts() -> None:
    strict = dataclasses.replace(
        EDGE, hosting_providers=(dataclasses.replace(O365, verification="AlwaysUnverifiable"),)
    )
    kwargs = {"sender": "push.lync.com", "peer": PROVIDER_CERT, "lookup": PUSH_SRV}
    assert decide(strict, user=bob(), **kwargs).rule == "not-a-contact"  # type: ignore[arg-type]
    assert decide(strict, user=bob(knows_peer=True), **kwargs).rule == "accepted"  # type: ignore[arg-type]


# --- 5. Revocation (KeepCrlsUpToDateForPeers) -------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "rule"),
    [
        ("off", "revoked", None),
        ("soft", "good", None),
        ("soft", "revoked", "cert-revoked"),
        ("soft", "offline", None),
        ("soft", "no-cdp", None),
        ("hard", "revoked", "cert-revoked"),
        ("hard", "offline", "crl-offline"),
        ("hard", "no-cdp", "crl-offline"),
        ("hard", "good", None),
        ("hard", "unchecked", None),
    ],
)
def test_revocation_rule(mode: str, status: RevocationStatus, rule: str | None) -> None:
    settings = dataclasses.replace(EDGE, rules=EdgeRules(revocation=mode))  # type: ignore[arg-type]
    peer = cert("vcse.acano.steven.lab", revocation=status)
    found = revocation_refusal(peer, settings)
    assert (found[0] if found else None) == rule
    inbound = decide(settings, peer=peer)
    assert inbound.rule == (rule or "accepted")
    outbound = outbound_check_peer("acano.steven.lab", "vcse.acano.steven.lab", peer, settings)
    assert (outbound.rule if outbound else None) == rule
    if outbound is not None:
        assert outbound.ms_diagnostics is not None
        hresult = parse_ms_diagnostics(outbound.ms_diagnostics).get("HRESULT")
        assert (
            hresult
            == {
                ("revoked"): "0x80092010(CRYPT_E_REVOKED)",
                ("offline"): "0x80092013(CRYPT_E_REVOCATION_OFFLINE)",
                ("no-cdp"): "0x80092012(CRYPT_E_NO_REVOCATION_CHECK)",
            }[status]
        )
