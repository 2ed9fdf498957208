"""Screening and routing: the two pure steps before any federation rule."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.policy import (
    AllowedDomain,
    EdgeRules,
    EdgeSettings,
    OutboundTarget,
    Parties,
    Rejection,
    inbound_route,
    screen_inbound,
    screen_outbound,
)
from simulator.sip import Request, parse_message

EDGE = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))


def request(
    *,
    method: str = "INVITE",
    uri: str = "sip:stejanss@skype.lab",
    from_: str = "<sip:2000@acano.steven.lab>;tag=1",
    to: str = "<sip:stejanss@skype.lab>",
    extra: str = "",
) -> Request:
    message = parse_message(
        (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKx\r\n"
            f"From: {from_}\r\nTo: {to}\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


# --- the caller's domain, from parsed URIs (what uri_host once re-parsed from text) ---


@pytest.mark.parametrize(
    ("from_", "domain"),
    [
        ("<sip:2000@acano.steven.lab>;tag=1", "acano.steven.lab"),
        ('"DX70 Steven" <sip:2000@Acano.Steven.Lab>;tag=9fea3e7d70afd884', "acano.steven.lab"),
        ("<sips:stejanss@skype.lab:5061;transport=tls>;tag=1", "skype.lab"),
        ("<sip:acano.steven.lab>;tag=1", "acano.steven.lab"),
        ("sip:2000@Acano.Steven.Lab.;tag=1", "acano.steven.lab"),
    ],
)
def test_the_caller_domain_is_the_from_host(from_: str, domain: str) -> None:
    parties = screen_inbound(request(from_=from_), EDGE)
    assert parties == Parties(sender=domain)
    route = inbound_route(parties, EDGE)
    assert (route.domain, route.source) == (domain, "from")
    # One of the Edge's own domains (split domain) is never looked up: only a hosting
    # provider sharing the address space may send for it (field cases C11).
    own = domain in EDGE.domains
    assert route.srv_name == (None if own else f"_sipfederationtls._tcp.{domain}")


@pytest.mark.parametrize(
    ("source", "domain"), [("pai", "acano.steven.lab"), ("from", "steven.lab")]
)
def test_p_asserted_identity_is_parsed_once_and_wins_unless_told_otherwise(
    source: str, domain: str
) -> None:
    settings = dataclasses.replace(EDGE, rules=EdgeRules(domain_source=source))  # type: ignore[arg-type]
    parties = screen_inbound(
        request(
            from_="<sip:2000@steven.lab>;tag=1",
            extra='P-Asserted-Identity: "X" <sip:2000@Acano.Steven.Lab>\r\n',
        ),
        settings,
    )
    assert parties == Parties(sender="steven.lab", asserted="acano.steven.lab")
    assert inbound_route(parties, settings).domain == domain


LONG = ".".join(["a"] * 150) + ".lab"
MF0 = "Max-Forwards: 0\r\n"


@pytest.mark.parametrize(
    ("kwargs", "status", "rule"),
    [
        ({"uri": "tel:+3220000"}, 416, "unsupported-uri"),
        ({"from_": "<tel:+3220000>;tag=1"}, 400, "unsupported-uri"),
        ({"to": "<mailto:a@b.lab>"}, 400, "unsupported-uri"),
        ({"extra": "P-Asserted-Identity: <tel:+1>\r\n"}, 400, "unsupported-uri"),
        ({"extra": "P-Asserted-Identity: <<bad\r\n"}, 400, "unsupported-uri"),
        ({"from_": f"<sip:2000@{LONG}>;tag=1"}, 400, "unsupported-uri"),
        ({"from_": "<sip:2000@[::1]>;tag=1"}, 400, "unsupported-uri"),
        ({"method": "BYE"}, 481, "no-dialog"),
        ({"method": "NOTIFY"}, 481, "no-dialog"),
    ],
)
def test_inbound_requests_that_cannot_be_routed_are_answered_by_the_edge(
    kwargs: dict[str, str], status: int, rule: str
) -> None:
    rejection = screen_inbound(request(**kwargs), EDGE)
    assert isinstance(rejection, Rejection)
    assert (rejection.status, rejection.rule, rejection.fidelity) == (status, rule, "inferred")
    assert "\n" not in rejection.why


@pytest.mark.parametrize(
    ("settings", "srv"),
    [
        (EDGE, "_sipfederationtls._tcp.acano.steven.lab"),
        (dataclasses.replace(EDGE, federation="off"), None),
        (dataclasses.replace(EDGE, blocked=("steven.lab",)), None),
        (dataclasses.replace(EDGE, federation="allowlist"), None),
        (
            dataclasses.replace(
                EDGE,
                allowed=(AllowedDomain(domain="acano.steven.lab", proxy_fqdn="vcse.steven.lab"),),
            ),
            None,
        ),
    ],
)
def test_the_route_asks_dns_only_when_the_decision_needs_it(
    settings: EdgeSettings, srv: str | None
) -> None:
    assert inbound_route(Parties(sender="acano.steven.lab"), settings).srv_name == srv


@pytest.mark.parametrize(
    ("uri", "extra", "expected"),
    [
        ("sip:bob@skype.lab", "", OutboundTarget(domain="skype.lab", local=True)),
        ("sip:bob@Cms.Steven.Lab", "", OutboundTarget(domain="cms.steven.lab", local=False)),
        ("tel:+3220000", "", Rejection(status=416, rule="unsupported-uri", why="x")),
        (f"sip:bob@{LONG}", "", Rejection(status=484, rule="unroutable-domain", why="x")),
        ("sip:bob@[::1]", "", Rejection(status=484, rule="unroutable-domain", why="x")),
        ("sip:bob@cms.steven.lab", MF0, Rejection(status=483, rule="too-many-hops", why="x")),
        ("sip:bob@skype.lab", MF0, OutboundTarget(domain="skype.lab", local=True)),
    ],
)  # fmt: skip
def test_outbound_screening(uri: str, extra: str, expected: Rejection | OutboundTarget) -> None:
    got = screen_outbound(request(uri=uri, extra=extra), EDGE)
    if isinstance(expected, Rejection):
        assert isinstance(got, Rejection)
        assert (got.status, got.rule) == (expected.status, expected.rule)
    else:
        assert got == expected
