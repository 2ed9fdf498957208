"""What a certificate says, and whether a chain holds: the PKI facts the policy decides on.

Pure: no ssl, no sockets, no clock. The caller passes ``now``. Everything is
read with cryptography, so a customer's PEM can be examined without OpenSSL
and the same facts feed ``fedsim certs show``, ``fedsim check`` and the Edge.

Name matching follows Microsoft's rule as the Cisco note states it ([CISCO]
in reference/ms-federation.md §6): the peer certificate must carry the FQDN in
a DNS SAN, and the CN counts only when the certificate has no DNS SAN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.pki.errors import PkiError

ChainStatus = Literal[
    "trusted", "untrusted-root", "expired", "not-yet-valid", "wrong-usage", "bad-chain"
]
Usage = Literal["server", "client", "any"]

#: Short names for the EKUs that matter to federation; others print as dotted OIDs.
EKU_SHORT_NAMES: dict[x509.ObjectIdentifier, str] = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}
#: The EKU a certificate needs for each TLS role (RFC 5280 §4.2.1.12).
_USAGE_EKU: dict[str, str] = {"server": "serverAuth", "client": "clientAuth"}
#: Longest chain followed; real chains are 2-4 certificates.
MAX_CHAIN_DEPTH = 10
#: NIST names of the curves, as Windows and Expressway print them.
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFacts:
    """The facts of one certificate that federation decisions and messages use.

    Attributes:
        subject: the subject DN (RFC 4514 string, e.g. ``CN=vcse.steven.lab``).
        issuer: the issuer DN (RFC 4514 string).
        subject_cn: the subject common name, or None.
        dns_sans: the DNS subjectAltNames, in certificate order.
        has_san_extension: True when a SAN extension is present (even without DNS names).
        eku: extended key usages (``serverAuth``, ``clientAuth``, others as dotted
            OIDs); empty when there is no EKU extension (any usage).
        not_before / not_after: the validity window (aware, UTC).
        is_ca: BasicConstraints CA:TRUE.
        self_signed: issued by itself (names equal and the signature verifies).
        serial_hex: the serial number in upper-case hex.
        sha256: SHA-256 fingerprint of the DER, ``AB:CD:...`` as OpenSSL prints it.
        key_type: e.g. ``ECDSA P-256`` or ``RSA 2048``.
    """

    subject: str
    issuer: str
    subject_cn: str | None
    dns_sans: tuple[str, ...]
    has_san_extension: bool
    eku: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    self_signed: bool
    serial_hex: str
    sha256: str
    key_type: str

    def __post_init__(self) -> None:
        for label, moment in (("not_before", self.not_before), ("not_after", self.not_after)):
            if moment.tzinfo is None:
                raise ValueError(f"{label} must be timezone-aware, not {moment!r}")
        if self.dns_sans and not self.has_san_extension:
            raise ValueError("dns_sans given but has_san_extension is False")
        if not isinstance(self.dns_sans, tuple) or not isinstance(self.eku, tuple):
            raise TypeError("dns_sans and eku must be tuples")

    def names_for_matching(self) -> tuple[str, ...]:
        """Return the names a peer FQDN is matched against.

        The DNS SANs; the CN only when the certificate has no DNS SAN ([CISCO]:
        "CN used only if no SAN").
        """
        if self.dns_sans:
            return self.dns_sans
        return (self.subject_cn,) if self.subject_cn else ()

    def display_name(self) -> str:
        """Return the name Microsoft prints for this certificate (``certName``, ``PeerServer``).

        The subject CN, else the first DNS SAN, else the whole subject.
        """
        if self.subject_cn:
            return self.subject_cn
        if self.dns_sans:
            return self.dns_sans[0]
        return self.subject or "(no name)"

    def valid_at(self, now: dt.datetime) -> bool:
        """Tell whether ``now`` lies inside the validity window."""
        return self.not_before <= now <= self.not_after


def facts_from_der(der: bytes) -> CertificateFacts:
    """Read the facts of a DER-encoded certificate.

    Raises:
        PkiError: ``der`` is not a certificate.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise PkiError(
            f"not a DER certificate ({exc})", fix="pass the certificate's DER bytes"
        ) from exc
    return facts_from_certificate(cert)


def facts_from_certificate(cert: x509.Certificate) -> CertificateFacts:
    """Read the facts of a parsed certificate."""
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        san_ext: x509.SubjectAlternativeName | None = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        san_ext = None
    try:
        eku_ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        eku = tuple(EKU_SHORT_NAMES.get(oid, oid.dotted_string) for oid in eku_ext)
    except x509.ExtensionNotFound:
        eku = ()
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cns[0].value if cns else None
    digest = hashlib.sha256(der).hexdigest().upper()
    serial = f"{cert.serial_number:X}"
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        subject_cn=cn if isinstance(cn, str) else None,
        dns_sans=tuple(san_ext.get_values_for_type(x509.DNSName)) if san_ext else (),
        has_san_extension=san_ext is not None,
        eku=eku,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=_is_ca(cert),
        self_signed=_issued_by(cert, cert),
        serial_hex=serial if len(serial) % 2 == 0 else "0" + serial,
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        key_type=_key_type(cert),
    )


