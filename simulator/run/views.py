"""The three views of one call: what the Expressway-E saw, what the Edge logged, what Skype got.

Pure: a :class:`~simulator.run.model.CallReport` and the lab's
:class:`~simulator.run.model.LabFacts` in, plain data out. The HTML page
renders it (``fedsim run --html``); the live page of ``fedsim serve --ui`` is
meant to render the same data.

- **Expressway-E**: the federation leg as its ``network.sip`` diagnostic log
  shows it (``Action="Sent"``/``"Received"``, ``SIPMSG:``, the message behind
  ``|``: the layout of the Cisco note's excerpts, [CISCO]; timestamps are the
  call's start, the hash is ours), the TLS outcome it saw, and for an outbound
  call that failed before the Edge connected, the fact that nothing arrived.
- **Edge**: the DNS questions and answers of the event, the peer certificate
  (names as seen, issuer and dates from the lab's PKI), the rule that decided
  with the settings it depends on, the ``edge.log`` record as written and the
  fidelity labels.
- **Skype client**: what it received (the final response with its
  ``ms-diagnostics``), or for an inbound call whether the call reached the
  user at all; the ``fedsim explain`` text; the fix in the lab's names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from simulator.diagnostics import DiagnosticsParseError, explain_text
from simulator.run.fix import fix_for
from simulator.run.model import CallReport, LabCert, LabFacts, WireMessage

Tone = Literal["plain", "good", "bad"]

#: What each fidelity label means (the catalogue's three levels).
FIDELITY_TEXT: dict[str, str] = {
    "verbatim": "verbatim: seen in Microsoft traces or logs",
    "inferred": "inferred: combined from sources by fedsim, not seen verbatim",
    "unverified": "unverified: commonly reported, not found in any source",
}

#: Rule (or rule prefix ending in "-") -> the Edge settings it depends on, as the
#: lab file names them ("trust" is [edge] trust; the rest are policy/profile keys).
RULE_SETTINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("federation-off", ("federation",)),
    ("blocked-domain", ("federation", "blocked")),
    ("domain-not-allowed", ("federation", "allowed")),
    ("proxy-fqdn-mismatch", ("federation", "allowed")),
    ("srv-", ("federation", "domain_source")),
    ("no-address", ("federation",)),
    ("cert-", ("hosted", "trust")),
    ("untrusted-root", ("hosted", "trust")),
    ("tls-", ("tls", "hosted", "trust")),
    ("connect-", ("federation",)),
    ("accepted", ("federation", "domain_source", "hosted")),
    ("forwarded", ("federation", "tls")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One entry of a view: a label and its text (``pre``: shown as is, monospace)."""

    label: str
    text: str
    pre: bool = False
    tone: Tone = "plain"


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """One column: whose view it is, one line of what it saw, then the details."""

    party: Literal["expressway", "edge", "client"]
    title: str
    headline: str
    items: tuple[Item, ...]
    tone: Tone = "plain"


@dataclass(frozen=True, slots=True, kw_only=True)
class Download:
    """A file of the call offered for download (file name, media type, content)."""

    name: str
    media_type: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallViews:
    """The three views of a call and its files."""

    expressway: View
    edge: View
    client: View
    downloads: tuple[Download, ...]

    @property
    def columns(self) -> tuple[View, View, View]:
        return (self.expressway, self.edge, self.client)


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _status(line: str) -> int | None:
    parts = line.split(" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _final(messages: Sequence[WireMessage], to: str) -> WireMessage | None:
    """The last final response (>= 200) ``to`` received to the call's first request."""
    finals = [
        m
        for m in messages
        if m.receiver == to
        and m.start_line.startswith("SIP/2.0 ")
        and (_status(m.start_line) or 0) >= 200
        and _cseq_method(m.text) == _cseq_method(messages[0].text)
    ]
    return finals[0] if finals else None


def _cseq_method(text: str) -> str:
    for line in text.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "cseq":
            return value.strip().rsplit(" ", 1)[-1]
    return ""


def _header(text: str, name: str) -> str | None:
    for line in text.split("\r\n")[1:]:
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


# --- the Expressway-E's log ----------------------------------------------------------


def _split(address: str | None) -> tuple[str, str]:
    if not address:
        return "", ""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), port


