"""``fedsim certs`` in-process through simulator.cli.main, and once as a subprocess."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.cli import main
from simulator.pki import CertificateFacts, facts_from_certificate, verify_chain

Capture = pytest.CaptureFixture[str]


def _facts(path: Path) -> CertificateFacts:
    return facts_from_certificate(x509.load_pem_x509_certificate(path.read_bytes()))


def _one_error_line(capsys: Capture) -> str:
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    return err


# --- issue ----------------------------------------------------------------------


def test_issue_leaf_creates_a_private_lab_root(tmp_path: Path, capsys: Capture) -> None:
    assert main(["certs", "issue", "vcse.steven.lab", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vcse.steven.lab.chain.pem" in out
    assert "lab-root.crt" in out
    assert "private root" in out
    facts = _facts(tmp_path / "vcse.steven.lab.crt")
    assert facts.subject_cn == "vcse.steven.lab"
    assert facts.dns_sans == ("vcse.steven.lab",)
    assert facts.eku == ("serverAuth", "clientAuth")
    assert "CN=lab-root" in facts.issuer
    assert _facts(tmp_path / "lab-root.crt").is_ca


def test_issue_reuses_a_ca_issued_earlier_in_the_directory(tmp_path: Path, capsys: Capture) -> None:
    out = str(tmp_path)
    assert main(["certs", "issue", "public-root", "--ca", "--public", "--out", out]) == 0
    root_bytes = (tmp_path / "public-root.crt").read_bytes()
    assert main(["certs", "issue", "sip.skype.lab", "--issuer", "public-root", "--out", out]) == 0
    assert "public root" in capsys.readouterr().out
    assert (tmp_path / "public-root.crt").read_bytes() == root_bytes
    assert not (tmp_path / "lab-root.crt").exists()
    leaf = x509.load_pem_x509_certificate((tmp_path / "sip.skype.lab.crt").read_bytes())
    root = x509.load_pem_x509_certificate(root_bytes)
    now = dt.datetime.now(dt.UTC)
    assert verify_chain(leaf, [], [root], now=now).status == "trusted"


def test_issue_again_with_the_same_options_keeps_the_files(tmp_path: Path) -> None:
    argv = ["certs", "issue", "x.lab", "--san", "x.lab", "y.lab", "--out", str(tmp_path)]
    assert main(argv) == 0
    before = (tmp_path / "x.lab.crt").read_bytes(), (tmp_path / "x.lab.key").read_bytes()
    assert main(argv) == 0
    after = (tmp_path / "x.lab.crt").read_bytes(), (tmp_path / "x.lab.key").read_bytes()
    assert before == after


@pytest.mark.parametrize(
    ("extra", "cn", "sans", "has_san", "eku", "key"),
    [
        (["--no-san", "--eku", "serverAuth"], "e.lab", (), False, ("serverAuth",), "ECDSA P-256"),
        (["--eku", "none"], "e.lab", ("e.lab",), True, (), "ECDSA P-256"),
        (["--eku", "ClientAuth"], "e.lab", ("e.lab",), True, ("clientAuth",), "ECDSA P-256"),
        (["--cn", "other.lab"], "other.lab", ("other.lab",), True, None, "ECDSA P-256"),
        (["--cn", "", "--san", "a.lab"], None, ("a.lab",), True, None, "ECDSA P-256"),
        (["--key-type", "rsa"], "e.lab", ("e.lab",), True, None, "RSA 2048"),
    ],
)
def test_issue_options_shape_the_certificate(
    tmp_path: Path,
    extra: list[str],
    cn: str | None,
    sans: tuple[str, ...],
    has_san: bool,
    eku: tuple[str, ...] | None,
    key: str,
) -> None:
    assert main(["certs", "issue", "e.lab", "--out", str(tmp_path), *extra]) == 0
    facts = _facts(tmp_path / "e.lab.crt")
    assert facts.subject_cn == cn
    assert facts.dns_sans == sans
    assert facts.has_san_extension is has_san
    assert facts.eku == (eku if eku is not None else ("serverAuth", "clientAuth"))
    assert facts.key_type == key


@pytest.mark.parametrize(
    ("validity", "status"), [("expired", "expired"), ("not-yet-valid", "not-yet-valid")]
)
def test_issue_validity(tmp_path: Path, validity: str, status: str) -> None:
    assert main(["certs", "issue", "v.lab", "--validity", validity, "--out", str(tmp_path)]) == 0
    leaf = x509.load_pem_x509_certificate((tmp_path / "v.lab.crt").read_bytes())
    root = x509.load_pem_x509_certificate((tmp_path / "lab-root.crt").read_bytes())
    verdict = verify_chain(leaf, [], [root], now=dt.datetime.now(dt.UTC))
    assert verdict.status == status


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["certs", "issue", "x", "--issuer", "nope"], "issuer 'nope' has not been issued"),
        (["certs", "issue", "x", "--public"], "--public only applies to a root"),
        (["certs", "issue", "x", "--eku", "codeSigning"], "unknown usage 'codeSigning'"),
        (["certs", "issue", "x", "--san", "a.lab", "--no-san"], "not allowed with"),
        (["certs", "issue", "x", "--san", "bad name"], "not a DNS name"),
        (["certs", "issue", "x", "--validity", "soon"], "invalid choice"),
        (["certs", "issue", "x", "--ca", "--issuer", "x"], "its own --issuer"),
        (["certs", "issue", "x", "--cn", "y" * 70, "--no-san"], "64 characters"),
    ],
)
def test_bad_issue_arguments_are_one_error_line(
    tmp_path: Path, capsys: Capture, argv: list[str], words: str
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert words in _one_error_line(capsys)


def test_issuer_that_is_not_a_ca_is_refused(tmp_path: Path, capsys: Capture) -> None:
    assert main(["certs", "issue", "leaf.lab", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["certs", "issue", "x.lab", "--issuer", "leaf.lab", "--out", str(tmp_path)]) == 2
    assert "is not a CA" in _one_error_line(capsys)


def test_out_that_is_a_file_is_refused(tmp_path: Path, capsys: Capture) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    assert main(["certs", "issue", "x.lab", "--out", str(target)]) == 2
    assert str(target) in _one_error_line(capsys)


def test_certs_without_action_prints_its_help(capsys: Capture) -> None:
    assert main(["certs"]) == 2
    out = capsys.readouterr().out
    assert "issue" in out
    assert "clone" in out
    assert "show" in out


# --- clone ----------------------------------------------------------------------


def _customer_cert(tmp_path: Path, *, with_san: bool) -> tuple[Path, x509.Certificate]:
    """A certificate as a customer's CA would make it (RSA, odd extensions, own window)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Customer Inc"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "expe.customer.example"),
                ]
            )
        )
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Customer Issuing CA")]))
        .public_key(key.public_key())
        .serial_number(0x1234)
        .not_valid_before(dt.datetime(2025, 5, 1, 8, 30, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 5, 1, 8, 30, tzinfo=dt.UTC))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING]
            ),
            critical=False,
        )
    )
    if with_san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("expe.customer.example"),
                    x509.DNSName("customer.example"),
                    x509.IPAddress(ipaddress.ip_address("192.0.2.10")),
                ]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    path = tmp_path / "customer.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert


def test_clone_copies_names_eku_and_window_onto_a_lab_key(tmp_path: Path, capsys: Capture) -> None:
    source, original = _customer_cert(tmp_path, with_san=True)
    out = tmp_path / "pki"
    assert main(["certs", "clone", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    clone = x509.load_pem_x509_certificate((out / "expe.customer.example.crt").read_bytes())
    theirs, ours = facts_from_certificate(original), facts_from_certificate(clone)
    assert ours.subject_cn == theirs.subject_cn == "expe.customer.example"
    assert ours.dns_sans == ("expe.customer.example", "customer.example")
    assert ours.eku == ("serverAuth",)
    assert (ours.not_before, ours.not_after) == (theirs.not_before, theirs.not_after)
    assert ours.key_type == "RSA 2048"
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert clone.public_key().public_bytes(der, spki) != original.public_key().public_bytes(
        der, spki
    )
    assert "CN=lab-root" in ours.issuer
    for words in ("copied:", "not copied:", "1.3.6.1.5.5.7.3.3", "192.0.2.10", "Customer Issuing"):
        assert words in printed


def test_clone_of_a_cn_only_certificate_has_no_san(tmp_path: Path, capsys: Capture) -> None:
    source, _ = _customer_cert(tmp_path, with_san=False)
    out = tmp_path / "pki"
    assert main(["certs", "issue", "cust-ca", "--ca", "--out", str(out)]) == 0
    argv = ["certs", "clone", str(source), "--issuer", "cust-ca", "--name", "expe", "--out"]
    assert main([*argv, str(out)]) == 0
    assert "the CN is used" in capsys.readouterr().out
    facts = _facts(out / "expe.crt")
    assert facts.subject_cn == "expe.customer.example"
    assert not facts.has_san_extension
    assert "CN=cust-ca" in facts.issuer


@pytest.mark.parametrize("content", [b"not a certificate\n", None])
def test_clone_bad_input_is_one_error_line(
    tmp_path: Path, capsys: Capture, content: bytes | None
) -> None:
    source = tmp_path / "customer.pem"
    if content is not None:
        source.write_bytes(content)
    assert main(["certs", "clone", str(source), "--out", str(tmp_path / "pki")]) == 2
    assert str(source) in _one_error_line(capsys)


# --- show -----------------------------------------------------------------------


def test_show_prints_the_facts_in_words(tmp_path: Path, capsys: Capture) -> None:
    out = str(tmp_path)
    assert main(["certs", "issue", "cn.lab", "--no-san", "--eku", "serverAuth", "--out", out]) == 0
    capsys.readouterr()
    assert main(["certs", "show", str(tmp_path / "cn.lab.crt")]) == 0
    shown = capsys.readouterr().out
    facts = _facts(tmp_path / "cn.lab.crt")
    for words in (
        "CN=cn.lab",
        "none (the CN is used)",
        "serverAuth",
        "valid now",
        "CN=lab-root",
        "leaf, issued by a CA",
        facts.sha256,
        "ECDSA P-256",
    ):
        assert words in shown


@pytest.mark.parametrize(
    ("trust", "usage", "status", "code"),
    [
        ("lab-root", "any", "trusted", 0),
        ("other-root", "any", "untrusted-root", 1),
        ("lab-root", "client", "wrong-usage", 1),
    ],
)
def test_show_with_trust_gives_the_chain_verdict(
    tmp_path: Path, capsys: Capture, trust: str, usage: str, status: str, code: int
) -> None:
    out = str(tmp_path)
    assert main(["certs", "issue", "s.lab", "--eku", "serverAuth", "--out", out]) == 0
    assert main(["certs", "issue", "other-root", "--ca", "--out", out]) == 0
    capsys.readouterr()
    argv = ["certs", "show", str(tmp_path / "s.lab.chain.pem"), "--usage", usage]
    assert main([*argv, "--trust", str(tmp_path / f"{trust}.crt")]) == code
    assert f"chain        {status}: " in capsys.readouterr().out


def test_show_of_a_root_says_so(tmp_path: Path, capsys: Capture) -> None:
    assert main(["certs", "issue", "r", "--ca", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["certs", "show", str(tmp_path / "r.crt")]) == 0
    shown = capsys.readouterr().out
    assert "self-signed root CA" in shown
    assert "none, and no CN" not in shown


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"hello\n", "no CERTIFICATE block"),
        (b"\x30\x82\x02\x00", "DER"),
        (None, "file not found"),
    ],
)
def test_show_bad_input_is_one_error_line(
    tmp_path: Path, capsys: Capture, content: bytes | None, words: str
) -> None:
    target = tmp_path / "x.pem"
    if content is not None:
        target.write_bytes(content)
    assert main(["certs", "show", str(target)]) == 2
    err = _one_error_line(capsys)
    assert words in err
    assert str(target) in err


def test_show_bad_trust_file_is_one_error_line(tmp_path: Path, capsys: Capture) -> None:
    assert main(["certs", "issue", "s.lab", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    junk = tmp_path / "junk.pem"
    junk.write_text("nope")
    assert main(["certs", "show", str(tmp_path / "s.lab.crt"), "--trust", str(junk)]) == 2
    assert str(junk) in _one_error_line(capsys)


def test_certs_runs_as_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "certs", "issue", "p.lab", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "simulator", "certs", "show", str(tmp_path / "p.lab.crt")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0
    assert "p.lab" in shown.stdout
