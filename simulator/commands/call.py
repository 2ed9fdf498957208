"""``fedsim call``: act as a federated Expressway-E and send one request to an Edge.

Prints the request line, each response's status line, and the final response
in full; when the final response carries ``ms-diagnostics`` (or a Skype
client's ``ms-client-diagnostics``) it is decoded with the catalogue's meaning
and fix. The rest of the dialog follows (:mod:`simulator.commands.dialog`): the
ACK (or none), the BYE or the Skype user's, a subscription's NOTIFYs. Exit 0
when a final response arrived (whatever its status), 1 when none did (timeout,
TLS refusal: the reason on one line), 2 for bad input. ``--expect-status N``
makes any other final status exit 1.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import trio

from simulator.commands import dialog
from simulator.diagnostics.catalogue import MS_DIAGNOSTICS
from simulator.diagnostics.format import DiagnosticsParseError, parse_ms_diagnostics
from simulator.errors import FedsimError
from simulator.lab import CallSpec, Lab, builtin_lab, load_lab, parse_hostport
from simulator.peer.dialog import Afterwards
from simulator.peer.labpeer import issue_lab_pki, lab_peer, peer_client_context, peer_files
from simulator.peer.requests import METHODS
from simulator.peer.sdp import OFFERS
from simulator.peer.uac import CallResult, place_call
from simulator.pki.contexts import client_context
from simulator.sip import Request, Response, serialize

EPILOG = """\
examples:
  fedsim call --edge 127.0.0.1:5061 --cert certs/vcse.steven.lab.crt \\
      --key certs/vcse.steven.lab.key --ca certs/public-root.crt \\
      --server-name sip.skype.lab --from sip:2000@acano.steven.lab --to sip:stejanss@skype.lab
  fedsim call lab.toml --via expe --from sip:2000@acano.steven.lab --to sip:stejanss@skype.lab
  fedsim call --via expe --from sip:2000@steven.lab     the built-in lab of `fedsim serve`
  fedsim call lab.toml --via expe --method OPTIONS --to sip:Options_User@skype.lab
  fedsim call lab.toml --via expe --expect-status 504 --show-messages
  fedsim call --via expe --from sip:2000@steven.lab --to sip:carol@skype.lab --offer plain
                         a plain RTP offer to a user that requires SRTP: 488 / 52017
  fedsim call --via expe --from sip:2000@steven.lab --to sip:alice@skype.lab --method SUBSCRIBE
                         a presence subscription: 200, NOTIFYs with the PIDF document
  fedsim call --via expe --from sip:2000@steven.lab --no-ack
                         the 200 is never ACKed: the Skype user hangs up at 64*T1 (32 s)

