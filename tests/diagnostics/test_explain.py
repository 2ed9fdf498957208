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


# --- honest labels (issue 14): explain never calls verbatim what the reference does not ---

HONESTY = [
    (
        '1014;reason="Unable to resolve DNS A record.";source="sip.skype.lab"',
        ("its wire form was never captured", "status: SIP 504 is inferred"),
        ("seen verbatim on the wire",),
    ),
    (
        '1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";'
        'fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"',
        ("reason: seen verbatim on the wire", "parameters: as seen verbatim", "SIP 504, seen"),
        ("a form no source shows", "inferred"),
    ),
    (
        '1009;reason="No match for domain in DNS SRV results";domain="d.lab";'
        'fqdn1="a.lab:5061";fqdn2="b.lab:5061";source="sip.skype.lab"',
        ("fedsim's numbering of further targets",),
        ("a form no source shows",),
    ),
    (
        '1010;reason="Certificate trust with another server could not be established";'
        'tls-target="vcse.cms.steven.lab";PeerServer="vcse.cms.steven.lab";'
        'HRESULT="0x800B0109(CERT_E_UNTRUSTEDROOT)";source="sip.skype.lab"',
        ("parameters: a form no source shows", "fedsim builds such variants itself"),
        ("parameters: as seen verbatim",),
    ),
    (
        '1047;reason="Failed to complete TLS negotiation with a federated peer server";'
        'WinsockFailureCode="10054(WSAECONNRESET)";'
        'WinsockFailureDescription="The peer forced closure of the connection";source="e.lab"',
        ("parameters: as seen verbatim", "status: SIP 504 is inferred"),
        ("a form no source shows",),
    ),
    (
        '1047;reason="Failed to complete TLS negotiation with a federated peer server";'
        'HRESULT="0x80090325(SEC_E_UNTRUSTED_ROOT)";source="e.lab"',
        ("parameters: a form no source shows",),
        ("parameters: as seen verbatim",),
    ),
    (
        '1046;reason="Failed to connect to a federated peer server";'
        'WinsockFailureCode="10061(WSAECONNREFUSED)";source="e.lab"',
        ("reason: unverified",),
        ("seen verbatim",),
    ),
    (
        '1034;reason="Previous hop federated peer did not report diagnostic information";'
        'Domain="steven.lab";PeerServer="vcse.steven.lab";source="sip.skype.lab"',
        ("parameters: as seen verbatim", "the partner's own, passed through"),
        ("usually on SIP",),
    ),
]


@pytest.mark.parametrize(("header", "says", "never"), HONESTY)
def test_explain_labels_each_part_as_the_reference_does(
    header: str, says: tuple[str, ...], never: tuple[str, ...]
) -> None:
    text = explain_text(header)
    for part in says:
        assert part in text
    for part in never:
        assert part not in text


@pytest.mark.parametrize("code", sorted(MS_DIAGNOSTICS))
def test_no_reason_is_called_wire_verbatim_unless_a_trace_shows_it(code: int) -> None:
    entry = MS_DIAGNOSTICS[code]
    text = explain_text(f'{code};reason="{entry.reason}";source="e.lab"')
    assert ("reason: seen verbatim on the wire" in text) == (entry.reason_origin == "wire")
    assert "usually on SIP" not in text


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_of_labels_matches_the_catalogue() -> None:
    """The README's table says for each id what the catalogue says (so they cannot drift)."""
    rows = {}
    for line in README.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            rows[int(cells[0])] = cells
    assert set(rows) >= {1008, 1009, 1010, 1014, 1034, 1046, 1047}
    origin = {"wire": "wire", "spec": "spec table only", "unverified": "unverified"}
    for code, (_, reason, _params, status) in rows.items():
        entry = MS_DIAGNOSTICS[code]
        assert reason == origin[entry.reason_origin], code
        if entry.status is not None:
            assert status.startswith(f"{entry.status} {entry.status_fidelity}"), code
