"""Carry the emulated Skype user's answers on a connection: send, record, run its timers.

:class:`simulator.skype.user.SkypeUser` decides and returns an
:class:`~simulator.skype.user.Answer`; this is the one trio side of it, shared
by the federation port and the clients port. The user's own events (its BYE,
its NOTIFYs, the text of an IM) are held for the send that follows, as every
event is (:mod:`simulator.edge.recorder`). A timer sleeps until its time, asks
the user what is due, and carries that answer the same way: retransmitted
200s, the BYE of a call that was never ACKed, a NOTIFY at expiry. Timers run
in the connection's nursery, so they end with the connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from simulator.edge.recorder import Recorder
from simulator.skype.user import Answer, SkypeUser, Timer

#: Sends one serialized message on the connection.
Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLink:
    """Where one connection's user answers go: the connection, its events, its timers.

    Attributes:
        user: the emulated Skype user.
        send: sends one message on the connection.
        nursery: the connection's nursery (its timers die with it).
        recorder: the Edge's recorder.
        direction: ``inbound`` (federation port) or ``outbound`` (clients port).
        peer: the connection's name in events.
        after: called once an answer is carried (the federation port re-arms its
            ACK filter: the user's calls waiting for an ACK may have changed).
    """

    user: SkypeUser
    send: Send
    nursery: trio.Nursery
    recorder: Recorder
    direction: str
    peer: str
    after: Callable[[], None] | None = None

    async def deliver(self, answer: Answer) -> None:
        """Record the user's events, send the messages, start the timers."""
        for event in answer.events:  # held for the message each goes with
            fields = {"peer": self.peer, **event.fields}
            self.recorder.user_event(event.kind, fields, direction=self.direction)
        for message in answer.messages:
            await self.send(message)
        for timer in answer.timers:
            self.nursery.start_soon(self._run, timer)
        if self.after is not None:
            self.after()

    async def _run(self, timer: Timer) -> None:
        await trio.sleep_until(timer.at)
        answer = self.user.timer(timer, trio.current_time())
        # The peer may have gone meanwhile: what was due is dropped with the connection.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.deliver(answer)
