"""Render a ``fedsim check`` :class:`~simulator.check.report.Report` as text or JSON (pure)."""

from __future__ import annotations

import json
from typing import Any

from simulator.check.report import Answer, Report, RuleResult

_STATUS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
_INDENT = "          "


def render_text(report: Report) -> str:
    """The console report: context, the rules, the answers, what to change, the verdict."""
    o = report.options
    cert = report.certificate
    hosted = "hosted (Office 365 rules)" if o.hosted else "on-premises"
    lines = [
        f"fedsim check: federation between {report.domain} and {o.skype_domain}",
        f"  certificate  {cert.display_name()} ({report.cert_source})",
        f"  DNS server   {report.dns_server} ({report.dns_source})",
        f"  Skype Edge   {o.edge_fqdn} for {o.skype_domain}, {hosted}",
        f"  checked at   {report.checked_at.isoformat(timespec='seconds')}",
        "",
        "Microsoft's rules, in the Edge's order",
    ]
    for rule in report.rules:
        lines.extend(_rule_lines(rule))
    lines += ["", "What Skype would answer"]
    for answer in report.answers:
        lines.extend(_answer_lines(answer))
    if report.fixes:
        lines += ["", "What to change"]
        lines.extend(f"  - {fix}" for fix in report.fixes)
    lines.append("")
    if report.federates:
        lines.append(f"Result: {report.domain} would federate ({_directions(report)})")
    else:
        failed = ", ".join(
            f"{a.direction}: {a.decision.rule}" for a in report.answers if a.decision is not None
        )
        lines.append(f"Result: {report.domain} would NOT federate ({failed})")
    return "\n".join(lines) + "\n"


def _directions(report: Report) -> str:
    return " and ".join(a.direction for a in report.answers)


def _rule_lines(rule: RuleResult) -> list[str]:
    scope = "" if len(rule.applies) == 2 else f" [{'/'.join(rule.applies)}]"
    out = [f"  {rule.number} {_STATUS[rule.status]}  {rule.title}{scope}"]
    out.extend(f"{_INDENT}{line}" for line in rule.evidence)
    return out


def _answer_lines(answer: Answer) -> list[str]:
    out = [f"  {answer.direction}: {answer.call}", f"    {answer.summary}"]
    decision = answer.decision
    if decision is None:
        return out
    to = "the Expressway-E" if answer.direction == "inbound" else "the Skype client"
    out.append(f"    to {to} (fidelity: {answer.fidelity}):")
    out.append(f"      SIP/2.0 {decision.status} {decision.reason}")
    out.extend(f"      {name}: {value}" for name, value in decision.headers)
    if answer.edge_log is not None:
        assert decision.edge_log is not None
        out.append(f"    Edge log record (fidelity: {decision.edge_log.fidelity}):")
        out.extend(f"      {line}" for line in answer.edge_log.splitlines())
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data (the same content as the text)."""
    o = report.options
    cert = report.certificate
    return {
        "domain": report.domain,
        "federates": report.federates,
        "checked_at": report.checked_at.isoformat(timespec="seconds"),
        "dns_server": report.dns_server,
        "dns_source": report.dns_source,
        "edge": {
            "fqdn": o.edge_fqdn,
            "skype_domain": o.skype_domain,
            "hosted": o.hosted,
            "directions": list(o.directions),
        },
        "certificate": {
            "source": report.cert_source,
            "display_name": cert.display_name(),
            "subject": cert.subject,
            "issuer": cert.issuer,
            "dns_sans": list(cert.dns_sans),
            "names_for_matching": list(cert.names_for_matching()),
            "eku": list(cert.eku),
            "not_before": cert.not_before.isoformat(),
            "not_after": cert.not_after.isoformat(),
            "sha256": cert.sha256,
        },
        "rules": [
            {
                "number": r.number,
                "key": r.key,
                "title": r.title,
                "status": r.status,
                "applies": list(r.applies),
                "evidence": list(r.evidence),
            }
            for r in report.rules
        ],
        "answers": {a.direction: _answer_dict(a) for a in report.answers},
        "fixes": list(report.fixes),
    }


def _answer_dict(answer: Answer) -> dict[str, Any]:
    decision = answer.decision
    out: dict[str, Any] = {
        "call": answer.call,
        "accepted": answer.accepted,
        "summary": answer.summary,
        "fidelity": answer.fidelity,
    }
    if decision is not None:
        out.update(
            {
                "rule": decision.rule,
                "status": decision.status,
                "reason": decision.reason,
                "headers": [[name, value] for name, value in decision.headers],
                "ms_diagnostics": decision.ms_diagnostics,
                "edge_log_result": None
                if decision.edge_log is None
                else decision.edge_log.result.symbol,
                "edge_log": answer.edge_log,
                "explanation": decision.explanation,
                "catalogue_fix": answer.catalogue_fix,
            }
        )
    elif answer.accepted:
        out["rule"] = "accepted"
    else:  # refused at the TLS handshake: no SIP status, as fedsim serve's event says
        out.update({"rule": "tls-handshake-failed", "status": None, "ms_diagnostics": None})
    return out


def render_json(report: Report) -> str:
    """The report as one JSON document (indented, newline-terminated)."""
    return json.dumps(report_to_dict(report), indent=2) + "\n"
