"""``fedsim run --html FILE``: every lab and call of a run as one self-contained page (pure).

For CI artifacts and handouts: one file that opens from a disk, a mail or an
artifact store with no network. So the page has no script, no external
stylesheet, font or image; the ladders are inline SVG; each call's messages,
log excerpts and event are ``data:`` links (download) and ``<details>`` blocks
(read in place). A Content-Security-Policy of ``default-src 'none'`` makes the
browser refuse any fetch the page might still try.

Every string from a lab, a peer or the network goes through :func:`_e`
(``html.escape`` with quotes): a lab file cannot inject markup into the page.

Layout: the summary and an index of every call (verdict, lab, call, expected,
got), then per lab its facts (DNS, certificates, trust, policy, profile) and
per call the three columns of :mod:`simulator.run.views`, the ladder and the
files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from urllib.parse import quote

from simulator import __version__
from simulator.run.ladder import ladder_svg
from simulator.run.model import CallReport, LabFacts, LabReport, describe_expect, describe_got
from simulator.run.results import RunResults
from simulator.run.views import CallViews, Download, View, call_views, file_stem

#: No fetch of any kind; inline styles only (the page has no script at all).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 3em;color:#1b1f24;background:#fff}
h1{font-size:1.5em;margin:.8em 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .3em;
border-top:2px solid #334;padding-top:.5em}h3{font-size:1.05em;margin:1.2em 0 .3em}
h4{margin:0 0 .3em;font-size:1em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccd;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#eef2f8}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;border:1px solid #dde;
padding:4px 6px;margin:2px 0;font-size:12px}
.v-PASS{color:#1a6b1a;font-weight:bold}.v-FAIL,.v-ERROR{color:#b22222;font-weight:bold}
table.index{width:100%}table.index td:nth-child(2){min-width:12em}
table.index td:nth-child(3){min-width:20em}
.views{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px}
@media (max-width:900px){.views{grid-template-columns:1fr}}
.view{border:1px solid #ccd;border-top:4px solid #99a;padding:6px 8px;border-radius:4px;
overflow-wrap:anywhere;min-width:0}
.view.good{border-top-color:#2a7a2a}.view.bad{border-top-color:#b22222}
.headline{font-weight:bold;margin:.2em 0 .5em}
dl{margin:0}dt{font-weight:bold;margin-top:.5em;color:#334}dd{margin:0}
dd.good{color:#1a5e1a}dd.bad{color:#8b1a1a}
.call{border-left:4px solid #ccd;padding-left:10px;margin:1em 0 2em}
.call.FAIL{border-left-color:#b22222}.call.PASS{border-left-color:#2a7a2a}
.ladder svg{max-width:100%;height:auto;border:1px solid #dde}
.files a{margin-right:1em}.meta{color:#556}.mismatch{color:#b22222}
"""


def _e(value: object) -> str:
    """Escape for HTML text and quoted attribute values."""
    return html.escape(str(value), quote=True)


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _lab_anchor(lab_id: str) -> str:
    """``lab-seeds--01-acano-srv-points-to-parent-domain``: as call anchors spell lab ids."""
    return "lab-" + _anchor(lab_id.replace("/", "--"))


def _data_url(d: Download) -> str:
    return f"data:{d.media_type};charset=utf-8,{quote(d.text, safe='')}"


def _pre(text: str) -> str:
    return f"<pre>{_e(text)}</pre>"


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


# --- the lab --------------------------------------------------------------------------


def _trusted_by(facts: LabFacts, name: str) -> str:
    who = ["Edge"] if name in facts.edge_trust else []
    who += [f"peer {p.name}" for p in facts.peers if name in p.trust]
    return ", ".join(who)


