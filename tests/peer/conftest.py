"""Fixtures for the simulated Expressway-E: an in-memory PKI (trustme) and TLS contexts.

``lab_ca`` issues the Edge's and the Expressway's certificates; ``rogue_ca`` is a
CA nobody trusts. Contexts are TLS 1.3, where a refused client certificate only
shows on the client's first read (shared/interop/README.md §2).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme


@dataclass(frozen=True)
class Pki:
    """PEM files on disk for the CLI tests."""

    ca: Path
    expe_cert: Path
    expe_key: Path
    edge_cert: Path
    edge_key: Path
    rogue_cert: Path
    rogue_key: Path


@pytest.fixture(scope="session")
def lab_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def rogue_ca() -> trustme.CA:
    return trustme.CA()


def server_ctx(ca: trustme.CA, name: str, *, trust: trustme.CA | None) -> ssl.SSLContext:
    """A mutual-TLS server: certificate ``name`` from ``ca``; clients must chain to ``trust``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(ctx)
    if trust is not None:
        trust.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def client_ctx(ca: trustme.CA | None, name: str | None, *, trust: trustme.CA) -> ssl.SSLContext:
    """A client presenting ``name`` from ``ca`` (None: no certificate), trusting ``trust``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    if ca is not None and name is not None:
        ca.issue_cert(name).configure_cert(ctx)
    trust.configure_trust(ctx)
    return ctx


ServerCtx = Callable[..., ssl.SSLContext]
ClientCtx = Callable[..., ssl.SSLContext]


@pytest.fixture
def make_server_ctx() -> ServerCtx:
    """Factory: ``make_server_ctx(ca, name, trust=ca_or_None)``."""
    return server_ctx


@pytest.fixture
def make_client_ctx() -> ClientCtx:
    """Factory: ``make_client_ctx(ca_or_None, name_or_None, trust=ca)``."""
    return client_ctx


@pytest.fixture
def edge_server_ctx(lab_ca: trustme.CA) -> ssl.SSLContext:
    """The far end as an Edge would be: sip.skype.lab, trusting the lab CA."""
    return server_ctx(lab_ca, "sip.skype.lab", trust=lab_ca)


@pytest.fixture
def expe_client_ctx(lab_ca: trustme.CA) -> ssl.SSLContext:
    """The Expressway-E as a client: vcse.steven.lab from the lab CA."""
    return client_ctx(lab_ca, "vcse.steven.lab", trust=lab_ca)


@pytest.fixture
def pki_files(tmp_path: Path, lab_ca: trustme.CA, rogue_ca: trustme.CA) -> Pki:
    """The same PKI written to PEM files, for ``fedsim call``."""
    ca = tmp_path / "ca.pem"
    lab_ca.cert_pem.write_to_path(str(ca))
    files: dict[str, Path] = {}
    for label, issuer, name in (
        ("expe", lab_ca, "vcse.steven.lab"),
        ("edge", lab_ca, "sip.skype.lab"),
        ("rogue", rogue_ca, "vcse.steven.lab"),
    ):
        leaf = issuer.issue_cert(name)
        cert = tmp_path / f"{label}.crt"
        key = tmp_path / f"{label}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        files[f"{label}_cert"] = cert
        files[f"{label}_key"] = key
    return Pki(ca=ca, **files)
