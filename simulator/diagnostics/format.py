"""Formatters and tolerant parsers for the Edge's artefacts.

* the ``ms-diagnostics`` header value (reference §3.1): ``<id>;reason="...";<extras>;source="..."``
  with ``source`` last and no spaces, as the Edge emits it ([CISCO], 1034 trace);
* the Edge diagnostic log record (reference §4.1), byte for byte;
* one JSON object per policy decision for ``events.jsonl``.

The parsers accept what users paste: the seeds' PDF/HTML renderings put line
breaks and spaces inside quoted values (``domain="\\n     cms.steven.lab"``) and
run the log fields together on one line. No I/O here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.diagnostics.catalogue import Fidelity, ResultCode, lookup_result
from simulator.errors import FedsimError

# RFC 3261 §25.1 token: the shape of a generic-param name.
_TOKEN = re.compile(r"[-.!%*_+`'~0-9A-Za-z]+")
# A PDF/HTML line break: any whitespace run that contains a newline.
_BREAK = re.compile(r"[ \t]*\r?\n\s*")
_SPACES = re.compile(r"\s+")
# Blanks that contain a line break (or a tab): what a PDF or a terminal made of one space.
_BROKEN_SPACES = re.compile(r"[ \t]*[\r\n\t][\s]*")
_NAME_BREAK = re.compile(r"[ \t]*\r?\n\s*")
_HEADER_NAME = re.compile(r"(?i)\s*ms-(?:client-)?diagnostics(?:-public)?\s*:\s*")
_ERROR_ID = re.compile(r"\s*(?P<code>[0-9]+)(?:\.(?P<sub>[0-9]+))?\s*")
# After the last parameter a flattened paste may continue with the next header.
_NEXT_HEADER = re.compile(r"\s+[A-Za-z][-A-Za-z0-9]*\s*:")


class DiagnosticsParseError(FedsimError):
    """Pasted text is not an ms-diagnostics header or an Edge log record."""

    def __init__(self, what: str, *, text: str, fix: str) -> None:
        self.what = what
        self.text = text
        self.fix = fix
        shown = _SPACES.sub(" ", text).strip()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{what}: {shown!r} ({fix})")


# ---------------------------------------------------------------------------
# ms-diagnostics
# ---------------------------------------------------------------------------


def _quote(value: str) -> str:
    # RFC 3261 §25.1 quoted-string: quoted-pair escapes '"' and '\'.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _check_name(name: str) -> None:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"parameter name must be a SIP token, not {name!r}")


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"parameter {name!r}: a header value cannot contain a line break")


def format_ms_diagnostics(
    code: int,
    *,
    reason: str,
    params: Sequence[tuple[str, str]] = (),
    source: str | None,
) -> str:
    """Render an ``ms-diagnostics`` header value as the Edge emits it.

    Order is id; reason; extras in the given order; source last (reference §3.1,
    [CISCO] 1009/1010, 1034 trace). No spaces, every value quoted.

    Args:
        code: the ErrorId (reference §3.2).
        reason: the reason text, normally ``MS_DIAGNOSTICS[code].reason``.
        params: extra attribute/value pairs, names as Microsoft writes them
            (``domain`` vs ``Domain`` differs between codes).
        source: the generating server's FQDN; None omits it (Microsoft always
            sends one, reference §12, so only tests should pass None).

    Returns:
        The header value, e.g. ``1009;reason="...";domain="...";fqdn1="...";source="..."``.
    """
    if code < 0:
        raise ValueError(f"ErrorId must be unsigned, not {code}")
    parts = [str(code)]
    pairs: list[tuple[str, str]] = [("reason", reason), *params]
    if source is not None:
        pairs.append(("source", source))
    for name, value in pairs:
        _check_name(name)
        _check_value(name, value)
        parts.append(f"{name}={_quote(value)}")
    return ";".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class MsDiagnostics:
    """A parsed ``ms-diagnostics`` value.

    Attributes:
        code: the ErrorId.
        sub_code: the OCS-era ``<id>.<sub>`` suffix, if any.
        reason: the ``reason`` parameter (name matched case-insensitively).
        params: every other parameter except ``source``, in order, names as written.
        source: the ``source`` parameter.
    """

    code: int
    reason: str | None
    params: tuple[tuple[str, str], ...] = ()
    source: str | None = None
    sub_code: int | None = None

    def get(self, name: str) -> str | None:
        """Value of the first parameter called ``name`` (case-insensitive), else None."""
        wanted = name.lower()
        if wanted == "reason":
            return self.reason
        if wanted == "source":
            return self.source
        return next((v for k, v in self.params if k.lower() == wanted), None)

    def format(self) -> str:
        """Render back in the Edge's canonical form (see :func:`format_ms_diagnostics`)."""
        if self.reason is None:
            raise ValueError("an Edge-style ms-diagnostics value needs a reason")
        return format_ms_diagnostics(
            self.code, reason=self.reason, params=self.params, source=self.source
        )


