"""The ``fedsim`` command: argparse front end over :mod:`simulator.commands`.

A failing command prints exactly one line, ``fedsim: error: ...``, and exits 2;
a traceback is always a bug in fedsim.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from simulator import __version__
from simulator.commands import COMMANDS
from simulator.errors import FedsimError

EPILOG = """\
examples:
  fedsim serve                     run the built-in lab of the Cisco note (Edge sip.skype.lab)
  fedsim call --via expe --from sip:2000@acano.steven.lab     the Expressway calls in: 504
  fedsim client --to sip:stejanss.space@cms.steven.lab         a Skype user calls out: 1009
  fedsim run scenarios --junit-xml junit.xml                   check the whole catalogue
  fedsim check --domain acano.steven.lab --cert expe.pem       preflight a real configuration
  fedsim explain < pasted-edge-log.txt                         decode a customer's excerpt
  fedsim certs init certs          write a lab PKI with the seed lab's names
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one ``fedsim: error:`` line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FedsimError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    parser = _Parser(
        prog="fedsim",
        description=(
            "Emulate the Access Edge of a Skype for Business / Lync deployment for "
            "SIP federation labs with Cisco Expressway."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fedsim {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"simulator.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fedsim`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
        func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 0 if not argv else 2
        return func(args)
    except FedsimError as exc:
        print(f"fedsim: error: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        # trio nurseries wrap a server's FedsimError (a port in use, a bad zone line
        # found at start-up) in an ExceptionGroup: report it like any other.
        found = _user_error(group)
        if found is None:
            raise
        print(f"fedsim: error: {found}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _user_error(group: BaseExceptionGroup[BaseException]) -> FedsimError | None:
    """The first FedsimError inside a (nested) exception group, if any."""
    for exc in group.exceptions:
        if isinstance(exc, FedsimError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            inner = _user_error(exc)
            if inner is not None:
                return inner
    return None
