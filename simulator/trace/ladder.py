"""The ladder of each call in a SIPStack trace or a capture, with the diagnostics decoded.

``fedsim explain`` reads a ``trace.log`` (fedsim's, or a Snooper/OCSLogger export
with TF_PROTOCOL and TF_DIAG records) or a pcap/pcapng of SIP in clear, and prints
per Call-ID one line per message (time, who -> who, start line) with each
ms-diagnostics header and each Edge record decoded by
:mod:`simulator.diagnostics.explain`. Pure: text and bytes in, text out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.diagnostics import (
    DiagnosticsParseError,
    ParsedEdgeRecord,
    explain_diagnostics,
    explain_record,
    find_ms_diagnostics,
)
from simulator.sip import SipParseError, parse_message
from simulator.trace.pcap import CaptureError, read_capture
from simulator.trace.sipstack import ComponentRecord, TraceMessage, format_peer, parse_trace

__all__ = ["LadderItem", "LadderMessage", "capture_ladder", "ladder_text", "trace_ladder"]
#: A Call-ID header line (RFC 3261 §7.3.3: "i" is its compact form).
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_NO_CALL_ID = "(no Call-ID)"
_INDENT = "      "


@dataclass(frozen=True, slots=True, kw_only=True)
class LadderMessage:
    """One SIP message of a ladder: when, from whom to whom, its bytes."""

    when: dt.datetime | None
    source: str
    destination: str
    data: bytes


#: What a ladder shows, in order: messages and the Edge's own records.
LadderItem = LadderMessage | ParsedEdgeRecord | ComponentRecord


def _call_id(item: LadderItem) -> str:
    if isinstance(item, LadderMessage):
        try:
            return parse_message(item.data).call_id
        except SipParseError:
            found = _CALL_ID.search(item.data.partition(b"\r\n\r\n")[0])
            return found.group(1).decode("utf-8", "replace") if found else _NO_CALL_ID
    if isinstance(item, ComponentRecord):
        item = item.diagnostic if item.diagnostic is not None else item
        if isinstance(item, ComponentRecord):
            return _NO_CALL_ID
    return item.call_id or _NO_CALL_ID


def _time(when: dt.datetime | None) -> str:
    if when is None:
        return "--:--:--.---"
    return when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def _message_lines(item: LadderMessage) -> list[str]:
    head = item.data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    start = head.partition("\r\n")[0] or "(empty)"
    out = [f"  {_time(item.when)}  {item.source} -> {item.destination}  {start}"]
    try:
        headers = find_ms_diagnostics(head)
    except DiagnosticsParseError as exc:
        out.append(f"{_INDENT}ms-diagnostics that fedsim cannot read: {exc.what}")
        headers = []
    for diag in headers:
        out.extend(_INDENT + line for line in explain_diagnostics(diag))
    return out


def _record_lines(item: ParsedEdgeRecord | ComponentRecord) -> list[str]:
    if isinstance(item, ParsedEdgeRecord):
        block = explain_record(item)
        out = [f"  {_time(item.when)}  {block[0]}"]
        out.extend(_INDENT + line.strip() for line in block[1:])
        return out
    result = f" Result {item.result_hex}({item.result_symbol})" if item.result_hex else ""
    out = [f"  {_time(item.when)}  Edge component {item.level}: {item.text}{result}"]
    if item.diagnostic is not None:
        out.extend(_INDENT + line.strip() for line in explain_record(item.diagnostic))
    return out


def ladder_text(items: Sequence[LadderItem]) -> str:
    """The ladder of each call (grouped by Call-ID, in order of first appearance).

    One line per message (time, who -> who, start line), each ms-diagnostics header
    it carries decoded under it, and each Edge record (TF_DIAG, TF_COMPONENT)
    decoded where it falls. Items keep their order within a call.

    Returns:
        Plain text ending with a newline.
    """
    calls: dict[str, list[LadderItem]] = {}
    for item in items:
        calls.setdefault(_call_id(item), []).append(item)
    if _NO_CALL_ID in calls:  # what belongs to no call goes last
        calls[_NO_CALL_ID] = calls.pop(_NO_CALL_ID)
    blocks = []
    for call_id, members in calls.items():
        messages = sum(isinstance(m, LadderMessage) for m in members)
        records = len(members) - messages
        day = next((m.when for m in members if m.when is not None), None)
        what = [f"{messages} message{'s' * (messages != 1)}"]
        if records:
            what.append(f"{records} Edge record{'s' * (records != 1)}")
        date = f"{day:%Y-%m-%d} UTC, " if day is not None else ""
        lines = [f"Call {call_id} ({date}{', '.join(what)})"]
        for member in members:
            if isinstance(member, LadderMessage):
                lines.extend(_message_lines(member))
            else:
                lines.extend(_record_lines(member))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _edge_side(message: TraceMessage) -> str:
    return f"Edge/{message.side}" if message.side is not None else "Edge"


def trace_ladder(text: str) -> str:
    """The ladders of a SIPStack trace (TF_PROTOCOL, TF_DIAG, TF_COMPONENT records).

    Raises:
        DiagnosticsParseError: the text holds no record, or a malformed one.
    """
    items: list[LadderItem] = []
    for record in parse_trace(text):
        if not isinstance(record, TraceMessage):
            items.append(record)
            continue
        peer = record.peer or "peer"
        edge = _edge_side(record)
        source, destination = (peer, edge) if record.direction != "outgoing" else (edge, peer)
        items.append(LadderMessage(when=record.when, source=source, destination=destination,
                                   data=record.data))  # fmt: skip
    if not items:
        raise DiagnosticsParseError(
            "no SIPStack record ($$begin_record ... $$end_record) in the trace",
            text=text,
            fix="give the trace.log of fedsim serve --trace, or a Snooper/OCSLogger export",
        )
    return ladder_text(items)


def capture_ladder(data: bytes) -> str:
    """The ladders of the SIP messages sent in clear in a pcap or pcapng capture.

    Raises:
        CaptureError: not a readable capture, or no SIP in clear in it.
    """
    found = read_capture(data)
    if not found:
        raise CaptureError(
            "no SIP message in clear in the capture (SIP over TLS is encrypted): "
            "capture with fedsim serve --pcap, or decrypt it in Wireshark with --keylog's file"
        )
    items: list[LadderItem] = [
        LadderMessage(
            when=dt.datetime.fromtimestamp(m.when, dt.UTC),
            source=format_peer(m.source),
            destination=format_peer(m.destination),
            data=m.data,
        )
        for m in found
    ]
    return ladder_text(items)
