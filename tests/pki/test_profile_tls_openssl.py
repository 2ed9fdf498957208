"""A real peer against each profile's TLS: ``openssl s_client -tls1`` ... ``-tls1_3``.

A small trio TLS server on loopback uses :func:`simulator.pki.server_context` as
the Edge does; ``openssl s_client`` (a separate program, OpenSSL's own client)
connects with one protocol version forced. The profile says which versions
are accepted (reference 1.14): SfB 2015 TLS 1.0-1.2, 2019/SE/Office 365 TLS
1.2-1.3. TLS 1.0/1.1 need OpenSSL 3's security level 0 on *both* sides (their
handshake signatures use SHA-1), so the client asks for it too.
"""

from __future__ import annotations

import shutil
import ssl
from dataclasses import dataclass

import pytest
import trio

from simulator.pki import IssuedCert, server_context
from simulator.policy import PROFILES

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")

FLAGS = {"TLSv1": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


@dataclass
class Seen:
    version: str | None = None
    error: BaseException | None = None


async def handshake(
    ctx: ssl.SSLContext, lab: dict[str, IssuedCert], *args: str, cert: str = "vcse.steven.lab"
) -> tuple[Seen, int]:
    """Serve one connection with ``ctx``; run s_client with ``args``; (server's view, exit)."""
    seen = Seen()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    assert OPENSSL is not None
    client = lab[cert]
    argv = [
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-quiet",
        "-no_ign_eof",
        "-cert",
        str(client.cert_path),
        "-key",
        str(client.key_path),
        *args,
    ]

    async def serve() -> None:
        tcp = await listeners[0].accept()
        stream = trio.SSLStream(tcp, ctx, server_side=True)
        try:
            await stream.do_handshake()
            seen.version = stream.version()
            data = await stream.receive_some(100)
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            seen.error = exc
        finally:
            await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.fail_after(10):
            done = await trio.run_process(
                argv, stdin=b"ping\n", capture_stdout=True, capture_stderr=True, check=False
            )
        nursery.cancel_scope.cancel()
    await listeners[0].aclose()
    return seen, done.returncode


def _ctx(lab: dict[str, IssuedCert], profile: str, *, purpose: bool = True) -> ssl.SSLContext:
    edge = lab["sip.skype.lab"]
    return server_context(
        cert=edge.cert_path,
        key=edge.key_path,
        chain=edge.chain_path,
        trust=[lab["private-root"].cert_path],
        profile=profile,  # type: ignore[arg-type]
        check_client_purpose=purpose,
    )


CASES = [
    (name, version, version in PROFILES[name].tls.versions)  # type: ignore[index]
    for name in PROFILES
    for version in FLAGS
]


@pytest.mark.parametrize(("profile", "version", "accepted"), CASES)
async def test_s_client_is_accepted_exactly_at_the_profile_versions(
    lab: dict[str, IssuedCert], profile: str, version: str, accepted: bool
) -> None:
    legacy = ("-cipher", "DEFAULT@SECLEVEL=0") if version in ("TLSv1", "TLSv1.1") else ()
    seen, code = await handshake(_ctx(lab, profile), lab, FLAGS[version], *legacy)
    if accepted:
        assert seen.error is None
        assert seen.version == version  # the server's view; s_client's exit varies
    else:
        assert seen.version is None
        assert code != 0


async def test_a_peer_offering_none_of_the_suites_is_refused(lab: dict[str, IssuedCert]) -> None:
    # Field case C17's class: Windows Server 2012 R2 has no ChaCha20 suite.
    only = ("-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305")
    seen, code = await handshake(_ctx(lab, "sfb2015"), lab, *only)
    assert seen.version is None
    assert code != 0
    # The same peer is fine with OpenSSL's defaults (the "default" profile).
    seen, code = await handshake(_ctx(lab, "default"), lab, *only)
    assert seen.version == "TLSv1.2"


@pytest.mark.parametrize(("purpose", "accepted"), [(True, False), (False, True)])
async def test_client_eku_is_checked_at_the_handshake_only_when_required(
    lab: dict[str, IssuedCert], purpose: bool, accepted: bool
) -> None:
    # "server-only" carries EKU serverAuth and no clientAuth.
    ctx = _ctx(lab, "sfb2019", purpose=purpose)
    seen, _code = await handshake(ctx, lab, "-tls1_2", cert="server-only")
    assert (seen.version == "TLSv1.2") is accepted


async def test_ignoring_the_eku_still_verifies_the_chain(lab: dict[str, IssuedCert]) -> None:
    ctx = _ctx(lab, "sfb2019", purpose=False)
    seen, _code = await handshake(ctx, lab, "-tls1_2", cert="expired")
    assert seen.version is None
    seen, _code = await handshake(ctx, lab, "-tls1_2", cert="self-signed")
    assert seen.version is None