def _unbreak(text: str) -> str:
    """Undo a PDF/HTML rendering's line breaks inside a value.

    A break right after a hyphen was inserted inside a word (``b210-\\nc2f9``,
    ``expected-\\nfqdn``): join without a space. Any other break stood for a space.
    """

    def join(match: re.Match[str]) -> str:
        before = match.string[match.start() - 1] if match.start() > 0 else ""
        return "" if before == "-" and match.group()[0] in "\r\n" else " "

    return _BREAK.sub(join, text)


def _clean_value(raw: str) -> str:
    # Spaces next to the quotes, and a run of blanks around a line break, are rendering
    # artefacts (reference §3.1 "Spaces"); spaces within one line are the value's own.
    return _BROKEN_SPACES.sub(" ", _unbreak(raw)).strip()


def _parse_params(text: str, pos: int, *, whole: str) -> tuple[list[tuple[str, str]], int]:
    """Parse ``;name=value`` pairs from ``text[pos:]``; return them and where they stop."""
    pairs: list[tuple[str, str]] = []
    n = len(text)
    while True:
        p = pos
        while p < n and text[p].isspace():
            p += 1
        if p >= n or text[p] != ";":
            return pairs, pos
        p += 1
        while p < n and text[p].isspace():
            p += 1
        name_match = _TOKEN.match(text, p)
        if name_match is None:
            if not text[p:].strip():
                return pairs, n  # a trailing ';' is harmless
            raise DiagnosticsParseError(
                "expected a parameter name after ';'",
                text=whole,
                fix='parameters look like ;name="value"',
            )
        # Names may be broken by a PDF line break after a hyphen (tls-\ntarget).
        name = name_match.group()
        p = name_match.end()
        while name.endswith("-") and (more := _NAME_BREAK.match(text, p)):
            cont = _TOKEN.match(text, more.end())
            if cont is None:
                break
            name += cont.group()
            p = cont.end()
        while p < n and text[p].isspace():
            p += 1
        if p >= n or text[p] != "=":
            raise DiagnosticsParseError(
                f"parameter {name!r} has no '='",
                text=whole,
                fix='parameters look like ;name="value"',
            )
        p += 1
        while p < n and text[p].isspace():
            p += 1
        if p < n and text[p] == '"':
            p += 1
            chars: list[str] = []
            while p < n and text[p] != '"':
                if text[p] == "\\" and p + 1 < n:
                    p += 1
                chars.append(text[p])
                p += 1
            if p >= n:
                raise DiagnosticsParseError(
                    f"parameter {name!r}: unterminated quoted value",
                    text=whole,
                    fix="paste the whole header, up to the closing quote",
                )
            p += 1
            value = _clean_value("".join(chars))
        else:
            end = p
            while end < n and text[end] != ";" and not text[end].isspace():
                end += 1
            value = text[p:end]
            p = end
        pairs.append((name, value))
        pos = p


def parse_ms_diagnostics(text: str) -> MsDiagnostics:
    """Parse an ``ms-diagnostics`` (or ``ms-diagnostics-public``) header or value.

    Tolerant of what users paste (reference §3.1 "Spaces"): the header name is
    optional; spaces and line breaks around ``;`` and ``=`` and inside quotes are
    dropped; parameter names keep their case; an OCS-era sub-code (``1009.1``) is
    kept apart; anything after the last parameter that starts like another header
    (``Server: RTC/6.0``, a flattened paste) is ignored.

    Raises:
        DiagnosticsParseError: the text is not such a header; carries ``text``.
    """
    pos = 0
    if (prefix := _HEADER_NAME.match(text)) is not None:
        pos = prefix.end()
    error_id = _ERROR_ID.match(text, pos)
    if error_id is None:
        raise DiagnosticsParseError(
            "not an ms-diagnostics value: it must start with a numeric ErrorId",
            text=text,
            fix='paste it as 1009;reason="...";source="..."',
        )
    pairs, end = _parse_params(text, error_id.end(), whole=text)
    rest = text[end:]
    if rest.strip() and _NEXT_HEADER.match(rest) is None:
        raise DiagnosticsParseError(
            f"unexpected text after the parameters: {rest.strip()[:40]!r}",
            text=text,
            fix="paste only the ms-diagnostics header",
        )
    reason = next((v for k, v in pairs if k.lower() == "reason"), None)
    source = next((v for k, v in pairs if k.lower() == "source"), None)
    params = tuple((k, v) for k, v in pairs if k.lower() not in ("reason", "source"))
    sub = error_id.group("sub")
    return MsDiagnostics(
        code=int(error_id.group("code")),
        sub_code=int(sub) if sub is not None else None,
        reason=reason,
        params=params,
        source=source,
    )


