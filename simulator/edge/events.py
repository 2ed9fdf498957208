"""The Edge's two outputs on disk: ``edge.log`` (Microsoft's record format) and ``events.jsonl``.

Every decision is written and flushed before its reply leaves, so nothing is
lost at shutdown or under load, and a peer that has its answer finds the event in
the file. A connection answering a burst of pipelined requests holds its records
(``write(..., flush=False)``) and flushes them once, just before the burst's
replies leave together: two writes per burst instead of two per request.

A log directory that becomes unwritable (or a full disk) never stops the Edge:
the failure is reported once per failure streak on stderr and on the console
(``fedsim serve``'s stdout, the next writable place), the records are counted in
:attr:`EventLog.unwritten`, and writing resumes when the directory is writable
again, starting with a ``{"kind": "log-gap", "unwritten": N}`` line so the file
itself says what it lacks. :meth:`EventLog.close` says ``fedsim: stopped: N
requests, N events, N unwritten`` on the console, so a shutdown can be checked
against the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TextIO

from simulator.net import InternalError

EDGE_LOG = "edge.log"
EVENTS = "events.jsonl"
#: One encoder for every event: json.dumps with options builds a new JSONEncoder per
#: call, which costs ~4 us of the ~13 us an event takes (measured by `make bench`).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class EventLog:
    """Append-only writer for ``edge.log`` and ``events.jsonl`` in one directory.

    Args:
        log_dir: where the two files live (created if missing).
        console: called with one human line per decision (``fedsim serve`` prints it).
        stderr: where write failures are reported (once per failure streak).
        edge_log_path: where the Edge log records go (default ``log_dir/edge.log``).
        events_path: where the JSON events go (default ``log_dir/events.jsonl``).

    Attributes:
        written: events written (``log-gap`` notices not included).
        unwritten: events that could not be written.
        request_counter: the owner's count of requests accepted off the wire (the Edge
            sets it), for the shutdown summary.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        console: Callable[[str], None] | None = None,
        stderr: TextIO | None = None,
        edge_log_path: Path | None = None,
        events_path: Path | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.console = console
        #: False with ``fedsim serve --quiet``: no line per decision (warnings and the
        #: shutdown summary still reach the console).
        self.decisions = True
        #: True with ``fedsim serve --debug``: internal errors show their traceback.
        self.debug = False
        self.stderr = stderr if stderr is not None else sys.stderr
        self._edge_log_path = edge_log_path or log_dir / EDGE_LOG
        self._events_path = events_path or log_dir / EVENTS
        self.written = 0
        self.unwritten = 0
        self.request_counter: Callable[[], int] | None = None
        self._gap = 0  # events lost in the current failure streak, for the log-gap line
        self._failing = False
        self._edge: IO[str] | None = None
        self._events: IO[str] | None = None
        # Records written with flush=False, not yet on disk (see flush()).
        self._held_records: list[str] = []
        self._held_lines: list[str] = []
        self._open()

    @property
    def edge_log_path(self) -> Path:
        return self._edge_log_path

    @property
    def events_path(self) -> Path:
        return self._events_path

    def _open(self) -> None:
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if self._edge is None:
                self._edge = self.edge_log_path.open("a", encoding="utf-8", newline="")
            if self._events is None:
                self._events = self.events_path.open("a", encoding="utf-8", newline="")
        except OSError as exc:
            self._report(exc)

    def _report(self, exc: OSError) -> None:
        if not self._failing:
            self._failing = True
            where = exc.filename or self.log_dir
            self._notice(
                f"fedsim: warning: cannot write logs ({where}): {exc.strerror or exc}; "
                "the Edge keeps answering and counts what it could not write"
            )

    def _notice(self, text: str) -> None:
        """Say ``text`` on stderr and on the console: never let a broken pipe stop us."""
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.stderr, flush=True)
        self.say(text)

    def write(
        self,
        event: Mapping[str, object] | str,
        edge_record: str | None = None,
        *,
        flush: bool = True,
    ) -> None:
        """Write one decision: its Edge log record (if any) and its JSON event.

        ``event`` is the event object, or its line already encoded (the Edge's hot
        path renders it from a compiled template). With ``flush=False`` the two are
        held until the next :meth:`flush`, which the caller must make before the
        decision's reply leaves.
        """
        line = event if isinstance(event, str) else _ENCODER.encode(event)
        if edge_record is not None:
            self._held_records.append(edge_record)
        self._held_lines.append(line + "\n")
        if flush:
            self.flush()

    @property
    def held(self) -> int:
        """Events written with ``flush=False`` and not flushed yet."""
        return len(self._held_lines)

    def flush(self) -> None:
        """Put every held record and event on disk (two writes, whatever their number)."""
        count = len(self._held_lines)
        if not count:
            return
        records = "".join(self._held_records)
        lines = "".join(self._held_lines)
        self._held_records.clear()
        self._held_lines.clear()
        if self._edge is None or self._events is None:
            self._open()
        try:
            if self._edge is None or self._events is None:
                raise OSError("log files are not open")
            if self._gap:
                self._write_gap()
            if records:
                self._edge.write(records)
                self._edge.flush()
            self._events.write(lines)
            self._events.flush()
        except OSError as exc:
            self.unwritten += count
            self._gap += count
            self._report(exc)
            self._close_files()
        else:
            self.written += count
            if self._failing:
                self._failing = False
                self._notice(
                    f"fedsim: logs are writable again ({self.unwritten} record(s) "
                    "could not be written)"
                )

    def _write_gap(self) -> None:
        """After a failure streak: one line in events.jsonl saying how many events are missing."""
        assert self._events is not None
        gap = {"kind": "log-gap", "unwritten": self._gap, "unwritten_total": self.unwritten}
        self._events.write(json.dumps(gap, separators=(",", ":")) + "\n")
        self._events.flush()
        self._gap = 0

    def summary(self) -> str:
        """``fedsim: stopped: N requests, N events, N unwritten`` (requests when known)."""
        requests = f"{self.request_counter()} requests, " if self.request_counter else ""
        return f"fedsim: stopped: {requests}{self.written} events, {self.unwritten} unwritten"

    @property
    def wants_decisions(self) -> bool:
        """Whether a line per decision goes to the console (check before formatting it)."""
        return self.decisions and self.console is not None

    def say_decision(self, text: str) -> None:
        """One decision's console line, unless decisions are not shown (``--quiet``)."""
        if self.decisions:
            self.say(text)

    def say(self, text: str) -> None:
        """Pass one human-readable line to the console callback, if any.

        The console is a courtesy: a closed or broken stdout (``fedsim serve | head``)
        must not stop the Edge, whose record of the decision is the log files.
        """
        if self.console is not None:
            with contextlib.suppress(OSError, ValueError):
                self.console(text)

    def _close_files(self) -> None:
        for handle in (self._edge, self._events):
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
        self._edge = None
        self._events = None

    def internal_error(self, fault: InternalError) -> None:
        """Record a fedsim bug that one connection reached (a guard contained it).

        One ``internal-error`` event and one console line, without the traceback
        unless :attr:`debug` is set (``fedsim serve --debug``).
        """
        self.write(
            {
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "kind": "internal-error",
                "server": fault.server,
                "peer_address": fault.peer,
                "error_type": fault.error_type,
                "error": f"{fault.error_type}: {fault.error}",
                "count": fault.count,
            }
        )
        self._notice(fault.describe())
        if self.debug:
            self.say(fault.traceback())

    def close(self) -> None:
        """Flush and close both files; say the summary when an Edge was attached."""
        self.flush()
        self._close_files()
        if self.request_counter is not None:
            self.say(self.summary())