exit status: 0 a final response arrived; 1 none did (timeout, TLS refusal), or
--expect-status did not match; 2 bad input.
"""

#: Default seconds for the whole exchange.
DEFAULT_TIMEOUT = 10.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedsim call`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "call",
        help="send one federated INVITE (or MESSAGE, OPTIONS, SUBSCRIBE) to an Edge as an "
        "Expressway-E",
        description=(
            "Act as a federated peer (a Cisco Expressway-E): open mutual TLS to an Edge, "
            "send one request, print the answer and decode its ms-diagnostics. Give the "
            "certificate files, or a lab file and the peer to act as (--via)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "lab",
        nargs="?",
        type=Path,
        metavar="LAB.toml",
        help="a lab file (with --via alone: the built-in lab of 'fedsim serve')",
    )
    lab = parser.add_argument_group("with a lab file")
    lab.add_argument("--via", metavar="NAME", help="the [peers.NAME] to act as")
    lab.add_argument(
        "--certs-dir",
        type=Path,
        default=Path("certs"),
        metavar="DIR",
        help="where the lab PKI is (issued there if missing; default: ./certs)",
    )
    files = parser.add_argument_group("without a lab file")
    files.add_argument("--cert", type=Path, metavar="CERT.pem", help="our certificate")
    files.add_argument("--key", type=Path, metavar="KEY.pem", help="its private key")
    files.add_argument("--chain", type=Path, metavar="C.pem", help="intermediates to send")
    files.add_argument(
        "--ca",
        type=Path,
        action="append",
        metavar="CA.pem",
        help="CA(s) to trust for the Edge's certificate (repeatable)",
    )
    target = parser.add_argument_group("where and what")
    target.add_argument(
        "--edge", metavar="HOST:PORT", help="the Edge's federation port (lab: [edge] listen)"
    )
    target.add_argument(
        "--server-name",
        metavar="FQDN",
        help="TLS server name (SNI) of the Edge (lab: [edge] fqdn; else the --edge host)",
    )
    target.add_argument(
        "--verify-name",
        action="store_true",
        help="also require the Edge's certificate to name --server-name, as an "
        "Expressway zone with TLS verify does",
    )
    target.add_argument("--from", dest="from_uri", metavar="URI", help="caller (From)")
    target.add_argument("--to", dest="to_uri", metavar="URI", help="callee (Request-URI, To)")
    target.add_argument("--pai", metavar="URI", help="P-Asserted-Identity")
    target.add_argument(
        "--route",
        metavar="ROUTE",
        help="a Route header to send, e.g. '<sip:elsewhere.lab;lr>' (the Edge refuses one "
        "that does not name it: SIPPROXY_E_ROUTING)",
    )
    target.add_argument("--method", choices=METHODS, default="INVITE", help="default: INVITE")
    target.add_argument("--no-hangup", action="store_true", help="after a 200, send ACK but no BYE")
    target.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds for the whole exchange (default: {DEFAULT_TIMEOUT:g}; "
        f"{dialog.WAIT_TIMEOUT:g} when waiting for the Skype user's BYE or an expiry)",
    )
    target.add_argument(
        "--show-messages", action="store_true", help="print every message sent and received"
    )
    target.add_argument(
        "--expect-status", type=int, metavar="N", help="exit 1 unless the final status is N"
    )
    dialog.add_options(parser, OFFERS, "best-effort")
    parser.set_defaults(func=run)


def _hostport_arg(text: str, what: str) -> tuple[str, int]:
    try:
        host, port = parse_hostport(text)
    except ValueError as exc:
        raise FedsimError(
            f"{what} {text!r}: {exc} (write it as HOST:PORT, e.g. 127.0.0.1:5061)"
        ) from None
    if port == 0:
        raise FedsimError(f"{what} {text!r}: port 0 cannot be called")
    return host, port


def _lab_call(lab: Lab, via: str) -> CallSpec | None:
    """The lab's first inbound call through peer ``via``, for missing --from/--to."""
    return next((c for c in lab.calls if c.direction == "inbound" and c.via == via), None)


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    """Turn the arguments into place_call keywords; every bad input is a FedsimError."""
    timeout = dialog.timeout(args, DEFAULT_TIMEOUT)
    staging = dialog.staging(args)
    if args.expect_status is not None and not 100 <= args.expect_status <= 699:
        raise FedsimError(f"--expect-status {args.expect_status}: a SIP status is 100-699")
    from_uri, to_uri, pai = args.from_uri, args.to_uri, args.pai
    if args.lab is not None or args.via is not None:
        if args.cert is not None or args.key is not None or args.ca:
            raise FedsimError(
                "give either a lab (LAB.toml and/or --via NAME), or --cert/--key/--ca, not both"
            )
        # No file with --via: the built-in lab, the one `fedsim serve` runs without a file.
        lab = load_lab(args.lab) if args.lab is not None else builtin_lab()
        where = str(args.lab) if args.lab is not None else "the built-in lab"
        via = args.via
        if via is None:
            if len(lab.peers) != 1:
                known = ", ".join(lab.peers) or "none"
                raise FedsimError(f"{where}: --via NAME is required (peers: {known})")
            via = next(iter(lab.peers))
        peer = lab_peer(lab, via)
        files = peer_files(peer, issue_lab_pki(lab, args.certs_dir))
        if args.verify_name:
            context = client_context(
                cert=files.cert,
                key=files.key,
                chain=files.chain,
                trust=files.trust,
                profile=peer.tls,
                check_hostname=True,
            )
        else:
            context = peer_client_context(peer, files)
        edge = _hostport_arg(args.edge, "--edge") if args.edge else lab.edge.listen
        server_name = args.server_name or lab.edge.fqdn
        default = _lab_call(lab, via)
        if default is not None:
            from_uri = from_uri or default.from_
            to_uri = to_uri or default.to
            pai = pai or default.pai
        if from_uri is None or to_uri is None:
            flags = " and ".join(f for f, v in (("--from", from_uri), ("--to", to_uri)) if not v)
            raise FedsimError(
                f"{where}: {flags} required: the lab has no inbound [[calls]] via {via}"
            )
    else:
        missing = [
            flag
            for flag, value in (
                ("--edge", args.edge),
                ("--cert", args.cert),
                ("--key", args.key),
                ("--ca", args.ca),
                ("--from", from_uri),
                ("--to", to_uri),
            )
            if not value
        ]
        if missing:
            raise FedsimError(
                f"missing {', '.join(missing)} "
                "(or give a lab file: fedsim call LAB.toml --via NAME)"
            )
        edge = _hostport_arg(args.edge, "--edge")
        context = client_context(
            cert=args.cert,
            key=args.key,
            chain=args.chain,
            trust=tuple(args.ca),
            check_hostname=args.verify_name,
        )
        server_name = args.server_name or edge[0]
    return {
        "edge": edge,
        "ssl_context": context,
        "server_hostname": server_name,
        "from_uri": from_uri,
        "to_uri": to_uri,
        "pai": pai,
        "route": args.route,
        "method": args.method,
        "timeout": timeout,
        "offer": args.offer or "best-effort",
        "staging": staging,
        "text": args.text,
        "expires": args.expires,
    }


