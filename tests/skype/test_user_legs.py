"""The one emulated Skype user on its two legs: requests in, messages out (no sockets, no clock).

INVITE (ringing or not), CANCEL while ringing, ACK, BYE and re-INVITE in the
dialog, 481 outside one, OPTIONS, SUBSCRIBE and its NOTIFY, a busy user and a
domain that is not homed here: each answered the same way for both directions,
with the leg's envelope (the federation port's Via parameters, the clients
port's header order). The media, presence, IM and post-200 behaviour are in
test_user.py.
"""

from __future__ import annotations

import random

import pytest

from simulator.policy import EdgeSettings
from simulator.sip import Request, Response, parse_message
from simulator.skype.agent import USER_AGENT
from simulator.skype.user import Answer, Directory, Leg, SkypeUser, UserProfile

SETTINGS = EdgeSettings(fqdn="sip.skype.lab", domains=("skype.lab",))
FEDERATION = Leg(
    local=("10.0.0.5", 5061),
    via_params=(
        ("received", "10.48.36.47"),
        ("ms-received-port", "25002"),
        ("ms-received-cid", "100"),
    ),
)
CLIENTS = Leg(local=("10.0.0.5", 5062), copy_order=("From", "To", "Call-ID", "CSeq", "Via"))


def request(
    method: str,
    *,
    to: str = "sip:alice@skype.lab",
    call: str = "c1",
    branch: str = "z9hG4bKb1",
    to_tag: str | None = None,
    cseq: int = 1,
    extra: str = "",
    body: bytes = b"",
) -> Request:
    tag = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} {to} SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch={branch}\r\n"
        f"From: <sip:2000@steven.lab>;tag=f1\r\nTo: <{to}>{tag}\r\nCall-ID: {call}\r\n"
        f"CSeq: {cseq} {method}\r\nContact: <sip:2000@10.48.36.47:5061;transport=tls>\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    message = parse_message(head.encode() + body)
    assert isinstance(message, Request)
    return message


def responses(answer: Answer) -> list[Response]:
    out = []
    for wire in answer.messages:
        message = parse_message(wire)
        if isinstance(message, Response):
            out.append(message)
    return out


def user(*, ring: float = 0.0) -> SkypeUser:
    book = Directory(settings=SETTINGS, users={"bob": UserProfile(answer=486)})
    return SkypeUser(book, rng=random.Random(7), ring_seconds=ring)


@pytest.mark.parametrize("leg", [FEDERATION, CLIENTS], ids=["federation", "clients"])
def test_invite_is_ringing_then_ok_with_sdp_and_a_dialog(leg: Leg) -> None:
    alice = user()
    answer = alice.new_request(request("INVITE"), leg, 0.0)  # no SDP: the user offers
    assert answer.status == 200
    assert [t.kind for t in answer.timers] == ["call"]  # the 200 waits for its ACK
    trying, ringing, ok = responses(answer)
    assert (trying.status, ringing.status, ok.status) == (100, 180, 200)
    assert ringing.to.tag == ok.to.tag
    assert ok.headers.get("Content-Type") == "application/sdp"
    assert ok.body.startswith(b"v=0")
    assert "10.0.0.5:" in (ok.headers.get("Contact") or "")
    if leg is FEDERATION:
        assert ok.vias[0].received == "10.48.36.47"
        assert ok.vias[0].param("ms-received-cid") == "100"
    else:
        assert [n for n, _ in ok.headers.pairs][:5] == ["From", "To", "Call-ID", "CSeq", "Via"]
    # In the dialog: BYE ends it, and a second BYE finds none.
    bye = request("BYE", to_tag=ok.to.tag, cseq=2, branch="z9hG4bKbye")
    assert responses(alice.in_dialog(bye, leg, 1.0))[0].status == 200
    assert responses(alice.in_dialog(bye, leg, 1.0))[0].status == 481


def test_a_ringing_invite_answers_when_its_timer_fires() -> None:
    alice = user(ring=5.0)
    invite = request("INVITE")
    answer = alice.new_request(invite, FEDERATION, 10.0)
    assert answer.status is None  # the final answer comes later
    (ring,) = answer.timers
    assert (ring.kind, ring.at) == ("ring", 15.0)
    assert [r.status for r in responses(answer)] == [100, 180]
    later = alice.timer(ring, 15.0)
    assert [r.status for r in responses(later)] == [200]
    assert alice.timer(ring, 15.0).messages == ()  # once only


