"""The I/O half of fedsim check: --dns parsing, resolv.conf, PEM files, the CA store, DNS."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from simulator.check.gather import (
    lookup_dns,
    parse_dns_server,
    read_certificate,
    read_trust,
    system_dns_server,
)
from simulator.dns import ZoneSet, parse_zone_text, serve_dns
from simulator.errors import FedsimError
from simulator.pki import IssuedCert


@pytest.mark.parametrize(
    ("text", "server"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("dns.steven.lab", ("dns.steven.lab", 53)),
        ("dns.steven.lab:53", ("dns.steven.lab", 53)),
    ],
)
def test_dns_server_forms(text: str, server: tuple[str, int]) -> None:
    assert parse_dns_server(text) == server


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "neither an IP address nor a host name"),
        ("two words", "neither an IP address nor a host name"),
        (":53", "the host is missing"),
        ("127.0.0.1:0", "port 0 is not a DNS server's port"),
        ("127.0.0.1:dns", "port 'dns' is not a number"),
        ("[::1", "expected [IPv6]:port"),
        ("[nope]:53", "is not an IPv6 address"),
    ],
)
def test_bad_dns_server_says_why(text: str, why: str) -> None:
    with pytest.raises(FedsimError) as info:
        parse_dns_server(text)
    assert why in str(info.value)
    assert str(info.value).startswith(f"--dns {text!r}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "server"),
    [
        ("nameserver 10.0.0.53\nnameserver 10.0.0.54\n", ("10.0.0.53", 53)),
        ("# generated\nsearch lab\nnameserver 127.0.0.53 # stub\n", ("127.0.0.53", 53)),
        ("nameserver fe80::1%eth0\n", ("fe80::1%eth0", 53)),
        ("nameserver not-an-ip\nnameserver ::1\n", ("::1", 53)),
        (";nameserver 10.9.9.9\nnameserver 10.0.0.1\n", ("10.0.0.1", 53)),
    ],
)
def test_system_resolver_is_the_first_nameserver(
    tmp_path: Path, content: str, server: tuple[str, int]
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(content)
    assert system_dns_server(conf) == server


def test_system_resolver_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(FedsimError, match="cannot read it"):
        system_dns_server(tmp_path / "absent.conf")
    conf = tmp_path / "resolv.conf"
    conf.write_text("search lab\n")
    with pytest.raises(FedsimError, match="no nameserver line"):
        system_dns_server(conf)


def test_leaf_is_the_first_non_ca_certificate(pki: dict[str, IssuedCert], tmp_path: Path) -> None:
    # An export with the CA first: the leaf is still found, the CA counts as sent.
    both = tmp_path / "both.pem"
    both.write_bytes(
        pki["public-inter"].cert_path.read_bytes() + pki["via-inter"].cert_path.read_bytes()
    )
    got = read_certificate(both, [pki["public-root"].cert_path])
    assert got.leaf.subject.rfc4514_string() == "CN=vcse.cms.steven.lab"
    assert [c.subject.rfc4514_string() for c in got.intermediates] == [
        "CN=Lab Public Issuing CA,O=fedsim lab PKI",
        "CN=Lab Public Root,O=fedsim lab PKI",
    ]
    assert got.source == f"{both}, {pki['public-root'].cert_path}"


def test_der_certificate_is_refused_with_a_fix(tmp_path: Path) -> None:
    der = tmp_path / "expe.cer"
    der.write_bytes(b"\x30\x82\x01\x00" + b"\x00" * 16)
    with pytest.raises(FedsimError, match="it looks like DER"):
        read_certificate(der)
    (tmp_path / "is-a-dir").mkdir()
    with pytest.raises(FedsimError, match=r"is-a-dir: cannot read it"):
        read_certificate(tmp_path / "is-a-dir")


def test_system_store_skips_what_it_cannot_parse(
    pki: dict[str, IssuedCert], tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    root = pki["public-root"].cert_path.read_bytes()
    bundle.write_bytes(broken + root + root)  # a bad block, and a duplicate
    trust = read_trust([], [], system_cafile=str(bundle), system_capath=None)
    assert len(trust.public_roots) == 1
    assert trust.roots == ()
    assert trust.source == f"1 public from the system store {bundle}"


def test_system_store_directory_of_hashed_files(pki: dict[str, IssuedCert], tmp_path: Path) -> None:
    (tmp_path / "0a1b2c3d.0").write_bytes(pki["public-root"].cert_path.read_bytes())
    (tmp_path / "README").write_text("not a certificate")
    trust = read_trust(
        [pki["private-root"].cert_path],
        [],
        system_cafile=str(tmp_path / "missing.pem"),
        system_capath=str(tmp_path),
    )
    assert len(trust.public_roots) == 1
    assert len(trust.roots) == 1
    assert trust.source.startswith(f"1 public from the system store {tmp_path}; 1 private")

    empty = read_trust([], [], system_cafile=None, system_capath=str(tmp_path / "nowhere"))
    assert empty.public_roots == ()
    assert empty.source.startswith("none: no system CA store found")


def test_public_trust_replaces_the_system_store(pki: dict[str, IssuedCert]) -> None:
    path = pki["public-root"].cert_path
    trust = read_trust([], [path], system_cafile="/nonexistent", system_capath=None)
    assert len(trust.public_roots) == 1
    assert trust.source == f"1 public from --public-trust {path}"


async def test_lookup_gives_srv_order_and_each_targets_addresses(nursery: trio.Nursery) -> None:
    records = """\
_sipfederationtls._tcp.two.lab. 60 IN SRV 20 0 5061 b.two.lab.
_sipfederationtls._tcp.two.lab. 60 IN SRV 10 0 5062 a.two.lab.
_sipfederationtls._tcp.two.lab. 60 IN SRV 30 0 5063 a.two.lab.
b.two.lab. 60 IN A 192.0.2.2
b.two.lab. 60 IN AAAA 2001:db8::2
"""
    zones = ZoneSet.from_records(parse_zone_text(records, source="<t>"))
    server = await nursery.start(serve_dns, zones, "127.0.0.1", 0)
    srv, addresses = await lookup_dns("two.lab", server, query_timeout=0.5)
    assert srv.name == "_sipfederationtls._tcp.two.lab"
    assert [t.render() for t in srv.targets] == [
        "a.two.lab:5062",
        "b.two.lab:5061",
        "a.two.lab:5063",
    ]
    assert [(a.name, a.outcome, a.addresses) for a in addresses] == [
        ("a.two.lab", "nxdomain", ()),
        ("b.two.lab", "ok", ("192.0.2.2", "2001:db8::2")),
    ]

    srv, addresses = await lookup_dns("none.two.lab", server, query_timeout=0.5)
    assert (srv.outcome, srv.targets, addresses) == ("nxdomain", (), ())
