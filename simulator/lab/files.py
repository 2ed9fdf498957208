"""A lab's ``cert`` / ``trust`` references as files on disk.

Both the Edge (``[edge] cert``, ``trust``) and the simulated peers
(``[peers.NAME] cert``, ``trust``) name a certificate either by its ``[certs]``
name (issued into the certs directory) or by PEM paths; this is the one place
that turns either form into paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.lab.model import CertFiles, CertRef, TrustRef
from simulator.pki.lab import IssuedCert


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """One TLS identity (certificate, key, chain) and the CA files it trusts."""

    cert: Path
    key: Path
    chain: Path | None
    trust: tuple[Path, ...]


def tls_files(
    ref: CertRef, trust: Sequence[TrustRef], issued: Mapping[str, IssuedCert]
) -> TlsFiles:
    """Resolve ``cert`` and ``trust`` references (lab names or PEM paths) to files."""
    if isinstance(ref, CertFiles):
        cert, key, chain = ref.cert, ref.key, ref.chain
    else:
        item = issued[ref]
        cert, key, chain = item.cert_path, item.key_path, item.chain_path
    anchors = tuple(
        entry if isinstance(entry, Path) else issued[entry].cert_path for entry in trust
    )
    return TlsFiles(cert=cert, key=key, chain=chain, trust=anchors)
