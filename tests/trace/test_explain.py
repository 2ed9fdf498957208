"""``fedsim explain`` on a SIPStack trace or a capture: the ladder of each call, decoded."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.diagnostics import EdgeLogRecord, LogContext, format_edge_log, lookup_result
from simulator.trace import WireMessage, format_component_record, format_protocol_record
from simulator.trace.ladder import capture_ladder, trace_ladder
from simulator.trace.pcap import PcapWriter

REFUSED = "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"


def trace_of(messages: list[WireMessage]) -> str:
    """The trace the Edge would write: a TF_PROTOCOL record per message, and the TF_DIAG
    record of the refused call right after its INVITE, then a TF_COMPONENT line."""
    out = []
    seq = 0
    for i, message in enumerate(messages):
        seq += 1
        out.append(
            format_protocol_record(
                message, machine="sfvedge", pid=0x4DB8, tid=0x4DB8, seq=seq,
                correlation_id=1000 + i, instance_id=i,
            )
        )  # fmt: skip
        if message.data.startswith(b"INVITE") and b"refused-2" in message.data:
            seq += 1
            result = lookup_result(REFUSED)
            assert result is not None
            record = EdgeLogRecord(
                result=result,
                data=(("domain", "acano.steven.lab"), ("fqdn1", "vcse.steven.lab:5061")),
                fidelity="verbatim",
            )
            when = dt.datetime.fromtimestamp(message.when, dt.UTC)
            out.append(
                format_edge_log(
                    record,
                    LogContext(
                        machine="sfvedge", pid=0x4DB8, tid=0x4DB8, when=when, seq=seq,
                        correlation_id=1000 + i, start_line="INVITE sip:stejanss@skype.lab SIP/2.0",
                        call_id="refused-2@127.0.0.1", cseq="1 INVITE",
                        peer="vcse.steven.lab:38079",
                    ),
                )
            )  # fmt: skip
    seq += 1
    out.append(
        format_component_record(
            level="TL_ERROR", machine="sfvedge", pid=1, tid=1, when=messages[-1].when, seq=seq,
            text="Exit - route headers from untrusted source.",
            result=lookup_result("SIPPROXY_E_ROUTING"),
            diagnostic=(("LogType", "diagnostic"), ("Severity", "warning"),
                        ("Result-Code", "0xc3e93c5e SIPPROXY_E_ROUTING"),
                        ("SIP-Call-ID", "busy-4@127.0.0.1")),
        )
    )  # fmt: skip
    return "".join(out)


def blocks(text: str) -> dict[str, list[str]]:
    """Each call's lines, by the Call-ID of its heading."""
    out = {}
    for block in text.strip().split("\n\n"):
        heading, *lines = block.splitlines()
        assert heading.startswith("Call ")
        out[heading.split()[1]] = lines
    return out


def test_a_trace_is_one_ladder_per_call_in_order(calls: list[WireMessage]) -> None:
    ladders = blocks(trace_ladder(trace_of(calls)))
    assert list(ladders) == [
        "accept-1@127.0.0.1",
        "refused-2@127.0.0.1",
        "out-3@127.0.0.1",
        "busy-4@127.0.0.1",
    ]
    accepted = ladders["accept-1@127.0.0.1"]
    assert accepted[0] == (
        "  22:33:06.007  127.0.0.1:38078 -> Edge/external  INVITE sip:stejanss@skype.lab SIP/2.0"
    )
    assert accepted[1] == "  22:33:06.017  Edge/external -> 127.0.0.1:38078  SIP/2.0 100 Trying"
    assert [line.split("  ")[-1] for line in accepted] == [
        "INVITE sip:stejanss@skype.lab SIP/2.0",
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 200 OK",
        "ACK sip:stejanss@skype.lab SIP/2.0",
        "BYE sip:stejanss@skype.lab SIP/2.0",
        "SIP/2.0 200 OK",
    ]


def test_the_edge_record_is_decoded_where_it_falls(calls: list[WireMessage]) -> None:
    refused = blocks(trace_ladder(trace_of(calls)))["refused-2@127.0.0.1"]
    assert refused[0].endswith("INVITE sip:stejanss@skype.lab SIP/2.0")
    assert refused[1].endswith(f"Edge log warning: 0xc3e93d6f {REFUSED}")
    assert any(line.strip().startswith("Fix: ") for line in refused)
    assert refused[-2].endswith("SIP/2.0 504 Server time-out")


def test_the_clients_ms_diagnostics_is_decoded_under_its_response(
    calls: list[WireMessage],
) -> None:
    out = blocks(trace_ladder(trace_of(calls)))["out-3@127.0.0.1"]
    assert out[0] == (
        "  22:33:06.107  127.0.0.1:40112 -> Edge/internal  "
        "INVITE sip:stejanss.space@cms.steven.lab SIP/2.0"
    )
    assert out[1].endswith("Edge/internal -> 127.0.0.1:40112  SIP/2.0 504 Server time-out")
    assert out[2].strip() == "ms-diagnostics 1009: No match for domain in DNS SRV results"
    assert any("Fix: " in line for line in out[3:])


