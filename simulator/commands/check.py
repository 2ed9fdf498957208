"""``fedsim check``: preflight a real configuration against Microsoft's federation rules.

Reads the Expressway-E certificate, asks a DNS server for the partner
domain's ``_sipfederationtls._tcp`` SRV and its targets' addresses, then
prints each rule PASS/FAIL/WARN/SKIP with its evidence, the answer Skype's
Edge would give in each direction and what to change. Exit status 0 when every
direction asked would federate, 1 when not, 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import random
import ssl
import sys
import tempfile
from pathlib import Path

import trio

from simulator.check.gather import (
    fetch_crls,
    lookup_dns,
    parse_dns_server,
    read_certificate,
    read_trust,
    system_dns_server,
)
from simulator.check.lab import predict_calls
from simulator.check.labfacts import gather_lab_facts, lab_crl_base
from simulator.check.render import render_json, render_text
from simulator.check.report import DIRECTIONS, CheckFacts, CheckOptions, Direction, build_report
from simulator.errors import FedsimError
from simulator.lab import load_lab, with_profile
from simulator.lab.load import normalize_domain
from simulator.lab.settings import edge_settings
from simulator.pki import issue_pki
from simulator.policy import (
    DEFAULT_PROFILE,
    PROFILE_NAMES,
    RULE_NAMES,
    profile,
    rule_assignments,
    with_rules,
)

EXAMPLES = """\
examples:
  fedsim check --domain acano.steven.lab --cert expe.pem
  fedsim check --domain acano.steven.lab --cert expe.pem --chain issuing-ca.pem \\
               --trust private-root.pem --dns 127.0.0.1:5353
  fedsim check --domain cms.steven.lab --cert expe.pem --hosted --direction outbound --json
  fedsim check --lab my-repro.toml                    # each call: what fedsim serve will answer
  fedsim check --lab my-repro.toml --profile sfb2019 --rule client_eku=ignore

