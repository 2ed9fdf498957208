"""The recorder's files: records held for a burst reach the disk in one flush, or are lost."""

from __future__ import annotations

import io
import json
from pathlib import Path

from simulator.edge.recorder import Recorder


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_held_records_reach_the_disk_only_at_flush(tmp_path: Path) -> None:
    log = Recorder(tmp_path, stderr=io.StringIO())
    for n in range(3):
        log.write({"n": n}, f"record {n}\n", hold=True)
    assert log.files.held == 3
    assert log.files.events_path.read_text(encoding="utf-8") == ""
    log.flush()
    assert log.files.held == 0
    assert [e["n"] for e in _lines(log.files.events_path)] == [0, 1, 2]
    assert log.files.edge_log_path.read_text(encoding="utf-8") == "record 0\nrecord 1\nrecord 2\n"
    assert (log.files.written, log.files.unwritten) == (3, 0)
    log.close()


def test_a_flushed_write_also_flushes_what_was_held(tmp_path: Path) -> None:
    log = Recorder(tmp_path, stderr=io.StringIO())
    log.write({"n": 0}, hold=True)
    log.write({"n": 1})
    assert [e["n"] for e in _lines(log.files.events_path)] == [0, 1]
    log.close()


def test_close_flushes_held_records(tmp_path: Path) -> None:
    log = Recorder(tmp_path, stderr=io.StringIO())
    log.write({"n": 0}, "record\n", hold=True)
    log.close()
    assert [e["n"] for e in _lines(log.files.events_path)] == [0]
    assert log.files.written == 1


def test_held_records_lost_to_a_full_disk_are_counted_and_announced(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").symlink_to("/dev/full")  # ENOSPC on every write
    stderr = io.StringIO()
    log = Recorder(tmp_path, stderr=stderr)
    for n in range(4):
        log.write({"n": n}, hold=True)
    log.flush()
    assert (log.files.written, log.files.unwritten, log.files.held) == (0, 4, 0)
    assert "cannot write logs" in stderr.getvalue()
    # The disk has room again: the gap line says how many events the file lacks.
    (tmp_path / "events.jsonl").unlink()
    log.write({"n": 4})
    gap, line = _lines(log.files.events_path)
    assert isinstance(gap.pop("time"), str)  # when the disk came back
    assert [gap, line] == [{"kind": "log-gap", "unwritten": 4, "unwritten_total": 4}, {"n": 4}]
    assert "writable again" in stderr.getvalue()
    log.close()
