"""Certificate facts, name matching and chain verdicts: pure, given ``now``."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from simulator.pki import (
    CertificateFacts,
    IssuedCert,
    PkiError,
    facts_from_certificate,
    facts_from_der,
    key_matches_certificate,
    load_pem_certificates,
    matches_name,
    verify_chain,
)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM

Certs = dict[str, x509.Certificate]

# (leaf, intermediates sent, private roots, public roots, usage) -> status, root CN, public?
CHAIN_CASES = [
    pytest.param(
        "sip.skype.lab", ["public-inter"], [], ["public-root"], "any",
        "trusted", "public-root", True, id="public-chain-trusted",
    ),
    pytest.param(
        "vcse.steven.lab", [], ["private-root"], [], "any",
        "trusted", "Steven Lab Root", False, id="private-root-trusted",
    ),
    pytest.param(
        "sip.skype.lab", ["public-inter"], ["private-root"], [], "any",
        "untrusted-root", "public-root", False, id="root-not-trusted",
    ),
    pytest.param(
        "vcse.steven.lab", [], ["public-root"], [], "any",
        "untrusted-root", "Steven Lab Root", False, id="private-ca-not-trusted",
    ),
    pytest.param(
        "expired", [], ["private-root"], [], "any",
        "expired", None, False, id="leaf-expired",
    ),
    pytest.param(
        "not-yet-valid", [], ["private-root"], [], "any",
        "not-yet-valid", None, False, id="leaf-not-yet-valid",
    ),
    pytest.param(
        "server-only", [], ["private-root"], [], "client",
        "wrong-usage", None, False, id="server-only-as-client",
    ),
    pytest.param(
        "server-only", [], ["private-root"], [], "server",
        "trusted", "Steven Lab Root", False, id="server-only-as-server",
    ),
    pytest.param(
        "no-eku", [], ["private-root"], [], "client",
        "trusted", "Steven Lab Root", False, id="no-eku-means-any-usage",
    ),
    pytest.param(
        "sip.skype.lab", [], [], ["public-root"], "any",
        "untrusted-root", "Public Issuing CA 1", False, id="intermediate-missing",
    ),
    pytest.param(
        "under-expired-ca", ["expired-ca"], ["private-root"], [], "any",
        "expired", "Steven Lab Root", False, id="intermediate-expired",
    ),
    pytest.param(
        "self-signed", [], [], [], "any",
        "untrusted-root", "selfie.steven.lab", False, id="self-signed-untrusted",
    ),
    pytest.param(
        "self-signed", [], ["self-signed"], [], "any",
        "trusted", "selfie.steven.lab", False, id="self-signed-pinned",
    ),
    pytest.param(
        "rsa", [], ["public-root", "private-root"], [], "server",
        "trusted", "Steven Lab Root", False, id="rsa-among-several-roots",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("leaf", "sent", "roots", "public", "usage", "status", "root_cn", "root_public"), CHAIN_CASES
)
def test_verify_chain_verdicts(
    lab_certs: Certs,
    now: dt.datetime,
    leaf: str,
    sent: list[str],
    roots: list[str],
    public: list[str],
    usage: str,
    status: str,
    root_cn: str | None,
    root_public: bool,
) -> None:
    verdict = verify_chain(
        lab_certs[leaf],
        [lab_certs[n] for n in sent],
        [lab_certs[n] for n in roots],
        now=now,
        public_roots=[lab_certs[n] for n in public],
        usage=usage,  # type: ignore[arg-type]
    )
    assert verdict.status == status, verdict.detail
    if root_cn is None:
        assert verdict.root_subject is None
    else:
        assert verdict.root_subject is not None
        assert f"CN={root_cn}" in verdict.root_subject
    assert verdict.root_is_public is root_public
    assert verdict.detail
    assert "\n" not in verdict.detail


def test_verdict_details_speak_plainly(lab_certs: Certs, now: dt.datetime) -> None:
    expired = verify_chain(lab_certs["expired"], [], [lab_certs["private-root"]], now=now)
    assert "'expired.steven.lab' expired on" in expired.detail
    wrong = verify_chain(
        lab_certs["server-only"], [], [lab_certs["private-root"]], now=now, usage="client"
    )
    assert "lacks clientAuth" in wrong.detail
    missing = verify_chain(lab_certs["sip.skype.lab"], [], [lab_certs["public-root"]], now=now)
    assert "intermediate" in missing.detail
    assert "Public Issuing CA 1" in missing.detail


def test_leaf_checks_come_before_trust(lab_certs: Certs, now: dt.datetime) -> None:
    """An expired certificate from an unknown CA is reported as expired (leaf first)."""
    verdict = verify_chain(lab_certs["expired"], [], [], now=now)
    assert verdict.status == "expired"


def test_verdict_depends_on_now(lab_certs: Certs, now: dt.datetime) -> None:
    later = now + dt.timedelta(days=2)
    roots = [lab_certs["private-root"]]
    assert verify_chain(lab_certs["not-yet-valid"], [], roots, now=later).status == "trusted"
    much_later = now + dt.timedelta(days=400)
    assert verify_chain(lab_certs["vcse.steven.lab"], [], roots, now=much_later).status == (
        "expired"
    )


def test_certificate_signed_by_a_non_ca_is_a_bad_chain(
    lab: dict[str, IssuedCert], lab_certs: Certs, now: dt.datetime
) -> None:
    """A leaf used as a CA (BasicConstraints CA:FALSE) cannot sign: the chain is bad."""
    signer = lab_certs["vcse.steven.lab"]
    signer_key = serialization.load_pem_private_key(
        lab["vcse.steven.lab"].key_path.read_bytes(), password=None
    )
    assert isinstance(signer_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged.lab")]))
        .issuer_name(signer.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(signer_key, hashes.SHA256())
    )
    verdict = verify_chain(forged, [signer], [lab_certs["private-root"]], now=now)
    assert verdict.status == "bad-chain"
    assert "not a CA" in verdict.detail


def test_same_issuer_name_with_another_key_does_not_chain(
    lab_certs: Certs, now: dt.datetime
) -> None:
    """Path building checks signatures, not just names."""
    key = ec.generate_private_key(ec.SECP256R1())
    impostor_root = (
        x509.CertificateBuilder()
        .subject_name(lab_certs["private-root"].subject)
        .issuer_name(lab_certs["private-root"].subject)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    verdict = verify_chain(lab_certs["vcse.steven.lab"], [], [impostor_root], now=now)
    assert verdict.status == "bad-chain"
    assert "did not sign" in verdict.detail


# --- facts ---------------------------------------------------------------------------


def test_facts_of_a_foreign_certificate_show_other_ekus_as_dotted_oids() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("expe.example.com", common_name="expe.example.com")
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    facts = facts_from_certificate(cert)
    assert facts.eku == ("clientAuth", "serverAuth", "1.3.6.1.5.5.7.3.3")
    assert facts.dns_sans == ("expe.example.com",)
    assert not facts.self_signed
    assert not facts.is_ca
    root = facts_from_der(x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(DER))
    assert root.self_signed
    assert root.is_ca
    assert root.subject_cn is None


def test_fingerprint_and_serial_match_openssl_format(lab_certs: Certs) -> None:
    cert = lab_certs["vcse.steven.lab"]
    facts = facts_from_certificate(cert)
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    assert facts.sha256.replace(":", "") == digest
    assert len(facts.sha256) == 95
    assert int(facts.serial_hex, 16) == cert.serial_number
    assert len(facts.serial_hex) % 2 == 0


def test_facts_from_der_rejects_garbage() -> None:
    with pytest.raises(PkiError):
        facts_from_der(b"\x30\x03\x02\x01\x00")


def _facts(
    cn: str | None, sans: tuple[str, ...], *, san_ext: bool | None = None
) -> CertificateFacts:
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return CertificateFacts(
        subject=f"CN={cn}" if cn else "",
        issuer="CN=ca",
        subject_cn=cn,
        dns_sans=sans,
        has_san_extension=bool(sans) if san_ext is None else san_ext,
        eku=(),
        not_before=moment,
        not_after=moment + dt.timedelta(days=1),
        is_ca=False,
        self_signed=False,
        serial_hex="01",
        sha256="00",
        key_type="ECDSA P-256",
    )


@pytest.mark.parametrize(
    ("cn", "sans", "san_ext", "fqdn", "expected"),
    [
        ("vcse.steven.lab", ("vcse.steven.lab",), None, "vcse.steven.lab", True),
        ("vcse.steven.lab", ("vcse.steven.lab",), None, "VCSE.Steven.LAB.", True),
        # The bare domain need not be present, and is not implied ([CISCO]).
        ("vcse.steven.lab", ("vcse.steven.lab",), None, "steven.lab", False),
        # CN counts only without DNS SANs.
        ("vcse.acano.steven.lab", ("other.steven.lab",), None, "vcse.acano.steven.lab", False),
        ("vcse.acano.steven.lab", (), False, "vcse.acano.steven.lab", True),
        # A SAN extension holding only IP addresses has no DNS SAN: the CN is used.
        ("vcse.acano.steven.lab", (), True, "vcse.acano.steven.lab", True),
        # No wildcard expansion (Expressway has no wildcard certs; Microsoft: unverified).
        ("*.steven.lab", ("*.steven.lab",), None, "vcse.steven.lab", False),
        ("*.steven.lab", ("*.steven.lab",), None, "*.steven.lab", True),
        (None, ("a.lab", "b.lab"), None, "b.lab", True),
        (None, (), False, "a.lab", False),
        ("a.lab", ("a.lab",), None, "", False),
        ("a.lab", ("a.lab",), None, ".", False),
    ],
)
def test_matches_name(
    cn: str | None, sans: tuple[str, ...], san_ext: bool | None, fqdn: str, expected: bool
) -> None:
    assert matches_name(_facts(cn, sans, san_ext=san_ext), fqdn) is expected


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_FQDN = st.lists(_LABEL, min_size=2, max_size=4).map(".".join)


@given(_FQDN, st.booleans(), st.booleans())
def test_a_san_matches_itself_in_any_case_with_or_without_root_dot(
    fqdn: str, upper: bool, dot: bool
) -> None:
    probe = (fqdn.upper() if upper else fqdn) + ("." if dot else "")
    assert matches_name(_facts(None, (fqdn,)), probe)
    assert matches_name(_facts(fqdn, (), san_ext=False), probe)


@given(_FQDN, _FQDN)
def test_cn_is_ignored_when_a_dns_san_exists(cn: str, san: str) -> None:
    facts = _facts(cn, (san,))
    assert matches_name(facts, cn) is (cn == san)


def test_names_for_matching_and_display_name() -> None:
    assert _facts("cn.lab", ("a.lab", "b.lab")).names_for_matching() == ("a.lab", "b.lab")
    assert _facts("cn.lab", ()).names_for_matching() == ("cn.lab",)
    assert _facts(None, ()).names_for_matching() == ()
    assert _facts("cn.lab", ("a.lab",)).display_name() == "cn.lab"
    assert _facts(None, ("a.lab",)).display_name() == "a.lab"
    assert _facts(None, ()).display_name() == "(no name)"


def test_facts_require_aware_times() -> None:
    facts = _facts("a.lab", ())
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(facts, not_before=dt.datetime(2026, 1, 1))


# --- PEM and keys ------------------------------------------------------------------


def test_load_pem_certificates_keeps_file_order(
    lab: dict[str, IssuedCert], lab_certs: Certs
) -> None:
    data = lab["sip.skype.lab"].chain_path.read_bytes()
    certs = load_pem_certificates(data, source="chain.pem")
    assert certs == [lab_certs["sip.skype.lab"], lab_certs["public-inter"]]


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"hello", "-----BEGIN CERTIFICATE-----"),
        (b"\x30\x82\x01\x00rest", "DER"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no certificate"),
        (b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "Base-64"),
    ],
)
def test_load_pem_certificates_errors_say_what_where_and_fix(data: bytes, hint: str) -> None:
    with pytest.raises(PkiError) as exc:
        load_pem_certificates(data, source="customer.pem")
    assert exc.value.path == "customer.pem"
    assert hint in str(exc.value)
    assert str(exc.value).startswith("customer.pem: ")


def test_key_matches_only_its_own_certificate(lab: dict[str, IssuedCert], lab_certs: Certs) -> None:
    key = lab["vcse.steven.lab"].key_path.read_bytes()
    assert key_matches_certificate(key, lab_certs["vcse.steven.lab"])
    assert not key_matches_certificate(key, lab_certs["cn-only"])
    rsa_key = lab["rsa"].key_path.read_bytes()
    assert key_matches_certificate(rsa_key, lab_certs["rsa"])
    assert not key_matches_certificate(rsa_key, lab_certs["vcse.steven.lab"])


def test_key_matches_rejects_non_keys_and_encrypted_keys(lab_certs: Certs) -> None:
    with pytest.raises(PkiError, match="not a PEM private key"):
        key_matches_certificate(b"nope", lab_certs["rsa"])
    encrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(PkiError, match="encrypted"):
        key_matches_certificate(encrypted, lab_certs["rsa"])
