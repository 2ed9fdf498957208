"""The Skype user's presence: documents and an RFC 6665 subscription machine.

Theory (docs/reference/skype-user.md §3). A Skype for Business server answers a
presence SUBSCRIBE in the first of three formats the ``Accept`` header lists,
in this order: enhanced presence (``application/msrtc-event-categories+xml``),
MSRTC (``text/xml+msrtc.pidf``), PIDF (``application/pidf+xml``) ([MS-PRES]
§1.3.3). A federated Expressway / IM and Presence asks for PIDF. fedsim writes
PIDF (RFC 3863, one tuple, RFC 4480 activity, RFC 4482 display-name: the
subset [MS-PRES] names) and a minimal enhanced-presence document; it does not
write MSRTC, so a subscriber that accepts only MSRTC gets 406 (inferred).

Availability is the lab's word (``online``, ``busy``, ``dnd``, ``be-right-back``,
``away``, ``offline``) mapped to Microsoft's availability numbers (V) and to a
PIDF basic status and RPID activity (fedsim's choice, inferred).

The subscription follows RFC 6665 as a table (:data:`TRANSITIONS`) with one
owner, :func:`step`: ``(subscription, input, now) -> (subscription, response,
NOTIFY, next deadline)``. Nothing here reads a clock or builds a SIP message;
the Edge turns the outputs into a response and an in-dialog NOTIFY.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from simulator.diagnostics.catalogue import Fidelity

__all__ = [
    "AVAILABILITIES",
    "CATEGORIES",
    "MSRTC",
    "PIDF",
    "SUPPORTED_FORMATS",
    "TRANSITIONS",
    "Availability",
    "Change",
    "Effect",
    "Expire",
    "Input",
    "Notify",
    "NotifyFailed",
    "PresenceSettings",
    "PresenceStep",
    "Presentity",
    "State",
    "SubscribeRequest",
    "SubscribeResponse",
    "Subscription",
    "availability",
    "categories_document",
    "negotiate_format",
    "pidf_document",
    "presence_document",
    "read_availability",
    "step",
]

PIDF = "application/pidf+xml"
CATEGORIES = "application/msrtc-event-categories+xml"
MSRTC = "text/xml+msrtc.pidf"
#: [MS-PRES] §1.3.3 order of preference, restricted to what fedsim can write.
SUPPORTED_FORMATS: tuple[str, ...] = (CATEGORIES, PIDF)
_PREFERENCE: tuple[str, ...] = (CATEGORIES, MSRTC, PIDF)

#: The subscriber's NOTIFY failures that end a subscription (RFC 6665 §4.2.2).
_FATAL_NOTIFY_STATUSES = frozenset({408, 481})


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    """One presence state of the lab vocabulary.

    Attributes:
        name: the lab's word (``busy``).
        number: Microsoft's availability number (V, reference 3.6).
        basic: the PIDF basic status (``open``/``closed``).
        activity: the RFC 4480 activity element, or None.
        note: the Lync status word (``Busy``).
    """

    name: str
    number: int
    basic: Literal["open", "closed"]
    activity: str | None
    note: str


_STATES = (
    Availability(name="online", number=3500, basic="open", activity=None, note="Available"),
    Availability(name="busy", number=6500, basic="open", activity="busy", note="Busy"),
    Availability(name="dnd", number=9500, basic="open", activity="busy", note="Do Not Disturb"),
    Availability(
        name="be-right-back", number=12500, basic="open", activity="away", note="Be Right Back"
    ),
    Availability(name="away", number=15500, basic="open", activity="away", note="Away"),
    Availability(name="offline", number=18500, basic="closed", activity=None, note="Offline"),
)
_ALIASES = {"available": "online", "do-not-disturb": "dnd", "brb": "be-right-back"}

#: Every lab word (aliases included) and its state (reference 3.10).
AVAILABILITIES: Mapping[str, Availability] = MappingProxyType(
    {
        **{a.name: a for a in _STATES},
        **{alias: next(a for a in _STATES if a.name == name) for alias, name in _ALIASES.items()},
    }
)


def availability(name: str) -> Availability:
    """The state a lab names (``users = { alice = { presence = "busy" } }``).

    Raises:
        ValueError: not a word of the vocabulary; the message lists them.
    """
    found = AVAILABILITIES.get(name.strip().lower())
    if found is None:
        raise ValueError(f"presence {name!r} is not one of {', '.join(AVAILABILITIES)}")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentity:
    """Whose presence is published: the user's URI, state and friendly name."""

    uri: str
    availability: Availability
    display_name: str | None = None


