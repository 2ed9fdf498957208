"""The recorder's codec: event lines, their compiled templates, and a decision's event.

Only :mod:`simulator.edge.recorder` uses this module; it lives apart so the
recorder reads as what it writes, not how it encodes. One encoder encodes every
line; :class:`EventTemplate` compiles a decision's line once per connection,
with holes for what each request changes (the Edge's hot path).

A decision's event carries ``user``: what the called Skype user answered (the
media of its SDP answer, the text of a MESSAGE, the presence it sent), or null
for a request that never reached a user. Only an accepted decision's template
has a hole for it, so the refused path fills no more than it did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring

from simulator.diagnostics import (
    MS_DIAGNOSTICS,
    EdgeLogRecord,
    EdgeLogTemplate,
    parse_ms_diagnostics,
)
from simulator.diagnostics.catalogue import parameters_fidelity
from simulator.policy import Decision
from simulator.sip import Request

#: The one encoder of every event line (a JSONEncoder built per call costs ~4 us).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: What the encoder does with a str (ensure_ascii=False), called directly.
json_string = encode_basestring


def event_json(event: Mapping[str, object]) -> str:
    """One ``events.jsonl`` line (no newline): compact, UTF-8 kept, key order kept."""
    return _ENCODER.encode(event)


def _encode_value(value: object) -> str:
    kind = type(value)
    if kind is str:
        return json_string(value)  # type: ignore[arg-type]
    if kind is int:
        return str(value)
    return _ENCODER.encode(value)


#: Marks a per-request field in a template (never in a value: SIP refuses NUL).
_HOLE = "\x00{}\x00"


class EventTemplate:
    """An event line compiled once, with holes for the fields each request changes.

    :meth:`render` joins the fixed pieces with the encoded values: the same bytes
    :func:`event_json` gives for the filled-in event.
    """

    __slots__ = ("_fields", "_pieces")

    def __init__(self, event: Mapping[str, object], fields: Sequence[str]) -> None:
        holes = dict(event)
        for name in fields:
            if name not in holes:
                raise ValueError(f"event template has no field {name!r}")
            holes[name] = _HOLE.format(name)
        rest = event_json(holes)
        pieces: list[str] = []
        order: list[str] = []
        while True:
            found = [
                (at, n)
                for n in fields
                if n not in order and (at := rest.find(json.dumps(_HOLE.format(n)))) >= 0
            ]
            if not found:
                break
            at, name = min(found)
            pieces.append(rest[:at])
            order.append(name)
            rest = rest[at + len(json.dumps(_HOLE.format(name))) :]
        pieces.append(rest)
        self._fields = tuple(order)
        self._pieces = tuple(pieces)

    @property
    def fields(self) -> tuple[str, ...]:
        """The per-request fields, in the order :meth:`render_encoded` takes them."""
        return self._fields

    def render_encoded(self, encoded: Sequence[str]) -> str:
        """The line for values already encoded (:func:`json_string`, ``str(int)``)."""
        pieces = self._pieces
        if len(encoded) != len(pieces) - 1:
            raise ValueError(f"expected {len(pieces) - 1} encoded values, got {len(encoded)}")
        out = [pieces[0]]
        for value, piece in zip(encoded, pieces[1:], strict=True):
            out.append(value)
            out.append(piece)
        return "".join(out)

    def render(self, values: Mapping[str, object]) -> str:
        """The line for ``values`` (every field named at compile time)."""
        return self.render_encoded([_encode_value(values[name]) for name in self._fields])


def request_fields(direction: str, request: Request, peer: str) -> dict[str, object]:
    """The fields every event about one request starts with (after time and kind)."""
    return {
        "direction": direction,
        "call_id": request.call_id,
        "method": request.method,
        "from": str(request.from_.uri),
        "to": str(request.to.uri),
        "peer": peer,
    }


def decision_event(
    decision: Decision,
    *,
    time: str,
    direction: str,
    call_id: str,
    method: str,
    from_uri: str,
    to_uri: str,
    peer: str,
    extra: Mapping[str, object],
) -> dict[str, object]:
    """The ``decision`` event of one policy decision, keys in a fixed order.

    Raises:
        ValueError: ``extra`` cannot be serialised to JSON.
    """
    try:
        event_json(extra)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event extra is not JSON-serialisable: {exc}") from exc
    log = decision.edge_log
    event: dict[str, object] = {
        "time": time,
        "kind": "decision",
        "direction": direction,
        "call_id": call_id,
        "method": method,
        "from": from_uri,
        "to": to_uri,
        "domain": decision.domain,
        "peer": peer,
        "rule": decision.rule,
        "accepted": decision.accepted,
        "status": decision.status,
        "reason": decision.reason,
        "fidelity": decision.fidelity,
        "explanation": decision.explanation,
        "headers": [[name, value] for name, value in decision.headers],
        "ms_diagnostics": decision.ms_diagnostics,
        "ms_diagnostics_fidelity": diagnostics_fidelity(decision.ms_diagnostics),
        "edge_log": None if log is None else record_summary(log),
        "extra": dict(extra),
        "user": None,
    }
    # What a few decisions also write: a TF_COMPONENT line, a Windows event.
    if decision.component is not None:
        event["component"] = {
            "text": decision.component.text,
            "location": decision.component.location,
            "result": decision.component.result,
            "fidelity": decision.component.fidelity,
        }
    if decision.windows_event is not None:
        event["windows_event"] = {
            "id": decision.windows_event.id,
            "text": decision.windows_event.text,
            "fidelity": decision.windows_event.fidelity,
        }
    return event


def render_record(
    template: EdgeLogTemplate, request: Request, *, stamp: str, seq: int, correlation_id: int
) -> str:
    """The Edge log record of ``template`` filled for ``request``."""
    number, method = request.cseq
    return template.render(
        stamp=stamp,
        seq=seq,
        correlation_id=correlation_id,
        start_line=request.start_line,
        call_id=request.call_id,
        cseq=f"{number} {method}",
    )


def windows_event_line(decision: Decision) -> str:
    """The console's line for the decision's Windows event (after its own), or ""."""
    found = decision.windows_event
    return "" if found is None else f"\n  event {found.id}: {found.text}"


def diagnostics_fidelity(header: str | None) -> dict[str, str | None] | None:
    """How far each part of an ms-diagnostics value is Microsoft's (as ``fedsim explain``
    labels it): the reason string ("wire", "spec" or "unverified"), the parameter set
    and the status it travels on ("verbatim", "inferred", or None when unknown)."""
    if header is None:
        return None
    parsed = parse_ms_diagnostics(header)
    entry = MS_DIAGNOSTICS.get(parsed.code)
    if entry is None:
        return None
    names = tuple(name for name, _ in parsed.params)
    return {
        "reason": entry.reason_origin,
        "parameters": parameters_fidelity(parsed.code, names),
        "status": entry.status_fidelity,
    }


def record_summary(log: EdgeLogRecord) -> dict[str, object]:
    return {
        "result_code": log.result.hex,
        "symbol": log.result.symbol,
        "severity": log.result.severity,
        "data": dict(log.data),
        "fidelity": log.fidelity,
    }


#: The fields of an inbound decision's event that change from request to request.
DECISION_FIELDS = ("time", "call_id", "method", "from", "to", "status")


def decision_fields(decision: Decision) -> tuple[str, ...]:
    """The holes of a decision's template: an accepted one also fills ``user``."""
    return (*DECISION_FIELDS, "user") if decision.accepted else DECISION_FIELDS


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision compiled for one connection: its event and Edge record, with holes."""

    decision: Decision
    event: EventTemplate
    #: The Edge record of the decision on this connection (None when nothing is logged).
    record: EdgeLogTemplate | None


def verdict_line(
    verdict: Verdict,
    iso: str,
    request: Request,
    from_text: str,
    to_text: str,
    status: int,
    user: Mapping[str, object] | None,
) -> str:
    """One request's line of a compiled decision (its holes filled, already encoded)."""
    values = [
        f'"{iso}"',
        json_string(request.call_id),
        json_string(request.method),
        json_string(from_text),
        json_string(to_text),
        str(status),
    ]
    if verdict.decision.accepted:
        values.append("null" if user is None else event_json(user))
    return verdict.event.render_encoded(values)
