"""Issue a lab PKI: turn :class:`~simulator.pki.spec.CertSpec` tables into PEM files.

Every certificate is built with cryptography's ``x509.CertificateBuilder``.
trustme (1.2.1) was the first choice, but none of the certificates a lab asks
for can be made with it: its CAs carry ``O=trustme``/a random ``OU`` and no CN
(we need the CA's CN to be its lab name, as Microsoft and Expressway print it),
and its leaves always carry a critical SAN extension, a random ``OU`` and the
EKU ``clientAuth+serverAuth+codeSigning``, while the lab needs CN-only leaves,
chosen EKUs and chosen validity windows. The extension set below mirrors
trustme's (SKI/AKI, critical BasicConstraints and KeyUsage) so the files look
like trustme's to OpenSSL.

Files go to ``<out_dir>/<stem>.crt``, ``.key`` (mode 0600 from creation) and
``.chain.pem`` (leaf then intermediates, no root); each CA also gets
``<stem>.crl`` (DER): the CRL that lists the certificates it issued with
``revoked = true``. Given a CRL server's base URL, every certificate a lab CA
issues carries a CRL distribution point, ``<base>/<issuer stem>.crl`` (or its
spec's own ``crl_url``), the way a Lync Edge certificate must (reference 1.9).
``<out_dir>/fedsim-pki.json`` records each certificate's spec and the
fingerprint of what was issued, so a rerun with the same specs reuses the files
(``fedsim serve`` restarts fast and peers keep trusting the same CA) and a
changed spec re-issues that certificate and everything below it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.pki.errors import PkiError
from simulator.pki.spec import EKU_NAMES, CertSpec

#: The index of issued specs kept beside the PEM files.
INDEX_NAME = "fedsim-pki.json"
INDEX_VERSION = 1

#: Backdating of "valid" certificates: a peer (an Expressway VM) whose clock runs
#: a little behind ours must not see a not-yet-valid certificate.
BACKDATE = dt.timedelta(days=1)
#: Lifetime of a "valid" leaf: 397 days, the CA/Browser Forum maximum for public
#: TLS certificates, so a lab leaf looks like one a public CA would sell.
LEAF_LIFETIME = dt.timedelta(days=397)
#: Lifetime of a "valid" CA: long enough that a lab root outlives its leaves.
CA_LIFETIME = dt.timedelta(days=3650)
#: Window of an "expired" certificate: it ended yesterday.
EXPIRED_WINDOW = (dt.timedelta(days=-365), dt.timedelta(days=-1))
#: Window of a "not-yet-valid" certificate: it starts tomorrow.
NOT_YET_VALID_WINDOW = (dt.timedelta(days=1), dt.timedelta(days=366))

#: Organisation put in lab CA subjects, so nobody mistakes them for real CAs.
CA_ORGANIZATION = "fedsim lab PKI"
#: A CRL is valid from an hour ago (clocks differ) for a week.
CRL_BACKDATE = dt.timedelta(hours=1)
CRL_LIFETIME = dt.timedelta(days=7)
#: Characters kept in file stems; anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

_EKU_OIDS: dict[str, x509.ObjectIdentifier] = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCert:
    """Where one issued lab certificate lives on disk.

    Attributes:
        name: the lab name (``[certs.NAME]``).
        cert_path: the certificate alone (PEM).
        key_path: its private key (PEM, unencrypted, mode 0600).
        chain_path: the certificate then its intermediates, without the root:
            what a TLS endpoint sends.
        root_path: the self-signed root the certificate chains to (its own
            ``cert_path`` for a root or a self-signed leaf): what a peer trusts.
        is_ca: True for a root or intermediate CA.
        public: True when the root stands for a publicly trusted CA.
        crl_path: a CA's CRL (DER), None for a leaf.
        cdp: the CRL distribution point the certificate names, if any.
    """

    name: str
    cert_path: Path
    key_path: Path
    chain_path: Path
    root_path: Path
    is_ca: bool
    public: bool
    crl_path: Path | None = None
    cdp: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an issued certificate needs its lab name")
        if self.cert_path == self.key_path:
            raise ValueError(f"certificate and key of '{self.name}' must be different files")


def file_stem(name: str) -> str:
    """Return the file-system-safe stem used for the lab name ``name``.

    Letters, digits, ``.``, ``_`` and ``-`` are kept (so ``sip.skype.lab`` stays
    readable); anything else becomes ``_``; a leading dot is escaped so no file
    is hidden and ``..`` cannot climb out of the directory.
    """
    stem = _UNSAFE.sub("_", name)
    if stem.startswith("."):
        stem = "_" + stem[1:]
    return stem or "_"


def crl_url_for(base: str, issuer: str) -> str:
    """The URL of CA ``issuer``'s CRL on the CRL server at ``base`` (``http://host:port``)."""
    return f"{base.rstrip('/')}/{file_stem(issuer)}.crl"


