"""The I/O half of ``fedsim check``: read the PEM files, find the DNS server, ask it.

Files are read synchronously before any DNS (so bad input stops with exit 2
first); the lookups are async (trio, through :class:`simulator.dns.Resolver`,
which asks exactly one server with bounded timeouts). Nothing is decided
here: :func:`simulator.check.report.build_report` judges what this gathers.
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning

from simulator.check.report import AddressLookup
from simulator.dns.resolver import Resolver
from simulator.edge.crl import fetch
from simulator.errors import FedsimError
from simulator.lab.load import normalize_domain, parse_hostport
from simulator.pki.errors import PkiError
from simulator.pki.facts import load_pem_certificates
from simulator.pki.revocation import distribution_points
from simulator.policy import SrvLookup, SrvTarget, srv_name

#: Where the system resolver is configured (resolv.conf(5)).
RESOLV_CONF = Path("/etc/resolv.conf")
#: The DNS port (RFC 1035 §4.2).
DNS_PORT = 53
#: At most this many distinct SRV targets get an address lookup.
MAX_TARGETS = 8
# OpenSSL's hashed CA directory entries: <8 hex>.<n> (c_rehash(1)).
_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInput:
    """The Expressway-E certificate and what it sends with it.

    Attributes:
        leaf: the end-entity certificate: the first non-CA certificate of ``--cert``.
        intermediates: every other certificate of ``--cert`` and ``--chain``.
        source: the file names, for the report.
    """

    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustInput:
    """The CAs the Edge trusts.

    Attributes:
        roots: private CAs (``--trust``), as if imported into the Edge's Trusted Root store.
        public_roots: public CAs (``--public-trust``, else the system store).
        source: one line saying where both came from.
    """

    roots: tuple[x509.Certificate, ...]
    public_roots: tuple[x509.Certificate, ...]
    source: str


def parse_dns_server(text: str) -> tuple[str, int]:
    """Parse ``--dns``: ``HOST``, ``HOST:PORT``, ``IPv6``, ``[IPv6]`` or ``[IPv6]:PORT``.

    The port defaults to 53.

    Raises:
        FedsimError: one line naming the value and the expected form.
    """
    value = text.strip()
    try:
        if _is_ip(value):  # a bare IPv4 or IPv6 address
            return value, DNS_PORT
        if value.startswith("[") and value.endswith("]") and _is_ip(value[1:-1]):
            return value[1:-1], DNS_PORT
        if ":" not in value:
            if normalize_domain(value) is None:
                raise ValueError(f"{value!r} is neither an IP address nor a host name")
            return value, DNS_PORT
        host, port = parse_hostport(value, default_host="")
        if not host:
            raise ValueError("the host is missing")
        if port == 0:
            raise ValueError("port 0 is not a DNS server's port")
    except ValueError as exc:
        raise FedsimError(
            f"--dns {text!r}: {exc} (write HOST or HOST:PORT, e.g. 127.0.0.1:5353 or [::1]:53)"
        ) from None
    return host, port


def system_dns_server(path: Path = RESOLV_CONF) -> tuple[str, int]:
    """The first ``nameserver`` of ``resolv.conf``, on port 53.

    Raises:
        FedsimError: the file cannot be read or names no usable server.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FedsimError(
            f"{path}: cannot read it ({exc.strerror}) (pass the DNS server: --dns HOST[:PORT])"
        ) from None
    for line in text.splitlines():
        words = re.split(r"[#;]", line, maxsplit=1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            address = words[1]
            if _is_ip(address.partition("%")[0]):
                return address, DNS_PORT
    raise FedsimError(f"{path}: no nameserver line (pass the DNS server: --dns HOST[:PORT])")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _read_pem(path: Path, *, option: str) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError("no such file", path=path, fix=f"check the {option} path") from None
    except OSError as exc:
        raise PkiError(
            f"cannot read it ({exc.strerror})", path=path, fix=f"pass a PEM file to {option}"
        ) from None
    return load_pem_certificates(data, source=str(path))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def read_certificate(cert: Path, chain: Sequence[Path] = ()) -> CertificateInput:
    """Read ``--cert`` (the leaf, possibly followed by its chain) and ``--chain`` files.

    The leaf is the first certificate that is not a CA (an export may put the
    chain first); every other certificate counts as sent by the Expressway-E.

    Raises:
        PkiError: a file is missing, unreadable or holds no PEM certificate.
    """
    certs = _read_pem(cert, option="--cert")
    extra = [c for path in chain for c in _read_pem(path, option="--chain")]
    leaf = next((c for c in certs if not _is_ca(c)), certs[0])
    others = [c for c in certs if c is not leaf] + extra
    source = ", ".join(str(p) for p in (cert, *chain))
    return CertificateInput(leaf=leaf, intermediates=tuple(others), source=source)


def read_trust(
    trust: Sequence[Path],
    public: Sequence[Path],
    *,
    system_cafile: str | None,
    system_capath: str | None,
) -> TrustInput:
    """Read the CAs the Edge trusts.

    ``public`` (``--public-trust``) replaces the system store as "the public
    CAs" (a lab's stand-in for a public root); without it the system store is
    read: ``system_cafile`` (a bundle) and the hashed entries of ``system_capath``.

    Raises:
        PkiError: a ``--trust`` or ``--public-trust`` file is missing or not PEM.
    """
    roots = tuple(c for path in trust for c in _read_pem(path, option="--trust"))
    if public:
        public_roots = tuple(c for path in public for c in _read_pem(path, option="--public-trust"))
        public_text = (
            f"{len(public_roots)} public from --public-trust {', '.join(map(str, public))}"
        )
    else:
        public_roots, public_text = _system_store(system_cafile, system_capath)
    source = public_text
    if trust:
        source += f"; {len(roots)} private from --trust {', '.join(map(str, trust))}"
    return TrustInput(roots=roots, public_roots=public_roots, source=source)


def _system_store(
    cafile: str | None, capath: str | None
) -> tuple[tuple[x509.Certificate, ...], str]:
    """The system's public CAs; an unreadable store counts as empty (the rules then say so)."""
    found: dict[bytes, x509.Certificate] = {}
    used: list[str] = []
    if cafile and os.path.isfile(cafile):
        _add_bundle(Path(cafile), found)
        if found:
            used.append(cafile)
    if not found and capath and os.path.isdir(capath):
        for entry in sorted(os.listdir(capath)):
            if _HASHED.fullmatch(entry):
                _add_bundle(Path(capath) / entry, found)
        if found:
            used.append(capath)
    if not found:
        return (), "none: no system CA store found (pass --trust or --public-trust)"
    return tuple(found.values()), f"{len(found)} public from the system store {', '.join(used)}"


def _add_bundle(path: Path, found: dict[bytes, x509.Certificate]) -> None:
    """Add every certificate of a system PEM bundle, skipping the ones that do not parse.

    One odd certificate in the distribution's bundle must not drop the whole
    store, and its deprecation warnings are the distribution's business.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return
    for block in _PEM_BLOCK.findall(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            try:
                cert = x509.load_pem_x509_certificate(block)
                key = cert.fingerprint(hashes.SHA256())
            except ValueError:
                continue
        found.setdefault(key, cert)


async def lookup_dns(
    domain: str,
    server: tuple[str, int],
    *,
    query_timeout: float,
    attempts: int = 2,
    rng: random.Random | None = None,
) -> tuple[SrvLookup, tuple[AddressLookup, ...]]:
    """Resolve the federation SRV of ``domain`` and the addresses of its targets.

    Args:
        domain: the partner's SIP domain.
        server: the DNS server to ask.
        query_timeout: seconds per attempt; a lookup takes at most
            ``query_timeout * attempts``.
        attempts: tries per query before "timeout".
        rng: the RFC 2782 weighted-order random source.

    Returns:
        The SRV lookup (targets in RFC 2782 order) and one address lookup per
        distinct target (at most :data:`MAX_TARGETS`), in SRV order.

    Raises:
        FedsimError: the server returned an SRV target that is not a host name.
    """
    resolver = Resolver(server, timeout=query_timeout, attempts=attempts, rng=rng, cache=False)
    name = srv_name(domain)
    answer = await resolver.srv(name)
    try:
        targets = tuple(
            SrvTarget(target=t.target, port=t.port, priority=t.priority, weight=t.weight)
            for t in answer.targets
        )
        srv = SrvLookup(name=name, outcome=answer.outcome, targets=targets)
    except ValueError as exc:
        raise FedsimError(f"{server[0]}:{server[1]} answered {name} with {exc}") from None
    hosts = list(dict.fromkeys(t.host for t in targets))[:MAX_TARGETS]
    addresses = []
    for host in hosts:
        found = await resolver.addresses(host)
        addresses.append(AddressLookup(name=host, outcome=found.outcome, addresses=found.addresses))
    return srv, tuple(addresses)


async def fetch_crls(
    certs: Sequence[x509.Certificate],
    server: tuple[str, int],
    *,
    timeout: float,  # noqa: ASYNC109 (the bound of each fetch, as the Edge's)
) -> dict[str, bytes | None]:
    """Fetch every CRL distribution point the certificates name, as the Edge would.

    Host names are resolved with ``server`` (the DNS the check uses); a URL that
    cannot be fetched maps to None.
    """
    resolver = Resolver(server, timeout=timeout, attempts=2, cache=False)
    urls = dict.fromkeys(url for cert in certs for url in distribution_points(cert))
    return {url: await fetch(url, resolver, timeout=timeout * 2) for url in urls}
