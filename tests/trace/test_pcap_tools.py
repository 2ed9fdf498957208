"""The field's tools read the capture fedsim writes: tshark decodes every message as SIP
(no "Decode As", real ports 5061/5062/5071), sngrep finds the calls."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from simulator.sip import Response, parse_message
from simulator.trace import WireMessage
from simulator.trace.pcap import PcapWriter, read_capture

pytestmark = pytest.mark.interop

#: Upper bound for one tool run; a hang is a bug, this only turns it into a failure.
TOOL_LIMIT = 60


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion (subprocess.run kills it by PID if it overruns)."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TOOL_LIMIT,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def write(path: Path, messages: list[WireMessage]) -> Path:
    writer = PcapWriter.create(str(path))
    for message in messages:
        writer.write(message)
    writer.close()
    return path


def expected_fields(messages: list[WireMessage]) -> list[tuple[str, str, str]]:
    """(Call-ID, status code, method) per message, as tshark's fields print them."""
    out = []
    for m in messages:
        sip = parse_message(m.data)
        if isinstance(sip, Response):
            out.append((sip.call_id, str(sip.status), ""))
        else:
            out.append((sip.call_id, "", sip.method))
    return out


def tshark_fields(tshark: str, path: Path) -> list[tuple[str, str, str]]:
    done = run(
        tshark, "-r", str(path), "-Y", "sip",
        "-T", "fields", "-e", "sip.Call-ID", "-e", "sip.Status-Code", "-e", "sip.Method",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [tuple(line.split("\t")) for line in done.stdout.splitlines()]  # type: ignore[misc]


def test_tshark_decodes_every_message_as_sip_on_the_real_ports(
    tmp_path: Path, calls: list[WireMessage], tool: Callable[[str], str]
) -> None:
    path = write(tmp_path / "lab.pcapng", calls)
    assert tshark_fields(tool("tshark"), path) == expected_fields(calls)
    ports = {m.local[1] for m in calls} | {m.remote[1] for m in calls}
    assert {5061, 5062, 5071} <= ports


def test_tshark_decodes_ipv6_and_large_messages(
    tmp_path: Path, calls: list[WireMessage], tool: Callable[[str], str]
) -> None:
    six = [replace(m, local=("::1", m.local[1]), remote=("::1", m.remote[1])) for m in calls]
    head, _, body = six[0].data.partition(b"\r\n\r\n")
    body = body + b"a=x-filler:" + b"x" * 4000 + b"\r\n"
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head)
    six[0] = replace(six[0], data=head + b"\r\n\r\n" + body)
    path = write(tmp_path / "lab6.pcapng", six)
    assert tshark_fields(tool("tshark"), path) == expected_fields(six)


def test_tshark_sees_no_bad_checksum_or_tcp_problem(
    tmp_path: Path, calls: list[WireMessage], tool: Callable[[str], str]
) -> None:
    tshark = tool("tshark")
    path = write(tmp_path / "lab.pcapng", calls)
    problems = (
        "_ws.expert.severity >= warning || tcp.checksum.status == 0 || ip.checksum.status == 0"
    )
    done = run(
        tshark, "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
        "-Y", problems,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_sngrep_reads_the_capture_as_calls(
    tmp_path: Path, calls: list[WireMessage], tool: Callable[[str], str]
) -> None:
    """sngrep has no batch report: headless (-N) it prints its dialog count, and -O
    writes out every packet it decoded as SIP, which tshark then lists."""
    sngrep = tool("sngrep")
    path = write(tmp_path / "lab.pcapng", calls)
    out = tmp_path / "sngrep.pcap"
    done = run(sngrep, "-I", str(path), "-N", "-O", str(out))
    assert done.returncode == 0, done.stderr
    counts = re.findall(r"Dialog count: (\d+)", done.stdout)
    call_ids = {parse_message(m.data).call_id for m in calls}
    assert counts
    assert int(counts[-1]) == len(call_ids)
    assert tshark_fields(tool("tshark"), out) == expected_fields(calls)
    assert [m.data for m in read_capture(out.read_bytes())] == [m.data for m in calls]
