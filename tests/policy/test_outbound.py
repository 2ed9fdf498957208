"""Outbound steps: the client-facing 504s of the seed and their inferred siblings."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.diagnostics import parse_ms_diagnostics
from simulator.policy import (
    AllowedDomain,
    Decision,
    EdgeSettings,
    PeerCertificate,
    Route,
    SrvLookup,
    SrvTarget,
    outbound_after_srv,
    outbound_check_peer,
    outbound_connect_failed,
    outbound_no_address,
    outbound_relay,
    outbound_route,
    outbound_tls_failed,
)
from simulator.policy.facts import Chain, SrvOutcome

EDGE = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))

# Reference §7.1, the two client-facing values of the seed.
SEED_1009 = (
    '1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";'
    'fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
)
SEED_1010 = (
    '1010;reason="Certificate trust with another server could not be established";'
    'ErrorType="The peer certificate does not contain a matching FQDN";'
    'tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";'
    'HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab"'
)


def srv(domain: str, *targets: str, outcome: SrvOutcome = "ok") -> SrvLookup:
    return SrvLookup(
        name=f"_sipfederationtls._tcp.{domain}",
        outcome=outcome,
        targets=tuple(SrvTarget(target=t, port=5061) for t in targets),
    )


def refusal(result: object) -> Decision:
    assert isinstance(result, Decision)
    assert not result.accepted
    assert [name for name, _ in result.headers][-1] == "Server"
    assert result.edge_log is not None
    return result


def client_headers(decision: Decision) -> tuple[tuple[str, str], ...]:
    """Reference §7.1: ms-diagnostics then Server: RTC/6.0."""
    assert decision.ms_diagnostics is not None
    return (("ms-diagnostics", decision.ms_diagnostics), ("Server", "RTC/6.0"))


# --- route ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (EDGE, Route(kind="srv", name="_sipfederationtls._tcp.cms.steven.lab")),
        (
            dataclasses.replace(
                EDGE, federation="allowlist", allowed=(AllowedDomain(domain="cms.steven.lab"),)
            ),
            Route(kind="srv", name="_sipfederationtls._tcp.cms.steven.lab"),
        ),
        (
            dataclasses.replace(
                EDGE,
                allowed=(AllowedDomain(domain="cms.steven.lab", proxy_fqdn="VCSE.steven.lab."),),
            ),
            Route(kind="proxy", name="vcse.steven.lab", port=5061),
        ),
    ],
)  # fmt: skip
def test_route_by_proxy_fqdn_or_srv(settings: EdgeSettings, expected: Route) -> None:
    assert outbound_route("Cms.Steven.Lab", settings) == expected


@pytest.mark.parametrize(
    ("settings", "rule", "diagnostics"),
    [
        (
            dataclasses.replace(EDGE, federation="off"),
            "federation-off",
            '1027;reason="Cannot route this type of SIP request to or from federated partners";'
            'source="sip.skype.lab"',
        ),
        (dataclasses.replace(EDGE, blocked=("steven.lab",)), "blocked-domain", None),
        (dataclasses.replace(EDGE, federation="allowlist"), "domain-not-allowed", None),
    ],
)
def test_policy_refusals_are_unverified_403s(
    settings: EdgeSettings, rule: str, diagnostics: str | None
) -> None:
    decision = refusal(outbound_route("cms.steven.lab", settings))
    assert decision.rule == rule
    assert (decision.status, decision.reason) == (403, "Forbidden")
    assert decision.ms_diagnostics == diagnostics
    assert decision.fidelity == "unverified"


# --- SRV (O5, O6) -----------------------------------------------------------------


def test_seed_1009_for_a_sub_domain_target() -> None:
    decision = refusal(
        outbound_after_srv(
            "cms.steven.lab", srv("cms.steven.lab", "vcse.sub.cms.steven.lab."), EDGE
        )
    )
    assert decision.rule == "srv-not-in-domain"
    assert (decision.status, decision.reason) == (504, "Server time-out")
    assert decision.headers == (("ms-diagnostics", SEED_1009), ("Server", "RTC/6.0"))
    assert decision.fidelity == "verbatim"
    # A domain nobody configured (reference §12, bhargavs): Data reason= and the component
    # line are verbatim; the Result-Code is not public, so the record is a marker.
    assert decision.edge_log is not None
    assert decision.edge_log.result.symbol == "EMU_UNVERIFIED_DOMAIN_UNKNOWN"
    assert decision.edge_log.data == (
        ("domain", "cms.steven.lab"),
        ("fqdn1", "vcse.sub.cms.steven.lab:5061"),
        (
            "reason",
            "The domain of the message is not configured and does not appear to belong to a "
            "federated partner",
        ),
    )
    assert decision.edge_log.fidelity == "inferred"
    assert decision.component is not None
    assert decision.component.text == (
        "Exit - domain [cms.steven.lab] is unknown and DNS SRV results did not match anything"
    )
    assert (decision.component.location, decision.component.result) == (None, None)


def test_an_allowed_domain_whose_srv_misses_logs_the_allowed_domain_code() -> None:
    allowed = dataclasses.replace(EDGE, allowed=(AllowedDomain(domain="cms.steven.lab"),))
    decision = refusal(
        outbound_after_srv(
            "cms.steven.lab", srv("cms.steven.lab", "vcse.sub.cms.steven.lab."), allowed
        )
    )
    assert decision.ms_diagnostics == SEED_1009
    assert decision.edge_log is not None
    # Reference §9 S2: the Edge log of this direction is inferred from the inbound one.
    assert decision.edge_log.result.symbol == "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    assert decision.edge_log.fidelity == "inferred"
    assert decision.component is None


def test_1009_lists_every_target_in_srv_order() -> None:
    decision = refusal(
        outbound_after_srv(
            "cms.steven.lab", srv("cms.steven.lab", "vcse.steven.lab", "a.sub.cms.steven.lab"), EDGE
        )
    )
    assert decision.ms_diagnostics is not None
    parsed = parse_ms_diagnostics(decision.ms_diagnostics)
    assert parsed.params == (
        ("domain", "cms.steven.lab"),
        ("fqdn1", "vcse.steven.lab:5061"),
        ("fqdn2", "a.sub.cms.steven.lab:5061"),
    )
    assert decision.fidelity == "inferred"  # fqdn2 numbering is inferred


def test_in_domain_targets_are_returned_in_srv_order() -> None:
    lookup = srv("cms.steven.lab", "b.cms.steven.lab", "vcse.steven.lab", "a.cms.steven.lab")
    targets = outbound_after_srv("cms.steven.lab", lookup, EDGE)
    assert isinstance(targets, tuple)
    assert [t.host for t in targets] == ["b.cms.steven.lab", "a.cms.steven.lab"]


@pytest.mark.parametrize("outcome", ["nxdomain", "nodata", "servfail", "refused", "timeout"])
def test_srv_failures_answer_1008(outcome: SrvOutcome) -> None:
    decision = refusal(
        outbound_after_srv("cms.steven.lab", srv("cms.steven.lab", outcome=outcome), EDGE)
    )
    assert decision.rule == f"srv-{outcome}"
    assert decision.status == 504
    assert client_headers(decision) == decision.headers
    assert decision.ms_diagnostics == (
        '1008;reason="Unable to resolve DNS SRV record";source="sip.skype.lab"'
    )
    assert decision.fidelity == "verbatim"


def test_after_srv_refuses_the_lookup_of_another_name() -> None:
    with pytest.raises(ValueError, match="expected"):
        outbound_after_srv("cms.steven.lab", srv("steven.lab", "vcse.steven.lab"), EDGE)


# --- address, connect, TLS (O7-O9) ------------------------------------------------


def test_no_address_answers_1014() -> None:
    decision = refusal(outbound_no_address("cms.steven.lab", "vcse.cms.steven.lab.", EDGE))
    assert decision.rule == "no-address"
    assert decision.status == 504
    assert decision.ms_diagnostics == (
        '1014;reason="Unable to resolve DNS A record.";source="sip.skype.lab"'
    )
    assert decision.fidelity == "inferred"


@pytest.mark.parametrize(
    ("winsock", "code"),
    [("refused", "10061(WSAECONNREFUSED)"), ("timeout", "10060(WSAETIMEDOUT)")],
)
def test_connect_failures_answer_an_unverified_1046(winsock: str, code: str) -> None:
    decision = refusal(
        outbound_connect_failed("cms.steven.lab", "vcse.cms.steven.lab", 5061, winsock, EDGE)  # type: ignore[arg-type]
    )
    assert decision.rule == f"connect-{winsock}"
    assert decision.ms_diagnostics == (
        f'1046;reason="Failed to connect to a federated peer server";'
        f'WinsockFailureCode="{code}";source="sip.skype.lab"'
    )
    assert decision.fidelity == "unverified"
    assert client_headers(decision) == decision.headers


def test_tls_reset_answers_the_verbatim_1047_form() -> None:
    decision = refusal(
        outbound_tls_failed("cms.steven.lab", "vcse.cms.steven.lab", EDGE, reset=True, alert=None)
    )
    assert decision.rule == "tls-reset"
    assert decision.status == 504
    assert decision.ms_diagnostics == (
        '1047;reason="Failed to complete TLS negotiation with a federated peer server";'
        'WinsockFailureCode="10054(WSAECONNRESET)";'
        'WinsockFailureDescription="The peer forced closure of the connection";'
        'source="sip.skype.lab"'
    )
    assert decision.fidelity == "inferred"  # the 504 status is inferred


@pytest.mark.parametrize(
    ("alert", "rule", "hresult"),
    [
        ("unknown_ca", "tls-alert", "0x80090325(SEC_E_UNTRUSTED_ROOT)"),
        ("TLSV1_ALERT_UNKNOWN_CA", "tls-alert", "0x80090325(SEC_E_UNTRUSTED_ROOT)"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "tls-alert", "0x80090328(SEC_E_CERT_EXPIRED)"),
        ("protocol_version", "tls-alert", "0x80090302(SEC_E_UNSUPPORTED_FUNCTION)"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "tls-failed", None),
        (None, "tls-failed", None),
    ],
)
def test_tls_alerts_map_to_schannel_hresults(
    alert: str | None, rule: str, hresult: str | None
) -> None:
    decision = refusal(
        outbound_tls_failed("cms.steven.lab", "vcse.cms.steven.lab", EDGE, reset=False, alert=alert)
    )
    assert decision.rule == rule
    assert decision.ms_diagnostics is not None
    parsed = parse_ms_diagnostics(decision.ms_diagnostics)
    assert parsed.code == 1047
    assert parsed.get("HRESULT") == hresult


# --- peer certificate (O10) --------------------------------------------------------


def peer(
    *sans: str, cn: str | None = "vcse.steven.lab", chain: Chain = "trusted", public: bool = True
) -> PeerCertificate:
    return PeerCertificate.from_subject(cn=cn, dns_sans=sans, chain=chain, public_root=public)


def test_seed_1010_for_a_certificate_without_the_srv_target() -> None:
    decision = refusal(
        outbound_check_peer("cms.steven.lab", "vcse.cms.steven.lab", peer("vcse.steven.lab"), EDGE)
    )
    assert decision.rule == "cert-mismatch"
    assert (decision.status, decision.reason) == (504, "Server time-out")
    assert decision.headers == (("ms-diagnostics", SEED_1010), ("Server", "RTC/6.0"))
    assert decision.fidelity == "verbatim"


@pytest.mark.parametrize(
    ("cert", "settings", "rule", "hresult"),
    [
        (peer("vcse.cms.steven.lab"), EDGE, None, None),
        (peer(cn="vcse.cms.steven.lab"), EDGE, None, None),  # CN-only
        (peer("vcse.steven.lab", cn="vcse.cms.steven.lab"), EDGE, "cert-mismatch",
         "0x80090322(SEC_E_WRONG_PRINCIPAL)"),  # CN ignored with SANs
        (peer("vcse.cms.steven.lab", chain="untrusted-root"), EDGE, "untrusted-root",
         "0x80090325(SEC_E_UNTRUSTED_ROOT)"),
        (peer("vcse.cms.steven.lab", public=False), dataclasses.replace(EDGE, hosted=True),
         "untrusted-root", "0x80090325(SEC_E_UNTRUSTED_ROOT)"),
        (peer("vcse.cms.steven.lab", public=False), EDGE, None, None),  # on-prem: private ok
        (peer("vcse.cms.steven.lab", chain="expired"), EDGE, "cert-expired",
         "0x80090328(SEC_E_CERT_EXPIRED)"),
        (peer("vcse.cms.steven.lab", chain="not-yet-valid"), EDGE, "cert-not-yet-valid",
         "0x80090328(SEC_E_CERT_EXPIRED)"),
        (peer("vcse.cms.steven.lab", chain="wrong-usage"), EDGE, "cert-wrong-usage",
         "0x80090349(SEC_E_CERT_WRONG_USAGE)"),
        # Chain faults are reported before the name (Windows SSL policy order, I).
        (peer("other.lab", chain="expired"), EDGE, "cert-expired",
         "0x80090328(SEC_E_CERT_EXPIRED)"),
    ],
)  # fmt: skip
def test_peer_certificate_checks(
    cert: PeerCertificate, settings: EdgeSettings, rule: str | None, hresult: str | None
) -> None:
    result = outbound_check_peer("cms.steven.lab", "vcse.cms.steven.lab", cert, settings)
    if rule is None:
        assert result is None
        return
    decision = refusal(result)
    assert decision.rule == rule
    assert decision.status == 504
    assert decision.ms_diagnostics is not None
    parsed = parse_ms_diagnostics(decision.ms_diagnostics)
    assert parsed.code == 1010
    assert parsed.get("HRESULT") == hresult
    assert parsed.get("tls-target") == "vcse.cms.steven.lab"
    assert parsed.source == "sip.skype.lab"
    if rule != "cert-mismatch":
        # Microsoft's ErrorType for these was never captured: fedsim sends none.
        assert parsed.get("ErrorType") is None
        assert decision.fidelity == "inferred"


# --- relay (O11) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "sent", "expected"),
    [
        (
            404,
            False,
            (
                (
                    "ms-diagnostics",
                    '1034;reason="Previous hop federated peer did not report diagnostic '
                    'information";Domain="cms.steven.lab";PeerServer="vcse.cms.steven.lab";'
                    'source="sip.skype.lab"',
                ),
            ),
        ),
        (480, True, ()),
        (200, False, ()),
        (180, False, ()),
        (302, False, ()),
    ],
)
def test_relay_adds_1034_to_undiagnosed_errors(
    status: int, sent: bool, expected: tuple[tuple[str, str], ...]
) -> None:
    headers = outbound_relay(
        "cms.steven.lab", "vcse.cms.steven.lab.", status, "Whatever", sent, EDGE
    )
    assert headers == expected


def test_relay_rejects_a_non_status() -> None:
    with pytest.raises(ValueError, match="SIP status"):
        outbound_relay("cms.steven.lab", "vcse.cms.steven.lab", 99, "x", False, EDGE)
