"""A call's ladder picture: a self-contained SVG sequence diagram built from what was observed.

Lanes, left to right: the caller (Expressway-E inbound, Skype client outbound),
the Edge, the lab DNS, and (outbound) the partner Expressway-E. Arrows show the
TLS handshake with the certificate names presented, the SRV (and A) query with
its outcome and targets as the Edge's event recorded them, the SIP request and
every response the caller received, and a box with the Edge's decision: its
rule and the Result-Code of the Edge log record. Pure: ``CallTrace`` in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from simulator.run.model import CallTrace

WIDTH = 1200
LANE_TOP = 70
ROW = 34
FONT = "font-family:monospace;font-size:12px"
COLOURS = {"request": "#1f4e9a", "response": "#2a7a2a", "error": "#b22222", "dns": "#7a4f9a"}


@dataclass(frozen=True, slots=True)
class _Arrow:
    src: str
    dst: str
    text: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Note:
    lane: str
    lines: tuple[str, ...]
    kind: str


_Step = _Arrow | _Note


def _a(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _srv_steps(edge: str, srv: Mapping[str, object]) -> list[_Step]:
    if not srv:
        return []
    targets = ", ".join(str(t) for t in _list(srv.get("targets"))) or "no targets"
    return [
        _Arrow(edge, "DNS", f"SRV? {srv.get('name')}", "dns"),
        _Arrow("DNS", edge, f"{str(srv.get('outcome', '?')).upper()}: {targets}", "dns"),
    ]


def _decision(trace: CallTrace) -> _Note:
    event = trace.event or {}
    log = _mapping(event.get("edge_log"))
    lines = [f"rule: {event.get('rule', '(no event)')}"]
    if event.get("status") is not None:
        lines[0] += f" -> {event.get('status')}"
    if log:
        lines.append(f"Result-Code: {log.get('result_code', '')} {log.get('symbol', '')}")
    else:
        lines.append("no Edge log record")
    kind = "response" if event.get("accepted") else "error"
    return _Note("Edge", tuple(lines), kind)


def _responses(trace: CallTrace, src: str, dst: str) -> list[_Step]:
    steps: list[_Step] = []
    for line in trace.responses:
        code = line.split(" ", 2)[1] if line.count(" ") >= 1 else ""
        kind = "response" if code[:1] in ("1", "2") else "error"
        steps.append(_Arrow(src, dst, line, kind))
    return steps


def _dialog(trace: CallTrace, caller: str) -> list[_Step]:
    """The caller's leg after its final response: ACK, BYE, NOTIFYs, retransmitted 200s."""
    leg = "federation" if trace.direction == "inbound" else "client"
    own = [m for m in trace.messages if m.leg == leg]
    steps: list[_Step] = []
    for message in own[1 + len(trace.responses) :]:
        line = message.start_line
        if line.startswith("SIP/2.0 "):
            kind = "response" if line[8:9] in "12" else "error"
        else:
            kind = "request"
        if message.sender == "Edge":
            steps.append(_Arrow("Edge", caller, line, kind))
        else:
            steps.append(_Arrow(caller, "Edge", line, kind))
    return steps


def _inbound(trace: CallTrace) -> tuple[list[str], list[_Step]]:
    caller = trace.caller
    event = trace.event or {}
    extra = _mapping(event.get("extra"))
    steps: list[_Step] = [
        _Arrow(caller, "Edge", "TLS ClientHello (mutual TLS, port 5061)", "request"),
        _Arrow(
            "Edge", caller, f"TLS: Edge presents {', '.join(trace.edge_cert_names)}", "response"
        ),
    ]
    if event.get("rule") == "tls-handshake-failed" or (trace.error and not trace.responses):
        reason = str(event.get("reason") or trace.error or "handshake refused")
        steps.append(_Arrow("Edge", caller, f"handshake refused: {reason}"[:110], "error"))
        if event:
            steps.append(_decision(trace))
        return [caller, "Edge"], steps
    names = ", ".join(trace.peer_cert_names) or "?"
    steps.append(_Arrow(caller, "Edge", f"TLS: client certificate {names}", "request"))
    steps.append(_Arrow(caller, "Edge", trace.request_line, "request"))
    srv = _mapping(extra.get("srv"))
    steps.extend(_srv_steps("Edge", srv))
    steps.append(_decision(trace))
    steps.extend(_responses(trace, "Edge", caller))
    steps.extend(_dialog(trace, caller))
    lanes = [caller, "Edge", "DNS"] if srv else [caller, "Edge"]
    return lanes, steps


