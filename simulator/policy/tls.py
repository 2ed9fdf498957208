"""What the Edge's TLS layer decides before any SIP: the pure rules behind the handshake.

On the federation port the handshake itself refuses a peer (reference §2.2
I1: Schannel refuses, then resets): OpenSSL applies them in ``fedsim serve``,
and ``fedsim check`` predicts them with these functions, so the two agree:

* no protocol version in common (the profile's versions, reference 1.14);
* a client certificate the Edge's TLS trust store does not accept: an
  untrusted root or a broken chain, outside its validity period, not from a
  public CA when the Edge is hosted (Office 365 trusts only public CAs);
* rule ``client_eku = "require"``: a certificate whose EKU lacks clientAuth;
* rule ``revocation``: a revoked chain ("soft", "hard"), or one whose CRL could
  not be fetched ("hard"). OpenSSL does not fetch CRLs: the Edge checks them
  right after the handshake and resets the connection as Schannel would have.

The Edge's record of such a refusal is the synthetic, inferred
``EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED`` (:func:`simulator.policy.handshake_refused`).
"""

from __future__ import annotations

from typing import Literal

from simulator.policy.facts import EdgeSettings, PeerCertificate
from simulator.policy.inbound import revocation_refusal
from simulator.policy.profiles import TlsVersion, negotiated_version

#: The rule name of a refused handshake in events and scenario expectations.
HANDSHAKE_FAILED = "tls-handshake-failed"

#: Chain states OpenSSL's verification refuses at the handshake, and why.
_REFUSED_CHAINS: dict[str, str] = {
    "untrusted-root": "the certificate does not chain to a CA the Edge trusts",
    "bad-chain": "the certificate chain cannot be built",
    "expired": "the certificate has expired",
    "not-yet-valid": "the certificate is not valid yet",
}


def client_usage(settings: EdgeSettings) -> Literal["client", "any"]:
    """The usage to verify an inbound peer's chain for: clientAuth only when the rule requires it.

    The I/O layer passes it to :func:`simulator.pki.verify_chain` (``usage=``), and
    the TLS context checks the X.509 purpose only then
    (:func:`simulator.pki.server_context`, ``check_client_purpose``).
    """
    return "client" if settings.rules.client_eku == "require" else "any"


def inbound_handshake_refusal(peer: PeerCertificate, settings: EdgeSettings) -> str | None:
    """Why the federation port's handshake refuses ``peer``'s certificate, or None.

    ``peer.chain`` is the verdict for :func:`client_usage`; a hosted Edge's TLS
    layer trusts only the public CAs.
    """
    if peer.chain in _REFUSED_CHAINS:
        return _REFUSED_CHAINS[peer.chain]
    if peer.chain == "wrong-usage" and settings.rules.client_eku == "require":
        return "the certificate's Extended Key Usage lacks clientAuth (rule client_eku = require)"
    if settings.hosted and not peer.public_root:
        return "a hosted (Office 365) Edge accepts only certificates from a public CA"
    revoked = revocation_refusal(peer, settings)
    if revoked is not None:
        _rule, _symbol, schannel, what = revoked
        return f"the certificate {what} ({schannel})"
    return None


def version_refusal(
    edge: tuple[TlsVersion, ...], peer: tuple[TlsVersion, ...]
) -> tuple[TlsVersion | None, str | None]:
    """The version a handshake between the Edge and a peer settles on, or why there is none."""
    version = negotiated_version(edge, peer)
    if version is not None:
        return version, None
    return None, (
        f"no TLS version in common: the Edge accepts {', '.join(edge)}, "
        f"the peer offers {', '.join(peer)}"
    )
