"""What a simulated caller does after its request's final response: the dialog's life.

Both callers (the Expressway-E of :mod:`simulator.peer.uac` and the Skype client
of :mod:`simulator.peer.skype`) hand their 2xx here, with how the lab (or the
command line) stages the rest (:class:`Staging`):

- after a 200 to INVITE: the ACK (or none: the "ACK never reaches Skype" case),
  an instant message inside an IM session, then the BYE, or waiting for the
  called user's own BYE (it hangs up, its media fails, or it gives up on the
  ACK at 64*T1) while counting the 200s it retransmits;
- after a 200 to SUBSCRIBE: the NOTIFYs (each answered 200), a refresh, the
  un-SUBSCRIBE (``Expires: 0``) and its terminating NOTIFY, or waiting for the
  subscription to expire.

Every request the far side sends is answered 200 and kept. The caller's own
deadline bounds all of it (the functions here never time out by themselves).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import trio

from simulator.peer.conn import SipConnection
from simulator.sip import Request, Response, build_response

#: Builds an in-dialog request: (method, CSeq number, extra headers, body).
DialogBuilder = Callable[[str, int, tuple[tuple[str, str], ...], bytes], Request]
#: How a call ends on the caller's side: its BYE, waiting for the called user's, or leaving.
CallEnd = Literal["bye", "wait", "leave"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Staging:
    """How the caller behaves after the final response (``[[calls]]`` keys, CLI flags).

    Attributes:
        ack: send the ACK of a 200 (False: never, as when it is misrouted; the
            caller then waits for the called user's BYE).
        end: after the ACK, ``bye`` (hang up), ``wait`` (for the called user's
            BYE) or ``leave`` (nothing more: the dialog stays up).
        text: an instant message to send inside an IM session, after the ACK.
        refresh: refresh a subscription once before ending it.
        unsubscribe: end a subscription with Expires 0 (False: wait for its expiry).
    """

    ack: bool = True
    end: CallEnd = "bye"
    text: str | None = None
    refresh: bool = False
    unsubscribe: bool = True


@dataclass(slots=True, kw_only=True)
class Afterwards:
    """What happened after the final response (filled in as it happens).

    Attributes:
        messages: every message of the dialog after the final response, in order,
            each with True when the caller sent it.
        notifies: the NOTIFYs received.
        bye: the called user's BYE, if one came.
        bye_after: seconds from the 200 to that BYE.
        retransmissions: 2xx retransmissions of the INVITE's 200 received.
        error: why the dialog did not finish as staged, if it did not.
    """

    messages: list[tuple[bool, Request | Response]] = field(default_factory=list)
    notifies: list[Request] = field(default_factory=list)
    bye: Request | None = None
    bye_after: float | None = None
    retransmissions: int = 0
    error: str | None = None


def _answers(response: Response, request: Request) -> bool:
    return response.call_id == request.call_id and response.cseq == request.cseq


def _state(notify: Request) -> str:
    return (notify.headers.get("Subscription-State") or "").split(";", 1)[0].strip().lower()


class _Pump:
    """Reads the connection, answers the far side's requests, waits for what is asked."""

    def __init__(
        self,
        conn: SipConnection,
        initial: Request,
        out: Afterwards,
        answered_at: float,
        user_agent: str,
    ) -> None:
        self.conn = conn
        self.initial = initial
        self.out = out
        self.answered_at = answered_at
        self.user_agent = user_agent

    async def send(self, request: Request) -> None:
        self.out.messages.append((True, request))
        await self.conn.send(request)

    async def _take(self) -> Request | Response:
        message = await self.conn.receive()
        if isinstance(message, Response):
            if message.cseq == self.initial.cseq and message.call_id == self.initial.call_id:
                self.out.retransmissions += 1  # the 2xx again (RFC 3261 §13.3.1.4)
                return message
            self.out.messages.append((False, message))
            return message
        self.out.messages.append((False, message))
        if message.method == "ACK":
            return message
        if message.method == "BYE" and self.out.bye is None:
            self.out.bye = message
            self.out.bye_after = trio.current_time() - self.answered_at
        elif message.method == "NOTIFY":
            self.out.notifies.append(message)
        reply = build_response(message, 200, headers=[("User-Agent", self.user_agent)])
        self.out.messages.append((True, reply))
        await self.conn.send(reply)
        return message

    async def final(self, request: Request) -> Response:
        """Read until the final response to ``request``."""
        while True:
            message = await self._take()
            if (
                isinstance(message, Response)
                and _answers(message, request)
                and message.status >= 200
            ):
                return message

    async def until(self, done: Callable[[], bool]) -> None:
        """Read until ``done()`` holds (the caller's deadline bounds it)."""
        while not done():
            await self._take()

    async def transact(self, request: Request) -> Response:
        await self.send(request)
        return await self.final(request)


async def after_invite(
    conn: SipConnection,
    invite: Request,
    staging: Staging,
    *,
    ack: Request,
    build: DialogBuilder,
    answered_at: float,
    user_agent: str,
    out: Afterwards,
) -> None:
    """The dialog of a 200 to ``invite``: ACK, an IM, then BYE or the user's BYE (module doc)."""
    pump = _Pump(conn, invite, out, answered_at, user_agent)
    cseq = invite.cseq[0]
    if staging.ack:
        await pump.send(ack)
        if staging.text is not None:
            cseq += 1
            message = build(
                "MESSAGE",
                cseq,
                (("Content-Type", "text/plain; charset=UTF-8"),),
                staging.text.encode("utf-8"),
            )
            await pump.transact(message)
    if staging.ack and staging.end == "leave":
        return
    if staging.ack and staging.end == "bye":
        if out.bye is None:
            await pump.transact(build("BYE", cseq + 1, (), b""))
        return
    await pump.until(lambda: out.bye is not None)


async def after_subscribe(
    conn: SipConnection,
    subscribe: Request,
    staging: Staging,
    *,
    build: DialogBuilder,
    answered_at: float,
    user_agent: str,
    out: Afterwards,
) -> None:
    """The subscription of a 200 to ``subscribe``: its NOTIFYs, a refresh, its end."""
    pump = _Pump(conn, subscribe, out, answered_at, user_agent)
    await pump.until(lambda: bool(out.notifies))  # RFC 6665 §4.2.1: a NOTIFY at once
    if _state(out.notifies[-1]) == "terminated":
        return
    cseq = subscribe.cseq[0]
    expires = subscribe.headers.get("Expires") or "3600"
    if staging.refresh:
        cseq += 1
        seen = len(out.notifies)
        await pump.transact(build("SUBSCRIBE", cseq, _subscribe_headers(subscribe, expires), b""))
        await pump.until(lambda: len(out.notifies) > seen)
    if staging.unsubscribe:
        cseq += 1
        await pump.transact(build("SUBSCRIBE", cseq, _subscribe_headers(subscribe, "0"), b""))
    await pump.until(lambda: _state(out.notifies[-1]) == "terminated")


def _subscribe_headers(subscribe: Request, expires: str) -> tuple[tuple[str, str], ...]:
    return (
        ("Event", subscribe.headers.get("Event") or "presence"),
        *(("Accept", value) for value in subscribe.headers.get_all("Accept")),
        ("Expires", expires),
    )


def new_branch(rng: random.Random) -> str:
    """A fresh RFC 3261 branch for an in-dialog request."""
    return f"z9hG4bK{rng.getrandbits(64):016x}"
