"""``fedsim peer``: run a lab's simulated Expressway-E, to receive the calls the Edge sends out."""

from __future__ import annotations

import argparse
import signal
from functools import partial
from pathlib import Path
from typing import cast

import trio

from simulator.errors import FedsimError
from simulator.lab import PeerConfig, load_lab, parse_hostport
from simulator.peer.labpeer import issue_lab_pki, lab_peer, peer_files, peer_server_context
from simulator.peer.sdp import ANSWER_ENCRYPTIONS, AnswerEncryption
from simulator.peer.uas import check_answer, serve_peer
from simulator.sip import Request
from simulator.skype.presence import AVAILABILITIES

EPILOG = """\
examples:
  fedsim peer lab.toml expe                          listen where [peers.expe] says
  fedsim peer lab.toml expe --listen 127.0.0.1:5071  listen elsewhere
  fedsim peer lab.toml expe --answer 486             every call is busy
  fedsim peer lab.toml expe --media plain            a zone that cannot encrypt:
                                                     an SRTP-only offer gets 488
  fedsim peer lab.toml expe --presence busy          its users' presence is busy

The peer answers INVITE with 100 then its `answer` (200 with SDP, or a failure
with no ms-diagnostics, as Expressway does), OPTIONS and MESSAGE with 200, BYE
with 200; the SDP follows its media encryption (--media: auto answers SRTP to an
offer with keys, plain cannot encrypt, srtp must; an offer it cannot take gets
488); SUBSCRIBE for presence gets 200 and PIDF NOTIFYs with --presence (as the IM
and Presence Service behind an Expressway-E); it prints one line per request and
per refused TLS handshake.
Ctrl-C stops it.
"""

#: Where a peer listens when neither the lab nor --listen says.
DEFAULT_LISTEN = ("127.0.0.1", 5071)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedsim peer`` to the top-level subparsers."""
    parser = subparsers.add_parser(
        "peer",
        help="run a lab's simulated Expressway-E (answers calls from the Edge)",
        description=(
            "Run the simulated Expressway-E [peers.NAME] of a lab as a mutual-TLS SIP "
            "server, so calls the Edge sends out have somewhere to go."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("lab", type=Path, metavar="LAB.toml", help="the lab file")
    parser.add_argument("name", metavar="NAME", help="the [peers.NAME] to run")
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to listen on (default: the peer's listen, else 127.0.0.1:5071)",
    )
    parser.add_argument(
        "--certs-dir",
        type=Path,
        default=Path("certs"),
        metavar="DIR",
        help="where the lab PKI is (issued there if missing; default: ./certs)",
    )
    parser.add_argument(
        "--answer", type=int, metavar="STATUS", help="override the peer's answer (200, 300-699)"
    )
    parser.add_argument(
        "--ring",
        type=float,
        default=0.0,
        metavar="S",
        help="send 180 Ringing and wait S seconds before answering (time for a CANCEL)",
    )
    parser.add_argument(
        "--media",
        choices=ANSWER_ENCRYPTIONS,
        help="the zone's media encryption (default: the peer's media, else auto)",
    )
    parser.add_argument(
        "--presence",
        choices=tuple(AVAILABILITIES),
        metavar="STATE",
        help=(
            "what its users publish to a SUBSCRIBE (default: the peer's presence, else "
            f"online): {', '.join(AVAILABILITIES)}"
        ),
    )
    parser.set_defaults(func=run)


def _listen(args: argparse.Namespace, peer: PeerConfig) -> tuple[str, int]:
    if args.listen is None:
        return peer.listen if peer.listen is not None else DEFAULT_LISTEN
    try:
        return parse_hostport(args.listen)
    except ValueError as exc:
        raise FedsimError(f"--listen {args.listen!r}: {exc} (write it as HOST:PORT)") from None


def describe_request(request: Request, remote: tuple[str, int]) -> str:
    """One line per request received: who sent what, for whom."""
    host, port = remote
    sender = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    number, method = request.cseq
    return (
        f"{sender} {request.method} {request.uri} from {request.from_.uri} "
        f"call-id {request.call_id} cseq {number} {method}"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``fedsim peer`` until SIGINT/SIGTERM; return the exit status."""
    lab = load_lab(args.lab)
    peer = lab_peer(lab, args.name)
    answer = args.answer if args.answer is not None else peer.answer
    check_answer(answer)
    if args.ring < 0:
        raise FedsimError(f"--ring {args.ring}: must not be negative")
    host, port = _listen(args, peer)
    files = peer_files(peer, issue_lab_pki(lab, args.certs_dir))
    context = peer_server_context(peer, files)

    def on_request(request: Request, remote: tuple[str, int]) -> None:
        print(describe_request(request, remote), flush=True)

    def on_tls_error(reason: str, remote: tuple[str, int]) -> None:
        print(f"{remote[0]}:{remote[1]} TLS refused: {reason}", flush=True)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                bound = await nursery.start(
                    partial(
                        serve_peer,
                        host=host,
                        port=port,
                        ssl_context=context,
                        answer=answer,
                        name=args.name,
                        ring_seconds=args.ring,
                        media=cast(AnswerEncryption, args.media or peer.media),
                        presence=args.presence or peer.presence,
                        on_request=on_request,
                        on_tls_error=on_tls_error,
                    )
                )
                print(
                    f"fedsim: peer {args.name!r} listening on {bound[0]}:{bound[1]} "
                    f"(mutual TLS, certificate {files.cert}, answers {answer}, media "
                    f"{args.media or peer.media}, presence {args.presence or peer.presence}); "
                    "Ctrl-C stops",
                    flush=True,
                )
                async for signum in signals:
                    print(f"fedsim: {signal.Signals(signum).name}: stopping", flush=True)
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
    return 0