def issue_pki(
    specs: Sequence[CertSpec],
    out_dir: Path,
    *,
    now: dt.datetime,
    crl_url: str | None = None,
) -> dict[str, IssuedCert]:
    """Issue (or reuse) every certificate of ``specs`` into ``out_dir``.

    The order of ``specs`` does not matter: issuers are resolved by name.
    Certificates whose spec, issuer and files are unchanged since the last run
    (and whose validity class still holds at ``now``) are reused byte for byte.

    A CA's subject is ``O=fedsim lab PKI, CN=<cn or name>``; CAs get no EKU
    and no SAN unless ``san`` is given (``eku`` is ignored on a CA: an EKU on a
    CA restricts its whole subtree in OpenSSL). ``public`` counts only on
    roots. A leaf's subject is ``CN=<cn>`` alone (empty when ``cn`` is None).

    Args:
        specs: the lab's certificates.
        out_dir: the directory to write to (created if missing).
        now: the reference time for "valid", "expired" and "not-yet-valid".
        crl_url: the base URL of the CRL server (``http://127.0.0.1:8081``): every
            certificate a lab CA issues names its issuer's CRL there. None: the
            distribution points of certificates issued earlier are kept as they
            are (a command that only needs the files, beside a running lab, does
            not re-issue them), and new ones name none unless their spec does.

    Returns:
        The issued certificates by lab name.

    Raises:
        PkiError: duplicate names, an unknown issuer, an issuer that is not a
            CA, an issuer cycle, a certificate with no name, a bad window, or a
            file that cannot be written.
    """
    now = _utc(now).replace(microsecond=0)
    ordered = _resolve_order(specs)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(
            f"cannot create the directory: {exc.strerror}",
            path=out_dir,
            fix="choose a directory you can write to",
        ) from exc
    if not out_dir.is_dir():
        raise PkiError("is not a directory", path=out_dir, fix="choose a directory")
    _check_stems(ordered)

    index = _read_index(out_dir)
    done: dict[str, _Issued] = {}
    for spec in ordered:
        issuer = done[spec.issuer] if spec.issuer is not None else None
        done[spec.name] = _issue_one(spec, issuer, out_dir, index, now, crl_url)
    _write_index(out_dir, index)
    out: dict[str, IssuedCert] = {}
    for name, item in done.items():
        issued = item.issued
        if issued.is_ca:
            revoked = [
                other.cert
                for other in done.values()
                if other.spec.issuer == name and other.spec.revoked
            ]
            path = out_dir / f"{file_stem(name)}.crl"
            if not _crl_still_holds(path, item, revoked, now):
                _write_public(path, _build_crl(item, revoked, now))
            issued = dataclasses.replace(issued, crl_path=path)
        out[name] = issued
    return out


def _crl_still_holds(
    path: Path, ca: _Issued, revoked: Sequence[x509.Certificate], now: dt.datetime
) -> bool:
    """Whether the CRL on disk is this CA's, lists exactly ``revoked`` and stays valid a while.

    A rerun then leaves the file as it is (an ECDSA signature differs every time).
    """
    try:
        crl = x509.load_der_x509_crl(path.read_bytes())
    except (OSError, ValueError):
        return False
    if crl.issuer != ca.cert.subject or not crl.is_signature_valid(ca.key.public_key()):
        return False
    next_update = crl.next_update_utc
    if next_update is None or next_update < now + CRL_LIFETIME / 2:
        return False
    return {r.serial_number for r in crl} == {c.serial_number for c in revoked}


