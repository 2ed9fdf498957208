"""The client-facing side of the Edge: who a Skype client is to the relay, and its envelope.

A response the Edge sends a Skype client is laid out as the seed's client log
shows it (reference §7.1): From, To, Call-ID, CSeq, Via, then the Edge's own
headers. Both the clients port and the outbound relay answer clients with
:func:`client_response`.
"""

from __future__ import annotations

from typing import Protocol

from simulator.edge.state import EdgeState
from simulator.sip import Request, build_response, serialize

#: Client-facing responses copy these request headers in this order (reference §7.1).
CLIENT_COPY_ORDER = ("From", "To", "Call-ID", "CSeq", "Via")


class ClientLink(Protocol):
    """The client connection a request came in on, as the relay sees it."""

    @property
    def label(self) -> str:
        """``host:port`` of the client."""

    async def send(self, data: bytes) -> None:
        """Send one message to the client."""


def client_response(
    edge: EdgeState,
    request: Request,
    status: int,
    *,
    to_tag: str | None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    reason: str | None = None,
) -> bytes:
    """A response from the Edge to a Skype client, in the seed's envelope (reference §7.1).

    From, To, Call-ID, CSeq, Via (already stamped with ``ms-received-port`` and
    ``ms-received-cid`` when the request arrived), then ``headers`` (for a
    refusal: ms-diagnostics then ``Server``). The seed's ``Authentication-Info:
    TLS-DSK ...`` line is the Front End's signature towards its registered client,
    not the Edge's, so it is not emulated.
    """
    response = build_response(
        request,
        status,
        reason,
        to_tag=to_tag,
        headers=headers,
        body=body,
        copy_order=CLIENT_COPY_ORDER,
    )
    return serialize(response)
