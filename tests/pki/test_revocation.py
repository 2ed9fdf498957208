"""Revocation: lab CRLs and distribution points, what a chain's CRLs say, fedsim check's rule 8.

The CRL server itself (HTTP, garbage, real clients) is tested in tests/net/test_crl_server.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
import trio
from cryptography import x509

from simulator.cli import main
from simulator.edge.app import crl_store
from simulator.edge.crl import open_crl_service, serve_crls
from simulator.net import stderr_reporter
from simulator.pki import (
    CertSpec,
    IssuedCert,
    crl_url_for,
    crl_urls,
    distribution_points,
    issue_pki,
    load_crl,
    revocation_status,
    verify_chain,
)

NOW = dt.datetime.now(dt.UTC)
BASE = "http://127.0.0.1:8081"
SPECS = (
    CertSpec(name="root", ca=True, public=True, cn="Lab Root"),
    CertSpec(name="inter", ca=True, issuer="root", cn="Lab Issuing CA"),
    CertSpec(name="good", issuer="inter", cn="good.steven.lab"),
    CertSpec(name="bad", issuer="inter", cn="bad.steven.lab", revoked=True),
    CertSpec(
        name="elsewhere", issuer="root", cn="x.steven.lab", crl_url="http://127.0.0.1:1/x.crl"
    ),
)


def cert(issued: dict[str, IssuedCert], name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(issued[name].cert_path.read_bytes())


def path_of(issued: dict[str, IssuedCert], name: str) -> tuple[x509.Certificate, ...]:
    verdict = verify_chain(
        cert(issued, name), [cert(issued, "inter")], [cert(issued, "root")], now=NOW
    )
    assert verdict.status == "trusted"
    return verdict.path


@pytest.fixture
def issued(tmp_path: Path) -> dict[str, IssuedCert]:
    return issue_pki(SPECS, tmp_path, now=NOW, crl_url=BASE)


def test_every_issued_certificate_names_its_issuers_crl(issued: dict[str, IssuedCert]) -> None:
    assert distribution_points(cert(issued, "root")) == ()  # a root names none
    assert distribution_points(cert(issued, "inter")) == (f"{BASE}/root.crl",)
    assert distribution_points(cert(issued, "good")) == (crl_url_for(BASE, "inter"),)
    assert distribution_points(cert(issued, "elsewhere")) == ("http://127.0.0.1:1/x.crl",)
    assert issued["good"].crl_path is None
    assert issued["inter"].crl_path is not None


def test_a_cas_crl_lists_exactly_what_it_revoked(issued: dict[str, IssuedCert]) -> None:
    inter_crl = issued["inter"].crl_path
    root_crl = issued["root"].crl_path
    assert inter_crl is not None
    assert root_crl is not None
    crl = load_crl(inter_crl.read_bytes())
    assert crl is not None
    assert [r.serial_number for r in crl] == [cert(issued, "bad").serial_number]
    assert crl.is_signature_valid(cert(issued, "inter").public_key())  # type: ignore[arg-type]
    root_list = load_crl(root_crl.read_bytes())
    assert root_list is not None
    assert list(root_list) == []


def test_revoking_changes_the_crl_not_the_certificate(tmp_path: Path) -> None:
    first = issue_pki(SPECS[:3], tmp_path, now=NOW, crl_url=BASE)
    before = first["good"].cert_path.read_bytes()
    again = issue_pki(
        (*SPECS[:2], CertSpec(name="good", issuer="inter", cn="good.steven.lab", revoked=True)),
        tmp_path,
        now=NOW,
        crl_url=BASE,
    )
    assert again["good"].cert_path.read_bytes() == before
    crl_path = again["inter"].crl_path
    assert crl_path is not None
    crl = load_crl(crl_path.read_bytes())
    assert crl is not None
    assert [r.serial_number for r in crl] == [cert(again, "good").serial_number]


def test_without_a_base_url_earlier_distribution_points_are_kept(
    issued: dict[str, IssuedCert], tmp_path: Path
) -> None:
    # A command beside a running lab (fedsim client, fedsim call) must not re-issue.
    before = issued["good"].cert_path.read_bytes()
    again = issue_pki(SPECS, tmp_path, now=NOW)
    assert again["good"].cert_path.read_bytes() == before
    assert again["good"].cdp == crl_url_for(BASE, "inter")
    # Another base re-issues (the distribution point would be wrong).
    moved = issue_pki(SPECS, tmp_path, now=NOW, crl_url="http://127.0.0.1:9")
    assert moved["good"].cert_path.read_bytes() != before


def crls(issued: dict[str, IssuedCert]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for name in ("root", "inter"):
        crl_path = issued[name].crl_path
        assert crl_path is not None
        out[crl_url_for(BASE, name)] = crl_path.read_bytes()
    return out


def test_what_the_crls_say_about_a_chain(issued: dict[str, IssuedCert]) -> None:
    good, bad = path_of(issued, "good"), path_of(issued, "bad")
    fetched = crls(issued)
    assert crl_urls(good) == (crl_url_for(BASE, "inter"), crl_url_for(BASE, "root"))
    assert revocation_status(good, fetched, now=NOW) == "good"
    assert revocation_status(bad, fetched, now=NOW) == "revoked"
    # An unreachable CRL, a CRL of another CA, garbage: offline (revoked still wins).
    offline = {**fetched, crl_url_for(BASE, "inter"): None}
    assert revocation_status(good, offline, now=NOW) == "offline"
    swapped = {**fetched, crl_url_for(BASE, "inter"): fetched[crl_url_for(BASE, "root")]}
    assert revocation_status(good, swapped, now=NOW) == "offline"
    assert revocation_status(good, {**fetched, crl_url_for(BASE, "inter"): b"<html>"}, now=NOW) == (
        "offline"
    )
    later = NOW + dt.timedelta(days=30)  # the CRL is past its nextUpdate
    assert revocation_status(good, fetched, now=later) == "offline"


def test_a_chain_without_distribution_points(tmp_path: Path) -> None:
    plain = issue_pki(SPECS[:3], tmp_path, now=NOW)
    assert revocation_status(path_of(plain, "good"), {}, now=NOW) == "no-cdp"


def test_openssl_reads_the_crl_and_sees_the_revoked_serial(issued: dict[str, IssuedCert]) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    crl_path = issued["inter"].crl_path
    assert crl_path is not None
    out = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(crl_path), "-noout", "-text"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    serial = f"{cert(issued, 'bad').serial_number:X}"
    assert "O = fedsim lab PKI, CN = Lab Issuing CA" in out
    assert serial in out.replace(":", "").upper()


# --- fedsim check --cert: rule 8 ------------------------------------------------------------


async def test_fedsim_check_reports_a_revoked_certificate(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = await open_crl_service("127.0.0.1", 0)
    pki = issue_pki(SPECS, tmp_path / "pki", now=NOW, crl_url=service.base)
    service.store.update(crl_store(pki))
    await nursery.start(
        lambda task_status: serve_crls(service, report=stderr_reporter(), task_status=task_status)
    )

    def check(name: str, *rules: str) -> tuple[int, str]:
        chain = tmp_path / f"{name}.pem"
        chain.write_bytes(pki[name].cert_path.read_bytes() + pki["inter"].cert_path.read_bytes())
        argv = ["check", "--domain", "steven.lab", "--cert", str(chain), "--dns", "127.0.0.1:9",
                "--timeout", "0.2", "--public-trust", str(pki["root"].cert_path), "--json",
                "--direction", "outbound", *rules]  # fmt: skip
        code = main(argv)
        return code, capsys.readouterr().out

    code, out = await trio.to_thread.run_sync(check, "bad")
    assert '"key": "revocation"' in out
    assert "REVOKED (CRYPT_E_REVOKED)" in out
    assert code == 1
    _code, out = await trio.to_thread.run_sync(check, "good")
    assert "no certificate of the chain is on its issuer's CRL" in out
    _code, out = await trio.to_thread.run_sync(check, "bad", "--rule", "revocation=off")
    assert "REVOKED" not in out
