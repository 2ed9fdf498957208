"""Presence: the lab vocabulary, the documents, format negotiation, RFC 6665 transitions."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from simulator.skype.presence import (
    AVAILABILITIES,
    CATEGORIES,
    PIDF,
    TRANSITIONS,
    Change,
    Effect,
    Expire,
    Input,
    NotifyFailed,
    PresenceSettings,
    Presentity,
    State,
    SubscribeRequest,
    Subscription,
    availability,
    categories_document,
    negotiate_format,
    pidf_document,
    step,
)

ALICE = Presentity(
    uri="sip:alice@skype.lab", availability=availability("busy"), display_name="Alice"
)
NS = {
    "p": "urn:ietf:params:xml:ns:pidf",
    "dm": "urn:ietf:params:xml:ns:pidf:data-model",
    "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
    "ci": "urn:ietf:params:xml:ns:pidf:cipid",
    "c": "http://schemas.microsoft.com/2006/09/sip/categories",
    "s": "http://schemas.microsoft.com/2006/09/sip/state",
}

VOCABULARY = [
    ("online", 3500, "open", None),
    ("available", 3500, "open", None),
    ("busy", 6500, "open", "busy"),
    ("dnd", 9500, "open", "busy"),
    ("do-not-disturb", 9500, "open", "busy"),
    ("be-right-back", 12500, "open", "away"),
    ("BRB", 12500, "open", "away"),
    ("away", 15500, "open", "away"),
    (" offline ", 18500, "closed", None),
]


@pytest.mark.parametrize(("word", "number", "basic", "activity"), VOCABULARY)
def test_vocabulary_maps_to_microsoft_numbers(
    word: str, number: int, basic: str, activity: str | None
) -> None:
    """Lab words (and aliases, any case) give Microsoft's availability numbers (V)."""
    state = availability(word)
    assert (state.number, state.basic, state.activity) == (number, basic, activity)


def test_unknown_word_lists_the_vocabulary() -> None:
    """A typo in the lab is an error that names every word."""
    with pytest.raises(ValueError, match="online, busy, dnd"):
        availability("lunch")
    assert set(AVAILABILITIES) >= {"online", "busy", "dnd", "be-right-back", "away", "offline"}


@pytest.mark.parametrize("word", ["online", "busy", "away", "offline"])
def test_pidf_document_is_one_tuple_with_activity_and_name(word: str) -> None:
    """RFC 3863 document: entity, one tuple, basic status, note; RFC 4480 activity."""
    state = availability(word)
    root = ET.fromstring(pidf_document(Presentity(uri="sip:a&b@skype.lab", availability=state)))
    assert root.tag == f"{{{NS['p']}}}presence"
    assert root.get("entity") == "sip:a&b@skype.lab"
    (tuple_,) = root.findall("p:tuple", NS)
    assert tuple_.findtext("p:status/p:basic", namespaces=NS) == state.basic
    assert tuple_.findtext("p:note", namespaces=NS) == state.note
    activities = root.find("dm:person/rpid:activities", NS)
    if state.activity is None:
        assert activities is None
    else:
        assert activities is not None
        assert [child.tag for child in activities] == [f"{{{NS['rpid']}}}{state.activity}"]


def test_pidf_display_name_is_cipid() -> None:
    """RFC 4482 display-name, escaped."""
    doc = pidf_document(
        Presentity(uri="sip:a@b", availability=ALICE.availability, display_name="A<B")
    )
    assert ET.fromstring(doc).findtext("dm:person/ci:display-name", namespaces=NS) == "A<B"


def test_categories_document_carries_the_aggregate_availability() -> None:
    """Enhanced presence: one state category, aggregateState, the number (reference 3.7)."""
    root = ET.fromstring(categories_document(ALICE))
    assert (root.tag, root.get("uri")) == (f"{{{NS['c']}}}categories", "sip:alice@skype.lab")
    state = root.find("c:category/s:state", NS)
    assert state is not None
    assert state.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "aggregateState"
    assert state.findtext("s:availability", namespaces=NS) == "6500"


NEGOTIATION = [
    (None, PIDF),
    ("application/pidf+xml", PIDF),
    (
        "application/msrtc-event-categories+xml, text/xml+msrtc.pidf, application/xpidf+xml, "
        "application/pidf+xml, application/rlmi+xml, multipart/related",
        CATEGORIES,
    ),
    ("application/pidf+xml, application/msrtc-event-categories+xml", CATEGORIES),
    ("application/xpidf+xml, text/xml+msrtc.pidf, application/pidf+xml", PIDF),
    ("Application/PIDF+XML;q=0.5", PIDF),
    ("*/*", PIDF),
    ("text/xml+msrtc.pidf", None),
    ("application/xpidf+xml", None),
    ("", None),
]


