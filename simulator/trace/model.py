"""The one value the Edge hands the trace writers per SIP message it receives or sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Direction", "Side", "WireMessage"]

#: Whether the Edge received the message ("incoming") or sent it ("outgoing").
Direction = Literal["incoming", "outgoing"]
#: Which of the Edge's two sides the message crossed: "external" is the federation
#: port and the Edge's own legs to partners, "internal" the clients port.
Side = Literal["external", "internal"]


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One whole SIP message as it crossed one of the Edge's connections.

    Attributes:
        when: UNIX time in seconds (``time.time()``) the Edge read or wrote it.
        direction: "incoming" (the Edge received it) or "outgoing" (the Edge sent it).
        side: "external" (federation port, partner legs) or "internal" (clients port).
        local: the Edge's address and port on that connection.
        remote: the other end's address and port.
        connection: an id of the connection, the same for every message on it
            (the Edge's ``ms-received-cid``, or any unique string).
        data: exactly the bytes of one message on the wire, start line to body end.
    """

    when: float
    direction: Direction
    side: Side
    local: tuple[str, int]
    remote: tuple[str, int]
    connection: str
    data: bytes
