"""Turn a pasted ms-diagnostics header, Edge log record or known sentence into cause and fix.

The pure core of ``fedsim explain``; :mod:`simulator.trace.ladder` uses the two
per-artefact explainers for the ladders of traces and captures. Besides the
headers and records, a paste may hold what the field reads elsewhere (an Edge
component line, a Result-Code symbol alone, Test-CsFederatedPartner output, a
Teams or Skype client's sentence, the Expressway's event log):
:mod:`simulator.diagnostics.phrases` knows those strings.
"""

from __future__ import annotations

import re

from simulator.diagnostics.catalogue import (
    FURTHER_TARGET,
    MS_DIAGNOSTICS,
    SFB_NOT_FEDERATED,
    TEAMS_NOT_SET_UP,
    UNVERIFIED_HEX,
    VERBATIM_PARAMS,
    DiagnosticCode,
    ResultCode,
    lookup_result,
    parameters_fidelity,
)
from simulator.diagnostics.format import (
    DiagnosticsParseError,
    MsDiagnostics,
    ParsedEdgeRecord,
    find_ms_diagnostics_spans,
    parse_edge_log,
    parse_ms_diagnostics,
)
from simulator.diagnostics.phrases import Phrase, find_phrases

#: A Result-Code on its own (a symbol, or a 0xC3E9.... value): decoded from the catalogue.
_RESULT = re.compile(
    r"\b(SIPPROXY_E_[A-Z0-9_]+|EMU_UNVERIFIED_[A-Z0-9_]+|0x[cC]3[eE]9[0-9a-fA-F]{4})\b"
)
_RECORD = re.compile(r"\$\$begin_record.*?\$\$end_record", re.DOTALL)
#: The clients' sentences for codes whose refusal the user reads (field cases §2d, C13).
_USER_READS: dict[int, tuple[str, ...]] = {
    1002: (
        "a Skype for Business user reads: " + SFB_NOT_FEDERATED.format(uri="<address>"),
        "a Teams user reads: " + TEAMS_NOT_SET_UP,
    ),
}

_FIDELITY_NOTE = {
    "verbatim": "seen verbatim in Microsoft traces/logs",
    "inferred": "inferred by fedsim, not seen verbatim",
    "unverified": "unverified: commonly reported, not found in any source",
}

#: What each source of a reason string means for the wire (reference §3.2's columns).
_REASON_NOTE = {
    "wire": "reason: seen verbatim on the wire",
    "spec": (
        "reason: Microsoft's MS-OCER table string (verbatim there); its wire form was "
        "never captured (1002 and 1008 lose the table's trailing period on the wire)"
    ),
    "unverified": "reason: unverified (commonly reported, found in no source)",
}


def _params_note(diag: MsDiagnostics) -> str | None:
    """Whether the header's parameters are a form some source shows, or not."""
    names = tuple(name for name, _ in diag.params)
    fidelity = parameters_fidelity(diag.code, names)
    if fidelity is None:
        return None
    if fidelity == "verbatim":
        return "parameters: as seen verbatim"
    first = tuple(n for n in names if not FURTHER_TARGET.fullmatch(n))
    if first != names and parameters_fidelity(diag.code, first) == "verbatim":
        return "parameters: as seen verbatim, and fedsim's numbering of further targets"
    seen = " | ".join(";".join(shape) or "(none)" for shape in VERBATIM_PARAMS[diag.code])
    return (
        f"parameters: a form no source shows (seen: {seen}); fedsim builds such variants "
        "itself (inferred), so do not read them as Microsoft's"
    )


def _status_note(entry: DiagnosticCode) -> str:
    if entry.status is None:
        if entry.code in (1011, 1034, 1036):
            return "status: the partner's own, passed through"
        return "status: unknown"
    if entry.status_fidelity == "verbatim":
        return f"status: SIP {entry.status}, seen with it"
    return f"status: SIP {entry.status} is inferred (no trace shows its status)"


def explain_diagnostics(diag: MsDiagnostics) -> list[str]:
    """The lines that explain one ms-diagnostics header: code, reason, params, cause, fix.

    The last line says how far each part is Microsoft's: the reason string (seen on
    the wire, or only in the spec table), the parameters (a form a source shows, or
    not) and the status it travels on (seen, inferred or unknown).
    """
    code = f"{diag.code}" if diag.sub_code is None else f"{diag.code}.{diag.sub_code}"
    out = [f"ms-diagnostics {code}: {diag.reason or '(no reason)'}"]
    for name, value in diag.params:
        out.append(f"  {name} = {value}")
    if diag.source:
        out.append(f"  source = {diag.source} (the server that generated it)")
    entry = MS_DIAGNOSTICS.get(diag.code)
    if entry is None:
        out.append("  Not in fedsim's catalogue: no explanation available.")
        return out
    out.append(f"  Meaning: {entry.meaning}")
    out.extend(f"  Cause: {cause}" for cause in entry.causes)
    out.append(f"  Fix: {entry.fix}")
    out.extend(f"  What {line}" for line in _USER_READS.get(diag.code, ()))
    notes = [_REASON_NOTE[entry.reason_origin]]
    if (params := _params_note(diag)) is not None:
        notes.append(params)
    notes.append(_status_note(entry))
    out.append(f"  ({'; '.join(notes)}; source: {entry.source})")
    return out