def _build_crl(ca: _Issued, revoked: Sequence[x509.Certificate], now: dt.datetime) -> bytes:
    """CA ``ca``'s CRL listing ``revoked`` (RFC 5280 §5: CRL number and AKI), DER."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - CRL_BACKDATE)
        .next_update(now + CRL_LIFETIME)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - CRL_BACKDATE)
            .build()
        )
    crl = builder.sign(private_key=ca.key, algorithm=hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def read_lab_specs(out_dir: Path) -> dict[str, CertSpec]:
    """Return the specs recorded in ``out_dir`` by earlier runs (empty if none).

    ``fedsim certs issue`` uses it to reuse a CA issued earlier in the same
    directory.

    Raises:
        PkiError: the index file exists but is not one fedsim wrote.
    """
    index = _read_index(Path(out_dir))
    return {name: _spec_from_json(name, entry["spec"], out_dir) for name, entry in index.items()}


def spec_window(spec: CertSpec, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """Return the (not_before, not_after) a spec asks for, relative to ``now`` (UTC).

    Raises:
        PkiError: the window is empty (not_before at or after not_after).
    """
    now = _utc(now).replace(microsecond=0)
    if spec.validity == "expired":
        start, end = now + EXPIRED_WINDOW[0], now + EXPIRED_WINDOW[1]
    elif spec.validity == "not-yet-valid":
        start, end = now + NOT_YET_VALID_WINDOW[0], now + NOT_YET_VALID_WINDOW[1]
    else:
        start, end = now - BACKDATE, now + (CA_LIFETIME if spec.ca else LEAF_LIFETIME)
    if spec.not_before is not None:
        start = _utc(spec.not_before)
    if spec.not_after is not None:
        end = _utc(spec.not_after)
    if start >= end:
        raise PkiError(
            f"validity window is empty: not_before {start:%Y-%m-%d %H:%M} is not before "
            f"not_after {end:%Y-%m-%d %H:%M} UTC",
            name=spec.name,
            fix="set not_before earlier than not_after",
        )
    return start, end


# --- ordering and validation -------------------------------------------------


def _resolve_order(specs: Sequence[CertSpec]) -> list[CertSpec]:
    """Order specs so each issuer comes before what it issues."""
    by_name: dict[str, CertSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise PkiError("is defined twice", name=spec.name, fix="give each certificate one name")
        by_name[spec.name] = spec
    for spec in specs:
        if spec.issuer is None:
            continue
        issuer = by_name.get(spec.issuer)
        if issuer is None:
            known = ", ".join(sorted(n for n, s in by_name.items() if s.ca)) or "none"
            raise PkiError(
                f"issuer '{spec.issuer}' is not defined",
                name=spec.name,
                fix=f"define it with ca = true, or use one of the CAs: {known}",
            )
        if not issuer.ca:
            raise PkiError(
                f"issuer '{spec.issuer}' is not a CA",
                name=spec.name,
                fix=f"set ca = true on '{spec.issuer}' or choose another issuer",
            )
    ordered: list[CertSpec] = []
    placed: set[str] = set()
    for spec in specs:
        path: list[str] = []
        current: CertSpec | None = spec
        while current is not None and current.name not in placed:
            if current.name in path:
                cycle = " -> ".join([*path[path.index(current.name) :], current.name])
                raise PkiError(
                    f"issuers form a cycle: {cycle}",
                    name=spec.name,
                    fix="make one of them a root (no issuer)",
                )
            path.append(current.name)
            current = by_name[current.issuer] if current.issuer is not None else None
        for name in reversed(path):
            ordered.append(by_name[name])
            placed.add(name)
    return ordered


def _check_stems(specs: Sequence[CertSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        stem = file_stem(spec.name).lower()  # case-insensitive file systems
        if stem in seen:
            raise PkiError(
                f"would be written to the same files as '{seen[stem]}'",
                name=spec.name,
                fix="rename one of them",
            )
        seen[stem] = spec.name


# --- issuing one certificate --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Issued:
    issued: IssuedCert
    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]  # this certificate and its intermediates
    root_public: bool
    spec: CertSpec


def _issue_one(
    spec: CertSpec,
    issuer: _Issued | None,
    out_dir: Path,
    index: dict[str, Any],
    now: dt.datetime,
    crl_url: str | None,
) -> _Issued:
    stem = file_stem(spec.name)
    cert_path = out_dir / f"{stem}.crt"
    key_path = out_dir / f"{stem}.key"
    chain_path = out_dir / f"{stem}.chain.pem"
    spec_json = _spec_to_json(spec)
    issuer_sha = _sha256(issuer.cert) if issuer is not None else None
    # The distribution point it should name; "strict" when that is decided here.
    cdp = spec.crl_url
    if cdp is None and crl_url is not None and spec.issuer is not None:
        cdp = crl_url_for(crl_url, spec.issuer)
    strict = spec.crl_url is not None or crl_url is not None
    entry = index.get(spec.name)

    reused = None
    if not strict or (isinstance(entry, dict) and entry.get("cdp") == cdp):
        reused = _maybe_reuse(spec, entry, spec_json, issuer_sha, cert_path, key_path, now)
    if reused is not None:
        cert, key = reused
        assert isinstance(entry, dict)  # _maybe_reuse accepts only an index entry
        entry["spec"] = spec_json  # keeps ``revoked`` up to date
        cdp = entry.get("cdp")
    else:
        key = _generate_key(spec)
        cert = _build_cert(spec, key, issuer, now, cdp)
        _write_private(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        index[spec.name] = {
            "file": stem,
            "spec": spec_json,
            "issuer_sha256": issuer_sha,
            "sha256": _sha256(cert),
            "cdp": cdp,
        }

    if issuer is None:
        chain: tuple[x509.Certificate, ...] = (cert,)
        root_path, root_public = cert_path, spec.public and spec.ca
    else:
        # The root is left out of the chain: a peer must already trust it.
        intermediates = issuer.chain if issuer.issued.root_path != issuer.issued.cert_path else ()
        chain = (cert, *intermediates)
        root_path, root_public = issuer.issued.root_path, issuer.root_public
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    if not chain_path.is_file() or chain_path.read_bytes() != chain_pem:
        _write_public(chain_path, chain_pem)
    issued = IssuedCert(
        name=spec.name,
        cert_path=cert_path,
        key_path=key_path,
        chain_path=chain_path,
        root_path=root_path,
        is_ca=spec.ca,
        public=root_public,
        cdp=cdp if isinstance(cdp, str) else None,
    )
    return _Issued(
        issued=issued, cert=cert, key=key, chain=chain, root_public=root_public, spec=spec
    )


def _maybe_reuse(
    spec: CertSpec,
    entry: Any,
    spec_json: dict[str, Any],
    issuer_sha: str | None,
    cert_path: Path,
    key_path: Path,
    now: dt.datetime,
) -> tuple[x509.Certificate, PrivateKey] | None:
    """Return the existing certificate and key when they still answer ``spec`` at ``now``.

    Revoking a certificate changes its issuer's CRL, not the certificate: ``revoked``
    is not compared.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("spec"), dict):
        return None
    if _without_revoked(entry["spec"]) != _without_revoked(spec_json):
        return None
    if entry.get("issuer_sha256") != issuer_sha:
        return None  # the issuer was re-issued: its old signature would not verify
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return None
    if _sha256(cert) != entry.get("sha256") or _spki(key.public_key()) != _spki(cert.public_key()):
        return None
    if not _window_still_holds(spec, cert, now):
        return None
    return cert, key