def _outbound(trace: CallTrace) -> tuple[list[str], list[_Step]]:
    caller = trace.caller
    partner = f"Expressway-E {trace.peer_name}" if trace.peer_name else "Expressway-E"
    event = trace.event or {}
    extra = _mapping(event.get("extra"))
    steps: list[_Step] = [_Arrow(caller, "Edge", trace.request_line, "request")]
    provisional = [r for r in trace.responses if r.split(" ", 2)[1:2] == ["100"]]
    finals = [r for r in trace.responses if r not in provisional]
    steps.extend(_Arrow("Edge", caller, r, "response") for r in provisional)
    srv = _mapping(extra.get("srv"))
    steps.extend(_srv_steps("Edge", srv))
    route = _mapping(extra.get("route"))
    if route.get("kind") == "proxy":
        steps.append(
            _Note("Edge", (f"allowed partner server: {route.get('name')} (no SRV)",), "dns")
        )
    uses_partner = False
    for attempt in (_mapping(a) for a in _list(extra.get("targets_tried"))):
        target = str(attempt.get("target", "?"))
        host = target.rsplit(":", 1)[0]
        if "addresses" in attempt:
            addresses = ", ".join(str(a) for a in _list(attempt.get("addresses"))) or "none"
            steps.append(_Arrow("Edge", "DNS", f"A? {host}", "dns"))
            outcome = str(attempt.get("address_outcome", "?")).upper()
            steps.append(_Arrow("DNS", "Edge", f"{outcome}: {addresses}", "dns"))
        if _list(attempt.get("addresses")) or attempt.get("reused"):
            uses_partner = True
            steps.append(
                _Arrow(
                    "Edge",
                    partner,
                    f"TLS to {target}: Edge presents {', '.join(trace.edge_cert_names)}",
                    "request",
                )
            )
            names = ", ".join(str(n) for n in _list(attempt.get("cert_names")))
            if names:
                steps.append(
                    _Arrow(partner, "Edge", f"TLS: server certificate {names}", "response")
                )
            elif attempt.get("error") or attempt.get("winsock"):
                why = attempt.get("error") or attempt.get("winsock")
                steps.append(_Arrow(partner, "Edge", f"connection failed: {why}"[:110], "error"))
    for line in trace.partner_requests:
        uses_partner = True
        steps.append(_Arrow("Edge", partner, line, "request"))
    if trace.partner_requests:
        steps.extend(_Arrow(partner, "Edge", r, "response") for r in finals)
    steps.append(_decision(trace))
    steps.extend(
        _Arrow("Edge", caller, r, "response" if r[8:9] in "12" else "error") for r in finals
    )
    if trace.error and not trace.responses:
        steps.append(_Arrow("Edge", caller, f"no answer: {trace.error}"[:110], "error"))
    steps.extend(_dialog(trace, caller))
    lanes = [caller, "Edge"]
    if srv or any(isinstance(s, _Arrow) and "DNS" in (s.src, s.dst) for s in steps):
        lanes.append("DNS")
    if uses_partner:
        lanes.append(partner)
    return lanes, steps


