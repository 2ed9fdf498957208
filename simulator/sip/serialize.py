"""Request | Response -> bytes (RFC 3261 §7).

Headers go out in stored order with the names as stored; Content-Length is
always written, last, from the body (RFC 3261 §20.14: mandatory on streams,
and harmless on datagrams).
"""

from __future__ import annotations

from simulator.sip.message import Request, Response

__all__ = ["serialize"]


def serialize(message: Request | Response) -> bytes:
    """Render a message for the wire.

    Args:
        message: the request or response.

    Returns:
        CRLF-terminated start line and headers, ``Content-Length: N``, an empty
        line, then the body. Text is encoded as UTF-8 (lone surrogates from
        undecodable received bytes turn back into those bytes).
    """
    body = message.body
    pairs = message.headers._pairs
    # ": ".join over the (name, value) tuples: the lines are rendered in C.
    lines = "\r\n".join(map(": ".join, pairs)) + "\r\n" if pairs else ""
    text = f"{message.start_line}\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
    return text.encode("utf-8", "surrogateescape") + body
