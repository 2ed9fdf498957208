"""After the 200: RFC 3261 2xx retransmission, and the endings a lab can stage."""

from __future__ import annotations

import pytest

from simulator.skype.call import (
    MEDIA_FAILURE,
    AckReceived,
    Answered,
    ByeReceived,
    ByeSent,
    CallEvent,
    CallPhase,
    CallSettings,
    Retransmit200,
    Retransmitted,
    SendBye,
    plan_call,
    retransmission_times,
)

DEFAULT = CallSettings()


def test_retransmission_schedule_is_rfc3261() -> None:
    """T1 doubling to T2, while under 64*T1: 0.5, 1.5, 3.5, 7.5, then every 4 s to 31.5."""
    assert retransmission_times(DEFAULT, 100.0) == tuple(
        100.0 + t for t in (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    )
    assert DEFAULT.ack_timeout == 32.0


def test_shortened_timers_scale_the_whole_schedule() -> None:
    """A scenario can shorten T1/T2: 64*T1 then ends the call in a fraction of 32 s."""
    fast = CallSettings(t1=0.05, t2=0.4)
    assert fast.ack_timeout == pytest.approx(3.2)
    assert retransmission_times(fast, 0.0) == pytest.approx(
        (0.05, 0.15, 0.35, 0.75, 1.15, 1.55, 1.95, 2.35, 2.75, 3.15)
    )


def run(
    settings: CallSettings, *, ack_at: float | None, until: float, bye_at: float | None = None
) -> list[tuple[float, str]]:
    """Drive plan_call the way the Edge will: wake at each deadline, record what it did."""
    events: list[CallEvent] = [Answered(at=0.0)]
    done: list[tuple[float, str]] = []
    now = 0.0
    wakeups = sorted(t for t in (ack_at, bye_at) if t is not None)
    while now <= until:
        plan = plan_call(settings, events, now)
        for action in plan.actions:
            if isinstance(action, Retransmit200):
                events.append(Retransmitted(at=now))
                done.append((now, f"200#{action.number}"))
            else:
                events.append(ByeSent(at=now))
                done.append((now, f"BYE {action.cause}"))
        candidates = [t for t in wakeups if t > now]
        if plan.deadline is not None:
            candidates.append(plan.deadline)
        if not candidates:
            break
        now = min(candidates)
        if ack_at is not None and now == ack_at:
            events.append(AckReceived(at=now))
        if bye_at is not None and now == bye_at:
            events.append(ByeReceived(at=now))
    return done


# settings, ACK time, peer BYE time -> what the user does, in time order
SCENARIOS = [
    (
        "no ACK: retransmit ten times, then BYE at 64*T1 (the field's 'drops after 30 s')",
        DEFAULT,
        None,
        None,
        [
            *[(t, f"200#{n}") for n, t in enumerate((0.5, 1.5, 3.5, 7.5, 11.5), 1)],
            *[(t, f"200#{n}") for n, t in enumerate((15.5, 19.5, 23.5, 27.5, 31.5), 6)],
            (32.0, "BYE no-ack"),
        ],
    ),
    ("ACK before the first retransmission: nothing", DEFAULT, 0.2, None, []),
    (
        "ACK after two retransmissions stops them",
        DEFAULT,
        2.0,
        None,
        [(0.5, "200#1"), (1.5, "200#2")],
    ),
    (
        "misrouted ACK (ignore_ack): as if none came",
        CallSettings(ignore_ack=True, t1=0.05, t2=0.4),
        0.01,
        None,
        [
            *[
                (pytest.approx(t), f"200#{n}")
                for n, t in enumerate(
                    (0.05, 0.15, 0.35, 0.75, 1.15, 1.55, 1.95, 2.35, 2.75, 3.15), 1
                )
            ],
            (pytest.approx(3.2), "BYE no-ack"),
        ],
    ),
    ("hang up after 10 s", CallSettings(hangup_after=10.0), 0.1, None, [(10.0, "BYE hangup")]),
    (
        "media failure after 5 s",
        CallSettings(media_failure_after=5.0),
        0.1,
        None,
        [(5.0, "BYE media-failure")],
    ),
    (
        "the earliest ending wins",
        CallSettings(hangup_after=8.0, media_failure_after=6.0),
        0.1,
        None,
        [(6.0, "BYE media-failure")],
    ),
    (
        "a hang-up due before the ACK waits for it (RFC 3261 §15)",
        CallSettings(hangup_after=1.0),
        2.0,
        None,
        [(0.5, "200#1"), (1.5, "200#2"), (2.0, "BYE hangup")],
    ),
    (
        "the peer's BYE ends everything",
        CallSettings(hangup_after=10.0),
        0.1,
        4.0,
        [],
    ),
]


@pytest.mark.parametrize(
    ("settings", "ack_at", "bye_at", "expected"),
    [case[1:] for case in SCENARIOS],
    ids=[case[0] for case in SCENARIOS],
)
def test_what_the_user_does_after_the_200(
    settings: CallSettings,
    ack_at: float | None,
    bye_at: float | None,
    expected: list[tuple[float, str]],
) -> None:
    """Each staged ending, driven by deadlines exactly as the Edge will drive it."""
    assert run(settings, ack_at=ack_at, bye_at=bye_at, until=100.0) == expected


def test_media_failure_bye_carries_the_public_diagnostics() -> None:
    """The BYE of a media failure has the V 23 value; the others carry no reason header."""
    events: list[CallEvent] = [Answered(at=0.0), AckReceived(at=0.1)]
    media = plan_call(CallSettings(media_failure_after=1.0), events, 1.0).actions
    assert media == (SendBye(cause="media-failure", headers=(MEDIA_FAILURE,), fidelity="verbatim"),)
    assert MEDIA_FAILURE == (
        "ms-client-diagnostics",
        '23; reason="Call failed to establish due to a media connectivity failure '
        'when one endpoint is internal and the other is remote"',
    )
    hangup = plan_call(CallSettings(hangup_after=1.0), events, 1.0).actions
    assert hangup == (SendBye(cause="hangup", headers=(), fidelity="inferred"),)


PHASES = [
    ([], CallPhase.RINGING, None),
    ([Answered(at=0.0)], CallPhase.WAITING_FOR_ACK, 0.5),
    ([Answered(at=0.0), AckReceived(at=0.2)], CallPhase.CONFIRMED, None),
    ([Answered(at=0.0), ByeReceived(at=0.2)], CallPhase.ENDED, None),
    ([Answered(at=0.0), AckReceived(at=0.2), ByeSent(at=3.0)], CallPhase.ENDED, None),
]


@pytest.mark.parametrize(("events", "phase", "deadline"), PHASES)
def test_phase_and_deadline(
    events: list[CallEvent], phase: CallPhase, deadline: float | None
) -> None:
    """No 200: nothing scheduled; acked without staged faults: nothing more to do."""
    plan = plan_call(DEFAULT, events, 0.3)
    assert (plan.phase, plan.deadline, plan.actions) == (phase, deadline, ())


def test_a_late_caller_gets_one_retransmission_at_a_time() -> None:
    """Woken late, the plan sends one 200 and asks to be called again at once."""
    plan = plan_call(DEFAULT, [Answered(at=0.0)], 5.0)
    assert plan.actions == (Retransmit200(number=1),)
    assert plan.deadline == 1.5


@pytest.mark.parametrize(
    "fields",
    [{"t1": 0}, {"t1": 1.0, "t2": 0.5}, {"hangup_after": -1}, {"media_failure_after": -0.1}],
)
def test_settings_refuse_bad_timers(fields: dict[str, float]) -> None:
    """Zero or inverted timers, negative delays: a configuration error."""
    with pytest.raises(ValueError, match=r"T1|must be"):
        CallSettings(**fields)  # type: ignore[arg-type]
