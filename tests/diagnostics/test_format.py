"""The Edge's artefacts, byte for byte against the seed and the reference."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from simulator.diagnostics import (
    MS_DIAGNOSTICS,
    RESULT_CODES,
    DiagnosticsParseError,
    EdgeLogRecord,
    EdgeLogTemplate,
    LogContext,
    MsDiagnostics,
    edge_log_stamp,
    find_ms_diagnostics,
    format_edge_log,
    format_ms_diagnostics,
    parse_edge_log,
    parse_ms_diagnostics,
)
from simulator.errors import FedsimError

SEED = "seeds/000_dd4cf63e5627e786.txt"
REFERENCE = "reference/ms-federation.md"

# The seed's renderings, copied verbatim from the Cisco note (PDF line breaks and
# the spaces inside quotes included); test_seed_copies_are_verbatim guards the copy.
SEED_1009 = (
    "ms-diagnostics: 1009;\n\n"
    '     reason="No match for domain in DNS SRV results";\n\n'
    '     domain="\n\n'
    '     cms.steven.lab";\n\n'
    '     fqdn1="\n\n'
    '     vcse.sub.cms.steven.lab:5061";source="sip.skype.lab" Server: RTC/6.0 Content-Length: 0'
)
SEED_1010 = (
    "ms-diagnostics: 1010;\n\n"
    '     reason="Certificate trust with another server could not be established";'
    'ErrorType="The peer\n\n'
    'certificate does not contain a matching FQDN";\n\n'
    '     tls-target="\n\n'
    '     vcse.cms.steven.lab";\n\n'
    '     PeerServer="\n\n\n\n'
    '     vcse.steven.lab";HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab"'
    " Server:\n\n"
    "RTC/6.0 Content-Length: 0"
)
SEED_NO_SRV_MATCH = (
    "TL_WARN(TF_DIAG) [sfvedge\\sfvedge]0584.0A44::03/02/2017-07:10:46.230.0000773E\n\n"
    "(SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(830)) [156659184] "
    "$$begin_record\n\n"
    "Severity: warning Text: The domain of the message resolved by DNS SRV but none of the "
    "FQDNs is\n\n"
    "in the same domain Result-Code: 0xc3e93d6f "
    "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH\n\n"
    "SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0 SIP-Call-ID: "
    "f1b3ad5d-183b-4632-b210-\n\n"
    "c2f9bec71960 SIP-CSeq: 2066245576 INVITE Peer: vcse.steven.lab:25002 Data:\n\n"
    'domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061" $$end_record'
)
SEED_CERT_MISMATCH = (
    "TL_ERROR(TF_DIAG) [sfvedge\\sfvedge]0B60.0D6C::03/02/2017-06:30:40.025.00005602\n\n"
    "(SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(833)) [3634190282] "
    "$$begin_record\n\n"
    "Severity: error Text: Message cannot be routed because the peer's certificate does not "
    "contain a\n\n"
    "matching FQDN Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH "
    "SIP-Start-Line:\n\n"
    "INVITE sip:stejanss@skype.lab SIP/2.0 SIP-Call-ID: e144704c-1dd0-4ea7-929f-77e7e071c24c "
    "SIP-\n\n"
    "CSeq: 1567605805 INVITE Peer: vcse.steven.lab:25001 Data: expected-\n\n"
    'fqdn="vcse.acano.steven.lab";certName="vcse.steven.lab";info="The peer certificate does '
    "not\n\n"
    'contain a matching FQDN" $$end_record'
)

# Reference §7.1: the client-facing values with the rendering's spaces removed.
CLEAN_1009 = (
    '1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";'
    'fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
)
CLEAN_1010 = (
    '1010;reason="Certificate trust with another server could not be established";'
    'ErrorType="The peer certificate does not contain a matching FQDN";'
    'tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";'
    'HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab"'
)

NO_SRV_MATCH_RECORD = EdgeLogRecord(
    result=RESULT_CODES["SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"],
    data=(("domain", "acano.steven.lab"), ("fqdn1", "vcse.steven.lab:5061")),
    fidelity="verbatim",
)
NO_SRV_MATCH_CONTEXT = LogContext(
    machine="sfvedge",
    pid=0x0584,
    tid=0x0A44,
    when=dt.datetime(2017, 3, 2, 7, 10, 46, 230_000, tzinfo=dt.UTC),
    seq=0x773E,
    correlation_id=156659184,
    start_line="INVITE sip:stejanss@skype.lab SIP/2.0",
    call_id="f1b3ad5d-183b-4632-b210-c2f9bec71960",
    cseq="2066245576 INVITE",
    peer="vcse.steven.lab:25002",
)
CERT_MISMATCH_RECORD = EdgeLogRecord(
    result=RESULT_CODES["SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"],
    data=(
        ("expected-fqdn", "vcse.acano.steven.lab"),
        ("certName", "vcse.steven.lab"),
        ("info", "The peer certificate does not contain a matching FQDN"),
    ),
    fidelity="verbatim",
)
CERT_MISMATCH_CONTEXT = LogContext(
    machine="sfvedge",
    pid=0x0B60,
    tid=0x0D6C,
    when=dt.datetime(2017, 3, 2, 6, 30, 40, 25_000, tzinfo=dt.UTC),
    seq=0x5602,
    correlation_id=3634190282,
    start_line="INVITE sip:stejanss@skype.lab SIP/2.0",
    call_id="e144704c-1dd0-4ea7-929f-77e7e071c24c",
    cseq="1567605805 INVITE",
    peer="vcse.steven.lab:25001",
)


def _flatten(text: str) -> str:
    """Undo the seed's rendering: breaks after a hyphen join, other breaks are spaces."""
    text = re.sub(r"-\n\s*", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def test_seed_copies_are_verbatim(shared_dir: Path) -> None:
    seed = (shared_dir / SEED).read_text(encoding="utf-8")
    for copied in (SEED_1009, SEED_1010, SEED_NO_SRV_MATCH, SEED_CERT_MISMATCH):
        assert copied in seed


def test_no_srv_match_record_is_byte_for_byte_the_reference_block(shared_dir: Path) -> None:
    reference = (shared_dir / REFERENCE).read_text(encoding="utf-8")
    block = re.search(r"```\n(TL_WARN\(TF_DIAG\).*?\$\$end_record\n)```", reference, re.DOTALL)
    assert block is not None
    assert format_edge_log(NO_SRV_MATCH_RECORD, NO_SRV_MATCH_CONTEXT) == block.group(1)


def test_a_template_compiled_once_renders_every_request_of_its_connection(
    shared_dir: Path,
) -> None:
    # The Edge compiles one template per decision and connection, then fills in each
    # request: the seed block first, then a later request on the same connection.
    template = EdgeLogTemplate(
        NO_SRV_MATCH_RECORD, machine="sfvedge", pid=0x0584, tid=0x0A44, peer="vcse.steven.lab:25002"
    )
    later = dataclasses.replace(
        NO_SRV_MATCH_CONTEXT,
        when=dt.datetime(2017, 3, 2, 7, 11, 0, 7_000, tzinfo=dt.UTC),
        seq=0x773F,
        correlation_id=4294967295,
        call_id="second-call@vcse",
        cseq="1 INVITE",
    )
    reference = (shared_dir / REFERENCE).read_text(encoding="utf-8")
    block = re.search(r"```\n(TL_WARN\(TF_DIAG\).*?\$\$end_record\n)```", reference, re.DOTALL)
    assert block is not None
    renderings = []
    for ctx in (NO_SRV_MATCH_CONTEXT, later):
        rendered = template.render(
            stamp=edge_log_stamp(ctx.when),
            seq=ctx.seq,
            correlation_id=ctx.correlation_id,
            start_line=ctx.start_line,
            call_id=ctx.call_id,
            cseq=ctx.cseq,
        )
        assert rendered == format_edge_log(NO_SRV_MATCH_RECORD, ctx)
        renderings.append(rendered)
    assert renderings[0] == block.group(1)
    assert "::03/02/2017-07:11:00.007.0000773F (SIPStack" in renderings[1]
    assert edge_log_stamp(later.when) == "03/02/2017-07:11:00.007"


def test_cert_mismatch_record_is_byte_for_byte_the_reference_layout(shared_dir: Path) -> None:
    expected = (
        "TL_ERROR(TF_DIAG) [sfvedge\\sfvedge]0B60.0D6C::03/02/2017-06:30:40.025.00005602 "
        "(SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog.cpp(833)) [3634190282] "
        "$$begin_record\n"
        "Severity: error\n"
        "Text: Message cannot be routed because the peer's certificate does not contain a "
        "matching FQDN\n"
        "Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH\n"
        "SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0\n"
        "SIP-Call-ID: e144704c-1dd0-4ea7-929f-77e7e071c24c\n"
        "SIP-CSeq: 1567605805 INVITE\n"
        "Peer: vcse.steven.lab:25001\n"
        'Data: expected-fqdn="vcse.acano.steven.lab";certName="vcse.steven.lab";'
        'info="The peer certificate does not contain a matching FQDN"\n'
        "$$end_record\n"
    )
    out = format_edge_log(CERT_MISMATCH_RECORD, CERT_MISMATCH_CONTEXT)
    assert out == expected
    reference = (shared_dir / REFERENCE).read_text(encoding="utf-8")
    # Every line but the SIP-* ones (which the reference elides) is quoted in §4.1.
    for line in out.splitlines():
        if not line.startswith(("SIP-", "$$end")):
            assert line in reference, line


@pytest.mark.parametrize(
    ("record", "context", "seed_text"),
    [
        (NO_SRV_MATCH_RECORD, NO_SRV_MATCH_CONTEXT, SEED_NO_SRV_MATCH),
        (CERT_MISMATCH_RECORD, CERT_MISMATCH_CONTEXT, SEED_CERT_MISMATCH),
    ],
    ids=["no-srv-match", "cert-mismatch"],
)
def test_formatted_records_match_the_seed_renderings(
    record: EdgeLogRecord, context: LogContext, seed_text: str
) -> None:
    assert _flatten(format_edge_log(record, context)) == _flatten(seed_text)


@pytest.mark.parametrize(
    ("code", "params", "expected"),
    [
        (
            1009,
            (("domain", "cms.steven.lab"), ("fqdn1", "vcse.sub.cms.steven.lab:5061")),
            CLEAN_1009,
        ),
        (
            1010,
            (
                ("ErrorType", "The peer certificate does not contain a matching FQDN"),
                ("tls-target", "vcse.cms.steven.lab"),
                ("PeerServer", "vcse.steven.lab"),
                ("HRESULT", "0x80090322(SEC_E_WRONG_PRINCIPAL)"),
            ),
            CLEAN_1010,
        ),
    ],
)
def test_format_ms_diagnostics_reproduces_the_client_facing_seed_values(
    code: int, params: tuple[tuple[str, str], ...], expected: str, shared_dir: Path
) -> None:
    value = format_ms_diagnostics(
        code, reason=MS_DIAGNOSTICS[code].reason, params=params, source="sip.skype.lab"
    )
    assert value == expected
    reference = (shared_dir / REFERENCE).read_text(encoding="utf-8")
    assert value in reference


def test_format_ms_diagnostics_puts_source_last_and_escapes_quotes() -> None:
    value = format_ms_diagnostics(
        1034, reason='say "hi" \\ bye', params=(("Domain", "a.lab"),), source="sip.skype.lab"
    )
    assert value == '1034;reason="say \\"hi\\" \\\\ bye";Domain="a.lab";source="sip.skype.lab"'
    assert parse_ms_diagnostics(value).reason == 'say "hi" \\ bye'


def test_format_ms_diagnostics_rejects_a_line_break_in_a_value() -> None:
    with pytest.raises(ValueError, match="line break"):
        format_ms_diagnostics(1008, reason="a\r\nInjected: x", source="e")


@pytest.mark.parametrize(
    ("pasted", "clean"),
    [(SEED_1009, CLEAN_1009), (SEED_1010, CLEAN_1010)],
    ids=["1009", "1010"],
)
def test_parse_ms_diagnostics_cleans_the_seed_rendering(pasted: str, clean: str) -> None:
    parsed = parse_ms_diagnostics(pasted)
    assert parsed == parse_ms_diagnostics(clean)
    assert parsed.format() == clean


def test_parse_ms_diagnostics_returns_the_seed_values() -> None:
    parsed = parse_ms_diagnostics(SEED_1010)
    assert parsed.code == 1010
    assert parsed.reason == "Certificate trust with another server could not be established"
    assert parsed.get("errortype") == "The peer certificate does not contain a matching FQDN"
    assert parsed.get("tls-target") == "vcse.cms.steven.lab"
    assert parsed.get("PeerServer") == "vcse.steven.lab"
    assert parsed.get("HRESULT") == "0x80090322(SEC_E_WRONG_PRINCIPAL)"
    assert parsed.source == "sip.skype.lab"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Reference §3.1: HTML rendering with spaces around '=' and inside the quotes.
        (
            '1009;reason="No match";domain =" acano.steven.lab "',
            MsDiagnostics(code=1009, reason="No match", params=(("domain", "acano.steven.lab"),)),
        ),
        # Support-article form: a space after ';', capitalised names kept as written.
        (
            '1017; reason="Cannot route"; summary="x"',
            MsDiagnostics(code=1017, reason="Cannot route", params=(("summary", "x"),)),
        ),
        # OCS 2007 form: sub-code, source before reason.
        (
            'Ms-diagnostics: 1009.1;source="10.0.0.1";reason="token"',
            MsDiagnostics(code=1009, sub_code=1, reason="token", source="10.0.0.1"),
        ),
        (
            'ms-diagnostics-public: 4141;reason="User disabled"',
            MsDiagnostics(code=4141, reason="User disabled"),
        ),
        ("25008", MsDiagnostics(code=25008, reason=None)),
        (
            "1027;Reason=unquoted;Source=fe.skype.lab",
            MsDiagnostics(code=1027, reason="unquoted", source="fe.skype.lab"),
        ),
    ],
)
def test_parse_ms_diagnostics_tolerates_renderings(text: str, expected: MsDiagnostics) -> None:
    assert parse_ms_diagnostics(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", 'reason="x"', '1009;reason="unterminated', "1009;=x", "1009;name", "1009 junk"],
)
def test_parse_ms_diagnostics_rejects_non_headers_with_a_fedsim_error(text: str) -> None:
    with pytest.raises(DiagnosticsParseError) as info:
        parse_ms_diagnostics(text)
    assert isinstance(info.value, FedsimError)
    assert info.value.text == text
    assert "\n" not in str(info.value)


