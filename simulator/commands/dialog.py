"""What ``fedsim call`` and ``fedsim client`` share to drive the Skype user, and its report.

What the caller offers (``--offer``), whether it ACKs (``--no-ack``), hangs up
or waits for the called user's BYE (``--wait-bye``), the text of a MESSAGE or
an IM session (``--text``), and a presence subscription's course (``--expires``,
``--refresh``, ``--keep-subscription``). After the final response the report
shows the rest of the dialog: each message, then one line per NOTIFY (its state
and the availability it carries) and the called user's BYE (when, why).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from simulator.errors import FedsimError
from simulator.peer.dialog import Afterwards, CallEnd, Staging
from simulator.sip import Request, Response
from simulator.skype.presence import read_availability

#: Seconds a caller that waits for the called user's BYE gets by default: 64*T1
#: with the default T1 (32 s), and some.
WAIT_TIMEOUT = 40.0


def add_options(parser: argparse.ArgumentParser, offers: Sequence[str], default: str) -> None:
    """Add the dialog options to ``parser`` (``offers``: what this caller can offer)."""
    group = parser.add_argument_group("the Skype user's side of the call")
    group.add_argument(
        "--offer",
        choices=offers,
        help=f"the INVITE's SDP (default: {default}): SRTP forced (srtp), SRTP if possible "
        "(best-effort), plain RTP, none (a delayed offer), an IM session (im)"
        + (", DTLS-SRTP (dtls)" if "dtls" in offers else ""),
    )
    group.add_argument(
        "--no-ack",
        action="store_true",
        help="never ACK the 200: the Skype user retransmits it and hangs up at 64*T1 (32 s)",
    )
    group.add_argument(
        "--wait-bye",
        action="store_true",
        help="after the ACK, wait for the Skype user's BYE instead of hanging up",
    )
    group.add_argument("--text", metavar="TEXT", help="the MESSAGE body, or the IM session's text")
    group.add_argument(
        "--expires", type=int, metavar="S", help="SUBSCRIBE: the Expires asked for (default 3600)"
    )
    group.add_argument("--refresh", action="store_true", help="SUBSCRIBE: refresh it once")
    group.add_argument(
        "--keep-subscription",
        action="store_true",
        help="SUBSCRIBE: do not un-SUBSCRIBE; wait for the subscription to expire",
    )


def staging(args: argparse.Namespace) -> Staging:
    """The caller's behaviour after the final response, from the options.

    Raises:
        FedsimError: options that do not go together, or with this method.
    """
    if args.no_hangup and (args.no_ack or args.wait_bye):
        raise FedsimError("--no-hangup leaves the call up: it cannot wait for a BYE too")
    if args.method != "INVITE":
        flags = (("--offer", args.offer is not None), ("--no-ack", args.no_ack))
        used = [f for f, on in (*flags, ("--wait-bye", args.wait_bye)) if on]
        if used:
            raise FedsimError(f"{', '.join(used)}: only for an INVITE")
    if args.method != "SUBSCRIBE" and (
        args.expires is not None or args.refresh or args.keep_subscription
    ):
        raise FedsimError("--expires, --refresh, --keep-subscription: only for a SUBSCRIBE")
    if args.expires is not None and args.expires < 0:
        raise FedsimError(f"--expires {args.expires}: a number of seconds, 0 or more")
    end: CallEnd = "leave" if args.no_hangup else "wait" if args.wait_bye else "bye"
    return Staging(
        ack=not args.no_ack,
        end=end,
        text=args.text if args.offer == "im" else None,
        refresh=args.refresh,
        unsubscribe=not args.keep_subscription,
    )


def timeout(args: argparse.Namespace, default: float) -> float:
    """``--timeout``, or a longer default when the caller waits for the user's BYE."""
    if args.timeout is not None:
        if not args.timeout > 0:
            raise FedsimError(f"--timeout {args.timeout}: must be a positive number of seconds")
        return float(args.timeout)
    waits = args.no_ack or args.wait_bye or args.keep_subscription
    return max(default, WAIT_TIMEOUT) if waits else default


def report_after(
    after: Afterwards,
    say: Callable[[str], None],
    show: Callable[[Request | Response, str], None],
) -> None:
    """The dialog after the final response: every message, the NOTIFYs, the user's BYE."""
    for sent, message in after.messages:
        show(message, "> " if sent else "< ")
    for notify in after.notifies:
        state = notify.headers.get("Subscription-State") or "-"
        kind = notify.headers.get("Content-Type") or "no body"
        found = read_availability(notify.headers.get("Content-Type"), notify.body)
        say(f"NOTIFY {state}: {found or 'no known availability'} ({kind})")
    if after.retransmissions:
        say(f"the 200 came {after.retransmissions} more times (RFC 3261 §13.3.1.4: no ACK)")
    if after.bye is not None and after.bye_after is not None:
        why = after.bye.headers.get("ms-client-diagnostics")
        say(
            f"the Skype user hung up {after.bye_after:.1f} s after its 200"
            + (f": ms-client-diagnostics {why}" if why else "")
        )
    if after.error is not None:
        say(after.error)
