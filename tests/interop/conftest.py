"""Real peers against a real ``fedsim serve``: the subprocess, its ports, its logs.

Every test gets its own ``fedsim serve`` (built-in seed lab) on free loopback
ports, with a fresh log dir and certs dir, so events.jsonl counts belong to one
test. Nothing waits by sleeping: a process is "up" when it printed the line
that says so (serve: its banner's ``decisions (`` line; stunnel: ``bound to``),
read from its pipe with a deadline. Every process a test starts is registered
with ``procs`` and killed by PID when the test ends.

Helpers are handed out as fixtures because test modules cannot import this
conftest (``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from simulator.bench.procs import free_port

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"

#: Upper bound for any process to print its "ready" line or any reply to show up.
READY_TIMEOUT = 15.0

#: The CA the seed lab's Edge trusts (simulator/lab/seed.toml).
TRUST_ROOT = "public-root"


def require_tool(name: str) -> str:
    """Return the path of a real peer tool, failing (not skipping) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path


class OutputReader:
    """Line reader over a child's pipe with a deadline, keeping everything read."""

    def __init__(self, stream: object, what: str) -> None:
        fileno = getattr(stream, "fileno", None)
        if fileno is None:
            raise TypeError("a pipe with fileno() is needed")
        self.fd: int = fileno()
        os.set_blocking(self.fd, False)
        self.what = what
        self.text = ""
        self._pending = ""
        self.closed = False

    def pump(self, timeout: float) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            if not sel.select(timeout):
                return
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.closed = True
            return
        decoded = chunk.decode("utf-8", "replace")
        self.text += decoded
        self._pending += decoded

    def wait_for(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """Block until ``pattern`` (a regex) appears in the output; fail after ``timeout``."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.text)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                state = "exited" if self.closed else f"timed out after {timeout:g}s"
                tail = self.text[-3000:]
                pytest.fail(f"{self.what}: {state} without printing /{pattern}/; output:\n{tail}")
            self.pump(left)


@dataclass
class Child:
    """A started process and the reader of its (merged) output."""

    proc: subprocess.Popen[bytes]
    out: OutputReader
    #: What ends it at teardown: SIGTERM (then SIGKILL after 5 s), or SIGKILL at once
    #: for clients whose graceful exit waits on network timers (baresip's BYE).
    stop_signal: signal.Signals = signal.SIGTERM

    def finish(self, timeout: float) -> int:
        """Wait for a clean exit (reading its output meanwhile); fail if it overruns."""
        deadline = time.monotonic() + timeout
        while not self.out.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                stop(self.proc)
                pytest.fail(f"{self.out.what} still running after {timeout:g}s:\n{self.out.text}")
            self.out.pump(left)
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop(self.proc)
            pytest.fail(f"{self.out.what} closed its output but did not exit")


@dataclass
class Procs:
    """Every process a test started; :meth:`kill_all` stops each one by its PID."""

    started: list[Child] = field(default_factory=list)

    def start(
        self, argv: Sequence[str | Path], *, cwd: Path | None = None, stdin: int | None = None
    ) -> Child:
        """Start ``argv`` with stdout+stderr on one pipe (read through ``Child.out``)."""
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        assert proc.stdout is not None
        child = Child(proc=proc, out=OutputReader(proc.stdout, Path(str(argv[0])).name))
        self.started.append(child)
        return child

    def run(
        self, argv: Sequence[str | Path], *, cwd: Path | None = None, timeout: float = 30.0
    ) -> tuple[int, str]:
        """Run to completion (killed by PID at ``timeout``); return (exit code, output)."""
        child = self.start(argv, cwd=cwd)
        code = child.finish(timeout)
        return code, child.out.text

    def kill_all(self) -> None:
        for child in reversed(self.started):
            stop(child.proc, child.stop_signal)


def stop(proc: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    """Signal the process by PID (SIGTERM by default), SIGKILL it if it lingers, reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, how)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    """Start helper processes through this; all are killed by PID when the test ends."""
    registry = Procs()
    try:
        yield registry
    finally:
        registry.kill_all()


