"""Real mutual-TLS handshakes on loopback with the contexts the Edge and peers use."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trustme
from cryptography import x509

from simulator.pki import IssuedCert, PkiError, client_context, server_context

#: Upper bound for one exchange; a hang is a bug, this only turns it into a failure.
EXCHANGE_LIMIT = 30


@dataclass
class Outcome:
    """What each side of one exchange saw."""

    server_ok: bool = False
    client_ok: bool = False
    server_error: BaseException | None = None
    client_error: BaseException | None = None
    version: str | None = None
    peer_cert_der: bytes | None = None


async def exchange(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> Outcome:
    """Handshake once on 127.0.0.1, then ping/pong, recording each side's result.

    With TLS 1.3 the client finishes its handshake before the server has
    checked the client certificate, so a refusal only reaches the client on its
    first read: the client therefore always reads the server's answer.
    """
    outcome = Outcome()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    port = listener.socket.getsockname()[1]

    async def serve_one() -> None:
        tcp = await listener.accept()
        stream = trio.SSLStream(tcp, server_ctx, server_side=True)
        try:
            await stream.do_handshake()
            outcome.peer_cert_der = stream.getpeercert(binary_form=True)
            data = await stream.receive_some(100)
            await stream.send_all(b"pong:" + data)
            outcome.server_ok = True
        except trio.BrokenResourceError as exc:
            outcome.server_error = exc
        finally:
            await trio.aclose_forcefully(stream)

    with trio.fail_after(EXCHANGE_LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_one)
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            stream = trio.SSLStream(tcp, client_ctx, server_hostname="sip.skype.lab")
            try:
                await stream.do_handshake()
                outcome.version = stream.version()
                await stream.send_all(b"ping")
                outcome.client_ok = await stream.receive_some(100) == b"pong:ping"
            except trio.BrokenResourceError as exc:
                outcome.client_error = exc
            finally:
                await trio.aclose_forcefully(stream)
    await listener.aclose()
    return outcome


def _server(lab: dict[str, IssuedCert], name: str, *trusted: str, **kw: object) -> ssl.SSLContext:
    item = lab[name]
    return server_context(
        cert=item.cert_path,
        key=item.key_path,
        chain=item.chain_path,
        trust=[lab[t].cert_path for t in trusted],
        **kw,  # type: ignore[arg-type]
    )


def _client(
    lab: dict[str, IssuedCert], name: str | None, *trusted: str, **kw: object
) -> ssl.SSLContext:
    item = lab[name] if name is not None else None
    return client_context(
        cert=item.cert_path if item else None,
        key=item.key_path if item else None,
        chain=item.chain_path if item else None,
        trust=[lab[t].cert_path for t in trusted],
        **kw,  # type: ignore[arg-type]
    )


async def test_mutual_tls_succeeds_with_a_trusted_client_certificate(
    lab: dict[str, IssuedCert],
) -> None:
    server = _server(lab, "sip.skype.lab", "private-root")
    client = _client(lab, "vcse.steven.lab", "public-root")
    outcome = await exchange(server, client)
    assert outcome.server_ok, outcome.server_error
    assert outcome.client_ok, outcome.client_error
    assert outcome.version == "TLSv1.3"
    assert outcome.peer_cert_der is not None
    peer = x509.load_der_x509_certificate(outcome.peer_cert_der)
    assert peer == x509.load_pem_x509_certificate(lab["vcse.steven.lab"].cert_path.read_bytes())


async def test_server_refuses_a_client_certificate_from_an_untrusted_ca(
    lab: dict[str, IssuedCert], tmp_path: Path
) -> None:
    stranger = trustme.CA().issue_cert("vcse.steven.lab")
    cert, key = tmp_path / "stranger.crt", tmp_path / "stranger.key"
    stranger.cert_chain_pems[0].write_to_path(str(cert))
    stranger.private_key_pem.write_to_path(str(key))
    server = _server(lab, "sip.skype.lab", "private-root")
    client = client_context(cert=cert, key=key, trust=[lab["public-root"].cert_path])
    outcome = await exchange(server, client)
    assert not outcome.server_ok
    assert not outcome.client_ok  # TLS 1.3: seen on the client's first read
    assert isinstance(outcome.server_error, trio.BrokenResourceError)
    assert isinstance(outcome.server_error.__cause__, ssl.SSLCertVerificationError)


async def test_server_requires_a_client_certificate(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root")
    outcome = await exchange(server, _client(lab, None, "public-root"))
    assert not outcome.server_ok
    assert not outcome.client_ok
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(outcome.server_error.__cause__)


async def test_client_certificate_can_be_optional(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root", require_client_cert=False)
    outcome = await exchange(server, _client(lab, None, "public-root"))
    assert outcome.server_ok, outcome.server_error
    assert outcome.client_ok, outcome.client_error
    assert outcome.peer_cert_der is None


async def test_client_refuses_a_server_it_does_not_trust(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root")
    client = _client(lab, "vcse.steven.lab", "private-root")  # not the Edge's public root
    outcome = await exchange(server, client)
    assert not outcome.client_ok
    assert isinstance(outcome.client_error, trio.BrokenResourceError)
    assert isinstance(outcome.client_error.__cause__, ssl.SSLCertVerificationError)
    assert not outcome.server_ok


async def test_server_without_its_intermediate_is_not_trusted(lab: dict[str, IssuedCert]) -> None:
    """The chain argument is what makes a leaf under an intermediate verifiable."""
    item = lab["sip.skype.lab"]
    bare = server_context(
        cert=item.cert_path, key=item.key_path, trust=[lab["private-root"].cert_path]
    )
    outcome = await exchange(bare, _client(lab, "vcse.steven.lab", "public-root"))
    assert not outcome.client_ok
    assert isinstance(outcome.client_error.__cause__, ssl.SSLCertVerificationError)


async def test_hostname_is_not_checked_unless_asked(lab: dict[str, IssuedCert]) -> None:
    """The caller matches the SRV target itself; OpenSSL's check is opt-in."""
    server = _server(lab, "vcse.steven.lab", "private-root")  # not named sip.skype.lab
    relaxed = _client(lab, "vcse.steven.lab", "private-root")
    assert (await exchange(server, relaxed)).client_ok
    strict = _client(lab, "vcse.steven.lab", "private-root", check_hostname=True)
    outcome = await exchange(server, strict)
    assert not outcome.client_ok
    assert "Hostname mismatch" in str(outcome.client_error.__cause__)