def lab_section(facts: LabFacts) -> str:
    """The lab's facts: Edge, policy, profile, DNS, certificates and trust, peers."""
    out = [
        "<details class='lab-facts'>"
        "<summary>The lab: DNS, certificates, trust, policy, profile</summary>"
    ]
    out.append("<h4>Edge</h4>")
    out.append(
        _kv_table(
            [
                ("fqdn", facts.edge_fqdn),
                ("domains", ", ".join(facts.domains)),
                ("certificate", facts.edge_cert),
                ("trusts", ", ".join(facts.edge_trust) or "(nothing)"),
            ]
        )
    )
    out.append("<h4>Policy</h4>" + _kv_table(facts.policy))
    out.append("<h4>Profile</h4>" + _kv_table(facts.profile))
    out.append("<h4>DNS</h4>")
    if facts.dns_records.strip():
        out.append(
            "<p>[dns] records, as the lab file writes them:</p>"
            + _pre(facts.dns_records.strip("\n"))
        )
    for name, text in facts.dns_zones:
        out.append(f"<p>zone file {_e(name)}:</p>" + _pre(text.strip("\n")))
    moved = [p for p in facts.peers if p.port is not None and p.listen]
    for peer in moved:
        placeholder = (peer.listen or "").rpartition(":")[2]
        out.append(
            f"<p class='meta'>SRV records with port {_e(placeholder)} were served with port "
            f"{_e(peer.port)}, where peer {_e(peer.name)} listened in this run.</p>"
        )
    if facts.dns_silent:
        out.append(f"<p>never answered (silent): {_e(', '.join(facts.dns_silent))}</p>")
    if facts.dns_servfail:
        out.append(f"<p>answered SERVFAIL: {_e(', '.join(facts.dns_servfail))}</p>")
    out.append(
        "<h4>Certificates</h4><table class='certs'><tr><th>name</th><th>CN</th><th>DNS SANs</th>"
        "<th>issuer</th><th>valid</th><th>EKU</th><th>kind</th><th>trusted by</th></tr>"
    )
    for c in facts.certs:
        kind = ("public root" if c.public else "CA") if c.ca else "leaf"
        out.append(
            "<tr>"
            + "".join(
                f"<td>{_e(v)}</td>"
                for v in (
                    c.name,
                    c.cn or "",
                    ", ".join(c.sans),
                    c.issuer_name or ("self-signed" if c.subject == c.issuer else c.issuer),
                    f"{c.not_before} to {c.not_after} ({c.validity})",
                    ", ".join(c.eku) or "(any)",
                    kind,
                    _trusted_by(facts, c.name) if c.ca else "",
                )
            )
            + "</tr>"
        )
    out.append("</table>")
    if facts.peers:
        out.append(
            "<h4>Expressway-E peers</h4><table><tr><th>peer</th><th>certificate</th>"
            "<th>trusts</th><th>TLS</th><th>answers</th><th>listens</th>"
            "<th>asks the Edge for a certificate</th></tr>"
        )
        for p in facts.peers:
            listens = "(calls in only)"
            if p.listen:
                listens = p.listen + (f" (run: port {p.port})" if p.port else "")
            out.append(
                "<tr>"
                + "".join(
                    f"<td>{_e(v)}</td>"
                    for v in (
                        p.name,
                        p.cert,
                        ", ".join(p.trust) or "(nothing)",
                        p.tls,
                        p.answer,
                        listens,
                        "yes" if p.require_client_cert else "no",
                    )
                )
                + "</tr>"
            )
        out.append("</table>")
    out.append("</details>")
    return "\n".join(out)


# --- a call ---------------------------------------------------------------------------


def view_html(view: View) -> str:
    """One column: title, headline, then each item (preformatted or prose)."""
    items = []
    for item in view.items:
        cls = f" class='{item.tone}'" if item.tone != "plain" else ""
        body = _pre(item.text) if item.pre else _e(item.text).replace("\n", "<br>")
        items.append(f"<dt>{_e(item.label)}</dt><dd{cls}>{body}</dd>")
    return (
        f"<section class='view {view.party} {view.tone}' data-party='{view.party}'>"
        f"<h4>{_e(view.title)}</h4><p class='headline'>{_e(view.headline)}</p>"
        f"<dl>{''.join(items)}</dl></section>"
    )


