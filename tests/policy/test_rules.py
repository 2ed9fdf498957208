"""Microsoft's name rules: strict domain, blocked suffixes, certificate names, URIs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.policy import (
    AllowedDomain,
    EdgeSettings,
    PeerCertificate,
    SrvLookup,
    SrvTarget,
    domain_blocked_by,
    in_exact_domain,
    name_matches,
    names_for_matching,
    srv_name,
)

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@pytest.mark.parametrize(
    ("fqdn", "domain", "expected"),
    [
        # [CISCO] and DESIGN.md examples.
        ("vcse.acano.steven.lab", "acano.steven.lab", True),
        ("vcse.steven.lab", "acano.steven.lab", False),  # parent domain
        ("vcse.sub.acano.steven.lab", "acano.steven.lab", False),  # sub-domain
        ("vcse.cms.steven.lab", "cms.steven.lab", True),
        ("vcse.sub.cms.steven.lab", "cms.steven.lab", False),
        ("expe.example.com", "example.com", True),
        ("expe.dummy.com", "example.com", False),  # other domain
        ("expe.sub.example.com", "example.com", False),
        # Case and root dot are not significant (RFC 4343).
        ("VCSE.Acano.Steven.Lab.", "acano.steven.lab", True),
        ("vcse.acano.steven.lab", "ACANO.STEVEN.LAB.", True),
        # Label boundary: "xacano.steven.lab" is not under acano.steven.lab.
        ("xacano.steven.lab", "acano.steven.lab", False),
        (".acano.steven.lab", "acano.steven.lab", False),  # empty label
        ("acano.steven.lab", "acano.steven.lab", False),  # equal: U, rejected by default
    ],
)
def test_in_exact_domain(fqdn: str, domain: str, expected: bool) -> None:
    assert in_exact_domain(fqdn, domain) is expected


def test_target_equal_to_domain_is_a_setting() -> None:
    assert in_exact_domain("acano.steven.lab.", "acano.steven.lab", accept_equal=True)


@given(label=LABEL, domain=DOMAIN)
def test_one_label_under_the_domain_is_always_in_it(label: str, domain: str) -> None:
    assert in_exact_domain(f"{label}.{domain}", domain)


@given(labels=st.lists(LABEL, min_size=2, max_size=4), domain=DOMAIN)
def test_deeper_names_are_never_in_the_domain(labels: list[str], domain: str) -> None:
    assert not in_exact_domain(".".join([*labels, domain]), domain)


@given(fqdn=DOMAIN, domain=DOMAIN)
def test_in_exact_domain_means_exactly_one_more_label(fqdn: str, domain: str) -> None:
    expected = fqdn.split(".", 1)[-1] == domain and "." in fqdn
    assert in_exact_domain(fqdn, domain) is expected


@pytest.mark.parametrize(
    ("domain", "blocked", "expected"),
    [
        ("steven.lab", ("steven.lab",), "steven.lab"),
        ("acano.steven.lab", ("steven.lab",), "steven.lab"),  # sub-domain: I
        ("ACANO.steven.lab", ("Steven.Lab",), "Steven.Lab"),
        ("xsteven.lab", ("steven.lab",), None),  # label boundary
        ("steven.lab", ("acano.steven.lab",), None),  # parent is not blocked
        ("cms.steven.lab", (), None),
    ],
)
def test_blocked_domains_match_on_suffix(
    domain: str, blocked: tuple[str, ...], expected: str | None
) -> None:
    assert domain_blocked_by(domain, blocked) == expected


@pytest.mark.parametrize(
    ("pattern", "fqdn", "wildcard", "expected"),
    [
        ("vcse.acano.steven.lab", "VCSE.acano.steven.lab.", False, True),
        ("vcse.steven.lab", "vcse.acano.steven.lab", False, False),
        ("*.acano.steven.lab", "vcse.acano.steven.lab", False, False),  # U: off by default
        ("*.acano.steven.lab", "vcse.acano.steven.lab", True, True),
        ("*.acano.steven.lab", "a.vcse.acano.steven.lab", True, False),  # one label only
        ("*.acano.steven.lab", "acano.steven.lab", True, False),
    ],
)
def test_certificate_name_matching(pattern: str, fqdn: str, wildcard: bool, expected: bool) -> None:
    assert name_matches(pattern, fqdn, allow_wildcard=wildcard) is expected


@pytest.mark.parametrize(
    ("cn", "sans", "expected"),
    [
        ("vcse.steven.lab", (), ("vcse.steven.lab",)),  # CN-only certificate: CN counts
        ("vcse.steven.lab", ("vcse.acano.steven.lab",), ("vcse.acano.steven.lab",)),  # CN ignored
        (None, ("a.lab", "b.lab"), ("a.lab", "b.lab")),
        (None, (), ()),
    ],
)
def test_names_for_matching_uses_cn_only_without_sans(
    cn: str | None, sans: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert names_for_matching(cn, sans) == expected


def test_peer_certificate_display_name_prefers_the_cn() -> None:
    cert = PeerCertificate.from_subject(cn="vcse.steven.lab", dns_sans=("vcse.acano.steven.lab",))
    assert cert.display_name == "vcse.steven.lab"
    assert cert.names == ("vcse.acano.steven.lab",)
    assert PeerCertificate.from_subject(cn=None, dns_sans=("x.lab",)).display_name == "x.lab"
    with pytest.raises(ValueError, match="neither CN nor DNS SAN"):
        PeerCertificate.from_subject(cn=None, dns_sans=())


def test_srv_name() -> None:
    assert srv_name("Acano.Steven.Lab.") == "_sipfederationtls._tcp.acano.steven.lab"


def test_settings_refuse_a_domain_on_both_lists() -> None:
    with pytest.raises(ValueError, match="both"):
        EdgeSettings(
            fqdn="sip.skype.lab",
            domains=("skype.lab",),
            blocked=("steven.lab",),
            allowed=(AllowedDomain(domain="Steven.Lab"),),
        )


@pytest.mark.parametrize(
    "bad",
    [
        {"domains": ()},
        {"fqdn": "not a name"},
        {"allowed": (AllowedDomain(domain="a.lab"), AllowedDomain(domain="A.lab"))},
        {"server_header": ""},
    ],
)
def test_settings_are_validated_when_built(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"fqdn": "sip.skype.lab", "domains": ("skype.lab",), **bad}
    with pytest.raises(ValueError):  # noqa: PT011 (each case has its own message)
        EdgeSettings(**fields)  # type: ignore[arg-type]


def test_srv_lookup_outcome_and_targets_agree() -> None:
    target = SrvTarget(target="vcse.acano.steven.lab.", port=5061)
    SrvLookup(name="_sipfederationtls._tcp.acano.steven.lab", outcome="ok", targets=(target,))
    with pytest.raises(ValueError, match="targets"):
        SrvLookup(name="_sipfederationtls._tcp.acano.steven.lab", outcome="ok")
    with pytest.raises(ValueError, match="targets"):
        SrvLookup(
            name="_sipfederationtls._tcp.acano.steven.lab", outcome="nxdomain", targets=(target,)
        )
    assert target.render() == "vcse.acano.steven.lab:5061"
