"""``make bench``: fedsim against Kamailio and against the ceiling of its own stack.

For each server under test (fedsim, the Kamailio reference, the trio ceiling)
the same load generators measure, in this order, on a server just started:

1. memory: RSS growth with N idle mutual-TLS connections, per connection;
2. warm connection: SIPp ``-t t1`` through stunnel at a fixed rate: achieved
   rate, failed calls, server CPU (utime+stime of its process tree) per call;
3. the maximum sustained rate: steps of 5 s, stopping at the first step with
   >= 0.1 % failed calls or an achieved rate < 95 % of the offered one;
4. handshake per call: SIPp ``-t tn`` (one mutual-TLS handshake per call);
5. latency: a trio client, one warm connection, INVITEs at 1,000/s, p50/p99/p99.9;
6. outbound (fedsim and Kamailio): SIPp through stunnel to the client-facing side,
   each INVITE to far.bench relayed over one mutual-TLS connection to the partner
   (the ceiling with the vcse.far.bench certificate) and its 504 back: server CPU
   per call. Kamailio's side is a stateful TLS proxy (``kamailio_proxy.cfg``).

Then, for fedsim only: ``serve`` start-to-ready with an existing PKI, the wall
time of ``fedsim run scenarios/``, and events.jsonl against the INVITEs sent.
The table goes to stdout and, as JSON, to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from simulator.bench.procs import (
    BenchError,
    Procs,
    cpu_seconds,
    process_tree,
    rss_kib,
    wait_until,
)
from simulator.bench.servers import (
    SERVER_NAME,
    BenchPki,
    Running,
    issue_bench_pki,
    kamailio_modules,
    start_ceiling,
    start_fedsim,
    start_kamailio,
    start_kamailio_proxy,
    start_partner,
    start_stunnel,
)
from simulator.bench.sipp import OUTBOUND_SCENARIO, SCENARIO, SippRun, run_sipp
from simulator.errors import FedsimError

SERVERS = ("fedsim", "kamailio", "ceiling")
#: Column headings of the table.
TITLES = {"fedsim": "fedsim", "kamailio": "Kamailio", "ceiling": "trio ceiling"}
#: Debian packages that provide each tool (each one listed in .ci/packages).
PACKAGES = {"sipp": "sip-tester", "stunnel": "stunnel4", "kamailio": "kamailio"}
#: The checkout's installer of the packages in .ci/packages (root or ``sudo -n``), so
#: ``make bench`` and ``make test`` install from one list in one way.
ENSURE_PACKAGES = Path(__file__).resolve().parents[2] / ".ci" / "ensure-packages"
#: Failed-call ratio and achieved share of the offered rate a "sustained" step must meet.
MAX_FAILURE_RATIO = 0.001
MIN_ACHIEVED_SHARE = 0.95

Value = float | int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Rates and counts of one bench run (``FULL`` or ``QUICK``)."""

    warm_rate: float
    warm_calls: int
    max_steps: tuple[float, ...]
    max_step_s: float
    handshake_rate: float
    handshake_calls: int
    latency_rate: float
    latency_calls: int
    outbound_rate: float
    outbound_calls: int
    idle_connections: int
    catalogue: bool

    def __post_init__(self) -> None:
        rates = (self.warm_rate, self.handshake_rate, self.latency_rate, self.outbound_rate)
        if min(*rates, self.max_step_s) <= 0:
            raise ValueError("rates and durations must be positive")
        if min(self.warm_calls, self.handshake_calls, self.latency_calls, self.outbound_calls) < 1:
            raise ValueError("every run needs at least one call")
        if not self.max_steps or list(self.max_steps) != sorted(self.max_steps):
            raise ValueError("max_steps must be increasing")


