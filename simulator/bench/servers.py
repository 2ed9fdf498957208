"""The three servers under test, and the stunnel that gives SIPp its mutual TLS.

All three present the same ECDSA P-256 lab certificate (``sip.edge.bench``),
require a client certificate from the same lab CA, and listen on a free port of
127.0.0.1:

* fedsim: ``python -m simulator serve bench.toml`` with its own log directory;
* Kamailio: the interop reference config (stateless 504 + ms-diagnostics, one
  TLS worker), paths and port rewritten;
* the ceiling: :mod:`simulator.bench.ceiling` (trio + ssl, fixed 504).

The outbound measurement adds the far.bench partner (the ceiling again, with the
``vcse.far.bench`` certificate) and, as Kamailio's side of it, a transaction-
stateful TLS proxy to that partner (``kamailio_proxy.cfg``).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from simulator.bench.procs import BenchError, Procs, free_port, listening, wait_until
from simulator.lab import load_lab
from simulator.pki import issue_pki

SERVER_NAME = "sip.edge.bench"
#: The outbound partner's name (its SRV, A record and certificate are in bench.toml).
PARTNER_NAME = "vcse.far.bench"
#: The SRV record of the partner in bench.toml, whose port the bench rewrites.
PARTNER_SRV = re.compile(
    r"^(_sipfederationtls\._tcp\.far\.bench\.\s.*\sSRV\s+\d+\s+\d+\s+)5061(\s)", re.M
)
#: Seconds a server may take to come up before the bench gives up.
START_TIMEOUT = 30.0
#: Kamailio's shared and private memory (MB), as in the interop README.
KAMAILIO_SHM_MB = 128
KAMAILIO_PKG_MB = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchPki:
    """The bench's certificate files (issued by :func:`issue_bench_pki`)."""

    certs_dir: Path
    server_cert: Path
    server_key: Path
    ca: Path
    client_cert: Path
    client_key: Path
    partner_cert: Path
    partner_key: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Running:
    """One server under test, up and listening.

    Attributes:
        name: "fedsim", "kamailio" or "ceiling".
        proc: its process (the root of the tree whose CPU and RSS are measured).
        port: its mutual-TLS port on 127.0.0.1.
        ready_s: seconds from start to ready (fedsim: to its "decisions (" banner line).
        events: fedsim's events.jsonl (None for the others).
        clients_port: fedsim's client-facing port (None for the others).
    """

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    ready_s: float
    events: Path | None = None
    clients_port: int | None = None


def bench_lab_path() -> Path:
    """The bench lab file shipped in this package."""
    return Path(str(resources.files("simulator.bench").joinpath("bench.toml")))


def issue_bench_pki(certs_dir: Path) -> BenchPki:
    """Issue the bench lab's PKI (ECDSA P-256) into ``certs_dir``; fedsim serve reuses it."""
    lab = load_lab(bench_lab_path())
    issued = issue_pki(lab.certs, certs_dir, now=dt.datetime.now(dt.UTC))
    server, client = issued[SERVER_NAME], issued["vcse.partner.bench"]
    partner = issued[PARTNER_NAME]
    return BenchPki(
        certs_dir=certs_dir,
        server_cert=server.cert_path,
        server_key=server.key_path,
        ca=server.root_path,
        client_cert=client.cert_path,
        client_key=client.key_path,
        partner_cert=partner.cert_path,
        partner_key=partner.key_path,
    )


def bench_lab_text(partner_port: int) -> str:
    """bench.toml with the far.bench partner's SRV pointing at ``partner_port``."""
    text = bench_lab_path().read_text(encoding="utf-8")
    text, count = PARTNER_SRV.subn(rf"\g<1>{partner_port}\g<2>", text)
    if count != 1:
        raise BenchError("bench.toml: expected one far.bench SRV record with port 5061")
    return text


