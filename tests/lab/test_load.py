"""Loading good lab files: the DESIGN.md example, the seed lab, files, defaults, overrides."""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path

import dnslib
import pytest
import trustme

from simulator.errors import FedsimError, LabError
from simulator.lab import (
    AllowedPartner,
    CallSpec,
    CertFiles,
    DnsConfig,
    EdgeConfig,
    Expect,
    FrozenMap,
    Lab,
    PeerConfig,
    UserSpec,
    builtin_lab,
    load_lab,
    load_lab_text,
    parse_host_port,
    parse_hostport,
    seed_lab_text,
    with_overrides,
)
from simulator.pki.spec import CertSpec

FIXTURES = Path(__file__).parent / "fixtures"

MINIMAL = """\
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["root"]
[certs.root]
ca = true
"""


@pytest.fixture
def design_lab(tmp_path: Path) -> Path:
    """DESIGN.md's example lab in a folder with the zone file it names."""
    lab = tmp_path / "design_example.toml"
    shutil.copy(FIXTURES / "design_example.toml", lab)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "steven.lab.zone").write_text(
        "$ORIGIN steven.lab.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 300\n"
    )
    return lab


def test_design_example_loads_into_the_expected_model(design_lab: Path) -> None:
    lab = load_lab(design_lab)
    assert lab == Lab(
        path=design_lab,
        name="acano-srv-points-to-uc-domain",
        summary="SRV of the CMS domain targets the UC domain's Expressway-E",
        edge=EdgeConfig(
            fqdn="sip.skype.lab",
            domains=("skype.lab",),
            listen=("127.0.0.1", 5061),
            clients=("127.0.0.1", 5062),
            cert="sip.skype.lab",
            trust=("public-root",),
            federation="discovery",
            blocked=(),
            allowed=(AllowedPartner(domain="steven.lab", proxy_fqdn="vcse.steven.lab"),),
            hosted=False,
            users=FrozenMap({"bob": UserSpec(answer=486)}),
        ),
        dns=DnsConfig(
            listen=("127.0.0.1", 5353),
            zones=(design_lab.parent / "zones" / "steven.lab.zone",),
            records=(
                "_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.\n"
                "vcse.steven.lab.                         300 IN A   127.0.0.1\n"
            ),
            records_line=23,
        ),
        certs=(
            CertSpec(name="public-root", ca=True, public=True),
            CertSpec(
                name="vcse.steven.lab",
                issuer="public-root",
                cn="vcse.steven.lab",
                san=("vcse.steven.lab",),
                eku=("serverAuth", "clientAuth"),
            ),
            # The Edge's own certificate is implied by cert = fqdn (see load.py).
            CertSpec(
                name="sip.skype.lab",
                issuer="public-root",
                cn="sip.skype.lab",
                san=("sip.skype.lab",),
            ),
        ),
        peers=FrozenMap(
            {"expe": PeerConfig(name="expe", cert="vcse.steven.lab", answer=200)},
        ),
        calls=(
            CallSpec(
                direction="inbound",
                via="expe",
                from_="sip:2000@acano.steven.lab",
                to="sip:stejanss@skype.lab",
                expect=Expect(
                    status=504, edge_log="SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
                ),
                line=41,
            ),
        ),
    )
    assert lab.edge.answer_for("bob") == 486
    assert lab.edge.answer_for("alice") == 200
    assert hash(lab) == hash(load_lab(design_lab))


def test_records_line_points_at_the_first_record_in_the_file(design_lab: Path) -> None:
    lab = load_lab(design_lab)
    lines = design_lab.read_text().splitlines()
    assert lines[lab.dns.records_line - 1] == lab.dns.records.splitlines()[0]


