"""Network and TLS failures, in words a lab engineer can act on.

A real Expressway-E logs a refused handshake as the TLS alert it received; we do
the same and add what the alert usually means in a federation lab. With TLS 1.3
the client's handshake completes before the server has checked the client
certificate, so the server's refusal only shows on the first read (see
shared/interop/README.md §2): the phase of the failure matters for the wording.
"""

from __future__ import annotations

import enum
import ssl

import trio


class Phase(enum.Enum):
    """Where on the connection the failure happened."""

    CONNECT = "connect"
    HANDSHAKE = "handshake"
    EXCHANGE = "exchange"


#: What an alert received from the Edge usually means (RFC 8446 §6.2 names).
ALERT_MEANINGS: dict[str, str] = {
    "unknown ca": "the Edge refused our certificate",
    "bad certificate": "the Edge refused our certificate",
    "certificate unknown": "the Edge refused our certificate",
    "access denied": "the Edge refused our certificate",
    "unsupported certificate": "the Edge refused our certificate",
    "certificate expired": "the Edge says our certificate has expired",
    "certificate revoked": "the Edge says our certificate is revoked",
    "certificate required": "the Edge requires a client certificate and we sent none",
    "protocol version": "no TLS version in common with the Edge",
    "handshake failure": "no cipher suite or parameters in common with the Edge",
    "insufficient security": "no cipher suite or parameters in common with the Edge",
    "decrypt error": "the Edge could not verify our handshake signature",
    "internal error": "the Edge failed internally",
}


def _alert_name(reason: str) -> str | None:
    """``TLSV1_ALERT_UNKNOWN_CA`` -> ``unknown ca``; None when not an alert."""
    _, sep, name = reason.partition("_ALERT_")
    return name.replace("_", " ").lower() if sep else None


def _ssl_cause(exc: BaseException) -> BaseException:
    """The error that says what happened, under trio's wrappers.

    trio wraps ssl/OS errors in BrokenResourceError, and ``open_tcp_stream``
    raises ``OSError("all attempts to connect ... failed")`` from a group of the
    errors of each address tried; the first attempt's error speaks for them.
    """
    seen = exc
    while True:
        cause = seen.__cause__
        if isinstance(seen, trio.BrokenResourceError) and cause is not None:
            seen = cause
        elif isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
        elif type(seen) is OSError and isinstance(cause, BaseExceptionGroup):
            seen = cause
        else:
            return seen


def describe_network_error(exc: BaseException, *, phase: Phase, target: str) -> str:
    """One line saying what went wrong talking to ``target`` and what it usually means.

    Args:
        exc: an OSError, ssl.SSLError or trio.BrokenResourceError (any other
            exception gets its class name and message).
        phase: where it happened.
        target: ``host:port`` of the Edge, for the message.
    """
    cause = _ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = cause.verify_message or str(cause)
        return f"TLS: we do not trust the Edge's certificate ({detail})"
    if isinstance(cause, ssl.SSLError):
        reason = cause.reason or ""
        alert = _alert_name(reason)
        if alert is not None:
            meaning = ALERT_MEANINGS.get(alert, "sent by the Edge")
            return f"TLS alert: {alert} ({meaning})"
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "TLS: the Edge sent no client certificate (mutual TLS requires one)"
        if reason == "WRONG_VERSION_NUMBER":
            return f"TLS: {target} did not answer with TLS (a plaintext SIP port?)"
        if isinstance(cause, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
            return describe_closed(phase, target)
        return f"TLS error during the {phase.value}: {reason or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return f"connection refused by {target} (is the Edge listening there?)"
    if isinstance(cause, ConnectionResetError | BrokenPipeError):
        return f"connection reset by {target} during the {phase.value}" + _refusal_hint(phase)
    if isinstance(cause, OSError):
        text = cause.strerror or str(cause)
        return f"network error during the {phase.value} with {target}: {text}"
    if isinstance(cause, trio.BrokenResourceError):
        return describe_closed(phase, target)
    return f"{type(cause).__name__} during the {phase.value} with {target}: {cause}"


def _refusal_hint(phase: Phase) -> str:
    if phase is Phase.CONNECT:
        return ""
    return " (on TLS 1.3 this is how a refused client certificate can look)"


def describe_closed(phase: Phase, target: str) -> str:
    """One line for a peer that closed the connection (EOF) without an alert."""
    if phase is Phase.HANDSHAKE:
        return f"{target} closed the connection during the TLS handshake"
    return f"{target} closed the connection without answering" + _refusal_hint(phase)
