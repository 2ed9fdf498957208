"""The SIPStack trace: records in the reference's shape, read back into the wire's bytes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.diagnostics import (
    DiagnosticsParseError,
    EdgeLogRecord,
    LogContext,
    ParsedEdgeRecord,
    edge_log_stamp,
    format_edge_log,
    lookup_result,
)
from simulator.sip import parse_message
from simulator.trace import (
    DIRECTIONS,
    ComponentRecord,
    Direction,
    Side,
    TraceMessage,
    WireMessage,
    format_component_record,
    format_protocol_record,
    parse_trace,
    transaction_key,
)

GEN = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Microsoft, "Test-CsFederatedPartner fails" (reference §4.1): the TF_PROTOCOL record
# and the TF_COMPONENT record with its diagnostic block, verbatim.
MS_PROTOCOL = """\
TL_INFO(TF_PROTOCOL) [0]06E4.0EB4::01/18/2012-05:00:43.101.00005386 (SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record
Trace-Correlation-Id: 2003888399
Instance-Id: 0000C23F
Direction: incoming;source="internal edge";destination="external edge"
Peer: lyncservr.contoso.com:61182
Message-Type: request
Start-Line: OPTIONS sip:Options_User@fabrikam.com SIP/2.0
To: <sip:Options_User@fabrikam.com>
CSeq: 1 OPTIONS
Call-ID: 017b06f397b14886bba5edf97ea206bd
MAX-FORWARDS: 70
VIA: SIP/2.0/TLS 10.10.10.10:61182;branch=z9hG4bK6de49c9a
ROUTE: <sip:accessedge.fabrikam.com;transport=tls;lr>;ms-edge-route
CONTACT: <sip:lyncserver.contoso.com;transport=Tls>
CONTENT-LENGTH: 0
USER-AGENT: RTCC/4.0.0.0
Message-Body: -
$$end_record
"""  # noqa: E501
MS_COMPONENT = """\
TL_ERROR(TF_COMPONENT) [0]0860.0CDC::01/18/2012-05:07:42.622.000d0b31 (SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest.cpp(2440))( 00000000028FDD70 ) Exit - route headers from untrusted source. Result 0xC3E93C5E(SIPPROXY_E_ROUTING)
LogType: diagnostic
Severity: warning
Text: Cannot process Route headers from a non-trusted source, or with first Route field in the set not matching the connection on which the request arrived
Result-Code: 0xc3e93c5e SIPPROXY_E_ROUTING
SIP-Start-Line: OPTIONS sip:Options_User@fabrikam.com SIP/2.0
SIP-Call-ID: c00bc6180f284b948be61febf274d05e
SIP-CSeq: 1 OPTIONS
$$end_record
"""  # noqa: E501
# [CISCO] (reference §4.1), as fedsim's edge.log writes it.
CISCO_DIAG = """\
TL_WARN(TF_DIAG) [sfvedge\\sfvedge]0584.0A44::03/02/2017-07:10:46.230.0000773E (SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(830)) [156659184] $$begin_record
Severity: warning
Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain
Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH
SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0
SIP-Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960
SIP-CSeq: 2066245576 INVITE
Peer: vcse.steven.lab:25002
Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"
$$end_record
"""  # noqa: E501

WHEN = dt.datetime(2026, 11, 21, 22, 33, 6, 7000, tzinfo=dt.UTC).timestamp()

CALL = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:38078;branch=z9hG4bK-1;received=127.0.0.1\r\n"
    b"From: <sip:2000@acano.steven.lab>;tag=1\r\n"
    b"To: <sip:stejanss@skype.lab>\r\n"
    b"Call-ID: 1-20295@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 43\r\n"
    b"\r\n"
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\na=sendrecv\r\n"
)


def wire(
    data: bytes,
    *,
    when: float = WHEN,
    direction: Direction = "incoming",
    side: Side = "external",
    remote: tuple[str, int] = ("127.0.0.1", 38078),
) -> WireMessage:
    return WireMessage(when, direction, side, ("127.0.0.1", 5061), remote, "cid-1", data)


# Generated messages: a start line, header lines of any UTF-8 text, a body of text
# lines (CRLF, as SDP) or of any bytes, with a Content-Length that is right, wrong,
# doubled or absent.
TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40
)
start_lines = st.one_of(
    st.builds(
        lambda m, u: f"{m} {u} SIP/2.0",
        st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "MESSAGE", "SERVICE"]),
        line_text.filter(lambda s: " " not in s).map(lambda s: "sip:" + s),
    ),
    st.builds(lambda c, r: f"SIP/2.0 {c} {r}", st.integers(100, 699), line_text),
)
header_lines = st.builds(
    lambda n, v: f"{n}: {v}", st.text(TOKEN, min_size=1, max_size=12), line_text
)
bodies = st.one_of(
    st.just(b""),
    st.lists(line_text, max_size=6).map(lambda ls: "".join(f"{x}\r\n" for x in ls).encode()),
    line_text.map(str.encode),
    st.binary(max_size=80),
)


@st.composite
def sip_messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(header_lines, max_size=8))
    body = draw(bodies)
    length = draw(st.sampled_from(["right", "right", "compact", "wrong", "twice", "none"]))
    if length in ("right", "twice"):
        headers.append(f"Content-Length: {len(body)}")
    if length == "twice":
        headers.insert(0, f"content-length : {len(body)}")
    if length == "compact":
        headers.append(f"l: {len(body)}")
    if length == "wrong":
        headers.append(f"Content-Length: {len(body) + 1}")
    head = "\r\n".join([draw(start_lines), *headers]) + "\r\n\r\n"
    return head.encode() + body


def record(message: WireMessage, *, seq: int = 1, peer: str | None = None) -> str:
    return format_protocol_record(
        message,
        machine="sfvedge",
        pid=0x4DB8,
        tid=0x4DB8,
        seq=seq,
        correlation_id=3679182707,
        instance_id=0xC23F,
        peer=peer,
    )


def only_message(text: str) -> TraceMessage:
    (parsed,) = parse_trace(text)
    assert isinstance(parsed, TraceMessage)
    return parsed


# --- the shape -----------------------------------------------------------------


def test_a_received_invite_is_the_reference_record_line_for_line() -> None:
    text = record(wire(CALL, when=WHEN), peer="vcse.steven.lab:38078")
    lines = text.splitlines()
    assert lines[0] == (
        "TL_INFO(TF_PROTOCOL) [sfvedge\\sfvedge]4DB8.4DB8::11/21/2026-22:33:06.007.00000001 "
        "(SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record"
    )
    assert lines[1:7] == [
        "Trace-Correlation-Id: 3679182707",
        "Instance-Id: 0000C23F",
        'Direction: incoming;source="external edge";destination="internal edge"',
        "Peer: vcse.steven.lab:38078",
        "Message-Type: request",
        "Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0",
    ]
    header_lines = CALL.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    assert lines[7 : 7 + len(header_lines)] == header_lines
    assert lines[7 + len(header_lines)] == "Message-Body: v=0"
    assert lines[-1] == "$$end_record"
    assert text.endswith("\n")
    assert "\r" not in text


@pytest.mark.parametrize(
    ("direction", "side", "shown"),
    [
        ("incoming", "internal", 'incoming;source="internal edge";destination="external edge"'),
        ("incoming", "external", 'incoming;source="external edge";destination="internal edge"'),
        ("outgoing", "external", 'outgoing;source="internal edge";destination="external edge"'),
        ("outgoing", "internal", 'outgoing;source="external edge";destination="internal edge"'),
    ],
)
def test_each_direction_and_side_reads_back(direction: Direction, side: Side, shown: str) -> None:
    text = record(wire(CALL, direction=direction, side=side))
    assert f"Direction: {shown}\n" in text
    assert DIRECTIONS[direction, side] == shown
    parsed = only_message(text)
    assert (parsed.direction, parsed.side) == (direction, side)


def test_the_verbatim_direction_is_the_references() -> None:
    assert DIRECTIONS["incoming", "internal"] in MS_PROTOCOL


def test_an_empty_body_is_a_dash_and_a_response_says_so() -> None:
    data = b"SIP/2.0 100 Trying\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    text = record(wire(data, direction="outgoing"))
    assert "Message-Type: response\n" in text
    assert "Message-Body: -\n$$end_record\n" in text
    assert only_message(text).data == data


@pytest.mark.parametrize(
    ("remote", "peer"),
    [(("192.0.2.7", 25002), "192.0.2.7:25002"), (("2001:db8::7", 25002), "[2001:db8::7]:25002")],
)
def test_peer_defaults_to_the_remote_address(remote: tuple[str, int], peer: str) -> None:
    parsed = only_message(record(wire(CALL, remote=remote)))
    assert parsed.peer == peer
    assert parsed.remote == remote


@GEN
@given(st.floats(min_value=0, max_value=4102444800, allow_nan=False))
def test_the_time_is_printed_as_the_diagnostic_records_print_theirs(when: float) -> None:
    text = record(wire(CALL, when=when))
    stamp = edge_log_stamp(dt.datetime.fromtimestamp(when, dt.UTC))
    assert text.startswith(f"TL_INFO(TF_PROTOCOL) [sfvedge\\sfvedge]4DB8.4DB8::{stamp}.")


def test_time_sequence_and_ids_read_back() -> None:
    parsed = only_message(record(wire(CALL, when=WHEN), seq=0xABCDEF12))
    assert parsed.when == dt.datetime.fromtimestamp(WHEN, dt.UTC).replace(microsecond=7000)
    assert (parsed.seq, parsed.correlation_id, parsed.instance_id) == (
        0xABCDEF12,
        3679182707,
        0xC23F,
    )


# --- byte for byte -------------------------------------------------------------

IRREGULAR = [
    pytest.param(b"SIP/2.0 200 OK\r\nl: 3\r\n\r\n\xff\x00a", id="binary-body"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nX: \xe9\r\nl: 0\r\n\r\n", id="latin1-header"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nl: 4\r\n\r\na\nb\n", id="bare-lf-body"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nl: 9\r\n\r\nab", id="short-body"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\n\r\nbody", id="no-content-length"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nMessage-Body: x\r\nl: 0\r\n\r\n", id="body-header"),
    pytest.param(b"MESSAGE sip:a SIP/2.0\r\nl: 14\r\n\r\n$$end_record\r\n", id="marker"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n", id="no-blank-line"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nX: a\rb\r\nl: 0\r\n\r\n", id="bare-cr"),
    pytest.param(b"OPTIONS sip:a SIP/2.0\r\nX: a\r\n   \r\nl: 0\r\n\r\n", id="blank-fold"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01", id="tls-on-the-port"),
]


@pytest.mark.parametrize("data", IRREGULAR)
def test_what_the_plain_form_cannot_carry_goes_in_base64_and_reads_back(data: bytes) -> None:
    text = record(wire(data))
    assert "\nFedsim-Wire-Base64: " in text
    assert text.count("$$begin_record") == text.count("$$end_record") == 1
    parsed = only_message(text)
    assert (parsed.data, parsed.exact) == (data, True)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"OPTIONS sip:a SIP/2.0\r\nl: 1\r\n\r\n-", id="dash-body"),
        pytest.param(b"MESSAGE sip:a SIP/2.0\r\nl: 3\r\n\r\nabc", id="no-final-crlf"),
        pytest.param(b"MESSAGE sip:a SIP/2.0\r\nl: 4\r\n\r\n\r\n\r\n", id="blank-lines"),
        pytest.param("MESSAGE sip:a SIP/2.0\r\nl: 7\r\n\r\nhé\r\né".encode(), id="utf-8"),
        pytest.param(b"OPTIONS sip:a SIP/2.0\r\nl: 00\r\n\r\n", id="zero-zero"),
        pytest.param(b"OPTIONS  sip:a SIP/2.0 \r\nX:  a \r\n b\r\nl: 0\r\n\r\n", id="spaces"),
    ],
)
def test_edge_cases_of_the_plain_form_read_back_exactly(data: bytes) -> None:
    text = record(wire(data))
    assert "Fedsim-Wire-Base64" not in text
    assert only_message(text).data == data


@GEN
@given(sip_messages())
def test_any_sip_message_reads_back_byte_for_byte(data: bytes) -> None:
    parsed = only_message(record(wire(data)))
    assert parsed.data == data
    assert parsed.exact


@GEN
@given(st.binary(max_size=600))
def test_any_bytes_read_back_byte_for_byte(data: bytes) -> None:
    assert only_message(record(wire(data))).data == data


@GEN
@given(st.lists(sip_messages(), min_size=1, max_size=5))
def test_a_trace_of_many_messages_reads_back_in_order(messages: list[bytes]) -> None:
    text = "".join(record(wire(data), seq=i) for i, data in enumerate(messages))
    parsed = parse_trace(text)
    assert [p.data for p in parsed if isinstance(p, TraceMessage)] == messages


def test_a_trace_saved_with_crlf_line_ends_reads_the_same() -> None:
    text = record(wire(CALL))
    assert only_message(text.replace("\n", "\r\n")).data == CALL


def test_a_generated_message_still_parses_as_sip_after_the_round_trip() -> None:
    parsed = only_message(record(wire(CALL)))
    assert parse_message(parsed.data) == parse_message(CALL)


# --- reading what others wrote -----------------------------------------------


def test_microsofts_protocol_record_reads_as_the_options_it_shows() -> None:
    parsed = only_message(MS_PROTOCOL)
    assert (parsed.direction, parsed.side) == ("incoming", "internal")
    assert (parsed.peer, parsed.remote) == (
        "lyncservr.contoso.com:61182",
        ("lyncservr.contoso.com", 61182),
    )
    assert (parsed.correlation_id, parsed.instance_id, parsed.seq) == (2003888399, 0xC23F, 0x5386)
    assert parsed.when == dt.datetime(2012, 1, 18, 5, 0, 43, 101000, tzinfo=dt.UTC)
    assert parsed.exact
    # Microsoft's excerpt has no From: the bytes are what it shows, not a valid request.
    assert b"\r\nCall-ID: 017b06f397b14886bba5edf97ea206bd\r\n" in parsed.data
    assert parsed.data.startswith(b"OPTIONS sip:Options_User@fabrikam.com SIP/2.0\r\nTo: ")
    assert parsed.data.endswith(b"USER-AGENT: RTCC/4.0.0.0\r\n\r\n")


def test_microsofts_component_record_reads_with_its_diagnostic_block() -> None:
    (parsed,) = parse_trace(MS_COMPONENT)
    assert isinstance(parsed, ComponentRecord)
    assert parsed.level == "TL_ERROR"
    assert parsed.location == "SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest.cpp(2440)"
    assert parsed.object_id == "00000000028FDD70"
    assert parsed.text == "Exit - route headers from untrusted source."
    assert (parsed.result_hex, parsed.result_symbol) == ("0xC3E93C5E", "SIPPROXY_E_ROUTING")
    assert parsed.diagnostic is not None
    assert parsed.diagnostic.call_id == "c00bc6180f284b948be61febf274d05e"
    assert parsed.diagnostic.result == lookup_result("SIPPROXY_E_ROUTING")


def test_the_component_formatter_writes_the_references_line() -> None:
    when = dt.datetime(2012, 1, 18, 5, 7, 42, 622000, tzinfo=dt.UTC).timestamp()
    (parsed,) = parse_trace(MS_COMPONENT)
    assert isinstance(parsed, ComponentRecord)
    assert parsed.diagnostic is not None
    text = format_component_record(
        level="TL_ERROR",
        machine="sfvedge",
        pid=0x0860,
        tid=0x0CDC,
        when=when,
        seq=0xD0B31,
        text="Exit - route headers from untrusted source.",
        result=lookup_result("SIPPROXY_E_ROUTING"),
        object_id=0x28FDD70,
        diagnostic=parsed.diagnostic.fields,
    )
    ours = text.splitlines()
    theirs = MS_COMPONENT.splitlines()
    assert ours[0] == theirs[0].replace("[0]", "[sfvedge\\sfvedge]").replace("000d0b31", "000D0B31")
    assert ours[1:] == theirs[1:]


def test_the_cisco_diagnostic_record_reads_through_parse_edge_log() -> None:
    (parsed,) = parse_trace(CISCO_DIAG)
    assert isinstance(parsed, ParsedEdgeRecord)
    assert parsed.result_symbol == "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    assert parsed.correlation_id == 156659184
    assert parsed.call_id == "f1b3ad5d-183b-4632-b210-c2f9bec71960"


def test_records_of_all_three_kinds_interleave_in_file_order() -> None:
    ours = record(wire(CALL), seq=1)
    diag = format_edge_log(
        lookup_record(),
        LogContext(
            machine="sfvedge",
            pid=1,
            tid=1,
            when=dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
            seq=2,
            correlation_id=7,
            start_line="INVITE sip:stejanss@skype.lab SIP/2.0",
            call_id="1-20295@127.0.0.1",
            cseq="1 INVITE",
            peer="vcse.steven.lab:38078",
        ),
    )
    text = MS_COMPONENT + ours + diag + MS_PROTOCOL + CISCO_DIAG + MS_COMPONENT
    kinds = [type(r).__name__ for r in parse_trace(text)]
    assert kinds == [
        "ComponentRecord",
        "TraceMessage",
        "ParsedEdgeRecord",
        "TraceMessage",
        "ParsedEdgeRecord",
        "ComponentRecord",
    ]


def lookup_record() -> EdgeLogRecord:
    result = lookup_result("SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH")
    assert result is not None
    return EdgeLogRecord(
        result=result,
        data=(("domain", "acano.steven.lab"), ("fqdn1", "vcse.steven.lab:5061")),
        fidelity="verbatim",
    )


def test_a_pasted_record_with_a_stripped_body_is_kept_but_not_exact() -> None:
    text = record(wire(CALL)).replace("a=sendrecv\n", "a=sendrecv   \n")
    parsed = only_message(text)
    assert not parsed.exact
    assert b"a=sendrecv" in parsed.data


def test_a_record_that_never_ends_is_one_clear_error() -> None:
    text = record(wire(CALL)).replace("$$end_record\n", "")
    with pytest.raises(DiagnosticsParseError, match="never ends"):
        parse_trace(text)


def test_a_protocol_record_without_start_line_is_one_clear_error() -> None:
    with pytest.raises(DiagnosticsParseError, match="no Start-Line"):
        parse_trace(
            "TL_INFO(TF_PROTOCOL) [0]06E4.0EB4::01/18/2012-05:00:43.101.00005386 "
            "(SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record\n"
            "Message-Type: request\n$$end_record\n"
        )


def test_the_readmes_example_reads_back_and_renders_again_to_the_same_text() -> None:
    """README section 8 shows a refused INVITE as trace.log holds it: the INVITE, the
    TF_DIAG record, the 504. Each message reads back exact and renders to its own text."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("TL_INFO(TF_PROTOCOL) [sfvedge")
    example = readme[start : readme.index("\n```", start) + 1]
    records = parse_trace(example)
    assert [type(r) for r in records] == [TraceMessage, ParsedEdgeRecord, TraceMessage]
    invite, diag, refusal = records
    assert isinstance(invite, TraceMessage)
    assert isinstance(diag, ParsedEdgeRecord)
    assert isinstance(refusal, TraceMessage)
    assert parse_message(invite.data).call_id == diag.call_id
    assert parse_message(refusal.data).start_line == "SIP/2.0 504 Server time-out"
    assert invite.correlation_id == refusal.correlation_id == diag.correlation_id
    assert [invite.seq, diag.seq, refusal.seq] == [1, 2, 3]
    texts = example.split("$$end_record\n")
    for message, text in ((invite, texts[0]), (refusal, texts[2])):
        assert message.exact
        assert message.when is not None
        assert message.direction is not None
        assert message.side is not None
        assert message.remote is not None
        again = format_protocol_record(
            WireMessage(
                message.when.timestamp(),
                message.direction,
                message.side,
                ("127.0.0.1", 5061),
                message.remote,
                "100",
                message.data,
            ),
            machine="sfvedge",
            pid=0x2919,
            tid=0x2919,
            seq=message.seq or 0,
            correlation_id=message.correlation_id or 0,
            instance_id=message.instance_id or 0,
            peer=message.peer,
        )
        assert again == text + "$$end_record\n"


def test_text_without_records_is_an_empty_trace() -> None:
    assert parse_trace("nothing here\n") == []


# --- which transaction a message belongs to (the Trace-Correlation-Id) -----------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x@h\r\nCSeq: 7 INVITE\r\n\r\n", ("x@h", 7, "INVITE")),
        (b"ACK sip:a@b SIP/2.0\r\nCall-ID: x@h\r\nCSeq: 7 ACK\r\n\r\n", ("x@h", 7, "INVITE")),
        (b"SIP/2.0 504 Time-out\r\ni: x@h \r\ncseq:7   INVITE\r\n\r\n", ("x@h", 7, "INVITE")),
        (b"CANCEL sip:a@b SIP/2.0\r\nCall-ID: x@h\r\nCSeq: 7 CANCEL\r\n\r\n", ("x@h", 7, "CANCEL")),
        (b"BYE sip:a@b SIP/2.0\r\nCSeq: 8 BYE\r\nCall-ID: x@h\r\n\r\ni: body", ("x@h", 8, "BYE")),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\nCall-ID: in the body\r\n", None),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x@h\r\nCSeq: one OPTIONS\r\n\r\n", None),
    ],
    ids=["invite", "ack-joins-its-invite", "compact-and-spaces", "cancel", "body-ignored",
         "no-call-id", "bad-cseq"],
)  # fmt: skip
def test_transaction_key_of_a_message(data: bytes, key: tuple[str, int, str] | None) -> None:
    assert transaction_key(data) == key


def test_transaction_key_of_a_parsed_request_equals_that_of_its_bytes() -> None:
    message = parse_message(CALL)
    number, method = message.cseq
    assert transaction_key(call_id=message.call_id, number=number, method=method) == (
        transaction_key(CALL)
    )


@GEN
@given(st.binary(max_size=400), st.sampled_from(["", "Call-ID: x\r\nCSeq: 1 INVITE\r\n"]))
def test_transaction_key_takes_any_bytes(noise: bytes, headers: str) -> None:
    """The Edge computes it on every message it traces: no input may raise."""
    data = b"INVITE sip:a@b SIP/2.0\r\n" + headers.encode() + noise
    key = transaction_key(data)
    assert key is None or (isinstance(key[0], str) and key[1] >= 0)