def run(args: argparse.Namespace) -> int:
    """Run ``fedsim call``; return the exit status."""
    plan = _plan(args)
    result = trio.run(_place, plan)
    report(result, out=sys.stdout, show_messages=args.show_messages, timeout=plan["timeout"])
    if result.final is None:
        return 1
    if args.expect_status is not None and result.final.status != args.expect_status:
        print(
            f"fedsim: expected {args.expect_status}, got {result.final.status}",
            file=sys.stdout,
        )
        return 1
    return 0


async def _place(plan: dict[str, Any]) -> CallResult:
    return await place_call(rng=random.Random(), **plan)


def _text(message: Request | Response) -> str:
    return serialize(message).decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n")


def report(result: CallResult, *, out: TextIO, show_messages: bool, timeout: float) -> None:
    """Print what happened to the call (see the module docstring)."""

    def say(line: str = "") -> None:
        print(line, file=out)

    def sent(request: Request) -> None:
        if show_messages:
            say(_indent(_text(request), "> "))
        else:
            say(f"> {request.start_line}")

    sent(result.request)
    for response in result.responses:
        if show_messages and response is not result.final:
            say(_indent(_text(response), "< "))
        elif response is not result.final:
            say(f"< {response.start_line}")
    if result.final is not None:
        say(_indent(_text(result.final), "< "))
        decode_diagnostics(result.final, say)

    def show(message: Request | Response, prefix: str) -> None:
        say(_indent(_text(message), prefix) if show_messages else f"{prefix}{message.start_line}")

    if result.later:
        after = Afterwards(
            messages=list(result.later),
            notifies=list(result.notifies),
            bye=result.user_bye,
            bye_after=result.bye_after,
            retransmissions=result.retransmissions,
        )
        dialog.report_after(after, say, show)
    elif result.ack is not None:
        sent(result.ack)
    if result.final is None:
        if result.tls_error is not None:
            say(f"no response: {result.tls_error}")
        else:
            say(f"no response: no final response within {timeout:g} s")
        return
    if result.forwarded_dialog:
        say("call completed: 200, ACK, BYE, 200")
    elif result.dialog_error is not None:
        say(f"call not torn down: {result.dialog_error}")


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


def decode_diagnostics(response: Response, say: Callable[[str], None]) -> None:
    """Decode each ms-diagnostics(-public) header, and a Skype client's
    ms-client-diagnostics: code, reason, parameters, meaning, fix."""
    for name in ("ms-diagnostics", "ms-diagnostics-public", "ms-client-diagnostics"):
        for value in response.headers.get_all(name):
            try:
                diag = parse_ms_diagnostics(value)
            except DiagnosticsParseError as exc:
                say(f"{name}: cannot decode ({exc})")
                continue
            say(f"{name} {diag.code}: {diag.reason or '(no reason)'}")
            for key, param in diag.params:
                say(f"  {key} = {param}")
            if diag.source is not None:
                say(f"  source = {diag.source} (the server that generated it)")
            entry = MS_DIAGNOSTICS.get(diag.code)
            if entry is None:
                say("  (not in fedsim's catalogue)")
                continue
            say(f"  meaning: {entry.meaning}")
            say(f"  fix: {entry.fix}")