@pytest.mark.parametrize(
    ("server_profile", "client_profile", "version"),
    [
        ("sfb2019", "default", "TLSv1.3"),
        ("sfb2015", "default", "TLSv1.2"),
        ("sfb2015", "sfb2015", "TLSv1.2"),
        ("default", "sfb2019", "TLSv1.3"),
    ],
)
async def test_profiles_negotiate_the_documented_versions(
    lab: dict[str, IssuedCert], server_profile: str, client_profile: str, version: str
) -> None:
    server = _server(lab, "sip.skype.lab", "private-root", profile=server_profile)
    client = _client(lab, "vcse.steven.lab", "public-root", profile=client_profile)
    outcome = await exchange(server, client)
    assert outcome.client_ok, outcome.client_error
    assert outcome.version == version


async def test_sfb2015_speaks_tls_1_0_to_a_legacy_peer(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root", profile="sfb2015")
    client = _client(lab, "vcse.steven.lab", "public-root", profile="sfb2015")
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    outcome_12 = await exchange(server, client)
    assert outcome_12.version == "TLSv1.2"
    legacy = _client(lab, "vcse.steven.lab", "public-root", profile="sfb2015")
    with pytest.warns(DeprecationWarning, match="TLSv1"):  # Python frowns; the lab must
        legacy.maximum_version = ssl.TLSVersion.TLSv1
    outcome = await exchange(server, legacy)
    assert outcome.client_ok, outcome.client_error
    assert outcome.version == "TLSv1"


async def test_sfb2015_fails_against_a_tls_1_3_only_client(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root", profile="sfb2015")
    client = _client(lab, "vcse.steven.lab", "public-root")
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    outcome = await exchange(server, client)
    assert not outcome.client_ok
    assert not outcome.server_ok
    assert isinstance(outcome.client_error, trio.BrokenResourceError)


def test_only_sfb2015_lowers_the_security_level(lab: dict[str, IssuedCert]) -> None:
    legacy = _server(lab, "sip.skype.lab", profile="sfb2015")
    modern = _server(lab, "sip.skype.lab", profile="sfb2019")
    assert legacy.minimum_version == ssl.TLSVersion.TLSv1
    assert legacy.maximum_version == ssl.TLSVersion.TLSv1_2
    assert modern.minimum_version == ssl.TLSVersion.TLSv1_2
    assert modern.maximum_version == ssl.TLSVersion.TLSv1_3
    # OpenSSL 3 needs security level 0 for TLS 1.0/1.1; everything else keeps the default.
    assert legacy.security_level == 0
    assert modern.security_level == ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).security_level
    assert modern.security_level > 0


def test_contexts_verify_peers_and_keep_session_tickets(lab: dict[str, IssuedCert]) -> None:
    server = _server(lab, "sip.skype.lab", "private-root")
    client = _client(lab, None, "public-root")
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert client.verify_mode == ssl.CERT_REQUIRED
    assert not client.check_hostname
    assert not server.options & ssl.OP_NO_TICKET
    assert not client.options & ssl.OP_NO_TICKET


# --- bad files --------------------------------------------------------------------


def test_key_that_does_not_match_its_certificate(lab: dict[str, IssuedCert]) -> None:
    with pytest.raises(PkiError) as exc:
        server_context(cert=lab["sip.skype.lab"].cert_path, key=lab["rsa"].key_path)
    assert exc.value.path == str(lab["rsa"].key_path)
    assert "does not belong" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_files_name_the_file_and_a_fix(lab: dict[str, IssuedCert], tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(PkiError) as exc:
        server_context(cert=missing, key=lab["rsa"].key_path)
    assert exc.value.path == str(missing)
    assert "fedsim certs init" in str(exc.value)
    with pytest.raises(PkiError) as exc:
        client_context(trust=[missing])
    assert exc.value.path == str(missing)
    with pytest.raises(PkiError) as exc:
        server_context(cert=lab["rsa"].cert_path, key=tmp_path)
    assert "directory" in str(exc.value)


def test_not_a_pem_is_refused(lab: dict[str, IssuedCert], tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    with pytest.raises(PkiError, match="no CERTIFICATE block"):
        client_context(trust=[junk])
    with pytest.raises(PkiError, match="not a PEM private key"):
        server_context(cert=lab["rsa"].cert_path, key=junk)


def test_client_cert_without_key_is_refused(lab: dict[str, IssuedCert]) -> None:
    with pytest.raises(PkiError, match="without its key"):
        client_context(cert=lab["rsa"].cert_path)


def test_unknown_profile_is_refused(lab: dict[str, IssuedCert]) -> None:
    with pytest.raises(PkiError, match="unknown TLS profile"):
        client_context(profile="sfb2010")  # type: ignore[arg-type]