def expressway_log(
    messages: Sequence[WireMessage],
    *,
    host: str,
    started: str | None,
    local: str | None,
    remote: str | None,
) -> str:
    """The federation leg as an Expressway-E's ``network.sip`` diagnostic log shows it.

    Args:
        messages: the messages of the federation leg (the Expressway-E is sender or receiver).
        host: the Expressway-E's host name (the first label of its certificate name).
        started: ISO time of the call (every record gets it: per-message times are not kept).
        local / remote: ``ip:port`` of the Expressway-E's and the Edge's ends, when known.
    """
    stamp = (started or "1970-01-01T00:00:00.000Z").replace("Z", "+00:00")
    utc = stamp[:23].replace("T", " ").replace(".", ",")
    lip, lport = _split(local)
    rip, rport = _split(remote)
    out: list[str] = []
    for m in messages:
        sent = m.sender.startswith("Expressway-E")
        action = "Sent" if sent else "Received"
        peer = "Dst" if sent else "Src"
        digest = int.from_bytes(hashlib.sha256(m.text.encode()).digest()[:8], "big")
        fields = [f'Action="{action}"']
        if lip:
            fields.append(f'Local-ip="{lip}" Local-port="{lport}"')
        if rip:
            fields.append(f'{peer}-ip="{rip}"' + (f' {peer}-port="{rport}"' if rport else ""))
        fields.append(f'Msg-Hash="{digest}"')
        body = m.text.replace("\r\n", "\n").rstrip("\n")
        out.append(
            f'{stamp} {host} tvcs: UTCTime="{utc}" Module="network.sip" Level="DEBUG":  '
            + " ".join(fields)
        )
        out.append("SIPMSG:")
        out.append(f"|{body}")
        out.append("|")
    return "\n".join(out)


def _expressway_host(call: CallReport, facts: LabFacts | None) -> str:
    peer = facts.peer(call.trace.peer_name) if facts is not None else None
    cert = facts.cert(peer.cert) if facts is not None and peer is not None else None
    name = (cert.cn if cert is not None and cert.cn else None) or (peer.cert if peer else "")
    return (name or call.trace.peer_name or "expe").split(".", 1)[0]


