"""The "try it" lines of ``fedsim serve`` work when pasted, as printed and in order.

``fedsim serve`` starts as ``make run`` starts it (``.venv/bin/fedsim serve`` from
the directory it was started in, logs and certs under it), on private ports. Each
printed line then runs through ``bash -c`` in that directory, as a person pasting
them into another terminal would: dig, ``fedsim call``, stunnel (which detaches),
SIPp (one call, then it ends), the line that stops stunnel, ``fedsim client``.
Every one must exit 0 within a bound; stunnel and fedsim are stopped by PID.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from simulator.commands.serve import STUNNEL_PID, banner, fedsim_command
from simulator.edge.app import LabAddresses
from simulator.lab import builtin_lab
from simulator.pki import issue_pki

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Procs

REPO = Path(__file__).resolve().parents[2]

#: Upper bound for one pasted line (SIPp's one call, a TLS handshake, a DNS query).
LINE_TIMEOUT = 60.0


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def paste(line: str, cwd: Path, out: Path) -> tuple[int, str]:
    """Run one printed line as ``bash -c`` in ``cwd``; its exit code and its output.

    Output goes to a file, not a pipe: a detaching stunnel must not hold our read open.
    The line runs in its own process group, killed by that group's PID on overrun.
    """
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            ["bash", "-c", line],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=LINE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"still running after {LINE_TIMEOUT:g}s: {line}\n{out.read_text()}")
    return code, out.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def stunnel_pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where the printed stunnel writes its PID; a stunnel left running is killed by it."""
    path = tmp_path / "logs" / STUNNEL_PID
    yield path
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(path.read_text().strip()), signal.SIGKILL)


