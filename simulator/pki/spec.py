"""What a lab certificate should look like: the contract between lab files and the issuer.

A :class:`CertSpec` is plain data (no keys, no I/O). The lab loader builds them
from ``[certs.NAME]`` tables; :mod:`simulator.pki.lab` turns them into PEM files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

KeyType = Literal["ecdsa", "rsa"]
Validity = Literal["valid", "expired", "not-yet-valid"]

#: Extended key usages a lab certificate may carry, by their usual short names.
EKU_NAMES: tuple[str, ...] = ("serverAuth", "clientAuth")


@dataclass(frozen=True, slots=True, kw_only=True)
class CertSpec:
    """One certificate of a lab PKI.

    Attributes:
        name: the lab's name for it (``[certs.NAME]``), also the file stem on disk.
        ca: True for a certificate authority (root or intermediate).
        public: True for a root that stands for a publicly trusted CA (the only
            kind an Office 365 / hosted Edge accepts). Only meaningful on roots.
        issuer: name of the issuing CA; None makes a self-signed root (for a CA)
            or a self-signed leaf.
        cn: subject common name; None means no CN in the subject.
        san: DNS subjectAltNames. None means "default": ``(cn,)`` for a leaf with a
            CN, no extension for a CA. An empty tuple means no SAN extension at all
            (the CN-only certificates of the Cisco note).
        eku: extended key usages (see :data:`EKU_NAMES`); empty means no EKU extension.
        validity: "expired" and "not-yet-valid" shift the validity window so the
            certificate is unusable now; "valid" is the default.
        not_before / not_after: explicit window (UTC); override ``validity``.
        key_type: "ecdsa" (P-256, cheap handshakes, the default) or "rsa" (2048).
        revoked: the issuer lists it on its CRL (a root cannot be revoked).
        crl_url: the CRL distribution point written in it; None: the issuer's CRL
            on fedsim's own CRL server (``[pki] crl_listen``), when there is one.
    """

    name: str
    ca: bool = False
    public: bool = False
    issuer: str | None = None
    cn: str | None = None
    san: tuple[str, ...] | None = None
    eku: tuple[str, ...] = ("serverAuth", "clientAuth")
    validity: Validity = "valid"
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    key_type: KeyType = "ecdsa"
    revoked: bool = False
    crl_url: str | None = None
