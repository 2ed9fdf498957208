"""issue_pki: every spec becomes exactly the certificate it asks for, files are safe and reused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from simulator.pki import CertSpec, IssuedCert, PkiError, facts_from_der, issue_pki
from simulator.pki.lab import INDEX_NAME, file_stem, read_lab_specs

DAY = dt.timedelta(days=1)
_DER = Encoding.DER

# name -> (subject CN, DNS SANs, SAN extension?, EKU, CA?, issuer CN, key type)
EXPECTED: dict[str, tuple[str | None, tuple[str, ...], bool, tuple[str, ...], bool, str, str]] = {
    "public-root": (
        "public-root", (), False, (), True, "public-root", "ECDSA P-256"),
    "public-inter": (
        "Public Issuing CA 1", (), False, (), True, "public-root", "ECDSA P-256"),
    "private-root": (
        "Steven Lab Root", (), False, (), True, "Steven Lab Root", "ECDSA P-256"),
    "sip.skype.lab": (
        "sip.skype.lab", ("sip.skype.lab", "skype.lab"), True, ("serverAuth", "clientAuth"),
        False, "Public Issuing CA 1", "ECDSA P-256"),
    "vcse.steven.lab": (
        "vcse.steven.lab", ("vcse.steven.lab",), True, ("serverAuth", "clientAuth"),
        False, "Steven Lab Root", "ECDSA P-256"),
    "cn-only": (
        "vcse.acano.steven.lab", (), False, ("serverAuth", "clientAuth"),
        False, "Steven Lab Root", "ECDSA P-256"),
    "server-only": (
        "server.steven.lab", ("server.steven.lab",), True, ("serverAuth",),
        False, "Steven Lab Root", "ECDSA P-256"),
    "no-eku": (
        "noeku.steven.lab", ("noeku.steven.lab",), True, (), False, "Steven Lab Root",
        "ECDSA P-256"),
    "no-cn": (
        None, ("nocn.steven.lab",), True, ("serverAuth", "clientAuth"),
        False, "Steven Lab Root", "ECDSA P-256"),
    "rsa": (
        "rsa.steven.lab", ("rsa.steven.lab",), True, ("serverAuth", "clientAuth"),
        False, "Steven Lab Root", "RSA 2048"),
    "self-signed": (
        "selfie.steven.lab", ("selfie.steven.lab",), True, ("serverAuth", "clientAuth"),
        False, "selfie.steven.lab", "ECDSA P-256"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_issued_certificate_has_exactly_the_requested_names_and_usages(
    name: str, lab_certs: dict[str, x509.Certificate]
) -> None:
    cn, sans, has_san, eku, is_ca, issuer_cn, key_type = EXPECTED[name]
    facts = facts_from_der(lab_certs[name].public_bytes(_DER))
    assert facts.subject_cn == cn
    assert facts.dns_sans == sans
    assert facts.has_san_extension is has_san
    assert facts.eku == eku
    assert facts.is_ca is is_ca
    assert f"CN={issuer_cn}" in facts.issuer
    assert facts.key_type == key_type
    assert facts.self_signed is (name in {"public-root", "private-root", "self-signed"})


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("vcse.steven.lab", -DAY, dt.timedelta(days=397)),
        ("public-root", -DAY, dt.timedelta(days=3650)),
        ("expired", dt.timedelta(days=-365), -DAY),
        ("not-yet-valid", DAY, dt.timedelta(days=366)),
    ],
)
def test_validity_window_is_relative_to_now(
    name: str,
    start: dt.timedelta,
    end: dt.timedelta,
    lab_certs: dict[str, x509.Certificate],
    now: dt.datetime,
) -> None:
    facts = facts_from_der(lab_certs[name].public_bytes(_DER))
    assert (facts.not_before, facts.not_after) == (now + start, now + end)


def test_leaf_extensions_follow_the_lab_profile(lab_certs: dict[str, x509.Certificate]) -> None:
    ecdsa, rsa_leaf = lab_certs["vcse.steven.lab"], lab_certs["rsa"]
    for cert in (ecdsa, rsa_leaf):
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical
        assert not bc.value.ca
        crl = x509.CRLDistributionPoints
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(crl)
    ku_ec = ecdsa.extensions.get_extension_for_class(x509.KeyUsage).value
    ku_rsa = rsa_leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku_ec.digital_signature
    assert not ku_ec.key_encipherment
    assert ku_rsa.digital_signature
    assert ku_rsa.key_encipherment
    # RFC 5280 §4.2.1.6: SAN is critical only when the subject is empty.
    assert not ecdsa.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    no_cn = lab_certs["no-cn"].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert no_cn.critical


def test_chain_file_is_leaf_then_intermediates_without_root(
    lab: dict[str, IssuedCert], lab_certs: dict[str, x509.Certificate]
) -> None:
    leaf = lab["sip.skype.lab"]
    chain = x509.load_pem_x509_certificates(leaf.chain_path.read_bytes())
    assert chain == [lab_certs["sip.skype.lab"], lab_certs["public-inter"]]
    assert leaf.root_path == lab["public-root"].cert_path
    assert leaf.public
    assert not leaf.is_ca
    private = lab["vcse.steven.lab"]
    assert x509.load_pem_x509_certificates(private.chain_path.read_bytes()) == [
        lab_certs["vcse.steven.lab"]
    ]
    assert private.root_path == lab["private-root"].cert_path
    assert not private.public
    root = lab["public-root"]
    assert root.root_path == root.cert_path
    assert root.is_ca
    assert root.public
    assert lab["self-signed"].root_path == lab["self-signed"].cert_path


def test_key_files_are_mode_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        issued = issue_pki(
            [CertSpec(name="root", ca=True), CertSpec(name="leaf", issuer="root", cn="a.lab")],
            tmp_path,
            now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    finally:
        os.umask(old)
    for item in issued.values():
        assert stat.S_IMODE(item.key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(item.cert_path.stat().st_mode) == 0o644
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_key_files_of_the_shared_lab_are_private(lab: dict[str, IssuedCert]) -> None:
    assert {stat.S_IMODE(i.key_path.stat().st_mode) for i in lab.values()} == {0o600}


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != INDEX_NAME}


SMALL = (
    CertSpec(name="root", ca=True),
    CertSpec(name="inter", ca=True, issuer="root"),
    CertSpec(name="leaf", issuer="inter", cn="leaf.lab"),
    CertSpec(name="other", issuer="root", cn="other.lab"),
    CertSpec(name="future", issuer="root", cn="future.lab", validity="not-yet-valid"),
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_rerun_with_identical_specs_reuses_every_file(tmp_path: Path) -> None:
    issue_pki(SMALL, tmp_path, now=T0)
    before = _snapshot(tmp_path)
    again = issue_pki(tuple(reversed(SMALL)), tmp_path, now=T0 + dt.timedelta(hours=3))
    assert _snapshot(tmp_path) == before
    assert set(again) == {s.name for s in SMALL}


def test_changed_spec_reissues_it_and_everything_it_issued(tmp_path: Path) -> None:
    issue_pki(SMALL, tmp_path, now=T0)
    before = _snapshot(tmp_path)
    changed = [dataclasses.replace(s, key_type="rsa") if s.name == "inter" else s for s in SMALL]
    issue_pki(changed, tmp_path, now=T0)
    after = _snapshot(tmp_path)
    differ = {name.split(".")[0] for name in before if before[name] != after[name]}
    assert differ == {"inter", "leaf"}


def test_not_yet_valid_certificate_is_reissued_once_it_would_be_valid(tmp_path: Path) -> None:
    issue_pki(SMALL, tmp_path, now=T0)
    before = _snapshot(tmp_path)
    issue_pki(SMALL, tmp_path, now=T0 + 3 * DAY)
    after = _snapshot(tmp_path)
    assert {n.split(".")[0] for n in before if before[n] != after[n]} == {"future"}
    future = x509.load_pem_x509_certificate(after["future.crt"])
    assert future.not_valid_before_utc > T0 + 3 * DAY


def test_damaged_files_are_reissued(tmp_path: Path) -> None:
    issue_pki(SMALL, tmp_path, now=T0)
    (tmp_path / "other.key").write_bytes(b"not a key")
    issue_pki(SMALL, tmp_path, now=T0)
    cert = x509.load_pem_x509_certificate((tmp_path / "other.crt").read_bytes())
    assert facts_from_der(cert.public_bytes(_DER)).subject_cn == "other.lab"
    assert (tmp_path / "other.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_index_remembers_specs_for_later_commands(tmp_path: Path) -> None:
    issue_pki(SMALL, tmp_path, now=T0)
    assert read_lab_specs(tmp_path) == {s.name: s for s in SMALL}
    assert read_lab_specs(tmp_path / "nothing-here") == {}


def test_damaged_index_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / INDEX_NAME).write_text("{ nope")
    with pytest.raises(PkiError) as exc:
        issue_pki(SMALL, tmp_path, now=T0)
    assert exc.value.path == str(tmp_path / INDEX_NAME)
    assert "delete it" in str(exc.value)


@pytest.mark.parametrize(
    ("specs", "bad_name", "words"),
    [
        ([CertSpec(name="leaf", issuer="ghost", cn="a.lab")], "leaf", "not defined"),
        (
            [CertSpec(name="leaf", cn="a.lab"), CertSpec(name="x", issuer="leaf", cn="b.lab")],
            "x",
            "not a CA",
        ),
        (
            [CertSpec(name="a", ca=True, issuer="b"), CertSpec(name="b", ca=True, issuer="a")],
            "a",
            "cycle",
        ),
        ([CertSpec(name="r", ca=True), CertSpec(name="r", ca=True)], "r", "defined twice"),
        ([CertSpec(name="anon")], "anon", "neither a CN nor a SAN"),
        (
            [CertSpec(name="w", cn="w.lab", not_before=T0, not_after=T0 - DAY)],
            "w",
            "window is empty",
        ),
        ([CertSpec(name="a/b", ca=True), CertSpec(name="a_b", ca=True)], "a_b", "same files"),
        ([CertSpec(name="long", cn="x" * 65)], "long", "64 characters"),
        ([CertSpec(name="idn", san=("café.lab",))], "idn", "xn--"),
    ],
)
def test_bad_specs_raise_pki_error_naming_the_certificate(
    specs: list[CertSpec], bad_name: str, words: str, tmp_path: Path
) -> None:
    with pytest.raises(PkiError) as exc:
        issue_pki(specs, tmp_path, now=T0)
    assert exc.value.name == bad_name
    assert words in str(exc.value)
    assert "\n" not in str(exc.value)


def test_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(PkiError) as exc:
        issue_pki(SMALL, target, now=T0)
    assert exc.value.path == str(target)


def test_explicit_dates_override_validity(tmp_path: Path) -> None:
    start, end = T0 - 10 * DAY, T0 + 20 * DAY
    spec = CertSpec(name="x", cn="x.lab", validity="expired", not_before=start, not_after=end)
    issued = issue_pki([spec], tmp_path, now=T0)["x"]
    cert = x509.load_pem_x509_certificate(issued.cert_path.read_bytes())
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, end)


@given(st.text(min_size=1, max_size=40))
def test_file_stem_stays_inside_the_directory(name: str) -> None:
    stem = file_stem(name)
    assert "/" not in stem
    assert "\\" not in stem
    assert "\x00" not in stem
    assert not stem.startswith(".")
    assert stem


def test_file_stem_keeps_fqdns_readable() -> None:
    assert file_stem("sip.skype.lab") == "sip.skype.lab"
    assert file_stem("../etc/passwd") == "_._etc_passwd"


# --- real OpenSSL -------------------------------------------------------------------


def _openssl_verify(
    item: IssuedCert, now: dt.datetime, *purpose: str
) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(int(now.timestamp())),
            *purpose,
            "-CAfile",
            str(item.root_path),
            "-untrusted",
            str(item.chain_path),
            str(item.cert_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.interop
@pytest.mark.parametrize(
    "name",
    ["sip.skype.lab", "vcse.steven.lab", "cn-only", "server-only", "no-eku", "no-cn", "rsa"],
)
def test_openssl_verifies_valid_certificates(
    name: str, lab: dict[str, IssuedCert], now: dt.datetime
) -> None:
    done = _openssl_verify(lab[name], now)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": OK")


@pytest.mark.interop
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("expired", "certificate has expired"),
        ("not-yet-valid", "certificate is not yet valid"),
        ("under-expired-ca", "certificate has expired"),
    ],
)
def test_openssl_rejects_certificates_outside_their_window(
    name: str, reason: str, lab: dict[str, IssuedCert], now: dt.datetime
) -> None:
    done = _openssl_verify(lab[name], now)
    assert done.returncode != 0
    assert reason in done.stdout + done.stderr


@pytest.mark.interop
def test_openssl_agrees_that_server_only_eku_cannot_be_a_client(
    lab: dict[str, IssuedCert], now: dt.datetime
) -> None:
    assert _openssl_verify(lab["server-only"], now, "-purpose", "sslserver").returncode == 0
    refused = _openssl_verify(lab["server-only"], now, "-purpose", "sslclient")
    assert refused.returncode != 0
    assert "unsuitable certificate purpose" in refused.stdout + refused.stderr
