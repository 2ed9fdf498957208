"""One bounded SIPp run through stunnel, and what its end screen says.

Every run is bounded three ways: ``-m`` (calls), ``-timeout`` (wall time) and
``-l`` (calls in flight); ``-recv_timeout`` fails a call whose 504 does not
come within 5 s instead of letting it hang.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from simulator.bench.procs import BenchError, free_port

#: The scenario shared by the three servers: INVITE -> 504 (any) -> ACK.
SCENARIO = "uac_invite_504.xml"
#: A call without its final response after this long counts as failed (ms).
RECV_TIMEOUT_MS = 5000
#: Sockets SIPp may open with -t tn (must stay below ulimit -n).
MAX_SOCKETS = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class SippRun:
    """The cumulative counters of one SIPp run and its wall time.

    ``answered`` counts the 504s SIPp received (each must have its fedsim event).
    """

    rate: float
    created: int
    answered: int
    successful: int
    failed: int
    wall_s: float

    @property
    def achieved_cps(self) -> float:
        return self.successful / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.created if self.created else 1.0


#: The outbound load: a client's INVITE to far.bench, relayed 504, ACK.
OUTBOUND_SCENARIO = "uac_outbound_504.xml"


def scenario_path(name: str = SCENARIO) -> Path:
    return Path(str(resources.files("simulator.bench").joinpath(name)))


def _counter(screen: str, name: str) -> int:
    found = re.findall(rf"^\s*{re.escape(name)}\s*\|[^|\n]*\|\s*(\d+)", screen, re.M)
    if not found:
        raise BenchError(f"SIPp: no '{name}' in its end screen")
    return int(found[-1])


def _answered(screen: str) -> int:
    found = re.findall(r"^\s*504 <-+\s+(?:E-RTD\d\s+)?(\d+)", screen, re.M)
    if not found:
        raise BenchError("SIPp: no 504 line in its end screen")
    return int(found[-1])


def run_sipp(
    port: int,
    *,
    transport: Literal["t1", "tn"],
    rate: float,
    calls: int,
    out: Path,
    scenario: str = SCENARIO,
) -> SippRun:
    """Offer ``calls`` INVITEs at ``rate`` per second to 127.0.0.1:``port`` (plain TCP).

    ``t1``: one connection for the whole run (stunnel keeps one TLS session);
    ``tn``: one connection, hence one TLS handshake, per call.
    """
    limit = 5000 if transport == "t1" else MAX_SOCKETS // 2
    timeout_s = int(calls / rate + 15)
    argv = [
        "sipp",
        "-sf",
        str(scenario_path(scenario)),
        "-t",
        transport,
        f"127.0.0.1:{port}",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-s",
        "bench",
        "-r",
        f"{rate:g}",
        "-m",
        str(calls),
        "-l",
        str(limit),
        "-timeout",
        f"{timeout_s}s",
        "-recv_timeout",
        str(RECV_TIMEOUT_MS),
        "-nostdin",
    ]
    if transport == "tn":
        argv += ["-max_socket", str(MAX_SOCKETS)]
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout_s + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run kills it by PID
        raise BenchError(f"SIPp did not stop within {timeout_s + 30} s") from exc
    wall = time.monotonic() - start
    screen = done.stdout.decode("utf-8", "replace")
    out.write_text(screen, encoding="utf-8")
    if "Total Calls created" not in screen:
        raise BenchError(f"SIPp exited with {done.returncode} and no statistics (see {out})")
    return SippRun(
        rate=rate,
        created=_counter(screen, "Total Calls created"),
        answered=_answered(screen),
        successful=_counter(screen, "Successful call"),
        failed=_counter(screen, "Failed call"),
        wall_s=wall,
    )
