"""The bounded CI variants of ``make soak`` and ``make fuzz`` (seconds here, minutes there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.fuzz.__main__ import main as fuzz_main
from simulator.fuzz.sip import SEEDS, check, load_corpus, run_loop
from simulator.fuzz.soak import run_soak

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "rfc4475"


def test_soak_for_ten_seconds(tmp_path: Path) -> None:
    result = run_soak(10, workers=3, work=tmp_path)
    assert result.failures == []
    assert result.answered > 50  # real traffic flowed
    assert set(result.kinds) >= {"options", "invite", "malformed", "mutated", "plain", "reset"}
    # The clients port too: a local user, 1009 after DNS, 484, mutations, abrupt clients.
    assert set(result.kinds) >= {"clocal", "coutbound", "cunroutable", "cmutated", "cabort"}
    assert result.summary.endswith(" 0 unwritten")


def test_fuzz_loop_over_the_rfc4475_corpus_finds_nothing() -> None:
    corpus = load_corpus([CORPUS])
    assert len(corpus) > len(SEEDS) + 40
    result = run_loop(corpus, seconds=5, seed=8)
    assert result.inputs > len(corpus)
    assert result.messages > 0


def test_fuzz_command_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz_main(["--seconds", "1", str(CORPUS)]) == 0
    assert "no finding" in capsys.readouterr().out
    assert fuzz_main(["--seconds", "1", "/nonexistent-corpus"]) == 2


def test_harness_counts_messages_and_is_deterministic() -> None:
    assert check(SEEDS[0]) == 1
    assert check(b"".join(SEEDS[:3])) == 3
    first = run_loop(SEEDS, seconds=60, seed=3, max_inputs=300)
    again = run_loop(SEEDS, seconds=60, seed=3, max_inputs=300)
    assert (first.inputs, first.messages) == (again.inputs, again.messages) == (300, first.messages)
