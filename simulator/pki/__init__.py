"""Lab PKI: certificate specs, issuing, certificate facts, TLS contexts."""

from __future__ import annotations

from simulator.pki.contexts import TlsProfile, client_context, server_context
from simulator.pki.errors import PkiError
from simulator.pki.facts import (
    CertificateFacts,
    ChainStatus,
    ChainVerdict,
    facts_from_certificate,
    facts_from_der,
    key_matches_certificate,
    load_pem_certificates,
    matches_name,
    verify_chain,
)
from simulator.pki.lab import IssuedCert, issue_pki, read_lab_specs
from simulator.pki.spec import EKU_NAMES, CertSpec, KeyType, Validity

__all__ = [
    "EKU_NAMES",
    "CertSpec",
    "CertificateFacts",
    "ChainStatus",
    "ChainVerdict",
    "IssuedCert",
    "KeyType",
    "PkiError",
    "TlsProfile",
    "Validity",
    "client_context",
    "facts_from_certificate",
    "facts_from_der",
    "issue_pki",
    "key_matches_certificate",
    "load_pem_certificates",
    "matches_name",
    "read_lab_specs",
    "server_context",
    "verify_chain",
]
