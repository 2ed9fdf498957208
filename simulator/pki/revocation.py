"""Revocation: what the CRLs of a certificate chain say, from CRLs already fetched. Pure.

The Edge checks the CRLs of its peers' certificates (``KeepCrlsUpToDateForPeers``,
reference 1.2, §6): every certificate of the chain below the trusted root names
a CRL distribution point (an ``http://`` URL, reference 1.9); the CRL found there,
signed by that certificate's issuer, lists the serial numbers it revoked.

The I/O layer fetches the URLs :func:`crl_urls` names (the Edge over HTTP,
``fedsim check`` from its lab's files) and hands the bytes, or None for a URL
it could not fetch, to :func:`revocation_status`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from simulator.policy.facts import RevocationStatus

#: Order of what the CRLs may say about a chain, the worst last (the verdict is the worst).
_RANK: dict[RevocationStatus, int] = {
    "unchecked": 0,
    "good": 1,
    "no-cdp": 2,
    "offline": 3,
    "revoked": 4,
}


def distribution_points(cert: x509.Certificate) -> tuple[str, ...]:
    """The ``http://`` URLs of the certificate's CRL distribution points, in order."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    urls: list[str] = []
    for point in ext:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                "http://"
            ):
                urls.append(name.value)
    return tuple(urls)


def crl_urls(path: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """Every CRL URL the chain ``path`` (leaf first, trusted root last) needs, in order."""
    seen: list[str] = []
    for cert in path[:-1]:
        for url in distribution_points(cert):
            if url not in seen:
                seen.append(url)
    return tuple(seen)


def load_crl(data: bytes) -> x509.CertificateRevocationList | None:
    """A CRL from DER (what a CDP serves) or PEM bytes; None when it is neither."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        return None


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    if crl.issuer != issuer.subject:
        return False
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):
        return False


def _one(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    fetched: Mapping[str, bytes | None],
    now: dt.datetime,
) -> RevocationStatus:
    urls = distribution_points(cert)
    if not urls:
        return "no-cdp"
    for url in urls:
        data = fetched.get(url)
        if data is None:
            continue
        crl = load_crl(data)
        if crl is None or not _signed_by(crl, issuer):
            continue  # not a CRL of this issuer: as good as none
        next_update = crl.next_update_utc
        if next_update is not None and next_update < now:
            continue  # stale: Windows fetches again, and cannot here
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return "revoked"
        return "good"
    return "offline"


def revocation_status(
    path: Sequence[x509.Certificate],
    fetched: Mapping[str, bytes | None],
    *,
    now: dt.datetime,
) -> RevocationStatus:
    """What the CRLs say about ``path``: the worst of its certificates below the root.

    Args:
        path: the verified chain, leaf first, the trusted root last (its own
            revocation is not checked, as Windows' chain engine does by default for
            TLS, CERT_CHAIN_REVOCATION_CHECK_CHAIN_EXCLUDE_ROOT).
        fetched: URL -> the bytes served there, or None when it could not be fetched.
        now: the time of the check (a CRL past its nextUpdate does not count).

    Returns:
        "revoked" when a certificate is on its issuer's CRL; else "offline" when a
        certificate's CRLs could not be fetched or read; else "no-cdp" when one names
        no distribution point; else "good" (a path of the root alone: "good").
    """
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    worst: RevocationStatus = "good"
    for cert, issuer in itertools.pairwise(path):
        status = _one(cert, issuer, fetched, now)
        if _RANK[status] > _RANK[worst]:
            worst = status
    return worst
