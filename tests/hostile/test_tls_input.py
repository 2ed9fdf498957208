"""Hostile TLS on the federation port: every refusal is one event, and the Edge keeps serving.

Covered elsewhere (not repeated): untrusted, expired and not-yet-valid client
certificates and the hosted public-CA rule (tests/edge/test_inbound.py), TLS
1.1 and no client certificate from openssl s_client (tests/interop/test_openssl.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import ssl
import warnings
from typing import Any

import pytest
import trio

from simulator.lab import builtin_lab, with_profile
from simulator.pki import CertSpec, issue_pki

REFUSED = "tls-handshake-failed"


def _refusals(edge: Any) -> list[str]:
    return [str(e["reason"]) for e in edge.events() if e.get("rule") == REFUSED]


async def _read_until_closed(stream: trio.abc.Stream, limit: float = 10.0) -> bytes:
    """Everything the Edge sends until it closes (a reset counts as closed)."""
    received = b""
    with trio.fail_after(limit):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return received
            if not chunk:
                return received
            received += chunk


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"OPTIONS sip:a@skype.lab SIP/2.0\r\nContent-Length: 0\r\n\r\n", id="sip"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: sip.skype.lab\r\n\r\n", id="http"),
        pytest.param(b"\x16\x03\x01\x00\x05hello", id="bogus-client-hello"),
        pytest.param(b"\x00" * 4096, id="nul-bytes"),
    ],
)
async def test_plaintext_on_the_tls_port_is_refused(edge: Any, payload: bytes) -> None:
    raw = await edge.raw()
    await raw.send_all(payload)
    reply = await _read_until_closed(raw)
    assert b"SIP/2.0" not in reply
    assert b"HTTP/" not in reply
    await raw.aclose()
    assert len(_refusals(edge)) == 1
    await edge.still_serves()


@pytest.mark.parametrize(
    "payload", [pytest.param(b"", id="silent"), pytest.param(b"\x16\x03\x01", id="half-hello")]
)
async def test_handshake_that_never_completes_times_out(edge: Any, payload: bytes) -> None:
    """Limits.handshake_timeout (1 s in this fixture) closes a silent or stalled client."""
    raw = await edge.raw()
    await raw.send_all(payload)
    assert await _read_until_closed(raw) == b""
    await raw.aclose()
    assert _refusals(edge) == ["TLS handshake timed out"]
    await edge.still_serves()


async def test_no_client_certificate_is_refused(edge: Any) -> None:
    with pytest.raises((trio.BrokenResourceError, ssl.SSLError)):  # noqa: PT012
        client = await edge.connect(None)
        await client.send(b"OPTIONS sip:a@skype.lab SIP/2.0\r\n\r\n")
        assert await client.receive() is None
        raise trio.BrokenResourceError("closed without an answer")
    assert len(_refusals(edge)) == 1
    await edge.still_serves()


async def test_client_certificate_without_client_auth_eku_gets_no_200(
    edge: Any, sip: Any, tmp_path: Any
) -> None:
    """A serverAuth-only certificate: OpenSSL's sslclient purpose check refuses the handshake."""
    issued = issue_pki(
        [
            *edge.lab.certs,
            CertSpec(
                name="servereku",
                issuer="public-root",
                cn="vcse.steven.lab",
                san=("vcse.steven.lab",),
                eku=("serverAuth",),
            ),
        ],
        tmp_path / "certs",
        now=dt.datetime.now(dt.UTC),
    )
    edge.addresses.issued["servereku"] = issued["servereku"]
    try:
        client = await edge.connect("servereku")
        await client.send(sip.request("OPTIONS", "eku"))
        reply = await client.receive()
    except (trio.BrokenResourceError, ssl.SSLError):
        reply = None
    assert reply is None
    assert _refusals(edge) == ["CERTIFICATE_VERIFY_FAILED"]
    await edge.still_serves()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
@pytest.mark.parametrize(("profile", "accepted"), [("sfb2015", True), ("sfb2019", False)])
async def test_old_tls_versions_follow_the_profile(
    start_edge: Any, version: ssl.TLSVersion, profile: str, accepted: bool
) -> None:
    # Reference 1.14: SfB 2015 offers TLS 1.2, 1.1, 1.0; SfB 2019 only 1.3 and 1.2.
    lab = builtin_lab()
    lab = dataclasses.replace(lab, edge=with_profile(lab.edge, profile, {}))
    edge = await start_edge(lab, dns_timeout=0.3, dns_attempts=1, handshake_timeout=1.0)
    ctx = edge.context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = version
        ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if accepted:
        client = await edge.connect(ctx=ctx)
        assert client.stream.version() == version.name.replace("_", ".")
        assert _refusals(edge) == []
    else:
        with pytest.raises((trio.BrokenResourceError, ssl.SSLError)):
            await edge.connect(ctx=ctx)
        assert len(_refusals(edge)) == 1
    await edge.still_serves()


