"""The Edge's two outputs on disk: ``edge.log`` (Microsoft's record format) and ``events.jsonl``.

Every decision is written and flushed before the reply leaves, so nothing is
lost at shutdown or under load. A log directory that becomes unwritable (or a
full disk) never stops the Edge: the failure is reported once on stderr, the
records are counted in :attr:`EventLog.unwritten`, and writing resumes when
the directory is writable again.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TextIO

EDGE_LOG = "edge.log"
EVENTS = "events.jsonl"


class EventLog:
    """Append-only writer for ``edge.log`` and ``events.jsonl`` in one directory.

    Args:
        log_dir: where the two files live (created if missing).
        console: called with one human line per decision (``fedsim serve`` prints it).
        stderr: where write failures are reported (once per failure streak).
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        console: Callable[[str], None] | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.console = console
        self.stderr = stderr if stderr is not None else sys.stderr
        self.written = 0
        self.unwritten = 0
        self._failing = False
        self._edge: IO[str] | None = None
        self._events: IO[str] | None = None
        self._open()

    @property
    def edge_log_path(self) -> Path:
        return self.log_dir / EDGE_LOG

    @property
    def events_path(self) -> Path:
        return self.log_dir / EVENTS

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
            print(
                f"fedsim: warning: cannot write logs in {self.log_dir}: {exc.strerror or exc}; "
                "the Edge keeps answering and counts what it could not write",
                file=self.stderr,
                flush=True,
            )

    def write(self, event: Mapping[str, object], edge_record: str | None = None) -> None:
        """Write one decision: its Edge log record (if any) and its JSON event, both flushed."""
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
        if self._edge is None or self._events is None:
            self._open()
        try:
            if self._edge is None or self._events is None:
                raise OSError("log files are not open")
            if edge_record is not None:
                self._edge.write(edge_record)
                self._edge.flush()
            self._events.write(line + "\n")
            self._events.flush()
        except OSError as exc:
            self.unwritten += 1
            self._report(exc)
            self._close_files()
        else:
            self.written += 1
            if self._failing:
                self._failing = False
                print(
                    f"fedsim: logs in {self.log_dir} are writable again "
                    f"({self.unwritten} record(s) could not be written)",
                    file=self.stderr,
                    flush=True,
                )

    def say(self, text: str) -> None:
        """Pass one human-readable line to the console callback, if any."""
        if self.console is not None:
            self.console(text)

    def _close_files(self) -> None:
        for handle in (self._edge, self._events):
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
        self._edge = None
        self._events = None

    def close(self) -> None:
        """Flush and close both files."""
        self._close_files()
