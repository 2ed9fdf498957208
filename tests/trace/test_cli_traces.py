"""The trace flags on the command line: ``fedsim run --keep-logs --pcap --keylog`` per lab,
and every bad path one ``fedsim: error:`` line."""

from __future__ import annotations

import stat
from collections import Counter
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.diagnostics import ParsedEdgeRecord
from simulator.pki import KEYLOG_MODE
from simulator.run import load_lab_files
from simulator.run.runner import capture_name
from simulator.trace import TraceMessage, parse_trace
from simulator.trace.pcap import read_capture

REPO = Path(__file__).resolve().parents[2]
#: The Cisco note's fixed lab: a refused call, an accepted one, a call forwarded to a partner.
LAB = REPO / "scenarios" / "seeds" / "05-fixed-lab.toml"


def test_run_writes_a_trace_and_a_capture_per_lab_and_one_key_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep, captures, keylog = tmp_path / "labs", tmp_path / "captures", tmp_path / "keys.log"
    code = main(
        ["run", str(LAB), "--keep-logs", str(keep), "--pcap", str(captures),
         "--keylog", str(keylog)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().out
    (lab,) = load_lab_files([LAB])
    records = parse_trace((keep / lab.id / "logs" / "trace.log").read_text(encoding="utf-8"))
    messages = [r for r in records if isinstance(r, TraceMessage)]
    # Every call of the lab left its messages, on both of the Edge's sides.
    assert {m.side for m in messages} == {"external", "internal"}
    assert len({m.data.split(b"Call-ID: ")[1].split(b"\r\n")[0] for m in messages}) >= len(
        lab.lab.calls
    )
    diags = [r for r in records if isinstance(r, ParsedEdgeRecord)]
    assert len(diags) == (keep / lab.id / "logs" / "edge.log").read_text().count("TF_DIAG")
    # The capture holds the same messages in the same order.
    capture = captures / capture_name(lab.id)
    assert [m.data for m in read_capture(capture.read_bytes())] == [m.data for m in messages]
    # Both ends of every TLS session run in this process (the Edge, the simulated
    # Expressway-Es and Skype clients): each session's secret is logged by both.
    assert stat.S_IMODE(keylog.stat().st_mode) == KEYLOG_MODE
    lines = [line for line in keylog.read_text().splitlines() if not line.startswith("#")]
    assert lines
    assert set(Counter(lines).values()) == {2}


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["serve", "--pcap", "{file}/lab.pcapng"], "--pcap"),
        (["serve", "--keylog", "{dir}"], "key log"),
        (["serve", "--keylog", "{file}/keys.log"], "--keylog"),
        (["run", str(LAB), "--pcap", "{file}"], "--pcap"),
        (["run", str(LAB), "--keylog", "{dir}"], "key log"),
        (["run", "--merge", "x.json", "--pcap", "{dir}"], "--pcap"),
    ],
)
def test_a_bad_path_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], wanted: str
) -> None:
    file = tmp_path / "a-file"
    file.write_text("not a directory\n")
    paths = {"file": str(file), "dir": str(tmp_path)}
    assert main([arg.format(**paths) for arg in argv]) == 2
    assert wanted in error_line(capsys)


def test_serve_with_a_trace_it_cannot_write_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    (logs / "trace.log").mkdir(parents=True)
    code = main(
        ["serve", "--trace", "--log-dir", str(logs), "--certs-dir", str(tmp_path / "certs"),
         "--listen", "127.0.0.1:0", "--clients", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"]
    )  # fmt: skip
    assert code == 2
    assert "cannot write the trace" in error_line(capsys)
