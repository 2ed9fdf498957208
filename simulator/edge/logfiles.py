"""The Edge's two files, ``edge.log`` and ``events.jsonl``, and what to do when the disk fails.

Only :class:`simulator.edge.recorder.Recorder` writes through this: it hands over
Edge log records and event lines already formatted, held or flushed at once.

A log directory that becomes unwritable (or a full disk) never stops the Edge:
the failure is reported once per failure streak (``notice``), the lines are
counted in :attr:`LogFiles.unwritten`, and writing resumes when the directory is
writable again, starting with a ``{"time": ..., "kind": "log-gap", ...}`` line so
the file itself says what it lacks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO

EDGE_LOG = "edge.log"
EVENTS = "events.jsonl"


class LogFiles:
    """Append-only ``edge.log`` and ``events.jsonl`` in one directory, with held writes.

    Args:
        log_dir: where the two files live (created if missing).
        notice: called with one human line when writing fails or works again.
        edge_log_path / events_path: other places for the two files.

    Attributes:
        written: event lines written (``log-gap`` lines not included).
        unwritten: event lines that could not be written.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        notice: Callable[[str], None],
        edge_log_path: Path | None = None,
        events_path: Path | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.notice = notice
        self.edge_log_path = edge_log_path or log_dir / EDGE_LOG
        self.events_path = events_path or log_dir / EVENTS
        self.written = 0
        self.unwritten = 0
        self._gap = 0  # lines lost in the current failure streak, for the log-gap line
        self._failing = False
        self._edge: IO[str] | None = None
        self._events: IO[str] | None = None
        self._held_records: list[str] = []
        #: Event lines held for the next flush (read by the recorder's hot path).
        self.held_lines: list[str] = []
        self._open()

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
            self.notice(
                f"fedsim: warning: cannot write logs ({where}): {exc.strerror or exc}; "
                "the Edge keeps answering and counts what it could not write"
            )

    def hold(self, line: str, record: str | None) -> None:
        """Keep one event line (and its Edge record) until :meth:`flush`."""
        if record is not None:
            self._held_records.append(record)
        self.held_lines.append(line + "\n")

    @property
    def held(self) -> int:
        """Event lines held and not flushed yet."""
        return len(self.held_lines)

    def flush(self, now: Callable[[], str]) -> None:
        """Put every held record and line on disk (two writes, whatever their number).

        ``now`` gives the time of a ``log-gap`` line, when one is due.
        """
        count = len(self.held_lines)
        if not count:
            return
        records = "".join(self._held_records)
        lines = "".join(self.held_lines)
        self._held_records.clear()
        self.held_lines.clear()
        if self._edge is None or self._events is None:
            self._open()
        try:
            if self._edge is None or self._events is None:
                raise OSError("log files are not open")
            if self._gap:
                self._write_gap(now)
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
                self.notice(
                    f"fedsim: logs are writable again ({self.unwritten} record(s) "
                    "could not be written)"
                )

    def _write_gap(self, now: Callable[[], str]) -> None:
        """After a failure streak: one line saying how many events the file lacks."""
        assert self._events is not None
        gap = {
            "time": now(),
            "kind": "log-gap",
            "unwritten": self._gap,
            "unwritten_total": self.unwritten,
        }
        self._events.write(json.dumps(gap, separators=(",", ":")) + "\n")
        self._events.flush()
        self._gap = 0

    def _close_files(self) -> None:
        for handle in (self._edge, self._events):
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
        self._edge = None
        self._events = None

    def close(self, now: Callable[[], str]) -> None:
        """Flush and close both files."""
        self.flush(now)
        self._close_files()