def _expressway(call: CallReport, facts: LabFacts | None) -> View:
    t = call.trace
    fed = [m for m in t.messages if m.leg == "federation"]
    peer = facts.peer(t.peer_name) if facts is not None else None
    title = f"Expressway-E {t.peer_name}" if t.peer_name else "Expressway-E"
    host = _expressway_host(call, facts)
    items: list[Item] = []
    if t.direction == "inbound":
        final = _final(fed, "Expressway-E") if fed else None
        if final is not None:
            headline = f"received {final.start_line}"
            diag = _header(final.text, "ms-diagnostics")
            server = _header(final.text, "Server")
            tone: Tone = "good" if (_status(final.start_line) or 0) < 300 else "bad"
            if tone == "bad" and diag is None:
                headline += f" ({server or 'no Server header'}; no ms-diagnostics)"
        elif t.error:
            headline, tone = f"no SIP answer: {t.error}", "bad"
        else:
            headline, tone = "no final response", "bad"
        if t.error and not t.responses:
            tls = f"refused: {t.error}"
        else:
            tls = (
                f"mutual TLS with {t.edge_fqdn} established: the Edge presented "
                f"{', '.join(t.edge_cert_names) or '?'}"
            )
            if peer is not None:
                tls += f"; the Expressway-E sent certificate '{peer.cert}'"
        items.append(
            Item(label="TLS", text=tls, tone="bad" if tls.startswith("refused") else "good")
        )
        if final is not None and tone == "bad" and _header(final.text, "ms-diagnostics") is None:
            items.append(
                Item(
                    label="What it can tell",
                    text=(
                        "only the status: the Edge sends no ms-diagnostics to a federated peer; "
                        "the reason is in the Edge log and in the Skype client's 504"
                    ),
                )
            )
        local, remote = t.caller_address, t.edge_address
    else:
        received = [m for m in fed if m.receiver == "Expressway-E"]
        if received:
            headline, tone = f"received {received[0].start_line}", "good"
            tls = "mutual TLS from the Edge established"
            if t.edge_cert_names:
                tls += f": the Edge presented {', '.join(t.edge_cert_names)}"
        elif t.partner_tls:
            headline, tone = "nothing arrived: it refused the Edge's TLS handshake", "bad"
            tls = "refused: " + "; ".join(t.partner_tls)
        else:
            headline, tone = "nothing arrived: the Edge never sent it the request", "bad"
            tls = "no TLS connection from the Edge"
        items.append(Item(label="TLS", text=tls, tone="bad" if not received else "good"))
        if received:
            finals = [r for r in t.responses if (_status(r) or 0) >= 200]
            answer = finals[-1] if finals else "nothing"
            items.append(
                Item(
                    label="Its answer",
                    text=f"{answer} (as the Edge relayed it to the Skype client; "
                    + (f"this peer answers {peer.answer})" if peer else "the peer's own)"),
                )
            )
        local = f"127.0.0.1:{peer.port}" if peer is not None and peer.port else None
        remote = "127.0.0.1"
    log = expressway_log(fed, host=host, started=t.started, local=local, remote=remote)
    items.append(
        Item(
            label="Diagnostic log (network.sip)",
            text=log or "(no SIP message on the federation leg)",
            pre=True,
        )
    )
    return View(party="expressway", title=title, headline=headline, items=tuple(items), tone=tone)


# --- the Edge -------------------------------------------------------------------------


def _lab_port(target: str, facts: LabFacts | None) -> str:
    """``vcse.steven.lab:35497 (5061 in the lab file)`` when the runner rewrote the port."""
    if facts is None:
        return target
    _, _, port = target.rpartition(":")
    for peer in facts.peers:
        if peer.port is not None and str(peer.port) == port and peer.listen:
            placeholder = peer.listen.rpartition(":")[2]
            return f"{target} (peer {peer.name}; {placeholder} in the lab file)"
    return target


def dns_lines(event: Mapping[str, object], facts: LabFacts | None) -> list[str]:
    """The Edge's DNS questions and answers for the call, one line each."""
    extra = _map(event.get("extra"))
    lines: list[str] = []
    srv = _map(extra.get("srv"))
    if srv:
        targets = ", ".join(_lab_port(str(t), facts) for t in _list(srv.get("targets")))
        lines.append(
            f"SRV? {srv.get('name')} -> {str(srv.get('outcome', '?')).upper()}"
            + (f": {targets}" if targets else "")
        )
    route = _map(extra.get("route"))
    if route.get("kind") == "proxy":
        lines.append(f"no SRV: allowed partner server {route.get('name')} (proxy_fqdn)")
    for tried in (_map(a) for a in _list(extra.get("targets_tried"))):
        host = str(tried.get("target", "?")).rpartition(":")[0]
        if "addresses" in tried:
            addresses = ", ".join(str(a) for a in _list(tried.get("addresses")))
            outcome = str(tried.get("address_outcome", "?")).upper()
            lines.append(f"A? {host} -> {outcome}" + (f": {addresses}" if addresses else ""))
    return lines


def _cert_lines(cert: LabCert, facts: LabFacts) -> list[str]:
    issuer = cert.issuer_name or cert.issuer
    lines = [
        f"certificate '{cert.name}': CN {cert.cn or '(none)'}; "
        f"DNS SANs {', '.join(cert.sans) or '(none)'}",
        f"issued by {issuer}"
        + (f" (root {cert.root})" if cert.root and cert.root != issuer else ""),
        f"valid {cert.not_before} to {cert.not_after} ({cert.validity})",
        f"EKU {', '.join(cert.eku) or '(any)'}",
    ]
    root = cert.root or cert.issuer_name
    if root is not None:
        trusted = root in facts.edge_trust
        lines.append(f"the Edge {'trusts' if trusted else 'does not trust'} {root}")
    return lines


