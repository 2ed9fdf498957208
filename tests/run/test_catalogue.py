"""The scenario catalogue: every lab file is well-formed, and every call passes the runner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.run import load_lab_files, run_labs

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FOLDERS = {
    "seeds",
    "inbound",
    "outbound",
    "dns",
    "pki",
    "policy",
    "profiles",
    "rules",
    "tenant",
    "field",
    "skype",
}


#: The exercises are broken on purpose (tests/ui/test_exercises.py); their solutions run here.
EXERCISES = SCENARIOS / "exercises"


def lab_files() -> list[Path]:
    return sorted(p for p in SCENARIOS.rglob("*.toml") if EXERCISES not in p.parents)


def test_catalogue_is_at_least_thirty_numbered_labs_in_theme_folders() -> None:
    files = lab_files()
    assert len(files) >= 30
    stems = [p.stem for p in files]
    for path in files:
        assert path.parent.parent == SCENARIOS, path
        assert path.parent.name in FOLDERS, path
        assert re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*", path.stem), path
    assert len(set(stems)) == len(stems), "lab names must be unique across folders"


@pytest.mark.parametrize("path", lab_files(), ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_lab_is_named_summarised_and_tells_its_story(path: Path) -> None:
    (lab_file,) = load_lab_files([path])
    lab = lab_file.lab
    assert lab.name == path.stem
    assert lab.summary
    assert "\n" not in lab.summary
    assert lab.calls, "a scenario without calls checks nothing"
    story = path.read_text(encoding="utf-8").split("\nname =", 1)[0]
    assert story.count("\n# ") >= 3, "the story of the fault and its fix goes in comments on top"


def test_seed_failures_are_covered_in_both_directions() -> None:
    labs = {lf.lab.name: lf.lab for lf in load_lab_files([SCENARIOS / "seeds"])}
    directions = {name: {c.direction for c in lab.calls} for name, lab in labs.items()}
    for name in (
        "01-acano-srv-points-to-parent-domain",
        "02-acano-cert-lacks-srv-target",
        "03-cms-srv-points-to-subdomain",
        "04-cms-cert-lacks-srv-target",
        "05-fixed-lab",
    ):
        assert directions[name] == {"inbound", "outbound"}, name


async def test_whole_catalogue_passes_through_the_runner() -> None:
    # As make scenarios runs it: everything but the unsolved exercises.
    labs = load_lab_files([SCENARIOS], exclude=["exercises/[0-9]*"])
    assert {lf.id.split("/")[0] for lf in labs} == FOLDERS | {"exercises"}
    reports = await run_labs(labs, jobs=4)
    problems = [f"{r.id}: {r.error}" for r in reports if r.error is not None]
    problems += [
        f"{c.id}: " + "; ".join(m.line() for m in c.mismatches)
        for r in reports
        for c in r.calls
        if c.mismatches
    ]
    assert not problems, "\n".join(problems)
    assert sum(len(r.calls) for r in reports) == sum(len(lf.lab.calls) for lf in labs)
