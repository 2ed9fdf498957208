"""Lab PKI: certificate specs, issuing, certificate facts, TLS contexts."""

from __future__ import annotations

from simulator.pki.spec import EKU_NAMES, CertSpec, KeyType, Validity

__all__ = ["EKU_NAMES", "CertSpec", "KeyType", "Validity"]