def test_builtin_lab_has_the_seed_domains_and_calls() -> None:
    lab = builtin_lab()
    assert lab.path is None
    assert lab.edge.fqdn == "sip.skype.lab"
    assert lab.edge.domains == ("skype.lab",)
    assert lab.edge.machine == "sfvedge"
    assert lab.edge.answer_for("stejanss") == 200
    assert lab.edge.trust == ("public-root",)
    assert lab.cert_spec("public-root").public
    assert lab.cert_spec("private-root").ca
    assert "private-root" not in lab.edge.trust
    vcse = lab.cert_spec("vcse.steven.lab")
    assert (vcse.cn, vcse.san, vcse.issuer) == (
        "vcse.steven.lab",
        ("vcse.steven.lab",),
        "public-root",
    )
    assert set(vcse.eku) == {"serverAuth", "clientAuth"}
    assert lab.peers["expe"].cert == "vcse.steven.lab"
    for domain in ("steven.lab", "acano.steven.lab", "cms.steven.lab", "video.steven.lab"):
        assert f"_sipfederationtls._tcp.{domain}." in lab.dns.records
    outcomes = [(c.direction, c.from_, c.expect.status, c.expect.edge_log) for c in lab.calls]
    assert outcomes == [
        (
            "inbound",
            "sip:2000@acano.steven.lab",
            504,
            "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        ),
        ("inbound", "sip:2000@steven.lab", 200, None),
        ("inbound", "sip:2000@video.steven.lab", 504, "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"),
        ("outbound", "sip:stejanss@skype.lab", 504, None),
    ]
    outbound = lab.calls[3].expect
    assert outbound.ms_diagnostics == 1009
    assert dict(outbound.ms_diagnostics_params) == {
        "domain": "cms.steven.lab",
        "fqdn1": "vcse.sub.cms.steven.lab:5061",
    }


def _seed_records() -> dict[tuple[str, str], list[str]]:
    records: dict[tuple[str, str], list[str]] = {}
    for rr in dnslib.RR.fromZone(builtin_lab().dns.records):
        key = (str(rr.rname), dnslib.QTYPE[rr.rtype])
        records.setdefault(key, []).append(str(rr.rdata))
    return records


@pytest.mark.parametrize(
    ("name", "rtype", "rdata"),
    [
        ("_sipfederationtls._tcp.steven.lab.", "SRV", "0 0 5061 vcse.steven.lab."),
        ("vcse.steven.lab.", "A", "127.0.0.1"),
        ("_sipfederationtls._tcp.acano.steven.lab.", "SRV", "0 0 5061 vcse.steven.lab."),
        ("_sipfederationtls._tcp.cms.steven.lab.", "SRV", "0 0 5061 vcse.sub.cms.steven.lab."),
        ("vcse.sub.cms.steven.lab.", "A", "127.0.0.1"),
        ("_sipfederationtls._tcp.video.steven.lab.", "SRV", "0 0 5061 vcse.video.steven.lab."),
        ("vcse.video.steven.lab.", "A", "127.0.0.1"),
        ("_sipfederationtls._tcp.skype.lab.", "SRV", "0 0 5061 sip.skype.lab."),
        ("sip.skype.lab.", "A", "127.0.0.1"),
    ],
)
def test_seed_records_parse_as_zone_lines(name: str, rtype: str, rdata: str) -> None:
    assert _seed_records()[name, rtype] == [rdata]


def test_seed_zones_have_an_soa_so_missing_names_are_nxdomain() -> None:
    records = _seed_records()
    assert ("steven.lab.", "SOA") in records
    assert ("skype.lab.", "SOA") in records
    assert not any(name.startswith("_sipfederationtls._tcp.nosrv.") for name, _ in records)


def test_seed_file_loads_from_disk_as_a_template() -> None:
    seed = resources.files("simulator.lab").joinpath("seed.toml")
    with resources.as_file(seed) as path:
        from_disk = load_lab(path)
    assert from_disk.path == path
    assert from_disk.name == "seed"
    assert from_disk.calls == builtin_lab().calls
    assert seed_lab_text() == path.read_text()


def test_name_defaults_to_the_file_stem_and_summary_to_empty(tmp_path: Path) -> None:
    lab = load_lab_text(MINIMAL, path=tmp_path / "my-lab.toml")
    assert (lab.name, lab.summary) == ("my-lab", "")
    assert lab.dns == DnsConfig()
    assert lab.peers == {}
    assert lab.calls == ()


def test_cert_and_trust_accept_pem_files_relative_to_the_lab(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("sip.skype.lab")
    (tmp_path / "pki").mkdir()
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "pki" / "edge.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "pki" / "edge.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "pki" / "root.pem"))
    text = """\
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = { cert = "pki/edge.pem", key = "pki/edge.key", chain = "pki/root.pem" }
trust = ["pki/root.pem"]
"""
    lab = load_lab_text(text, path=tmp_path / "lab.toml")
    pki = tmp_path.resolve() / "pki"
    assert lab.edge.cert == CertFiles(
        cert=pki / "edge.pem", key=pki / "edge.key", chain=pki / "root.pem"
    )
    assert lab.edge.trust == (pki / "root.pem",)


def test_allowed_partners_as_inline_tables_and_blocked_domains(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'trust = ["root"]\n',
        'trust = ["root"]\nblocked = ["Evil.Example."]\nfederation = "allowlist"\n'
        'allowed = [{ domain = "steven.lab" }, { domain = "acano.steven.lab" }]\n',
    )
    edge = load_lab_text(text, path=tmp_path / "lab.toml").edge
    assert edge.blocked == ("evil.example",)  # domains are case-folded, trailing dot dropped
    assert edge.federation == "allowlist"
    assert [p.domain for p in edge.allowed] == ["steven.lab", "acano.steven.lab"]