def test_a_component_record_joins_its_call(calls: list[WireMessage]) -> None:
    busy = blocks(trace_ladder(trace_of(calls)))["busy-4@127.0.0.1"]
    component = [line for line in busy if "Edge component" in line]
    assert component == [
        "  22:33:06.157  Edge component TL_ERROR: Exit - route headers from untrusted source. "
        "Result 0xC3E93C5E(SIPPROXY_E_ROUTING)"
    ]
    assert any("Meaning: " in line for line in busy)


def test_a_capture_is_the_same_ladder_with_addresses(
    tmp_path: Path, calls: list[WireMessage]
) -> None:
    writer = PcapWriter.create(str(tmp_path / "lab.pcapng"))
    for message in calls:
        writer.write(message)
    writer.close()
    ladders = blocks(capture_ladder((tmp_path / "lab.pcapng").read_bytes()))
    assert list(ladders) == list(blocks(trace_ladder(trace_of(calls))))
    assert ladders["busy-4@127.0.0.1"][1] == (
        "  22:33:06.137  127.0.0.1:41200 -> 127.0.0.1:5071  INVITE sip:2000@steven.lab SIP/2.0"
    )
    assert "ms-diagnostics 1009" in "\n".join(ladders["out-3@127.0.0.1"])


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path, calls: list[WireMessage]) -> dict[str, Path]:
    trace = tmp_path / "trace.log"
    trace.write_text(trace_of(calls), encoding="utf-8")
    capture = tmp_path / "lab.pcapng"
    writer = PcapWriter.create(str(capture))
    for message in calls:
        writer.write(message)
    writer.close()
    (tmp_path / "tls.pcap").write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + b"\0" * 8 + (
        b"\xff\xff\x00\x00\x01\x00\x00\x00"))  # fmt: skip
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)))
    (tmp_path / "empty.log").write_text("no records here\n", encoding="utf-8")
    return {"trace": trace, "capture": capture, "dir": tmp_path}


@pytest.mark.parametrize(
    "argv",
    [
        ["{trace}"],
        ["--trace", "{trace}"],
        ["{capture}"],
        ["--pcap", "{capture}"],
    ],
)
def test_explain_reads_a_trace_or_a_capture(
    files: dict[str, Path], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.format(trace=files["trace"], capture=files["capture"]) for a in argv]
    assert main(["explain", *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Call accept-1@127.0.0.1 (2026-11-21 UTC, 7 messages")
    assert "ms-diagnostics 1009" in out


def test_explain_reads_a_capture_on_standard_input(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(files["capture"].read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["explain"]) == 0
    assert capsys.readouterr().out.startswith("Call accept-1@127.0.0.1")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["{dir}/missing.log"], "{dir}/missing.log: no such file"),
        (["--trace", "{dir}/missing.log"], "{dir}/missing.log: no such file"),
        (["--trace", "{dir}"], "{dir}: a directory"),
        (["--trace", "{dir}/lab.pcapng"], "{dir}/lab.pcapng: a pcap/pcapng capture, not a trace"),
        (["--pcap", "{dir}/trace.log"], "{dir}/trace.log: a SIPStack trace, not a capture"),
        (["--pcap", "{dir}/noise.bin"], "{dir}/noise.bin: not a pcap or pcapng capture"),
        (["{dir}/noise.bin"], "{dir}/noise.bin: neither text (UTF-8) nor a pcap/pcapng"),
        (["{dir}/tls.pcap"], "{dir}/tls.pcap: no SIP message in clear in the capture"),
        (["--trace", "{dir}/empty.log"], "{dir}/empty.log: no SIPStack record"),
        (["--trace", "{dir}/trace.log", "more"], "give either TEXT or --trace/--pcap"),
        (["--trace", "{dir}/trace.log", "--pcap", "x"], "not allowed with argument"),
    ],
)
def test_a_bad_file_is_one_error_line(
    files: dict[str, Path],
    argv: list[str],
    error: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.format(dir=files["dir"]) for a in argv]
    assert main(["explain", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("fedsim: error: ")
    assert error.format(dir=files["dir"]) in captured.err


def test_the_installed_command_prints_the_ladder(files: dict[str, Path]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "explain", str(files["trace"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "Call refused-2@127.0.0.1" in done.stdout


def test_a_snooper_excerpt_of_microsofts_records_reads_as_ladders() -> None:
    """The reference's verbatim records (an OCS Edge's TF_PROTOCOL and TF_COMPONENT, the
    Cisco note's TF_DIAG) as a customer's Snooper export would hold them."""
    excerpt = Path(__file__).with_name("data") / "snooper-excerpt.log"
    ladders = blocks(trace_ladder(excerpt.read_text(encoding="utf-8")))
    assert ladders["017b06f397b14886bba5edf97ea206bd"] == [
        "  05:00:43.101  lyncservr.contoso.com:61182 -> Edge/internal  "
        "OPTIONS sip:Options_User@fabrikam.com SIP/2.0"
    ]
    routing = ladders["c00bc6180f284b948be61febf274d05e"]
    assert routing[0].endswith("Result 0xC3E93C5E(SIPPROXY_E_ROUTING)")
    assert any(line.strip().startswith("Fix: Send the request without") for line in routing)
    srv = ladders["f1b3ad5d-183b-4632-b210-c2f9bec71960"]
    assert srv[0] == (
        "  07:10:46.230  Edge log warning: 0xc3e93d6f "
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    )
