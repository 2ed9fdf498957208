"""Hypothesis invariants of the Skype user's pure decisions.

* h11's fuzz rule for SDP: whatever a peer sends, :func:`parse_sdp` returns or
  raises :class:`SdpError`, and :func:`answer_offer` returns an answer or a
  refusal, never an exception.
* An answer is itself SDP, keeps the offer's m= lines in order (RFC 3264), and
  never breaks the policy: a ``required`` user never answers plain RTP, a
  ``rejected`` one never answers SRTP.
* MESSAGE bodies: any content type and bytes give a decision, never an exception.
* Presence: every (state, input) pair, at any time, steps without an exception
  and keeps RFC 6665's rules (a timer only while active, nothing back from
  terminated, one response per SUBSCRIBE, refusals change nothing).
* After the 200: driven by its own deadlines the schedule settles, retransmits
  in order, sends at most one BYE, and never a hang-up BYE before the ACK.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.skype.call import (
    AckReceived,
    Answered,
    ByeReceived,
    ByeSent,
    CallEvent,
    CallSettings,
    Retransmit200,
    Retransmitted,
    plan_call,
    retransmission_times,
)
from simulator.skype.im import receive_message
from simulator.skype.media import (
    MEDIA_ENCRYPTION_VALUES,
    MediaAnswer,
    MediaRefusal,
    MediaSettings,
    answer_offer,
)
from simulator.skype.presence import (
    AVAILABILITIES,
    CATEGORIES,
    PIDF,
    Change,
    Expire,
    NotifyFailed,
    PresenceSettings,
    Presentity,
    State,
    SubscribeRequest,
    Subscription,
    step,
)
from simulator.skype.sdp import SdpError, parse_sdp

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DATA = Path(__file__).parent / "data"
SAMPLE_LINES = sorted(
    {
        line
        for path in DATA.glob("*.sdp")
        for line in path.read_bytes().decode("utf-8").split("\r\n")
        if line
    }
)
#: Lines that exercise the branches: profiles, keys, directions, odd attributes.
EXTRA_LINES = [
    "m=audio 0 RTP/AVP 0",
    "m=audio 4000 RTP/SAVPF 0 8",
    "m=audio 4000 RTP/AVPF 0",
    "m=audio 4000 TCP/RTP/AVP 0",
    "m=message 5060 sip null",
    "m=application 5000 udp bfcp",
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA",
    "a=crypto:x",
    "a=crypto:",
    "a=rtpmap:96",
    "a=rtpmap:999999999999 X/1",
    "a=fmtp:",
    "a=encryption:required",
    "a=encryption:rejected",
    "a=sendonly",
    "a=inactive",
    "c=IN IP6 ::1",
    "c=IN IP4 0.0.0.0/255/2",
]
sdp_lines = st.sampled_from(SAMPLE_LINES + EXTRA_LINES)
#: SDP-shaped bodies: v=0 then real lines in random order, sometimes damaged.
sdp_bodies = st.builds(
    lambda lines, cut: ("v=0\r\n" + "\r\n".join(lines) + "\r\n").encode()[: cut or None],
    st.lists(sdp_lines, max_size=25),
    st.none() | st.integers(0, 400),
)
policies = st.sampled_from(MEDIA_ENCRYPTION_VALUES)
addresses = st.sampled_from(["127.0.0.1", "192.0.2.7", "::1", "2001:db8::5"])


def _answer(body: bytes, encryption: str, seed: int, address: str) -> MediaAnswer | MediaRefusal:
    return answer_offer(
        body,
        settings=MediaSettings(encryption=encryption),  # type: ignore[arg-type]
        address=address,
        port=20000,
        rng=random.Random(seed),
        user_uri="sip:stejanss@skype.lab",
    )


@FUZZ
@given(body=st.binary(max_size=600) | sdp_bodies)
def test_parse_sdp_returns_or_raises_sdp_error(body: bytes) -> None:
    """Random bytes or damaged SDP: a SessionDescription or SdpError, nothing else."""
    with contextlib.suppress(SdpError):
        parse_sdp(body)


@FUZZ
@given(
    body=st.binary(max_size=600) | sdp_bodies,
    encryption=policies,
    seed=st.integers(0, 2**32),
    address=addresses,
)
def test_any_offer_gets_an_answer_or_a_refusal(
    body: bytes, encryption: str, seed: int, address: str
) -> None:
    """answer_offer never raises: the peer's garbage is the peer's 488."""
    result = _answer(body, encryption, seed, address)
    assert isinstance(result, MediaAnswer | MediaRefusal)
    if isinstance(result, MediaRefusal):
        assert result.status == 488
        assert result.detail


@FUZZ
@given(body=sdp_bodies, encryption=policies, seed=st.integers(0, 2**32), address=addresses)
def test_answers_are_sdp_keep_the_streams_and_obey_the_policy(
    body: bytes, encryption: str, seed: int, address: str
) -> None:
    """RFC 3264 shape and the policy table hold for every answer the user writes."""
    result = _answer(body, encryption, seed, address)
    if not isinstance(result, MediaAnswer):
        return
    answer = parse_sdp(result.sdp)
    if not result.is_offer:
        offer = parse_sdp(body)
        assert [m.media for m in answer.media] == [m.media for m in offer.media]
    if encryption == "required" and result.profile is not None:
        assert result.secure
    if encryption == "rejected":
        assert not result.secure
    for media in answer.media:
        keys = media.values("crypto")
        assert len(keys) <= 1
        assert bool(keys) == (media.port != 0 and media.proto in ("RTP/SAVP", "RTP/SAVPF"))


@FUZZ
@given(
    content_type=st.none()
    | st.text(max_size=60)
    | st.sampled_from(
        ["text/plain", "text/html", "message/cpim", "multipart/alternative; boundary=x"]
    ),
    body=st.binary(max_size=300),
)
def test_any_message_gets_a_decision(content_type: str | None, body: bytes) -> None:
    """A MESSAGE is answered 200 or 415, whatever its Content-Type and body."""
    decision = receive_message(content_type, body)
    assert decision.status in (200, 415)
    assert decision.text is None or isinstance(decision.text, str)


# --- presence: hypothesis over state x input (style rule: tables tested exhaustively) ---

formats = st.sampled_from([PIDF, CATEGORIES])
subscriptions = st.one_of(
    st.builds(Subscription, documents=st.integers(0, 5)),
    st.builds(
        Subscription,
        state=st.just(State.ACTIVE),
        content_type=formats,
        expires_at=st.floats(0, 10_000, allow_nan=False),
        documents=st.integers(0, 5),
    ),
    st.builds(
        Subscription,
        state=st.just(State.TERMINATED),
        content_type=st.none() | formats,
        documents=st.integers(0, 5),
    ),
)
presence_inputs = st.one_of(
    st.builds(
        SubscribeRequest,
        event=st.sampled_from([None, "presence", "Presence;id=7", "dialog", ""]),
        accept=st.sampled_from([None, PIDF, CATEGORIES, "text/xml+msrtc.pidf", "x/y, */*"]),
        expires=st.none() | st.integers(-5, 100_000),
        supported=st.sampled_from([(), ("ms-piggyback-first-notify",), ("timer",)]),
    ),
    st.just(Expire()),
    st.builds(Change, availability=st.sampled_from(list(AVAILABILITIES.values()))),
    st.builds(NotifyFailed, status=st.sampled_from([400, 408, 481, 500, 503])),
)
PRESENTITY = Presentity(uri="sip:alice@skype.lab", availability=AVAILABILITIES["busy"])


@FUZZ
@given(
    subscription=subscriptions,
    event=presence_inputs,
    now=st.floats(0, 20_000, allow_nan=False),
    min_expires=st.integers(0, 100),
)
def test_presence_step_invariants(
    subscription: Subscription,
    event: SubscribeRequest | Expire | Change | NotifyFailed,
    now: float,
    min_expires: int,
) -> None:
    """Any state x any input: no exception, and the RFC 6665 rules hold."""
    result = step(
        subscription,
        event,
        now,
        presentity=PRESENTITY,
        settings=PresenceSettings(min_expires=min_expires),
    )
    after = result.subscription
    # Only SUBSCRIBEs are answered, and every SUBSCRIBE is.
    assert (result.response is not None) == isinstance(event, SubscribeRequest)
    # A timer exists exactly while the subscription is active.
    assert (result.deadline is not None) == (after.state is State.ACTIVE)
    if after.state is State.ACTIVE:
        assert after.expires_at == result.deadline
    # Nothing comes back from TERMINATED; IDLE only moves on a SUBSCRIBE.
    if subscription.state is State.TERMINATED:
        assert after.state is State.TERMINATED
    if subscription.state is State.IDLE and not isinstance(event, SubscribeRequest):
        assert after == subscription
    # A document goes out (NOTIFY or piggybacked) exactly when the count grows by one.
    sent = result.notify is not None or bool(result.response and result.response.body)
    assert after.documents == subscription.documents + (1 if sent else 0)
    if result.notify is not None:
        active = result.notify.subscription_state.startswith("active;expires=")
        assert active == (after.state is State.ACTIVE)
        assert result.notify.subscription_state in {"terminated;reason=timeout"} or active
    # A refused or 481'd SUBSCRIBE changes nothing.
    if result.response is not None and result.response.status != 200:
        assert after == subscription
        assert result.notify is None


# --- after the 200: the schedule, driven by its own deadlines ---

call_settings = st.builds(
    CallSettings,
    t1=st.sampled_from([0.05, 0.5, 1.0]),
    t2=st.sampled_from([4.0, 8.0]),
    ignore_ack=st.booleans(),
    hangup_after=st.none() | st.floats(0, 60, allow_nan=False),
    media_failure_after=st.none() | st.floats(0, 60, allow_nan=False),
)


@FUZZ
@given(
    settings_=call_settings,
    ack_at=st.none() | st.floats(0, 80, allow_nan=False),
    peer_bye_at=st.none() | st.floats(0, 80, allow_nan=False),
)
def test_call_schedule_invariants(
    settings_: CallSettings, ack_at: float | None, peer_bye_at: float | None
) -> None:
    """Driven deadline by deadline: ordered retransmissions, at most one BYE, RFC 3261 §15."""
    events: list[CallEvent] = [Answered(at=0.0)]
    outside: list[CallEvent] = []
    if ack_at is not None:
        outside.append(AckReceived(at=ack_at))
    if peer_bye_at is not None:
        outside.append(ByeReceived(at=peer_bye_at))
    now, retransmitted, byes = 0.0, [], []
    for _ in range(200):
        events += [e for e in outside if e.at <= now and e not in events]
        plan = plan_call(settings_, events, now)
        for action in plan.actions:
            if isinstance(action, Retransmit200):
                assert action.number == len(retransmitted) + 1
                retransmitted.append(now)
                events.append(Retransmitted(at=now))
            else:
                byes.append((now, action.cause))
                events.append(ByeSent(at=now))
        assert plan.deadline is None or plan.deadline > now or plan.actions
        wake = [e.at for e in outside if e.at > now]
        if plan.deadline is not None:
            wake.append(plan.deadline)
        if not wake:
            break
        now = min(wake)
    else:
        raise AssertionError("the schedule never settles")
    acked = ack_at is not None and not settings_.ignore_ack
    assert retransmitted == sorted(retransmitted)
    assert len(retransmitted) <= len(retransmission_times(settings_, 0.0))
    assert len(byes) <= 1
    if acked:
        assert all(t <= ack_at for t in retransmitted)  # type: ignore[operator]
    for at, cause in byes:
        assert peer_bye_at is None or at < peer_bye_at
        if cause == "no-ack":
            assert at == settings_.ack_timeout
            assert not acked or ack_at > at  # type: ignore[operator]
        else:
            assert acked
            assert at >= ack_at  # type: ignore[operator]