def find_ms_diagnostics(text: str) -> list[MsDiagnostics]:
    """Find and parse every ``ms-diagnostics[-public]:`` (or ``ms-client-diagnostics:``)
    header in a pasted message or log."""
    return [found for found, _start, _end in find_ms_diagnostics_spans(text)]


def find_ms_diagnostics_spans(text: str) -> list[tuple[MsDiagnostics, int, int]]:
    """:func:`find_ms_diagnostics`, with where each header starts and ends in ``text``."""
    found: list[tuple[MsDiagnostics, int, int]] = []
    for match in re.finditer(r"(?i)ms-(?:client-)?diagnostics(?:-public)?\s*:", text):
        following = text[match.start() :]
        error_id = _ERROR_ID.match(following, match.end() - match.start())
        if error_id is None:
            continue
        pairs_end = _parse_params(following, error_id.end(), whole=following)[1]
        parsed = parse_ms_diagnostics(following[:pairs_end])
        found.append((parsed, match.start(), match.start() + pairs_end))
    return found


# ---------------------------------------------------------------------------
# Edge diagnostic log record (reference §4.1)
# ---------------------------------------------------------------------------

# Reference §4.1: WriteDiagnosticEvent is logged from line 830 for a warning, 833 for an error.
_SOURCE_LINE = {"warning": 830, "error": 833}
_LEVEL = {"warning": "TL_WARN", "error": "TL_ERROR"}


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeLogRecord:
    """What the policy decides to log: a Result-Code and its Data parameters.

    Attributes:
        result: the catalogue entry (SIPPROXY_E_* or EMU_UNVERIFIED_*).
        data: the ``Data:`` parameters in order, rendered ``key="value"`` joined by ';'.
        fidelity: how far this record, in this situation, matches the real Edge's: a
            verbatim code used where the reference only infers it is "inferred".
    """

    result: ResultCode
    data: tuple[tuple[str, str], ...]
    fidelity: Fidelity

    def __post_init__(self) -> None:
        for name, value in self.data:
            _check_name(name)
            _check_value(name, value)

    def data_text(self) -> str:
        """The ``Data:`` value: ``domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"``."""
        return ";".join(f"{k}={_quote(v)}" for k, v in self.data)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogContext:
    """Where and when a record is written, and the SIP request it is about.

    Attributes:
        machine: Edge machine name, printed ``[machine\\machine]`` ("sfvedge").
        pid / tid: process and thread ids, printed as 4 upper-case hex digits.
        when: UTC time of the record (timezone-aware).
        seq: per-log sequence number, printed as 8 upper-case hex digits.
        correlation_id: decimal trace correlation id.
        start_line / call_id / cseq: from the request ("2066245576 INVITE").
        peer: peer identity and source port ("vcse.steven.lab:25002").
    """

    machine: str
    pid: int
    tid: int
    when: dt.datetime
    seq: int
    correlation_id: int
    start_line: str
    call_id: str
    cseq: str
    peer: str

    def __post_init__(self) -> None:
        if not self.machine or "\\" in self.machine or "]" in self.machine:
            raise ValueError(f"machine must be a plain host name, not {self.machine!r}")
        for name, value, limit in (
            ("pid", self.pid, 0xFFFF),
            ("tid", self.tid, 0xFFFF),
            ("seq", self.seq, 2**32 - 1),
            ("correlation_id", self.correlation_id, 2**64 - 1),
        ):
            if not 0 <= value <= limit:
                raise ValueError(f"{name} must be in 0..{limit:#x}, not {value}")
        if self.when.tzinfo is None or self.when.utcoffset() is None:
            raise ValueError("when must be timezone-aware (the Edge logs UTC)")
        for name, text in (
            ("start_line", self.start_line),
            ("call_id", self.call_id),
            ("cseq", self.cseq),
            ("peer", self.peer),
        ):
            if "\n" in text or "\r" in text:
                raise ValueError(f"{name} must be one line, not {text!r}")


