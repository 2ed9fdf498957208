"""A lab PKI issued once per session, shared by the pki tests.

One table of specs covers every kind of certificate a lab asks for; ``NOW`` is
fixed so every validity assertion is deterministic.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from simulator.pki import CertSpec, IssuedCert, issue_pki

#: The reference time the lab PKI is issued at.
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

SPECS: tuple[CertSpec, ...] = (
    # Deliberately not in issuing order: issue_pki resolves issuers by name.
    CertSpec(name="sip.skype.lab", issuer="public-inter", cn="sip.skype.lab",
             san=("sip.skype.lab", "skype.lab")),
    CertSpec(name="public-root", ca=True, public=True),
    CertSpec(name="public-inter", ca=True, issuer="public-root", cn="Public Issuing CA 1"),
    CertSpec(name="private-root", ca=True, cn="Steven Lab Root"),
    CertSpec(name="vcse.steven.lab", issuer="private-root", cn="vcse.steven.lab"),
    CertSpec(name="cn-only", issuer="private-root", cn="vcse.acano.steven.lab", san=()),
    CertSpec(name="server-only", issuer="private-root", cn="server.steven.lab",
             eku=("serverAuth",)),
    CertSpec(name="no-eku", issuer="private-root", cn="noeku.steven.lab", eku=()),
    CertSpec(name="no-cn", issuer="private-root", san=("nocn.steven.lab",)),
    CertSpec(name="expired", issuer="private-root", cn="expired.steven.lab", validity="expired"),
    CertSpec(name="not-yet-valid", issuer="private-root", cn="future.steven.lab",
             validity="not-yet-valid"),
    CertSpec(name="rsa", issuer="private-root", cn="rsa.steven.lab", key_type="rsa"),
    CertSpec(name="expired-ca", ca=True, issuer="private-root", validity="expired"),
    CertSpec(name="under-expired-ca", issuer="expired-ca", cn="orphan.steven.lab"),
    CertSpec(name="self-signed", cn="selfie.steven.lab"),
)  # fmt: skip


@pytest.fixture(scope="session")
def now() -> dt.datetime:
    """The time the lab PKI was issued at (tests import nothing from conftest)."""
    return NOW


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, IssuedCert]:
    """The lab PKI of :data:`SPECS`, issued at :data:`NOW`."""
    return issue_pki(SPECS, tmp_path_factory.mktemp("lab-pki"), now=NOW)


@pytest.fixture(scope="session")
def lab_certs(lab: dict[str, IssuedCert]) -> dict[str, x509.Certificate]:
    """The parsed certificate of every lab name."""
    return {
        name: x509.load_pem_x509_certificate(item.cert_path.read_bytes())
        for name, item in lab.items()
    }