@given(
    code=st.integers(min_value=0, max_value=99999),
    reason=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1),
    params=st.lists(
        st.tuples(
            st.from_regex(r"[A-Za-z][-A-Za-z0-9]{0,12}", fullmatch=True).filter(
                lambda n: n.lower() not in ("reason", "source")
            ),
            st.from_regex(r"[!-~]([ !-~]*[!-~])?", fullmatch=True),
        ),
        max_size=4,
    ),
    source=st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
)
# Found by hypothesis: two spaces within one line are the value's own, not a paste artefact.
@example(code=0, reason="r", params=[("A", "0  0")], source="x")
def test_parse_inverts_format(
    code: int, reason: str, params: list[tuple[str, str]], source: str
) -> None:
    reason = " ".join(reason.split())  # reason text is compared, not its spacing
    if not reason:
        reason = "r"
    value = format_ms_diagnostics(code, reason=reason, params=params, source=source)
    parsed = parse_ms_diagnostics(value)
    assert (parsed.code, parsed.reason, parsed.params, parsed.source) == (
        code,
        reason,
        tuple(params),
        source,
    )


def test_find_ms_diagnostics_in_the_whole_seed(shared_dir: Path) -> None:
    seed = (shared_dir / SEED).read_text(encoding="utf-8")
    found = find_ms_diagnostics(seed)
    assert [d.format() for d in found] == [CLEAN_1009, CLEAN_1010]


