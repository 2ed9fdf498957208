"""The pure core of fedsim check: build_report on hand-made facts, and its invariants."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.check import (
    AddressLookup,
    CheckFacts,
    CheckOptions,
    Direction,
    build_report,
    render_json,
    render_text,
    report_to_dict,
)
from simulator.diagnostics import parse_edge_log, parse_ms_diagnostics
from simulator.pki import IssuedCert
from simulator.policy import SrvLookup, SrvTarget

DOMAIN = "cms.steven.lab"
NOW = dt.datetime.now(dt.UTC)


def load(pki: dict[str, IssuedCert], name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki[name].cert_path.read_bytes())


def facts(
    pki: dict[str, IssuedCert],
    *,
    targets: tuple[str, ...] = ("vcse.cms.steven.lab",),
    outcome: str = "ok",
    with_address: tuple[str, ...] | None = None,
    leaf: str = "vcse.cms.steven.lab",
    intermediates: tuple[str, ...] = (),
    roots: tuple[str, ...] = (),
    public: tuple[str, ...] = ("public-root",),
) -> CheckFacts:
    srv_targets = tuple(
        SrvTarget(target=t + ".", port=5061, priority=i) for i, t in enumerate(targets)
    )
    hosts = list(dict.fromkeys(targets))
    have = set(hosts if with_address is None else with_address)
    return CheckFacts(
        domain=DOMAIN,
        dns_server="127.0.0.1:53",
        dns_source="--dns",
        srv=SrvLookup(
            name=f"_sipfederationtls._tcp.{DOMAIN}",
            outcome=outcome,  # type: ignore[arg-type]
            targets=srv_targets if outcome == "ok" else (),
        ),
        addresses=tuple(
            AddressLookup(name=h, outcome="ok", addresses=("192.0.2.1",))
            if h in have
            else AddressLookup(name=h, outcome="nxdomain")
            for h in hosts
        ),
        leaf=load(pki, leaf),
        intermediates=tuple(load(pki, n) for n in intermediates),
        cert_source="expe.pem",
        roots=tuple(load(pki, n) for n in roots),
        public_roots=tuple(load(pki, n) for n in public),
        trust_source="test",
    )


@pytest.mark.parametrize(
    ("target", "phrase"),
    [
        ("vcse.steven.lab", "it is in steven.lab, a parent domain of cms.steven.lab"),
        ("vcse.sub.cms.steven.lab", "it is in a sub-domain of cms.steven.lab (sub.cms.steven.lab)"),
        ("cms.steven.lab", "it is the domain itself, not a host in cms.steven.lab"),
        ("expe.dummy.com", "it is in another domain (dummy.com)"),
    ],
)
def test_srv_target_outside_the_domain_says_where_it_is(
    pki: dict[str, IssuedCert], target: str, phrase: str
) -> None:
    report = build_report(facts(pki, targets=(target,)), CheckOptions(), now=NOW)
    rule = report.rules[1]
    assert (rule.key, rule.status) == ("srv-in-domain", "fail")
    assert any(e.startswith(f"{target}:5061: NOT in {DOMAIN}: {phrase}") for e in rule.evidence)
    assert not report.federates


@pytest.mark.parametrize(
    ("target", "leaf", "suggested"),
    [
        # The Cisco note's fix: the Expressway-E's label under the partner domain.
        ("vcse.steven.lab", "vcse.steven.lab", "vcse.cms.steven.lab"),
        # A name the certificate already carries in the domain wins.
        ("expe.steven.lab", "vcse.cms.steven.lab", "vcse.cms.steven.lab"),
    ],
)
def test_fix_names_the_host_to_publish(
    pki: dict[str, IssuedCert], target: str, leaf: str, suggested: str
) -> None:
    report = build_report(facts(pki, targets=(target,), leaf=leaf), CheckOptions(), now=NOW)
    (fix,) = report.fixes
    assert fix.startswith(f"point _sipfederationtls._tcp.{DOMAIN} at {suggested} ")
    assert ("add " + suggested) in fix if leaf == "vcse.steven.lab" else "add " not in fix


def test_untrusted_and_expired_are_judged_apart(pki: dict[str, IssuedCert]) -> None:
    # The path is judged inside the leaf's window, so an expired leaf from a trusted
    # CA passes rule 5 and fails rule 6, and the Edge's answer is the expiry.
    report = build_report(facts(pki, leaf="expired"), CheckOptions(), now=NOW)
    assert [r.status for r in report.rules[4:6]] == ["pass", "fail"]
    inbound, outbound = report.answers
    # Inbound, the TLS handshake refuses an expired client certificate (as fedsim serve).
    assert inbound.decision is None
    assert inbound.summary.startswith("refused at the TLS handshake: the certificate has expired")
    assert outbound.decision is not None
    assert outbound.decision.ms_diagnostics is not None
    assert "SEC_E_CERT_EXPIRED" in outbound.decision.ms_diagnostics


def test_only_the_asked_direction_is_predicted(pki: dict[str, IssuedCert]) -> None:
    options = CheckOptions(directions=("outbound",), skype_domain="contoso.com",
                           edge_fqdn="sip.contoso.com")  # fmt: skip
    report = build_report(facts(pki, targets=("vcse.steven.lab",)), options, now=NOW)
    (answer,) = report.answers
    assert answer.direction == "outbound"
    assert answer.decision is not None
    assert answer.decision.ms_diagnostics is not None
    assert parse_ms_diagnostics(answer.decision.ms_diagnostics).source == "sip.contoso.com"
    assert answer.edge_log is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"directions": ()}, "directions must be"),
        ({"directions": ("sideways",)}, "directions must be"),
        ({"from_user": "a b"}, "from_user must be a SIP user part"),
        ({"edge_fqdn": "not a name"}, "edge fqdn must be a DNS name"),
    ],
)
def test_options_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CheckOptions(**kwargs)  # type: ignore[arg-type]


def test_facts_must_be_about_the_domain(pki: dict[str, IssuedCert]) -> None:
    good = facts(pki)
    with pytest.raises(ValueError, match=r"not of 'steven\.lab'"):
        CheckFacts(
            domain="steven.lab",
            dns_server=good.dns_server,
            dns_source=good.dns_source,
            srv=good.srv,
            addresses=(),
            leaf=good.leaf,
            cert_source="x",
            trust_source="y",
        )
    with pytest.raises(ValueError, match="has addresses"):
        AddressLookup(name="a.b", outcome="ok")


def test_naive_now_is_refused(pki: dict[str, IssuedCert]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_report(facts(pki), CheckOptions(), now=dt.datetime(2026, 1, 1))


TARGETS = ("vcse.cms.steven.lab", "b.cms.steven.lab", "vcse.steven.lab",
           "x.sub.cms.steven.lab", "cms.steven.lab")  # fmt: skip
LEAVES = ("vcse.cms.steven.lab", "vcse.steven.lab", "cn-only", "cn-not-san", "private",
          "expired", "via-inter", "server-only", "wildcard", "both-two")  # fmt: skip
DIRECTION_SETS: tuple[tuple[Direction, ...], ...] = (
    ("inbound",),
    ("outbound",),
    ("inbound", "outbound"),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, object], CheckOptions]:
    targets = tuple(draw(st.lists(st.sampled_from(TARGETS), min_size=0, max_size=3)))
    outcome = (
        "ok" if targets else draw(st.sampled_from(["nxdomain", "nodata", "servfail", "timeout"]))
    )
    with_address = tuple(t for t in targets if draw(st.booleans()))
    kwargs: dict[str, object] = {
        "targets": targets,
        "outcome": outcome,
        "with_address": with_address,
        "leaf": draw(st.sampled_from(LEAVES)),
        "intermediates": ("public-inter",) if draw(st.booleans()) else (),
        "roots": ("private-root",) if draw(st.booleans()) else (),
        "public": ("public-root",) if draw(st.booleans()) else (),
    }
    options = CheckOptions(
        hosted=draw(st.booleans()), directions=draw(st.sampled_from(DIRECTION_SETS))
    )
    return kwargs, options


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_verdict_agrees_with_the_rules(
    pki: dict[str, IssuedCert], scenario: tuple[dict[str, object], CheckOptions]
) -> None:
    kwargs, options = scenario
    report = build_report(facts(pki, **kwargs), options, now=NOW)  # type: ignore[arg-type]
    statuses = [r.status for r in report.rules]
    assert [r.number for r in report.rules] == list(range(1, 9))
    # A failed rule always stops the call; a federating report has no failed rule.
    if "fail" in statuses:
        assert not report.federates
    if report.federates:
        assert "fail" not in statuses
    else:
        assert report.fixes
    assert [a.direction for a in report.answers] == list(options.directions)
    for answer in report.answers:
        decision = answer.decision
        if decision is None:
            # Accepted, or refused at the TLS handshake before any SIP (as fedsim serve).
            assert answer.accepted or answer.summary.startswith("refused at the TLS handshake")
            continue
        assert decision.status == 504
        if answer.direction == "inbound":
            # Bare 504 to the peer; the Edge record reads back as the decision's code.
            assert decision.ms_diagnostics is None
            assert answer.edge_log is not None
            assert decision.edge_log is not None
            (record,) = parse_edge_log(answer.edge_log)
            assert record.result_symbol == decision.edge_log.result.symbol
        else:
            assert decision.ms_diagnostics is not None
            assert parse_ms_diagnostics(decision.ms_diagnostics).source == options.edge_fqdn
    text = render_text(report)
    assert text.rstrip().splitlines()[-1].startswith("Result: ")
    assert json.loads(render_json(report)) == json.loads(json.dumps(report_to_dict(report)))
    assert report_to_dict(report)["federates"] is report.federates
