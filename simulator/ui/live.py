"""The live page's calls: one row per request the Edge decided, built from what it wrote.

Pure. The feed takes, in order:

- every event line and Edge record the recorder writes
  (:meth:`LiveCalls.observe`, subscribed with
  :meth:`simulator.edge.recorder.Recorder.subscribe`): a row per call;
- every SIP message the Edge's wire taps see (:meth:`LiveCalls.wire`, a
  :class:`simulator.trace.WireMessage`, issue 17's taps): the messages of the
  row with its Call-ID, on the leg its side names (queued too, parsed in the drain);
- the full report of a call placed from the page (:meth:`LiveCalls.attach`):
  what the caller sent and received, judged against the lab's expectations.

``observe`` runs inside the Edge's flush, right before a reply leaves, so it
only queues the line (a bounded deque): parsing waits for :meth:`LiveCalls.drain`,
which the page's server calls when it shows or pushes rows. With no browser
attached, a call costs the Edge one append.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from simulator.lab import Expect
from simulator.run.model import CallReport, CallTrace, LabFacts, Outcome, WireMessage
from simulator.run.views import CallViews, Item, View, call_views
from simulator.trace import WireMessage as TapMessage

#: Rows kept (the oldest is forgotten first), and lines queued between two drains.
MAX_ROWS = 500
MAX_QUEUED = 5000
#: Messages kept per row (a long dialog's re-INVITEs are cut).
MAX_MESSAGES = 64
#: Event kinds that are not a call of their own (a dialog's ACK/BYE, the files' notes).
NOT_CALLS = frozenset({"in-dialog", "log-gap", "internal-error"})


@dataclass(slots=True, kw_only=True)
class LiveCall:
    """One row: the Edge's event for a call, its record, and whatever else was seen of it."""

    number: int
    event: dict[str, object]
    record: str | None = None
    report: CallReport | None = None
    messages: list[WireMessage] = field(default_factory=list)

    @property
    def call_id(self) -> str | None:
        value = self.event.get("call_id")
        return value if isinstance(value, str) else None

    @property
    def time(self) -> str:
        return str(self.event.get("time", ""))[11:19]

    @property
    def direction(self) -> str:
        return str(self.event.get("direction", "?"))

    @property
    def method(self) -> str:
        return str(self.event.get("method") or ("TLS" if "peer_address" in self.event else "-"))

    @property
    def parties(self) -> str:
        if "from" in self.event:
            return f"{self.event.get('from')} -> {self.event.get('to')}"
        return f"TLS from {self.event.get('peer_address', '?')}"

    @property
    def outcome(self) -> str:
        status = self.event.get("status")
        if status is None:
            return str(self.event.get("kind", "-"))
        return str(status)

    @property
    def rule(self) -> str:
        return str(self.event.get("rule") or self.event.get("kind") or "-")

    @property
    def good(self) -> bool:
        status = self.event.get("status")
        return isinstance(status, int) and status < 300


class LiveCalls:
    """The rows of the live page (module docstring)."""

    def __init__(self, *, max_rows: int = MAX_ROWS) -> None:
        self._queue: deque[tuple[str, str | None]] = deque(maxlen=MAX_QUEUED)
        #: The wire taps' messages, not looked at yet (a request and its reply per call).
        self._wire: deque[TapMessage] = deque(maxlen=4 * MAX_QUEUED)
        self.rows: deque[LiveCall] = deque(maxlen=max_rows)
        self.count = 0
        #: Rows added since the last :meth:`take_new`.
        self._new: list[LiveCall] = []
        self._by_call_id: dict[str, LiveCall] = {}
        #: Messages seen before their row's event (the request comes before the decision).
        self._early: dict[str, list[WireMessage]] = {}

    # -- input ------------------------------------------------------------------------

    def observe(self, line: str, record: str | None) -> None:
        """The recorder's observer: queue one event line and its record (no parsing here)."""
        self._queue.append((line, record))

    @property
    def queued(self) -> int:
        return len(self._queue)

    def drain(self) -> list[LiveCall]:
        """Turn the queued lines into rows; returns the new rows, oldest first."""
        added: list[LiveCall] = []
        # The messages first: a row added below takes those that came before its event.
        while self._wire:
            self._keep_message(self._wire.popleft())
        while self._queue:
            line, record = self._queue.popleft()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or event.get("kind") in NOT_CALLS:
                continue
            added.append(self._add(event, record))
        self._new.extend(added)
        return added

    def _add(self, event: dict[str, object], record: str | None) -> LiveCall:
        self.count += 1
        row = LiveCall(number=self.count, event=event, record=record)
        if len(self.rows) == self.rows.maxlen:
            gone = self.rows[0]
            if gone.call_id is not None and self._by_call_id.get(gone.call_id) is gone:
                del self._by_call_id[gone.call_id]
        self.rows.append(row)
        if row.call_id is not None:
            self._by_call_id[row.call_id] = row
            row.messages.extend(self._early.pop(row.call_id, ()))
        return row

    def take_new(self) -> list[LiveCall]:
        """The rows added since the last call (for the push to browsers)."""
        self.drain()
        new, self._new = self._new, []
        return new

    def wire(self, message: TapMessage) -> None:
        """The taps' watcher: queue one message the Edge read or wrote (no parsing here)."""
        self._wire.append(message)

    def _keep_message(self, message: TapMessage) -> None:
        """One message the Edge's taps saw: kept with the row of its Call-ID."""
        text = message.data.decode("utf-8", errors="replace")
        call_id = header_value(text, "call-id", "i")
        if call_id is None:
            return
        converted = wire_message(message, text)
        row = self._by_call_id.get(call_id)
        target = row.messages if row is not None else self._early.setdefault(call_id, [])
        if len(target) < MAX_MESSAGES:
            target.append(converted)
        if len(self._early) > MAX_QUEUED:
            del self._early[next(iter(self._early))]

    def attach(self, report: CallReport) -> LiveCall:
        """A call placed from the page: its row gets the caller's full report."""
        self.drain()
        event = report.trace.event
        call_id = event.get("call_id") if event is not None else None
        row = self._by_call_id.get(call_id) if isinstance(call_id, str) else None
        if row is None and event is not None:
            row = next((r for r in reversed(self.rows) if r.event == dict(event)), None)
        if row is None:
            # No event reached the feed (none was written): a row of its own.
            fields: dict[str, object] = {
                "time": report.trace.started or "",
                "kind": "placed",
                "direction": report.trace.direction,
                "method": report.trace.method,
                "from": report.trace.from_uri,
                "to": report.trace.to_uri,
                "status": report.got.status,
                "rule": report.got.rule or "no event",
            }
            row = self._add(fields, None)
            self._new.append(row)
        row.report = report
        return row

    # -- output -----------------------------------------------------------------------

    def row(self, number: int) -> LiveCall | None:
        """The row numbered ``number``, if still kept."""
        self.drain()
        return next((r for r in self.rows if r.number == number), None)


