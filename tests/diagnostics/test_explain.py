"""fedsim explain: pasted artefacts in, cause and fix out."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.diagnostics import MS_DIAGNOSTICS, RESULT_CODES, DiagnosticsParseError
from simulator.diagnostics.explain import explain_text

SEED = "seeds/000_dd4cf63e5627e786.txt"
HEADER = 'ms-diagnostics: 1008;reason="Unable to resolve DNS SRV record";source="sip.skype.lab"'


def test_explains_a_bare_value() -> None:
    out = explain_text('1008;reason="Unable to resolve DNS SRV record";source="sip.skype.lab"')
    assert out.startswith("ms-diagnostics 1008: Unable to resolve DNS SRV record\n")
    assert f"Fix: {MS_DIAGNOSTICS[1008].fix}" in out
    assert "source = sip.skype.lab" in out


def test_explains_both_edge_records_of_the_seed(shared_dir: Path) -> None:
    seed = (shared_dir / SEED).read_text(encoding="utf-8")
    out = explain_text(seed)
    for symbol in (
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
    ):
        assert symbol in out
        assert RESULT_CODES[symbol].fix in out
    assert "expected-fqdn = vcse.acano.steven.lab" in out


def test_explains_the_headers_of_a_pasted_response() -> None:
    response = (
        'SIP/2.0 504 Server time-out\r\nms-diagnostics: 1010;reason="Certificate trust with '
        'another server could not be established";HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)";'
        'source="sip.skype.lab"\r\nServer: RTC/6.0\r\n\r\n'
    )
    out = explain_text(response)
    assert "ms-diagnostics 1010" in out
    assert "HRESULT = 0x80090322(SEC_E_WRONG_PRINCIPAL)" in out


def test_unknown_codes_and_markers_are_said_to_be_unknown() -> None:
    assert "Not in fedsim's catalogue" in explain_text('99999;reason="x"')
    record = (
        "$$begin_record\nSeverity: warning\nText: t\n"
        "Result-Code: 0x00000000 EMU_UNVERIFIED_SOMETHING_NEW\n$$end_record\n"
    )
    assert "fedsim marker for an unknown code" in explain_text(record)


def test_nothing_recognisable_is_a_fedsim_error() -> None:
    with pytest.raises(DiagnosticsParseError):
        explain_text("hello world")


# --- the command: TEXT, nothing, or '-' -------------------------------------------


@pytest.mark.parametrize("argv", [["explain", "-"], ["explain"]], ids=["dash", "no-argument"])
def test_dash_and_no_argument_read_standard_input(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(HEADER + "\n"))
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out == explain_text(HEADER + "\n")
    assert out.startswith("ms-diagnostics 1008: Unable to resolve DNS SRV record\n")


def test_a_dash_among_words_is_pasted_text_not_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not read"))
    assert main(["explain", "-", HEADER]) == 0
    assert "ms-diagnostics 1008" in capsys.readouterr().out
    assert sys.stdin.read() == "not read"


def test_empty_standard_input_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["explain", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: nothing to explain")
    assert err.count("\n") == 1


def test_dash_reads_the_pipe_of_the_real_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "explain", "-"],
        input=HEADER + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == explain_text(HEADER + "\n")
