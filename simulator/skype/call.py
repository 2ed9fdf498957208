"""What the Skype user does after its 200: 2xx retransmission, and the faults that follow.

Theory (docs/reference/skype-user.md §5). RFC 3261 §13.3.1.4: the UAS core
retransmits a 2xx to INVITE at T1, then doubling up to T2, until the ACK
arrives, whatever the transport; after 64*T1 (32 s with T1 = 500 ms, timer H's
value) without one, "the session SHOULD be terminated. This is accomplished
with a BYE". That is the field's "the call connects and clears after about 30
seconds" when the Expressway's ACK is not routed back to the Skype side.

The lab can stage the other endings too: the user hangs up after N seconds (a
plain BYE; Skype's reason header for it is not public), or media never
connects and the client ends the call with the public 23 diagnostics. Either
waits for the ACK first (RFC 3261 §15: no BYE before the ACK or the give-up).

The whole schedule is one pure function of the settings, the events so far and
the time: :func:`plan_call` says what is due now and when to ask again. The
Edge records what it did (``Retransmitted``, ``ByeSent``) as events, so the
same history always gives the same plan.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from simulator.diagnostics.catalogue import Fidelity

__all__ = [
    "MEDIA_FAILURE",
    "AckReceived",
    "Answered",
    "ByeCause",
    "ByeReceived",
    "ByeSent",
    "CallEvent",
    "CallPhase",
    "CallPlan",
    "CallSettings",
    "Retransmit200",
    "Retransmitted",
    "SendBye",
    "plan_call",
    "retransmission_times",
]

#: The BYE of a call whose media never connected (V value, reference 5.3).
MEDIA_FAILURE = (
    "ms-client-diagnostics",
    '23; reason="Call failed to establish due to a media connectivity failure '
    'when one endpoint is internal and the other is remote"',
)

ByeCause = Literal["no-ack", "hangup", "media-failure"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSettings:
    """Timers and staged faults of one call (seconds).

    Attributes:
        t1 / t2: RFC 3261 T1 (RTT estimate, 0.5) and T2 (cap, 4.0); a scenario may
            shorten them so the "no ACK" case ends in a fraction of 32 s.
        ignore_ack: behave as if the ACK never arrives (the field's misrouted ACK):
            retransmit the 200 and send BYE at 64*T1 even when the peer ACKs.
        hangup_after: the user hangs up this long after the 200 (None: never).
        media_failure_after: media fails to connect and the user ends the call
            this long after the 200 (None: media always works).
    """

    t1: float = 0.5
    t2: float = 4.0
    ignore_ack: bool = False
    hangup_after: float | None = None
    media_failure_after: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ValueError(f"timers need 0 < T1 <= T2, not T1={self.t1} T2={self.t2}")
        for name in ("hangup_after", "media_failure_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 seconds, not {value}")

    @property
    def ack_timeout(self) -> float:
        """64*T1: how long the 200 is retransmitted before the BYE (timer H's value)."""
        return 64 * self.t1


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """The user sent its 200 to the INVITE at ``at``."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """The ACK for the 200 reached the user at ``at``."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ByeReceived:
    """The peer ended the call at ``at``."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Retransmitted:
    """The Edge retransmitted the 200 at ``at`` (a :class:`Retransmit200` it carried out)."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ByeSent:
    """The Edge sent the user's BYE at ``at`` (a :class:`SendBye` it carried out)."""

    at: float


CallEvent = Answered | AckReceived | ByeReceived | Retransmitted | ByeSent


@dataclass(frozen=True, slots=True, kw_only=True)
class Retransmit200:
    """Send the 200 again, byte for byte (``number``: 1 for the first retransmission)."""

    number: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SendBye:
    """End the call with a BYE in the dialog.

    Attributes:
        cause: why (``no-ack``, ``hangup``, ``media-failure``).
        headers: extra header lines (the 23 diagnostics for a media failure).
        fidelity: how far the BYE matches a real client's: the no-ACK BYE is
            RFC 3261's (inferred for Skype), the media-failure header verbatim,
            the hang-up BYE inferred (no public reason header).
    """

    cause: ByeCause
    headers: tuple[tuple[str, str], ...] = ()
    fidelity: Fidelity = "inferred"


CallAction = Retransmit200 | SendBye


class CallPhase(enum.Enum):
    """Where the call stands after the events so far."""

    #: No 200 sent yet: nothing is scheduled.
    RINGING = "ringing"
    #: 200 sent, no ACK yet: retransmitting.
    WAITING_FOR_ACK = "waiting-for-ack"
    #: ACK received: only the staged faults remain.
    CONFIRMED = "confirmed"
    #: A BYE went either way: nothing more.
    ENDED = "ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPlan:
    """What is due now, and when to call :func:`plan_call` again.

    Attributes:
        phase: where the call stands.
        actions: what to do now, in order (at most one retransmission, at most one BYE).
        deadline: the next time something is due (None: nothing will be).
    """

    phase: CallPhase
    actions: tuple[CallAction, ...]
    deadline: float | None


def retransmission_times(settings: CallSettings, answered_at: float) -> tuple[float, ...]:
    """When the 200 is retransmitted if no ACK comes (RFC 3261 §13.3.1.4).

    Intervals T1, 2*T1, 4*T1... capped at T2, for as long as the sum stays below
    64*T1: with the defaults 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s after the 200.
    """
    times: list[float] = []
    interval, at = settings.t1, answered_at
    while True:
        at += interval
        if at >= answered_at + settings.ack_timeout:
            return tuple(times)
        times.append(at)
        interval = min(interval * 2, settings.t2)


def plan_call(settings: CallSettings, events: Sequence[CallEvent], now: float) -> CallPlan:
    """What the user does at ``now``, given everything that happened so far.

    Args:
        settings: the call's timers and staged faults.
        events: every event so far, in any order (only their kinds and times matter).
        now: the current time, in the events' clock.

    Returns:
        The phase, the actions due now, and the next deadline. An ACK arriving
        after the BYE changes nothing; ``ignore_ack`` makes every ACK unseen.
    """
    answered = [e.at for e in events if isinstance(e, Answered)]
    if not answered:
        return CallPlan(phase=CallPhase.RINGING, actions=(), deadline=None)
    start = min(answered)
    if any(isinstance(e, ByeSent | ByeReceived) for e in events):
        return CallPlan(phase=CallPhase.ENDED, actions=(), deadline=None)
    acked = not settings.ignore_ack and any(isinstance(e, AckReceived) for e in events)
    # Each pending ending, when it is due, in the order a tie is resolved. RFC 3261
    # §15: the callee MUST NOT send BYE before the ACK (or the 64*T1 give-up), so a
    # hang-up or media failure due earlier waits for the ACK.
    endings: list[tuple[float, SendBye]] = []
    if acked and settings.media_failure_after is not None:
        endings.append(
            (
                start + settings.media_failure_after,
                SendBye(cause="media-failure", headers=(MEDIA_FAILURE,), fidelity="verbatim"),
            )
        )
    if acked and settings.hangup_after is not None:
        endings.append((start + settings.hangup_after, SendBye(cause="hangup")))
    if not acked:
        endings.append((start + settings.ack_timeout, SendBye(cause="no-ack")))
    due = [(at, index) for index, (at, _) in enumerate(endings) if at <= now]
    if due:
        _, index = min(due)
        return CallPlan(phase=CallPhase.ENDED, actions=(endings[index][1],), deadline=None)
    actions: list[CallAction] = []
    pending = [at for at, _ in endings]
    if not acked:
        done = sum(1 for e in events if isinstance(e, Retransmitted))
        schedule = retransmission_times(settings, start)
        if done < len(schedule):
            if schedule[done] <= now:
                actions.append(Retransmit200(number=done + 1))
                done += 1
            if done < len(schedule):
                pending.append(schedule[done])
    phase = CallPhase.CONFIRMED if acked else CallPhase.WAITING_FOR_ACK
    return CallPlan(phase=phase, actions=tuple(actions), deadline=min(pending, default=None))
