"""The one emulated Skype user, sans-I/O: requests and timers in; messages, events, timers out."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.policy import EdgeSettings
from simulator.sip import Request, Response, parse_message
from simulator.skype.agent import USER_AGENT
from simulator.skype.call import CallSettings
from simulator.skype.media import MediaSettings
from simulator.skype.presence import AVAILABILITIES
from simulator.skype.user import (
    Answer,
    Directory,
    Leg,
    SkypeUser,
    Timer,
    UserProfile,
    answer_status,
)

DATA = Path(__file__).parent / "data"
SETTINGS = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
LEG = Leg(
    local=("127.0.0.1", 5061),
    via_params=(("received", "127.0.0.1"),),
    via="sip.skype.lab:5061",
    record_route="<sip:sip.skype.lab:5061;transport=tls;lr>",
)
FAST = CallSettings(t1=0.05, t2=0.4)
SRTP = (DATA / "baresip-srtp-mand.sdp").read_bytes()
PLAIN = (DATA / "baresip-plain.sdp").read_bytes()
IM = (DATA / "sfb2015-im-offer.sdp").read_bytes()


def directory(**users: UserProfile) -> Directory:
    return Directory(
        settings=SETTINGS, users=users, default=UserProfile(call=FAST), listed_only=False
    )


def user(**users: UserProfile) -> SkypeUser:
    return SkypeUser(directory(**users), rng=random.Random(7))


def request(
    method: str,
    *,
    to: str = "stejanss",
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
    to_tag: str | None = None,
    cseq: int = 1,
    call_id: str = "c1",
) -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    lines = [
        f"{method} sip:{to}@skype.lab SIP/2.0",
        f"Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK{method.lower()}{cseq}",
        "Max-Forwards: 70",
        "From: <sip:2000@steven.lab>;tag=abc",
        f"To: <sip:{to}@skype.lab>{tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:2000@127.0.0.1:40000;transport=tls>",
        *(f"{k}: {v}" for k, v in headers),
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    parsed = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(parsed, Request)
    return parsed


def messages(answer: Answer) -> list[Request | Response]:
    out = [parse_message(m) for m in answer.messages]
    return [m for m in out if isinstance(m, Request | Response)]


def statuses(answer: Answer) -> list[int]:
    return [m.status for m in messages(answer) if isinstance(m, Response)]


def invite(u: SkypeUser, body: bytes = SRTP, to: str = "stejanss", at: float = 0.0) -> Answer:
    return u.new_request(request("INVITE", to=to, body=body), LEG, at)


def drive(u: SkypeUser, answer: Answer, until: float) -> list[tuple[float, str]]:
    """Run every timer in time order, as the Edge does; what went out, when."""
    pending = sorted(answer.timers, key=lambda t: t.at)
    out: list[tuple[float, str]] = []
    while pending and pending[0].at <= until:
        timer = pending.pop(0)
        result = u.timer(timer, timer.at)
        out += [(timer.at, m.start_line.split(" ")[0]) for m in messages(result)]
        out += [(timer.at, f"event {e.kind}") for e in result.events]
        pending = sorted([*pending, *result.timers], key=lambda t: t.at)
    return out


# --- INVITE -----------------------------------------------------------------------------


def test_srtp_offer_gets_the_edges_100_then_the_users_180_and_200() -> None:
    answer = invite(user())
    trying, ringing, ok = messages(answer)
    assert [r.status for r in (trying, ringing, ok)] == [100, 180, 200]  # type: ignore[union-attr]
    assert isinstance(trying, Response)
    assert isinstance(ok, Response)
    assert trying.headers.get("Server") == "RTC/6.0"
    assert trying.to.tag is None
    for response in (ringing, ok):
        assert response.headers.get("Server") is None
        assert response.headers.get("User-Agent") == USER_AGENT
        assert response.headers.get_all("Record-Route") == [LEG.record_route]
        assert response.headers.get("Contact") == "<sip:stejanss@127.0.0.1:5061;transport=tls>"
    assert b"m=audio " in ok.body
    assert b" RTP/SAVP 0 8 9 101\r\n" in ok.body
    assert b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in ok.body
    assert answer.info == {"media": "RTP/SAVP PCMU PCMA G722 telephone-event", "secure": True,
                           "offer": False}  # fmt: skip
    # The 200 waits for its ACK: the first retransmission is due at T1.
    assert [(t.kind, t.at) for t in answer.timers] == [("call", pytest.approx(0.05))]


@pytest.mark.parametrize(
    ("refusal", "status", "header"),
    [
        ("diagnostics", "488 Not Acceptable Here", ("ms-client-diagnostics",
         '52017;reason="Encryption levels dont match"')),
        ("legacy", "488 Encryption Levels not compatible", ("Warning",
         '308 lcs.microsoft.com "Encryption Levels not compatible"')),
    ],
)  # fmt: skip
def test_plain_offer_to_a_user_who_requires_srtp_is_refused(
    refusal: str, status: str, header: tuple[str, str]
) -> None:
    media = MediaSettings(refusal=refusal)  # type: ignore[arg-type]
    answer = invite(user(stejanss=UserProfile(media=media)), PLAIN)
    _trying, refused = messages(answer)
    assert isinstance(refused, Response)
    assert f"{refused.status} {refused.reason}" == status
    assert refused.headers.get(header[0]) == header[1]
    assert refused.headers.get("User-Agent") == USER_AGENT
    assert answer.status == 488
    assert answer.timers == ()
    assert answer.info is not None
    assert answer.info["refusal"] == "encryption"


def test_no_ack_retransmits_the_200_and_ends_with_a_bye_at_64_t1() -> None:
    u = user()
    answer = invite(u)
    assert u.awaiting_ack == 1
    sent = drive(u, answer, until=10.0)
    times = [t for t, what in sent if what == "SIP/2.0"]
    assert times == pytest.approx([0.05, 0.15, 0.35, 0.75, 1.15, 1.55, 1.95, 2.35, 2.75, 3.15])
    assert sent[-2:] == [(pytest.approx(3.2), "BYE"), (pytest.approx(3.2), "event call-ended")]
    assert u.awaiting_ack == 0
    assert u.dialogs == {}


def test_the_ack_stops_retransmissions_and_a_stale_timer_does_nothing() -> None:
    u = user()
    answer = invite(u)
    ok = messages(answer)[-1]
    assert isinstance(ok, Response)
    acked = u.in_dialog(request("ACK", to_tag=ok.to.tag), LEG, 0.01)
    assert acked.messages == ()
    assert acked.timers == ()
    assert u.awaiting_ack == 0
    assert u.timer(answer.timers[0], 0.05) == Answer(None)


@pytest.mark.parametrize(
    ("profile", "cause", "header"),
    [
        (UserProfile(call=CallSettings(hangup_after=2.0)), "hangup", None),
        (UserProfile(call=CallSettings(media_failure_after=1.5)), "media-failure",
         "ms-client-diagnostics"),
        (UserProfile(call=CallSettings(t1=0.05, t2=0.4, ignore_ack=True)), "no-ack", None),
    ],
)  # fmt: skip
def test_staged_endings_after_the_ack(profile: UserProfile, cause: str, header: str | None) -> None:
    u = user(bob=profile)
    answer = invite(u, to="bob")
    ok = messages(answer)[-1]
    assert isinstance(ok, Response)
    acked = u.in_dialog(request("ACK", to="bob", to_tag=ok.to.tag), LEG, 0.01)
    timers = [*answer.timers, *acked.timers]
    pending = sorted(timers, key=lambda t: t.at)
    bye: Request | None = None
    events = []
    while pending:
        timer = pending.pop(0)
        result = u.timer(timer, timer.at)
        events += result.events
        bye = next((m for m in messages(result) if isinstance(m, Request)), bye)
        pending = sorted([*pending, *result.timers], key=lambda t: t.at)
    assert bye is not None
    assert bye.method == "BYE"
    assert bye.headers.get("User-Agent") == USER_AGENT
    assert bye.uri == "sip:2000@127.0.0.1:40000;transport=tls"  # the caller's Contact
    assert bye.from_.tag == ok.to.tag
    assert bye.to.tag == "abc"
    assert (bye.headers.get("ms-client-diagnostics") is not None) == (header is not None)
    (ended,) = [e for e in events if e.kind == "call-ended"]
    assert ended.fields["cause"] == cause


def test_a_bye_from_the_caller_ends_the_call_and_its_timers() -> None:
    u = user()
    answer = invite(u)
    ok = messages(answer)[-1]
    assert isinstance(ok, Response)
    bye = u.in_dialog(request("BYE", to_tag=ok.to.tag, cseq=2), LEG, 0.02)
    assert statuses(bye) == [200]
    assert u.awaiting_ack == 0
    assert drive(u, answer, until=10.0) == []


def test_a_delayed_offer_gets_the_users_offer_in_the_200() -> None:
    ok = messages(invite(user(), b""))[-1]
    assert isinstance(ok, Response)
    assert ok.status == 200
    assert b" RTP/SAVP " in ok.body
    assert b"a=crypto:2 " in ok.body


def test_an_im_session_and_the_text_of_its_messages() -> None:
    u = user()
    first = u.new_request(
        request(
            "INVITE",
            body=IM,
            headers=(("ms-text-format", "text/plain; charset=UTF-8; ms-body=aGkgdGhlcmU="),),
        ),
        LEG,
        0.0,
    )
    ok = messages(first)[-1]
    assert isinstance(ok, Response)
    assert b"m=message 5060 sip sip:stejanss@skype.lab\r\n" in ok.body
    assert "MESSAGE" in (ok.headers.get("Allow") or "")
    assert first.info is not None
    assert first.info["text"] == "hi there"
    msg = request("MESSAGE", to_tag=ok.to.tag, cseq=2, headers=(("Content-Type", "text/plain"),))
    msg = Request(method=msg.method, uri=msg.uri, headers=msg.headers, body=b"second")
    got = u.in_dialog(msg, LEG, 0.1)
    assert statuses(got) == [200]
    assert [(e.kind, e.fields["text"]) for e in got.events] == [("message", "second")]


# --- out of dialog, other methods --------------------------------------------------------


def test_page_mode_message_and_an_unreadable_type() -> None:
    u = user()
    text = Request(
        method="MESSAGE",
        uri="sip:stejanss@skype.lab",
        headers=request("MESSAGE", headers=(("Content-Type", "text/plain"),)).headers,
        body=b"hello",
    )
    answer = u.new_request(text, LEG, 0.0)
    assert statuses(answer) == [200]
    assert answer.info is not None
    assert answer.info["text"] == "hello"
    image = request("MESSAGE", headers=(("Content-Type", "image/png"),))
    refused = messages(u.new_request(image, LEG, 0.0))[0]
    assert isinstance(refused, Response)
    assert refused.status == 415
    assert refused.headers.get("Accept") is not None


@pytest.mark.parametrize(("diagnostics", "header"), [(False, None), (True, "4005;")])
def test_unknown_user_is_the_pools_404(diagnostics: bool, header: str | None) -> None:
    listed = Directory(settings=SETTINGS, users={"stejanss": UserProfile()}, listed_only=True)
    u = SkypeUser(listed, rng=random.Random(1))
    leg = Leg(local=LEG.local, diagnostics=diagnostics)
    answer = u.new_request(request("INVITE", to="nobody", body=SRTP), leg, 0.0)
    _trying, missing = messages(answer)
    assert isinstance(missing, Response)
    assert missing.status == 404
    assert missing.headers.get("Server") == "RTC/6.0"
    value = missing.headers.get("ms-diagnostics")
    assert (value or "").startswith(header or "")
    assert (value is None) == (header is None)
    assert u.new_request(request("OPTIONS"), leg, 0.0).status == 200


def test_a_busy_user_declines_calls_but_publishes_presence() -> None:
    u = user(bob=UserProfile(answer=486, availability=AVAILABILITIES["busy"]))
    assert statuses(invite(u, to="bob")) == [100, 486]
    sub = u.new_request(request("SUBSCRIBE", to="bob", headers=(("Event", "presence"),)), LEG, 0.0)
    assert statuses(sub) == [200]


# --- presence ----------------------------------------------------------------------------


def subscribe(u: SkypeUser, expires: int = 60) -> tuple[Answer, Response, Request]:
    headers = (("Event", "presence"), ("Accept", "application/pidf+xml"), ("Expires", str(expires)))
    answer = u.new_request(request("SUBSCRIBE", to="alice", headers=headers), LEG, 0.0)
    ok, notify = messages(answer)
    assert isinstance(ok, Response)
    assert isinstance(notify, Request)
    return answer, ok, notify


def test_subscribe_gets_200_and_a_pidf_notify_from_the_pool() -> None:
    u = user(alice=UserProfile(availability=AVAILABILITIES["busy"]))
    answer, ok, notify = subscribe(u)
    assert ok.status == 200
    assert ok.headers.get("Expires") == "60"
    assert ok.headers.get("Server") == "RTC/6.0"
    assert notify.headers.get("Server") is None
    assert notify.headers.get("User-Agent") == "RTC/6.0"
    assert notify.headers.get("Subscription-State") == "active;expires=60"
    assert notify.uri == "sip:2000@127.0.0.1:40000;transport=tls"  # the subscriber's Contact
    assert b"<note>Busy</note>" in notify.body
    assert b"<rpid:busy/>" in notify.body
    assert notify.from_.tag == ok.to.tag
    assert [e.kind for e in answer.events] == ["notify"]
    assert [t.kind for t in answer.timers] == ["subscription"]


def test_unsubscribe_terminates_and_the_dialog_is_gone() -> None:
    u = user()
    _, ok, _ = subscribe(u)
    headers = (("Event", "presence"), ("Expires", "0"))
    end = u.in_dialog(request("SUBSCRIBE", to="alice", to_tag=ok.to.tag, cseq=2,
                              headers=headers), LEG, 1.0)  # fmt: skip
    ok2, notify = messages(end)
    assert isinstance(ok2, Response)
    assert ok2.status == 200
    assert isinstance(notify, Request)
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    again = u.in_dialog(request("SUBSCRIBE", to="alice", to_tag=ok.to.tag, cseq=3,
                                headers=headers), LEG, 2.0)  # fmt: skip
    assert statuses(again) == [481]


def test_expiry_sends_the_terminating_notify_at_its_deadline() -> None:
    u = user()
    answer, _, _ = subscribe(u, expires=5)
    (timer,) = answer.timers
    assert timer.at == 5.0
    assert u.timer(Timer(timer.kind, timer.key, 4.0), 4.0) == Answer(None)  # not its time
    expired = u.timer(timer, 5.0)
    (notify,) = messages(expired)
    assert isinstance(notify, Request)
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert u.dialogs == {}


def test_a_481_to_a_notify_ends_the_subscription() -> None:
    u = user()
    _, _ok, notify = subscribe(u)
    failed = parse_message(
        b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
        + b"".join(
            f"{k}: {v}\r\n".encode()
            for k, v in notify.headers
            if k in ("Via", "From", "To", "Call-ID", "CSeq")
        )
        + b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(failed, Response)
    assert u.response(failed, 1.0) == Answer(None)
    assert u.dialogs == {}


def test_cancel_while_ringing_gets_200_and_487() -> None:
    u = SkypeUser(directory(), rng=random.Random(3), ring_seconds=1.0)
    answer = invite(u)
    assert statuses(answer) == [100, 180]
    assert answer.status is None
    # A CANCEL matches its INVITE by Call-ID and top Via branch (RFC 3261 §9.2).
    got = u.cancel(request("INVITE"), LEG)
    assert statuses(got) == [200, 487]
    (ring,) = answer.timers
    assert u.timer(ring, 1.0) == Answer(None)  # cancelled: no 200


# --- one decision for serve and check -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE", "INFO"]),
    who=st.sampled_from(["stejanss", "bob", "carol", "nobody"]),
    body=st.sampled_from([SRTP, PLAIN, IM, b""]),
    listed=st.booleans(),
)
def test_answer_status_is_what_the_user_answers(
    method: str, who: str, body: bytes, listed: bool
) -> None:
    """fedsim check predicts with answer_status; it must be the status the user sends."""
    users = {
        "stejanss": UserProfile(media=MediaSettings(encryption="supported")),
        "bob": UserProfile(answer=486),
        "carol": UserProfile(media=MediaSettings(codecs=("G7221",))),
    }
    book = Directory(settings=SETTINGS, users=users, listed_only=listed)
    req = request(method, to=who, body=body if method == "INVITE" else b"")
    answer = SkypeUser(book, rng=random.Random(0)).new_request(req, LEG, 0.0)
    assert answer.status == answer_status(req, book)
