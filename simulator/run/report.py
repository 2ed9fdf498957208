"""Reports of a ``fedsim run``: the results table, failure details and JUnit XML (pure).

The JSON document is :mod:`simulator.run.results`; the HTML page :mod:`simulator.run.page`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from simulator.run.model import CallReport, LabReport, describe_expect, describe_got


def failure_text(call: CallReport) -> str:
    """The diff of expected vs got, then the Edge record and the events line of the call."""
    lines = [f"  {m.line()}" for m in call.mismatches]
    if call.got.error:
        lines.append(f"  caller saw: {call.got.error}")
    trace = call.trace
    if trace.responses:
        lines.append("  responses: " + " | ".join(trace.responses))
    lines.append("  edge.log record:")
    if trace.edge_record:
        lines.extend(f"    {line}" for line in trace.edge_record.splitlines())
    else:
        lines.append("    (none written for this call)")
    lines.append("  events.jsonl:")
    if trace.event is not None:
        lines.append("    " + json.dumps(trace.event, ensure_ascii=False, separators=(",", ":")))
    else:
        lines.append("    (no event for this call)")
    return "\n".join(lines)


def results_table(reports: Sequence[LabReport]) -> str:
    """One row per call (scenario, call, expected, got, verdict), then details of failures."""
    rows: list[tuple[str, str, str, str, str]] = []
    for lab in reports:
        if lab.error is not None:
            rows.append((lab.id, "-", "-", lab.error, "ERROR"))
        for call in lab.calls:
            rows.append(
                (
                    lab.id,
                    call.label,
                    describe_expect(call.expect),
                    describe_got(call.expect, call.got),
                    call.verdict,
                )
            )
    # Expected and got can be long (ms-diagnostics parameters): each gets its own
    # indented line under the call instead of a column as wide as the longest one.
    width = max(len(r[0]) for r in [("scenario",), *rows])
    out = [f"{'verdict':<8} {'scenario':<{width}}  call"]
    for scenario, label, expected, got, verdict in rows:
        out.append(f"{verdict:<8} {scenario:<{width}}  {label}".rstrip())
        out.append(f"{'':<8} {'':<{width}}    expected  {expected}".rstrip())
        out.append(f"{'':<8} {'':<{width}}    got       {got}".rstrip())
    details = []
    for lab in reports:
        for call in lab.calls:
            if call.mismatches:
                details.append(f"FAIL {call.id}: {call.label}\n{failure_text(call)}")
    text = "\n".join(out)
    if details:
        text += "\n\n" + "\n\n".join(details)
    return text + "\n"


def summary_line(reports: Sequence[LabReport]) -> str:
    """``35 labs, 80 calls: 79 passed, 1 failed, 0 lab errors``."""
    calls = [c for lab in reports for c in lab.calls]
    failed = sum(1 for c in calls if c.verdict != "PASS")
    errors = sum(1 for lab in reports if lab.error is not None)
    return (
        f"{len(reports)} labs, {len(calls)} calls: {len(calls) - failed} passed, "
        f"{failed} failed, {errors} lab errors"
    )


def junit_xml(reports: Sequence[LabReport]) -> str:
    """JUnit XML: ``<testsuites>``, one ``<testsuite>`` per lab, one ``<testcase>`` per call.

    A failed expectation is a ``<failure>`` (message: the mismatches; text: the
    diff and the log excerpt); a lab that could not run is one ``<testcase>`` with
    an ``<error>``.
    """
    calls = [c for lab in reports for c in lab.calls]
    root = ET.Element(
        "testsuites",
        name="fedsim run",
        tests=str(len(calls) + sum(1 for lab in reports if lab.error is not None)),
        failures=str(sum(1 for c in calls if c.verdict == "FAIL")),
        errors=str(sum(1 for lab in reports if lab.error is not None)),
        time=f"{sum(lab.seconds for lab in reports):.3f}",
    )
    for lab in reports:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=lab.id,
            tests=str(len(lab.calls) or (1 if lab.error else 0)),
            failures=str(lab.failed),
            errors="1" if lab.error is not None else "0",
            skipped="0",
            time=f"{lab.seconds:.3f}",
            file=lab.path,
        )
        classname = "fedsim." + lab.id.replace("/", ".")
        if lab.error is not None:
            case = ET.SubElement(suite, "testcase", classname=classname, name="lab", time="0")
            error = ET.SubElement(case, "error", message=lab.error, type="LabError")
            error.text = lab.error
        for call in lab.calls:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=classname,
                name=f"call-{call.number}: {call.label.split(': ', 1)[-1]}",
                time=f"{call.seconds:.3f}",
            )
            if call.mismatches:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message="; ".join(m.line() for m in call.mismatches),
                    type="ExpectationMismatch",
                )
                failure.text = failure_text(call)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["failure_text", "junit_xml", "results_table", "summary_line"]