def explain_record(record: ParsedEdgeRecord) -> list[str]:
    """The lines that explain one Edge log record: Result-Code, text, data, cause, fix."""
    out = [f"Edge log {record.severity or '?'}: {record.result_hex} {record.result_symbol}"]
    if record.text:
        out.append(f"  Text: {record.text}")
    if record.start_line:
        out.append(f"  Request: {record.start_line} (Call-ID {record.call_id})")
    if record.peer:
        out.append(f"  Peer: {record.peer}")
    for name, value in record.data:
        out.append(f"  {name} = {value}")
    entry = record.result
    if entry is None:
        why = (
            "fedsim marker for an unknown code"
            if record.result_hex == UNVERIFIED_HEX
            else "not in fedsim's catalogue"
        )
        out.append(f"  {why}: no explanation available.")
        return out
    out.append(f"  Meaning: {entry.meaning}")
    out.extend(f"  Cause: {cause}" for cause in entry.causes)
    out.append(f"  Fix: {entry.fix}")
    out.append(f"  ({_FIDELITY_NOTE[entry.fidelity]}; source: {entry.source})")
    return out


def explain_result(result: ResultCode, shown: str) -> list[str]:
    """The lines that explain a Result-Code seen on its own (``shown``: as pasted)."""
    out = [f"Edge Result-Code {result.hex} {result.symbol} (seen: {shown})"]
    if result.hex_known:
        out.append(f"  Text: {result.text}")
    out.append(f"  Meaning: {result.meaning}")
    out.extend(f"  Cause: {cause}" for cause in result.causes)
    out.append(f"  Fix: {result.fix}")
    value = "" if result.hex_known else "; its value is not public"
    out.append(f"  ({_FIDELITY_NOTE[result.fidelity]}{value}; source: {result.source})")
    return out


def explain_phrase(phrase: Phrase, shown: str) -> list[str]:
    """The lines that explain a known sentence (``shown``: the text matched)."""
    out = [phrase.title, f'  Seen: "{shown}" ({phrase.seen_by})']
    out.append(f"  Meaning: {phrase.meaning}")
    out.extend(f"  Cause: {cause}" for cause in phrase.causes)
    out.append(f"  Fix: {phrase.fix}")
    cases = f"field cases {', '.join(phrase.cases)}; " if phrase.cases else ""
    out.append(f"  (seen verbatim: {cases}source: {phrase.source})")
    code = phrase.code
    if "code" in phrase.pattern.groupindex:
        match = phrase.pattern.search(shown)
        code = int(match["code"]) if match and match["code"] else code
    if code is not None and code in MS_DIAGNOSTICS:
        entry = MS_DIAGNOSTICS[code]
        block = explain_diagnostics(
            MsDiagnostics(code=code, reason=entry.reason, params=(), source=None)
        )
        out.extend("  " + line for line in block)
    return out


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with ``spans`` replaced by spaces (so nothing is explained twice)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def explain_text(text: str) -> str:
    """Explain every Edge log record, ms-diagnostics header and known string in ``text``.

    ``text`` may be a bare value (``1009;reason=...``), a header line, a whole SIP
    response, an Edge log excerpt (its layout or a flattened paste), a trace line,
    a Result-Code symbol, or a sentence the field reads (a client's, a tool's, the
    Expressway's: :mod:`simulator.diagnostics.phrases`).

    Returns:
        Plain text, one block per artefact found, ending with a newline.

    Raises:
        DiagnosticsParseError: nothing recognisable was found.
    """
    records = parse_edge_log(text)
    blocks: list[list[str]] = [explain_record(r) for r in records]
    rest = _blank(text, [(m.start(), m.end()) for m in _RECORD.finditer(text)])
    headers = find_ms_diagnostics_spans(rest)
    blocks += [explain_diagnostics(d) for d, _start, _end in headers]
    rest = _blank(rest, [(start, end) for _d, start, end in headers])
    if not blocks and rest.strip()[:1].isdigit():
        try:  # a bare value: 1009;reason="..."
            blocks.append(explain_diagnostics(parse_ms_diagnostics(rest.strip())))
            rest = ""
        except DiagnosticsParseError:
            pass
    # A Result-Code a record already explained (a component line repeats it) is not
    # explained again.
    seen: set[str] = {r.result.symbol for r in records if r.result is not None}
    for match in _RESULT.finditer(rest):
        result = lookup_result(match.group(1))
        if result is not None and result.symbol not in seen:
            seen.add(result.symbol)
            blocks.append(explain_result(result, match.group(1)))
    for _at, phrase, found in find_phrases(rest):
        if phrase.title not in seen:
            seen.add(phrase.title)
            blocks.append(explain_phrase(phrase, found.group(0)))
    if not blocks:
        try:
            blocks = [explain_diagnostics(parse_ms_diagnostics(text.strip()))]
        except DiagnosticsParseError:
            raise DiagnosticsParseError(
                "nothing fedsim knows: no ms-diagnostics header, Edge record or known message",
                text=text,
                fix="paste an ms-diagnostics header, an Edge log record or the error text",
            ) from None
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"
