"""The SIP error family: the peer's fault, never the user's.

Modelled on h11's ``RemoteProtocolError``: every error carries the offending
input and the status code we should answer with. These are deliberately NOT
:class:`simulator.errors.FedsimError`: a malformed SIP message is something a
peer did, the Edge answers it and keeps serving, and the CLI never prints it as
a user error.
"""

from __future__ import annotations

__all__ = ["FramingError", "MessageTooLarge", "SipError", "SipParseError"]

#: How much of the offending input goes into ``str(exc)`` (all of it stays on ``.offending``).
_EXCERPT = 80


class SipError(Exception):
    """A SIP message broke RFC 3261.

    Attributes:
        message: what is wrong, without the excerpt.
        offending: the bytes that broke the rule (a line, a header value, a header block).
        status_hint: the status code a UAS should answer with (RFC 3261 §21).
    """

    def __init__(self, message: str, *, offending: bytes, status_hint: int = 400) -> None:
        super().__init__(f"{message}: {offending[:_EXCERPT]!r}")
        self.message = message
        self.offending = offending
        self.status_hint = status_hint


class SipParseError(SipError):
    """The peer sent something RFC 3261 forbids: answer ``status_hint`` and keep serving."""


class FramingError(SipParseError):
    """The byte stream cannot be cut into messages any more: answer if possible, then close.

    RFC 3261 §18.3: on a stream, Content-Length is the only way to find the end of
    a message, so a missing, negative or ambiguous one loses synchronisation.
    """


class MessageTooLarge(FramingError):
    """A header block (``status_hint`` 513) or a body (413) is over the configured limit."""
