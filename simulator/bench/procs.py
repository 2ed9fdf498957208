"""Processes of the bench: start, watch in /proc, stop by PID.

Everything the bench starts goes through :class:`Procs`, which stops each
process (SIGTERM, then SIGKILL of its whole tree) when the bench ends, even on
an error or Ctrl-C. CPU and memory come from ``/proc``, as the issue asks:
``utime + stime`` (plus ``cutime + cstime`` of children already reaped) and
``VmRSS`` summed over the process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from simulator.errors import FedsimError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(FedsimError):
    """The bench could not run: a tool is missing, a server did not start, a run failed."""


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants, from the ppid field of ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree = {pid}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    return tree


def cpu_seconds(pids: Sequence[int] | set[int]) -> float:
    """User + system CPU of ``pids`` (and of their reaped children), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[11..14] = utime, stime, cutime, cstime (proc(5), 1-based 14..17)
        ticks += sum(int(f) for f in fields[11:15])
    return ticks / CLOCK_TICKS


def rss_kib(pids: Sequence[int] | set[int]) -> int:
    """Sum of ``VmRSS`` over ``pids``, in KiB (shared pages count once per process)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def free_port(*, udp_too: bool = False) -> int:
    """A port on 127.0.0.1 free now for TCP, and for UDP too when asked (a DNS server's
    pair), for servers that cannot bind port 0."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback TCP+UDP port pair in 50 tries")


def listening(port: int) -> bool:
    """True when something listens on TCP 127.0.0.1:``port`` (read from /proc/net/tcp,
    so probing never opens a connection the server would log)."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == want and line.split()[3] == "0A" for line in lines)


class Procs:
    """Every process the bench started; ``with Procs() as procs:`` stops them all at exit."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for _, proc in reversed(self._started):
            self.stop(proc)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        stdout: Path | None = None,
        stdin_pipe: bool = False,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout+stderr to ``stdout`` (or /dev/null); remember it."""
        out = stdout.open("wb") if stdout is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                cwd=cwd,
            )
        except OSError as exc:
            raise BenchError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
        finally:
            if stdout is not None and not isinstance(out, int):
                out.close()
        self._started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
        """SIGTERM ``proc``; after ``grace`` seconds SIGKILL it and every descendant, by PID."""
        if proc.poll() is not None:
            return
        tree = process_tree(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            for pid in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        # Children that outlived their parent (Kamailio's workers) are stopped too.
        for pid in tree - {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_until(
    what: str, check: Callable[[], bool], *, timeout: float, proc: subprocess.Popen[bytes]
) -> float:
    """Poll ``check()`` every 5 ms until true; return the seconds waited.

    Raises:
        BenchError: ``proc`` exited first, or ``timeout`` passed.
    """
    start = time.monotonic()
    while not check():
        if proc.poll() is not None:
            raise BenchError(f"{what}: the process exited with status {proc.returncode}")
        if time.monotonic() - start > timeout:
            raise BenchError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.005)
    return time.monotonic() - start