def start_fedsim(
    procs: Procs, pki: BenchPki, work: Path, partner_port: int = 5061, *, traces: bool = False
) -> Running:
    """``fedsim serve`` on the bench lab, free ports, logs in ``work/fedsim-logs``.

    ``partner_port``: where the outbound partner (vcse.far.bench) listens. ``traces``:
    with ``--trace`` and ``--pcap`` (trace.log and bench.pcapng in the log directory).
    """
    log_dir = work / "fedsim-logs"
    out = work / "fedsim.out"
    lab = work / "bench.toml"
    lab.write_text(bench_lab_text(partner_port), encoding="utf-8")
    argv = [
        sys.executable,
        "-m",
        "simulator",
        "serve",
        str(lab),
        "--quiet",  # a load test reads edge.log and events.jsonl, not 2,000 lines/s
        "--log-dir",
        str(log_dir),
        "--certs-dir",
        str(pki.certs_dir),
        "--listen",
        "127.0.0.1:0",
        "--clients",
        "127.0.0.1:0",
        "--dns-listen",
        "127.0.0.1:0",
        *(["--trace", "--pcap", str(log_dir / "bench.pcapng")] if traces else []),
    ]
    start = time.monotonic()
    proc = procs.start("fedsim serve", argv, stdout=out)

    def banner_done() -> bool:
        return b"decisions (" in out.read_bytes()

    wait_until("fedsim serve", banner_done, timeout=START_TIMEOUT, proc=proc)
    ready = time.monotonic() - start
    banner = out.read_bytes()
    match = re.search(rb"federation\s+127\.0\.0\.1:(\d+)", banner)
    clients = re.search(rb"clients\s+127\.0\.0\.1:(\d+)", banner)
    if match is None or clients is None:
        raise BenchError(
            f"fedsim serve: no federation or clients address in its banner (see {out})"
        )
    return Running(
        name="fedsim",
        proc=proc,
        port=int(match.group(1)),
        ready_s=ready,
        events=log_dir / "events.jsonl",
        clients_port=int(clients.group(1)),
    )


def kamailio_modules() -> Path:
    """Kamailio's module directory on this machine (the reference config names x86_64's)."""
    candidates = [
        *sorted(Path("/usr/lib").glob("*/kamailio/modules")),
        Path("/usr/lib/kamailio/modules"),
        Path("/usr/local/lib64/kamailio/modules"),
    ]
    for candidate in candidates:
        if (candidate / "tls.so").exists():
            return candidate
    raise BenchError(
        "Kamailio's tls.so is not installed: apt-get install -y kamailio kamailio-tls-modules"
    )


def kamailio_config(pki: BenchPki, port: int, modules: Path) -> str:
    """The reference config with this run's port, module path and certificate files."""
    text = resources.files("simulator.bench").joinpath("kamailio.cfg").read_text(encoding="utf-8")
    replacements = {
        r"^listen=.*$": f"listen=tls:127.0.0.1:{port}",
        r"^mpath=.*$": f'mpath="{modules}/"',
        r'^modparam\("tls", "certificate", .*$': (
            f'modparam("tls", "certificate", "{pki.server_cert}")'
        ),
        r'^modparam\("tls", "private_key", .*$': (
            f'modparam("tls", "private_key", "{pki.server_key}")'
        ),
        r'^modparam\("tls", "ca_list", .*$': f'modparam("tls", "ca_list", "{pki.ca}")',
    }
    return _rewrite(text, replacements, "kamailio.cfg")


def _rewrite(text: str, replacements: dict[str, str], name: str) -> str:
    """Replace the one line matching each pattern (multiline) with its literal line."""
    for pattern, line in replacements.items():
        # A literal replacement: the paths must not be read as regex templates.
        text, count = re.subn(pattern, line.replace("\\", "\\\\"), text, flags=re.M)
        if count != 1:
            raise BenchError(f"{name}: expected one line matching {pattern!r}")
    return text


def start_kamailio(procs: Procs, pki: BenchPki, work: Path) -> Running:
    """Kamailio with the reference config (one TLS worker) on a free port."""
    port = free_port()
    return _start_kamailio(
        procs, work, "kamailio", kamailio_config(pki, port, kamailio_modules()), port
    )


def tls_proxy_profile(pki: BenchPki) -> str:
    """Kamailio's tls.cfg for the proxy: the server certificate on both sides, mutual TLS."""
    profile = (
        "method = TLSv1.2+\n"
        "verify_certificate = yes\n"
        "require_certificate = yes\n"
        f"certificate = {pki.server_cert}\n"
        f"private_key = {pki.server_key}\n"
        f"ca_list = {pki.ca}\n"
    )
    return f"[server:default]\n{profile}\n[client:default]\n{profile}"


def kamailio_proxy_config(modules: Path, port: int, tls_cfg: Path, partner_port: int) -> str:
    """The proxy config with this run's port, module path, TLS profile and partner port."""
    text = (
        resources.files("simulator.bench")
        .joinpath("kamailio_proxy.cfg")
        .read_text(encoding="utf-8")
    )
    replacements = {
        r"^listen=.*$": f"listen=tls:127.0.0.1:{port}",
        r"^mpath=.*$": f'mpath="{modules}/"',
        r'^modparam\("tls", "config", .*$': f'modparam("tls", "config", "{tls_cfg}")',
        r"^\t\$du = .*$": f'\t$du = "sip:127.0.0.1:{partner_port};transport=tls";',
    }
    return _rewrite(text, replacements, "kamailio_proxy.cfg")