@pytest.mark.parametrize(
    ("pasted", "context", "record"),
    [
        (SEED_NO_SRV_MATCH, NO_SRV_MATCH_CONTEXT, NO_SRV_MATCH_RECORD),
        (SEED_CERT_MISMATCH, CERT_MISMATCH_CONTEXT, CERT_MISMATCH_RECORD),
    ],
    ids=["no-srv-match", "cert-mismatch"],
)
def test_parse_edge_log_reads_the_flattened_seed_records(
    pasted: str, context: LogContext, record: EdgeLogRecord
) -> None:
    (parsed,) = parse_edge_log(pasted)
    assert parsed.result is record.result
    assert parsed.severity == record.result.severity
    assert parsed.text == record.result.text
    assert parsed.result_hex == record.result.hex
    assert parsed.data == record.data
    assert parsed.start_line == context.start_line
    assert parsed.call_id == context.call_id
    assert parsed.cseq == context.cseq
    assert parsed.peer == context.peer
    assert (parsed.pid, parsed.tid, parsed.seq) == (context.pid, context.tid, context.seq)
    assert parsed.when == context.when
    assert parsed.correlation_id == context.correlation_id
    assert parsed.machine == "sfvedge\\sfvedge"


def test_parse_edge_log_round_trips_the_formatter_and_finds_both_seed_records(
    shared_dir: Path,
) -> None:
    both = format_edge_log(NO_SRV_MATCH_RECORD, NO_SRV_MATCH_CONTEXT) + format_edge_log(
        CERT_MISMATCH_RECORD, CERT_MISMATCH_CONTEXT
    )
    parsed = parse_edge_log(both)
    assert [p.data for p in parsed] == [NO_SRV_MATCH_RECORD.data, CERT_MISMATCH_RECORD.data]
    seed = (shared_dir / SEED).read_text(encoding="utf-8")
    assert [p.result_symbol for p in parse_edge_log(seed)] == [
        "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
    ]


