"""``openssl s_client`` against the Edge's federation port: what a TLS peer sees.

With TLS 1.3 the client's handshake completes before the server has looked at the
client certificate, so a refused certificate only shows on the client's first
read (shared/interop/README.md §2): every negative case sends a line and reads.
s_client runs with ``-quiet -no_ign_eof``: closing its stdin makes it send
close_notify and exit, so no case depends on a sleep in a shell pipeline.

A refusing Edge resets the TCP connection rather than sending a TLS alert
(reference §6: the far side reports 10054 WSAECONNRESET), so s_client reports
errno 104 (ECONNRESET) where Kamailio's peer would show alerts 116, 48 or 70.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Child, Lab, Procs

pytestmark = pytest.mark.interop

EDGE_FQDN = "sip.skype.lab"

#: What s_client prints when the Edge resets the connection (errno 104, ECONNRESET).
RESET = "errno=104"


def options(request_uri: str, to_uri: str, call_id: str) -> bytes:
    """An OPTIONS from steven.lab, as the interop README's check sends it."""
    return (
        f"OPTIONS {request_uri} SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bK" + call_id + "\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@steven.lab>;tag=1\r\n"
        f"To: <{to_uri}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def s_client(
    lab: Lab,
    procs: Procs,
    tool: Callable[[str], str],
    *,
    cert: tuple[Path, Path] | None,
    extra: tuple[str, ...] = (),
) -> Child:
    argv: list[str | Path] = [
        tool("openssl"),
        "s_client",
        "-connect",
        f"127.0.0.1:{lab.fed_port}",
        "-CAfile",
        lab.ca,
        "-quiet",
        "-no_ign_eof",
        *extra,
    ]
    if cert is not None:
        argv += ["-cert", cert[0], "-key", cert[1]]
    return procs.start(argv, stdin=subprocess.PIPE)


def send(child: Child, data: bytes) -> None:
    assert child.proc.stdin is not None
    child.proc.stdin.write(data)
    child.proc.stdin.flush()


def close_stdin(child: Child) -> None:
    assert child.proc.stdin is not None
    child.proc.stdin.close()


def good_cert(lab: Lab) -> tuple[Path, Path]:
    return lab.cert("vcse.steven.lab"), lab.key("vcse.steven.lab")


def handshake_failures(lab: Lab) -> list[dict[str, object]]:
    return [e for e in lab.events() if e.get("kind") == "tls-handshake-failed"]


def refused_after_first_read(
    lab: Lab, procs: Procs, tool: Callable[[str], str], **kw: object
) -> str:
    """Connect, send a line, read: return s_client's output once it has exited."""
    child = s_client(lab, procs, tool, **kw)  # type: ignore[arg-type]
    send(child, b"x\r\n")
    code = child.finish(timeout=10)
    assert code != 0, child.out.text
    assert "SIP/2.0" not in child.out.text
    # The seed lab is SfB 2015 (TLS 1.0-1.2, reference 1.14): the refusal comes inside
    # the handshake, by a TCP reset (with TLS 1.3 it would come on the first read).
    assert RESET in child.out.text
    assert "alert" not in child.out.text  # an Edge resets; it does not send a TLS alert
    return child.out.text


def test_good_cert_and_hostname_then_options_is_answered_200(
    lab: Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    child = s_client(
        lab,
        procs,
        tool,
        cert=good_cert(lab),
        extra=("-verify_hostname", EDGE_FQDN, "-verify_return_error"),
    )
    send(child, options(f"sip:stejanss@{EDGE_FQDN}", "sip:stejanss@skype.lab", "ping1"))
    child.out.wait_for(r"^SIP/2\.0 200 OK\r?$")
    child.out.wait_for(r"^CSeq: 1 OPTIONS\r?$")
    close_stdin(child)
    assert child.finish(timeout=10) == 0, child.out.text
    assert "verify return:1" in child.out.text
    [event] = [e for e in lab.events() if e.get("call_id") == "ping1"]
    assert (event["method"], event["status"], event["accepted"]) == ("OPTIONS", 200, True)
    assert handshake_failures(lab) == []
    assert lab.alive()


def test_edge_certificate_does_not_pass_for_another_hostname(
    lab: Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    # The control for -verify_hostname above: the check is real, not vacuous.
    child = s_client(
        lab,
        procs,
        tool,
        cert=good_cert(lab),
        extra=("-verify_hostname", "sip.other.lab", "-verify_return_error"),
    )
    assert child.finish(timeout=10) != 0
    assert "hostname mismatch" in child.out.text


def test_no_client_cert_is_refused_on_first_read(
    lab: Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    refused_after_first_read(lab, procs, tool, cert=None)
    [failure] = handshake_failures(lab)
    assert failure["reason"] == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert [e for e in lab.events() if "method" in e] == []
    assert lab.alive()


def test_cert_from_private_root_is_refused_on_first_read(
    lab: Lab, procs: Procs, tool: Callable[[str], str], rogue: tuple[Path, Path]
) -> None:
    refused_after_first_read(lab, procs, tool, cert=rogue)
    [failure] = handshake_failures(lab)
    assert failure["reason"] == "CERTIFICATE_VERIFY_FAILED"
    assert lab.alive()


def test_tls_1_3_handshake_fails(lab: Lab, procs: Procs, tool: Callable[[str], str]) -> None:
    # The seed lab is SfB 2015, which offers TLS 1.2, 1.1, 1.0 (reference 1.14): no 1.3.
    child = s_client(lab, procs, tool, cert=good_cert(lab), extra=("-tls1_3",))
    close_stdin(child)
    assert child.finish(timeout=10) != 0
    assert "Cipher is" not in child.out.text  # no session was ever established
    assert RESET in child.out.text
    [failure] = handshake_failures(lab)
    assert failure["reason"] == "UNSUPPORTED_PROTOCOL"
    assert lab.alive()


def test_edge_survives_a_peer_that_vanishes_without_close_notify(
    lab: Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    first = s_client(lab, procs, tool, cert=good_cert(lab))
    send(first, options("sip:stejanss@skype.lab", "sip:stejanss@skype.lab", "gone1"))
    first.out.wait_for(r"^SIP/2\.0 200 OK\r?$")
    first.proc.kill()  # SIGKILL: the kernel closes TCP, no TLS close_notify
    first.proc.wait(timeout=5)
    second = s_client(lab, procs, tool, cert=good_cert(lab))
    send(second, options("sip:stejanss@skype.lab", "sip:stejanss@skype.lab", "after1"))
    second.out.wait_for(r"^SIP/2\.0 200 OK\r?$", timeout=10)
    close_stdin(second)
    assert second.finish(timeout=10) == 0
    assert lab.alive()


def test_event_status_is_the_status_sent_on_the_wire(
    lab: Lab, procs: Procs, tool: Callable[[str], str]
) -> None:
    # An OPTIONS to a user at the Edge's FQDN (not a domain it serves) passes the
    # federation policy, then the emulated user agent answers 404.
    child = s_client(lab, procs, tool, cert=good_cert(lab))
    send(child, options(f"sip:ping@{EDGE_FQDN}", f"sip:ping@{EDGE_FQDN}", "fqdn1"))
    found = child.out.wait_for(r"^SIP/2\.0 (\d{3}) ")
    close_stdin(child)
    child.finish(timeout=10)
    [event] = [e for e in lab.events() if e.get("call_id") == "fqdn1"]
    assert event["status"] == int(found.group(1))
