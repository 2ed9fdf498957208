"""``fedsim certs``: issue lab certificates, clone a customer's, show what a PEM says.

Everything is written through :func:`simulator.pki.issue_pki` into one
directory, whose ``fedsim-pki.json`` index remembers what was issued there, so
a CA issued by one command is reused by the next (``--issuer NAME``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from simulator.errors import FedsimError
from simulator.pki.errors import PkiError
from simulator.pki.facts import (
    CertificateFacts,
    facts_from_certificate,
    load_pem_certificates,
    verify_chain,
)
from simulator.pki.lab import IssuedCert, issue_pki, read_lab_specs
from simulator.pki.spec import EKU_NAMES, CertSpec

#: The private root created when ``--issuer`` is left out.
DEFAULT_ROOT = "lab-root"
#: Where the lab PKI lives by default (DESIGN.md: ``certs/``, not committed).
DEFAULT_OUT = Path("certs")

# RFC 1035 §2.3.1 labels (letters, digits, hyphens; we also let "_" and a
# leading "*." through so a customer's odd names can be reproduced as they are).
_DNS_NAME = re.compile(
    r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)

EPILOG = """\
examples:
  fedsim certs issue public-root --ca --public --out certs
  fedsim certs issue vcse.steven.lab --issuer public-root --out certs
  fedsim certs issue cn-only.steven.lab --no-san --eku serverAuth --out certs
  fedsim certs clone customer-expe.pem --out certs
  fedsim certs show certs/vcse.steven.lab.chain.pem --trust certs/public-root.crt