def pidf_document(presentity: Presentity) -> bytes:
    """An RFC 3863 PIDF document with one tuple (reference 3.9, inferred).

    The activity (RFC 4480) sits in an RFC 4479 ``dm:person``; the display name
    is CIPID's (RFC 4482). Identifiers are constant, so a document only changes
    when the state does.
    """
    state = presentity.availability
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
        ' xmlns:ci="urn:ietf:params:xml:ns:pidf:cipid"'
        f" entity={quoteattr(presentity.uri)}>",
        '<tuple id="t0">',
        f"<status><basic>{state.basic}</basic></status>",
        f"<contact>{escape(presentity.uri)}</contact>",
        f"<note>{escape(state.note)}</note>",
        "</tuple>",
        '<dm:person id="p0">',
    ]
    if state.activity is not None:
        lines.append(f"<rpid:activities><rpid:{state.activity}/></rpid:activities>")
    if presentity.display_name:
        lines.append(f"<ci:display-name>{escape(presentity.display_name)}</ci:display-name>")
    lines += ["</dm:person>", "</presence>"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def categories_document(presentity: Presentity) -> bytes:
    """An enhanced-presence ``categories`` document with the aggregated state.

    The shape is Microsoft's remote-subscription example (reference 3.7: one
    ``state`` category, ``aggregateState``, the availability number); which
    other categories a real server adds for a federated subscriber is not
    modelled (inferred).
    """
    number = presentity.availability.number
    lines = [
        '<categories xmlns="http://schemas.microsoft.com/2006/09/sip/categories"'
        f" uri={quoteattr(presentity.uri)}>",
        '<category name="state" instance="1">',
        '<state xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns="http://schemas.microsoft.com/2006/09/sip/state" xsi:type="aggregateState">',
        f"<availability>{number}</availability>",
        "</state>",
        "</category>",
        "</categories>",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def presence_document(content_type: str, presentity: Presentity) -> bytes:
    """The document of a negotiated format (one of :data:`SUPPORTED_FORMATS`).

    Raises:
        ValueError: a format fedsim does not write.
    """
    if content_type == PIDF:
        return pidf_document(presentity)
    if content_type == CATEGORIES:
        return categories_document(presentity)
    raise ValueError(f"fedsim writes no {content_type} documents")


def negotiate_format(accept: str | None) -> str | None:
    """Pick the document format for a SUBSCRIBE's ``Accept`` ([MS-PRES] §1.3.3).

    No ``Accept`` means the presence package's default, PIDF (RFC 3856). The
    server's order of preference wins over the subscriber's order; a format
    fedsim cannot write (MSRTC) is skipped.

    Returns:
        The Content-Type to send, or None when nothing acceptable is left (406).
    """
    if accept is None:
        return PIDF
    offered = {item.split(";", 1)[0].strip().lower() for item in accept.split(",")}
    if offered & {"*/*", "application/*"}:
        offered.add(PIDF)
    for content_type in _PREFERENCE:
        if content_type in offered and content_type in SUPPORTED_FORMATS:
            return content_type
    return None


class State(enum.Enum):
    """Where a subscription (one SUBSCRIBE dialog) stands."""

    #: No SUBSCRIBE accepted yet.
    IDLE = "idle"
    #: Accepted; NOTIFYs follow every change until expiry or un-SUBSCRIBE.
    ACTIVE = "active"
    #: Ended; the dialog only answers 481 from now on.
    TERMINATED = "terminated"


class Input(enum.Enum):
    """What can happen to a subscription."""

    #: A SUBSCRIBE with Expires > 0 (or none): initial or refresh.
    SUBSCRIBE = "subscribe"
    #: A SUBSCRIBE with Expires: 0: un-subscribe, or a one-off fetch (RFC 6665 §4.4.3).
    UNSUBSCRIBE = "unsubscribe"
    #: The deadline returned by the last step has passed.
    EXPIRE = "expire"
    #: The user's availability changed.
    CHANGE = "change"
    #: The subscriber answered a NOTIFY with a failure.
    NOTIFY_FAILED = "notify-failed"


class Effect(enum.Enum):
    """What a transition does (see :data:`TRANSITIONS`)."""

    ACCEPT = "accept"  #: 200 + NOTIFY active (the first document)
    REFRESH = "refresh"  #: 200 + NOTIFY active with the full state
    POLL = "poll"  #: 200 + NOTIFY terminated;reason=timeout (fetch)
    UNSUBSCRIBE = "unsubscribe"  #: 200 + NOTIFY terminated;reason=timeout
    TIMEOUT = "timeout"  #: NOTIFY terminated;reason=timeout
    NOTIFY = "notify"  #: NOTIFY active with the new state
    DROP = "drop"  #: nothing: the subscriber is gone
    GONE = "gone"  #: 481 Call/Transaction Does Not Exist
    IGNORE = "ignore"  #: nothing happens
    REFUSE = "refuse"  #: not in the table: a SUBSCRIBE failed a check (489, 406, 423, 400)


#: RFC 6665 as a table: (state, input) -> (next state, effect). Complete: every
#: pair is here (tests check it), so a step never has to guess.
TRANSITIONS: Mapping[tuple[State, Input], tuple[State, Effect]] = MappingProxyType(
    {
        (State.IDLE, Input.SUBSCRIBE): (State.ACTIVE, Effect.ACCEPT),
        (State.IDLE, Input.UNSUBSCRIBE): (State.TERMINATED, Effect.POLL),
        (State.IDLE, Input.EXPIRE): (State.IDLE, Effect.IGNORE),
        (State.IDLE, Input.CHANGE): (State.IDLE, Effect.IGNORE),
        (State.IDLE, Input.NOTIFY_FAILED): (State.IDLE, Effect.IGNORE),
        (State.ACTIVE, Input.SUBSCRIBE): (State.ACTIVE, Effect.REFRESH),
        (State.ACTIVE, Input.UNSUBSCRIBE): (State.TERMINATED, Effect.UNSUBSCRIBE),
        (State.ACTIVE, Input.EXPIRE): (State.TERMINATED, Effect.TIMEOUT),
        (State.ACTIVE, Input.CHANGE): (State.ACTIVE, Effect.NOTIFY),
        (State.ACTIVE, Input.NOTIFY_FAILED): (State.TERMINATED, Effect.DROP),
        (State.TERMINATED, Input.SUBSCRIBE): (State.TERMINATED, Effect.GONE),
        (State.TERMINATED, Input.UNSUBSCRIBE): (State.TERMINATED, Effect.GONE),
        (State.TERMINATED, Input.EXPIRE): (State.TERMINATED, Effect.IGNORE),
        (State.TERMINATED, Input.CHANGE): (State.TERMINATED, Effect.IGNORE),
        (State.TERMINATED, Input.NOTIFY_FAILED): (State.TERMINATED, Effect.IGNORE),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceSettings:
    """Subscription timing (seconds), so a scenario can shorten them.

    Attributes:
        default_expires: granted when the SUBSCRIBE has no Expires (RFC 3856: 3600).
        max_expires: the most granted (a longer request is cut to it).
        min_expires: a shorter non-zero request gets 423 with Min-Expires (0: never).
    """

    default_expires: int = 3600
    max_expires: int = 3600
    min_expires: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_expires <= self.max_expires or self.default_expires <= 0:
            raise ValueError(
                "presence timing needs 0 <= min_expires <= max_expires and default_expires > 0"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """One subscription's state (the Edge keeps one per SUBSCRIBE dialog).

    Attributes:
        state: where it stands.
        content_type: the negotiated document format (set when accepted).
        expires_at: when it ends unless refreshed (ACTIVE only).
        documents: how many documents were sent so far (NOTIFYs and piggybacks).
    """

    state: State = State.IDLE
    content_type: str | None = None
    expires_at: float | None = None
    documents: int = 0

    def __post_init__(self) -> None:
        active = self.state is State.ACTIVE
        if active != (self.expires_at is not None) or (active and self.content_type is None):
            raise ValueError("an ACTIVE subscription has a format and an expiry; no other has one")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRequest:
    """The facts of a SUBSCRIBE the machine needs (the Edge reads them off the request).

    Attributes:
        event: the Event header value (``presence``), None when absent.
        accept: the Accept header values joined with ", ", None when absent.
        expires: the Expires value, None when absent.
        supported: the Supported option tags (``ms-piggyback-first-notify``...).
    """

    event: str | None
    accept: str | None = None
    expires: int | None = None
    supported: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Expire:
    """The deadline passed (the Edge's timer fired)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """The user's availability is now ``availability``."""

    availability: Availability


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyFailed:
    """The subscriber answered a NOTIFY with ``status`` (>= 300)."""

    status: int


PresenceInput = SubscribeRequest | Expire | Change | NotifyFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeResponse:
    """The final response to a SUBSCRIBE.

    Attributes:
        status / reason: the status line.
        headers: header lines to add (Expires, Allow-Events, Accept, Min-Expires,
            or the piggybacked document's headers).
        body: a piggybacked first document (reference 3.4), else b"".
        fidelity: how far it matches a real server's answer.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fidelity: Fidelity = "inferred"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """A NOTIFY to send in the subscription's dialog.

    Attributes:
        subscription_state: the Subscription-State value (``active;expires=3599``).
        content_type: the document's Content-Type.
        body: the presence document.
    """

    subscription_state: str
    content_type: str
    body: bytes

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Event, Subscription-State and Content-Type lines, in that order."""
        return (
            ("Event", "presence"),
            ("Subscription-State", self.subscription_state),
            ("Content-Type", self.content_type),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceStep:
    """The outcome of one input.

    Attributes:
        subscription: the new state.
        effect: which transition ran (REFUSE when a SUBSCRIBE failed its checks).
        response: the response to a SUBSCRIBE input, else None.
        notify: the NOTIFY to send now, else None.
        deadline: when to feed :class:`Expire` next (None: no timer).
    """

    subscription: Subscription
    effect: Effect
    response: SubscribeResponse | None
    notify: Notify | None
    deadline: float | None


def _kind(event: PresenceInput) -> Input:
    if isinstance(event, SubscribeRequest):
        return Input.UNSUBSCRIBE if event.expires == 0 else Input.SUBSCRIBE
    if isinstance(event, Change):
        return Input.CHANGE
    if isinstance(event, NotifyFailed):
        return Input.NOTIFY_FAILED
    return Input.EXPIRE


def _refusal(request: SubscribeRequest, settings: PresenceSettings) -> SubscribeResponse | None:
    """RFC 6665 §4.2.1.1 checks on an initial SUBSCRIBE: 489, 406, 423 (and 400)."""
    if request.expires is not None and request.expires < 0:
        return SubscribeResponse(status=400, reason="Bad Request")
    package = (request.event or "").split(";", 1)[0].strip().lower()
    if package != "presence":
        return SubscribeResponse(
            status=489, reason="Bad Event", headers=(("Allow-Events", "presence"),)
        )
    if negotiate_format(request.accept) is None:
        return SubscribeResponse(
            status=406,
            reason="Not Acceptable",
            headers=(("Accept", ", ".join(SUPPORTED_FORMATS)),),
        )
    if request.expires is not None and 0 < request.expires < settings.min_expires:
        return SubscribeResponse(
            status=423,
            reason="Interval Too Brief",
            headers=(("Min-Expires", str(settings.min_expires)),),
        )
    return None


def _granted(request: SubscribeRequest, settings: PresenceSettings) -> int:
    if request.expires is None:
        return min(settings.default_expires, settings.max_expires)
    return min(request.expires, settings.max_expires)


def step(
    subscription: Subscription,
    event: PresenceInput,
    now: float,
    *,
    presentity: Presentity,
    settings: PresenceSettings | None = None,
) -> PresenceStep:
    """Apply one input to a subscription (RFC 6665, :data:`TRANSITIONS`).

    Args:
        subscription: the current state (``Subscription()`` for a new dialog).
        event: a SUBSCRIBE's facts, the deadline passing, a change of state, or a
            failed NOTIFY.
        now: the current time, in the same clock as the deadlines (seconds).
        presentity: whose presence is published (a :class:`Change` overrides
            its availability).
        settings: subscription timing; defaults to :class:`PresenceSettings`.

    Returns:
        The new subscription, the response (for a SUBSCRIBE), the NOTIFY to send
        and the next deadline.
    """
    settings = settings or PresenceSettings()
    kind = _kind(event)
    target, effect = TRANSITIONS[subscription.state, kind]
    if isinstance(event, Change):
        presentity = replace(presentity, availability=event.availability)
    if kind is Input.EXPIRE and (subscription.expires_at is None or now < subscription.expires_at):
        target, effect = subscription.state, Effect.IGNORE  # a stale timer
    if isinstance(event, NotifyFailed) and event.status not in _FATAL_NOTIFY_STATUSES:
        target, effect = subscription.state, Effect.IGNORE
    if effect is Effect.IGNORE:
        return _result(subscription, effect, None, None)
    if effect is Effect.DROP:
        dropped = Subscription(
            state=State.TERMINATED,
            content_type=subscription.content_type,
            documents=subscription.documents,
        )
        return _result(dropped, effect, None, None)
    if effect is Effect.GONE:
        response = SubscribeResponse(status=481, reason="Call/Transaction Does Not Exist")
        return _result(subscription, effect, response, None)
    if effect is Effect.TIMEOUT or effect is Effect.NOTIFY:
        return _document(subscription, target, effect, presentity, now, None)
    assert isinstance(event, SubscribeRequest)
    content_type = subscription.content_type
    if subscription.state is State.IDLE:
        refusal = _refusal(event, settings)
        if refusal is not None:
            return _result(subscription, Effect.REFUSE, refusal, None)
        content_type = negotiate_format(event.accept)
    elif (event.event or "").split(";", 1)[0].strip().lower() != "presence" or (
        event.expires is not None and event.expires < 0
    ):
        refusal = _refusal(replace(event, accept=None), PresenceSettings())
        assert refusal is not None
        return _result(subscription, Effect.REFUSE, refusal, None)
    granted = 0 if kind is Input.UNSUBSCRIBE else _granted(event, settings)
    piggyback = "ms-piggyback-first-notify" in {t.strip().lower() for t in event.supported}
    return _document(
        subscription,
        target,
        effect,
        presentity,
        now,
        SubscribeResponse(status=200, reason="OK", headers=(("Expires", str(granted)),)),
        piggyback=piggyback and target is State.ACTIVE,
        content_type=content_type,
        expires_at=now + granted if target is State.ACTIVE else None,
    )


def _result(
    subscription: Subscription,
    effect: Effect,
    response: SubscribeResponse | None,
    notify: Notify | None,
) -> PresenceStep:
    deadline = subscription.expires_at if subscription.state is State.ACTIVE else None
    return PresenceStep(
        subscription=subscription,
        effect=effect,
        response=response,
        notify=notify,
        deadline=deadline,
    )


def _document(
    subscription: Subscription,
    target: State,
    effect: Effect,
    presentity: Presentity,
    now: float,
    response: SubscribeResponse | None,
    *,
    piggyback: bool = False,
    content_type: str | None = None,
    expires_at: float | None = None,
) -> PresenceStep:
    """Send the current state: in a NOTIFY, or piggybacked on the 200 (reference 3.4).

    ``content_type``/``expires_at`` override the subscription's for a SUBSCRIBE
    that (re)sets them; the NOTIFY's Subscription-State follows the new state.
    """
    content_type = content_type or subscription.content_type or PIDF
    if target is State.ACTIVE:
        expires_at = expires_at if expires_at is not None else subscription.expires_at
        assert expires_at is not None
        state_value = f"active;expires={max(0, int(expires_at - now))}"
    else:
        expires_at = None
        state_value = "terminated;reason=timeout"
    after = Subscription(
        state=target,
        content_type=content_type,
        expires_at=expires_at,
        documents=subscription.documents + 1,
    )
    body = presence_document(content_type, presentity)
    if piggyback and response is not None:
        response = replace(
            response,
            headers=(
                *response.headers,
                ("Content-Type", content_type),
                ("Event", "presence"),
                ("subscription-state", state_value),
                ("ms-piggyback-cseq", str(after.documents)),
                ("Supported", "ms-piggyback-first-notify"),
            ),
            body=body,
        )
        return _result(after, effect, response, None)
    notify = Notify(subscription_state=state_value, content_type=content_type, body=body)
    return _result(after, effect, response, notify)


_NOTE = re.compile(r"<(?:\w+:)?note(?:\s[^>]*)?>([^<]*)</(?:\w+:)?note>")
_NUMBER = re.compile(r"<availability>\s*([0-9]+)\s*</availability>")


def read_availability(content_type: str | None, body: bytes) -> str | None:
    """The lab word of a presence document fedsim wrote (for a caller checking a NOTIFY).

    A PIDF document is read by its ``<note>`` (the Lync status word, reference
    3.10), an enhanced-presence one by its availability number (Lync's ranges,
    reference 3.6). None: no document, or one that names no known state.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if media_type == PIDF:
        found = _NOTE.search(text)
        if found is None:
            return None
        note = found.group(1).strip()
        return next((a.name for a in _STATES if a.note == note), None)
    if media_type == CATEGORIES:
        number = _NUMBER.search(text)
        if number is None:
            return None
        value = int(number.group(1))
        below = [a for a in _STATES if a.number // 1500 * 1500 <= value]
        return max(below, key=lambda a: a.number).name if below else None
    return None