def _settings(rule: str, facts: LabFacts) -> list[str]:
    keys: tuple[str, ...] = ()
    for prefix, wanted in RULE_SETTINGS:
        if rule == prefix or (prefix.endswith("-") and rule.startswith(prefix)):
            keys = wanted
            break
    values = [*facts.policy, *facts.profile]
    lines: list[str] = []
    for key in keys:
        if key == "trust":
            lines.append(f"trust = {', '.join(facts.edge_trust) or '(none)'}")
            continue
        found = [v for k, v in values if k == key]
        lines.append(f"{key} = {', '.join(found)}" if found else f"{key} = (not set)")
    return lines


def _edge(call: CallReport, facts: LabFacts | None) -> View:
    t = call.trace
    event = t.event or {}
    log = _map(event.get("edge_log"))
    rule = str(event.get("rule") or "(no event)")
    status = event.get("status")
    headline = f"rule {rule}" + (
        f" -> {status} {event.get('reason', '')}".rstrip() if status else ""
    )
    if log:
        headline += f"; {log.get('result_code', '')} {log.get('symbol', '')}"
    accepted = event.get("accepted")
    tone: Tone = "good" if accepted is True else "bad" if event else "plain"
    items: list[Item] = []
    dns = dns_lines(event, facts)
    items.append(Item(label="DNS", text="\n".join(dns) if dns else "no DNS question for this call"))
    extra = _map(event.get("extra"))
    seen = ", ".join(t.peer_cert_names)
    cert_text = [f"names seen in the TLS handshake: {seen}"] if seen else []
    chain = extra.get("chain") or next(
        (_map(a).get("chain") for a in reversed(_list(extra.get("targets_tried")))), None
    )
    if chain:
        cert_text.append(f"chain: {chain}")
    peer = facts.peer(t.peer_name) if facts is not None else None
    cert = facts.cert(peer.cert) if facts is not None and peer is not None else None
    if cert is not None and facts is not None:
        cert_text += _cert_lines(cert, facts)
    items.append(
        Item(
            label=f"Peer certificate ({t.peer_name})" if t.peer_name else "Peer certificate",
            text="\n".join(cert_text) or "no peer certificate for this call",
        )
    )
    decision = [f"rule: {rule}"]
    if status is not None:
        decision.append(f"answer: {status} {event.get('reason', '')}".rstrip())
    if event.get("explanation"):
        decision.append(str(event["explanation"]))
    elif event.get("reason") and status is None:
        decision.append(f"reason: {event['reason']}")
    items.append(Item(label="Decision", text="\n".join(decision), tone=tone))
    if facts is not None:
        settings = _settings(rule, facts)
        if settings:
            items.append(Item(label="Settings that mattered", text="\n".join(settings)))
    items.append(
        Item(
            label="Edge log record (edge.log, as written)",
            text=t.edge_record or "(no record written for this call)",
            pre=bool(t.edge_record),
        )
    )
    labels = []
    if event.get("fidelity"):
        labels.append(f"answer: {FIDELITY_TEXT.get(str(event['fidelity']), event['fidelity'])}")
    if log.get("fidelity"):
        labels.append(f"log record: {FIDELITY_TEXT.get(str(log['fidelity']), log['fidelity'])}")
    if labels:
        items.append(Item(label="Fidelity", text="\n".join(labels)))
    title = f"Edge {t.edge_fqdn}"
    return View(party="edge", title=title, headline=headline, items=tuple(items), tone=tone)


# --- the Skype client -----------------------------------------------------------------


def _explain(text: str) -> str | None:
    try:
        return explain_text(text).rstrip("\n")
    except DiagnosticsParseError:
        return None


