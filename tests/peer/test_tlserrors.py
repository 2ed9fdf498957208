"""Network and TLS failures become one line a lab engineer can act on."""

from __future__ import annotations

import ssl

import pytest
import trio

from simulator.peer.tlserrors import Phase, describe_closed, describe_network_error

TARGET = "127.0.0.1:5061"


def _ssl_error(reason: str, cls: type[ssl.SSLError] = ssl.SSLError) -> ssl.SSLError:
    exc = cls(1, f"[SSL: {reason}] something (_ssl.c:1)")
    exc.reason = reason
    return exc


def _wrapped(cause: BaseException) -> trio.BrokenResourceError:
    """What trio's SSLStream raises: BrokenResourceError from the ssl error."""
    try:
        raise trio.BrokenResourceError from cause
    except trio.BrokenResourceError as exc:
        return exc


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("TLSV1_ALERT_UNKNOWN_CA", "TLS alert: unknown ca (the Edge refused our certificate)"),
        ("SSLV3_ALERT_BAD_CERTIFICATE", "TLS alert: bad certificate (the Edge refused our"),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLS alert: certificate required (the Edge requires"),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "TLS alert: protocol version (no TLS version in common"),
        ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "TLS alert: certificate expired (the Edge says"),
        ("TLSV1_ALERT_NO_APPLICATION_PROTOCOL", "TLS alert: no application protocol (sent by"),
        ("WRONG_VERSION_NUMBER", f"TLS: {TARGET} did not answer with TLS"),
    ],
)
def test_ssl_errors_are_named_and_explained(reason: str, expected: str) -> None:
    text = describe_network_error(_wrapped(_ssl_error(reason)), phase=Phase.EXCHANGE, target=TARGET)
    assert text.startswith(expected)


def test_untrusted_server_certificate_gives_the_verify_message() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    exc.verify_message = "unable to get local issuer certificate"
    text = describe_network_error(_wrapped(exc), phase=Phase.HANDSHAKE, target=TARGET)
    assert text == (
        "TLS: we do not trust the Edge's certificate (unable to get local issuer certificate)"
    )


@pytest.mark.parametrize(
    ("exc", "phase", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), Phase.CONNECT, "connection refused by"),
        (ConnectionResetError(104, "reset"), Phase.EXCHANGE, "connection reset by"),
        (OSError(113, "No route to host"), Phase.CONNECT, "network error during the connect"),
        (_ssl_error("UNEXPECTED_EOF_WHILE_READING", ssl.SSLEOFError), Phase.HANDSHAKE, TARGET),
    ],
)
def test_os_level_failures_name_the_target(exc: BaseException, phase: Phase, expected: str) -> None:
    text = describe_network_error(_wrapped(exc), phase=phase, target=TARGET)
    assert expected in text
    assert TARGET in text


def test_a_reset_after_the_handshake_hints_at_a_refused_certificate() -> None:
    text = describe_network_error(
        ConnectionResetError(104, "reset"), phase=Phase.EXCHANGE, target=TARGET
    )
    assert "refused client certificate" in text
    connect = describe_network_error(
        ConnectionResetError(104, "reset"), phase=Phase.CONNECT, target=TARGET
    )
    assert "certificate" not in connect


def test_close_during_handshake_and_after_differ() -> None:
    assert "during the TLS handshake" in describe_closed(Phase.HANDSHAKE, TARGET)
    assert "without answering" in describe_closed(Phase.EXCHANGE, TARGET)


def test_open_tcp_stream_failure_is_read_through_its_group() -> None:
    """trio raises OSError("all attempts ... failed") from a group of per-address errors."""
    group = ExceptionGroup("attempts", [ConnectionRefusedError(111, "Connection refused")])
    try:
        raise OSError("all attempts to connect to 127.0.0.1:5061 failed") from group
    except OSError as exc:
        text = describe_network_error(exc, phase=Phase.CONNECT, target=TARGET)
    assert text == f"connection refused by {TARGET} (is the Edge listening there?)"