@pytest.mark.parametrize(("accept", "chosen"), NEGOTIATION)
def test_negotiate_format_follows_ms_pres_order(accept: str | None, chosen: str | None) -> None:
    """Server order wins (categories, MSRTC, PIDF); MSRTC-only is 406; no Accept is PIDF."""
    assert negotiate_format(accept) == chosen


def test_transition_table_is_complete() -> None:
    """Every (state, input) pair has exactly one transition: no guessing in step()."""
    assert set(TRANSITIONS) == {(s, i) for s in State for i in Input}


SUB = SubscribeRequest(event="presence", accept="application/pidf+xml", expires=600)
UNSUB = SubscribeRequest(event="presence", accept="application/pidf+xml", expires=0)
ACTIVE = Subscription(state=State.ACTIVE, content_type=PIDF, expires_at=700.0, documents=1)
DONE = Subscription(state=State.TERMINATED, content_type=PIDF, documents=2)

# (start, input, now) -> (state, response status, Subscription-State of the NOTIFY, deadline)
TRANSITION_CASES = [
    (Subscription(), SUB, 100.0, State.ACTIVE, 200, "active;expires=600", 700.0),
    (Subscription(), UNSUB, 100.0, State.TERMINATED, 200, "terminated;reason=timeout", None),
    (ACTIVE, SUB, 400.0, State.ACTIVE, 200, "active;expires=600", 1000.0),
    (ACTIVE, UNSUB, 400.0, State.TERMINATED, 200, "terminated;reason=timeout", None),
    (ACTIVE, Expire(), 700.0, State.TERMINATED, None, "terminated;reason=timeout", None),
    (ACTIVE, Expire(), 699.0, State.ACTIVE, None, None, 700.0),
    (
        ACTIVE,
        Change(availability=availability("away")),
        400.5,
        State.ACTIVE,
        None,
        "active;expires=299",
        700.0,
    ),
    (ACTIVE, NotifyFailed(status=481), 400.0, State.TERMINATED, None, None, None),
    (ACTIVE, NotifyFailed(status=500), 400.0, State.ACTIVE, None, None, 700.0),
    (DONE, SUB, 400.0, State.TERMINATED, 481, None, None),
    (DONE, UNSUB, 400.0, State.TERMINATED, 481, None, None),
    (DONE, Expire(), 900.0, State.TERMINATED, None, None, None),
    (Subscription(), Expire(), 900.0, State.IDLE, None, None, None),
    (Subscription(), Change(availability=availability("away")), 1.0, State.IDLE, None, None, None),
]


@pytest.mark.parametrize(
    ("start", "event", "now", "state", "status", "notify_state", "deadline"), TRANSITION_CASES
)
def test_rfc6665_transitions(
    start: Subscription,
    event: SubscribeRequest | Expire | Change | NotifyFailed,
    now: float,
    state: State,
    status: int | None,
    notify_state: str | None,
    deadline: float | None,
) -> None:
    """Initial, refresh, un-SUBSCRIBE, expiry, change, NOTIFY failure, stale timers, 481."""
    result = step(start, event, now, presentity=ALICE)
    assert result.subscription.state is state
    assert (result.response.status if result.response else None) == status
    assert (result.notify.subscription_state if result.notify else None) == notify_state
    assert result.deadline == deadline


def test_accept_response_and_first_notify() -> None:
    """200 with Expires; an immediate NOTIFY with Event, Subscription-State, the PIDF body."""
    result = step(Subscription(), SUB, 0.0, presentity=ALICE)
    assert result.response is not None
    assert (result.response.status, result.response.headers) == (200, (("Expires", "600"),))
    assert result.notify is not None
    assert result.notify.headers == (
        ("Event", "presence"),
        ("Subscription-State", "active;expires=600"),
        ("Content-Type", PIDF),
    )
    assert result.notify.body == pidf_document(ALICE)
    assert result.effect is Effect.ACCEPT
    assert result.subscription.documents == 1


def test_change_notifies_the_new_state() -> None:
    """A Change input sends the new availability in the negotiated format."""
    away = availability("away")
    result = step(ACTIVE, Change(availability=away), 10.0, presentity=ALICE)
    assert result.notify is not None
    assert b"<rpid:away/>" in result.notify.body
    assert result.subscription.documents == 2


