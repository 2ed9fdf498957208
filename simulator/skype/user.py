"""The one emulated Skype user: what a user of a homed domain answers, in both directions.

A request that passed the Edge's federation rules (inbound), or that a Skype
client sends to another user of a homed domain (the clients port), reaches the
called user here. Sans-I/O: :class:`SkypeUser` takes a request and the
:class:`Leg` it came on, and returns an :class:`Answer`: the serialized
messages to send now, the final status (for the event), and, when the user
rings before answering, the timer to start. The trio side carries the bytes and
runs the timer (:meth:`SkypeUser.ring_over`).

State is two tables with one owner:

- ``invites``: INVITE server transactions still pending (RFC 3261 §17.2.1), by
  (Call-ID, top Via branch), so a CANCEL finds its INVITE (§9.2);
- ``dialogs``: the dialogs our 2xx (or 202) created, by (Call-ID, our tag), so
  in-dialog requests are answered and others get ``481`` (§12.2.2).

Which status the user answers with is policy (:func:`simulator.policy.user_answer`).
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from simulator.policy import ALLOW, EdgeSettings, user_answer
from simulator.sip import Headers, Request, SipUri, build_response, parse_name_addr, serialize
from simulator.skype.sdp import build_answer

#: How many pending INVITEs and dialogs the user remembers.
MAX_REMEMBERED = 10_000


class DialogState(enum.Enum):
    """A dialog the user is in (RFC 3261 §12; RFC 6665 for subscriptions)."""

    CONFIRMED = "confirmed"
    SUBSCRIPTION = "subscription"


class InviteState(enum.Enum):
    """An INVITE server transaction with its final answer still to come."""

    RINGING = "ringing"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """The connection a request came in on, as the user's answers need it.

    Attributes:
        local: the Edge's address on this connection (Contact and SDP).
        via_params: parameters the Edge adds to the top Via of every response
            (the federation port's ``received``/``ms-received-*``, reference §7.2);
            the clients port stamps the request itself when it arrives.
        copy_order: which request headers a response copies, in order (the
            client-facing envelope differs, reference §7.1); None: RFC 3261's.
        notify_via: the sent-by of the Via of a NOTIFY the user sends.
    """

    local: tuple[str, int]
    via_params: tuple[tuple[str, str], ...] = ()
    copy_order: tuple[str, ...] | None = None
    notify_via: str = "sip.skype.lab:5061"


@dataclass(frozen=True, slots=True)
class Ring:
    """The final answer to an INVITE comes after ``seconds`` (unless CANCELled)."""

    key: tuple[str, str]
    seconds: float


@dataclass(frozen=True, slots=True)
class Answer:
    """What the user does with one request.

    Attributes:
        status: the final status of the answer (for the event); None when the
            request is not answered (ACK), or its final answer comes later.
        messages: serialized messages to send now, in order.
        ring: the timer of a final answer still to come.
    """

    status: int | None
    messages: tuple[bytes, ...] = ()
    ring: Ring | None = None


@dataclass(slots=True)
class _Invite:
    request: Request
    leg: Leg
    tag: str
    state: InviteState


class SkypeUser:
    """Every Skype user of the Edge's homed domains (module docstring).

    Args:
        settings: the Edge's domains and ``Server`` header.
        users: the lab's users with a fixed answer (``{"bob": 486}``).
        rng: tags and SDP session ids.
        ring_seconds: how long an INVITE rings before its 200 (0: at once).
    """

    def __init__(
        self,
        settings: EdgeSettings,
        users: Mapping[str, int],
        *,
        rng: random.Random,
        ring_seconds: float = 0.0,
    ) -> None:
        self.settings = settings
        self.users = users
        self.rng = rng
        self.ring_seconds = ring_seconds
        self.invites: OrderedDict[tuple[str, str], _Invite] = OrderedDict()
        self.dialogs: OrderedDict[tuple[str, str], DialogState] = OrderedDict()

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
    ) -> bytes:
        extra = {"copy_order": leg.copy_order} if leg.copy_order is not None else {}
        response = build_response(
            request,
            status,
            to_tag=to_tag,
            headers=headers,
            body=body,
            via_params=leg.via_params,
            **extra,  # type: ignore[arg-type]
        )
        return serialize(response)

    @staticmethod
    def _contact(user: str | None, leg: Leg) -> tuple[str, str]:
        """Our Contact: the address this connection reached, so ACK/BYE come back here."""
        host, port = leg.local
        host = f"[{host}]" if ":" in host else host
        return ("Contact", f"<sip:{user or 'user'}@{host}:{port};transport=tls>")

    def _remember(self, table: OrderedDict[tuple[str, str], object], key: tuple[str, str]) -> None:
        table.move_to_end(key)
        while len(table) > MAX_REMEMBERED:
            table.popitem(last=False)

    # -- out of dialog ----------------------------------------------------------------------

    def status_for(self, request: Request) -> int:
        """The final status the called user answers ``request`` with (policy.user_answer)."""
        to = request.to.uri
        host = to.host if isinstance(to, SipUri) else ""
        user = to.user if isinstance(to, SipUri) else None
        return user_answer(request.method, host, user, self.settings, self.users)

    def new_request(self, request: Request, leg: Leg) -> Answer:
        """Answer an out-of-dialog request that reached the user."""
        status = self.status_for(request)
        tag = self.new_tag()
        method = request.method
        user = request.to.uri.user if isinstance(request.to.uri, SipUri) else None
        server = self._server()
        if status == 404:
            return Answer(status, (self._respond(request, 404, leg, to_tag=tag, headers=[server]),))
        if method == "INVITE" and status < 300:
            return self._invite(request, leg, tag, user)
        if method == "OPTIONS":
            headers = [
                ("Allow", ALLOW),
                ("Accept", "application/sdp"),
                ("Supported", "replaces"),
                server,
            ]
            return Answer(200, (self._respond(request, 200, leg, to_tag=tag, headers=headers),))
        if method == "SUBSCRIBE" and status < 300:
            return self._subscribe(request, leg, tag, user)
        headers = [("Allow", ALLOW), server] if status == 501 else [server]
        return Answer(status, (self._respond(request, status, leg, to_tag=tag, headers=headers),))

    def _invite(self, request: Request, leg: Leg, tag: str, user: str | None) -> Answer:
        ringing = self._respond(
            request, 180, leg, to_tag=tag, headers=[self._contact(user, leg), self._server()]
        )
        key = (request.call_id, request.vias[0].branch or "")
        if self.ring_seconds > 0:
            self.invites[key] = _Invite(request, leg, tag, InviteState.RINGING)
            self._remember(self.invites, key)  # type: ignore[arg-type]
            return Answer(None, (ringing,), Ring(key, self.ring_seconds))
        return Answer(200, (ringing, self._accept(request, leg, tag, user)))

    def _accept(self, request: Request, leg: Leg, tag: str, user: str | None) -> bytes:
        """The 200 with an SDP answer; the dialog is confirmed from here (the ACK adds nothing)."""
        sdp = build_answer(request.body, address=leg.local[0], session_id=self.rng.getrandbits(31))
        headers = [
            self._contact(user, leg),
            ("Content-Type", "application/sdp"),
            self._server(),
        ]
        self.dialogs[(request.call_id, tag)] = DialogState.CONFIRMED
        self._remember(self.dialogs, (request.call_id, tag))  # type: ignore[arg-type]
        return self._respond(request, 200, leg, to_tag=tag, headers=headers, body=sdp)

    def ring_over(self, key: tuple[str, str]) -> Answer:
        """The ring timer fired: the 200, unless the INVITE was CANCELled meanwhile."""
        pending = self.invites.pop(key, None)
        if pending is None or pending.state is InviteState.CANCELLED:
            return Answer(None)
        user = pending.request.to.uri.user if isinstance(pending.request.to.uri, SipUri) else None
        return Answer(200, (self._accept(pending.request, pending.leg, pending.tag, user),))

    def _subscribe(self, request: Request, leg: Leg, tag: str, user: str | None) -> Answer:
        """SUBSCRIBE: 202 Accepted, then the initial NOTIFY (RFC 6665 §4.2.1)."""
        expires = (request.headers.get("Expires") or "3600").strip()
        event = (request.headers.get("Event") or "presence").strip()
        contact = self._contact(user, leg)
        accepted = self._respond(
            request, 202, leg, to_tag=tag, headers=[("Expires", expires), contact, self._server()]
        )
        self.dialogs[(request.call_id, tag)] = DialogState.SUBSCRIPTION
        self._remember(self.dialogs, (request.call_id, tag))  # type: ignore[arg-type]
        target = request.headers.get("Contact")
        notify_uri = str(parse_name_addr(target).uri) if target else str(request.from_.uri)
        headers = Headers(
            [
                ("Via", f"SIP/2.0/TLS {leg.notify_via};branch=z9hG4bK{self.new_tag()}"),
                ("Max-Forwards", "70"),
                ("From", (request.headers.get("To") or "") + f";tag={tag}"),
                ("To", request.headers.get("From") or ""),
                ("Call-ID", request.call_id),
                ("CSeq", "1 NOTIFY"),
                contact,
                ("Event", event),
                ("Subscription-State", f"active;expires={expires}"),
                self._server(),
            ]
        )
        notify = serialize(Request(method="NOTIFY", uri=notify_uri, headers=headers))
        return Answer(202, (accepted, notify))

    # -- inside a dialog, and CANCEL -------------------------------------------------------

    def in_dialog(self, request: Request, leg: Leg) -> Answer:
        """A request with a To tag: answered in its dialog, or 481 (RFC 3261 §12.2.2)."""
        if request.method == "ACK":
            return Answer(None)  # confirms our 2xx; nothing is answered (RFC 3261 §17.1.1.3)
        server = self._server()
        key = (request.call_id, request.to.tag or "")
        if key not in self.dialogs:
            return Answer(481, (self._respond(request, 481, leg, to_tag=None, headers=[server]),))
        if request.method == "BYE":
            del self.dialogs[key]
        if request.method == "INVITE":
            sdp = build_answer(
                request.body, address=leg.local[0], session_id=self.rng.getrandbits(31)
            )
            headers = [("Content-Type", "application/sdp"), server]
            reply = self._respond(request, 200, leg, to_tag=None, headers=headers, body=sdp)
            return Answer(200, (reply,))
        return Answer(200, (self._respond(request, 200, leg, to_tag=None, headers=[server]),))

    def cancel(self, request: Request, leg: Leg) -> Answer:
        """CANCEL (RFC 3261 §9.2): 200 and a 487 to a ringing INVITE; 481 to anything else."""
        server = self._server()
        key = (request.call_id, request.vias[0].branch or "")
        pending = self.invites.get(key)
        if pending is None or pending.state is not InviteState.RINGING:
            reply = self._respond(request, 481, leg, to_tag=self.new_tag(), headers=[server])
            return Answer(481, (reply,))
        pending.state = InviteState.CANCELLED
        ok = self._respond(request, 200, leg, to_tag=pending.tag, headers=[server])
        terminated = self._respond(
            pending.request, 487, pending.leg, to_tag=pending.tag, headers=[server]
        )
        return Answer(200, (ok, terminated))
