"""The Edge's SIPStack trace: TF_PROTOCOL and TF_COMPONENT records, written and read back.

Reference §4.1 shows one ``TL_INFO(TF_PROTOCOL)`` record verbatim (OCS 2007 R2
Edge, Microsoft's "Test-CsFederatedPartner fails")::

    TL_INFO(TF_PROTOCOL) [0]06E4.0EB4::01/18/2012-05:00:43.101.00005386 (SIPStack,
      SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125))$$begin_record   (one line)
    Trace-Correlation-Id: 2003888399
    Instance-Id: 0000C23F
    Direction: incoming;source="internal edge";destination="external edge"
    Peer: lyncservr.contoso.com:61182
    Message-Type: request
    Start-Line: OPTIONS sip:Options_User@fabrikam.com SIP/2.0
    To: <sip:Options_User@fabrikam.com>
    ...
    CONTENT-LENGTH: 0
    USER-AGENT: RTCC/4.0.0.0
    Message-Body: -
    $$end_record

:func:`format_protocol_record` writes that shape: the machine in the SfB form
of the TF_DIAG record (``[sfvedge\\sfvedge]``), no space before
``$$begin_record`` (as shown), the header lines as received, one per line.

**Direction.** Only ``incoming;source="internal edge";destination="external edge"``
is verbatim: a message the Edge received on its internal side, bound for the
external side. The other three are inferred by the same reading (``source`` is
the side the message came from, ``destination`` the side it goes to), see
:data:`DIRECTIONS`.

**Body, byte for byte.** The reference shows ``Message-Body: -`` for an empty
body. A body is written after ``Message-Body: `` as text, its CRLF line ends as
the file's LF; the reader takes back exactly ``Content-Length`` bytes, turning
each LF into CRLF again, so a record reads back into the very bytes that crossed
the wire. A message that cannot be written that way and read back exactly (not
UTF-8, a bare CR or LF, no or a wrong Content-Length for its body, a header line
that starts ``Message-Body:``, or the record markers inside) gets the fedsim
field ``Fedsim-Wire-Base64:`` (the whole message in base64) before its
``Start-Line``, and its lines are shown escaped; Microsoft shows no such field.

``TL_ERROR(TF_COMPONENT)`` lines (:func:`format_component_record`) follow the
reference's ``Exit - ... Result 0xC3E93C5E(SIPPROXY_E_ROUTING)`` form, with the
diagnostic block that follows it there (``LogType: diagnostic`` ... ``$$end_record``,
shown without a ``$$begin_record``).

:func:`parse_trace` reads a whole trace (TF_PROTOCOL, TF_DIAG, TF_COMPONENT,
in any order) back, as tolerant of pasted text as
:func:`simulator.diagnostics.parse_edge_log`, which it uses for TF_DIAG. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.diagnostics import (
    DiagnosticsParseError,
    ParsedEdgeRecord,
    ResultCode,
    parse_edge_log,
)
from simulator.trace.model import Direction, Side, WireMessage

__all__ = [
    "COMPONENT_LOCATION",
    "DIRECTIONS",
    "PROTOCOL_LOCATION",
    "ComponentRecord",
    "TraceMessage",
    "TraceRecord",
    "format_component_record",
    "format_peer",
    "format_protocol_record",
    "parse_trace",
    "transaction_key",
]

#: Reference §4.1 (verbatim): where TF_PROTOCOL records are written from.
PROTOCOL_LOCATION = "SIPStack,SIPAdminLog::TraceProtocolRecord:SIPAdminLog.cpp(125)"
#: Reference §4.1 (verbatim): the TF_COMPONENT example's location.
COMPONENT_LOCATION = "SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest.cpp(2440)"

#: ``Direction:`` per (direction, side). Verbatim: ("incoming", "internal") only
#: (reference §4.1); the other three are inferred (source = the side the message
#: came from, destination = the side it goes to).
DIRECTIONS: dict[tuple[Direction, Side], str] = {
    ("incoming", "internal"): 'incoming;source="internal edge";destination="external edge"',
    ("incoming", "external"): 'incoming;source="external edge";destination="internal edge"',
    ("outgoing", "external"): 'outgoing;source="internal edge";destination="external edge"',
    ("outgoing", "internal"): 'outgoing;source="external edge";destination="internal edge"',
}
_SIDE_NAMES: dict[str, Side] = {"external edge": "external", "internal edge": "internal"}

#: fedsim's own field (not Microsoft's): the message in base64 when the plain form
#: cannot give its bytes back exactly.
WIRE_FIELD = "Fedsim-Wire-Base64"

_BEGIN = "$$begin_record"
_END = "$$end_record"
_BEGIN_BYTES = _BEGIN.encode()
_END_BYTES = _END.encode()
#: A Content-Length header line's value (RFC 3261 §7.3.3: "l" is compact); a folded
#: continuation line starts with whitespace and is no header of its own.
_CONTENT_LENGTH = re.compile(r"\r\n(?:content-length|l)[ \t]*:([^\r\n]*)", re.I | re.ASCII)
#: Header lines the reader could not give back: blank ones (it skips them) and those
#: that start ``Message-Body:`` (it ends the headers there).
_UNSHOWABLE = re.compile(r"\r\n[ \t]*(?:\r\n|\Z|Message-Body:)")


#: Call-ID and CSeq header lines of a message's head (RFC 3261 §7.3.3: "i" is compact).
_TX_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|\Z)", re.I)
_TX_CSEQ = re.compile(rb"\r\ncseq[ \t]*:[ \t]*(\d{1,10})[ \t]+([^\s;,]+)", re.I)


def transaction_key(
    data: bytes | None = None, *, call_id: str = "", number: int = 0, method: str = ""
) -> tuple[str, int, str] | None:
    """The transaction a message belongs to, as (Call-ID, CSeq number, CSeq method).

    From the bytes of a message (``data``), or from a parsed request's Call-ID and
    CSeq. An ACK counts with the INVITE it acknowledges (same Call-ID and number),
    so a trace shows a call's INVITE, answers and ACK under one
    ``Trace-Correlation-Id`` (inferred: Microsoft shows one record only).

    Returns:
        The key, or None when ``data`` has no readable Call-ID or CSeq.
    """
    if data is not None:
        end = data.find(b"\r\n\r\n")
        head = data[: end + 2] if end >= 0 else data
        found_id = _TX_CALL_ID.search(head)
        found_cseq = _TX_CSEQ.search(head)
        if found_id is None or found_cseq is None:
            return None
        call_id = found_id.group(1).decode("utf-8", "replace")
        number = int(found_cseq.group(1))
        method = found_cseq.group(2).decode("ascii", "replace")
    return call_id, number, "INVITE" if method == "ACK" else method


def format_peer(address: tuple[str, int]) -> str:
    """``host:port`` as the ``Peer:`` field shows it; an IPv6 address in brackets."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@functools.lru_cache(maxsize=8)