def _without_revoked(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "revoked"}


def _window_still_holds(spec: CertSpec, cert: x509.Certificate, now: dt.datetime) -> bool:
    """Tell whether a certificate issued earlier is still in the validity class asked for.

    A "not-yet-valid" certificate issued a week ago is valid today, and a
    "valid" one may have run out: those are issued again. Explicit dates are
    absolute, so they never go stale.
    """
    if spec.not_before is not None or spec.not_after is not None:
        return True
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if spec.validity == "expired":
        return end < now
    if spec.validity == "not-yet-valid":
        return now < start
    return start <= now < end


def _build_cert(
    spec: CertSpec, key: PrivateKey, issuer: _Issued | None, now: dt.datetime, cdp: str | None
) -> x509.Certificate:
    try:
        return _build_cert_unchecked(spec, key, issuer, now, cdp)
    except ValueError as exc:
        # cryptography refuses e.g. a CN over 64 characters or a non-ASCII DNS name.
        raise PkiError(
            f"cannot be built: {exc}",
            name=spec.name,
            fix="use a CN of at most 64 characters and DNS names in ASCII (xn-- form)",
        ) from exc


def _build_cert_unchecked(
    spec: CertSpec, key: PrivateKey, issuer: _Issued | None, now: dt.datetime, cdp: str | None
) -> x509.Certificate:
    not_before, not_after = spec_window(spec, now)
    subject = _subject(spec)
    sans = _sans(spec)
    if not subject and not sans:
        raise PkiError(
            "has neither a CN nor a SAN, so no peer could match a name",
            name=spec.name,
            fix="set cn or san",
        )
    issuer_name = issuer.cert.subject if issuer is not None else subject
    sign_key = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.BasicConstraints(ca=spec.ca, path_length=None),
            critical=True,
        )
        .add_extension(_key_usage(spec), critical=True)
    )
    if issuer is not None:
        ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    if cdp is not None:
        # RFC 5280 §4.2.1.13: one distribution point, its full name the CRL's URL.
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(cdp)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if sans:
        # RFC 5280 §4.2.1.6: the SAN extension is critical when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]),
            critical=not subject,
        )
    if not spec.ca and spec.eku:
        unknown = [e for e in spec.eku if e not in _EKU_OIDS]
        if unknown:
            raise PkiError(
                f"unknown EKU {', '.join(unknown)}",
                name=spec.name,
                fix=f"use {' and/or '.join(EKU_NAMES)}, or none",
            )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU_OIDS[e] for e in spec.eku]), critical=False
        )
    return builder.sign(private_key=sign_key, algorithm=hashes.SHA256())


