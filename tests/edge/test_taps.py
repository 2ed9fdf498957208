"""The recorder's wire taps: off by default, one counter and one order for every record of
trace.log, the Edge's randomness untouched, TF_COMPONENT records, failing files."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from simulator.diagnostics import ParsedEdgeRecord, lookup_result, parse_edge_log
from simulator.edge.recorder import Recorder
from simulator.edge.taps import FLUSH_SECONDS, TRACE_LOG, tap_for
from simulator.errors import FedsimError
from simulator.policy import handshake_refused
from simulator.sip import Request, parse_message
from simulator.trace import ComponentRecord, TraceMessage, parse_trace
from simulator.trace.pcap import read_capture

EDGE = ("127.0.0.1", 5061)
EXPE = ("127.0.0.1", 38078)
PEER = "vcse.steven.lab:38078"
INVITE = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:38078;branch=z9hG4bK-1\r\n"
    b"From: <sip:2000@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\n"
    b"Call-ID: taps-1@127.0.0.1\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)
REFUSAL = (
    b"SIP/2.0 504 Server time-out\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:38078;branch=z9hG4bK-1;ms-received-cid=100\r\n"
    b"From: <sip:2000@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>;tag=A1\r\n"
    b"Call-ID: taps-1@127.0.0.1\r\nCSeq: 7 INVITE\r\nServer: RTC/6.0\r\n"
    b"Content-Length: 0\r\n\r\n"
)
ACK = INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK")
OTHER = INVITE.replace(b"taps-1@", b"taps-2@")


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path / "logs", stderr=io.StringIO())
    yield rec
    rec.close()


def invite() -> Request:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return message


def record(rec: Recorder, request: Request) -> str:
    """One TF_DIAG record of ``request``, held as the Edge holds it for its reply."""
    text = rec.record_text(rec.template(handshake_refused("test"), PEER), request, rec.stamps()[0])
    rec.write({"kind": "test"}, text, hold=True)
    return text


def test_off_by_default_nothing_is_tapped_nor_written(recorder: Recorder) -> None:
    recorder.start_taps(trace=False, pcap=None)
    assert recorder.taps is None
    assert tap_for(recorder.taps, "external", EDGE, EXPE, PEER, "100") is None
    record(recorder, invite())
    recorder.component("Exit - route headers from untrusted source.")
    recorder.close()
    assert not (recorder.files.log_dir / TRACE_LOG).exists()


def test_messages_and_records_share_one_counter_and_one_order(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.start_taps(trace=True, pcap=tmp_path / "lab.pcapng", seed=1)
    tap = tap_for(recorder.taps, "external", EDGE, EXPE, PEER, "100")
    assert tap is not None
    tap("in", INVITE)
    diag = record(recorder, invite())
    tap("out", REFUSAL)
    tap("in", ACK)
    tap("in", OTHER)
    recorder.close()
    records = parse_trace((recorder.files.log_dir / TRACE_LOG).read_text(encoding="utf-8"))
    assert [type(r) for r in records] == [
        TraceMessage,
        ParsedEdgeRecord,
        TraceMessage,
        TraceMessage,
        TraceMessage,
    ]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    messages = [r for r in records if isinstance(r, TraceMessage)]
    assert [m.data for m in messages] == [INVITE, REFUSAL, ACK, OTHER]
    assert [(m.direction, m.side, m.peer) for m in messages[:2]] == [
        ("incoming", "external", PEER),
        ("outgoing", "external", PEER),
    ]
    # One transaction (the INVITE, its 504, its ACK, its record), one correlation id.
    parsed = records[1]
    assert isinstance(parsed, ParsedEdgeRecord)
    ids = {m.correlation_id for m in messages[:3]}
    assert ids == {parsed.correlation_id}
    assert messages[3].correlation_id not in ids  # another call
    assert [m.instance_id for m in messages] == [1, 2, 3, 4]
    # edge.log: the TF_DIAG record alone, the same text.
    assert recorder.files.edge_log_path.read_text(encoding="utf-8") == diag
    # The capture: the same messages.
    capture = read_capture((tmp_path / "lab.pcapng").read_bytes())
    assert [m.data for m in capture] == [INVITE, REFUSAL, ACK, OTHER]
    assert capture[0].source == EXPE
    assert capture[0].destination == EDGE


def test_the_trace_follows_edge_log_and_both_files_reach_the_disk_every_second(
    recorder: Recorder, tmp_path: Path
) -> None:
    """trace.log is written with edge.log (the events held for a reply, right before it
    leaves); the capture 64 KiB at a time; both at least once a second, and at close."""
    pcap = tmp_path / "lab.pcapng"
    recorder.start_taps(trace=True, pcap=pcap)
    taps = recorder.taps
    assert taps is not None
    tap = tap_for(taps, "external", EDGE, EXPE, PEER, "100")
    assert tap is not None
    trace = recorder.files.log_dir / TRACE_LOG
    tap("in", INVITE)
    recorder.flush()  # nothing held for a reply: nothing written
    assert trace.read_text(encoding="utf-8") == ""
    record(recorder, invite())
    recorder.flush()  # the event of a reply: edge.log and trace.log together
    assert [type(r) for r in parse_trace(trace.read_text(encoding="utf-8"))] == [
        TraceMessage,
        ParsedEdgeRecord,
    ]
    assert pcap.read_bytes() == b""
    tap("in", ACK)

    async def a_quiet_second() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(taps.flush_every, FLUSH_SECONDS)
            await trio.sleep(FLUSH_SECONDS * 1.5)
            nursery.cancel_scope.cancel()

    trio.run(a_quiet_second, clock=MockClock(autojump_threshold=0))
    assert [m.data for m in read_capture(pcap.read_bytes())] == [INVITE, ACK]
    assert trace.read_text(encoding="utf-8").count("$$end_record") == 3
    tap("in", OTHER)
    recorder.close()
    assert len(read_capture(pcap.read_bytes())) == 3
    assert trace.read_text(encoding="utf-8").count("$$end_record") == 4


@pytest.mark.parametrize("trace", [False, True])
def test_the_trace_takes_nothing_from_the_edges_randomness(recorder: Recorder, trace: bool) -> None:
    """The Edge's RNG draws one correlation id per record, trace or not: the tags, branches
    and SRV order it draws next stay the same, so a traced lab sends the same bytes."""
    draws = count()
    recorder.correlation = lambda: next(draws)
    recorder.start_taps(trace=trace, pcap=None, seed=5)
    for _ in range(3):
        record(recorder, invite())
    assert next(draws) == 3


def test_a_seed_gives_the_same_correlation_ids(tmp_path: Path) -> None:
    def trace_of(run: str) -> list[int | None]:
        rec = Recorder(tmp_path / run, stderr=io.StringIO())
        rec.start_taps(trace=True, pcap=None, seed=17)
        tap = tap_for(rec.taps, "internal", EDGE, EXPE, "127.0.0.1:38078", "100")
        assert tap is not None
        tap("in", INVITE)
        tap("in", OTHER)
        rec.close()
        text = (tmp_path / run / TRACE_LOG).read_text(encoding="utf-8")
        return [r.correlation_id for r in parse_trace(text) if isinstance(r, TraceMessage)]

    assert trace_of("one") == trace_of("two")


def test_a_component_record_goes_to_the_trace_in_the_references_shape(
    recorder: Recorder,
) -> None:
    recorder.start_taps(trace=True, pcap=None)
    result = lookup_result("SIPPROXY_E_ROUTING")
    assert result is not None
    recorder.component("Exit - route headers from untrusted source.", result, request=invite())
    recorder.close()
    text = (recorder.files.log_dir / TRACE_LOG).read_text(encoding="utf-8")
    # Reference §4.1, with this Edge's machine, process, time and sequence.
    assert re.fullmatch(
        r"TL_ERROR\(TF_COMPONENT\) \[sfvedge\\sfvedge\][0-9A-F]{4}\.[0-9A-F]{4}::"
        r"\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\.\d{3}\.00000001 "
        r"\(SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest\.cpp\(2440\)\)"
        r"\( [0-9A-F]{16} \) Exit - route headers from untrusted source\. "
        r"Result 0xC3E93C5E\(SIPPROXY_E_ROUTING\)\n"
        r"LogType: diagnostic\nSeverity: warning\n"
        r"Text: Cannot process Route headers from a non-trusted source, or with first Route "
        r"field in the set not matching the connection on which the request arrived\n"
        r"Result-Code: 0xc3e93c5e SIPPROXY_E_ROUTING\n"
        r"SIP-Start-Line: INVITE sip:stejanss@skype\.lab SIP/2\.0\n"
        r"SIP-Call-ID: taps-1@127\.0\.0\.1\nSIP-CSeq: 7 INVITE\n\$\$end_record\n",
        text,
    ), text
    (component,) = parse_trace(text)
    assert isinstance(component, ComponentRecord)
    assert component.result_symbol == "SIPPROXY_E_ROUTING"
    assert component.diagnostic is not None
    assert component.diagnostic.call_id == "taps-1@127.0.0.1"
    # edge.log keeps the TF_DIAG records only.
    assert parse_edge_log(recorder.files.edge_log_path.read_text(encoding="utf-8")) == []


def test_without_the_trace_a_component_record_is_nothing(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.start_taps(trace=False, pcap=tmp_path / "lab.pcapng")
    recorder.component("Exit - route headers from untrusted source.")
    recorder.close()
    assert not (recorder.files.log_dir / TRACE_LOG).exists()


def test_a_full_disk_costs_records_not_the_edge(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / TRACE_LOG).symlink_to("/dev/full")  # ENOSPC on every write
    stderr = io.StringIO()
    rec = Recorder(logs, stderr=stderr)
    rec.start_taps(trace=True, pcap=Path("/dev/full"))
    tap = tap_for(rec.taps, "external", EDGE, EXPE, PEER, "100")
    assert tap is not None
    assert rec.taps is not None
    for _ in range(3):
        tap("in", INVITE)
        rec.flush()
    tap.closed()
    rec.close()
    assert rec.taps.trace_lost == 3
    warnings = stderr.getvalue().splitlines()
    # Once per failure streak each, not once per write.
    assert sum("cannot write" in w and TRACE_LOG in w for w in warnings) == 1
    assert sum("cannot write the capture" in w for w in warnings) == 1


def test_an_address_that_is_not_ip_is_traced_but_not_captured(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.start_taps(trace=True, pcap=tmp_path / "lab.pcapng")
    tap = tap_for(recorder.taps, "external", ("edge.example", 5061), EXPE, PEER, "100")
    assert tap is not None
    assert recorder.taps is not None
    tap("in", INVITE)
    recorder.close()
    assert recorder.taps.pcap_skipped == 1
    assert read_capture((tmp_path / "lab.pcapng").read_bytes()) == []
    assert "INVITE sip:" in (recorder.files.log_dir / TRACE_LOG).read_text(encoding="utf-8")


@pytest.mark.parametrize("bad", ["missing-dir", "a-directory", "trace-is-a-directory"])
def test_a_file_that_cannot_be_created_is_one_error(recorder: Recorder, bad: str) -> None:
    logs = recorder.files.log_dir
    pcap: Path | None = logs / "no" / "lab.pcapng"
    if bad == "a-directory":
        pcap = logs
    elif bad == "trace-is-a-directory":
        (logs / TRACE_LOG).mkdir()
        pcap = None
    with pytest.raises(FedsimError) as caught:
        recorder.start_taps(trace=bad == "trace-is-a-directory", pcap=pcap)
    message = str(caught.value)
    assert "\n" not in message
    assert ("--log-dir" if pcap is None else "--pcap") in message
    assert recorder.taps is None