def _client(call: CallReport, facts: LabFacts | None) -> View:
    t = call.trace
    event = t.event or {}
    items: list[Item] = []
    explained: str | None = None
    if t.direction == "outbound":
        leg = [m for m in t.messages if m.leg == "client"]
        final = _final(leg, "Skype client") if leg else None
        if final is not None:
            diag = _header(final.text, "ms-diagnostics")
            code = f" + ms-diagnostics {diag.split(';', 1)[0]}" if diag else ""
            headline = f"received {final.start_line}{code}"
            tone: Tone = "good" if (_status(final.start_line) or 0) < 300 else "bad"
            items.append(Item(label="Final response", text=final.text.rstrip("\r\n"), pre=True))
            if diag is not None:
                items.append(Item(label="ms-diagnostics", text=f"ms-diagnostics: {diag}", pre=True))
                explained = _explain(f"ms-diagnostics: {diag}")
        else:
            headline, tone = f"no final response: {t.error or 'nothing came back'}", "bad"
        if t.responses:
            items.insert(0, Item(label="Responses", text="\n".join(t.responses)))
    else:
        who = t.to_uri
        if event.get("accepted") is True:
            status = event.get("status")
            headline, tone = (
                f"the call reached {who} (the Edge answered {status} as the user)",
                "good",
            )
        else:
            headline, tone = f"nothing: the call never reached {who}", "bad"
            items.append(
                Item(
                    label="What the user sees",
                    text=(
                        "no ringing, no missed-call notice: the Edge refused the call before "
                        "routing it inward, so only the Edge log has the reason"
                    ),
                )
            )
    if explained is None and t.edge_record:
        explained = _explain(t.edge_record)
    if explained is not None:
        items.append(Item(label="fedsim explain", text=explained, pre=True))
    fix = fix_for(call, facts) if facts is not None else None
    if fix is not None:
        items.append(Item(label="Fix (this lab's names)", text=fix, tone=tone))
    return View(
        party="client", title="Skype client", headline=headline, items=tuple(items), tone=tone
    )


# --- downloads ------------------------------------------------------------------------


def file_stem(call: CallReport, lab_id: str) -> str:
    """``seeds--01-acano-srv-points-to-parent-domain--call-1``: one flat name per call."""
    return f"{lab_id.replace('/', '--')}--call-{call.number}"


def _messages_text(messages: Sequence[WireMessage]) -> str:
    parts = [f"=== {m.leg} leg: {m.sender} -> {m.receiver} ===\r\n{m.text}" for m in messages]
    return "\r\n".join(parts)


def call_views(call: CallReport, facts: LabFacts | None, *, lab_id: str) -> CallViews:
    """The three views of ``call`` and the files it offers (messages, log excerpts, event)."""
    expressway = _expressway(call, facts)
    stem = file_stem(call, lab_id)
    downloads: list[Download] = []
    t = call.trace
    if t.messages:
        downloads.append(
            Download(
                name=f"{stem}--messages.txt",
                media_type="text/plain",
                text=_messages_text(t.messages),
            )
        )
    log = next((i.text for i in expressway.items if i.pre), "")
    if any(m.leg == "federation" for m in t.messages):
        downloads.append(
            Download(name=f"{stem}--expressway.log", media_type="text/plain", text=log + "\n")
        )
    if t.edge_record:
        downloads.append(
            Download(name=f"{stem}--edge.log", media_type="text/plain", text=t.edge_record + "\n")
        )
    if t.event is not None:
        downloads.append(
            Download(
                name=f"{stem}--event.json",
                media_type="application/json",
                text=json.dumps(t.event, ensure_ascii=False, separators=(",", ":")) + "\n",
            )
        )
    return CallViews(
        expressway=expressway,
        edge=_edge(call, facts),
        client=_client(call, facts),
        downloads=tuple(downloads),
    )


__all__ = [
    "CallViews",
    "Download",
    "Item",
    "View",
    "call_views",
    "dns_lines",
    "expressway_log",
    "file_stem",
]
