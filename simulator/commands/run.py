"""``fedsim run``: run scenario files end to end on loopback and check every expectation."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from simulator.commands.serve import make_parent
from simulator.errors import FedsimError
from simulator.pki import use_keylog
from simulator.run import LabReport, load_lab_files, matches, run_labs
from simulator.run.ladder import ladder_file_name, ladder_svg
from simulator.run.page import render_page
from simulator.run.report import junit_xml, results_table, summary_line
from simulator.run.results import RunResults, load_results, merge_results, results_json
from simulator.run.shard import Shard, catalogue_of, parse_shard, shard_ids

DEFAULT_PATH = Path("scenarios")

EXAMPLES = """\
examples:
  fedsim run                                   every lab under scenarios/
  fedsim run scenarios/seeds -j 8              one folder, 8 labs at a time
  fedsim run my-lab.toml -k 'call-2'           one call of one lab
  fedsim run -k 'inbound/*' --junit-xml junit.xml --json results.json
  fedsim run scenarios/seeds --ladder ladders  an SVG sequence diagram per call
  fedsim run scenarios/seeds --keep-logs labs --pcap captures --keylog keys.log
                                               per lab: logs with the SIPStack trace
                                               (trace.log) and a capture; one TLS key log
  fedsim run --html report.html                every call in three columns, one offline page
  fedsim run --shard 2/4 --json shard-2.json   the 2nd of 4 slices (a CI job matrix)
  fedsim run --merge shard-*.json --junit-xml junit.xml --html report.html
                                               the shards' results as one report

