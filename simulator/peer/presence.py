"""Presence as the simulated Expressway-E's side answers it (IM and Presence behind it).

A Skype user's SUBSCRIBE for the presence of a user of the partner's domain
(``fedsim client --method SUBSCRIBE``, or a lab call) crosses the Edge to the
partner. Behind a real Expressway-E, Cisco's IM and Presence Service answers it.
``fedsim peer`` answers as such a server would, with the same RFC 6665 machine as
the Skype user's (:func:`simulator.skype.presence.step`): 200 and at once a
NOTIFY with the user's state, a NOTIFY per refresh, ``terminated;reason=timeout``
on un-SUBSCRIBE or expiry; 489 for another event package, 406 when the
subscriber does not accept PIDF, 481 for a dialog it does not know.

Two things differ from the Skype user, both inferred (an IM and Presence server
is not Microsoft's): the documents are RFC 3863 PIDF only (no Microsoft
``categories``), and the first document is never piggybacked on the 200.

The NOTIFYs go back on the connection the SUBSCRIBE came in on (the Edge's), in
the dialog (RFC 3261 §12.1.1: the SUBSCRIBE's Contact as the Request-URI, its
Record-Route as the route set, our own CSeq from 1).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from simulator.peer.conn import SipConnection
from simulator.peer.requests import new_branch
from simulator.sip import Headers, Request, SipParseError, parse_name_addr
from simulator.skype.presence import (
    PIDF,
    Availability,
    Expire,
    Notify,
    PresenceStep,
    Presentity,
    State,
    SubscribeRequest,
    Subscription,
    step,
)

#: Sends the answer to a SUBSCRIBE: (status, reason, to tag, extra headers).
Respond = Callable[[int, str, str | None, tuple[tuple[str, str], ...]], Awaitable[None]]


@dataclass(slots=True, kw_only=True)
class PeerSubscription:
    """One subscription the peer holds: the RFC 6665 state and the dialog it lives in."""

    state: Subscription
    presentity: Presentity
    call_id: str
    #: Our From (the SUBSCRIBE's To with our tag) and To (the SUBSCRIBE's From).
    local: str
    remote: str
    #: The Request-URI of our NOTIFYs (the subscriber's Contact) and the route set.
    target: str
    routes: tuple[str, ...]
    cseq: int = 0
    #: The expiry timer of the current grant (cancelled by a refresh or the end).
    timer: trio.CancelScope = field(default_factory=trio.CancelScope)


def subscribe_facts(request: Request) -> SubscribeRequest:
    """What :func:`step` needs of a SUBSCRIBE, with PIDF the only format we write.

    A malformed Expires is passed on as -1, which the machine answers 400.
    """
    raw = request.headers.get("Expires")
    try:
        expires = None if raw is None else int(raw.strip())
    except ValueError:
        expires = -1
    accepts = [a.strip().lower() for v in request.headers.get_all("Accept") for a in v.split(",")]
    # No Accept means PIDF (RFC 3856 §6.5); one without PIDF gets 406.
    if accepts and not any(a.split(";", 1)[0].strip() == PIDF for a in accepts):
        accept = "application/x-none"
    else:
        accept = PIDF
    return SubscribeRequest(event=request.headers.get("Event"), accept=accept, expires=expires)


def notify_request(
    sub: PeerSubscription, notify: Notify, *, via_host: str, branch: str, user_agent: str
) -> Request:
    """The NOTIFY in ``sub``'s dialog (its CSeq already counted)."""
    pairs = [
        ("Via", f"SIP/2.0/TLS {via_host};branch={branch}"),
        ("Max-Forwards", "70"),
        *(("Route", route) for route in sub.routes),
        ("From", sub.local),
        ("To", sub.remote),
        ("Call-ID", sub.call_id),
        ("CSeq", f"{sub.cseq} NOTIFY"),
        ("User-Agent", user_agent),
        *notify.headers,
    ]
    return Request(method="NOTIFY", uri=sub.target, headers=Headers(pairs), body=notify.body)


