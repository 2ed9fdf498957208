"""``python -m simulator.fuzz``: fuzz the Edge's SIP byte path for a bounded time.

Without ``--atheris`` it is a plain Python loop (seeds, corpus files, seeded
mutations) and needs nothing installed; with it, atheris explores by coverage
and writes crashing inputs as ``crash-*`` files in the current directory.
Exit status 1 on a finding (the input is printed and saved), else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from simulator.fuzz.sip import FuzzFinding, load_corpus, run_atheris, run_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.fuzz", description=__doc__)
    parser.add_argument("corpus", nargs="*", type=Path, help="folders of seed inputs")
    parser.add_argument("--seconds", type=float, default=10.0, help="default: 10")
    parser.add_argument("--seed", type=int, default=0, help="mutation seed (plain loop)")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided (needs atheris)")
    args = parser.parse_args(argv)
    for folder in args.corpus:
        if not folder.is_dir():
            print(f"fuzz: error: {folder} is not a directory", file=sys.stderr)
            return 2
    if args.atheris:
        run_atheris(args.corpus, seconds=max(1, int(args.seconds)))
        return 0
    try:
        result = run_loop(load_corpus(args.corpus), seconds=args.seconds, seed=args.seed)
    except FuzzFinding as finding:
        name = f"crash-{hashlib.sha256(finding.data).hexdigest()[:16]}"
        Path(name).write_bytes(finding.data)
        print(f"fuzz: FINDING {finding.what}\n  saved as {name}: {finding.data!r}", file=sys.stderr)
        return 1
    print(f"fuzz: {result.inputs} inputs, {result.messages} messages framed, no finding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