def ladder_svg(trace: CallTrace, *, ids: str = "") -> str:
    """The call as an SVG sequence diagram (self-contained, no scripts, no external refs).

    Args:
        trace: what was observed of the call.
        ids: a prefix for the SVG's element ids, so several ladders can be inlined
            in one HTML page without duplicate ids.
    """
    ids = re.sub(r"[^A-Za-z0-9_-]", "_", ids)
    lanes, steps = _inbound(trace) if trace.direction == "inbound" else _outbound(trace)
    step_h = [ROW * (len(s.lines) if isinstance(s, _Note) else 1) + 6 for s in steps]
    height = LANE_TOP + 40 + sum(step_h) + 40
    # Lane boxes are 180 wide: keep their centres 110 px from the edges.
    gap = (WIDTH - 220) / max(len(lanes) - 1, 1)
    x = {lane: 110 + i * gap for i, lane in enumerate(lanes)}
    title = (
        f"{trace.scenario} call-{trace.number}: {trace.direction} {trace.method} "
        f"{trace.from_uri} -> {trace.to_uri}"
    )
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">',
        f"<title>{_a(title)}</title>",
        "<defs>",
        *(
            f'<marker id="{ids}arrow-{k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
            f'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for k, c in COLOURS.items()
        ),
        "</defs>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="20" y="26" style="{FONT};font-size:14px;font-weight:bold">{_a(title)}</text>',
    ]
    bottom = height - 20
    for lane in lanes:
        lx = x[lane]
        label = f"Edge {trace.edge_fqdn}" if lane == "Edge" else lane
        out.append(
            f'<rect x="{lx - 90:.0f}" y="{LANE_TOP - 26}" width="180" height="30" rx="4" '
            f'fill="#eef2f8" stroke="#334"/>'
        )
        out.append(
            f'<text x="{lx:.0f}" y="{LANE_TOP - 7}" text-anchor="middle" style="{FONT}">'
            f"{_a(label[:26])}</text>"
        )
        out.append(
            f'<line x1="{lx:.0f}" y1="{LANE_TOP + 4}" x2="{lx:.0f}" y2="{bottom}" '
            f'stroke="#99a" stroke-dasharray="4,4"/>'
        )
    y = LANE_TOP + 40
    for step, h in zip(steps, step_h, strict=True):
        colour = COLOURS.get(step.kind, "#333")
        if isinstance(step, _Arrow):
            x1, x2 = x[step.src], x[step.dst]
            out.append(
                f'<line x1="{x1:.0f}" y1="{y}" x2="{x2:.0f}" y2="{y}" stroke="{colour}" '
                f'stroke-width="1.5" marker-end="url(#{ids}arrow-{step.kind})"/>'
            )
            mid = (x1 + x2) / 2
            out.append(
                f'<text x="{mid:.0f}" y="{y - 6}" text-anchor="middle" fill="{colour}" '
                f'style="{FONT}">{_a(step.text)}</text>'
            )
        else:
            lx = x[step.lane]
            width = max(len(line) for line in step.lines) * 7.4 + 20
            out.append(
                f'<rect x="{lx - width / 2:.0f}" y="{y - 18}" width="{width:.0f}" '
                f'height="{h - 8}" rx="4" fill="#fff8e6" stroke="{colour}"/>'
            )
            for i, line in enumerate(step.lines):
                out.append(
                    f'<text x="{lx:.0f}" y="{y + i * ROW - 1}" text-anchor="middle" '
                    f'fill="{colour}" style="{FONT}">{_a(line)}</text>'
                )
        y += h
    out.append("</svg>")
    return "\n".join(out) + "\n"


def ladder_file_name(trace: CallTrace, ident: str) -> str:
    """``seeds--01-acano-srv-parent-domain--call-1.svg``: one flat, unique file name per call."""
    return f"{ident.replace('/', '--')}--call-{trace.number}.svg"


def ladder_html(svgs: Sequence[str], title: str) -> str:
    """Several ladders in one HTML page (inline SVG), for viewing in a browser."""
    body = "\n".join(f"<div>{svg}</div>" for svg in svgs)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{_a(title)}</title></head>"
        f"<body style='margin:0;background:#fff'>\n{body}\n</body></html>\n"
    )


__all__ = ["ladder_file_name", "ladder_html", "ladder_svg"]