@dataclass(slots=True, kw_only=True)
class PeerPresence:
    """Every subscription of one simulated Expressway-E, by (Call-ID, our tag)."""

    availability: Availability
    rng: random.Random
    user_agent: str
    subscriptions: dict[tuple[str, str], PeerSubscription] = field(default_factory=dict)

    async def subscribe(
        self,
        conn: SipConnection,
        request: Request,
        *,
        local: tuple[str, int],
        contact: str,
        respond: Respond,
        nursery: trio.Nursery,
    ) -> None:
        """Answer one SUBSCRIBE (initial, refresh or un-SUBSCRIBE) and send its NOTIFY."""
        tag = request.to.tag
        if tag:
            sub = self.subscriptions.get((request.call_id, tag))
            if sub is None:
                await respond(481, "Call/Transaction Does Not Exist", None, ())
                return
        else:
            tag = f"{self.rng.getrandbits(64):016x}"
            sub = _new_subscription(request, tag, self.availability)
        done = step(
            sub.state, subscribe_facts(request), trio.current_time(), presentity=sub.presentity
        )
        response = done.response
        assert response is not None  # a SUBSCRIBE always gets one
        headers = response.headers
        if response.status == 406:
            headers = (("Accept", PIDF),)  # what we write, not what the Skype user would
        if response.status == 200:
            headers = (*headers, ("Contact", contact))
            self.subscriptions[request.call_id, tag] = sub
        await respond(response.status, response.reason, tag, headers)
        await self._after(conn, sub, tag, done, local, nursery)

    async def _after(
        self,
        conn: SipConnection,
        sub: PeerSubscription,
        tag: str,
        done: PresenceStep,
        local: tuple[str, int],
        nursery: trio.Nursery,
    ) -> None:
        """Keep the new state, send the NOTIFY it asks for, (re)arm or drop the timer."""
        sub.state = done.subscription
        if done.notify is not None:
            sub.cseq += 1
            host, port = local
            await conn.send(
                notify_request(
                    sub,
                    done.notify,
                    via_host=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                    branch=new_branch(self.rng),
                    user_agent=self.user_agent,
                )
            )
        sub.timer.cancel()
        if sub.state.state is State.TERMINATED:
            self.subscriptions.pop((sub.call_id, tag), None)
        elif done.deadline is not None:
            sub.timer = trio.CancelScope(deadline=done.deadline)
            nursery.start_soon(self._expire, conn, sub, tag, local, nursery)

    async def _expire(
        self,
        conn: SipConnection,
        sub: PeerSubscription,
        tag: str,
        local: tuple[str, int],
        nursery: trio.Nursery,
    ) -> None:
        """At the grant's end, unless refreshed first: NOTIFY terminated;reason=timeout."""
        scope = sub.timer
        with scope:
            await trio.sleep_forever()
        if scope.cancelled_caught and scope is sub.timer and trio.current_time() >= scope.deadline:
            done = step(sub.state, Expire(), trio.current_time(), presentity=sub.presentity)
            # The Edge may have closed the connection: nothing to tell it any more.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self._after(conn, sub, tag, done, local, nursery)


def _new_subscription(request: Request, tag: str, availability: Availability) -> PeerSubscription:
    """The dialog an initial SUBSCRIBE creates, from our side (RFC 3261 §12.1.1)."""
    contact = request.headers.get("Contact")
    try:
        target = str(parse_name_addr(contact).uri) if contact else str(request.from_.uri)
    except SipParseError:
        target = str(request.from_.uri)
    to = request.headers.get("To") or ""
    return PeerSubscription(
        state=Subscription(),
        presentity=Presentity(uri=str(request.to.uri), availability=availability),
        call_id=request.call_id,
        local=f"{to};tag={tag}",
        remote=request.headers.get("From") or "",
        target=target,
        routes=tuple(request.headers.get_all("Record-Route")),
    )