def _subject(spec: CertSpec) -> x509.Name:
    if spec.ca:
        # Every CA is named by its CN (default: the lab name), as Windows and
        # Expressway print issuers by CN.
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, spec.cn or spec.name),
            ]
        )
    if spec.cn is None:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.cn)])


def _sans(spec: CertSpec) -> tuple[str, ...]:
    if spec.san is not None:
        return spec.san
    if spec.ca or spec.cn is None:
        return ()
    return (spec.cn,)


def _key_usage(spec: CertSpec) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        # RSA key exchange (TLS 1.0-1.2 without ECDHE) encrypts to the key.
        key_encipherment=not spec.ca and spec.key_type == "rsa",
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=spec.ca,
        crl_sign=spec.ca,
        encipher_only=False,
        decipher_only=False,
    )


def _generate_key(spec: CertSpec) -> PrivateKey:
    if spec.key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


# --- files --------------------------------------------------------------------


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@contextlib.contextmanager
def _atomic(path: Path, mode: int) -> Iterator[int]:
    """Yield a descriptor of a new file created with ``mode``, then rename it onto ``path``.

    The temporary file is created by ``os.open`` with ``mode`` itself, so a
    private key is never readable by others, not even between create and chmod.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp: 0600
    try:
        os.fchmod(fd, mode)
        yield fd
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write(path: Path, data: bytes, mode: int) -> None:
    try:
        with _atomic(path, mode) as fd:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
    except OSError as exc:
        raise PkiError(
            f"cannot write: {exc.strerror or exc}",
            path=path,
            fix="check the directory's permissions and free space",
        ) from exc


def _write_private(path: Path, data: bytes) -> None:
    _write(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _read_index(out_dir: Path) -> dict[str, Any]:
    path = out_dir / INDEX_NAME
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise PkiError(f"cannot read: {exc.strerror}", path=path, fix="check permissions") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PkiError(
            f"is not valid JSON (line {exc.lineno})",
            path=path,
            fix="delete it; fedsim re-issues the lab PKI",
        ) from exc
    if (
        not isinstance(data, dict)
        or data.get("version") != INDEX_VERSION
        or not isinstance(data.get("certs"), dict)
    ):
        raise PkiError(
            "is not a fedsim lab PKI index",
            path=path,
            fix="delete it; fedsim re-issues the lab PKI",
        )
    certs: dict[str, Any] = data["certs"]
    return certs


def _write_index(out_dir: Path, index: Mapping[str, Any]) -> None:
    text = json.dumps({"version": INDEX_VERSION, "certs": dict(index)}, indent=2, sort_keys=True)
    _write_public(out_dir / INDEX_NAME, text.encode("utf-8") + b"\n")


# --- spec <-> JSON ---------------------------------------------------------------


def _spec_to_json(spec: CertSpec) -> dict[str, Any]:
    return {
        "ca": spec.ca,
        "public": spec.public,
        "issuer": spec.issuer,
        "cn": spec.cn,
        "san": None if spec.san is None else list(spec.san),
        "eku": list(spec.eku),
        "validity": spec.validity,
        "not_before": None if spec.not_before is None else _utc(spec.not_before).isoformat(),
        "not_after": None if spec.not_after is None else _utc(spec.not_after).isoformat(),
        "key_type": spec.key_type,
        "revoked": spec.revoked,
        "crl_url": spec.crl_url,
    }


def _spec_from_json(name: str, data: Any, out_dir: Path) -> CertSpec:
    try:
        return CertSpec(
            name=name,
            ca=bool(data["ca"]),
            public=bool(data["public"]),
            issuer=data["issuer"],
            cn=data["cn"],
            san=None if data["san"] is None else tuple(data["san"]),
            eku=tuple(data["eku"]),
            validity=data["validity"],
            not_before=_parse_time(data["not_before"]),
            not_after=_parse_time(data["not_after"]),
            key_type=data["key_type"],
            revoked=bool(data.get("revoked", False)),
            crl_url=data.get("crl_url"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PkiError(
            f"entry for '{name}' is damaged ({exc!r})",
            path=Path(out_dir) / INDEX_NAME,
            fix="delete the file; fedsim re-issues the lab PKI",
        ) from exc


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"time must be a string, not {value!r}")
    return dt.datetime.fromisoformat(value)


# --- small helpers ---------------------------------------------------------------


def _utc(moment: dt.datetime) -> dt.datetime:
    """Return ``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _spki(public_key: Any) -> bytes:
    data: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data