def edge_log_stamp(when: dt.datetime) -> str:
    """The record's time as the Edge prints it: ``MM/DD/YYYY-HH:MM:SS.mmm`` in UTC."""
    when = when.astimezone(dt.UTC)
    return when.strftime("%m/%d/%Y-%H:%M:%S") + f".{when.microsecond // 1000:03d}"


class EdgeLogTemplate:
    """One kind of Edge record compiled once, with holes for what each request changes.

    On one connection, every request the same decision refuses gets the same record
    but for its time, sequence number, correlation id and SIP fields: the Edge renders
    those into the fixed text (``format_edge_log`` is this template filled once).
    The request fields are one line each: the SIP parser refuses CR and LF in them.
    """

    __slots__ = ("_fixed", "_head", "_middle", "_tail")

    def __init__(
        self, record: EdgeLogRecord, *, machine: str, pid: int, tid: int, peer: str
    ) -> None:
        severity = record.result.severity
        self._head = f"{_LEVEL[severity]}(TF_DIAG) [{machine}\\{machine}]{pid:04X}.{tid:04X}::"
        self._middle = (
            " (SIPStack,SIPAdminLog::WriteDiagnosticEvent:"
            f"SIPAdminLog.cpp({_SOURCE_LINE[severity]})) ["
        )
        self._fixed = (
            f"] $$begin_record\nSeverity: {severity}\nText: {record.result.text}\n"
            f"Result-Code: {record.result.hex} {record.result.symbol}\nSIP-Start-Line: "
        )
        data = f"Data: {record.data_text()}\n" if record.data else ""
        self._tail = f"\nPeer: {peer}\n{data}$$end_record\n"

    def render(
        self,
        *,
        stamp: str,
        seq: int,
        correlation_id: int,
        start_line: str,
        call_id: str,
        cseq: str,
    ) -> str:
        """The record for one request; ``stamp`` comes from :func:`edge_log_stamp`."""
        return (
            f"{self._head}{stamp}.{seq:08X}{self._middle}{correlation_id}{self._fixed}"
            f"{start_line}\nSIP-Call-ID: {call_id}\nSIP-CSeq: {cseq}{self._tail}"
        )