def load_pem_certificates(data: bytes, *, source: str) -> list[x509.Certificate]:
    """Parse every CERTIFICATE block of a PEM file, in file order.

    Args:
        data: the file's bytes.
        source: where they came from (a path), for the error message.

    Raises:
        PkiError: the data is DER, is not PEM, holds no CERTIFICATE block, or a
            block is damaged.
    """
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if data[:1] == b"\x30":
            fix = f"it looks like DER: convert it with 'openssl x509 -inform der -in {source}'"
        elif b"-----BEGIN" in data:
            fix = "it holds PEM blocks but no certificate: pass the certificate file"
        else:
            fix = "pass a PEM file starting with -----BEGIN CERTIFICATE-----"
        raise PkiError("no CERTIFICATE block found", path=source, fix=fix)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError(
            f"a CERTIFICATE block cannot be parsed ({exc})",
            path=source,
            fix="export the certificate again as Base-64 (PEM)",
        ) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    """Whether a certificate chains to a trusted root at a given time.

    Attributes:
        status: the first failure found, or "trusted".
        detail: one sentence a network engineer understands.
        root_subject: the subject of the root the chain reached (trusted or
            not); for a chain that stops at a CA neither sent nor trusted, that
            CA's name; None when the leaf itself failed or the chain is broken.
        root_is_public: the root reached is one of the public roots.
        path: the chain built, leaf first and the trusted root last (only for a
            "trusted" verdict: what a revocation check walks).
    """

    status: ChainStatus
    detail: str
    root_subject: str | None
    root_is_public: bool
    path: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if self.root_is_public and self.root_subject is None:
            raise ValueError("root_is_public needs a root_subject")
        if not self.detail:
            raise ValueError("detail must say why")


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    now: dt.datetime,
    public_roots: Sequence[x509.Certificate] = (),
    usage: Usage = "any",
) -> ChainVerdict:
    """Verify that ``leaf`` chains to one of ``roots`` or ``public_roots`` at ``now``.

    The path is built by issuer name and signature (ECDSA, RSA, EdDSA), the way
    Windows CryptoAPI does for Schannel, preferring a trusted certificate when
    several could sign. Checks, in this order (the first failure is the
    verdict): the leaf's validity window; the leaf's EKU for ``usage`` (no EKU
    extension means any usage, RFC 5280 §4.2.1.12); the path, where a missing
    issuer or a self-signed top that is not trusted is "untrusted-root" and an
    issuer that is not a CA, a signature that does not verify under the named
    issuer or a loop is "bad-chain"; the validity window of every CA on the path.

    Args:
        leaf: the end-entity certificate.
        intermediates: what the peer sent after its leaf (order does not matter).
        roots: the private CAs trusted (e.g. imported into the Edge's store).
        now: the time of the check.
        public_roots: the public CAs trusted (what Office 365 accepts).
        usage: "server", "client" or "any".

    Returns:
        The verdict.
    """
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    public_der = {_der(c) for c in public_roots}
    anchors = [*public_roots, *roots]
    anchor_der = {_der(c) for c in anchors}

    timing = _window_problem(leaf, now, role="certificate")
    if timing is not None:
        return ChainVerdict(
            status=timing[0], detail=timing[1], root_subject=None, root_is_public=False
        )

    if usage != "any":
        needed = _USAGE_EKU[usage]
        ekus = _eku_oids(leaf)
        allowed = {needed, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string}
        if ekus is not None and not (set(ekus) & allowed):
            have = ", ".join(ekus) or "none"
            return ChainVerdict(
                status="wrong-usage",
                detail=(
                    f"the certificate {_label(leaf)} is not valid for {usage} authentication: "
                    f"its Extended Key Usage is {have} and lacks {needed}"
                ),
                root_subject=None,
                root_is_public=False,
            )

    path = [leaf]
    pool = [*anchors, *intermediates]  # anchors first: prefer a trusted issuer
    current = leaf
    while _der(current) not in anchor_der:
        if _issued_by(current, current):
            return ChainVerdict(
                status="untrusted-root",
                detail=(
                    f"the chain ends at the self-signed {_label(current)}, "
                    "which is not among the trusted root CAs"
                ),
                root_subject=current.subject.rfc4514_string(),
                root_is_public=False,
            )
        issuer = next(
            (c for c in pool if _der(c) != _der(current) and _issued_by(current, c)), None
        )
        if issuer is None:
            namesakes = [c for c in pool if c.subject == current.issuer]
            if namesakes:
                return ChainVerdict(
                    status="bad-chain",
                    detail=(
                        f"{_label(current)} names {_label(namesakes[0])} as its issuer, but "
                        "that CA's key did not sign it (a re-issued CA, or a mixed-up chain)"
                    ),
                    root_subject=None,
                    root_is_public=False,
                )
            # Peers never send their root, so an issuer that is neither sent nor
            # trusted is what an untrusted CA looks like; Windows reports such a
            # partial chain as an untrusted root (SEC_E_UNTRUSTED_ROOT, §4.3).
            return ChainVerdict(
                status="untrusted-root",
                detail=(
                    f"the issuer '{current.issuer.rfc4514_string()}' of {_label(current)} "
                    "is not a trusted CA and was not sent: trust that CA's root, or, "
                    "if it is an intermediate, have the peer send it"
                ),
                root_subject=current.issuer.rfc4514_string(),
                root_is_public=False,
            )
        if not _is_ca(issuer):
            return ChainVerdict(
                status="bad-chain",
                detail=(
                    f"{_label(issuer)} signed {_label(current)} but is not a CA "
                    "(BasicConstraints CA:FALSE or missing)"
                ),
                root_subject=None,
                root_is_public=False,
            )
        if issuer in path or len(path) >= MAX_CHAIN_DEPTH:
            return ChainVerdict(
                status="bad-chain",
                detail=f"the chain of {_label(leaf)} loops or is longer than {MAX_CHAIN_DEPTH}",
                root_subject=None,
                root_is_public=False,
            )
        path.append(issuer)
        current = issuer

    root = path[-1]
    root_subject = root.subject.rfc4514_string()
    is_public = _der(root) in public_der
    for ca in path[1:]:
        timing = _window_problem(ca, now, role="CA certificate")
        if timing is not None:
            return ChainVerdict(
                status=timing[0],
                detail=timing[1],
                root_subject=root_subject,
                root_is_public=is_public,
            )
    kind = " (a public CA)" if is_public else ""
    return ChainVerdict(
        status="trusted",
        detail=f"{_label(leaf)} chains to the trusted root {_label(root)}{kind}",
        root_subject=root_subject,
        root_is_public=is_public,
        path=tuple(path),
    )