def _second(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%m/%d/%Y-%H:%M:%S")


def _stamp(when: float) -> str:
    """``MM/DD/YYYY-HH:MM:SS.mmm`` in UTC, as :func:`edge_log_stamp` prints it.

    The microseconds are rounded as ``datetime.fromtimestamp`` rounds them (the
    fraction alone, half to even), so both stamps agree on every float.
    """
    fraction, whole = math.modf(when)
    second, micro = int(whole), round(fraction * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    return f"{_second(second)}.{micro // 1000:03d}"


def _head(level: str, flag: str, *, machine: str, pid: int, tid: int, when: float, seq: int) -> str:
    return f"{level}({flag}) [{machine}\\{machine}]{pid:04X}.{tid:04X}::{_stamp(when)}.{seq:08X}"


def _declared_length(head: str) -> int | None:
    """The one Content-Length a header block declares; None when absent or unclear.

    ``head`` is the start line and the header lines joined by CRLF (no blank line).
    The same value given twice counts once, as the Edge's framer takes it.
    """
    values = {value.strip(" \t") for value in _CONTENT_LENGTH.findall(head)}
    if len(values) != 1:
        return None
    value = values.pop()
    return int(value) if value.isdigit() and value.isascii() and len(value) < 10 else None


def _plain(data: bytes) -> tuple[str, str, str] | None:
    """(start line, header lines, body) when the plain form gives ``data`` back exactly.

    The header lines stay CRLF-joined; the body comes with LF line ends.
    """
    if _BEGIN_BYTES in data or _END_BYTES in data:
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    try:
        head = data[:head_end].decode("utf-8")
        body = data[head_end + 4 :].decode("utf-8")
    except UnicodeDecodeError:
        return None
    crlf = head.count("\r\n")
    if head.count("\r") != crlf or head.count("\n") != crlf or _UNSHOWABLE.search(head):
        return None  # a bare CR or LF, or a line the reader would skip or stop at
    start_line, _, headers = head.partition("\r\n")
    if not start_line:
        return None
    length = _declared_length(head)
    if body:
        crlf = body.count("\r\n")
        if length != len(data) - head_end - 4 or body.count("\r") != crlf:
            return None
        if body.count("\n") != crlf:
            return None
        return start_line, headers, body.replace("\r\n", "\n")
    if length != 0 and _CONTENT_LENGTH.search(head):
        return None
    return start_line, headers, ""


def _shown(text: str) -> str:
    """A line of a message that is not plain, made safe to show: no breaks, no markers."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("$$", "$ $")


def format_protocol_record(
    message: WireMessage,
    *,
    machine: str,
    pid: int,
    tid: int,
    seq: int,
    correlation_id: int,
    instance_id: int,
    peer: str | None = None,
) -> str:
    """Render one SIP message as the Edge's ``TL_INFO(TF_PROTOCOL)`` record (reference §4.1).

    Args:
        message: what crossed the wire, when, on which side and in which direction.
        machine: the Edge machine name, shown ``[machine\\machine]``.
        pid / tid: process and thread id, 4 hex digits each.
        seq: the trace file's record sequence number (8 hex digits), shared with the
            TF_DIAG and TF_COMPONENT records of the same file.
        correlation_id: ``Trace-Correlation-Id`` (decimal): the transaction's, the
            same number as its TF_DIAG record's ``[...]`` (inferred).
        instance_id: ``Instance-Id`` (8 hex digits): one per message (inferred).
        peer: the ``Peer:`` field; default the remote address (``host:port``).

    Returns:
        The record, one field per line, ``\\n`` line ends, ending ``$$end_record\\n``.
    """
    kind = "response" if message.data.startswith(b"SIP/") else "request"
    out = [
        _head(
            "TL_INFO",
            "TF_PROTOCOL",
            machine=machine,
            pid=pid,
            tid=tid,
            when=message.when,
            seq=seq,
        ),
        f" ({PROTOCOL_LOCATION}){_BEGIN}\n",
        f"Trace-Correlation-Id: {correlation_id}\n",
        f"Instance-Id: {instance_id:08X}\n",
        f"Direction: {DIRECTIONS[message.direction, message.side]}\n",
        f"Peer: {peer if peer is not None else format_peer(message.remote)}\n",
        f"Message-Type: {kind}\n",
    ]
    plain = _plain(message.data)
    if plain is not None:
        start_line, headers, body = plain
        out.append(f"Start-Line: {start_line}\n")
        if headers:
            out.append(headers.replace("\r\n", "\n") + "\n")
        if not body:
            out.append("Message-Body: -\n")
        else:
            ending = "" if body.endswith("\n") else "\n"
            out.append(f"Message-Body: {body}{ending}")
    else:
        out.append(f"{WIRE_FIELD}: {base64.b64encode(message.data).decode('ascii')}\n")
        raw_head, _, raw_body = message.data.partition(b"\r\n\r\n")
        first, *rest = raw_head.decode("utf-8", "backslashreplace").split("\r\n")
        out.append(f"Start-Line: {_shown(first)}\n")
        out.extend(f"{_shown(line)}\n" for line in rest)
        out.append(f"Message-Body: ({len(raw_body)} bytes)\n" if raw_body else "Message-Body: -\n")
    out.append(f"{_END}\n")
    return "".join(out)


def format_component_record(
    *,
    level: str,
    machine: str,
    pid: int,
    tid: int,
    when: float,
    seq: int,
    text: str,
    result: ResultCode | None = None,
    location: str = COMPONENT_LOCATION,
    object_id: int = 0,
    diagnostic: Sequence[tuple[str, str]] = (),
) -> str:
    """Render a ``TL_<LEVEL>(TF_COMPONENT)`` line in the reference's form (§4.1).

    ``TL_ERROR(TF_COMPONENT) [m\\m]0860.0CDC::01/18/2012-05:07:42.622.000D0B31
    (SIPStack,CSIPRequest::GetNextHopByRouteHeader:SIPRequest.cpp(2440))( 00000000028FDD70 )
    Exit - route headers from untrusted source. Result 0xC3E93C5E(SIPPROXY_E_ROUTING)``
    on one line, then, when ``diagnostic`` is given, its fields one per line and
    ``$$end_record`` (the reference shows that block with no ``$$begin_record``).

    Args:
        level: "TL_ERROR", "TL_WARN" or "TL_INFO".
        text: what the component says (``Exit - ...``).
        result: the Result-Code, printed ``Result 0xC3E93C5E(SYMBOL)``; None omits it.
        location: ``SIPStack,<Class>::<Method>:<file>.cpp(<line>)``.
        object_id: the object's address, printed as 16 hex digits.
        diagnostic: the block's fields, e.g. ``("LogType", "diagnostic")``, in order.

    Returns:
        The record, ``\\n`` line ends, ending with a newline.
    """
    for value in (text, location, *(f"{k}{v}" for k, v in diagnostic)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"a component record field must be one line, not {value!r}")
    line = (
        _head(level, "TF_COMPONENT", machine=machine, pid=pid, tid=tid, when=when, seq=seq)
        + f" ({location})( {object_id:016X} ) {text}"
    )
    if result is not None:
        line += f" Result 0x{result.hex[2:].upper()}({result.symbol})"
    out = [line + "\n"]
    if diagnostic:
        out.extend(f"{name}: {value}\n" for name, value in diagnostic)
        out.append(f"{_END}\n")
    return "".join(out)


# ---------------------------------------------------------------------------
# Reading a trace back
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceMessage:
    """A TF_PROTOCOL record read back (fields absent from a paste are None).

    Attributes:
        when: the record's time (UTC, to the millisecond).
        seq: the 8-hex sequence number.
        correlation_id / instance_id: ``Trace-Correlation-Id`` and ``Instance-Id``.
        direction / side: from ``Direction:`` (see :data:`DIRECTIONS`).
        peer: the ``Peer:`` field as written; ``remote`` is it split into (host, port).
        data: the SIP message's bytes.
        exact: True when ``data`` is exactly what crossed the wire (a record fedsim
            wrote, or a paste whose body length matches its Content-Length); False
            when it was rebuilt from a paste (CRLF line ends, body as shown).
    """

    when: dt.datetime | None
    seq: int | None
    correlation_id: int | None
    instance_id: int | None
    direction: Direction | None
    side: Side | None
    peer: str | None
    remote: tuple[str, int] | None
    data: bytes
    exact: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentRecord:
    """A TF_COMPONENT line (and the diagnostic block after it, if any) read back."""

    level: str
    when: dt.datetime | None
    seq: int | None
    location: str | None
    object_id: str | None
    text: str
    result_hex: str | None
    result_symbol: str | None
    diagnostic: ParsedEdgeRecord | None


#: One record of a trace, in file order.
TraceRecord = TraceMessage | ParsedEdgeRecord | ComponentRecord

_HEAD_RE = re.compile(
    r"(?P<level>TL_[A-Z]+)\((?P<flag>TF_[A-Z]+)\)[ \t]*\[(?P<machine>[^\]\n]*)\][ \t]*"
    r"(?P<pid>[0-9A-Fa-f]{4})\.(?P<tid>[0-9A-Fa-f]{4})::"
    r"(?P<date>\d\d/\d\d/\d{4})-(?P<time>\d\d:\d\d:\d\d)\.(?P<ms>\d{3})\.(?P<seq>[0-9A-Fa-f]{8})"
    r"(?:[ \t]*\((?P<location>[^()\n]*(?:\([^()\n]*\)[^()\n]*)*)\))?"
    r"(?:[ \t]*\([ \t]*(?P<object>[0-9A-Fa-f]+)[ \t]*\))?"
    r"[ \t]*(?P<rest>[^\n]*)"
)
_RESULT_RE = re.compile(r"\s*\bResult (?P<hex>0x[0-9A-Fa-f]{8})\((?P<symbol>[A-Za-z0-9_]+)\)\s*$")
_PEER_RE = re.compile(r"\[(?P<v6>[^\]]+)\]:(?P<port6>\d+)|(?P<host>[^:\s]+):(?P<port>\d+)")


def _when(head: re.Match[str]) -> dt.datetime:
    return dt.datetime.strptime(f"{head['date']}-{head['time']}", "%m/%d/%Y-%H:%M:%S").replace(
        microsecond=int(head["ms"]) * 1000, tzinfo=dt.UTC
    )


def _field(line: str, name: str) -> str | None:
    """The value of ``name: value`` on ``line`` (one space after the colon kept exact)."""
    if not line.startswith(name + ":"):
        return None
    value = line[len(name) + 1 :]
    return value[1:] if value.startswith(" ") else value.lstrip(" \t")


def _direction(value: str | None) -> tuple[Direction | None, Side | None]:
    if value is None:
        return None, None
    words = [part.strip() for part in value.split(";")]
    direction: Direction | None = None
    if words[0] == "incoming":
        direction = "incoming"
    elif words[0] == "outgoing":
        direction = "outgoing"
    params = {}
    for part in words[1:]:
        name, _, param = part.partition("=")
        params[name.strip()] = param.strip().strip('"')
    side_name = params.get("source" if direction == "incoming" else "destination", "")
    return direction, _SIDE_NAMES.get(side_name)


def _remote(peer: str | None) -> tuple[str, int] | None:
    if peer is None:
        return None
    match = _PEER_RE.fullmatch(peer.strip())
    if match is None:
        return None
    if match["v6"] is not None:
        return match["v6"], int(match["port6"])
    return match["host"], int(match["port"])


def _parse_protocol(head: re.Match[str] | None, body: str) -> TraceMessage:
    """One TF_PROTOCOL record's fields and message; ``body`` is between the markers."""
    lines = body.split("\n")
    fields: dict[str, str] = {}
    i = 0
    while i < len(lines) and _field(lines[i].lstrip(" \t"), "Start-Line") is None:
        name, colon, value = lines[i].strip(" \t").partition(":")
        if colon:
            fields.setdefault(name, value.strip(" \t"))
        i += 1
    if i == len(lines):
        raise DiagnosticsParseError(
            "a TF_PROTOCOL record has no Start-Line",
            text=body,
            fix="paste the record from its TL_INFO(TF_PROTOCOL) line to $$end_record",
        )
    start_line = _field(lines[i].lstrip(" \t"), "Start-Line") or ""
    i += 1
    headers: list[str] = []
    rest: str | None = None
    while i < len(lines):
        shown = _field(lines[i].lstrip(" \t"), "Message-Body")
        if shown is not None:
            rest = "\n".join([shown, *lines[i + 1 :]])
            break
        if lines[i].strip(" \t"):
            headers.append(lines[i])
        i += 1
    direction, side = _direction(fields.get("Direction"))
    data: bytes
    exact = True
    if (wire := fields.get(WIRE_FIELD)) is not None:
        try:
            data = base64.b64decode(wire, validate=True)
        except binascii.Error as exc:
            raise DiagnosticsParseError(
                f"{WIRE_FIELD} is not base64",
                text=wire,
                fix="the record was cut or edited: paste it whole",
            ) from exc
    else:
        block = "\r\n".join([start_line, *headers])
        body_bytes, exact = _body(rest, _declared_length(block))
        data = f"{block}\r\n\r\n".encode("utf-8", "surrogateescape") + body_bytes
    corr = fields.get("Trace-Correlation-Id", "")
    instance = fields.get("Instance-Id", "")
    peer = fields.get("Peer")
    return TraceMessage(
        when=_when(head) if head is not None else None,
        seq=int(head["seq"], 16) if head is not None else None,
        correlation_id=int(corr) if corr.isdigit() else None,
        instance_id=int(instance, 16) if re.fullmatch(r"[0-9A-Fa-f]{1,8}", instance) else None,
        direction=direction,
        side=side,
        peer=peer,
        remote=_remote(peer),
        data=data,
        exact=exact,
    )


def _body(rest: str | None, length: int | None) -> tuple[bytes, bool]:
    """The body bytes from the text after ``Message-Body:``, and whether they are exact."""
    if rest is None:
        return b"", length in (None, 0)
    if length in (None, 0) and rest.strip(" \t\n") in ("-", ""):
        return b"", True
    candidate = rest.encode("utf-8", "surrogateescape").replace(b"\n", b"\r\n")
    if length is not None and candidate[length:] in (b"", b"\r\n"):
        return candidate[:length], True
    # A paste whose body does not match its Content-Length: the body as shown.
    shown = rest.rstrip(" \t\n")
    if shown == "-":
        return b"", False
    return shown.encode("utf-8", "surrogateescape").replace(b"\n", b"\r\n") + b"\r\n", False


def _parse_component(head: re.Match[str], chunk: str) -> ComponentRecord:
    """A TF_COMPONENT (or any begin-less) line and the block up to ``$$end_record`` after it."""
    rest = head["rest"].strip()
    result = _RESULT_RE.search(rest)
    text = rest[: result.start()] if result else rest
    diagnostic = None
    after = chunk[head.end() - head.start() :]
    end = after.find(_END)
    if end >= 0 and after[:end].strip():
        parsed = parse_edge_log(f"{_BEGIN}\n{after[:end].strip()}\n{_END}")
        diagnostic = parsed[0] if parsed else None
    return ComponentRecord(
        level=head["level"],
        when=_when(head),
        seq=int(head["seq"], 16),
        location=head["location"],
        object_id=head["object"],
        text=text.strip(),
        result_hex=result["hex"] if result else None,
        result_symbol=result["symbol"] if result else None,
        diagnostic=diagnostic,
    )


def parse_trace(text: str) -> list[TraceRecord]:
    """Read every record of a SIPStack trace (or an ``edge.log``, or a paste) in order.

    TF_PROTOCOL records become :class:`TraceMessage` (the exact wire bytes for a
    record fedsim wrote), TF_DIAG records :class:`ParsedEdgeRecord` (through
    :func:`simulator.diagnostics.parse_edge_log`, so flattened pastes work),
    TF_COMPONENT lines :class:`ComponentRecord`. CRLF line ends (a trace saved
    on Windows) read as LF. A ``$$begin_record`` block without its header line
    is a protocol record when it has ``Message-Type:`` and ``Start-Line:``.

    Returns:
        The records in file order; an empty list when there are none.

    Raises:
        DiagnosticsParseError: a record starts but never ends, or is malformed.
    """
    text = text.replace("\r\n", "\n")
    records: list[TraceRecord] = []
    pos = 0
    while True:
        begin = text.find(_BEGIN, pos)
        gap_end = begin if begin >= 0 else len(text)
        heads = list(_HEAD_RE.finditer(text, pos, gap_end))
        own: re.Match[str] | None = None
        if begin >= 0 and heads:
            last = heads[-1]
            if last["flag"] != "TF_COMPONENT" and _END not in text[last.start() : gap_end]:
                own = heads.pop()
        for i, head in enumerate(heads):
            stop = heads[i + 1].start() if i + 1 < len(heads) else gap_end
            if own is not None:
                stop = min(stop, own.start())
            records.append(_parse_component(head, text[head.start() : stop]))
        if begin < 0:
            return records
        end = text.find(_END, begin)
        if end < 0:
            raise DiagnosticsParseError(
                "a trace record starts with $$begin_record but never ends",
                text=text[begin:],
                fix="paste the record up to and including $$end_record",
            )
        body = text[begin + len(_BEGIN) : end]
        flag = own["flag"] if own is not None else None
        if flag == "TF_PROTOCOL" or (
            flag is None and "\nMessage-Type:" in body and "\nStart-Line:" in body
        ):
            records.append(_parse_protocol(own, body))
        else:
            # Without a head line of ours, let parse_edge_log find a (flattened) one.
            start = own.start() if own is not None else (begin if heads else pos)
            records.extend(parse_edge_log(text[start : end + len(_END)]))
        pos = end + len(_END)
