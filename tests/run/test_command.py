"""``fedsim run`` in-process: verdicts, exit status, failure details, JUnit, JSON, -k, bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED_1 = SCENARIOS / "seeds" / "01-acano-srv-points-to-parent-domain.toml"


def wrong_copy(tmp_path: Path) -> Path:
    """Seed failure 1 with the first call's expectation deliberately wrong (200, not 504)."""
    text = SEED_1.read_text(encoding="utf-8")
    bad = text.replace("expect.status = 504", "expect.status = 200", 1)
    assert bad != text
    path = tmp_path / "labs" / "01-acano-srv-points-to-parent-domain.toml"
    path.parent.mkdir()
    path.write_text(bad, encoding="utf-8")
    return path


def test_passing_lab_exits_0_with_a_pass_row_per_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEED_1)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if " 01-acano" in line]
    assert len(rows) == 3
    assert all(row[0] == "PASS" for row in rows)
    assert "#1: inbound INVITE sip:2000@acano.steven.lab -> sip:stejanss@skype.lab" in out
    assert "1 labs, 3 calls: 3 passed, 0 failed, 0 lab errors" in out


def test_wrong_expectation_fails_with_the_diff_and_the_log_excerpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = wrong_copy(tmp_path)
    junit, results = tmp_path / "junit.xml", tmp_path / "results.json"
    code = main(["run", str(lab), "--junit-xml", str(junit), "--json", str(results)])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL 01-acano-srv-points-to-parent-domain call-1:" in out
    assert "  status: expected 200, got 504" in out
    # the Edge log record of that call, and its events line
    assert "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in out
    assert 'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"' in out
    events = [line.strip() for line in out.splitlines() if line.strip().startswith('{"time"')]
    assert len(events) == 1
    assert json.loads(events[0])["rule"] == "srv-not-in-domain"
    assert "1 failed" in out

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0")
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert suites[0].get("name") == "01-acano-srv-points-to-parent-domain"
    cases = suites[0].findall("testcase")
    assert len(cases) == 3
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 1
    failure = failures[0].find("failure")
    assert failure is not None
    assert failure.get("message") == "status: expected 200, got 504"
    assert "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in (failure.text or "")
    assert failures[0].get("name", "").startswith("call-1: inbound INVITE")

    doc = json.loads(results.read_text())
    assert doc["summary"] == {
        "labs": 1,
        "calls": 3,
        "passed": 2,
        "failed": 1,
        "lab_errors": 0,
        "ok": False,
    }
    first = doc["labs"][0]["calls"][0]
    assert first["verdict"] == "FAIL"
    assert first["expected"]["status"] == 200
    assert first["got"]["status"] == 504
    assert first["got"]["edge_log"] == "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    assert first["mismatches"] == [{"key": "status", "expected": 200, "got": 504}]
    third = doc["labs"][0]["calls"][2]
    assert third["got"]["ms_diagnostics"] == 1009
    assert third["got"]["ms_diagnostics_params"]["fqdn1"] == "vcse.steven.lab:5061"


@pytest.mark.parametrize(
    ("pattern", "rows"),
    [
        ("01-acano-srv-points-to-parent-domain call-2", ["#2:"]),
        ("seeds/01-acano* call-[13]", ["#1:", "#3:"]),
        ("seeds/03-cms", ["#1:", "#2:"]),
    ],
)
def test_k_selects_calls_by_substring_or_glob(
    pattern: str, rows: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(SCENARIOS), "-k", pattern]) == 0
    out = capsys.readouterr().out
    shown = [line.split() for line in out.splitlines() if line.startswith("PASS ")]
    assert [row[2] for row in shown] == rows
    assert all(row[1].startswith("seeds/") for row in shown)


def test_k_selecting_nothing_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEED_1), "-k", "no-such-call"]) == 2
    assert "selects no call" in capsys.readouterr().err


def test_bad_lab_file_exits_2_with_one_line_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "labs"
    folder.mkdir()
    shutil.copy(SEED_1, folder / "01-good.toml")
    text = SEED_1.read_text(encoding="utf-8").replace("machine = ", "machin = ", 1)
    (folder / "02-typo.toml").write_text(text, encoding="utf-8")
    assert main(["run", str(folder)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    line_no = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("machin")))
    assert lines[0].startswith(f"fedsim: error: {folder / '02-typo.toml'}:{line_no + 1}: ")
    assert "'machin'" in lines[0]
    assert captured.out == ""  # nothing ran


def test_missing_path_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_keep_logs_and_ladder_write_per_lab_and_per_call_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep, ladders = tmp_path / "keep", tmp_path / "ladders"
    assert main(["run", str(SEED_1), "--keep-logs", str(keep), "--ladder", str(ladders)]) == 0
    lab = keep / "01-acano-srv-points-to-parent-domain"
    assert (
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
        in (lab / "logs" / "edge.log").read_text()
    )
    assert len((lab / "logs" / "events.jsonl").read_text().splitlines()) >= 3
    assert (lab / "certs" / "vcse.steven.lab.crt").is_file()
    svgs = sorted(p.name for p in ladders.iterdir())
    assert svgs == [f"01-acano-srv-points-to-parent-domain--call-{n}.svg" for n in (1, 2, 3)]
    for name in svgs:
        ET.parse(ladders / name)  # well-formed
