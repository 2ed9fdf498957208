"""A seeded lab is reproducible: two runs send the same messages and write the same logs.

Issue 14 item 5: every random choice (tags, branches, Call-IDs, correlation ids,
the SRV weighted order, the records' pid.tid) comes from generators seeded by
``[edge] seed``; only times and ports may differ between two runs. An unseeded
lab stays random. Each run is its own ``fedsim run`` process, as a user runs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Labs whose calls cross both ports, refused and accepted, with SRV targets of
#: equal priority (their weighted order is a random draw) and Edge records.
LABS = [
    REPO / "scenarios" / "seeds",
    REPO / "scenarios" / "inbound" / "04-several-srv-targets-one-good.toml",
]

#: What may differ between two runs: times, ports (and what the runner measures).
_MASKS = [
    (re.compile(r"\d{2}/\d{2}/\d{4}-\d{2}:\d{2}:\d{2}\.\d{3}"), "<stamp>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00"), "<time>"),
    # host:port anywhere (the peers' and the clients' ports are picked by the OS).
    (re.compile(r"([A-Za-z0-9\]])(:)\d{2,5}\b"), r"\1\2<port>"),
    (re.compile(r"(ms-received-port|rport)=\d+"), r"\1=<port>"),
    (re.compile(r'("port"|"seconds"|"started"|"ms"|"elapsed_ms"):\s*[\d.]+'), r"\1:<n>"),
    (re.compile(r"(m=\w+ )\d+"), r"\1<port>"),
    (re.compile(r"(:\d+)(;transport=tls)"), r":<port>\2"),
    (re.compile(r"(Peer: [^:\n]+):\d+"), r"\1:<port>"),
]


def _mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def _run(tmp: Path, name: str, seed: int | None) -> tuple[str, str, str]:
    keep, out = tmp / f"keep-{name}", tmp / f"{name}.json"
    argv = [sys.executable, "-m", "simulator", "run", *map(str, LABS)]
    argv += ["--keep-logs", str(keep), "--json", str(out)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    messages = [
        m["text"]
        for lab in json.loads(out.read_text())["labs"]
        for call in lab["calls"]
        for m in call["messages"]
    ]
    logs = sorted(p.parent for p in keep.rglob("events.jsonl"))
    return (
        _mask("\n".join(messages)),
        _mask("".join((d / "edge.log").read_text("utf-8") for d in logs)),
        _mask("".join((d / "events.jsonl").read_text("utf-8") for d in logs)),
    )


def test_two_runs_of_a_seeded_lab_send_the_same_messages_and_write_the_same_logs(
    tmp_path: Path,
) -> None:
    first = _run(tmp_path, "one", seed=20261203)
    second = _run(tmp_path, "two", seed=20261203)
    assert first[0]  # messages were captured
    assert first[1]  # and records written
    for what, a, b in zip(("messages", "edge.log", "events.jsonl"), first, second, strict=True):
        assert a == b, what
    other = _run(tmp_path, "three", seed=7)
    assert other[0] != first[0]  # another seed, other tags and Call-IDs


def test_an_unseeded_lab_stays_random(tmp_path: Path) -> None:
    assert _run(tmp_path, "one", seed=None)[0] != _run(tmp_path, "two", seed=None)[0]