async def test_reset_mid_message_costs_only_that_connection(
    edge: Any, sip: Any, abort: Any
) -> None:
    for cut in (10, 200):
        client = await edge.connect()
        await client.send(sip.invite(f"cut{cut}")[:cut])
        abort(client.stream.transport_stream)
        await client.stream.transport_stream.aclose()
    await edge.still_serves()
    assert [e for e in edge.events() if e.get("kind") == "internal-error"] == []


async def test_reset_right_after_the_handshake(edge: Any, abort: Any) -> None:
    client = await edge.connect()
    abort(client.stream.transport_stream)
    await client.stream.transport_stream.aclose()
    await edge.still_serves()


# --- connection limits ---------------------------------------------------------------------


async def test_connection_limit_refuses_new_connections_and_keeps_the_old_ones(
    start_edge: Any, sip: Any
) -> None:
    edge = await start_edge(max_connections=3, handshake_timeout=2.0)
    held = [await edge.connect() for _ in range(3)]
    with pytest.raises((trio.BrokenResourceError, ssl.SSLError, OSError)):  # noqa: PT012
        extra = await edge.connect()
        await extra.send(sip.request("OPTIONS", "over"))
        assert await extra.receive() is None
        raise trio.BrokenResourceError("refused after the handshake")
    assert _refusals(edge) == ["connection limit reached"]
    for i, client in enumerate(held):
        await client.send(sip.request("OPTIONS", f"held{i}"))
        assert (await client.response()).status == 200
    await held[0].stream.aclose()  # close_notify: the slot frees when the Edge reads it
    with trio.fail_after(5):
        while True:  # poll for the freed slot: the Edge's side of the close is asynchronous
            try:
                await edge.still_serves()
                break
            except (trio.BrokenResourceError, ssl.SSLError, AssertionError):
                await trio.sleep(0.05)


async def test_per_peer_limit_refuses_that_peer_only(start_edge: Any, sip: Any) -> None:
    edge = await start_edge(max_connections_per_peer=2, handshake_timeout=2.0)
    held = [await edge.connect() for _ in range(2)]
    with pytest.raises((trio.BrokenResourceError, ssl.SSLError, OSError)):  # noqa: PT012
        extra = await edge.connect()
        await extra.send(sip.request("OPTIONS", "over"))
        assert await extra.receive() is None
        raise trio.BrokenResourceError("refused after the handshake")
    assert _refusals(edge) == ["per-peer connection limit reached"]
    # Another source address (127.0.0.2 is loopback too) is a different peer.
    tcp = await trio.open_tcp_stream(*edge.federation, local_address="127.0.0.2")
    other = trio.SSLStream(tcp, edge.context(), server_hostname="sip.skype.lab")
    with trio.fail_after(10):
        await other.send_all(sip.request("OPTIONS", "otherpeer"))
        assert b"SIP/2.0 200 OK" in await other.receive_some(65536)
    await trio.aclose_forcefully(other)
    for i, client in enumerate(held):
        await client.send(sip.request("OPTIONS", f"held{i}"))
        assert (await client.response()).status == 200


# --- renegotiation (openssl s_client: the only client that can ask for it) --------------------


@pytest.mark.interop
async def test_client_renegotiation_does_not_break_the_edge(edge: Any, sip: Any) -> None:
    """TLS 1.2, then s_client's "R" command asks for a renegotiation mid-connection."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    issued = edge.addresses.issued
    host, port = edge.federation
    argv = [
        openssl, "s_client", "-connect", f"{host}:{port}", "-tls1_2", "-crlf",
        "-cert", str(issued["vcse.steven.lab"].cert_path),
        "-key", str(issued["vcse.steven.lab"].key_path),
        "-CAfile", str(issued["public-root"].cert_path),
    ]  # fmt: skip
    stdin = b"R\n" + sip.request("OPTIONS", "reneg").replace(b"\r\n", b"\n")
    with trio.fail_after(20):
        done = await trio.run_process(
            argv, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert "RENEGOTIATING" in output, output
    assert "no renegotiation" in output, output  # refused with an alert (OpenSSL 3 default)
    await edge.still_serves()
    assert [e for e in edge.events() if e.get("kind") == "internal-error"] == []
