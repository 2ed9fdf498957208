"""The live page's HTML: the same columns, ladder and lab panel as ``fedsim run --html``.

Pure. The page works without JavaScript (each row is a link to ``/?call=N``,
each button a form that posts and comes back); ``/app.js`` (plain JavaScript,
no framework) only keeps it current: it listens to ``/events`` (server-sent
events) for new rows and inserts the HTML the server renders here, and loads a
selected call's columns without a reload. Every string from a lab, a peer or
the network goes through :func:`simulator.run.page._e` (``html.escape``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import quote

from simulator import __version__
from simulator.lab import Lab
from simulator.run.ladder import ladder_svg
from simulator.run.model import CallReport, LabFacts, describe_expect, describe_got
from simulator.run.page import STYLE, _e, lab_section, view_html
from simulator.run.runner import call_label
from simulator.run.views import CallViews
from simulator.ui.exercise import REVOKED, VALIDITIES, ExerciseState
from simulator.ui.live import LiveCall

#: Scripts only from this server, connections only back to it, no other fetch at all.
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
    "img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

LIVE_STYLE = """
#calls{width:100%}#calls tr.selected td{background:#fff6d6}
#calls td.good{color:#1a6b1a;font-weight:bold}#calls td.bad{color:#b22222;font-weight:bold}
.bar{display:flex;gap:1em;align-items:baseline;flex-wrap:wrap}
#status{font-size:.9em;color:#556}#status.live{color:#1a6b1a}
form.inline{display:inline;margin:0}button{margin:2px}
.checks .PASS{color:#1a6b1a;font-weight:bold}.checks .FAIL{color:#b22222;font-weight:bold}
.error{color:#b22222;font-weight:bold;white-space:pre-wrap}.solved{color:#1a6b1a;font-weight:bold}
textarea{width:100%;font:12px monospace}input[type=text]{width:95%;font:12px monospace}
#exercise{border:2px solid #99a;padding:0 1em 1em;border-radius:6px;margin:1em 0}
"""

#: The page's script (served as ``/app.js``): the push and the clicks, nothing else.
APP_JS = """\
"use strict";
(function () {
  var rows = document.getElementById("rows");
  var detail = document.getElementById("detail");
  var status = document.getElementById("status");
  var selected = Number(new URLSearchParams(location.search).get("call") || 0);

  function mark() {
    rows.querySelectorAll("tr").forEach(function (tr) {
      tr.classList.toggle("selected", Number(tr.dataset.call) === selected);
    });
  }
  function show(n) {
    return fetch("/call/" + n).then(function (r) {
      if (!r.ok) { return; }
      return r.text().then(function (html) {
        detail.innerHTML = html;
        selected = n;
        history.replaceState(null, "", "/?call=" + n);
        mark();
      });
    });
  }
  function replace(id, html) {
    var old = document.getElementById(id);
    if (old) { old.outerHTML = html; }
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest("a[data-call]");
    if (a) { e.preventDefault(); show(Number(a.dataset.call)); }
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches("form[data-post]")) { return; }
    e.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      headers: {"Accept": "application/json"},
      body: new URLSearchParams(new FormData(form))
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.exercise) { replace("exercise", answer.exercise); }
      if (answer.call) { return show(answer.call); }
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  });
  var events = new EventSource("/events");
  events.onopen = function () { status.textContent = "live"; status.className = "live"; };
  events.onerror = function () { status.textContent = "reconnecting..."; status.className = ""; };
  events.addEventListener("row", function (e) {
    rows.insertAdjacentHTML("afterbegin", e.data);
    while (rows.rows.length > 500) { rows.deleteRow(rows.rows.length - 1); }
    mark();
  });
  events.addEventListener("exercise", function (e) { replace("exercise", e.data); });
  events.addEventListener("lab", function (e) { replace("lab", e.data); });
  events.addEventListener("header", function (e) { replace("where", e.data); });
  mark();
})();
"""


def row_html(row: LiveCall) -> str:
    """One row of the calls table (a link that selects the call)."""
    tone = "good" if row.good else "bad"
    n = row.number
    cells = (
        f"<td>{_e(row.time)}</td><td>{_e(row.direction)}</td>"
        f"<td><a href='/?call={n}' data-call='{n}'>{_e(row.parties)}</a></td>"
        f"<td>{_e(row.method)}</td><td class='{tone}'>{_e(row.outcome)}</td>"
        f"<td>{_e(row.rule)}</td>"
    )
    return f"<tr id='row-{n}' data-call='{n}'>{cells}</tr>"


def detail_html(row: LiveCall, report: CallReport, views: CallViews) -> str:
    """The selected call: its three columns, its ladder, its files."""
    n = row.number
    out = [f"<article class='call' id='call-{n}' data-call='{n}'>"]
    out.append(f"<h3>{_e(report.label)}</h3>")
    if row.report is not None:
        out.append(
            f"<p class='meta'>placed from this page: expected "
            f"{_e(describe_expect(report.expect)) or '(nothing)'}; got "
            f"{_e(describe_got(report.expect, report.got))}</p>"
        )
    out.append("<div class='views'>" + "".join(view_html(v) for v in views.columns) + "</div>")
    svg = ladder_svg(report.trace, ids=f"c{n}-")
    out.append(f"<details class='ladder' open><summary>Ladder</summary>{svg}</details>")
    if views.downloads:
        links = " ".join(
            f"<a download='{_e(d.name)}' href='/download/{n}/{quote(d.name)}'>{_e(d.name)}</a>"
            for d in views.downloads
        )
        out.append(f"<p class='files'>Download: {links}</p>")
    out.append("</article>")
    return "\n".join(out)


def lab_html(facts: LabFacts | None) -> str:
    """The lab panel (DNS, certificates and who trusts them, policy, profile)."""
    body = (
        lab_section(facts).replace(
            "<details class='lab-facts'>", "<details class='lab-facts' open>", 1
        )
        if facts
        else "<p>The lab is starting.</p>"
    )
    return f"<section id='lab'><h2>The lab</h2>{body}</section>"


def where_html(lab: Lab, where: Sequence[tuple[str, str]]) -> str:
    """Where the running lab listens (changes when an exercise's lab reloads)."""
    items = "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in where)
    return f"<p id='where' class='bar meta'>{items}</p>"


def place_html(lab: Lab, numbers: Iterable[int] | None = None) -> str:
    """A button per ``[[calls]]`` entry of the lab: place it from the page."""
    chosen = list(numbers) if numbers is not None else range(1, len(lab.calls) + 1)
    forms = []
    for n in chosen:
        call = lab.calls[n - 1]
        forms.append(
            f"<li><form class='inline' method='post' action='/place' data-post>"
            f"<input type='hidden' name='call' value='{n}'>"
            f"<button type='submit' id='place-{n}'>place</button></form> "
            f"{_e(call_label(call, n))} <span class='meta'>expects "
            f"{_e(describe_expect(call.expect))}</span></li>"
        )
    if not forms:
        return "<p>This lab has no [[calls]]: place calls with fedsim call / fedsim client.</p>"
    return "<ul class='place'>" + "".join(forms) + "</ul>"


def exercise_html(state: ExerciseState) -> str:
    """The exercise panel: task, hints, the checks, the edit form, the last error."""
    lab = state.lab
    assert lab.exercise is not None
    out = [f"<section id='exercise' data-solved='{str(state.solved).lower()}'>"]
    out.append(f"<h2>Exercise {_e(state.name)}</h2>")
    out.append(f"<p>{_e(lab.exercise.task)}</p>")
    out.append(
        f"<p class='meta'>Fix it in the page below, or edit {_e(state.work)} (the Edge "
        "reloads it when it changes); then place the calls.</p>"
    )
    if state.error is not None:
        out.append(f"<p class='error' id='exercise-error'>{_e(state.error)}</p>")
    if state.solved:
        out.append("<p class='solved' id='solved'>Solved: every check is green.</p>")
    rows = [
        "<table class='checks'><tr><th>check</th><th>call</th><th>expected</th>"
        "<th>got</th><th></th></tr>"
    ]
    for n in state.calls:
        call = lab.calls[n - 1]
        result = state.results.get(n)
        verdict = result.verdict if result is not None else "not yet"
        got = describe_got(call.expect, result.got) if result is not None else "-"
        rows.append(
            f"<tr id='check-{n}' data-verdict='{verdict}'><td class='{verdict}'>{_e(verdict)}</td>"
            f"<td>{_e(call_label(call, n))}</td><td>{_e(describe_expect(call.expect))}</td>"
            f"<td>{_e(got)}</td><td><form class='inline' method='post' action='/place' data-post>"
            f"<input type='hidden' name='call' value='{n}'>"
            f"<button type='submit' id='check-call-{n}'>place</button></form></td></tr>"
        )
    rows.append("</table>")
    out.extend(rows)
    out.append(
        "<form class='inline' method='post' action='/exercise/check' data-post>"
        "<button type='submit' id='check-all'>place every check</button></form>"
    )
    hints = "".join(f"<li>{_e(h)}</li>" for h in state.hints)
    out.append(f"<h3>Hints</h3><ol id='hints'>{hints}</ol>")
    if state.more_hints:
        out.append(
            "<form class='inline' method='post' action='/exercise/hint' data-post>"
            f"<button type='submit' id='hint'>show a hint ({state.more_hints} left)</button></form>"
        )
    out.append(_edit_form(state))
    out.append("</section>")
    return "\n".join(out)


def _edit_form(state: ExerciseState) -> str:
    lab = state.lab
    cas = [c.name for c in lab.certs if c.ca]
    out = [
        "<h3>Edit the lab</h3>",
        "<form method='post' action='/exercise/edit' data-post id='edit'>",
        "<p><label for='records'>[dns] records (zone-file lines, as <code>dig</code> prints them)"
        "</label><br>",
        f"<textarea id='records' name='records' rows='10'>{_e(lab.dns.records.strip(chr(10)))}"
        "</textarea></p>",
        "<table class='certs-edit'><tr><th>certificate</th><th>CN</th><th>DNS SANs</th>"
        "<th>issuer</th><th>validity</th><th>revoked</th></tr>",
    ]
    for spec in lab.certs:
        if spec.ca:
            continue
        name = _e(spec.name)
        sans = spec.san if spec.san is not None else ((spec.cn,) if spec.cn else ())
        issuers = "".join(
            f"<option{' selected' if c == spec.issuer else ''}>{_e(c)}</option>" for c in cas
        )
        validity = "".join(
            f"<option{' selected' if v == spec.validity else ''}>{v}</option>" for v in VALIDITIES
        )
        revoked = "".join(
            f"<option{' selected' if flag == spec.revoked else ''}>{word}</option>"
            for word, flag in REVOKED.items()
        )
        out.append(
            f"<tr><td>{name}</td>"
            f"<td><input type='text' name='cn:{name}' value='{_e(spec.cn or '')}'></td>"
            f"<td><input type='text' name='san:{name}' value='{_e(', '.join(sans))}'></td>"
            f"<td><select name='issuer:{name}'>{issuers}</select></td>"
            f"<td><select name='validity:{name}'>{validity}</select></td>"
            f"<td><select name='revoked:{name}'>{revoked}</select></td></tr>"
        )
    out.append("</table><button type='submit' id='apply'>apply (the Edge reloads the lab)</button>")
    out.append("</form>")
    return "\n".join(out)


def page_html(
    *,
    lab: Lab,
    where: Sequence[tuple[str, str]],
    rows: Sequence[LiveCall],
    detail: str | None,
    facts: LabFacts | None,
    exercise: ExerciseState | None,
) -> str:
    """The whole live page (rows newest first; ``detail`` is the selected call's HTML)."""
    title = f"fedsim live: {lab.name}"
    place = place_html(lab) if exercise is None else ""
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}{LIVE_STYLE}</style>",
        "<script src='/app.js' defer></script></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f"<p class='bar'><span>Edge {_e(lab.edge.fqdn)} for {_e(', '.join(lab.edge.domains))}"
        f"</span><span id='status'>static (reload for new calls)</span>"
        f"<span class='meta'>fedsim {_e(__version__)}</span></p>",
        where_html(lab, where),
        "<p class='meta'>One row per request the Edge decided; select one for what the "
        "Expressway-E saw, what the Edge logged and what the Skype client got.</p></header>",
    ]
    if exercise is not None:
        out.append(exercise_html(exercise))
    if place:
        out.append(f"<section id='place-calls'><h2>Place the lab's calls</h2>{place}</section>")
    out.append(
        "<h2>Calls</h2><table id='calls'><thead><tr><th>time</th><th>direction</th>"
        "<th>from -&gt; to</th><th>method</th><th>outcome</th><th>rule</th></tr></thead>"
        "<tbody id='rows'>" + "".join(row_html(r) for r in reversed(rows)) + "</tbody></table>"
    )
    out.append(
        "<section id='detail'>"
        + (detail or "<p class='meta'>Select a call to see its three views.</p>")
        + "</section>"
    )
    out.append(lab_html(facts))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


__all__ = [
    "APP_JS",
    "CSP",
    "detail_html",
    "exercise_html",
    "lab_html",
    "page_html",
    "place_html",
    "row_html",
    "where_html",
]