@pytest.mark.interop
def test_try_it_lines_run_as_printed_in_order(
    tmp_path: Path, procs: Procs, tool: Callable[[str], str], stunnel_pid_file: Path
) -> None:
    for name in ("dig", "stunnel", "sipp"):
        tool(name)
    console_script = Path(sys.executable).with_name("fedsim")
    if not console_script.is_file():
        pytest.fail(f"{console_script} is missing: install fedsim in this venv (make venv)")
    # The layout of `make run`: the program at .venv/bin/fedsim under the directory.
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "fedsim").symlink_to(console_script)
    stunnel_port = free_tcp_port()
    serve = procs.start(
        [
            ".venv/bin/fedsim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--clients",
            "127.0.0.1:0",
            "--dns-listen",
            "127.0.0.1:0",
            "--stunnel-port",
            str(stunnel_port),
        ],
        cwd=tmp_path,
    )
    serve.out.what = "fedsim serve"
    serve.out.wait_for(r"^decisions \(")
    banner = serve.out.text.split("\ntry it", 1)[1].split("\ndecisions (", 1)[0]
    lines = [line.strip() for line in banner.splitlines()[1:]]
    assert [line.split()[0] for line in lines] == [
        "dig",
        ".venv/bin/fedsim",
        "stunnel",
        "sipp",
        "kill",
        ".venv/bin/fedsim",
    ], lines
    assert f"127.0.0.1:{stunnel_port}" in lines[3]
    assert "-m 1 -nostdin" in lines[3]

    stunnel_pid: int | None = None
    for number, line in enumerate(lines):
        code, output = paste(line, tmp_path, tmp_path / f"line-{number}.out")
        assert code == 0, f"{line}\n{output}"
        if line.startswith("dig "):
            assert "status: NOERROR" in output, output
        elif line.startswith("stunnel "):
            # The daemon writes its PID file after the parent returned: wait for it.
            stunnel_pid = wait_for_pid_file(stunnel_pid_file, LINE_TIMEOUT)
            assert pid_alive(stunnel_pid), "stunnel returned but is not running in the background"
        elif line.startswith("sipp "):
            assert "Successful call" in output, output
        elif line.startswith("kill "):
            assert stunnel_pid is not None
            assert exits_within(stunnel_pid, LINE_TIMEOUT), "the kill line left stunnel running"

    assert serve.proc.poll() is None, serve.out.text
    os.kill(serve.proc.pid, signal.SIGTERM)
    assert serve.finish(LINE_TIMEOUT) == 0, serve.out.text
    events = [
        json.loads(line)
        for line in (tmp_path / "logs" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    invites = [(e["direction"], e["status"]) for e in events if e.get("method") == "INVITE"]
    # fedsim call and SIPp: acano.steven.lab's SRV is outside the domain; fedsim client:
    # cms.steven.lab's too (the seed lab's cases).
    assert invites == [("inbound", 504), ("inbound", 504), ("outbound", 504)], events


def wait_for_pid_file(path: Path, timeout: float) -> int:
    """The PID a detached daemon writes into ``path``, polled for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text().strip())
        if time.monotonic() > deadline:
            pytest.fail(f"no PID in {path} after {timeout:g}s")
        time.sleep(0.05)


def exits_within(pid: int, timeout: float) -> bool:
    """Whether ``pid`` (not our child: stunnel detached) exits within ``timeout`` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)  # readable once the process has exited
            return bool(sel.select(timeout))
    finally:
        os.close(fd)


# --- which fedsim the lines name --------------------------------------------------


def test_the_console_script_under_the_directory_is_printed_relative(tmp_path: Path) -> None:
    script = tmp_path / ".venv" / "bin" / "fedsim"
    script.parent.mkdir(parents=True)
    script.touch()
    for argv0 in (".venv/bin/fedsim", str(script)):
        assert fedsim_command(argv0, "/usr/bin/python3", tmp_path) == ".venv/bin/fedsim"


def test_a_script_elsewhere_is_printed_in_full_and_quoted(tmp_path: Path) -> None:
    script = tmp_path / "my tools" / "fedsim"
    script.parent.mkdir()
    script.touch()
    cwd = tmp_path / "lab"
    cwd.mkdir()
    assert fedsim_command(str(script), "/usr/bin/python3", cwd) == f"'{script}'"


def test_a_script_in_the_directory_itself_gets_dot_slash(tmp_path: Path) -> None:
    (tmp_path / "fedsim").touch()
    assert fedsim_command(str(tmp_path / "fedsim"), "/usr/bin/python3", tmp_path) == "./fedsim"


def test_python_dash_m_simulator_is_printed_as_such(tmp_path: Path) -> None:
    main = tmp_path / "simulator" / "__main__.py"
    main.parent.mkdir()
    main.touch()
    python = tmp_path / ".venv" / "bin" / "python"
    assert fedsim_command(str(main), str(python), tmp_path) == ".venv/bin/python -m simulator"
    assert fedsim_command("-c", "/usr/bin/python3", tmp_path) == "/usr/bin/python3 -m simulator"
    assert fedsim_command("", "", tmp_path) == "python3 -m simulator"


def test_the_readme_tour_shows_the_banner_make_run_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # make run: relative certs/ and logs/
    lab = builtin_lab()
    issued = issue_pki(lab.certs, Path("certs"), now=dt.datetime.now(dt.UTC))
    assert isinstance(lab.edge.cert, str)
    Path("logs").mkdir()
    addresses = LabAddresses(
        dns=lab.dns.listen,
        federation=lab.edge.listen,
        clients=lab.edge.clients,
        edge_cert=issued[lab.edge.cert].cert_path,
        edge_ca=issued[lab.edge.cert].root_path,
        log_dir=Path("logs"),
        certs_dir=Path("certs"),
        issued=issued,
        crl="http://127.0.0.1:40123",  # a free port: the README shows one
    )
    printed = banner(lab, addresses, fedsim=".venv/bin/fedsim", ui="http://127.0.0.1:41733/")
    assert "\n```\n" + printed + "\n" in (REPO / "README.md").read_text(encoding="utf-8")