#: The full bench: about 70 s per server on a 2-core machine.
FULL = Plan(
    warm_rate=2000,
    warm_calls=20_000,
    max_steps=(1000, 2000, 3000, 4000, 6000),
    max_step_s=5.0,
    handshake_rate=100,
    handshake_calls=1000,
    latency_rate=1000,
    latency_calls=10_000,
    outbound_rate=200,
    outbound_calls=2000,
    idle_connections=1000,
    catalogue=True,
)
#: Tiny counts for the smoke test: the same steps end to end, a few seconds per server.
QUICK = Plan(
    warm_rate=200,
    warm_calls=200,
    max_steps=(200, 400),
    max_step_s=0.5,
    handshake_rate=20,
    handshake_calls=20,
    latency_rate=1000,
    latency_calls=300,
    outbound_rate=50,
    outbound_calls=50,
    idle_connections=50,
    catalogue=False,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    """One row of the table: a name, its unit, and what it means."""

    name: str
    unit: str
    meaning: str


FIGURES = (
    Figure(
        name="warm_cpu_us_per_call",
        unit="us/call",
        meaning="server CPU per INVITE/504/ACK on one warm TLS connection",
    ),
    Figure(name="warm_achieved_cps", unit="calls/s", meaning="achieved rate of that warm run"),
    Figure(name="warm_failed_calls", unit="calls", meaning="failed calls in that warm run"),
    Figure(
        name="warm_max_cps",
        unit="calls/s",
        meaning="highest achieved rate with < 0.1 % failures (warm connection)",
    ),
    Figure(
        name="handshake_cpu_ms_per_call",
        unit="ms/call",
        meaning="server CPU per call with one mutual-TLS handshake per call",
    ),
    Figure(
        name="outbound_cpu_us_per_call",
        unit="us/call",
        meaning="server CPU per client INVITE relayed to the partner and its 504 back",
    ),
    Figure(name="outbound_failed_calls", unit="calls", meaning="failed calls in that run"),
    Figure(name="p50_ms_at_1000cps", unit="ms", meaning="median INVITE -> 504, warm connection"),
    Figure(name="p99_ms_at_1000cps", unit="ms", meaning="99th percentile INVITE -> 504"),
    Figure(name="p999_ms_at_1000cps", unit="ms", meaning="99.9th percentile INVITE -> 504"),
    Figure(
        name="rss_kib_per_idle_conn",
        unit="KiB/conn",
        meaning="server RSS growth per idle mutual-TLS connection",
    ),
    Figure(name="catalogue_wall_s", unit="s", meaning="wall time of `fedsim run scenarios/`"),
    Figure(
        name="serve_ready_s",
        unit="s",
        meaning="`fedsim serve` start to its banner, PKI already issued",
    ),
    Figure(
        name="events_missing",
        unit="events",
        meaning="504s received by the clients with no line in events.jsonl (0: none lost)",
    ),
)


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# -- tools ----------------------------------------------------------------------------


def ensure_tools(servers: Sequence[str], *, install: bool) -> None:
    """Install the Debian packages the bench needs when a tool is missing.

    The install goes through ``.ci/ensure-packages`` (as root, or ``sudo -n``), the
    one installer of the one list; ``install=False`` (``--no-install``) only says
    what to run.
    """
    needed = ["sipp", "stunnel"] + (["kamailio"] if "kamailio" in servers else [])
    packages = [PACKAGES[tool] for tool in needed if shutil.which(tool) is None]
    if "kamailio" in servers:
        try:
            kamailio_modules()
        except BenchError:
            packages.append("kamailio-tls-modules")
    if not packages:
        return
    command = f"apt-get install -y {' '.join(packages)}"
    if not install or not ENSURE_PACKAGES.is_file():
        raise BenchError(f"missing Debian packages: run `{command}` as root (or pass --servers)")
    say(f"installing {' '.join(packages)}")
    done = subprocess.run(
        ["bash", str(ENSURE_PACKAGES), *packages],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or [command]
        raise BenchError(lines[-1].removeprefix("ensure-packages: "))


# -- one server -------------------------------------------------------------------------


def _loaded_run(
    server: Running,
    stunnel_port: int,
    *,
    transport: Literal["t1", "tn"],
    rate: float,
    calls: int,
    out: Path,
    scenario: str = SCENARIO,
) -> tuple[SippRun, float]:
    """A SIPp run and the CPU seconds the server's process tree spent during it."""
    before_tree = process_tree(server.proc.pid)
    before = cpu_seconds(before_tree)
    run = run_sipp(
        stunnel_port, transport=transport, rate=rate, calls=calls, out=out, scenario=scenario
    )
    after = cpu_seconds(before_tree | process_tree(server.proc.pid))
    return run, after - before


def _client_argv(mode: str, pki: BenchPki, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simulator.bench.client",
        mode,
        "--connect",
        f"127.0.0.1:{port}",
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
        "--ca",
        str(pki.ca),
        "--server-name",
        SERVER_NAME,
    ]


def measure_memory(
    procs: Procs, server: Running, pki: BenchPki, work: Path, connections: int
) -> float | None:
    """RSS growth of the server tree per idle mutual-TLS connection (KiB)."""
    before = rss_kib(process_tree(server.proc.pid))
    out = work / f"idle-{server.name}.out"
    argv = [*_client_argv("idle", pki, server.port), "--count", str(connections), "--hold", "120"]
    client = procs.start("idle client", argv, stdout=out)
    try:
        wait_until("idle client", lambda: b"ready " in out.read_bytes(), timeout=120, proc=client)
        time.sleep(0.5)  # let the server finish the last handshakes' bookkeeping
        after = rss_kib(process_tree(server.proc.pid))
        opened = int(out.read_bytes().split(b"ready ", 1)[1].split()[0])
    finally:
        procs.stop(client)
    say(f"{server.name}: {opened} idle connections, RSS {before} -> {after} KiB")
    if opened < connections:
        say(f"{server.name}: only {opened} of {connections} connections opened")
    return round((after - before) / opened, 1) if opened else None


def measure_latency(server: Running, pki: BenchPki, work: Path, plan: Plan) -> dict[str, object]:
    """Run the trio latency client against the server (no stunnel) and return its JSON."""
    argv = [
        *_client_argv("latency", pki, server.port),
        "--rate",
        f"{plan.latency_rate:g}",
        "--count",
        str(plan.latency_calls),
    ]
    limit = plan.latency_calls / plan.latency_rate + 30
    try:
        done = subprocess.run(argv, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"{server.name}: the latency client did not finish in {limit:.0f} s"
        ) from exc
    (work / f"latency-{server.name}.out").write_bytes(done.stdout + done.stderr)
    if done.returncode != 0:
        raise BenchError(
            f"{server.name}: latency client failed: {done.stderr.decode()[-300:].strip()}"
        )
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def measure_outbound(
    procs: Procs, pki: BenchPki, work: Path, plan: Plan, server: Running, port: int
) -> tuple[SippRun, float]:
    """Load ``server``'s client-facing ``port`` with calls to the far.bench partner."""
    stunnel = start_stunnel(procs, pki, port, work, f"{server.name}-outbound")
    run, cpu = _loaded_run(
        server,
        stunnel,
        transport="t1",
        rate=plan.outbound_rate,
        calls=plan.outbound_calls,
        out=work / f"sipp-{server.name}-outbound.out",
        scenario=OUTBOUND_SCENARIO,
    )
    say(
        f"{server.name}: outbound {plan.outbound_rate:g} cps: {run.successful} ok, "
        f"{run.failed} failed, {cpu:.2f} s server CPU"
    )
    return run, cpu


def _outbound_figures(figures: dict[str, Value], run: SippRun, cpu: float) -> None:
    figures["outbound_cpu_us_per_call"] = (
        round(cpu / run.successful * 1e6, 1) if run.successful else None
    )
    figures["outbound_failed_calls"] = run.failed


def bench_server(
    name: str,
    procs: Procs,
    pki: BenchPki,
    work: Path,
    plan: Plan,
    partner_port: int | None,
    *,
    traces: bool = False,
) -> dict[str, Value]:
    """Start one server, measure every figure against it, stop it.

    ``partner_port``: the far.bench partner for the outbound figure (None: not measured).
    ``traces``: fedsim runs with its SIPStack trace and capture on.
    """
    starters: dict[str, Callable[[Procs, BenchPki, Path], Running]] = {
        "fedsim": lambda p, k, w: start_fedsim(p, k, w, partner_port or 5061, traces=traces),
        "kamailio": start_kamailio,
        "ceiling": start_ceiling,
    }
    server = starters[name](procs, pki, work)
    say(f"{name}: listening on 127.0.0.1:{server.port} (ready in {server.ready_s:.2f} s)")
    figures: dict[str, Value] = {f.name: None for f in FIGURES}
    invites = 0
    # A kept work directory may hold events of an earlier run: count only ours.
    events_before = _count_lines(server.events) if server.events is not None else 0
    try:
        figures["rss_kib_per_idle_conn"] = measure_memory(
            procs, server, pki, work, plan.idle_connections
        )
        time.sleep(1.0)  # the idle connections are closing; let the server reap them
        stunnel = start_stunnel(procs, pki, server.port, work, name)

        warm, cpu = _loaded_run(
            server,
            stunnel,
            transport="t1",
            rate=plan.warm_rate,
            calls=plan.warm_calls,
            out=work / f"sipp-{name}-warm.out",
        )
        invites += warm.answered
        figures["warm_cpu_us_per_call"] = (
            round(cpu / warm.successful * 1e6, 1) if warm.successful else None
        )
        figures["warm_achieved_cps"] = round(warm.achieved_cps, 1)
        figures["warm_failed_calls"] = warm.failed
        say(
            f"{name}: warm {plan.warm_rate:g} cps: {warm.successful} ok, {warm.failed} failed, "
            f"{warm.achieved_cps:.0f} cps, {cpu:.2f} s server CPU"
        )

        best: float | None = None
        for rate in plan.max_steps:
            step, cpu = _loaded_run(
                server,
                stunnel,
                transport="t1",
                rate=rate,
                calls=max(1, int(rate * plan.max_step_s)),
                out=work / f"sipp-{name}-max-{rate:g}.out",
            )
            invites += step.answered
            ok = (
                step.failure_ratio < MAX_FAILURE_RATIO
                and step.achieved_cps >= MIN_ACHIEVED_SHARE * rate
            )
            say(
                f"{name}: step {rate:g} cps: {step.achieved_cps:.0f} cps achieved, "
                f"{step.failed}/{step.created} failed, {cpu:.2f} s CPU -> "
                f"{'sustained' if ok else 'stop'}"
            )
            if not ok:
                break
            best = round(step.achieved_cps, 1)
        figures["warm_max_cps"] = best

        handshake, cpu = _loaded_run(
            server,
            stunnel,
            transport="tn",
            rate=plan.handshake_rate,
            calls=plan.handshake_calls,
            out=work / f"sipp-{name}-handshake.out",
        )
        invites += handshake.answered
        if handshake.successful:
            figures["handshake_cpu_ms_per_call"] = round(cpu / handshake.successful * 1e3, 3)
        say(
            f"{name}: handshake per call {plan.handshake_rate:g} cps: {handshake.successful} ok, "
            f"{handshake.failed} failed, {cpu:.2f} s CPU"
        )

        latency = measure_latency(server, pki, work, plan)
        invites += int(str(latency["answered"]))
        say(f"{name}: latency at {plan.latency_rate:g} cps: {json.dumps(latency)}")
        for key, figure in (
            ("p50_ms", "p50_ms_at_1000cps"),
            ("p99_ms", "p99_ms_at_1000cps"),
            ("p999_ms", "p999_ms_at_1000cps"),
        ):
            value = latency.get(key)
            figures[figure] = float(value) if isinstance(value, int | float) else None

        if partner_port is not None and server.clients_port is not None:  # fedsim
            outbound, cpu = measure_outbound(procs, pki, work, plan, server, server.clients_port)
            invites += outbound.answered
            _outbound_figures(figures, outbound, cpu)
    finally:
        procs.stop(server.proc)
    if partner_port is not None and name == "kamailio":
        # Kamailio's outbound side: a stateful TLS proxy to the same partner.
        proxy = start_kamailio_proxy(procs, pki, work, partner_port)
        try:
            outbound, cpu = measure_outbound(procs, pki, work, plan, proxy, proxy.port)
            _outbound_figures(figures, outbound, cpu)
        finally:
            procs.stop(proxy.proc)
    if server.events is not None:
        figures["serve_ready_s"] = round(server.ready_s, 3)
        lines = _count_lines(server.events) - events_before
        # Every 504 leaves after its event is written, so a 504 without an event is a
        # lost event. Requests still in flight when an overloaded run ends get an event
        # but no 504 (the client is gone): those make the figure negative, not a loss.
        figures["events_missing"] = max(0, invites - lines)
        say(f"{name}: {invites} INVITEs answered, {lines} events written")
    return figures


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def catalogue_wall(scenarios: Path, work: Path) -> float | None:
    """Wall time of ``fedsim run SCENARIOS`` (None without the command or any lab file)."""
    labs = sorted(scenarios.glob("**/*.toml")) if scenarios.is_dir() else []
    if not labs:
        say(f"catalogue: no lab files under {scenarios}: catalogue_wall_s is null")
        return None
    probe = subprocess.run(
        [sys.executable, "-m", "simulator", "run", "--help"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if probe.returncode != 0:
        say("catalogue: this fedsim has no `run` command: catalogue_wall_s is null")
        return None
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "simulator", "run", str(scenarios.resolve())],
            capture_output=True,
            check=False,
            timeout=600,
            cwd=work,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError("`fedsim run` on the catalogue took more than 600 s") from exc
    wall = time.monotonic() - start
    (work / "catalogue.out").write_bytes(done.stdout + done.stderr)
    say(f"catalogue: {len(labs)} lab files in {wall:.2f} s (exit {done.returncode})")
    return round(wall, 3)


# -- the table ----------------------------------------------------------------------------


def ratio(a: Value, b: Value) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def results_json(
    by_server: dict[str, dict[str, Value]],
    plan: Plan,
    catalogue: float | None,
    *,
    traces: bool = False,
) -> dict[str, object]:
    """The JSON written to bench/results.json: one entry per figure, plus the settings."""
    figures: list[dict[str, object]] = []
    for figure in FIGURES:
        row: dict[str, object] = {"name": figure.name, "unit": figure.unit}
        for server in SERVERS:
            values = by_server.get(server)
            row[server] = values.get(figure.name) if values is not None else None
        if figure.name == "catalogue_wall_s" and "fedsim" in by_server:
            row["fedsim"] = catalogue
        figures.append(row)
    return {
        "figures": figures,
        "plan": asdict(plan),
        "fedsim_traces": traces,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_table(results: dict[str, object]) -> str:
    """The one table: figure, the three servers, fedsim / Kamailio, fedsim / ceiling."""
    rows = [["figure", "unit", *TITLES.values(), "fedsim / Kamailio", "fedsim / ceiling"]]
    figures = results["figures"]
    assert isinstance(figures, list)
    for row in figures:
        fedsim, kamailio, ceiling = row["fedsim"], row["kamailio"], row["ceiling"]
        rows.append(
            [
                row["name"],
                row["unit"],
                _cell(fedsim),
                _cell(kamailio),
                _cell(ceiling),
                _cell(ratio(fedsim, kamailio)),
                _cell(ratio(fedsim, ceiling)),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- entry point ----------------------------------------------------------------------------


def bench(
    servers: Sequence[str],
    plan: Plan,
    *,
    work: Path,
    scenarios: Path,
    traces: bool = False,
) -> dict[str, object]:
    """Run the bench for ``servers`` in ``work``; return the results JSON.

    ``traces``: fedsim serves with ``--trace --pcap`` (what they cost per call).
    """
    pki = issue_bench_pki(work / "certs")
    by_server: dict[str, dict[str, Value]] = {}
    with Procs() as procs:
        # The far.bench partner of the outbound figure, shared by fedsim and Kamailio.
        partner = start_partner(procs, pki, work) if {"fedsim", "kamailio"} & set(servers) else None
        for name in servers:
            by_server[name] = bench_server(
                name, procs, pki, work, plan, partner.port if partner else None, traces=traces
            )
    catalogue = catalogue_wall(scenarios, work) if plan.catalogue and "fedsim" in servers else None
    return results_json(by_server, plan, catalogue, traces=traces)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.bench",
        description="Measure fedsim against Kamailio and a bare trio+ssl responder (make bench).",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts (the smoke test)")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results.json"), help="default: bench/results.json"
    )
    parser.add_argument("--scenarios", type=Path, default=Path("scenarios"))
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument("--keep", type=Path, help="keep logs and SIPp screens in this directory")
    parser.add_argument(
        "--fedsim-traces",
        action="store_true",
        help="serve fedsim with --trace and --pcap (what the SIPStack trace and capture cost)",
    )
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown or not servers:
        parser.error(f"--servers: unknown {', '.join(unknown) or '(none)'}; use {SERVERS}")
    plan = QUICK if args.quick else FULL
    try:
        ensure_tools(servers, install=not args.no_install)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            results = bench(
                servers,
                plan,
                work=args.keep.resolve(),
                scenarios=args.scenarios,
                traces=args.fedsim_traces,
            )
        else:
            with tempfile.TemporaryDirectory(prefix="fedsim-bench-") as tmp:
                results = bench(
                    servers,
                    plan,
                    work=Path(tmp),
                    scenarios=args.scenarios,
                    traces=args.fedsim_traces,
                )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    except FedsimError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(results))
    print(f"(written to {args.out})")
    return 0