def header_value(text: str, *names: str) -> str | None:
    """The first value of a header called one of ``names`` (lower case) in a SIP message."""
    for line in text.split("\r\n")[1:]:
        if not line:
            return None
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in names:
            return value.strip()
    return None


def wire_message(message: TapMessage, text: str | None = None) -> WireMessage:
    """A tap's message as one of a call's messages (who sent it to whom, on which leg)."""
    other = "Expressway-E" if message.side == "external" else "Skype client"
    incoming = message.direction == "incoming"
    return WireMessage(
        leg="federation" if message.side == "external" else "client",
        sender=other if incoming else "Edge",
        receiver="Edge" if incoming else other,
        text=text if text is not None else message.data.decode("utf-8", errors="replace"),
    )


def _names(event: Mapping[str, object]) -> tuple[str, ...]:
    extra = event.get("extra")
    if not isinstance(extra, Mapping):
        return ()
    names = extra.get("cert_names")
    tried = extra.get("targets_tried")
    if not isinstance(names, list) and isinstance(tried, list) and tried:
        last = tried[-1]
        names = last.get("cert_names") if isinstance(last, Mapping) else None
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def row_report(
    row: LiveCall, *, edge_fqdn: str, edge_cert_names: tuple[str, ...] = ()
) -> CallReport:
    """The row as a :class:`CallReport` the views and the ladder take.

    A call placed from the page has its own; another (SIPp, a real Expressway-E)
    is described by the Edge's event and record and the messages the taps saw.
    """
    if row.report is not None:
        report = row.report
        if row.messages and not report.trace.messages:
            report = replace(report, trace=replace(report.trace, messages=tuple(row.messages)))
        return report
    event = row.event
    inbound = row.direction == "inbound"
    status = event.get("status")
    method = row.method
    to = str(event.get("to", ""))
    peer = str(event.get("peer") or event.get("peer_address") or "")
    trace = CallTrace(
        scenario="live",
        number=row.number,
        direction=row.direction,
        method=method,
        from_uri=str(event.get("from", "")),
        to_uri=to,
        caller=f"Expressway-E {peer}".strip() if inbound else "Skype client",
        edge_fqdn=edge_fqdn,
        edge_cert_names=edge_cert_names,
        peer_cert_names=_names(event),
        request_line=f"{method} {to} SIP/2.0" if to else "-",
        responses=(f"SIP/2.0 {status}",) if isinstance(status, int) else (),
        error=None if status is not None else str(event.get("reason", "")) or None,
        event=event,
        edge_record=row.record,
        started=str(event.get("time", "")).replace("+00:00", "Z") or None,
        caller_address=str(event.get("peer_address")) if "peer_address" in event else None,
        messages=tuple(row.messages),
    )
    return CallReport(
        id=f"live call-{row.number}",
        number=row.number,
        label=f"#{row.number}: {row.direction} {method} {row.parties}",
        expect=Expect(),
        got=Outcome(status=status if isinstance(status, int) else None, rule=row.rule),
        mismatches=(),
        trace=trace,
        seconds=0.0,
    )


def live_views(
    row: LiveCall, facts: LabFacts | None, *, edge_cert_names: tuple[str, ...] = ()
) -> tuple[CallReport, CallViews]:
    """The report and three views of a row (a call not placed here says what is missing)."""
    edge_fqdn = facts.edge_fqdn if facts is not None else ""
    report = row_report(row, edge_fqdn=edge_fqdn, edge_cert_names=edge_cert_names)
    views = call_views(report, facts, lab_id="live")
    if row.report is None and not row.messages:
        status = row.event.get("status")
        answered = f"the Edge answered {status}" if status is not None else "no SIP answer"
        note = View(
            party=views.expressway.party,
            title=views.expressway.title,
            headline=f"{answered} (from the Edge's event; its messages were not captured)",
            items=(
                Item(
                    label="Where its own view is",
                    text=(
                        "this call came from outside the page (SIPp, fedsim call, a real "
                        "Expressway-E): its side is in that Expressway-E's network.sip log. "
                        "Calls placed from this page show every message."
                    ),
                ),
            ),
            tone=views.expressway.tone,
        )
        views = replace(views, expressway=note)
    return report, views


__all__ = [
    "MAX_ROWS",
    "LiveCall",
    "LiveCalls",
    "header_value",
    "live_views",
    "row_report",
    "wire_message",
]
