"""``fedsim client``: act as a Skype for Business user and send one request out through the Edge.

Connects to the Edge's clients port over TLS (server authentication only),
sends one INVITE, MESSAGE, OPTIONS or SUBSCRIBE as a Skype client would, prints
each response and decodes ``ms-diagnostics`` with the catalogue's meaning and
fix. A request for a user of the Edge's own domains is answered by that Skype
user; the rest of the dialog follows as for ``fedsim call``
(:mod:`simulator.commands.dialog`).
Exit 0 when a final response arrived (whatever its status), 1 when none did,
or ``--expect-status`` did not match; 2 for bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from pathlib import Path
from typing import TextIO

import trio

from simulator.commands import dialog
from simulator.commands.call import decode_diagnostics
from simulator.diagnostics.catalogue import SFB_NOT_FEDERATED, TEAMS_NOT_SET_UP
from simulator.errors import FedsimError
from simulator.lab import builtin_lab, load_lab, parse_hostport
from simulator.peer.skype import (
    CLIENT_OFFERS,
    METHODS,
    SkypeCallResult,
    build_client_request,
    skype_call,
)
from simulator.pki import client_context, issue_pki
from simulator.sip import Request, Response, serialize

EPILOG = """\
examples:
  fedsim client --to sip:stejanss.space@cms.steven.lab
                         the built-in lab's 1009 (run 'fedsim serve' first)
  fedsim client lab.toml --to sip:2000@steven.lab --method OPTIONS
  fedsim client --edge 127.0.0.1:5062 --ca certs/public-root.crt \\
      --to sip:2000@steven.lab --expect-status 200
  fedsim client --to sip:alice@skype.lab --method SUBSCRIBE
                         a user of the Edge's own domain: her presence in NOTIFYs
  fedsim client --to sip:alice@skype.lab --offer im --text "Hello"
                         a Skype IM session with its first message