trust: --trust CAs are added to the public CAs, as if imported into the Edge's Trusted
Root store; the public CAs are this machine's CA store (Python's ssl default verify paths:
SSL_CERT_FILE / SSL_CERT_DIR when set) unless --public-trust names them (a lab's "public"
root). --hosted (Office 365) accepts only a certificate chaining to a public CA.
DNS: without --dns, the first nameserver of /etc/resolv.conf, port 53.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedsim check`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "check",
        help="preflight a real configuration: DNS and certificate against Microsoft's rules",
        description=(
            "Check a partner domain's DNS and its Expressway-E certificate against the rules "
            "of a Skype for Business / Lync Access Edge; print each rule with its evidence, "
            "the exact answer Skype would give and what to change. Exit 0 when the "
            "configuration would federate, 1 when not, 2 on bad input."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--lab",
        type=Path,
        metavar="LAB.toml",
        help="predict every call of a lab with its profile and rules (what fedsim serve answers)",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        help="the emulated product (default: the lab's, else sfb2015)",
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set one [edge.rules] rule (repeatable): {', '.join(RULE_NAMES)}",
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", help="seed the RFC 2782 SRV order (reproducible runs)"
    )
    parser.add_argument(
        "--domain", metavar="D", help="the partner's (Expressway side's) SIP domain"
    )
    parser.add_argument(
        "--cert",
        type=Path,
        metavar="CERT.pem",
        help="the Expressway-E certificate (PEM; may be followed by its chain)",
    )
    parser.add_argument(
        "--chain",
        type=Path,
        action="append",
        default=[],
        metavar="CHAIN.pem",
        help="intermediate CA certificates the Expressway-E sends (repeatable)",
    )
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="a private CA the Edge trusts (repeatable)",
    )
    parser.add_argument(
        "--public-trust",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="CAs that count as public, instead of this machine's CA store (repeatable)",
    )
    parser.add_argument(
        "--dns",
        metavar="HOST[:PORT]",
        help="the DNS server to ask (default: first nameserver of /etc/resolv.conf)",
    )
    parser.add_argument(
        "--hosted", action="store_true", help="Office 365 rules: only a public CA is accepted"
    )
    parser.add_argument(
        "--direction",
        choices=("inbound", "outbound", "both"),
        default="both",
        help="inbound: the Expressway-E calls Skype; outbound: Skype calls D (default: both)",
    )
    parser.add_argument(
        "--skype-domain",
        default="skype.lab",
        metavar="DOMAIN",
        help="the Skype users' SIP domain (default: skype.lab)",
    )
    parser.add_argument(
        "--edge-fqdn",
        metavar="FQDN",
        help="the Access Edge external FQDN, source= of ms-diagnostics (default: sip.DOMAIN)",
    )
    parser.add_argument(
        "--from-user", default="user", help="user part of the partner's URI (default: user)"
    )
    parser.add_argument(
        "--to-user", default="user", help="user part of the Skype user's URI (default: user)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="DNS timeout per attempt, 2 attempts per query (default: 2)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _domain(text: str, option: str) -> str:
    name = normalize_domain(text.strip())
    if name is None or "." not in name:
        raise FedsimError(f"{option} {text!r}: not a DNS domain name (e.g. acano.steven.lab)")
    return name


def _options(args: argparse.Namespace) -> CheckOptions:
    skype_domain = _domain(args.skype_domain, "--skype-domain")
    edge_fqdn = _domain(args.edge_fqdn, "--edge-fqdn") if args.edge_fqdn else f"sip.{skype_domain}"
    directions: tuple[Direction, ...] = (
        DIRECTIONS if args.direction == "both" else (args.direction,)
    )
    product = profile(args.profile or DEFAULT_PROFILE)
    try:
        rules = with_rules(product.rules, _rules(args))
        return CheckOptions(
            skype_domain=skype_domain,
            edge_fqdn=edge_fqdn,
            from_user=args.from_user,
            to_user=args.to_user,
            hosted=args.hosted or product.public_ca_only,
            directions=directions,
            rules=rules,
            profile=product.name,
        )
    except ValueError as exc:
        raise FedsimError(f"{exc} (see 'fedsim check --help')") from None


def _rules(args: argparse.Namespace) -> dict[str, object]:
    """``--rule KEY=VALUE`` options as rule values (unknown names get a "did you mean")."""
    try:
        return rule_assignments(args.rule)
    except ValueError as exc:
        raise FedsimError(str(exc)) from None


def run_lab(args: argparse.Namespace) -> int:
    """``--lab``: predict each call; 0 when every prediction meets the lab's expectations."""
    lab = load_lab(args.lab)
    rules = _rules(args)
    if args.profile is not None or rules:
        try:
            edge = with_profile(lab.edge, args.profile or lab.edge.profile, rules)
        except ValueError as exc:
            raise FedsimError(str(exc)) from None
        if args.profile is None:  # only rules: keep the lab's own TLS/Server/trust
            edge = dataclasses.replace(lab.edge, rules=edge.rules)
        lab = dataclasses.replace(lab, edge=edge)
    now = dt.datetime.now(dt.UTC)
    seed = args.seed if args.seed is not None else lab.edge.seed
    rng = random.Random(seed) if seed is not None else None
    settings = edge_settings(lab)
    base = lab_crl_base(lab)
    with tempfile.TemporaryDirectory(prefix="fedsim-check-") as work:
        issued = issue_pki(lab.certs, Path(work), now=now, crl_url=base)
        facts = trio.run(
            functools.partial(gather_lab_facts, lab, issued, now=now, rng=rng, crl_base=base)
        )
    product = profile(lab.edge.profile)
    out = [
        f"lab {lab.name}: {product.title} (profile {lab.edge.profile}), TLS {lab.edge.tls}, "
        f"Server: {lab.edge.server_header}",
        "rules: " + ", ".join(f"{k}={getattr(settings.rules, k)}" for k in RULE_NAMES),
    ]
    failed = 0
    predictions = predict_calls(lab, settings, facts)
    for number, (call, p) in enumerate(zip(lab.calls, predictions, strict=True), start=1):
        status = "refused at the TLS handshake" if p.status is None else str(p.status)
        diag = "" if p.ms_diagnostics is None else f" ms-diagnostics {p.ms_diagnostics}"
        expect = call.expect
        ok = (expect.status is None or expect.status == p.status) and (
            expect.rule is None or expect.rule == p.rule
        )
        failed += not ok
        out.append(
            f"#{number} {call.direction} {call.method} {call.from_} -> {call.to}: "
            f"{status} ({p.rule}{diag}){'' if ok else '  <- differs from the expectation'}"
        )
        out.append(f"    {p.why}")
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Gather, judge, print; 0 = would federate, 1 = would not."""
    if args.lab is not None:
        return run_lab(args)
    if args.domain is None or args.cert is None:
        raise FedsimError("fedsim check needs --domain and --cert, or --lab LAB.toml")
    domain = _domain(args.domain, "--domain")
    options = _options(args)
    if not 0 < args.timeout <= 60:
        raise FedsimError(f"--timeout {args.timeout}: must be more than 0 and at most 60 seconds")
    if args.dns is not None:
        server, dns_source = parse_dns_server(args.dns), "--dns"
    else:
        server, dns_source = system_dns_server(), "the system resolver, /etc/resolv.conf"
    cert = read_certificate(args.cert, args.chain)
    paths = ssl.get_default_verify_paths()
    trust = read_trust(
        args.trust, args.public_trust, system_cafile=paths.cafile, system_capath=paths.capath
    )
    srv, addresses = trio.run(
        functools.partial(lookup_dns, domain, server, query_timeout=args.timeout)
    )
    crls: dict[str, bytes | None] = {}
    if options.rules.revocation != "off":
        crls = trio.run(
            functools.partial(
                fetch_crls, (cert.leaf, *cert.intermediates), server, timeout=args.timeout
            )
        )
    host, port = server
    facts = CheckFacts(
        domain=domain,
        dns_server=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        dns_source=dns_source,
        srv=srv,
        addresses=addresses,
        leaf=cert.leaf,
        intermediates=cert.intermediates,
        cert_source=cert.source,
        roots=trust.roots,
        public_roots=trust.public_roots,
        trust_source=trust.source,
        crls=crls,
    )
    report = build_report(facts, options, now=dt.datetime.now(dt.UTC))
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return 0 if report.federates else 1
