"""``ssl.SSLContext`` builders for federation's mutual TLS (ms-federation.md §1.1, §1.8).

Both directions are mutual TLS: the server requires and verifies the client's
certificate against ``trust``; the client verifies the server's chain against
``trust``. Hostname checking is off by default because the Edge checks the
peer's names itself against the SRV target (ms-federation.md §6), which is not
the host it connected to; ``verify_mode`` stays ``CERT_REQUIRED``.

**Key log.** With a key log on (:func:`use_keylog` once for the whole process,
as ``fedsim serve --keylog`` does, or ``keylog=`` per context, or
:func:`enable_keylog` on any context) OpenSSL appends the secrets of every TLS
session the context makes, in the NSS key log format Wireshark reads
(``CLIENT_RANDOM`` for TLS 1.2, ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``... for 1.3),
so a real capture of the lab can be decrypted. The file is created 0600 before
OpenSSL opens it (OpenSSL appends and keeps the mode): those secrets decrypt
every session.

Files are checked before OpenSSL sees them, so a wrong path, a non-PEM file or
a key that does not match its certificate is one :class:`PkiError` line with
the file and a fix instead of an ``ssl.SSLError`` code.
"""

from __future__ import annotations

import ctypes
import functools
import os
import ssl
import stat
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization

from simulator.pki.errors import PkiError
from simulator.pki.facts import key_matches_certificate, load_pem_certificates
from simulator.policy.profiles import PROFILES, TlsSettings

TlsProfile = Literal["default", "sfb2015", "sfb2019", "sfbse", "office365"]

#: Protocol versions of the one profile that is no product: OpenSSL's defaults for
#: TLS 1.2-1.3 (simulated Expressway-Es and clients use it).
DEFAULT_VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
#: OpenSSL 3 refuses TLS 1.0/1.1 (their SHA-1 handshake signatures) at security
#: level 1 and above; level 0 re-enables them. Only profiles with TLS 1.0 use it.
LEGACY_LEVEL = "@SECLEVEL=0"
#: ``X509_PURPOSE_ANY`` (openssl/x509v3.h): verify the chain, not the EKU.
_X509_PURPOSE_ANY = 7

#: The key log's mode: its secrets decrypt every session, so the owner's alone.
KEYLOG_MODE = 0o600

#: The key log every context built here writes to, unless told otherwise (use_keylog).
_process_keylog: Path | None = None

_SSL_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def profile_versions(profile: str) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """The (lowest, highest) protocol version a TLS profile accepts.

    Raises:
        PkiError: an unknown profile.
    """
    if profile == "default":
        return DEFAULT_VERSIONS
    tls = _tls(profile)
    return _SSL_VERSIONS[tls.versions[0]], _SSL_VERSIONS[tls.versions[-1]]


