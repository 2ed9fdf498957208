"""``fedsim explain``: decode a pasted ms-diagnostics header, SIP response or Edge log record,
or print the ladder of each call in a SIPStack trace or a pcap/pcapng capture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.diagnostics import DiagnosticsParseError
from simulator.diagnostics.explain import explain_text
from simulator.errors import FedsimError
from simulator.trace.ladder import capture_ladder, trace_ladder
from simulator.trace.pcap import CaptureError

EXAMPLES = """\
examples:
  fedsim explain 'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";\
domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
  fedsim explain < edge-log-excerpt.txt      a $$begin_record ... $$end_record block, as pasted
  cat edge-log-excerpt.txt | fedsim explain -
                                             '-' (or no TEXT) is standard input
  fedsim explain logs/trace.log              the ladder of each call, diagnostics decoded
  fedsim explain lab.pcapng                  the same from a capture (SIP over UDP/TCP in clear)
  fedsim explain --trace FILE | --pcap FILE  say which it is instead of letting fedsim look
"""

#: The first bytes of a pcap (both byte orders, micro- and nanosecond) or a pcapng.
_CAPTURE_MAGIC = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)
#: What marks a SIPStack trace (rather than an edge.log excerpt or a pasted header).
_TRACE_MARK = "TF_PROTOCOL"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="decode an ms-diagnostics header, an Edge log record, a trace or a capture",
        description=(
            "Say what failed, the likely causes and the fix, for every ms-diagnostics header "
            "and Edge log record found in TEXT (or standard input). Given a SIPStack trace "
            "(TF_PROTOCOL records) or a pcap/pcapng, print the ladder of each call instead."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "text",
        nargs="*",
        help="the text to explain, or one file (none, or '-': standard input)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--trace", metavar="FILE", type=Path, help="a SIPStack trace (trace.log)")
    source.add_argument("--pcap", metavar="FILE", type=Path, help="a pcap or pcapng capture")
    parser.set_defaults(func=run)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FedsimError(
            f"{path}: no such file (give the path of a trace.log or a capture)"
        ) from None
    except IsADirectoryError:
        raise FedsimError(f"{path}: a directory (give one trace.log or capture file)") from None
    except OSError as exc:
        raise FedsimError(f"{path}: cannot read it: {exc.strerror}") from None


#: Names that are meant as files even when they do not exist (then: "no such file").
_FILE_SUFFIXES = (".log", ".txt", ".pcap", ".pcapng", ".cap")


def _names_a_file(word: str) -> bool:
    """True when one TEXT word is a file to read rather than text to explain."""
    if Path(word).is_file():
        return True
    looks_like_text = any(c in word for c in ';="\n') or word.strip() != word
    return not looks_like_text and ("/" in word or word.lower().endswith(_FILE_SUFFIXES))


def _stdin() -> bytes:
    """Standard input's bytes (a capture can be piped in), or its text when it has no bytes."""
    binary = getattr(sys.stdin, "buffer", None)
    if binary is not None:
        data: bytes = binary.read()
        return data
    return sys.stdin.read().encode("utf-8", "surrogateescape")


def _as_text(data: bytes, where: str | None) -> str:
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return data.decode("utf-16")  # a trace saved by a Windows editor as "Unicode"
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FedsimError(
            f"{where or 'the input'}: neither text (UTF-8) nor a pcap/pcapng capture "
            "(give a trace.log, an edge.log excerpt or a capture)"
        ) from None


def explain_input(data: bytes, *, where: str | None, kind: str | None = None) -> str:
    """Explain what ``data`` holds: a capture, a trace, or pasted diagnostics.

    Args:
        data: the file's or standard input's bytes.
        where: the file name, for error messages (None: pasted text, standard input).
        kind: "trace" or "pcap" to skip the detection by content.

    Raises:
        FedsimError: one line naming ``where``, what is wrong and what to give instead.
    """
    capture = data[:4] in _CAPTURE_MAGIC
    if kind == "trace" and capture:
        raise FedsimError(f"{where}: a pcap/pcapng capture, not a trace (use --pcap FILE)")
    if kind == "pcap" and not capture and _TRACE_MARK.encode() in data:
        raise FedsimError(f"{where}: a SIPStack trace, not a capture (use --trace FILE)")
    if kind is None and capture:
        kind = "pcap"
    try:
        if kind == "pcap":
            return capture_ladder(data)
        text = _as_text(data, where)
        if kind == "trace" or _TRACE_MARK in text:
            return trace_ladder(text)
        if not text.strip():
            raise FedsimError(
                "nothing to explain (paste an ms-diagnostics header or an Edge record)"
            )
        return explain_text(text)
    except (CaptureError, DiagnosticsParseError) as exc:
        if where is None:
            raise
        raise FedsimError(f"{where}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Explain TEXT, a file, or standard input when TEXT is absent or a lone ``-``.

    A ``-`` among other words is pasted text, kept as it is. One TEXT word that
    names an existing file is that file (a trace, a capture or an excerpt).
    """
    if args.trace is not None or args.pcap is not None:
        if args.text:
            raise FedsimError("give either TEXT or --trace/--pcap, not both")
        path: Path = args.trace if args.trace is not None else args.pcap
        kind = "trace" if args.trace is not None else "pcap"
        sys.stdout.write(explain_input(_read(path), where=str(path), kind=kind))
        return 0
    if args.text in ([], ["-"]):
        data, where = _stdin(), None
    elif len(args.text) == 1 and _names_a_file(args.text[0]):
        data, where = _read(Path(args.text[0])), args.text[0]
    else:
        data, where = " ".join(args.text).encode(), None
    sys.stdout.write(explain_input(data, where=where))
    return 0