def start_kamailio_proxy(procs: Procs, pki: BenchPki, work: Path, partner_port: int) -> Running:
    """Kamailio as a mutual-TLS proxy to the far.bench partner, on a free port."""
    port = free_port()
    tls_cfg = work / "kamailio-tls-proxy.cfg"
    tls_cfg.write_text(tls_proxy_profile(pki), encoding="utf-8")
    text = kamailio_proxy_config(kamailio_modules(), port, tls_cfg, partner_port)
    return _start_kamailio(procs, work, "kamailio-proxy", text, port)


def _start_kamailio(procs: Procs, work: Path, name: str, config: str, port: int) -> Running:
    run_dir = work / f"{name}-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = work / f"{name}.cfg"
    cfg.write_text(config, encoding="utf-8")
    argv = [
        "kamailio",
        "-f",
        str(cfg),
        "-DD",
        "-E",
        "-m",
        str(KAMAILIO_SHM_MB),
        "-M",
        str(KAMAILIO_PKG_MB),
        "-P",
        str(work / f"{name}.pid"),
        "-Y",
        str(run_dir),
    ]
    start = time.monotonic()
    proc = procs.start(name, argv, stdout=work / f"{name}.log")
    wait_until(name, lambda: listening(port), timeout=START_TIMEOUT, proc=proc)
    # Its TCP/TLS worker forks after the listener is bound: let the tree settle.
    time.sleep(0.5)
    return Running(name=name, proc=proc, port=port, ready_s=time.monotonic() - start)


def start_ceiling(procs: Procs, pki: BenchPki, work: Path) -> Running:
    """The trio mutual-TLS fixed-504 responder on a free port."""
    return _start_responder(procs, pki, work, "ceiling", pki.server_cert, pki.server_key)


def start_partner(procs: Procs, pki: BenchPki, work: Path) -> Running:
    """The outbound partner vcse.far.bench: the same responder with the partner's certificate."""
    return _start_responder(procs, pki, work, "partner", pki.partner_cert, pki.partner_key)


def _start_responder(
    procs: Procs, pki: BenchPki, work: Path, name: str, cert: Path, key: Path
) -> Running:
    out = work / f"{name}.out"
    argv = [
        sys.executable,
        "-m",
        "simulator.bench.ceiling",
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--ca",
        str(pki.ca),
    ]
    start = time.monotonic()
    proc = procs.start(name, argv, stdout=out)
    wait_until(name, lambda: b"ready " in out.read_bytes(), timeout=START_TIMEOUT, proc=proc)
    match = re.search(rb"ready 127\.0\.0\.1:(\d+)", out.read_bytes())
    if match is None:
        raise BenchError(f"{name}: no address in its output (see {out})")
    return Running(name=name, proc=proc, port=int(match.group(1)), ready_s=time.monotonic() - start)


def start_stunnel(procs: Procs, pki: BenchPki, server_port: int, work: Path, name: str) -> int:
    """stunnel4 in client mode: plain TCP on a free port -> mutual TLS to ``server_port``.

    It presents the partner certificate, verifies the server's chain and name,
    and resumes TLS sessions where the server offers them (stunnel's default).
    Returns the plain-TCP port for SIPp.
    """
    port = free_port()
    conf = work / f"stunnel-{name}.conf"
    conf.write_text(
        "foreground = yes\n"
        "pid =\n"
        "debug = warning\n"
        f"output = {work / f'stunnel-{name}.log'}\n"
        "[sip-tls]\n"
        "client = yes\n"
        f"accept = 127.0.0.1:{port}\n"
        f"connect = 127.0.0.1:{server_port}\n"
        f"cert = {pki.client_cert}\n"
        f"key = {pki.client_key}\n"
        f"CAfile = {pki.ca}\n"
        "verifyChain = yes\n"
        f"checkHost = {SERVER_NAME}\n"
        "sslVersionMin = TLSv1.2\n",
        encoding="utf-8",
    )
    proc = procs.start("stunnel", ["stunnel", str(conf)], stdout=work / f"stunnel-{name}.out")
    wait_until("stunnel", lambda: listening(port), timeout=START_TIMEOUT, proc=proc)
    return port