exit status: 0 when every expectation of every call holds, 1 otherwise,
2 for bad input (a bad lab file is named as file:line; a bad --shard or an
unmergeable set of --merge files is one line too).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run scenario (lab) files end to end and check their expectations",
        description=(
            "Run each lab file on private loopback ports (its own Edge, DNS, PKI, logs and "
            "partner peers), place its [[calls]] and compare what happened with each call's "
            "expect table. Labs run concurrently."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="lab files or folders searched for *.toml (default: scenarios/)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=4, metavar="N", help="labs run at once (default: 4)"
    )
    parser.add_argument(
        "-k",
        dest="pattern",
        metavar="PATTERN",
        help="only calls whose 'scenario call-N' contains PATTERN (or matches it as a glob)",
    )
    parser.add_argument("--junit-xml", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write JSON results here")
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="keep each lab's logs (with the Edge's SIPStack trace, trace.log) and PKI in "
        "DIR/<lab>/",
    )
    parser.add_argument(
        "--pcap",
        type=Path,
        metavar="DIR",
        help="write a capture of every SIP message of each lab's Edge to DIR/<lab>.pcapng",
    )
    parser.add_argument(
        "--keylog",
        type=Path,
        metavar="FILE",
        help="append the TLS secrets of every session (Edges and simulated peers) to FILE (0600)",
    )
    parser.add_argument(
        "--ladder", type=Path, metavar="DIR", help="write an SVG sequence diagram per call in DIR"
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed every lab's random choices (tags, SRV order): two runs give the same messages",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write every lab and call (three views, ladder, messages) as one offline page",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="run only the I-th of N slices of the labs (round-robin in lab id order; 1-based)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="run nothing: merge the --json files of every shard into one report",
    )
    parser.set_defaults(func=run)


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Progress:
    """A live line on a terminal; plain lines otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.width = 0

    def __call__(self, done: int, total: int, running: Sequence[str]) -> None:
        text = f"fedsim run: {done}/{total} labs done"
        if running:
            text += "; running " + ", ".join(running)
        if self.tty:
            text = text[:118]
            sys.stderr.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FedsimError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_ladders(reports: Sequence[LabReport], folder: Path) -> int:
    """Write one SVG per call into ``folder``; return how many."""
    count = 0
    for lab in reports:
        for call in lab.calls:
            _write(folder / ladder_file_name(call.trace, lab.id), ladder_svg(call.trace))
            count += 1
    return count


def _run(args: argparse.Namespace) -> RunResults:
    """Load and check every lab, run this shard's labs, and return the results."""
    if args.jobs < 1:
        raise FedsimError(f"-j {args.jobs}: run at least one lab at a time")
    labs = load_lab_files(args.paths or [DEFAULT_PATH])
    if args.seed is not None:
        labs = [
            dataclasses.replace(
                f,
                lab=dataclasses.replace(
                    f.lab, edge=dataclasses.replace(f.lab.edge, seed=args.seed)
                ),
            )
            for f in labs
        ]
    catalogue = catalogue_of([(lf.id, lf.path) for lf in labs])
    # Judged on the whole catalogue, so every shard of one run agrees, and a shard
    # whose labs the pattern happens to skip is an empty report, not an error.
    if args.pattern and not any(
        matches(args.pattern, lf.lab.name, lf.id, n)
        for lf in labs
        for n in range(1, len(lf.lab.calls) + 1)
    ):
        raise FedsimError(f"-k {args.pattern!r} selects no call (try a shorter pattern)")
    shard: Shard | None = args.shard
    if shard is not None:
        mine = set(shard_ids((lf.id for lf in labs), shard))
        labs = [lf for lf in labs if lf.id in mine]
        how = (
            f"every {_nth(shard.count)} lab in id order, from the {_nth(shard.index)}"
            if shard.count > 1
            else "all of them"
        )
        sys.stdout.write(f"shard {shard}: {len(labs)} of {len(catalogue.labs)} labs ({how})\n")
    if args.pcap is not None:
        make_parent(args.pcap / "lab.pcapng", "--pcap")
    if args.keylog is not None:
        make_parent(args.keylog, "--keylog")
    # Every TLS context built from here on, the Edges' and the simulated peers', logs.
    use_keylog(args.keylog)
    progress = _Progress(sys.stderr.isatty())
    try:
        reports = trio.run(
            lambda: run_labs(
                labs,
                jobs=args.jobs,
                pattern=args.pattern,
                keep_dir=args.keep_logs,
                pcap_dir=args.pcap,
                progress=progress,
            )
        )
    finally:
        use_keylog(None)
    progress.finish()
    shown = tuple(r for r in reports if r.calls or r.error is not None)
    return RunResults(catalogue=catalogue, shard=shard, pattern=args.pattern, labs=shown)


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _merge(args: argparse.Namespace) -> RunResults:
    """Read the shards' JSON files and join them (refusing what cannot be joined)."""
    given = [
        name
        for name, value in (
            ("lab paths", args.paths),
            ("--shard", args.shard),
            ("-k", args.pattern),
            ("--keep-logs", args.keep_logs),
            ("--pcap", args.pcap),
            ("--keylog", args.keylog),
        )
        if value
    ]
    if given:
        raise FedsimError(
            f"--merge runs nothing: drop {', '.join(given)} (the shards' JSON files say what ran)"
        )
    runs: list[tuple[str, RunResults]] = []
    for path in args.merge:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FedsimError(f"cannot read {path}: {exc.strerror or exc}") from None
        runs.append((str(path), load_results(text, source=str(path))))
    merged = merge_results(runs)
    if merged.merged:
        sys.stdout.write(f"merged shards {', '.join(merged.merged)} of {len(runs)} files\n")
    return merged


def run(args: argparse.Namespace) -> int:
    results = _merge(args) if args.merge else _run(args)
    shown = list(results.labs)
    sys.stdout.write(results_table(shown))
    sys.stdout.write(summary_line(shown) + "\n")
    if args.junit_xml is not None:
        _write(args.junit_xml, junit_xml(shown))
    if args.json is not None:
        _write(args.json, results_json(results))
    if args.html is not None:
        _write(args.html, render_page(results))
    if args.ladder is not None:
        write_ladders(shown, args.ladder)
    return 0 if results.ok else 1
