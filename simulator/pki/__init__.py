"""Lab PKI: certificate specs, issuing, certificate facts, TLS contexts."""

from __future__ import annotations

from simulator.pki.contexts import (
    KEYLOG_MODE,
    TlsProfile,
    client_context,
    enable_keylog,
    open_keylog,
    server_context,
    use_keylog,
)
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
from simulator.pki.lab import IssuedCert, crl_url_for, issue_pki, read_lab_specs
from simulator.pki.revocation import (
    crl_urls,
    distribution_points,
    load_crl,
    revocation_status,
)
from simulator.pki.spec import EKU_NAMES, CertSpec, KeyType, Validity

__all__ = [
    "EKU_NAMES",
    "KEYLOG_MODE",
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
    "crl_url_for",
    "crl_urls",
    "distribution_points",
    "enable_keylog",
    "facts_from_certificate",
    "facts_from_der",
    "issue_pki",
    "key_matches_certificate",
    "load_crl",
    "load_pem_certificates",
    "matches_name",
    "open_keylog",
    "read_lab_specs",
    "revocation_status",
    "server_context",
    "use_keylog",
    "verify_chain",
]
