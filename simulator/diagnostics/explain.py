"""Turn a pasted ms-diagnostics header or Edge log record into cause and fix.

The pure core of ``fedsim explain``; :mod:`simulator.trace.ladder` uses the two
per-artefact explainers for the ladders of traces and captures.
"""

from __future__ import annotations

from simulator.diagnostics.catalogue import (
    FURTHER_TARGET,
    MS_DIAGNOSTICS,
    UNVERIFIED_HEX,
    VERBATIM_PARAMS,
    DiagnosticCode,
    parameters_fidelity,
)
from simulator.diagnostics.format import (
    MsDiagnostics,
    ParsedEdgeRecord,
    find_ms_diagnostics,
    parse_edge_log,
    parse_ms_diagnostics,
)

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


def explain_text(text: str) -> str:
    """Explain every Edge log record and ms-diagnostics header found in ``text``.

    ``text`` may be a bare value (``1009;reason=...``), a header line, a whole SIP
    response or an Edge log excerpt, in the Edge's layout or a flattened paste.

    Returns:
        Plain text, one block per artefact found, ending with a newline.

    Raises:
        DiagnosticsParseError: nothing recognisable was found.
    """
    blocks: list[list[str]] = [explain_record(r) for r in parse_edge_log(text)]
    if not blocks:
        headers = find_ms_diagnostics(text)
        if not headers:
            headers = [parse_ms_diagnostics(text.strip())]
        blocks = [explain_diagnostics(d) for d in headers]
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"