exit status: 0 a final response arrived; 1 none did, or --expect-status did not
match; 2 bad input.
"""

DEFAULT_FROM = "sip:stejanss@skype.lab"
DEFAULT_TIMEOUT = 40.0  # the Edge's own transaction timeout is 32 s (RFC 3261 Timer B)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedsim client`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "client",
        help="send one INVITE (or MESSAGE, OPTIONS, SUBSCRIBE) through the Edge as a Skype user",
        description=(
            "Act as a Skype for Business client: connect to the Edge's clients port "
            "(TLS, server authentication), send one request to a URI, print the answer "
            "and decode its ms-diagnostics."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "lab", nargs="?", type=Path, metavar="LAB.toml", help="lab file (default: the built-in lab)"
    )
    parser.add_argument("--to", dest="to_uri", required=True, metavar="URI", help="callee")
    parser.add_argument(
        "--from",
        dest="from_uri",
        default=DEFAULT_FROM,
        metavar="URI",
        help=f"default: {DEFAULT_FROM}",
    )
    parser.add_argument("--display-name", metavar="NAME", help='e.g. "Steven Janssens"')
    parser.add_argument("--method", choices=METHODS, default="INVITE", help="default: INVITE")
    parser.add_argument(
        "--edge", metavar="HOST:PORT", help="the Edge's clients port (lab: [edge] clients)"
    )
    parser.add_argument(
        "--ca", type=Path, metavar="CA.pem", help="CA that issued the Edge's certificate"
    )
    parser.add_argument(
        "--server-name",
        metavar="FQDN",
        help="name the Edge's certificate must carry (lab: [edge] fqdn; none: no name check)",
    )
    parser.add_argument(
        "--certs-dir",
        type=Path,
        default=Path("certs"),
        metavar="DIR",
        help="where the lab PKI is (issued there if missing; default: ./certs)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds for the whole exchange (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--no-hangup", action="store_true", help="after a 200, ACK but no BYE")
    parser.add_argument(
        "--show-messages", action="store_true", help="print every message sent and received"
    )
    parser.add_argument(
        "--expect-status", type=int, metavar="N", help="exit 1 unless the final status is N"
    )
    dialog.add_options(parser, CLIENT_OFFERS, "srtp")
    parser.set_defaults(func=run)


def _plan(args: argparse.Namespace) -> tuple[tuple[str, int], Path, str | None, str | None]:
    """(Edge clients address, CA file, server name, the lab's profile or None).

    Every bad input is a FedsimError.
    """
    dialog.staging(args)
    dialog.timeout(args, DEFAULT_TIMEOUT)
    if args.expect_status is not None and not 100 <= args.expect_status <= 699:
        raise FedsimError(f"--expect-status {args.expect_status}: a SIP status is 100-699")
    # URIs and method first: bad input is exit 2 before anything touches the network.
    build_client_request(
        method=args.method,
        from_uri=args.from_uri,
        to_uri=args.to_uri,
        local=("0.0.0.0", 0),
        rng=random.Random(0),
    )
    edge: tuple[str, int] | None = None
    if args.edge:
        try:
            edge = parse_hostport(args.edge)
        except ValueError as exc:
            raise FedsimError(
                f"--edge {args.edge!r}: {exc} (write it as HOST:PORT, e.g. 127.0.0.1:5062)"
            ) from None
        if edge[1] == 0:
            raise FedsimError(f"--edge {args.edge!r}: port 0 cannot be called")
    if args.ca is not None and args.lab is None and edge is not None:
        return edge, args.ca, args.server_name, None
    lab = load_lab(args.lab) if args.lab is not None else builtin_lab()
    ca = args.ca
    if ca is None:
        if not isinstance(lab.edge.cert, str):
            where = args.lab or "the lab"
            raise FedsimError(
                f"{where}: the Edge's certificate is a PEM file; pass --ca with its issuer's CA"
            )
        issued = issue_pki(lab.certs, args.certs_dir, now=dt.datetime.now(dt.UTC))
        ca = issued[lab.edge.cert].root_path
    return edge or lab.edge.clients, ca, args.server_name or lab.edge.fqdn, lab.edge.profile


def run(args: argparse.Namespace) -> int:
    """Run ``fedsim client``; return the exit status."""
    edge, ca, server_name, product = _plan(args)
    context = client_context(trust=[ca], check_hostname=server_name is not None)

    async def main() -> SkypeCallResult:
        return await skype_call(
            edge=edge,
            ssl_context=context,
            server_hostname=server_name,
            from_uri=args.from_uri,
            to_uri=args.to_uri,
            method=args.method,
            display_name=args.display_name,
            timeout=dialog.timeout(args, DEFAULT_TIMEOUT),
            offer=args.offer or "srtp",
            staging=dialog.staging(args),
            text=args.text,
            expires=args.expires,
        )

    result = trio.run(main)
    report(result, out=sys.stdout, show_messages=args.show_messages, profile=product)
    if result.final is None:
        return 1
    if args.expect_status is not None and result.final.status != args.expect_status:
        print(f"fedsim: expected {args.expect_status}, got {result.final.status}")
        return 1
    return 0


def _text(message: Request | Response) -> str:
    return serialize(message).decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n")


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def user_reads(response: Response, to_uri: str, profile: str | None) -> list[str]:
    """What the calling user reads for a refusal the clients put in words (field cases §2d).

    403 + 1002 (the user may not federate, or the domain is not federated with the
    tenant): a Teams user (profile office365) and a Skype for Business user read
    different sentences; with no lab known, both are shown.
    """
    diagnostics = response.headers.get("ms-diagnostics") or ""
    if response.status != 403 or not diagnostics.strip().startswith("1002"):
        return []
    lines = []
    if profile in (None, "office365"):
        lines.append(f"a Teams user reads: {TEAMS_NOT_SET_UP}")
    if profile != "office365":
        target = to_uri.split(":", 1)[-1]
        lines.append(f"a Skype for Business user reads: {SFB_NOT_FEDERATED.format(uri=target)}")
    return lines


def report(
    result: SkypeCallResult, *, out: TextIO, show_messages: bool, profile: str | None = None
) -> None:
    """Print the exchange: start lines (or whole messages), the final response, its diagnostics,
    and what the calling user reads."""

    def say(line: str = "") -> None:
        print(line, file=out)

    def show(message: Request | Response, prefix: str) -> None:
        say(_indent(_text(message), prefix) if show_messages else f"{prefix}{message.start_line}")

    show(result.request, "> ")
    for response in result.responses:
        if response is result.final:
            say(_indent(_text(response), "< "))
            decode_diagnostics(response, say)
            for line in user_reads(response, str(result.request.uri), profile):
                say(line)
        else:
            show(response, "< ")
    if result.after.messages:
        dialog.report_after(result.after, say, show)
    elif result.ack is not None:
        show(result.ack, "> ")
    if result.error is not None:
        say(f"no final response: {result.error}" if result.final is None else result.error)
