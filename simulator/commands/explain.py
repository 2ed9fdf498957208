"""``fedsim explain``: decode a pasted ms-diagnostics header, SIP response or Edge log record."""

from __future__ import annotations

import argparse
import sys

from simulator.diagnostics.explain import explain_text
from simulator.errors import FedsimError

EXAMPLES = """\
examples:
  fedsim explain 'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";\
domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
  fedsim explain < edge-log-excerpt.txt      a $$begin_record ... $$end_record block, as pasted
  cat edge-log-excerpt.txt | fedsim explain -
                                             '-' (or no TEXT) is standard input
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="decode an ms-diagnostics header, a SIP response or an Edge log record",
        description=(
            "Say what failed, the likely causes and the fix, for every ms-diagnostics header "
            "and Edge log record found in TEXT (or standard input)."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "text", nargs="*", help="the text to explain (none, or '-': standard input)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Explain TEXT, or standard input when TEXT is absent or a lone ``-`` (as Unix tools do).

    A ``-`` among other words is pasted text, kept as it is.
    """
    from_stdin = args.text in ([], ["-"])
    text = sys.stdin.read() if from_stdin else " ".join(args.text)
    if not text.strip():
        raise FedsimError("nothing to explain (paste an ms-diagnostics header or an Edge record)")
    sys.stdout.write(explain_text(text))
    return 0
