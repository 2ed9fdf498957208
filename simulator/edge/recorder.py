"""The Edge's one recorder: every event and Edge log record, one schema, one encoder, one clock.

Every line of ``events.jsonl`` and every record of ``edge.log`` is written here,
by one method per kind of event (``time`` and ``kind`` come first in each):

================  =====================================================================
kind              written when
================  =====================================================================
decision          a federation rule decided (inbound, or an outbound refusal)
rejected          a request screened out before any rule (416, 400, 481, 483, 484)
local             the Skype user of a homed domain answered a client itself
forwarded         a partner's final answer was relayed to the client
in-dialog         an ACK, BYE... of a relayed dialog passed the Edge
partner-timeout   a partner never answered a forwarded request (408)
unanswered        the Edge stopped (or the client left) before answering
malformed         a message that could not be used (its 400, or none)
tls-handshake-failed / client-tls-failed   a refused handshake (federation / clients)
call-ended / notify / message   the emulated Skype user's BYE, NOTIFY, or an IM's text
internal-error    a guard contained a fedsim bug (simulator.net.guard)
log-gap           the disk came back after lines were lost (simulator.edge.logfiles)
================  =====================================================================

The recorder also owns the hot path's templates (its codec,
:mod:`simulator.edge.eventcodec`): on one connection a decision is compiled
once into an :class:`~simulator.edge.eventcodec.EventTemplate` and an
:class:`~simulator.diagnostics.EdgeLogTemplate` with holes for what each request
changes. Records are *held* (:meth:`Recorder.write` with ``hold=True``) and put on
disk by :meth:`Recorder.flush`, which the SIP stream calls right before any reply
leaves (:mod:`simulator.net.sipstream`); events with no reply are flushed at once.

Time has one source, :meth:`Recorder.stamps`: the UTC wall clock, formatted once
per second (formatting costs more than the rest of an event).

The wire taps (:mod:`simulator.edge.taps`: ``trace.log`` and the capture) are the
recorder's too, off unless :meth:`Recorder.start_taps`; every record goes to the trace.
Observers (the live page) :meth:`Recorder.subscribe`: each gets every event line and
its record as they go to disk, in order; with none, the hot path tests an empty list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from simulator.diagnostics import EdgeLogRecord, EdgeLogTemplate, ResultCode, edge_log_stamp
from simulator.edge.eventcodec import (
    EventTemplate,
    Verdict,
    decision_event,
    decision_fields,
    event_json,
    record_summary,
    render_record,
    request_fields,
    verdict_line,
    windows_event_line,
)
from simulator.edge.logfiles import LogFiles
from simulator.edge.observers import Observer, Observers, Watch
from simulator.edge.taps import TRACE_LOG, WireTaps
from simulator.net import InternalError
from simulator.policy import Decision, Rejection, handshake_refused
from simulator.sip import Request
from simulator.trace import COMPONENT_LOCATION

#: The Edge record's "pid.tid": this process, and the thread that runs trio.
PID = os.getpid() & 0xFFFF
TID = threading.get_native_id() & 0xFFFF


class Recorder:
    """Writes every event and Edge log record of one Edge (see the module docstring).

    Args:
        log_dir: where ``edge.log`` and ``events.jsonl`` go.
        console: called with one human line per decision (``fedsim serve`` prints it).
        stderr: where write failures and internal errors are also reported.
        machine: the Edge machine name of the records (``[machine\\machine]``).
        correlation: the source of the records' correlation ids (the Edge's RNG).
        pid_tid: the records' "pid.tid" (default: this process and thread; a seeded lab
            gives fixed ones, so two runs write the same records).

    Attributes:
        decisions: False with ``fedsim serve --quiet``: no console line per decision.
        debug: True with ``--debug``: an internal error's traceback on the console.
        requests: out-of-dialog requests taken off the wire (for the summary).
        taps: the trace and capture writers; None (the default) when both are off.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        console: Callable[[str], None] | None = None,
        stderr: TextIO | None = None,
        machine: str = "sfvedge",
        correlation: Callable[[], int] | None = None,
        pid_tid: tuple[int, int] | None = None,
        edge_log_path: Path | None = None,
        events_path: Path | None = None,
    ) -> None:
        self.console = console
        self.stderr = stderr if stderr is not None else sys.stderr
        self.machine = machine
        self.pid, self.tid = pid_tid if pid_tid is not None else (PID, TID)
        self.correlation = correlation or (lambda: int.from_bytes(os.urandom(4), "big"))
        self.decisions = True
        self.debug = False
        self.requests = 0
        self.internal_errors = 0
        #: Requests taken (:meth:`take`) whose event is not written yet, by id.
        self._open: set[int] = set()
        self._seq = 0
        self._stamp_second = -1
        self._stamp_prefixes = ("", "")
        self.taps: WireTaps | None = None
        self.observers = Observers(self.notice)
        self.files = LogFiles(
            log_dir,
            notice=self.notice,
            edge_log_path=edge_log_path,
            events_path=events_path,
        )

    # -- the clock ---------------------------------------------------------------------

    def stamps(self) -> tuple[str, str]:
        """Now (UTC), as the Edge record prints it and as ISO 8601 to the millisecond."""
        ms = time.time_ns() // 1_000_000
        second, milli = divmod(ms, 1000)
        if second != self._stamp_second:
            when = dt.datetime.fromtimestamp(second, dt.UTC)
            self._stamp_second = second
            self._stamp_prefixes = (edge_log_stamp(when)[:-4], when.isoformat()[:19])
        record, iso = self._stamp_prefixes
        return f"{record}.{milli:03d}", f"{iso}.{milli:03d}+00:00"

    def now(self) -> str:
        """Now, ISO 8601 to the millisecond (the ``time`` of every event)."""
        return self.stamps()[1]

    # -- writing -----------------------------------------------------------------------

    def write(
        self, event: Mapping[str, object] | str, record: str | None = None, *, hold: bool = False
    ) -> None:
        """Write one event (an object, or a line already encoded) and its Edge record.

        With ``hold`` both wait for :meth:`flush`, which the SIP stream makes before
        the reply leaves; without, they are flushed now.
        """
        line = event if isinstance(event, str) else event_json(event)
        self.files.hold(line, record)
        if self.observers.subscribed:
            self.observers.pending.append((line, record))
        if not hold:
            self.flush()

    def flush(self) -> None:
        """Put every held record and event on disk (trace.log too, when on), then hand
        them to the observers."""
        if self.files.held_lines:
            self.files.flush(self.now)
            if self.taps is not None:
                self.taps.flush_trace()
            if self.observers.pending:
                self.observers.notify()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Hand ``observer`` every event line and record written from now on (it must only
        queue: :mod:`simulator.edge.observers`). Returns its unsubscribe."""
        return self.observers.subscribe(observer)

    def next_seq(self) -> int:
        """The next Edge record's sequence number (8 hex digits, so it wraps at 2**32)."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    def record_text(self, template: EdgeLogTemplate, request: Request, stamp: str) -> str:
        """One Edge log record of ``template`` for ``request`` (also in the trace, when on)."""
        if self.taps is not None:  # the transaction's correlation id; the record in the trace
            return self.taps.edge_record(
                template, request, stamp=stamp, seq=self.next_seq(), drawn=self.correlation()
            )
        return render_record(
            template, request, stamp=stamp, seq=self.next_seq(), correlation_id=self.correlation()
        )

    def template(self, record: EdgeLogRecord, peer: str) -> EdgeLogTemplate:
        """A record compiled for one peer (the hot path fills it per request)."""
        return EdgeLogTemplate(record, machine=self.machine, pid=self.pid, tid=self.tid, peer=peer)

    # -- the console -------------------------------------------------------------------

    @property
    def wants_decisions(self) -> bool:
        """Whether a line per decision goes to the console (check before formatting it)."""
        return self.decisions and self.console is not None

    def say(self, text: str) -> None:
        """One line on the console, if any (a broken console never stops the Edge)."""
        if self.console is not None:
            with contextlib.suppress(OSError, ValueError):
                self.console(text)

    def say_decision(self, text: str) -> None:
        """One decision's console line, unless decisions are not shown (``--quiet``)."""
        if self.decisions:
            self.say(text)

    def notice(self, text: str) -> None:
        """A warning: on stderr and on the console."""
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.stderr, flush=True)
        self.say(text)

    # -- requests and their one event ------------------------------------------------------

    def take(self, request: Request) -> None:
        """Count ``request`` as taken off the wire: it will get exactly one event."""
        self.requests += 1
        self._open.add(id(request))

    def answered(self, request: Request) -> bool:
        """Whether the event of a taken ``request`` is written (else: :meth:`unanswered`)."""
        return id(request) not in self._open

    # -- the kinds of event --------------------------------------------------------------

    def _event(self, kind: str, fields: Mapping[str, object]) -> dict[str, object]:
        return {"time": self.now(), "kind": kind, **fields}

    def rejected(
        self,
        direction: str,
        request: Request,
        rejection: Rejection,
        peer: str,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        """A request screened out before any federation rule (held for its reply)."""
        self._open.discard(id(request))
        self.write(
            self._event(
                "rejected",
                {
                    **request_fields(direction, request, peer),
                    "rule": rejection.rule,
                    "accepted": False,
                    "status": rejection.status,
                    "reason": rejection.why,
                    "fidelity": rejection.fidelity,
                    "extra": dict(extra or {}),
                },
            ),
            hold=True,
        )
        self.say_decision(
            f"{self.now()[11:19]} {direction:<8} {request.method} {request.from_.uri} -> "
            f"{request.to.uri}  {rejection.rule}  {rejection.status}"
        )

    def decision(
        self,
        direction: str,
        request: Request,
        decision: Decision,
        *,
        peer: str,
        extra: Mapping[str, object],
        log_peer: str | None = None,
    ) -> None:
        """A policy decision, with its Edge record when it has one (held for its reply)."""
        self._open.discard(id(request))
        stamp, iso = self.stamps()
        record = None
        if self.taps is not None:  # a component line goes before the record it explains
            self.taps.decision_component(decision, request)
        if decision.edge_log is not None:
            record = self.record_text(
                self.template(decision.edge_log, log_peer or peer), request, stamp
            )
        event = decision_event(
            decision,
            time=iso,
            direction=direction,
            call_id=request.call_id,
            method=request.method,
            from_uri=str(request.from_.uri),
            to_uri=str(request.to.uri),
            peer=peer,
            extra=extra,
        )
        self.write(event, record, hold=True)
        self.say_decision(
            f"{iso[11:19]} {direction:<8} {request.method} {request.from_.uri} -> "
            f"{request.to.uri}  {decision.rule}  {decision.status}{windows_event_line(decision)}"
        )

    def compile(
        self, decision: Decision, *, direction: str, peer: str, extra: Mapping[str, object]
    ) -> Verdict:
        """Compile ``decision`` for one connection (``peer`` is its events' and records' Peer)."""
        event = decision_event(
            decision,
            time="",
            direction=direction,
            call_id="",
            method="",
            from_uri="",
            to_uri="",
            peer=peer,
            extra=extra,
        )
        template = EventTemplate(event, decision_fields(decision))
        record = None if decision.edge_log is None else self.template(decision.edge_log, peer)
        return Verdict(decision=decision, event=template, record=record)

    def verdict(
        self,
        verdict: Verdict,
        request: Request,
        *,
        status: int,
        from_text: str,
        to_text: str,
        user: Mapping[str, object] | None = None,
    ) -> None:
        """A compiled decision's event (and record) for one request, as it went on the wire
        (``status``: the decision's, or the user's answer, of which ``user`` says more)."""
        stamp, iso = self.stamps()
        template = verdict.record
        if self.taps is not None:  # a component line goes before the record it explains
            self.taps.decision_component(verdict.decision, request)
        record = None if template is None else self.record_text(template, request, stamp)
        line = verdict_line(verdict, iso, request, from_text, to_text, status, user)
        self.files.hold(line, record)
        if self.observers.subscribed:
            self.observers.pending.append((line, record))
        if self.decisions and self.console is not None:  # format only when shown
            self.say(
                f"{iso[11:19]} inbound  {request.method} {from_text} -> {to_text}"
                f"  {verdict.decision.rule}  {status}{windows_event_line(verdict.decision)}"
            )

    def call_event(
        self,
        kind: str,
        request: Request,
        *,
        status: int | None,
        rule: str,
        peer: str,
        fields: Mapping[str, object],
        hold: bool = True,
    ) -> None:
        """An outbound call's event other than a decision (local, forwarded, in-dialog...)."""
        self._open.discard(id(request))
        event = self._event(
            kind,
            {
                **request_fields("outbound", request, peer),
                "rule": rule,
                "status": status,
                **fields,
            },
        )
        self.write(event, hold=hold)
        if kind != "in-dialog":
            self.say_decision(
                f"{str(event['time'])[11:19]} outbound {request.method} {request.from_.uri} -> "
                f"{request.to.uri}  {rule}  {status}"
            )

    def user_event(self, kind: str, fields: Mapping[str, object], *, direction: str) -> None:
        """What the emulated Skype user did or read (its BYE, a NOTIFY, an IM), held for it."""
        self.write(self._event(kind, {"direction": direction, **fields}), hold=True)

    def unanswered(self, direction: str, request: Request, peer: str, reason: str) -> None:
        """A request taken off the wire that the Edge never answered."""
        self._open.discard(id(request))
        self.write(
            self._event(
                "unanswered",
                {
                    **request_fields(direction, request, peer),
                    "status": None,
                    "reason": reason,
                },
            )
        )

    def malformed(self, direction: str, peer: str, status: int | None, error: str) -> None:
        """A message that framed but could not be used (held for its 400, if any)."""
        self.write(
            self._event(
                "malformed",
                {"direction": direction, "peer": peer, "status": status, "error": error},
            ),
            hold=True,
        )

    def tls_failure(self, peer_address: str, reason: str) -> None:
        """A refused handshake on the federation port, with its (inferred) Edge record."""
        record = handshake_refused(reason)
        stamp, iso = self.stamps()
        text = self.template(record, peer_address).render(
            stamp=stamp,
            seq=self.next_seq(),
            correlation_id=self.correlation(),
            start_line="-",
            call_id="-",
            cseq="-",
        )
        if self.taps is not None:
            self.taps.record(text)
        event = {
            "time": iso,
            "kind": "tls-handshake-failed",
            "direction": "inbound",
            "peer_address": peer_address,
            "rule": "tls-handshake-failed",
            "status": None,
            "reason": reason,
            "fidelity": "inferred",
            "edge_log": record_summary(record),
        }
        self.write(event, text)
        self.say_decision(f"{iso[11:19]} inbound  TLS from {peer_address} refused: {reason}")

    def client_tls_failure(self, peer_address: str, reason: str) -> None:
        """A failed handshake on the clients port (no Edge record: the FE's business)."""
        self.write(
            self._event(
                "client-tls-failed",
                {
                    "direction": "outbound",
                    "peer_address": peer_address,
                    "rule": "client-tls-failed",
                    "status": None,
                    "reason": reason,
                },
            )
        )

    def internal_error(self, fault: InternalError) -> None:
        """A fedsim bug one connection reached (a guard contained it)."""
        self.internal_errors += 1
        self.write(
            self._event(
                "internal-error",
                {
                    "server": fault.server,
                    "peer_address": fault.peer,
                    "error_type": fault.error_type,
                    "error": f"{fault.error_type}: {fault.error}",
                    "count": fault.count,
                },
            )
        )
        self.notice(fault.describe())
        if self.debug:
            self.say(fault.traceback())

    # -- the wire taps ------------------------------------------------------------------

    def start_taps(
        self, *, trace: bool, pcap: Path | None, seed: int | None = None, watch: Watch | None = None
    ) -> None:
        """Turn on trace.log (in the log directory), the capture ``pcap`` and/or a ``watch``
        of every message (the live page); FedsimError if a file cannot be created."""
        if trace or pcap is not None or watch is not None:
            trace_at = self.files.log_dir / TRACE_LOG if trace else None
            self.taps = WireTaps(
                trace=trace_at, pcap=pcap, machine=self.machine, pid=self.pid, tid=self.tid,
                next_seq=self.next_seq, notice=self.notice, seed=seed, watch=watch,
            )  # fmt: skip

    def component(
        self,
        text: str,
        result: ResultCode | None = None,
        *,
        request: Request | None = None,
        level: str = "TL_ERROR",
        location: str | None = COMPONENT_LOCATION,
    ) -> None:
        """A TF_COMPONENT record in trace.log (:meth:`~simulator.edge.taps.WireTaps.component`)."""
        if self.taps is not None:
            self.taps.component(text, result, request=request, level=level, location=location)

    # -- the end -----------------------------------------------------------------------

    def summary(self) -> str:
        """``fedsim: stopped: N requests, N events, N unwritten``."""
        return (
            f"fedsim: stopped: {self.requests} requests, {self.files.written} events, "
            f"{self.files.unwritten} unwritten"
        )

    def close(self) -> None:
        """Flush and close every file (the taps' too), and say the summary."""
        self.files.close(self.now)
        if self.taps is not None:
            self.taps.close()
        if self.observers.pending:
            self.observers.notify()
        self.say(self.summary())