def call_section(call: CallReport, lab: LabReport) -> str:
    """A call: verdict and label, expected and got, the three views, the ladder, the files."""
    stem = file_stem(call, lab.id)
    views: CallViews = call_views(call, lab.facts, lab_id=lab.id)
    out = [f"<article class='call {call.verdict}' id='{_anchor(stem)}'>"]
    out.append(
        f"<h3><span class='v-{call.verdict}'>{call.verdict}</span> {_e(call.label)}</h3>"
        f"<p class='meta'>expected {_e(describe_expect(call.expect))}<br>"
        f"got {_e(describe_got(call.expect, call.got))}</p>"
    )
    if call.mismatches:
        lines = "".join(f"<li>{_e(m.line())}</li>" for m in call.mismatches)
        out.append(f"<ul class='mismatch'>{lines}</ul>")
    out.append("<div class='views'>" + "".join(view_html(v) for v in views.columns) + "</div>")
    svg = ladder_svg(call.trace, ids=_anchor(stem) + "-")
    out.append(f"<details class='ladder' open><summary>Ladder</summary>{svg}</details>")
    if views.downloads:
        links = " ".join(
            f"<a download='{_e(d.name)}' href='{_e(_data_url(d))}'>{_e(d.name)}</a>"
            for d in views.downloads
        )
        out.append(f"<p class='files'>Download: {links}</p>")
        for d in views.downloads:
            out.append(
                f"<details class='file'><summary>{_e(d.name)}</summary>{_pre(d.text)}</details>"
            )
    out.append("</article>")
    return "\n".join(out)


# --- the page -------------------------------------------------------------------------


def _index(run: RunResults) -> str:
    rows = [
        "<table class='index'><tr><th>verdict</th><th>lab</th><th>call</th>"
        "<th>expected</th><th>got</th></tr>"
    ]
    for lab in run.labs:
        if lab.error is not None:
            rows.append(
                f"<tr><td class='v-ERROR'>ERROR</td><td><a href='#{_lab_anchor(lab.id)}'>"
                f"{_e(lab.id)}</a></td><td colspan='3'>{_e(lab.error)}</td></tr>"
            )
        for call in lab.calls:
            anchor = _anchor(file_stem(call, lab.id))
            rows.append(
                f"<tr><td class='v-{call.verdict}'>{call.verdict}</td><td>{_e(lab.id)}</td>"
                f"<td><a href='#{anchor}'>{_e(call.label)}</a></td>"
                f"<td>{_e(describe_expect(call.expect))}</td>"
                f"<td>{_e(describe_got(call.expect, call.got))}</td></tr>"
            )
    rows.append("</table>")
    return "\n".join(rows)


def summary_text(run: RunResults) -> str:
    calls = [c for lab in run.labs for c in lab.calls]
    failed = sum(1 for c in calls if c.verdict != "PASS")
    errors = sum(1 for lab in run.labs if lab.error is not None)
    return (
        f"{len(run.labs)} labs, {len(calls)} calls: {len(calls) - failed} passed, "
        f"{failed} failed, {errors} lab errors"
    )


def render_page(run: RunResults) -> str:
    """The whole page for ``run`` (a run, a shard or a merge)."""
    what = []
    if run.shard is not None:
        what.append(f"shard {run.shard} of the catalogue")
    if run.merged:
        what.append(f"merged from shards {', '.join(run.merged)}")
    if run.pattern:
        what.append(f"-k {run.pattern!r}")
    meta = (
        f"fedsim {__version__}; catalogue of {len(run.catalogue.labs)} labs "
        f"(sha256 {run.catalogue.digest[:12]})" + "".join(f"; {w}" for w in what)
    )
    verdict = "PASS" if run.ok else "FAIL"
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>fedsim run: {_e(summary_text(run))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<header><h1>fedsim run</h1>",
        f"<p><span class='v-{verdict}'>{verdict}</span> {_e(summary_text(run))}</p>",
        f"<p class='meta'>{_e(meta)}</p>",
        "<p class='meta'>Each call in three columns: what the Expressway-E saw, what the Edge "
        "logged, what the Skype client got; then its ladder and its files.</p></header>",
        "<nav>" + _index(run) + "</nav><main>",
    ]
    for lab in run.labs:
        out.append(f"<section class='lab' id='{_lab_anchor(lab.id)}'>")
        out.append(f"<h2>{_e(lab.id)}</h2><p>{_e(lab.summary)}</p>")
        if lab.error is not None:
            out.append(f"<p class='v-ERROR'>The lab could not run: {_e(lab.error)}</p>")
        if lab.facts is not None:
            out.append(lab_section(lab.facts))
        out.extend(call_section(call, lab) for call in lab.calls)
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


__all__ = ["CSP", "call_section", "lab_section", "render_page", "view_html"]
