"""``fedsim run``: run scenario files end to end on loopback and check every expectation."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from simulator.errors import FedsimError
from simulator.run import LabReport, load_lab_files, run_labs
from simulator.run.ladder import ladder_file_name, ladder_svg
from simulator.run.report import junit_xml, results_json, results_table, summary_line

DEFAULT_PATH = Path("scenarios")

EXAMPLES = """\
examples:
  fedsim run                                   every lab under scenarios/
  fedsim run scenarios/seeds -j 8              one folder, 8 labs at a time
  fedsim run my-lab.toml -k 'call-2'           one call of one lab
  fedsim run -k 'inbound/*' --junit-xml junit.xml --json results.json
  fedsim run scenarios/seeds --ladder ladders  an SVG sequence diagram per call

exit status: 0 when every expectation of every call holds, 1 otherwise,
2 for bad input (a bad lab file is named as file:line).
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
        "--keep-logs", type=Path, metavar="DIR", help="keep each lab's logs and PKI in DIR/<lab>/"
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
    parser.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
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
    progress = _Progress(sys.stderr.isatty())
    reports = trio.run(
        lambda: run_labs(
            labs,
            jobs=args.jobs,
            pattern=args.pattern,
            keep_dir=args.keep_logs,
            progress=progress,
        )
    )
    progress.finish()
    shown = [r for r in reports if r.calls or r.error is not None]
    if args.pattern and not shown:
        raise FedsimError(f"-k {args.pattern!r} selects no call (try a shorter pattern)")
    sys.stdout.write(results_table(shown))
    sys.stdout.write(summary_line(shown) + "\n")
    if args.junit_xml is not None:
        _write(args.junit_xml, junit_xml(shown))
    if args.json is not None:
        _write(args.json, results_json(shown))
    if args.ladder is not None:
        write_ladders(shown, args.ladder)
    return 0 if all(r.ok for r in shown) else 1
