"""``fedsim serve``: run a lab's DNS server and emulated Edge until Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shlex
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from importlib import resources
from pathlib import Path

import trio

from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.observers import Observer, Watch
from simulator.errors import FedsimError
from simulator.lab import Lab, builtin_lab, load_lab, parse_host_port, with_overrides
from simulator.net import stderr_reporter
from simulator.pki import use_keylog
from simulator.policy import RULE_NAMES, rule_assignments, with_rules
from simulator.run.runner import LabSession
from simulator.ui.exercise import find_exercise
from simulator.ui.live import LiveCalls
from simulator.ui.serve import LiveUi, serve_ui, start_exercise

EXAMPLES = """\
examples:
  fedsim serve                               the built-in lab of the Cisco note
  fedsim serve lab.toml --log-dir /tmp/logs  your lab, logs elsewhere
  fedsim serve --listen 0.0.0.0:5061 --dns-listen 0.0.0.0:53
                                             let a real Expressway-E use fedsim as its
                                             federation partner and DNS server
  fedsim serve --rule discovered_rate=1000   a load test from a discovered partner
                                             (the Edge's default is 20 messages/s)
  fedsim serve --trace --pcap logs/lab.pcapng --keylog logs/keys.log
                                             the SIPStack trace (logs/trace.log), a capture
                                             of every SIP message, the TLS key log
  fedsim serve --ui 127.0.0.1:8080           the live page on a fixed port (--ui off: none)
  fedsim serve --exercise 01                 a broken lab of scenarios/exercises/ to fix
"""

#: Where ``--exercise NAME`` looks for NAME (relative to the working directory).
EXERCISES = Path("scenarios") / "exercises"
#: The live page's address when ``--ui`` is not given: loopback, a free port.
UI_DEFAULT = "127.0.0.1:0"

#: The SIPp scenario fedsim writes next to its logs for the printed commands.
SIPP_SCENARIO = "sipp_uac_invite.xml"
#: A presence subscription (SUBSCRIBE, the PIDF NOTIFYs, un-SUBSCRIBE), written with it.
SIPP_PRESENCE = "sipp_uac_subscribe.xml"
#: The printed stunnel's plain-TCP port for SIPp (``--stunnel-port`` changes it).
STUNNEL_PORT = 15061
#: The printed stunnel runs in the background; its PID file, next to the logs, stops it.
STUNNEL_PID = "stunnel-sipp.pid"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the emulated Edge and the lab DNS server",
        description="Run a lab: its DNS server and the emulated Skype for Business Edge.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("lab", nargs="?", type=Path, help="lab file (default: the built-in lab)")
    parser.add_argument("--log-dir", type=Path, default=Path("logs"), help="default: ./logs")
    parser.add_argument("--certs-dir", type=Path, default=Path("certs"), help="default: ./certs")
    parser.add_argument("--listen", help="federation listener HOST:PORT (overrides [edge] listen)")
    parser.add_argument("--clients", help="client listener HOST:PORT (overrides [edge] clients)")
    parser.add_argument("--dns-listen", help="DNS server HOST:PORT (overrides [dns] listen)")
    parser.add_argument(
        "--crl-listen",
        help="CRL server HOST:PORT (overrides [pki] crl_listen; default: a free port)",
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set one [edge.rules] rule (repeatable): {', '.join(RULE_NAMES)}",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no console line per decision (load tests); edge.log and events.jsonl are unchanged",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the traceback of an internal error (it is always recorded in events.jsonl)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed every random choice (tags, SRV order); overrides [edge] seed",
    )
    parser.add_argument(
        "--stunnel-port",
        type=_port,
        default=STUNNEL_PORT,
        metavar="PORT",
        help=f"the port of the printed stunnel and SIPp lines (default {STUNNEL_PORT})",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="write the Edge's SIPStack trace (TF_PROTOCOL, TF_DIAG) to trace.log in the log dir",
    )
    parser.add_argument(
        "--pcap",
        type=Path,
        metavar="FILE",
        help="write every SIP message the Edge receives or sends, in clear, to FILE (pcapng)",
    )
    parser.add_argument(
        "--keylog",
        type=Path,
        metavar="FILE",
        help="append the TLS secrets of every session to FILE (NSS key log, created 0600)",
    )
    parser.add_argument(
        "--ui",
        default=UI_DEFAULT,
        metavar="HOST:PORT",
        help="the live page's address (default 127.0.0.1 and a free port; 'off': no page)",
    )
    parser.add_argument(
        "--exercise",
        metavar="NAME",
        help=f"open a training exercise: a broken lab of {EXERCISES}/ (a name, its number, "
        "or a .toml file) to fix in the page",
    )
    parser.set_defaults(func=run)


def _port(text: str) -> int:
    """A TCP port number from the command line (argparse reports the error in one line)."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def load(args: argparse.Namespace) -> Lab:
    """The lab named on the command line (or the built-in one) with CLI overrides applied."""
    lab = load_lab(args.lab) if args.lab is not None else builtin_lab()
    lab = with_overrides(
        lab,
        listen=parse_host_port(args.listen, what="--listen") if args.listen else None,
        clients=parse_host_port(args.clients, what="--clients") if args.clients else None,
        dns_listen=parse_host_port(args.dns_listen, what="--dns-listen")
        if args.dns_listen
        else None,
    )
    crl = getattr(args, "crl_listen", None)
    if crl:
        pki = dataclasses.replace(lab.pki, crl_listen=parse_host_port(crl, what="--crl-listen"))
        lab = dataclasses.replace(lab, pki=pki)
    try:
        changes = rule_assignments(getattr(args, "rule", []))
    except ValueError as exc:
        raise FedsimError(str(exc)) from None
    if changes:
        edge = dataclasses.replace(lab.edge, rules=with_rules(lab.edge.rules, changes))
        lab = dataclasses.replace(lab, edge=edge)
    return lab


def _ui_address(text: str) -> tuple[str, int] | None:
    """``--ui``: None for ``off``, else HOST:PORT (port 0: a free one)."""
    if text.strip().lower() == "off":
        return None
    return parse_host_port(text, what="--ui")


def run(args: argparse.Namespace) -> int:
    ui_at = _ui_address(args.ui)
    if args.exercise is not None:
        if args.lab is not None:
            raise FedsimError(
                f"give a lab file or --exercise, not both (the exercise is a lab: drop {args.lab})"
            )
        if ui_at is None:
            raise FedsimError("--exercise needs the page: drop --ui off")
        if args.trace or args.pcap is not None:
            raise FedsimError(
                "--exercise restarts its lab at every fix: --trace and --pcap are for "
                "fedsim serve LAB.toml (serve the fixed exercise file with them)"
            )
        return _run_exercise(args, ui_at)
    lab = load(args)
    if args.seed is not None:
        lab = dataclasses.replace(lab, edge=dataclasses.replace(lab.edge, seed=args.seed))

    def console(line: str) -> None:
        print(line, flush=True)

    feed = LiveCalls() if ui_at is not None else None

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                addresses = await nursery.start(
                    partial(
                        _serve,
                        observe=feed.observe if feed is not None else None,
                        watch=feed.wire if feed is not None else None,
                        trace=args.trace,
                        pcap=args.pcap,
                    ),
                    lab,
                    args.log_dir,
                    args.certs_dir,
                    console,
                    args.quiet,
                    args.debug,
                )
                url = None
                if feed is not None and ui_at is not None:
                    ui = LiveUi(lab, feed)
                    ui.running(LabSession.of_served(lab, addresses, ident=lab.name))
                    url = await _start_ui(nursery, ui, ui_at, args.debug)
                text = banner(
                    lab,
                    addresses,
                    fedsim=fedsim_command(),
                    stunnel_port=args.stunnel_port,
                    keylog=args.keylog,
                    ui=url,
                )
                print(text, flush=True)
                await _until_signal(signals, nursery)

    _trio_run(main, keylog=args.keylog, pcap=args.pcap)
    return 0


def _run_exercise(args: argparse.Namespace, ui_at: tuple[str, int]) -> int:
    """``fedsim serve --exercise NAME``: the exercise's lab, reloaded as it is fixed."""
    state = start_exercise(find_exercise(args.exercise, EXERCISES), args.log_dir)
    feed = LiveCalls()
    ui = LiveUi(state.lab, feed, exercise=state)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                session: LabSession = await nursery.start(
                    ui.run_exercise, args.log_dir / "exercise" / "lab"
                )
                url = await _start_ui(nursery, ui, ui_at, args.debug)
                text = banner(
                    session.lab,
                    session.addresses,
                    fedsim=fedsim_command(),
                    stunnel_port=args.stunnel_port,
                    keylog=args.keylog,
                    ui=url,
                )
                print(text, flush=True)
                assert state.lab.exercise is not None
                print(f"exercise {state.name}: {state.lab.exercise.task}", flush=True)
                print(
                    f"  fix it in the page, or edit {state.work} (reloaded when it changes)",
                    flush=True,
                )
                await _until_signal(signals, nursery)

    _trio_run(main, keylog=args.keylog, pcap=args.pcap)
    return 0


async def _start_ui(nursery: trio.Nursery, ui: LiveUi, at: tuple[str, int], debug: bool) -> str:
    """Start the live page; its URL."""
    host, port = await nursery.start(
        partial(serve_ui, report=stderr_reporter(debug=debug)), ui, *at
    )
    return f"http://{_hostport((host, port))}/"


async def _until_signal(signals: AsyncIterator[int], nursery: trio.Nursery) -> None:
    async for signum in signals:
        print(f"fedsim: {signal.Signals(signum).name}: stopping", flush=True)
        nursery.cancel_scope.cancel()
        break


def _trio_run(
    main: Callable[[], Awaitable[None]], *, keylog: Path | None, pcap: Path | None
) -> None:
    for flag, path in (("--pcap", pcap), ("--keylog", keylog)):
        if path is not None:
            make_parent(path, flag)
    # Every TLS context built from here on (the Edge's three) logs its secrets.
    use_keylog(keylog)
    try:
        trio.run(main)
    except OSError as exc:
        raise FedsimError(
            f"cannot listen: {exc.strerror or exc} (is another fedsim running?)"
        ) from None
    finally:
        use_keylog(None)


def make_parent(path: Path, flag: str) -> None:
    """Create the directory ``path`` goes in (``--pcap logs/lab.pcapng`` before logs/ exists).

    Raises:
        FedsimError: it cannot be created (one line naming the flag).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FedsimError(
            f"{flag} {path}: cannot create {path.parent}: {exc.strerror or exc} "
            "(give a path in a directory you can write)"
        ) from None


async def _serve(
    lab: Lab,
    log_dir: Path,
    certs_dir: Path,
    console: object,
    quiet: bool,
    debug: bool,
    *,
    observe: Observer | None = None,
    watch: Watch | None = None,
    trace: bool = False,
    pcap: Path | None = None,
    task_status: trio.TaskStatus[LabAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve_lab(
        lab,
        log_dir=log_dir,
        certs_dir=certs_dir,
        console=console if callable(console) else None,
        quiet=quiet,
        debug=debug,
        # [edge] seed / --seed: one random source for every choice (tags, SRV order).
        rng=None if lab.edge.seed is None else random.Random(lab.edge.seed),
        observe=observe,
        watch=watch,
        trace=trace,
        pcap=pcap,
        task_status=task_status,
    )


def _hostport(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fedsim_command(
    argv0: str | None = None, executable: str | None = None, cwd: Path | None = None
) -> str:
    """How to run this very fedsim from another terminal in the same directory.

    ``make run`` starts ``.venv/bin/fedsim``, which is not on PATH, so the banner's
    lines name the running program: ``sys.argv[0]`` when it is the ``fedsim``
    script, else ``<python> -m simulator``. A path under the working directory is
    printed relative to it (``.venv/bin/fedsim``), any other one in full.

    Args:
        argv0: the program as started (default ``sys.argv[0]``).
        executable: the Python running it (default ``sys.executable``).
        cwd: the working directory (default the current one).

    Returns:
        The command, quoted for a POSIX shell.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    cwd = Path.cwd() if cwd is None else cwd
    script = cwd / argv0  # a relative argv0 is relative to where fedsim started
    if argv0 and script.name != "__main__.py" and script.is_file():
        return shlex.quote(_shown(script, cwd))
    python = executable or "python3"
    if "/" in python:  # a bare name (no path) is looked up on PATH in any terminal
        python = _shown(cwd / python, cwd)
    return shlex.join([python, "-m", "simulator"])


def _shown(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when under it (always with a ``/``, so no PATH lookup)."""
    full = Path(os.path.abspath(path))
    try:
        relative = full.relative_to(os.path.abspath(cwd))
    except ValueError:
        return str(full)
    return f"./{relative}" if relative.parent == Path() else str(relative)


def banner(
    lab: Lab,
    addresses: LabAddresses,
    *,
    fedsim: str = "fedsim",
    stunnel_port: int = STUNNEL_PORT,
    keylog: Path | None = None,
    ui: str | None = None,
) -> str:
    """What a person needs to point SIPp, dig or an Expressway-E at the running lab.

    The "try it" lines work when pasted, as printed and in order, into another
    terminal in the same directory: stunnel goes to the background and the ``kill``
    line after SIPp stops it; SIPp places one call and ends.

    Args:
        lab: the running lab.
        addresses: where it listens and the files it wrote.
        fedsim: the command that runs fedsim (:func:`fedsim_command`).
        stunnel_port: the plain-TCP port the printed stunnel offers SIPp.
        keylog: the TLS key log being written, if any (said with its mode: it is a secret).
        ui: the live page's URL, when it is on.
    """
    fed_host = addresses.federation[0]
    dns_host, dns_port = addresses.dns
    lines = [
        f"fedsim: lab {lab.name!r}: Edge {lab.edge.fqdn} for {', '.join(lab.edge.domains)}",
        f"  federation  {_hostport(addresses.federation)}  (mutual TLS, client cert required)",
        f"  clients     {_hostport(addresses.clients)}  (TLS, Skype clients call out here)",
        f"  lab DNS     {_hostport(addresses.dns)}  (UDP and TCP, authoritative)",
        f"  Edge cert   {addresses.edge_cert}",
    ]
    if addresses.crl:
        lines.append(f"  CRLs        {addresses.crl}/<CA>.crl  (HTTP; every lab certificate's CDP)")
    if addresses.edge_ca is not None:
        lines.append(f"  trust       {addresses.edge_ca}  (import this CA on the Expressway-E)")
    logs = [addresses.log_dir / "edge.log", addresses.log_dir / "events.jsonl"]
    if addresses.trace is not None:
        logs.append(addresses.trace)
    lines.append(f"  logs        {', '.join(map(str, logs))}")
    if addresses.pcap is not None:
        lines.append(f"  capture     {addresses.pcap}  (pcapng, every SIP message in clear)")
    if keylog is not None:
        lines.append(
            f"  key log     {keylog}  (mode 0600: its secrets decrypt every TLS session "
            "of this lab; keep it private)"
        )
    if ui is not None:
        lines.append(f"  ui          {ui}")
    for host, note in (
        (fed_host, "--listen"),
        (dns_host, "--dns-listen"),
        (addresses.clients[0], "--clients"),
    ):
        if host not in ("127.0.0.1", "::1", "localhost"):
            lines.append(f"  note        {note} binds {host}: reachable from other machines")
    peer = next(iter(lab.peers.values()), None)
    srv_domain = _first_partner_domain(lab)
    q = shlex.quote
    lines.append("try it (paste into another terminal, in this directory):")
    lines.append(f"  dig @{dns_host} -p {dns_port} _sipfederationtls._tcp.{srv_domain} SRV +norec")
    if peer is not None and isinstance(peer.cert, str) and peer.cert in addresses.issued:
        cert = addresses.issued[peer.cert]
        ca = addresses.edge_ca or cert.root_path
        call_from = next((c.from_ for c in lab.calls if c.direction == "inbound"), None)
        call_to = next((c.to for c in lab.calls if c.direction == "inbound"), None)
        if call_from is None:
            call_from = f"sip:2000@{srv_domain}"
        if call_to is None:
            call_to = f"sip:user@{lab.edge.domains[0]}"
        lines.append(
            f"  {fedsim} call --edge {_hostport(addresses.federation)} "
            f"--cert {q(str(cert.cert_path))} --key {q(str(cert.key_path))} "
            f"--ca {q(str(ca))} --server-name {lab.edge.fqdn} "
            f"--from {q(call_from)} --to {q(call_to)}"
        )
        stunnel, scenario = write_sipp_kit(
            addresses, cert.cert_path, cert.key_path, ca, lab, stunnel_port=stunnel_port
        )
        user = call_to.split(":", 1)[-1].split("@", 1)[0]
        domain = call_from.split("@", 1)[-1]
        lines.append(
            f"  stunnel {q(str(stunnel))}     "
            f"# mutual TLS for SIPp on 127.0.0.1:{stunnel_port}, in the background"
        )
        lines.append(
            f"  sipp -sf {q(str(scenario))} -t t1 127.0.0.1:{stunnel_port} -s {q(user)} "
            f"-key from_domain {q(domain)} -key to_domain {q(lab.edge.domains[0])} -m 1 -nostdin"
        )
        pid = q(str(addresses.log_dir / STUNNEL_PID))
        lines.append(f"  kill $(cat {pid})     # stops that stunnel")
    lines.append(_client_example(lab, addresses, fedsim))
    lines.append("decisions (one line per request; Ctrl-C stops):")
    return "\n".join(lines)


def _client_example(lab: Lab, addresses: LabAddresses, fedsim: str) -> str:
    """A ``fedsim client`` line: the lab's first outbound call, else a call to steven.lab."""
    call = next((c for c in lab.calls if c.direction == "outbound"), None)
    to_uri = call.to if call is not None else "sip:2000@steven.lab"
    ca = f" --ca {shlex.quote(str(addresses.edge_ca))}" if addresses.edge_ca is not None else ""
    return (
        f"  {fedsim} client --edge {_hostport(addresses.clients)}{ca} "
        f"--server-name {lab.edge.fqdn} --to {shlex.quote(to_uri)}"
    )


def _first_partner_domain(lab: Lab) -> str:
    for call in lab.calls:
        if call.direction == "inbound":
            return call.from_.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]
    return lab.edge.domains[0]


def write_sipp_kit(
    addresses: LabAddresses,
    cert: Path,
    key: Path,
    ca: Path,
    lab: Lab,
    *,
    stunnel_port: int = STUNNEL_PORT,
) -> tuple[Path, Path]:
    """Write a stunnel client config and the SIPp scenarios next to the logs (the INVITE
    one and the presence one, :data:`SIPP_PRESENCE`); return stunnel's and the INVITE's.

    stunnel detaches (``foreground = no``) so the printed lines run one after the
    other in one terminal; it writes its PID next to the logs for the line that
    stops it. Every path is absolute: a detached stunnel works from ``/``.
    """
    log_dir = addresses.log_dir
    fed_host, fed_port = addresses.federation
    stunnel = log_dir / "stunnel-sipp.conf"
    stunnel.write_text(
        "; written by fedsim serve: plain TCP from SIPp -> mutual TLS to the Edge\n"
        f"; runs in the background: kill $(cat {log_dir.resolve() / STUNNEL_PID}) stops it\n"
        "foreground = no\n"
        f"pid = {log_dir.resolve() / STUNNEL_PID}\n"
        f"output = {log_dir.resolve() / 'stunnel.log'}\n"
        "[sip-tls]\n"
        "client = yes\n"
        f"accept = 127.0.0.1:{stunnel_port}\n"
        f"connect = {_hostport((fed_host, fed_port))}\n"
        f"cert = {cert.resolve()}\n"
        f"key = {key.resolve()}\n"
        f"CAfile = {ca.resolve()}\n"
        "verifyChain = yes\n"
        f"checkHost = {lab.edge.fqdn}\n"
        "sslVersionMin = TLSv1.2\n",
        encoding="utf-8",
    )
    for name in (SIPP_SCENARIO, SIPP_PRESENCE):
        text = resources.files("simulator.edge").joinpath(name).read_text(encoding="utf-8")
        (log_dir / name).write_text(text, encoding="utf-8")
    return stunnel, log_dir / SIPP_SCENARIO