def test_refresh_keeps_the_negotiated_format() -> None:
    """[MS-PRES] §1.3.3: refreshes keep the first SUBSCRIBE's format, whatever they Accept."""
    first = step(
        Subscription(), SubscribeRequest(event="presence", accept=CATEGORIES), 0.0, presentity=ALICE
    )
    again = step(first.subscription, SUB, 10.0, presentity=ALICE)
    assert again.notify is not None
    assert again.notify.content_type == CATEGORIES


REFUSALS = [
    (SubscribeRequest(event="dialog"), 489, (("Allow-Events", "presence"),)),
    (SubscribeRequest(event=None), 489, (("Allow-Events", "presence"),)),
    (
        SubscribeRequest(event="presence", accept="text/xml+msrtc.pidf"),
        406,
        (("Accept", f"{CATEGORIES}, {PIDF}"),),
    ),
    (SubscribeRequest(event="presence", expires=30), 423, (("Min-Expires", "60"),)),
    (SubscribeRequest(event="presence", expires=-1), 400, ()),
]


@pytest.mark.parametrize(("request_", "status", "headers"), REFUSALS)
def test_initial_subscribe_refusals(
    request_: SubscribeRequest, status: int, headers: tuple[tuple[str, str], ...]
) -> None:
    """Bad Event 489, nothing acceptable 406, too brief 423: no subscription, no NOTIFY."""
    result = step(
        Subscription(), request_, 0.0, presentity=ALICE, settings=PresenceSettings(min_expires=60)
    )
    assert result.response is not None
    assert (result.response.status, result.response.headers) == (status, headers)
    assert result.notify is None
    assert result.subscription == Subscription()
    assert result.deadline is None
    assert result.effect is Effect.REFUSE


@pytest.mark.parametrize(
    "request_", [SubscribeRequest(event="dialog"), SubscribeRequest(event="presence", expires=-5)]
)
def test_bad_refresh_is_refused_and_keeps_the_subscription(request_: SubscribeRequest) -> None:
    """A refresh with a wrong Event or a negative Expires is refused; the subscription stays."""
    result = step(ACTIVE, request_, 10.0, presentity=ALICE)
    assert result.response is not None
    assert result.response.status in (400, 489)
    assert (result.subscription, result.notify, result.effect) == (ACTIVE, None, Effect.REFUSE)


@pytest.mark.parametrize(
    ("expires", "granted"), [(None, 3600), (100, 100), (99999, 3600), (3600, 3600)]
)
def test_granted_expires(expires: int | None, granted: int) -> None:
    """No Expires: the default; more than the maximum: cut to it (RFC 6665 §4.2.1.1)."""
    request = SubscribeRequest(event="presence;id=1", expires=expires)
    result = step(Subscription(), request, 0.0, presentity=ALICE)
    assert result.response is not None
    assert result.response.headers == (("Expires", str(granted)),)
    assert result.deadline == granted


def test_piggyback_puts_the_first_document_in_the_200() -> None:
    """Supported: ms-piggyback-first-notify: the document rides in the 200 ([MS-PRES] 4.11)."""
    request = SubscribeRequest(
        event="presence", accept=PIDF, expires=600, supported=("ms-piggyback-first-notify",)
    )
    result = step(Subscription(), request, 0.0, presentity=ALICE)
    assert result.notify is None
    assert result.response is not None
    assert result.response.body == pidf_document(ALICE)
    assert result.response.headers == (
        ("Expires", "600"),
        ("Content-Type", PIDF),
        ("Event", "presence"),
        ("subscription-state", "active;expires=600"),
        ("ms-piggyback-cseq", "1"),
        ("Supported", "ms-piggyback-first-notify"),
    )


def test_settings_refuse_inconsistent_timing() -> None:
    """min above max, or a zero default, is a configuration error."""
    with pytest.raises(ValueError, match="min_expires"):
        PresenceSettings(min_expires=10, max_expires=5)
    with pytest.raises(ValueError, match="default_expires"):
        PresenceSettings(default_expires=0)


@pytest.mark.parametrize(
    "fields",
    [
        {"state": State.ACTIVE},
        {"state": State.ACTIVE, "expires_at": 5.0},
        {"state": State.IDLE, "expires_at": 5.0},
        {"state": State.TERMINATED, "expires_at": 5.0, "content_type": PIDF},
    ],
)
def test_subscription_refuses_impossible_states(fields: dict[str, object]) -> None:
    """ACTIVE always has a format and an expiry; IDLE and TERMINATED never have an expiry."""
    with pytest.raises(ValueError, match="ACTIVE"):
        Subscription(**fields)  # type: ignore[arg-type]