def test_cancel_while_ringing_is_200_and_487_and_the_timer_then_does_nothing() -> None:
    alice = user(ring=5.0)
    invite = request("INVITE")
    answer = alice.new_request(invite, FEDERATION, 0.0)
    (ring,) = answer.timers
    cancel = request("CANCEL", branch="z9hG4bKb1")  # same branch as the INVITE (§9.1)
    cancelled = responses(alice.cancel(cancel, FEDERATION))
    assert [(r.status, r.cseq[1]) for r in cancelled] == [(200, "CANCEL"), (487, "INVITE")]
    assert alice.timer(ring, 5.0).messages == ()


def test_cancel_of_nothing_is_481() -> None:
    assert user().cancel(request("CANCEL", branch="z9hG4bKnone"), FEDERATION).status == 481


def test_ack_is_never_answered() -> None:
    assert user().in_dialog(request("ACK", to_tag="T"), FEDERATION, 0.0).messages == ()


def test_reinvite_in_the_dialog_gets_a_new_sdp_answer() -> None:
    alice = user()
    ok = responses(alice.new_request(request("INVITE"), FEDERATION, 0.0))[-1]
    again = alice.in_dialog(request("INVITE", to_tag=ok.to.tag, cseq=2), FEDERATION, 0.1)
    [reply] = responses(again)
    assert reply.status == 200
    assert reply.body.startswith(b"v=0")


@pytest.mark.parametrize(
    ("to", "method", "status", "sender"),
    [
        ("sip:bob@skype.lab", "INVITE", 486, "User-Agent"),  # the lab's busy user declines
        ("sip:bob@skype.lab", "OPTIONS", 200, "User-Agent"),  # capabilities: busy or not
        ("sip:alice@other.lab", "INVITE", 404, "Server"),  # not a domain homed here
        ("sip:alice@skype.lab", "REFER", 501, "User-Agent"),  # not a method it implements
    ],
)
def test_the_users_statuses(to: str, method: str, status: int, sender: str) -> None:
    answer = user().new_request(request(method, to=to), CLIENTS, 0.0)
    assert answer.status == status
    final = responses(answer)[-1]
    assert final.status == status
    # The user's own answers name a Skype client; the pool's and the Edge's a server.
    expected = USER_AGENT if sender == "User-Agent" else "RTC/6.0"
    assert final.headers.get(sender) == expected
    if status == 501:
        assert "INVITE" in (final.headers.get("Allow") or "")


def test_subscribe_is_200_then_a_notify_in_the_new_dialog() -> None:
    alice = user()
    answer = alice.new_request(
        request("SUBSCRIBE", extra="Event: presence\r\nExpires: 60\r\n"), CLIENTS, 0.0
    )
    assert answer.status == 200
    accepted, notify = (parse_message(m) for m in answer.messages)
    assert isinstance(accepted, Response)
    assert isinstance(notify, Request)
    assert accepted.status == 200
    assert notify.method == "NOTIFY"
    assert notify.uri == "sip:2000@10.48.36.47:5061;transport=tls"  # the subscriber's Contact
    assert notify.from_.tag == accepted.to.tag
    assert notify.headers.get("Subscription-State") == "active;expires=60"
    # The subscription is a dialog: an un-SUBSCRIBE inside it is answered.
    unsubscribe = request(
        "SUBSCRIBE", to_tag=accepted.to.tag, cseq=2, extra="Event: presence\r\nExpires: 0\r\n"
    )
    assert alice.in_dialog(unsubscribe, CLIENTS, 1.0).status == 200


def test_the_same_user_answers_both_directions_alike() -> None:
    # One user for both ports (issue 13): the same request gets the same statuses.
    for method in ("INVITE", "OPTIONS", "MESSAGE", "SUBSCRIBE", "INFO"):
        a = user().new_request(request(method), FEDERATION, 0.0)
        b = user().new_request(request(method), CLIENTS, 0.0)
        assert (a.status, [r.status for r in responses(a)]) == (
            b.status,
            [r.status for r in responses(b)],
        )
