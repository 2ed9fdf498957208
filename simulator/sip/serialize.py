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
    parts = [message.start_line]
    parts.extend(f"{name}: {value}" for name, value in message.headers.pairs)
    parts.append(f"Content-Length: {len(message.body)}")
    parts.append("\r\n")
    return "\r\n".join(parts).encode("utf-8", "surrogateescape") + message.body
