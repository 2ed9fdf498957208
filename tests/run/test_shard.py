"""``--shard I/N`` and ``--merge``: slices of the catalogue that merge into the unsharded run."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import main
from simulator.run.results import load_results, results_json
from simulator.run.shard import Shard, parse_shard, shard_ids

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEEDS = SCENARIOS / "seeds"
#: Ports of 127.0.0.1 differ between runs ("connection reset by 127.0.0.1:40915").
_PORT = re.compile(r"(127\.0\.0\.1):\d+")


@pytest.mark.parametrize(
    ("text", "shard"),
    [("1/4", (1, 4)), ("4/4", (4, 4)), (" 2 / 3 ", (2, 3)), ("1/1", (1, 1)), ("07/10", (7, 10))],
)
def test_parse_shard_reads_i_of_n(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == Shard(index=shard[0], count=shard[1])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0/4", "between 1 and 4"),
        ("5/4", "between 1 and 4"),
        ("1/0", "N must be at least 1"),
        ("a/b", "is not I/N"),
        ("1-4", "is not I/N"),
        ("-1/3", "is not I/N"),
        ("2/", "is not I/N"),
        ("", "is not I/N"),
    ],
)
def test_bad_shard_is_one_error_line_and_exit_2(
    text: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(SEEDS), f"--shard={text}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fedsim: error: argument --shard: ")
    assert says in lines[0]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 50])
def test_shards_are_a_round_robin_partition_in_id_order(count: int) -> None:
    ids = [p.relative_to(SCENARIOS).with_suffix("").as_posix() for p in SCENARIOS.rglob("*.toml")]
    shards = [shard_ids(ids, Shard(index=i, count=count)) for i in range(1, count + 1)]
    assert sorted(i for s in shards for i in s) == sorted(ids)  # each lab in exactly one
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # even
    ordered = sorted(ids)
    for index, shard in enumerate(shards):
        assert shard == ordered[index::count]  # the documented rule
    assert shards == [
        shard_ids(reversed(ids), Shard(index=i, count=count)) for i in range(1, count + 1)
    ]  # independent of the order the files were found in


# --- the real catalogue, sharded and merged ------------------------------------------


#: As make scenarios runs the catalogue: the exercises are broken on purpose.
EXCLUDE = ("--exclude", "exercises/[0-9]*")
CATALOGUE = [
    p
    for p in SCENARIOS.rglob("*.toml")
    if not fnmatch.fnmatchcase(p.relative_to(SCENARIOS).as_posix(), "exercises/[0-9]*")
]


def _calls(doc: dict[str, Any]) -> list[tuple[object, ...]]:
    """What must be equal between runs: labs, calls, verdicts, expected, got, mismatches."""
    out: list[tuple[object, ...]] = []
    for lab in doc["labs"]:
        out.append((lab["id"], lab["error"], len(lab["calls"])))
        for c in lab["calls"]:
            got = dict(c["got"], error=_PORT.sub(r"\1:PORT", c["got"]["error"] or ""))
            # How late the Skype user's BYE came differs by milliseconds between runs.
            got["bye_after"] = got.get("bye_after") is not None
            out.append((c["id"], c["call"], c["verdict"], c["expected"], got, c["mismatches"]))
    return out


def _junit(path: Path) -> tuple[dict[str, str], list[tuple[str, list[tuple[str, bool]]]]]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    totals = {k: root.get(k, "") for k in ("name", "tests", "failures", "errors")}
    suites = [
        (
            suite.get("name", ""),
            [(c.get("name", ""), c.find("failure") is not None) for c in suite.iter("testcase")],
        )
        for suite in root.findall("testsuite")
    ]
    return totals, suites


def test_shards_of_the_catalogue_merge_into_the_unsharded_run(
    catalogue_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], html_tree: Any
) -> None:
    assert catalogue_run.status == 0
    shards = []
    for i in (1, 2, 3):
        path = tmp_path / f"shard-{i}.json"
        argv = ["run", str(SCENARIOS), *EXCLUDE, "--shard", f"{i}/3", "--json", str(path)]
        assert main(argv) == 0
        assert f"shard {i}/3: " in capsys.readouterr().out
        shards.append(path)
    docs = [json.loads(p.read_text()) for p in shards]
    ids = [[lab["id"] for lab in d["labs"]] for d in docs]
    labs = len(CATALOGUE)
    calls = json.loads(catalogue_run.json.read_text())["summary"]["calls"]
    # Round-robin: the first labs % 3 shards take one lab more.
    assert [len(i) for i in ids] == [labs // 3 + (i < labs % 3) for i in range(3)]
    assert not set(ids[0]) & set(ids[1]) | set(ids[0]) & set(ids[2]) | set(ids[1]) & set(ids[2])

    merged_json, merged_xml, merged_html = (tmp_path / f"all.{x}" for x in ("json", "xml", "html"))
    argv = ["run", "--merge", *map(str, reversed(shards)), "--json", str(merged_json)]
    argv += ["--junit-xml", str(merged_xml), "--html", str(merged_html)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "merged shards 1/3, 2/3, 3/3 of 3 files" in out
    assert f"{labs} labs, {calls} calls: {calls} passed, 0 failed, 0 lab errors" in out

    whole = json.loads(catalogue_run.json.read_text())
    merged = json.loads(merged_json.read_text())
    assert merged["summary"] == whole["summary"]
    assert merged["catalogue"] == whole["catalogue"]
    assert merged["merged"] == ["1/3", "2/3", "3/3"]
    assert merged["shard"] is None
    assert _calls(merged) == _calls(whole)
    # The JUnit file: the same suites, cases and verdicts, checked as the unsharded one is.
    assert _junit(merged_xml) == _junit(catalogue_run.junit)
    totals, suites = _junit(merged_xml)
    assert (totals["tests"], totals["failures"], totals["errors"]) == (str(calls), "0", "0")
    assert len(suites) == labs
    # The page: the same calls, in the same order, with the same verdicts.
    pages = [html_tree(p.read_text()) for p in (merged_html, catalogue_run.html)]
    articles = [[(a.attrs["id"], a.attrs["class"]) for a in p.iter("article")] for p in pages]
    assert articles[0] == articles[1]
    assert len(articles[0]) == calls


def test_results_json_reads_back_unchanged(catalogue_run: Any) -> None:
    text = catalogue_run.json.read_text()
    run = load_results(text, source="all.json")
    assert results_json(run) == text
    assert len(run.labs) == len(CATALOGUE)
    assert run.labs[0].facts is not None


# --- merges refused --------------------------------------------------------------------


def _seed_shards(folder: Path, out: Path, name: str, count: int, *extra: str) -> list[Path]:
    paths = []
    for i in range(1, count + 1):
        path = out / f"{name}-{i}-of-{count}.json"
        main(["run", str(folder), "--shard", f"{i}/{count}", "--json", str(path), *extra])
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def seed_shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Shard files of scenarios/seeds (5 labs) and of an edited copy, for the refusals."""
    out = tmp_path_factory.mktemp("seed-shards")
    edited = out / "seeds"
    shutil.copytree(SEEDS, edited)
    lab = edited / "05-fixed-lab.toml"
    lab.write_text(lab.read_text().replace("summary = ", "summary = 'edited' # ", 1))
    old = out / "old.json"
    old.write_text(json.dumps({"summary": {}, "labs": []}))
    bad = out / "bad.json"
    bad.write_text("{not json")
    return {
        "halves": _seed_shards(SEEDS, out, "seeds", 2),
        "thirds": _seed_shards(SEEDS, out, "seeds", 3),
        "edited": _seed_shards(edited, out, "edited", 2),
        "k": _seed_shards(SEEDS, out, "k", 2, "-k", "call-1"),
        "old": [old],
        "bad": [bad],
    }


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ([("halves", 0), ("halves", 0)], "overlapping shards: "),
        ([("halves", 0)], "shard 2/2 missing: give the JSON of every shard"),
        ([("halves", 0), ("thirds", 1)], "shards of different splits"),
        ([("halves", 0), ("edited", 1)], "different catalogues (05-fixed-lab differs)"),
        ([("halves", 0), ("k", 1)], "ran with no -k and "),
        ([("old", 0)], "written by an older fedsim (no format version): run it again"),
        ([("bad", 0)], ":1: not JSON"),
    ],
)
def test_merge_refuses_what_is_not_one_run_with_one_line(
    seed_shards: dict[str, list[Path]],
    files: list[tuple[str, int]],
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    paths = [str(seed_shards[kind][n]) for kind, n in files]
    assert main(["run", "--merge", *paths]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert says in lines[0]
    assert captured.out == ""


def test_merge_runs_nothing_so_it_takes_no_lab_paths(
    seed_shards: dict[str, list[Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    halves = [str(p) for p in seed_shards["halves"]]
    assert main(["run", str(SEEDS), "--merge", *halves]) == 2
    assert "--merge runs nothing: drop lab paths" in capsys.readouterr().err


def test_merge_exits_1_when_a_call_failed_and_keeps_its_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "seeds"
    shutil.copytree(SEEDS, folder)
    lab = folder / "01-acano-srv-points-to-parent-domain.toml"
    lab.write_text(lab.read_text().replace("expect.status = 504", "expect.status = 200", 1))
    shards = _seed_shards(folder, tmp_path, "wrong", 2)
    junit = tmp_path / "all.xml"
    assert main(["run", "--merge", *map(str, shards), "--junit-xml", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "  status: expected 200, got 504" in out
    totals, suites = _junit(junit)
    assert (totals["failures"], totals["errors"]) == ("1", "0")
    failed = [(s, c) for s, cases in suites for c, bad in cases if bad]
    assert failed == [("01-acano-srv-points-to-parent-domain", failed[0][1])]
    assert failed[0][1].startswith("call-1: inbound INVITE")


def test_a_shard_the_pattern_skips_is_an_empty_report_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sorted ids of seeds/: 01, 02, 03, 04, 05; shard 2/2 holds 02 and 04.
    path = tmp_path / "shard.json"
    argv = ["run", str(SEEDS), "-k", "01-acano", "--shard", "2/2", "--json", str(path)]
    assert main(argv) == 0
    assert "0 labs, 0 calls: 0 passed, 0 failed, 0 lab errors" in capsys.readouterr().out
    doc = json.loads(path.read_text())
    assert doc["labs"] == []
    assert doc["shard"] == {"index": 2, "count": 2}
    assert len(doc["catalogue"]["labs"]) == 5