def format_edge_log(record: EdgeLogRecord, ctx: LogContext) -> str:
    """Render one Edge diagnostic record exactly as reference §4.1 shows it.

    One field per line, ``\\n`` line ends, ending with ``$$end_record\\n``; the first
    line carries level, machine, ``pid.tid``, the UTC time to the millisecond, the
    8-hex sequence number, the source location (line 830 warning, 833 error) and
    the correlation id.
    """
    template = EdgeLogTemplate(record, machine=ctx.machine, pid=ctx.pid, tid=ctx.tid, peer=ctx.peer)
    return template.render(
        stamp=edge_log_stamp(ctx.when),
        seq=ctx.seq,
        correlation_id=ctx.correlation_id,
        start_line=ctx.start_line,
        call_id=ctx.call_id,
        cseq=ctx.cseq,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEdgeRecord:
    """One Edge log record read back from text (fields absent from the paste are None)."""

    level: str | None
    flag: str | None
    machine: str | None
    pid: int | None
    tid: int | None
    when: dt.datetime | None
    seq: int | None
    location: str | None
    correlation_id: int | None
    fields: tuple[tuple[str, str], ...]
    severity: str | None
    text: str | None
    result_hex: str | None
    result_symbol: str | None
    start_line: str | None
    call_id: str | None
    cseq: str | None
    peer: str | None
    data: tuple[tuple[str, str], ...]
    result: ResultCode | None  # the catalogue entry, when the code is known


_RECORD = re.compile(r"\$\$begin_record(?P<body>.*?)\$\$end_record", re.DOTALL)
_RECORD_HEAD = re.compile(
    r"(?P<level>TL_[A-Z]+)\((?P<flag>TF_[A-Z]+)\)\s*\[(?P<machine>[^\]]*)\]\s*"
    r"(?P<pid>[0-9A-Fa-f]{4})\.(?P<tid>[0-9A-Fa-f]{4})::"
    r"(?P<date>\d\d/\d\d/\d{4})-(?P<time>\d\d:\d\d:\d\d)\.(?P<ms>\d{3})\.(?P<seq>[0-9A-Fa-f]{8})"
    r"\s*\((?P<location>[^()]*(?:\([^()]*\)[^()]*)*)\)"
    r"\s*(?:\[(?P<corr>\d+)\])?\s*$",
    re.DOTALL,
)
_FIELD_NAMES = (
    "Trace-Correlation-Id",
    "Instance-Id",
    "LogType",
    "Direction",
    "Severity",
    "Text",
    "Result-Code",
    "SIP-Start-Line",
    "SIP-Call-ID",
    "SIP-CSeq",
    "Peer",
    "Message-Type",
    "Start-Line",
    "Data",
)
_FIELD = re.compile(r"(?:^|(?<=\s))(" + "|".join(map(re.escape, _FIELD_NAMES)) + r"):")


def _split_fields(body: str) -> list[tuple[str, str]]:
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    line_mode = bool(lines) and all(
        (m := _FIELD.match(line)) is not None and m.start() == 0 for line in lines
    )
    if line_mode:
        # The Edge's own layout (reference §4.1): one field per line, values verbatim.
        out = []
        for line in lines:
            name, _, value = line.partition(":")
            out.append((name, value.strip()))
        return out
    # A flattened rendering: fields run together, breaks inside values.
    flat = _SPACES.sub(" ", _unbreak(body)).strip()
    matches = list(_FIELD.finditer(flat))
    out = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(flat)
        out.append((match.group(1), flat[match.end() : end].strip()))
    return out


def _parse_data(value: str, *, whole: str) -> tuple[tuple[str, str], ...]:
    if not value or value == "-":
        return ()
    pairs, end = _parse_params(";" + value, 0, whole=whole)
    if (";" + value)[end:].strip():
        raise DiagnosticsParseError(
            'Edge log Data is not a list of key="value" pairs',
            text=whole,
            fix="paste the record from $$begin_record to $$end_record",
        )
    return tuple(pairs)


def parse_edge_log(text: str) -> list[ParsedEdgeRecord]:
    """Read every Edge diagnostic record (``$$begin_record`` ... ``$$end_record``) in ``text``.

    Accepts the Edge's own layout and the seeds' flattened renderings (fields run
    together on one line, line breaks inside values). The header line before
    ``$$begin_record`` is optional.

    Returns:
        The records in order; an empty list when the text contains none.

    Raises:
        DiagnosticsParseError: a record is started but not ended, or is malformed.
    """
    records: list[ParsedEdgeRecord] = []
    previous_end = 0
    for match in _RECORD.finditer(text):
        head_text = _SPACES.sub(" ", _unbreak(text[previous_end : match.start()]))
        previous_end = match.end()
        head_start = head_text.rfind("TL_")
        head = _RECORD_HEAD.search(head_text[head_start:]) if head_start >= 0 else None
        fields = _split_fields(match.group("body"))
        values = dict(reversed(fields))  # first occurrence wins
        result_hex = result_symbol = None
        if (rc := values.get("Result-Code")) is not None:
            hex_part, _, symbol_part = rc.partition(" ")
            result_hex, result_symbol = hex_part.strip() or None, symbol_part.strip() or None
        when = None
        if head is not None:
            when = dt.datetime.strptime(
                f"{head['date']}-{head['time']}", "%m/%d/%Y-%H:%M:%S"
            ).replace(microsecond=int(head["ms"]) * 1000, tzinfo=dt.UTC)
        known = lookup_result(result_symbol) if result_symbol else None
        if known is None and result_hex:
            known = lookup_result(result_hex)
        records.append(
            ParsedEdgeRecord(
                level=head["level"] if head else None,
                flag=head["flag"] if head else None,
                machine=head["machine"] if head else None,
                pid=int(head["pid"], 16) if head else None,
                tid=int(head["tid"], 16) if head else None,
                when=when,
                seq=int(head["seq"], 16) if head else None,
                location=head["location"] if head else None,
                correlation_id=int(head["corr"]) if head and head["corr"] else None,
                fields=tuple(fields),
                severity=values.get("Severity"),
                text=values.get("Text"),
                result_hex=result_hex,
                result_symbol=result_symbol,
                start_line=values.get("SIP-Start-Line"),
                call_id=values.get("SIP-Call-ID"),
                cseq=values.get("SIP-CSeq"),
                peer=values.get("Peer"),
                data=_parse_data(values.get("Data", ""), whole=match.group()),
                result=known,
            )
        )
    if "$$begin_record" in text[previous_end:]:
        raise DiagnosticsParseError(
            "an Edge log record starts with $$begin_record but never ends",
            text=text[previous_end:],
            fix="paste the record up to and including $$end_record",
        )
    return records