@dataclass
class Lab:
    """A running ``fedsim serve`` of the seed lab and the files it wrote."""

    proc: subprocess.Popen[bytes]
    out: OutputReader
    fed_port: int
    dns_port: int
    log_dir: Path
    certs_dir: Path

    def cert(self, name: str) -> Path:
        return self.certs_dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.certs_dir / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.cert(TRUST_ROOT)

    def events(self) -> list[dict[str, object]]:
        path = self.log_dir / "events.jsonl"
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def edge_log(self) -> str:
        path = self.log_dir / "edge.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_lab(procs: Procs, base: Path, lab_file: Path | None = None) -> Lab:
    """Start ``fedsim serve`` (seed lab, or ``lab_file``) on free loopback ports, logs and
    certs under ``base``."""
    fed_port = free_port()
    dns_port = free_port(udp_too=True)
    log_dir = base / "logs"
    certs_dir = base / "certs"
    child = procs.start(
        [
            sys.executable,
            "-m",
            "simulator",
            "serve",
            *([lab_file] if lab_file is not None else []),
            "--listen",
            f"127.0.0.1:{fed_port}",
            "--clients",
            f"127.0.0.1:{free_port()}",
            "--dns-listen",
            f"127.0.0.1:{dns_port}",
            "--log-dir",
            log_dir,
            "--certs-dir",
            certs_dir,
            # SIPp and the RFC 4475 torture tests send fast from steven.lab, a
            # discovered partner: lift its 20 messages/s (reference §5.2).
            "--rule",
            "discovered_rate=1000000",
        ],
        cwd=REPO,
    )
    child.out.what = "fedsim serve"
    child.out.wait_for(r"^decisions \(")
    assert f"federation  127.0.0.1:{fed_port}" in child.out.text
    assert f"lab DNS     127.0.0.1:{dns_port}" in child.out.text
    return Lab(
        proc=child.proc,
        out=child.out,
        fed_port=fed_port,
        dns_port=dns_port,
        log_dir=log_dir,
        certs_dir=certs_dir,
    )


@pytest.fixture
def lab(tmp_path: Path, procs: Procs) -> Lab:
    """``fedsim serve`` (seed lab) as a real subprocess, one per test; ``procs`` kills it."""
    return start_lab(procs, tmp_path)


@pytest.fixture
def seed_variant(tmp_path: Path, procs: Procs) -> Callable[[str], Lab]:
    """``seed_variant(lines)``: ``fedsim serve`` of the seed lab with ``lines`` added to its
    ``[edge]`` (e.g. ``media_refusal = "legacy"``), one per test."""

    def start(lines: str) -> Lab:
        text = (REPO / "simulator" / "lab" / "seed.toml").read_text(encoding="utf-8")
        marker = 'machine = "sfvedge"'
        assert marker in text
        lab_file = tmp_path / "seed-variant.toml"
        lab_file.write_text(text.replace(marker, f"{marker}\n{lines}", 1), encoding="utf-8")
        return start_lab(procs, tmp_path / "variant", lab_file)

    return start


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One ``fedsim serve`` for a whole module, for read-only checks (the lab DNS)."""
    registry = Procs()
    try:
        yield start_lab(registry, tmp_path_factory.mktemp("shared-lab"))
    finally:
        registry.kill_all()


@pytest.fixture
def rogue(lab: Lab, procs: Procs) -> tuple[Path, Path]:
    """A peer certificate from the seed's private-root, which the Edge does not trust."""
    code, output = procs.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "certs",
            "issue",
            "rogue.steven.lab",
            "--issuer",
            "private-root",
            "--out",
            lab.certs_dir,
        ],
        cwd=REPO,
    )
    assert code == 0, output
    return lab.cert("rogue.steven.lab"), lab.key("rogue.steven.lab")


@pytest.fixture
def tool() -> Callable[[str], str]:
    """``tool(name)``: the path of a real peer, failing the test when it is not installed."""
    return require_tool


StartStunnel = Callable[..., int]


@pytest.fixture
def stunnel(lab: Lab, procs: Procs, tmp_path: Path) -> StartStunnel:
    """``stunnel(cert=None, key=None) -> port``: fedsim's printed stunnel config with a free
    accept port (and optionally another client certificate), started and listening."""

    def start(*, cert: Path | None = None, key: Path | None = None) -> int:
        binary = require_tool("stunnel")
        printed = (lab.log_dir / "stunnel-sipp.conf").read_text(encoding="utf-8")
        port = free_port()
        # In the foreground with no PID file: a child of ours, stopped by ``procs``
        # (the printed config detaches for a person's terminal; test_serve_banner runs it so).
        overrides = {"accept": f"127.0.0.1:{port}", "foreground": "yes", "pid": ""}
        if cert is not None and key is not None:
            overrides |= {"cert": str(cert), "key": str(key)}
        lines = ["debug = 6"]  # level 6 prints "bound to", our readiness line
        for line in printed.splitlines():
            name = line.split("=", 1)[0].strip()
            if name == "output":
                continue  # log to stderr (foreground = yes), which we read
            if name in overrides:
                line = f"{name} = {overrides.pop(name)}".rstrip()
            lines.append(line)
        assert not overrides, f"fedsim's stunnel config lacks {sorted(overrides)}"
        config = tmp_path / f"stunnel-{port}.conf"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        child = procs.start([binary, config])
        child.out.wait_for(rf"bound to 127\.0\.0\.1:{port}\b")
        return port

    return start