def matches_name(facts: CertificateFacts, fqdn: str) -> bool:
    """Tell whether the certificate carries ``fqdn``, the way the Edge matches a peer.

    Exact, case-insensitive comparison against :meth:`CertificateFacts.names_for_matching`;
    a trailing dot is ignored on both sides. Wildcards are NOT expanded: a
    ``*.steven.lab`` SAN matches only the literal string. Microsoft documents no
    wildcard support for federation peers (ms-federation.md §1.11: unverified)
    and Expressway does not support wildcard certificates (§1.16), so a
    wildcard is treated as the mismatch a real deployment would most likely see.
    """
    wanted = fqdn.rstrip(".").lower()
    if not wanted:
        return False
    return any(name.rstrip(".").lower() == wanted for name in facts.names_for_matching())


def key_matches_certificate(key_pem: bytes, cert: x509.Certificate) -> bool:
    """Tell whether the private key in ``key_pem`` belongs to ``cert``.

    Raises:
        PkiError: ``key_pem`` is not an unencrypted PEM private key.
    """
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as exc:  # encrypted key
        raise PkiError(
            "the private key is encrypted",
            fix="decrypt it with 'openssl pkey -in KEY -out KEY.plain'",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiError(
            "not a PEM private key",
            fix="pass the file starting with -----BEGIN PRIVATE KEY-----",
        ) from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == theirs


# --- helpers ------------------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _label(cert: x509.Certificate) -> str:
    """Name a certificate in a sentence: its CN, else its first DNS SAN, else its DN."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns and isinstance(cns[0].value, str):
        return f"'{cns[0].value}'"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if names:
        return f"'{names[0]}'"
    return f"'{cert.subject.rfc4514_string()}'"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _eku_oids(cert: x509.Certificate) -> list[str] | None:
    """Return the leaf's EKUs (short names or dotted OIDs), or None without the extension."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [EKU_SHORT_NAMES.get(oid, oid.dotted_string) for oid in ext]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Tell whether ``issuer``'s name and key signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _window_problem(
    cert: x509.Certificate, now: dt.datetime, *, role: str
) -> tuple[ChainStatus, str] | None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > end:
        return "expired", (
            f"the {role} {_label(cert)} expired on {end:%Y-%m-%d %H:%M} UTC "
            f"(checked at {now:%Y-%m-%d %H:%M} UTC)"
        )
    if now < start:
        return "not-yet-valid", (
            f"the {role} {_label(cert)} is not valid before {start:%Y-%m-%d %H:%M} UTC "
            f"(checked at {now:%Y-%m-%d %H:%M} UTC)"
        )
    return None


def _key_type(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    return type(key).__name__
