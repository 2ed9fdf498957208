"""The one emulated Skype user: what a user of a homed domain answers, in both directions.

A request that passed the Edge's federation rules (inbound), or that a Skype
client sends to another user of a homed domain (the clients port), reaches the
called user here. Sans-I/O: :class:`SkypeUser` takes a request, the
:class:`Leg` it came on and the time, and returns an :class:`Answer`: the
serialized messages to send now, the final status and what the event says
about it, the user's own events (its BYE, its NOTIFYs, the text of an IM), and
the :class:`Timer` s to run. The trio side (``edge/inbound.py``,
``edge/clients.py`` through ``edge/userwire.py``) carries the bytes and, when
a timer is due, calls :meth:`SkypeUser.timer` with it.

What the user does (sources and tags: docs/reference/skype-user.md):

- **INVITE**: the Edge's ``100 Trying``, then the user's media decision
  (:func:`simulator.skype.media.answer_offer`): ``180`` and ``200`` with the
  SDP answer (SRTP with ICE candidates for the Edge's address, or plain, or an
  IM session's ``m=message``), or ``488`` with the client's
  ``ms-client-diagnostics``. After the 200 the RFC 3261 schedule of
  :func:`simulator.skype.call.plan_call` runs: the 200 is retransmitted until
  the ACK, a BYE ends the call at 64*T1 without one, or when the lab makes the
  user hang up or its media fail.
- **SUBSCRIBE** (presence): ``200`` and a NOTIFY with a PIDF document, by the
  RFC 6665 machine of :func:`simulator.skype.presence.step` (refresh,
  un-SUBSCRIBE, expiry).
- **MESSAGE**: page-mode or inside an IM session, ``200`` (or ``415``) with
  the text for ``events.jsonl`` (:func:`simulator.skype.im.receive_message`).
- **OPTIONS**: ``200`` with the client's capabilities.

The user's own answers carry ``User-Agent`` (a Skype for Business client's);
the Edge's and the pool's (100, 404, the 200 to a presence SUBSCRIBE) carry
``Server``. Dialog-creating responses carry the Edge's ``Record-Route``.

State is two tables with one owner: ``invites`` (INVITE transactions still
ringing, by Call-ID and top Via branch, so a CANCEL finds its INVITE) and
``dialogs`` (calls and subscriptions our 2xx created, by Call-ID and our tag,
so in-dialog requests are answered and others get ``481``). Both are bounded.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from simulator.diagnostics.catalogue import MS_DIAGNOSTICS
from simulator.diagnostics.format import format_ms_diagnostics
from simulator.policy import ALLOW, EdgeSettings, user_answer
from simulator.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    build_response,
    parse_name_addr,
    serialize,
)
from simulator.sip.response import DEFAULT_COPY_ORDER
from simulator.skype.agent import SUPPORTED, USER_AGENT, user_headers
from simulator.skype.call import (
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
)
from simulator.skype.im import embedded_first_message, receive_message
from simulator.skype.media import MediaAnswer, MediaRefusal, MediaSettings, answer_offer
from simulator.skype.presence import (
    AVAILABILITIES,
    Availability,
    Expire,
    NotifyFailed,
    PresenceSettings,
    Presentity,
    State,
    SubscribeRequest,
    Subscription,
    step,
)

__all__ = [
    "MAX_REMEMBERED",
    "Answer",
    "Directory",
    "Leg",
    "SkypeUser",
    "Timer",
    "UserEvent",
    "UserProfile",
    "answer_status",
    "subscribe_facts",
]

#: How many pending INVITEs and dialogs the user remembers.
MAX_REMEMBERED = 10_000
#: The client's audio ports are drawn in this range (even, RTCP on the next one).
_MEDIA_PORTS = (10_000, 32_766)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserProfile:
    """What one Skype user does (the lab's ``[edge] users`` entry, or the default).

    Attributes:
        answer: the final status of an INVITE or MESSAGE (200, or 486 busy...).
        availability: the presence it publishes.
        media: its media policy, codecs and refusal form.
        call: the timers and staged faults after its 200.
    """

    answer: int = 200
    availability: Availability = AVAILABILITIES["online"]
    media: MediaSettings = field(default_factory=MediaSettings)
    call: CallSettings = field(default_factory=CallSettings)


@dataclass(frozen=True, slots=True, kw_only=True)
class Directory:
    """Every user of the Edge's homed domains, as the lab describes them.

    Attributes:
        settings: the Edge's domains, FQDN and ``Server`` header.
        users: user part (lower case) -> its profile, for the users the lab lists.
        default: the profile of every other user.
        listed_only: only the listed users exist (others get 404); False: any
            user of a homed domain exists (the tour's default).
        presence: subscription timing.
    """

    settings: EdgeSettings
    users: Mapping[str, UserProfile] = field(default_factory=dict)
    default: UserProfile = field(default_factory=UserProfile)
    listed_only: bool = False
    presence: PresenceSettings = field(default_factory=PresenceSettings)

    def __post_init__(self) -> None:
        lowered = {name.lower(): profile for name, profile in self.users.items()}
        object.__setattr__(self, "users", MappingProxyType(lowered))

    def profile(self, user: str | None) -> UserProfile | None:
        """The user's profile; None when the user does not exist."""
        found = self.users.get((user or "").lower())
        if found is not None:
            return found
        return None if self.listed_only else self.default

    @property
    def answers(self) -> Mapping[str, int]:
        """user -> the status INVITE and MESSAGE get, for the users listed with one."""
        return {name: p.answer for name, p in self.users.items() if p.answer != 200}

    @property
    def known(self) -> tuple[str, ...] | None:
        """The users that exist, when only the listed ones do (None: any user exists)."""
        return tuple(self.users) if self.listed_only else None


def _called(request: Request) -> tuple[str, str | None]:
    uri = request.to.uri
    if isinstance(uri, SipUri):
        return uri.host, uri.user
    return "", None


def _refusal_of(request: Request, profile: UserProfile) -> MediaAnswer | MediaRefusal:
    """The user's media decision on an INVITE's offer (throwaway randomness: status only)."""
    return answer_offer(
        request.body,
        settings=profile.media,
        address="127.0.0.1",
        port=_MEDIA_PORTS[0],
        rng=random.Random(0),
        user_uri="sip:user@invalid",
    )


def answer_status(request: Request, directory: Directory) -> int:
    """The final status the called user answers an out-of-dialog ``request`` with.

    The one function ``fedsim serve`` and ``fedsim check`` both decide with:
    :func:`simulator.policy.user_answer` (the domain, the user's existence, the
    method, the lab's fixed answers), then the user's own checks: the media of
    an INVITE (488), the body type of a MESSAGE (415).
    """
    host, user = _called(request)
    status = user_answer(
        request.method,
        host,
        user,
        directory.settings,
        directory.answers,
        known=directory.known,
    )
    if status >= 300:
        return status
    profile = directory.profile(user)
    if profile is None:  # user_answer already said 404; kept for the type checker
        return 404
    if request.method == "INVITE":
        media = _refusal_of(request, profile)
        if isinstance(media, MediaRefusal):
            return media.status
    elif request.method == "MESSAGE":
        return receive_message(request.headers.get("Content-Type"), request.body).status
    elif request.method == "SUBSCRIBE":
        presentity = Presentity(uri="sip:user@invalid", availability=profile.availability)
        result = step(
            Subscription(),
            subscribe_facts(request),
            0.0,
            presentity=presentity,
            settings=directory.presence,
        )
        assert result.response is not None  # a SUBSCRIBE always gets one
        return result.response.status
    return status


def subscribe_facts(request: Request) -> SubscribeRequest:
    """What the presence machine reads off a SUBSCRIBE (Event, Accept, Expires, Supported)."""
    accepts = request.headers.get_all("Accept")
    return SubscribeRequest(
        event=request.headers.get("Event"),
        accept=", ".join(accepts) if "Accept" in request.headers else None,
        expires=_int_or_none(request.headers.get("Expires")),
        supported=tuple(request.headers.get_all("Supported")),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """The connection a request came in on, as the user's answers need it.

    Attributes:
        local: the Edge's address on this connection (Contact, SDP, ICE candidates).
        via_params: parameters the Edge adds to the top Via of every response
            (the federation port's ``received``/``ms-received-*``, reference §7.2);
            the clients port stamps the request itself when it arrives.
        copy_order: which request headers a response copies, in order (the
            client-facing envelope differs, reference §7.1); None: RFC 3261's.
        via: the sent-by of the Via of a request the user sends (BYE, NOTIFY).
        record_route: the Edge's Record-Route on dialog-creating responses
            (its FQDN and the port the peer reached), None for none.
        diagnostics: the 404 of an unknown user carries the pool's ms-diagnostics
            4005 (internal clients); False across federation, where it is stripped.
    """

    local: tuple[str, int]
    via_params: tuple[tuple[str, str], ...] = ()
    copy_order: tuple[str, ...] | None = None
    via: str = "sip.skype.lab:5061"
    record_route: str | None = None
    diagnostics: bool = False


@dataclass(frozen=True, slots=True)
class Timer:
    """Call :meth:`SkypeUser.timer` with this at time ``at`` (the trio clock's seconds)."""

    kind: str
    key: tuple[str, str]
    at: float


@dataclass(frozen=True, slots=True)
class UserEvent:
    """Something the user did or read that goes to ``events.jsonl`` (kind and fields)."""

    kind: str
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the user does with one input.

    Attributes:
        status: the final status of the answer (for the event); None when the
            request is not answered (ACK), or its final answer comes later.
        messages: serialized messages to send now, in order.
        timers: timers to start.
        info: what the request's event says about the user's answer (the
            media answered, the text read, the presence sent), or None.
        events: the user's own events (a BYE it sent, a NOTIFY, an IM's text).
    """

    status: int | None
    messages: tuple[bytes, ...] = ()
    timers: tuple[Timer, ...] = ()
    info: Mapping[str, object] | None = None
    events: tuple[UserEvent, ...] = ()


@dataclass(slots=True)
class _Invite:
    request: Request
    leg: Leg
    tag: str
    profile: UserProfile
    media: MediaAnswer


@dataclass(slots=True, kw_only=True)
class _Dialog:
    """What a dialog of ours needs to send requests in it (RFC 3261 §12.1.1, UAS side)."""

    request: Request
    leg: Leg
    tag: str
    cseq: int = 0
    deadline: float | None = None

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq


@dataclass(slots=True, kw_only=True)
class _Call(_Dialog):
    profile: UserProfile
    ok: bytes = b""
    history: list[CallEvent] = field(default_factory=list)
    im: bool = False


@dataclass(slots=True, kw_only=True)
class _Subscription(_Dialog):
    presentity: Presentity
    state: Subscription = field(default_factory=Subscription)


def _acked(call: _Call) -> bool:
    return any(isinstance(e, AckReceived) for e in call.history)


def _user_part(request: Request) -> str | None:
    uri = request.to.uri
    return uri.user if isinstance(uri, SipUri) else None


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return -1  # not a number: the machine's 400


class SkypeUser:
    """Every Skype user of the Edge's homed domains (module docstring).

    Args:
        directory: who exists and what each user does.
        rng: tags, branches, SDP keys and ports.
        ring_seconds: how long an INVITE rings before its 200 (0: at once).
    """

    def __init__(
        self, directory: Directory, *, rng: random.Random, ring_seconds: float = 0.0
    ) -> None:
        self.directory = directory
        self.settings = directory.settings
        self.rng = rng
        self.ring_seconds = ring_seconds
        self.invites: OrderedDict[tuple[str, str], _Invite] = OrderedDict()
        self.dialogs: OrderedDict[tuple[str, str], _Call | _Subscription] = OrderedDict()
        #: Calls whose 200 waits for its ACK (the federation port parses ACKs only then).
        self.awaiting_ack = 0

    # -- helpers ---------------------------------------------------------------------------

    def new_tag(self) -> str:
        """A To tag as the Edge writes them: 32 upper-case hex digits (reference §7.1)."""
        return f"{self.rng.getrandbits(128):032X}"

    def _server(self) -> tuple[str, str]:
        return ("Server", self.settings.server_header)

    def _respond(
        self,
        request: Request,
        status: int,
        leg: Leg,
        *,
        to_tag: str | None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        reason: str | None = None,
    ) -> bytes:
        response = build_response(
            request,
            status,
            reason,
            to_tag=to_tag,
            headers=headers,
            body=body,
            via_params=leg.via_params,
            copy_order=DEFAULT_COPY_ORDER if leg.copy_order is None else leg.copy_order,
        )
        return serialize(response)

    @staticmethod
    def _contact(user: str | None, leg: Leg) -> tuple[str, str]:
        """Our Contact: the address this connection reached, so ACK/BYE come back here."""
        host, port = leg.local
        host = f"[{host}]" if ":" in host else host
        return ("Contact", f"<sip:{user or 'user'}@{host}:{port};transport=tls>")

    @staticmethod
    def _record_route(request: Request, leg: Leg) -> list[tuple[str, str]]:
        """The Record-Route of a dialog-creating response: the Edge's, then the request's."""
        routes = [("Record-Route", leg.record_route)] if leg.record_route else []
        return routes + [("Record-Route", v) for v in request.headers.get_all("Record-Route")]

    def _remember(self, table: OrderedDict[tuple[str, str], object], key: tuple[str, str]) -> None:
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED:
            _, dropped = table.popitem(last=False)
            if isinstance(dropped, _Call) and not _acked(dropped):
                self.awaiting_ack = max(0, self.awaiting_ack - 1)

    def _keep_dialog(self, dialog: _Call | _Subscription) -> None:
        key = (dialog.request.call_id, dialog.tag)
        self.dialogs[key] = dialog
        self._remember(self.dialogs, key)  # type: ignore[arg-type]

    def _schedule(self, dialog: _Dialog, kind: str, deadline: float | None) -> tuple[Timer, ...]:
        """A timer for ``deadline`` unless one for that exact time already runs."""
        if deadline == dialog.deadline:
            return ()
        dialog.deadline = deadline
        if deadline is None:
            return ()
        return (Timer(kind, (dialog.request.call_id, dialog.tag), deadline),)

    def _in_dialog_request(
        self,
        dialog: _Dialog,
        method: str,
        headers: Sequence[tuple[str, str]],
        *,
        body: bytes = b"",
    ) -> bytes:
        """A request of ours in ``dialog`` (RFC 3261 §12.2.1.1, the UAS's side of it).

        The Request-URI is the peer's Contact, the route set the request's
        Record-Route in order (§12.1.1), From/To swapped with our tag.
        """
        first = dialog.request
        contact = first.headers.get("Contact")
        try:
            target = str(parse_name_addr(contact).uri) if contact else str(first.from_.uri)
        except SipParseError:
            target = str(first.from_.uri)
        pairs: list[tuple[str, str]] = [
            ("Via", f"SIP/2.0/TLS {dialog.leg.via};branch=z9hG4bK{self.rng.getrandbits(64):016x}"),
            ("Max-Forwards", "70"),
            *(("Route", r) for r in first.headers.get_all("Record-Route")),
            ("From", f"{first.headers.get('To') or ''};tag={dialog.tag}"),
            ("To", first.headers.get("From") or ""),
            ("Call-ID", first.call_id),
            ("CSeq", f"{dialog.next_cseq()} {method}"),
            self._contact(_user_part(first), dialog.leg),
            *headers,
        ]
        return serialize(Request(method=method, uri=target, headers=Headers(pairs), body=body))

    # -- out of dialog ----------------------------------------------------------------------

    def status_for(self, request: Request) -> int:
        """The final status the called user answers ``request`` with (:func:`answer_status`)."""
        return answer_status(request, self.directory)

    def new_request(self, request: Request, leg: Leg, now: float) -> Answer:
        """Answer an out-of-dialog request that reached the user."""
        host, user = _called(request)
        status = user_answer(
            request.method,
            host,
            user,
            self.settings,
            self.directory.answers,
            known=self.directory.known,
        )
        profile = self.directory.profile(user)
        method = request.method
        if status == 404 or profile is None:
            return self._not_found(request, leg)
        if method == "INVITE":
            if status >= 300:
                return self._decline(request, leg, status, trying=True)
            return self._invite(request, leg, profile, user, now)
        if method == "SUBSCRIBE":
            return self._subscribe(request, leg, profile, user, now)
        if method == "MESSAGE":
            if status >= 300:
                return self._decline(request, leg, status)
            return self._message(request, leg, to_tag=self.new_tag())
        if method == "OPTIONS":
            headers = [
                ("User-Agent", USER_AGENT),
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                *(("Supported", token) for token in SUPPORTED),
            ]
            return Answer(
                200, (self._respond(request, 200, leg, to_tag=self.new_tag(), headers=headers),)
            )
        # A method the user does not implement: 501 with what it does (RFC 3261 §8.2.1).
        headers = [("Allow", ALLOW), ("User-Agent", USER_AGENT)]
        reply = self._respond(request, status, leg, to_tag=self.new_tag(), headers=headers)
        return Answer(status, (reply,))

    def _trying(self, request: Request, leg: Leg) -> bytes:
        """The Edge's own 100 Trying (RFC 3261 §16.2: no To tag, its Server header)."""
        return self._respond(request, 100, leg, to_tag=None, headers=[self._server()])

    def _not_found(self, request: Request, leg: Leg) -> Answer:
        """A user (or domain) that does not exist: the pool's 404 (reference 1.5).

        Internal clients get its ms-diagnostics 4005; a federated partner gets it
        bare (SendToExternalNetworks: the Edge strips diagnostics).
        """
        headers: list[tuple[str, str]] = []
        if leg.diagnostics:
            entry = MS_DIAGNOSTICS[4005]
            value = format_ms_diagnostics(4005, reason=entry.reason, source=self.settings.fqdn)
            headers.append(("ms-diagnostics", value))
        headers.append(self._server())
        messages = []
        if request.method == "INVITE":
            messages.append(self._trying(request, leg))
        messages.append(self._respond(request, 404, leg, to_tag=self.new_tag(), headers=headers))
        return Answer(404, tuple(messages), info={"exists": False})

    def _decline(self, request: Request, leg: Leg, status: int, *, trying: bool = False) -> Answer:
        """The lab's fixed answer (486 busy...): the user's client declines."""
        messages = [self._trying(request, leg)] if trying else []
        headers = [("User-Agent", USER_AGENT)]
        messages.append(self._respond(request, status, leg, to_tag=self.new_tag(), headers=headers))
        return Answer(status, tuple(messages))

    def _invite(
        self, request: Request, leg: Leg, profile: UserProfile, user: str | None, now: float
    ) -> Answer:
        trying = self._trying(request, leg)
        tag = self.new_tag()
        host = leg.local[0]
        media = answer_offer(
            request.body,
            settings=profile.media,
            address=host,
            port=2 * (self.rng.randint(*_MEDIA_PORTS) // 2),
            rng=self.rng,
            user_uri=f"sip:{user or 'user'}@{_called(request)[0]}",
        )
        first = embedded_first_message(request.headers.get_all("ms-text-format"))
        if isinstance(media, MediaRefusal):
            headers = [*media.headers, ("User-Agent", USER_AGENT)]
            refusal = self._respond(
                request, media.status, leg, to_tag=tag, headers=headers, reason=media.reason
            )
            info: dict[str, object] = {
                "media": "refused",
                "refusal": media.cause,
                "detail": media.detail,
                "fidelity": media.fidelity,
            }
            return Answer(media.status, (trying, refusal), info=info)
        im = media.kinds == ("message",)
        ringing = self._respond(
            request,
            180,
            leg,
            to_tag=tag,
            headers=[
                self._contact(user, leg),
                *self._record_route(request, leg),
                *user_headers(im=im),
            ],
        )
        info = {"media": media.summary, "secure": media.secure, "offer": media.is_offer}
        if first is not None:
            info["text"] = first
        if self.ring_seconds > 0:
            key = (request.call_id, request.vias[0].branch or "")
            self.invites[key] = _Invite(request, leg, tag, profile, media)
            self._remember(self.invites, key)  # type: ignore[arg-type]
            timer = Timer("ring", key, now + self.ring_seconds)
            return Answer(None, (trying, ringing), (timer,), info=info)
        ok, timers = self._accept(request, leg, tag, profile, media, now)
        return Answer(200, (trying, ringing, ok), timers, info=info)

    def _accept(
        self,
        request: Request,
        leg: Leg,
        tag: str,
        profile: UserProfile,
        media: MediaAnswer,
        now: float,
    ) -> tuple[bytes, tuple[Timer, ...]]:
        """The 200 with the SDP; the call's schedule (RFC 3261 §13.3.1.4) starts now."""
        im = media.kinds == ("message",)
        headers = [
            self._contact(_user_part(request), leg),
            *self._record_route(request, leg),
            *user_headers(im=im),
            ("Content-Type", "application/sdp"),
        ]
        ok = self._respond(request, 200, leg, to_tag=tag, headers=headers, body=media.sdp)
        call = _Call(request=request, leg=leg, tag=tag, profile=profile, ok=ok, im=im)
        call.history.append(Answered(at=now))
        self._keep_dialog(call)
        self.awaiting_ack += 1
        plan = plan_call(profile.call, call.history, now)
        return ok, self._schedule(call, "call", plan.deadline)

    def _message(self, request: Request, leg: Leg, *, to_tag: str | None) -> Answer:
        """A MESSAGE (page-mode, or in an IM session): 200 or 415, and the text read."""
        decision = receive_message(request.headers.get("Content-Type"), request.body)
        headers = [*decision.headers, ("User-Agent", USER_AGENT)]
        reply = self._respond(
            request, decision.status, leg, to_tag=to_tag, headers=headers, reason=decision.reason
        )
        info: dict[str, object] = {
            "text": decision.text,
            "content_type": decision.content_type,
            "fidelity": decision.fidelity,
        }
        return Answer(decision.status, (reply,), info=info)

    def _subscribe(
        self, request: Request, leg: Leg, profile: UserProfile, user: str | None, now: float
    ) -> Answer:
        """A presence SUBSCRIBE: the RFC 6665 machine decides; 200 and the first NOTIFY."""
        tag = self.new_tag()
        host, _ = _called(request)
        presentity = Presentity(
            uri=f"sip:{user or 'user'}@{host}", availability=profile.availability
        )
        sub = _Subscription(request=request, leg=leg, tag=tag, presentity=presentity)
        answer = self._subscription_step(sub, request, now, to_tag=tag)
        if sub.state.state is State.ACTIVE:
            self._keep_dialog(sub)
        return answer

    def _subscription_step(
        self, sub: _Subscription, request: Request, now: float, *, to_tag: str | None
    ) -> Answer:
        result = step(
            sub.state,
            subscribe_facts(request),
            now,
            presentity=sub.presentity,
            settings=self.directory.presence,
        )
        sub.state = result.subscription
        if sub.state.state is State.TERMINATED:
            self.dialogs.pop((sub.request.call_id, sub.tag), None)
        assert result.response is not None  # a SUBSCRIBE always gets one
        response = result.response
        headers: list[tuple[str, str]] = list(response.headers)
        if response.status == 200 and to_tag is not None:
            headers += [self._contact(_user_part(sub.request), sub.leg)]
            headers += self._record_route(request, sub.leg)
        headers.append(self._server())
        reply = self._respond(
            request,
            response.status,
            sub.leg,
            to_tag=to_tag,
            headers=headers,
            body=response.body,
            reason=response.reason,
        )
        messages = [reply]
        events: list[UserEvent] = []
        if result.notify is not None:
            messages.append(self._notify(sub, result.notify.headers, result.notify.body))
            events.append(self._notify_event(sub, result.notify.subscription_state))
        info: dict[str, object] = {
            "presence": sub.presentity.availability.name,
            "format": sub.state.content_type,
            "effect": result.effect.value,
        }
        if response.status >= 300:
            info = {"refused": response.reason}
        timers = self._schedule(sub, "subscription", result.deadline)
        return Answer(response.status, tuple(messages), timers, info=info, events=tuple(events))

    def _notify(self, sub: _Subscription, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
        """A NOTIFY of the presence document; the pool is the notifier (reference 3.14)."""
        return self._in_dialog_request(
            sub, "NOTIFY", [*headers, ("User-Agent", self.settings.server_header)], body=body
        )

    def _notify_event(self, sub: _Subscription, state: str) -> UserEvent:
        return UserEvent(
            "notify",
            {
                "call_id": sub.request.call_id,
                "subscription_state": state,
                "presence": sub.presentity.availability.name,
                "content_type": sub.state.content_type,
            },
        )

    # -- timers -----------------------------------------------------------------------------

    def timer(self, timer: Timer, now: float) -> Answer:
        """A timer the trio side ran is due: ring over, the call's schedule, expiry."""
        if timer.kind == "ring":
            return self._ring_over(timer.key, now)
        dialog = self.dialogs.get(timer.key)
        if dialog is None or dialog.deadline != timer.at:
            return Answer(None)  # stale: the dialog ended or moved its deadline
        dialog.deadline = None
        if isinstance(dialog, _Call):
            return self._call_due(dialog, now)
        result = step(
            dialog.state,
            Expire(),
            now,
            presentity=dialog.presentity,
            settings=self.directory.presence,
        )
        dialog.state = result.subscription
        if dialog.state.state is State.TERMINATED:
            self.dialogs.pop(timer.key, None)
        messages: list[bytes] = []
        events: list[UserEvent] = []
        if result.notify is not None:
            messages.append(self._notify(dialog, result.notify.headers, result.notify.body))
            events.append(self._notify_event(dialog, result.notify.subscription_state))
        timers = self._schedule(dialog, "subscription", result.deadline)
        return Answer(None, tuple(messages), timers, events=tuple(events))

    def _ring_over(self, key: tuple[str, str], now: float) -> Answer:
        """The ring timer fired: the 200, unless the INVITE was CANCELled meanwhile."""
        pending = self.invites.pop(key, None)
        if pending is None:
            return Answer(None)
        ok, timers = self._accept(
            pending.request, pending.leg, pending.tag, pending.profile, pending.media, now
        )
        return Answer(200, (ok,), timers)

    def _call_due(self, call: _Call, now: float) -> Answer:
        """Run the call's schedule (:func:`simulator.skype.call.plan_call`) at ``now``."""
        plan = plan_call(call.profile.call, call.history, now)
        messages: list[bytes] = []
        events: list[UserEvent] = []
        for action in plan.actions:
            if isinstance(action, Retransmit200):
                messages.append(call.ok)
                call.history.append(Retransmitted(at=now))
            elif isinstance(action, SendBye):
                messages.append(self._bye(call, action, now))
                events.append(self._ended(call, action, now))
        if plan.phase is CallPhase.ENDED:
            self._end(call)
            return Answer(None, tuple(messages), events=tuple(events))
        return Answer(
            None, tuple(messages), self._schedule(call, "call", plan.deadline), events=tuple(events)
        )

    def _bye(self, call: _Call, action: SendBye, now: float) -> bytes:
        call.history.append(ByeSent(at=now))
        return self._in_dialog_request(call, "BYE", [*action.headers, ("User-Agent", USER_AGENT)])

    def _ended(self, call: _Call, action: SendBye, now: float) -> UserEvent:
        answered = min(e.at for e in call.history if isinstance(e, Answered))
        return UserEvent(
            "call-ended",
            {
                "call_id": call.request.call_id,
                "cause": action.cause,
                "after": round(now - answered, 3),
                "retransmissions": sum(1 for e in call.history if isinstance(e, Retransmitted)),
                "headers": [[name, value] for name, value in action.headers],
                "fidelity": action.fidelity,
            },
        )

    def _end(self, call: _Call) -> None:
        """The call is over: forget it (its ACK wait too)."""
        known = self.dialogs.pop((call.request.call_id, call.tag), None) is not None
        if known and not _acked(call):
            self.awaiting_ack = max(0, self.awaiting_ack - 1)
        call.deadline = None

    # -- inside a dialog, and CANCEL -------------------------------------------------------

    def in_dialog(self, request: Request, leg: Leg, now: float) -> Answer:
        """A request with a To tag: answered in its dialog, or 481 (RFC 3261 §12.2.2)."""
        key = (request.call_id, request.to.tag or "")
        dialog = self.dialogs.get(key)
        if request.method == "ACK":
            if isinstance(dialog, _Call):
                return self._acked(dialog, now)
            return Answer(None)  # ACK of a non-2xx, or a stray: never answered
        if dialog is None:
            reply = self._respond(request, 481, leg, to_tag=None, headers=[self._server()])
            return Answer(481, (reply,))
        if isinstance(dialog, _Subscription):
            if request.method == "SUBSCRIBE":
                return self._subscription_step(dialog, request, now, to_tag=None)
            return self._ok(request, leg)
        method = request.method
        if method == "BYE":
            dialog.history.append(ByeReceived(at=now))
            self._end(dialog)
            return self._ok(request, leg)
        if method == "MESSAGE":
            answer = self._message(request, leg, to_tag=None)
            info = answer.info or {}
            event = UserEvent("message", {"call_id": request.call_id, **info})
            return Answer(answer.status, answer.messages, events=(event,))
        if method == "INVITE":  # a re-INVITE: the same media decision, in the dialog
            media = answer_offer(
                request.body,
                settings=dialog.profile.media,
                address=leg.local[0],
                port=2 * (self.rng.randint(*_MEDIA_PORTS) // 2),
                rng=self.rng,
                user_uri=f"sip:{_user_part(dialog.request) or 'user'}@{_called(request)[0]}",
            )
            if isinstance(media, MediaRefusal):
                headers = [*media.headers, ("User-Agent", USER_AGENT)]
                reply = self._respond(
                    request, media.status, leg, to_tag=None, headers=headers, reason=media.reason
                )
                return Answer(media.status, (reply,))
            headers = [
                self._contact(_user_part(dialog.request), leg),
                ("User-Agent", USER_AGENT),
                ("Content-Type", "application/sdp"),
            ]
            reply = self._respond(request, 200, leg, to_tag=None, headers=headers, body=media.sdp)
            return Answer(200, (reply,))
        return self._ok(request, leg)

    def _ok(self, request: Request, leg: Leg) -> Answer:
        reply = self._respond(request, 200, leg, to_tag=None, headers=[("User-Agent", USER_AGENT)])
        return Answer(200, (reply,))

    def _acked(self, call: _Call, now: float) -> Answer:
        """The ACK of our 200: retransmissions stop; the staged endings stay due."""
        if not _acked(call):
            self.awaiting_ack = max(0, self.awaiting_ack - 1)
        call.history.append(AckReceived(at=now))
        plan = plan_call(call.profile.call, call.history, now)
        return Answer(None, timers=self._schedule(call, "call", plan.deadline))

    def response(self, response: Response, now: float) -> Answer:
        """A peer's answer to our BYE or NOTIFY: a failed NOTIFY may end its subscription."""
        try:
            key = (response.call_id, response.from_.tag or "")
        except SipParseError:
            return Answer(None)
        dialog = self.dialogs.get(key)
        if not isinstance(dialog, _Subscription) or response.status < 300:
            return Answer(None)
        result = step(
            dialog.state,
            NotifyFailed(status=response.status),
            now,
            presentity=dialog.presentity,
            settings=self.directory.presence,
        )
        dialog.state = result.subscription
        if dialog.state.state is State.TERMINATED:
            self.dialogs.pop(key, None)
        return Answer(None)

    def cancel(self, request: Request, leg: Leg) -> Answer:
        """CANCEL (RFC 3261 §9.2): 200 and a 487 to a ringing INVITE; 481 to anything else."""
        key = (request.call_id, request.vias[0].branch or "")
        pending = self.invites.pop(key, None)
        if pending is None:
            reply = self._respond(
                request, 481, leg, to_tag=self.new_tag(), headers=[self._server()]
            )
            return Answer(481, (reply,))
        ok = self._respond(request, 200, leg, to_tag=pending.tag, headers=[self._server()])
        terminated = self._respond(
            pending.request,
            487,
            pending.leg,
            to_tag=pending.tag,
            headers=[("User-Agent", USER_AGENT)],
        )
        return Answer(200, (ok, terminated))