"""


def register(subparsers: Any) -> None:
    """Add ``fedsim certs`` and its actions to the top-level subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "certs",
        help="issue lab certificates, clone a customer's certificate, show a PEM",
        description=(
            "Lab PKI: issue CAs and leaves with chosen names, EKU and validity; reproduce "
            "a customer's certificate on a lab key; show what a certificate says."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=lambda _args: _usage(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    _register_issue(actions)
    _register_clone(actions)
    _register_show(actions)
    _register_init(actions)


# --- fedsim certs init -----------------------------------------------------------


def _register_init(actions: Any) -> None:
    p: argparse.ArgumentParser = actions.add_parser(
        "init",
        help="write a lab's whole PKI (default: the built-in lab of the Cisco note)",
        description=(
            "Issue every [certs] entry of a lab file (default: the built-in seed lab: "
            "public-root, private-root, sip.skype.lab, vcse.steven.lab) into DIR."
        ),
    )
    p.add_argument("dir", metavar="DIR", type=Path, nargs="?", default=Path("certs"))
    p.add_argument("--lab", type=Path, help="lab file whose [certs] to issue")
    p.set_defaults(func=_run_init)


def _run_init(args: argparse.Namespace) -> int:
    from simulator.lab import builtin_lab, load_lab

    lab = load_lab(args.lab) if args.lab is not None else builtin_lab()
    issued = issue_pki(lab.certs, args.dir, now=dt.datetime.now(dt.UTC))
    for item in issued.values():
        kind = "CA  " if item.is_ca else "leaf"
        public = " (public)" if item.public and item.is_ca else ""
        print(f"{kind} {item.name:<24} {item.cert_path}{public}")
    roots = sorted({str(i.root_path) for i in issued.values()})
    print(f"trust anchors: {', '.join(roots)}")
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# --- fedsim certs issue ----------------------------------------------------------


def _register_issue(actions: Any) -> None:
    p: argparse.ArgumentParser = actions.add_parser(
        "issue",
        help="issue one CA or leaf certificate into a directory",
        description=(
            "Issue one certificate into DIR. Without --issuer a leaf is issued by the "
            f"private root '{DEFAULT_ROOT}' (created if missing) and a --ca is a root. "
            "Certificates already in DIR are reused when unchanged."
        ),
    )
    p.add_argument("name", metavar="NAME", help="lab name of the certificate (also the file stem)")
    _add_out(p)
    p.add_argument("--cn", help="subject CN (default: NAME; '' for no CN)")
    sans = p.add_mutually_exclusive_group()
    sans.add_argument(
        "--san",
        metavar="DNS",
        nargs="+",
        action="extend",
        help="DNS subjectAltNames (default: the CN)",
    )
    sans.add_argument(
        "--no-san",
        action="store_true",
        help="no SAN extension at all: the peer must match the CN",
    )
    p.add_argument(
        "--eku",
        default="serverAuth,clientAuth",
        help="comma-separated serverAuth,clientAuth, or 'none' (default: both)",
    )
    p.add_argument("--issuer", metavar="CA_NAME", help="a CA already issued into DIR")
    p.add_argument("--ca", action="store_true", help="make a certificate authority")
    p.add_argument(
        "--public", action="store_true", help="the root stands for a publicly trusted CA"
    )
    p.add_argument("--validity", choices=("valid", "expired", "not-yet-valid"), default="valid")
    p.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa")
    p.set_defaults(func=run_issue)


def run_issue(args: argparse.Namespace) -> int:
    """Issue one certificate as ``fedsim certs issue`` describes."""
    name: str = args.name
    if args.public and (not args.ca or args.issuer):
        raise FedsimError(
            f"certs issue {name}: --public only applies to a root (add --ca and leave out --issuer)"
        )
    cn: str | None = name if args.cn is None else (args.cn or None)
    san: tuple[str, ...] | None = None
    if args.no_san:
        san = ()
    elif args.san:
        san = tuple(_check_dns_name(n, "--san") for n in args.san)
    if cn is not None and not args.ca and san is None:
        _check_dns_name(cn, "--cn (used as the SAN)")
    spec = CertSpec(
        name=name,
        ca=args.ca,
        public=args.public,
        issuer=args.issuer,
        cn=cn,
        san=san,
        eku=_parse_eku(args.eku),
        validity=args.validity,
        key_type=args.key_type,
    )
    issued = _issue_into(spec, args.out)
    _print_issued(issued, args.out, spec.name)
    return 0


def _check_dns_name(value: str, option: str) -> str:
    if not _DNS_NAME.fullmatch(value) or len(value) > 253:
        raise FedsimError(
            f"{option} '{value}': not a DNS name (use letters, digits, '-' and dots; "
            "an IDN in its xn-- form)"
        )
    return value


def _parse_eku(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "none":
        return ()
    canonical = {e.lower(): e for e in EKU_NAMES}
    out: list[str] = []
    for part in text.split(","):
        key = part.strip().lower()
        if key not in canonical:
            raise FedsimError(
                f"--eku '{text}': unknown usage '{part.strip()}' "
                f"(use {','.join(EKU_NAMES)} or none)"
            )
        if canonical[key] not in out:
            out.append(canonical[key])
    return tuple(out)


def _issue_into(spec: CertSpec, out: Path) -> dict[str, IssuedCert]:
    """Issue ``spec`` into ``out`` beside (and reusing) what is already there."""
    known = read_lab_specs(out)
    if spec.issuer is not None:
        if spec.issuer == spec.name:
            raise FedsimError(
                f"certs issue {spec.name}: a certificate cannot be its own --issuer "
                "(leave --issuer out to make a root)"
            )
        issuer = known.get(spec.issuer)
        if issuer is None:
            cas = ", ".join(sorted(n for n, s in known.items() if s.ca)) or "none yet"
            raise PkiError(
                f"issuer '{spec.issuer}' has not been issued here (CAs here: {cas})",
                path=out,
                fix=f"issue it first: fedsim certs issue {spec.issuer} --ca --out {out}",
            )
        if not issuer.ca:
            raise PkiError(
                f"issuer '{spec.issuer}' is not a CA",
                path=out,
                fix="name a certificate issued with --ca",
            )
    elif not spec.ca:
        root = known.get(DEFAULT_ROOT)
        if root is not None and not root.ca:
            raise PkiError(
                f"'{DEFAULT_ROOT}' here is not a CA, so it cannot be the default issuer",
                path=out,
                fix="pass --issuer with a CA's name",
            )
        if root is None and spec.name != DEFAULT_ROOT:
            known[DEFAULT_ROOT] = CertSpec(name=DEFAULT_ROOT, ca=True)
        spec = _replace_issuer(spec, DEFAULT_ROOT)
    known[spec.name] = spec
    return issue_pki(list(known.values()), out, now=dt.datetime.now(dt.UTC))


def _replace_issuer(spec: CertSpec, issuer: str) -> CertSpec:
    return CertSpec(
        name=spec.name,
        ca=spec.ca,
        public=spec.public,
        issuer=issuer,
        cn=spec.cn,
        san=spec.san,
        eku=spec.eku,
        validity=spec.validity,
        not_before=spec.not_before,
        not_after=spec.not_after,
        key_type=spec.key_type,
    )


def _print_issued(issued: dict[str, IssuedCert], out: Path, name: str) -> None:
    item = issued[name]
    cert = load_pem_certificates(item.cert_path.read_bytes(), source=str(item.cert_path))[0]
    facts = facts_from_certificate(cert)
    kind = "CA" if item.is_ca else "certificate"
    print(f"{kind} '{name}' in {out}")
    print(f"  certificate  {item.cert_path}")
    print(f"  private key  {item.key_path}")
    print(f"  chain        {item.chain_path}   (send this: leaf + intermediates)")
    root = "public" if item.public else "private"
    print(f"  trust        {item.root_path}   ({root} root the peer must trust)")
    print(f"  {_summary(facts)}")


def _summary(facts: CertificateFacts) -> str:
    sans = ", ".join(facts.dns_sans) if facts.dns_sans else "none"
    eku = ", ".join(facts.eku) if facts.eku else "none"
    return (
        f"CN {facts.subject_cn or '(none)'}; DNS SANs {sans}; EKU {eku}; "
        f"valid {facts.not_before:%Y-%m-%d %H:%M} to {facts.not_after:%Y-%m-%d %H:%M} UTC"
    )


# --- fedsim certs clone ------------------------------------------------------------


def _register_clone(actions: Any) -> None:
    p: argparse.ArgumentParser = actions.add_parser(
        "clone",
        help="reproduce a customer's certificate (names, EKU, dates) on a lab key",
        description=(
            "Issue a lab certificate with the same subject CN, DNS SANs, EKU and validity "
            "window as CUSTOMER.pem, on a fresh key, signed by a lab CA: the customer's "
            "Expressway certificate without its private key."
        ),
    )
    p.add_argument("pem", metavar="CUSTOMER.pem", type=Path, help="the customer's certificate")
    _add_out(p)
    p.add_argument("--issuer", metavar="CA_NAME", help="a CA already issued into DIR")
    p.add_argument("--name", help="lab name for the clone (default: the certificate's CN)")
    p.set_defaults(func=run_clone)


def run_clone(args: argparse.Namespace) -> int:
    """Clone a customer's certificate as ``fedsim certs clone`` describes."""
    source: Path = args.pem
    cert = load_pem_certificates(_read_file(source), source=str(source))[0]
    facts = facts_from_certificate(cert)
    name: str = args.name or facts.display_name()
    if not facts.subject_cn and not facts.dns_sans:
        raise PkiError(
            "has neither a CN nor a DNS SAN: nothing to clone",
            path=source,
            fix="pass the Expressway's server certificate",
        )
    eku = tuple(e for e in facts.eku if e in EKU_NAMES)
    spec = CertSpec(
        name=name,
        issuer=args.issuer,
        cn=facts.subject_cn,
        san=facts.dns_sans if facts.dns_sans else (),
        eku=eku,
        not_before=facts.not_before,
        not_after=facts.not_after,
        key_type="rsa" if facts.key_type.startswith("RSA") else "ecdsa",
    )
    issued = _issue_into(spec, args.out)
    item = issued[name]
    print(f"cloned {source} as '{name}'")
    print("  copied:")
    print(f"    CN           {facts.subject_cn or '(none)'}")
    print(
        f"    DNS SANs     {', '.join(facts.dns_sans) or 'none (no SAN extension: the CN is used)'}"
    )
    print(f"    EKU          {', '.join(eku) or 'none'}")
    print(
        f"    validity     {facts.not_before:%Y-%m-%d %H:%M} to "
        f"{facts.not_after:%Y-%m-%d %H:%M} UTC"
    )
    print("  not copied:")
    fresh = "RSA 2048" if spec.key_type == "rsa" else "ECDSA P-256"
    print(f"    key          a fresh lab key ({fresh}; theirs: {facts.key_type})")
    root = "public" if item.public else "private"
    print(f"    issuer       '{facts.issuer}' -> lab CA chaining to {item.root_path} ({root})")
    other_eku = [e for e in facts.eku if e not in EKU_NAMES]
    if other_eku:
        print(f"    other EKUs   {', '.join(other_eku)}")
    non_dns = _non_dns_sans(cert)
    if non_dns:
        print(f"    other SANs   {', '.join(non_dns)}")
    if facts.is_ca:
        print("    CA flag      the clone is a leaf")
    print(f"  certificate  {item.cert_path}")
    print(f"  private key  {item.key_path}")
    print(f"  chain        {item.chain_path}")
    return 0


def _non_dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(g.value) for g in san if not isinstance(g, x509.DNSName)]


# --- fedsim certs show -------------------------------------------------------------


def _register_show(actions: Any) -> None:
    p: argparse.ArgumentParser = actions.add_parser(
        "show",
        help="say what a certificate PEM holds, and whether it chains to --trust",
        description=(
            "Print the facts of the first certificate in FILE (the others are taken as "
            "its intermediates) and, with --trust, whether the chain holds now. "
            "Exit status 1 when --trust is given and the chain is not trusted."
        ),
    )
    p.add_argument("pem", metavar="FILE.pem", type=Path, help="a certificate or chain PEM")
    p.add_argument(
        "--trust",
        metavar="CA.pem",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="trusted CA files to verify the chain against",
    )
    p.add_argument(
        "--usage",
        choices=("server", "client", "any"),
        default="any",
        help="EKU to require of the leaf (default: any)",
    )
    p.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    """Show a certificate as ``fedsim certs show`` describes."""
    source: Path = args.pem
    certs = load_pem_certificates(_read_file(source), source=str(source))
    roots = [
        c for path in args.trust for c in load_pem_certificates(_read_file(path), source=str(path))
    ]
    now = dt.datetime.now(dt.UTC)
    for line in describe(facts_from_certificate(certs[0]), now=now):
        print(line)
    for extra in certs[1:]:
        print(f"{'also in file':<13}{extra.subject.rfc4514_string()} (taken as an intermediate)")
    if not args.trust:
        return 0
    verdict = verify_chain(certs[0], certs[1:], roots, now=now, usage=args.usage)
    print(f"{'chain':<13}{verdict.status}: {verdict.detail}")
    return 0 if verdict.status == "trusted" else 1


def describe(facts: CertificateFacts, *, now: dt.datetime) -> list[str]:
    """Return the facts of one certificate as aligned lines of words."""
    if facts.dns_sans:
        sans = ", ".join(facts.dns_sans)
    elif facts.subject_cn:
        sans = "none (the CN is used)"
    else:
        sans = "none, and no CN: no peer name can match"
    if now > facts.not_after:
        state = "EXPIRED"
    elif now < facts.not_before:
        state = "NOT YET VALID"
    else:
        state = "valid now"
    if facts.self_signed:
        kind = "self-signed root CA" if facts.is_ca else "self-signed (not a CA)"
    else:
        kind = "intermediate CA" if facts.is_ca else "leaf, issued by a CA"
    rows: Sequence[tuple[str, str]] = (
        ("subject", facts.subject or "(empty)"),
        ("CN", facts.subject_cn or "(none)"),
        ("DNS SANs", sans),
        ("EKU", ", ".join(facts.eku) if facts.eku else "none (any usage)"),
        (
            "validity",
            f"{facts.not_before:%Y-%m-%d %H:%M} to {facts.not_after:%Y-%m-%d %H:%M} UTC: {state}",
        ),
        ("issuer", facts.issuer or "(empty)"),
        ("kind", kind),
        ("key", facts.key_type),
        ("serial", facts.serial_hex),
        ("SHA-256", facts.sha256),
        ("matched as", ", ".join(facts.names_for_matching()) or "(nothing)"),
    )
    return [f"{label:<13}{value}" for label, value in rows]


# --- shared ------------------------------------------------------------------------


def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory of the lab PKI (default: {DEFAULT_OUT})",
    )


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError("file not found", path=path, fix="check the path") from None
    except IsADirectoryError:
        raise PkiError("is a directory", path=path, fix="name a PEM file") from None
    except OSError as exc:
        raise PkiError(f"cannot read: {exc.strerror}", path=path, fix="check permissions") from exc