def test_cert_dates_are_utc_datetimes(tmp_path: Path) -> None:
    text = MINIMAL + (
        '[certs.leaf]\nissuer = "root"\nsan = []\neku = ["serverAuth"]\nkey_type = "rsa"\n'
        "not_before = 2024-01-01T02:00:00+02:00\nnot_after = 2025-01-01T00:00:00\n"
    )
    leaf = load_lab_text(text, path=tmp_path / "lab.toml").cert_spec("leaf")
    assert leaf.not_before == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert leaf.not_after == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert (leaf.san, leaf.eku, leaf.key_type) == ((), ("serverAuth",), "rsa")


def test_cert_spec_of_an_unknown_name_is_a_key_error(tmp_path: Path) -> None:
    lab = load_lab_text(MINIMAL, path=tmp_path / "lab.toml")
    with pytest.raises(KeyError, match="nope"):
        lab.cert_spec("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5061", ("127.0.0.1", 5061)),
        ("[::1]:5061", ("::1", 5061)),
        (":53", ("127.0.0.1", 53)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_hostport_accepts(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "::1:5061", "[::1]", "[nope]:5", "h:65536", "h:-1", "bad_host:1", "h:x"]
)
def test_parse_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_hostport(text)


def test_with_overrides_replaces_only_the_given_addresses() -> None:
    lab = builtin_lab()
    moved = with_overrides(lab, listen=("127.0.0.1", 0), dns_listen=("::1", 0))
    assert moved.edge.listen == ("127.0.0.1", 0)
    assert moved.edge.clients == lab.edge.clients
    assert moved.dns.listen == ("::1", 0)
    assert moved.dns.records == lab.dns.records
    assert with_overrides(lab) == lab


def test_load_lab_of_a_missing_file_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot read lab file"):
        load_lab(tmp_path / "nope.toml")


def test_load_lab_of_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_bytes(b'name = "x"\nsummary = "\xff"\n')
    with pytest.raises(LabError) as info:
        load_lab(path)
    assert str(info.value).startswith(f"{path}:2: not UTF-8")


def test_frozen_map_is_immutable_hashable_and_compares_as_a_mapping() -> None:
    fm = FrozenMap({"a": 1, "b": 2})
    assert fm == {"b": 2, "a": 1}
    assert hash(fm) == hash(FrozenMap([("b", 2), ("a", 1)]))
    assert list(fm) == ["a", "b"]
    with pytest.raises(TypeError):
        fm["a"] = 3  # type: ignore[index]


def test_model_guards_invariants_when_built_by_hand() -> None:
    with pytest.raises(ValueError, match="both blocked and allowed"):
        EdgeConfig(
            fqdn="e.lab",
            domains=("lab",),
            cert="c",
            trust=(),
            blocked=("x.lab",),
            allowed=(AllowedPartner(domain="x.lab"),),
        )
    with pytest.raises(ValueError, match="needs a peer"):
        CallSpec(direction="inbound", from_="sip:a@b", to="sip:c@d", expect=Expect(status=200))
    with pytest.raises(ValueError, match="outside 100-699"):
        PeerConfig(name="p", cert="c", answer=99)


def test_parse_host_port_reports_the_option_as_one_line() -> None:
    assert parse_host_port("[::1]:5061", what="--listen") == ("::1", 5061)
    with pytest.raises(FedsimError) as info:
        parse_host_port("5061", what="--listen")
    assert str(info.value).startswith("--listen '5061': missing ':port' (write it as HOST:PORT")


def test_port_zero_listeners_may_share_a_host(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'trust = ["root"]\n', 'trust = ["root"]\nlisten = "127.0.0.1:0"\nclients = "127.0.0.1:0"\n'
    )
    lab = load_lab_text(text + '[dns]\nlisten = "127.0.0.1:0"\n', path=tmp_path / "lab.toml")
    assert lab.edge.listen == lab.edge.clients == lab.dns.listen == ("127.0.0.1", 0)


def test_a_user_may_be_a_status_or_a_table(tmp_path: Path) -> None:
    users = (
        "users = { bob = 486, carol = { federation = false }, "
        'alice = { presence = "busy", contacts = ["sip:x@partner.lab"] }, '
        "dave = { answer = 480 } }\n"
    )
    text = MINIMAL.replace('trust = ["root"]\n', 'trust = ["root"]\n' + users)
    lab = load_lab_text(text, path=tmp_path / "lab.toml")
    assert lab.edge.users == {
        "bob": UserSpec(answer=486),
        "carol": UserSpec(federation=False),
        "alice": UserSpec(presence="busy", contacts=("sip:x@partner.lab",)),
        "dave": UserSpec(answer=480),
    }
    assert lab.edge.answers == {"bob": 486, "dave": 480}
    assert lab.edge.answer_for("carol") == 200
