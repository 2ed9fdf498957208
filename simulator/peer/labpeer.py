"""A lab's ``[peers.NAME]`` as TLS contexts: the files of its certificate and its trust.

``fedsim call LAB --via NAME`` and ``fedsim peer LAB NAME`` (and the scenario
runner) need the same thing: the peer's certificate, key and chain on disk
(issued into the certs directory when the lab names a ``[certs]`` entry), and
the CA files it trusts for the Edge's certificate.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from simulator.errors import FedsimError
from simulator.lab import Lab, PeerConfig
from simulator.lab.files import TlsFiles, tls_files
from simulator.pki.contexts import client_context, server_context
from simulator.pki.lab import IssuedCert, issue_pki

#: The PEM files of one simulated peer (kept under the peer's own name).
PeerFiles = TlsFiles


def lab_peer(lab: Lab, name: str) -> PeerConfig:
    """The ``[peers.NAME]`` entry, or a FedsimError listing the lab's peers."""
    try:
        return lab.peers[name]
    except KeyError:
        where = str(lab.path) if lab.path is not None else "the built-in lab"
        known = ", ".join(lab.peers) or "none"
        raise FedsimError(f"{where}: no [peers.{name}] (peers defined: {known})") from None


def issue_lab_pki(lab: Lab, certs_dir: Path) -> dict[str, IssuedCert]:
    """Issue (or reuse) the lab's certificates in ``certs_dir``."""
    return issue_pki(lab.certs, certs_dir, now=dt.datetime.now(dt.UTC))


def peer_files(peer: PeerConfig, issued: dict[str, IssuedCert]) -> PeerFiles:
    """Resolve the peer's ``cert`` and ``trust`` references to files."""
    return tls_files(peer.cert, peer.trust, issued)


def peer_client_context(peer: PeerConfig, files: PeerFiles) -> ssl.SSLContext:
    """The peer as a TLS client (calling into the Edge): its certificate, its trust."""
    return client_context(
        cert=files.cert, key=files.key, chain=files.chain, trust=files.trust, profile=peer.tls
    )


def peer_server_context(peer: PeerConfig, files: PeerFiles) -> ssl.SSLContext:
    """The peer as a TLS server (the Edge calls it): asks for and checks the Edge's certificate."""
    return server_context(
        cert=files.cert,
        key=files.key,
        chain=files.chain,
        trust=files.trust,
        require_client_cert=peer.require_client_cert,
        profile=peer.tls,
    )