def test_parse_edge_log_reads_a_record_without_its_header_line() -> None:
    body = (
        "$$begin_record\nLogType: diagnostic\nSeverity: warning\nText: t\n"
        "Result-Code: 0xc3e93c5e SIPPROXY_E_ROUTING\n$$end_record"
    )
    (parsed,) = parse_edge_log(body)
    assert parsed.level is None
    assert parsed.when is None
    assert parsed.result is RESULT_CODES["SIPPROXY_E_ROUTING"]
    assert parsed.data == ()


def test_parse_edge_log_rejects_an_unterminated_record() -> None:
    with pytest.raises(DiagnosticsParseError, match="never ends"):
        parse_edge_log("$$begin_record\nSeverity: warning\n")
    assert parse_edge_log("no records here") == []


def test_log_context_requires_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LogContext(
            machine="sfvedge",
            pid=1,
            tid=1,
            when=dt.datetime(2017, 3, 2),  # naive on purpose
            seq=1,
            correlation_id=1,
            start_line="x",
            call_id="c",
            cseq="1 INVITE",
            peer="p:1",
        )


def test_edge_log_time_is_printed_in_utc() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2017, 3, 2, 8, 10, 46, 230_999, tzinfo=cet)
    context = LogContext(
        machine="sfvedge",
        pid=NO_SRV_MATCH_CONTEXT.pid,
        tid=NO_SRV_MATCH_CONTEXT.tid,
        when=local,
        seq=NO_SRV_MATCH_CONTEXT.seq,
        correlation_id=NO_SRV_MATCH_CONTEXT.correlation_id,
        start_line=NO_SRV_MATCH_CONTEXT.start_line,
        call_id=NO_SRV_MATCH_CONTEXT.call_id,
        cseq=NO_SRV_MATCH_CONTEXT.cseq,
        peer=NO_SRV_MATCH_CONTEXT.peer,
    )
    assert format_edge_log(NO_SRV_MATCH_RECORD, context) == format_edge_log(
        NO_SRV_MATCH_RECORD, NO_SRV_MATCH_CONTEXT
    )