def open_keylog(path: Path) -> Path:
    """Create the key log file 0600 (or make an existing one 0600), ready for OpenSSL.

    Python's ``keylog_filename`` makes OpenSSL open the file for appending with
    the default mode (0644 under the usual umask): creating it first, 0600, keeps
    the secrets the owner's. A symbolic link is refused rather than followed.

    Raises:
        PkiError: the file cannot be created or is not a regular file.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, KEYLOG_MODE)
    except OSError as exc:
        raise PkiError(
            f"cannot create the TLS key log: {exc.strerror}",
            path=path,
            fix="give --keylog a path in a directory you can write (not a symbolic link)",
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PkiError(
                "the TLS key log is not a regular file", path=path, fix="give a file path"
            )
        os.fchmod(fd, KEYLOG_MODE)
    finally:
        os.close(fd)
    return path


def enable_keylog(ctx: ssl.SSLContext, path: Path) -> None:
    """Make ``ctx`` append the secrets of its TLS sessions to ``path`` (created 0600).

    Raises:
        PkiError: the file cannot be created.
    """
    ctx.keylog_filename = os.fspath(open_keylog(path))


def use_keylog(path: Path | None) -> None:
    """Log the secrets of every context :func:`server_context`/:func:`client_context`
    build from now on to ``path`` (None: stop). The file is created 0600 now.

    Raises:
        PkiError: the file cannot be created.
    """
    global _process_keylog
    _process_keylog = None if path is None else open_keylog(path)


def _apply_keylog(ctx: ssl.SSLContext, keylog: Path | None) -> None:
    path = keylog if keylog is not None else _process_keylog
    if path is not None:
        enable_keylog(ctx, path)


def server_context(
    *,
    cert: Path,
    key: Path,
    chain: Path | None = None,
    trust: Sequence[Path] = (),
    require_client_cert: bool = True,
    profile: TlsProfile = "default",
    check_client_purpose: bool = True,
    keylog: Path | None = None,
) -> ssl.SSLContext:
    """Build the context of a federation listener (the Edge's 5061).

    Args:
        cert: the server certificate (PEM; may already hold its intermediates).
        key: its private key (PEM, unencrypted).
        chain: intermediates to send after it (PEM; a leading copy of the leaf,
            as in the lab's ``.chain.pem``, is skipped).
        trust: CA files whose certificates verify client certificates.
        require_client_cert: True demands a client certificate (mutual TLS);
            False still asks for one and verifies it if sent (``CERT_OPTIONAL``).
        profile: which product's TLS versions and cipher suites to offer and
            accept (:data:`simulator.policy.PROFILES`), or "default" (OpenSSL's).
        check_client_purpose: refuse a client certificate whose EKU lacks
            clientAuth at the handshake (OpenSSL's default, rule ``client_eku =
            "require"``). False verifies the chain for any purpose (``"ignore"``).
        keylog: append the sessions' secrets to this file (default: the
            process's key log, see :func:`use_keylog`, if any).

    Returns:
        A server-side ``ssl.SSLContext``.

    Raises:
        PkiError: a file is missing or wrong, or the key does not match.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_profile(ctx, profile)
    # Schannel picks the suite by the server's priority list (I): so does the Edge.
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_identity(ctx, cert=cert, key=key, chain=chain)
    _load_trust(ctx, trust)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    if not check_client_purpose:
        set_any_purpose(ctx)
    _apply_keylog(ctx, keylog)
    return ctx


def client_context(
    *,
    cert: Path | None = None,
    key: Path | None = None,
    chain: Path | None = None,
    trust: Sequence[Path] = (),
    profile: TlsProfile = "default",
    check_hostname: bool = False,
    keylog: Path | None = None,
) -> ssl.SSLContext:
    """Build the context of a federation client (Edge outbound, or a simulated Expressway).

    Args:
        cert: the client certificate to present (PEM), or None for none.
        key: its private key; required with ``cert``.
        chain: intermediates to send after it.
        trust: CA files whose certificates verify the server.
        profile: which TLS versions to offer.
        check_hostname: let OpenSSL match ``server_hostname`` too. Off by
            default: the caller matches the SRV target itself.
        keylog: append the sessions' secrets to this file (default: the
            process's key log, see :func:`use_keylog`, if any).

    Returns:
        A client-side ``ssl.SSLContext`` that always verifies the server chain.

    Raises:
        PkiError: a file is missing or wrong, ``cert`` and ``key`` are not
            given together, or the key does not match.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_profile(ctx, profile)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if (cert is None) != (key is None):
        given, missing = ("cert", "key") if cert is not None else ("key", "cert")
        raise PkiError(
            f"a client {given} was given without its {missing}",
            path=cert if cert is not None else key,
            fix="pass both the certificate and its key, or neither",
        )
    if cert is not None and key is not None:
        _load_identity(ctx, cert=cert, key=key, chain=chain)
    _load_trust(ctx, trust)
    _apply_keylog(ctx, keylog)
    return ctx


def _tls(profile: str) -> TlsSettings:
    found = next((p for name, p in PROFILES.items() if name == profile), None)
    if found is None:
        raise PkiError(
            f"unknown TLS profile '{profile}'",
            fix=f"use one of default, {', '.join(PROFILES)}",
        )
    return found.tls


def _apply_profile(ctx: ssl.SSLContext, profile: str) -> None:
    low, high = profile_versions(profile)
    if low < ssl.TLSVersion.TLSv1_2:
        # Deliberate: SfB 2015 offers TLS 1.0/1.1 and the lab must reproduce
        # peers that only speak those. Python flags the setting as deprecated.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = low
    else:
        ctx.minimum_version = low
    ctx.maximum_version = high
    if profile == "default":
        return
    tls = _tls(profile)
    # The product's Schannel suites, in its priority order; a peer offering none of
    # them is refused at the handshake (field case C17). Suites OpenSSL 3 lacks (RC4)
    # are skipped by OpenSSL itself.
    legacy = LEGACY_LEVEL if low < ssl.TLSVersion.TLSv1_2 else ""
    ctx.set_ciphers(tls.openssl_ciphers + legacy)
    if high >= ssl.TLSVersion.TLSv1_3:
        set_tls13_suites(ctx, tls.openssl_ciphersuites)


@functools.cache
def _libssl() -> ctypes.CDLL:
    """The OpenSSL that Python's ``_ssl`` module is linked with (its symbols resolve there)."""
    import _ssl

    lib = ctypes.CDLL(getattr(_ssl, "__file__", None))
    lib.SSL_CTX_get0_param.restype = ctypes.c_void_p
    lib.SSL_CTX_get0_param.argtypes = [ctypes.c_void_p]
    lib.X509_VERIFY_PARAM_get_flags.restype = ctypes.c_ulong
    lib.X509_VERIFY_PARAM_get_flags.argtypes = [ctypes.c_void_p]
    lib.X509_VERIFY_PARAM_set_purpose.restype = ctypes.c_int
    lib.X509_VERIFY_PARAM_set_purpose.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
    lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    return lib


def _ssl_ctx(ctx: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` inside ``ctx`` (the first field after the object header).

    Python offers no API for the X.509 purpose or the TLS 1.3 suites, so fedsim
    sets them through OpenSSL itself. The pointer is checked before use: the
    verify flags OpenSSL reports through it must be the ones Python set.

    Raises:
        PkiError: the pointer cannot be confirmed (another Python build).
    """
    lib = _libssl()
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if pointer:
        param = lib.SSL_CTX_get0_param(pointer)
        if param and lib.X509_VERIFY_PARAM_get_flags(param) == int(ctx.verify_flags):
            return pointer
    raise PkiError(
        "cannot reach OpenSSL's context from this Python build",
        fix="run fedsim on CPython 3.11+ with its own ssl module",
    )


def set_any_purpose(ctx: ssl.SSLContext) -> None:
    """Verify peer chains for any purpose: the EKU no longer refuses a certificate.

    Raises:
        PkiError: OpenSSL could not be reached or refused the setting.
    """
    lib = _libssl()
    param = lib.SSL_CTX_get0_param(_ssl_ctx(ctx))
    if lib.X509_VERIFY_PARAM_set_purpose(param, _X509_PURPOSE_ANY) != 1:
        raise PkiError("OpenSSL refused X509_PURPOSE_ANY", fix="report this as a bug")


def set_tls13_suites(ctx: ssl.SSLContext, suites: str) -> None:
    """Offer exactly ``suites`` (OpenSSL names, ``:``-separated) in TLS 1.3.

    Raises:
        PkiError: OpenSSL could not be reached or knows none of the suites.
    """
    if _libssl().SSL_CTX_set_ciphersuites(_ssl_ctx(ctx), suites.encode("ascii")) != 1:
        raise PkiError(f"OpenSSL refused the TLS 1.3 suites {suites}", fix="report this as a bug")


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise PkiError(
            f"{what} file not found",
            path=path,
            fix="check the path, or run 'fedsim certs init' to write the lab PKI",
        ) from None
    except IsADirectoryError:
        raise PkiError(f"{what} path is a directory", path=path, fix="name the file") from None
    except OSError as exc:
        raise PkiError(
            f"cannot read the {what} file: {exc.strerror}", path=path, fix="check permissions"
        ) from exc


def _load_identity(ctx: ssl.SSLContext, *, cert: Path, key: Path, chain: Path | None) -> None:
    certs = load_pem_certificates(_read(cert, "certificate"), source=str(cert))
    key_pem = _read(key, "private key")
    try:
        matches = key_matches_certificate(key_pem, certs[0])
    except PkiError as exc:
        raise PkiError(exc.what, path=key, fix=exc.fix) from None
    if not matches:
        raise PkiError(
            f"the private key does not belong to the certificate {cert}",
            path=key,
            fix="pass the key that was generated with that certificate",
        )
    if chain is not None:
        extra = load_pem_certificates(_read(chain, "chain"), source=str(chain))
        known = {c.public_bytes(serialization.Encoding.DER) for c in certs}
        certs += [c for c in extra if c.public_bytes(serialization.Encoding.DER) not in known]
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    # load_cert_chain only reads files: hand it leaf + intermediates in one
    # (public) file that lives only as long as this call.
    with tempfile.NamedTemporaryFile(prefix="fedsim-chain-", suffix=".pem") as tmp:
        tmp.write(pem)
        tmp.flush()
        try:
            ctx.load_cert_chain(certfile=tmp.name, keyfile=str(key))
        except ssl.SSLError as exc:
            raise PkiError(
                f"OpenSSL refused the certificate or key ({exc.reason or exc})",
                path=key,
                fix="check that the key is an unencrypted PEM key for this certificate",
            ) from exc


def _load_trust(ctx: ssl.SSLContext, trust: Sequence[Path]) -> None:
    for path in trust:
        certs = load_pem_certificates(_read(path, "trusted CA"), source=str(path))
        cadata = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
        try:
            ctx.load_verify_locations(cadata=cadata)
        except ssl.SSLError as exc:
            raise PkiError(
                f"OpenSSL refused a trusted CA ({exc.reason or exc})",
                path=path,
                fix="pass a PEM file of CA certificates",
            ) from exc
