"""place_call (UAC) against serve_peer (UAS) over real mutual TLS on loopback."""

from __future__ import annotations

import random
import ssl
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio
import trustme

from simulator.errors import FedsimError
from simulator.peer.uac import CallResult, place_call
from simulator.peer.uas import serve_peer
from simulator.sip import Request

Recorder = list[tuple[Request, tuple[str, int]]]


class Peer:
    """A running serve_peer and what it received."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.requests: list[Request] = []
        self.tls_errors: list[str] = []
        self.seen = trio.Event()
        self.wanted: set[str] = set()

    def on_request(self, request: Request, remote: tuple[str, int]) -> None:
        self.requests.append(request)
        if request.method in self.wanted:
            self.seen.set()

    def on_tls_error(self, reason: str, remote: tuple[str, int]) -> None:
        self.tls_errors.append(reason)
        self.seen.set()

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


StartPeer = Callable[..., Awaitable[Peer]]


@pytest.fixture
def start_peer(nursery: trio.Nursery, edge_server_ctx: ssl.SSLContext) -> StartPeer:
    """Start serve_peer on 127.0.0.1:0 with the given options; return its recorder."""

    async def start(ctx: ssl.SSLContext | None = None, **options: object) -> Peer:
        peer = Peer(("", 0))
        addr = await nursery.start(
            partial(
                serve_peer,
                host="127.0.0.1",
                port=0,
                ssl_context=ctx or edge_server_ctx,
                on_request=peer.on_request,
                on_tls_error=peer.on_tls_error,
                **options,  # type: ignore[arg-type]
            )
        )
        peer.addr = addr
        return peer

    return start


async def call(peer: Peer, ctx: ssl.SSLContext, **options: object) -> CallResult:
    kwargs: dict[str, object] = {
        "edge": peer.addr,
        "ssl_context": ctx,
        "server_hostname": "sip.skype.lab",
        "from_uri": "sip:2000@acano.steven.lab",
        "to_uri": "sip:stejanss@skype.lab",
        "timeout": 10.0,
        "rng": random.Random(4352),
    }
    kwargs.update(options)
    return await place_call(**kwargs)  # type: ignore[arg-type]


def branch(request: Request) -> str | None:
    return request.vias[0].branch


async def test_invite_answered_200_is_acked_and_hung_up(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext
) -> None:
    peer = await start_peer()
    result = await call(peer, expe_client_ctx)
    assert result.tls_error is None
    assert [r.status for r in result.responses] == [100, 200]
    assert result.final is result.responses[-1]
    assert result.final.headers.get("Content-Type") == "application/sdp"
    assert b"m=audio 24000 RTP/AVP 0" in result.final.body
    assert result.final.to.tag
    assert result.ack is not None
    assert result.bye is not None
    assert [r.status for r in result.bye_responses] == [200]
    assert result.forwarded_dialog
    assert peer.methods() == ["INVITE", "ACK", "BYE"]
    invite, ack, bye = peer.requests
    # RFC 3261 §13.2.2.4: the ACK of a 2xx is its own transaction (new branch), same CSeq number.
    assert branch(ack) != branch(invite)
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert bye.cseq == (invite.cseq[0] + 1, "BYE")
    assert ack.to.tag == bye.to.tag == result.final.to.tag
    # The 2xx's Contact is the remote target.
    assert ack.uri == bye.uri == f"sip:stejanss@127.0.0.1:{peer.addr[1]};transport=tls"


async def test_invite_has_the_expressway_shape(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext
) -> None:
    peer = await start_peer()
    result = await call(peer, expe_client_ctx, pai="sip:2000@steven.lab")
    invite = peer.requests[0]
    assert invite == result.request
    via = invite.vias[0]
    assert (via.transport, via.host, via.port) == ("TLS", "127.0.0.1", result.local_port)
    assert via.branch is not None
    assert via.branch.startswith("z9hG4bK")
    assert invite.headers.get("Max-Forwards") == "70"
    assert invite.headers.get("P-Asserted-Identity") == "<sip:2000@steven.lab>"
    assert invite.headers.get("User-Agent") == "TANDBERG/4352 (X14.0.2)"
    assert invite.headers.get("Contact") == (
        f"<sip:2000@127.0.0.1:{result.local_port};transport=tls>"
    )
    assert invite.from_.tag is not None
    assert len(invite.from_.tag) == 16
    assert invite.to.tag is None
    assert invite.headers.get("Content-Type") == "application/sdp"
    assert b"a=rtpmap:8 PCMA/8000" in invite.body


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (404, "Not Found"),
        (480, "Temporarily Unavailable"),
        (486, "Busy Here"),
        (503, "Service Unavailable"),
    ],
)
async def test_failure_is_acked_on_the_invite_branch_and_never_hung_up(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext, answer: int, reason: str
) -> None:
    peer = await start_peer(answer=answer)
    peer.wanted = {"ACK"}
    result = await call(peer, expe_client_ctx)
    assert result.final is not None
    assert (result.final.status, result.final.reason) == (answer, reason)
    # Expressway relays a failure as it is: no ms-diagnostics.
    assert "ms-diagnostics" not in result.final.headers
    assert result.final.headers.get("Server") == "TANDBERG/4352 (X14.0.2)"
    with trio.fail_after(5):
        await peer.seen.wait()
    assert peer.methods() == ["INVITE", "ACK"]
    invite, ack = peer.requests
    # RFC 3261 §17.1.1.3: the ACK of a non-2xx reuses the INVITE's branch.
    assert branch(ack) == branch(invite)
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert ack.to.tag == result.final.to.tag
    assert ack.uri == invite.uri
    assert result.bye is None
    assert not result.forwarded_dialog


async def test_no_hangup_leaves_the_call_up(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext
) -> None:
    peer = await start_peer()
    peer.wanted = {"ACK"}
    result = await call(peer, expe_client_ctx, hang_up=False)
    assert result.final is not None
    assert result.final.status == 200
    with trio.fail_after(5):
        await peer.seen.wait()
    assert peer.methods() == ["INVITE", "ACK"]
    assert result.bye is None
    assert not result.forwarded_dialog


@pytest.mark.parametrize(("answer", "expected"), [(200, 200), (480, 480)])
async def test_message_is_answered_with_the_peer_answer(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext, answer: int, expected: int
) -> None:
    peer = await start_peer(answer=answer)
    result = await call(peer, expe_client_ctx, method="MESSAGE")
    assert [r.status for r in result.responses] == [expected]
    assert result.ack is None
    message = peer.requests[0]
    assert message.method == "MESSAGE"
    assert message.headers.get("Content-Type") == "text/plain;charset=UTF-8"
    assert message.body


async def test_options_is_answered_200_with_capabilities(
    start_peer: StartPeer, expe_client_ctx: ssl.SSLContext
) -> None:
    peer = await start_peer(answer=486)
    result = await call(peer, expe_client_ctx, method="OPTIONS")
    assert result.final is not None
    assert result.final.status == 200
    assert "INVITE" in result.final.headers.get_all("Allow")
    assert peer.requests[0].body == b""
    assert result.ack is None


async def test_untrusted_client_certificate_is_refused_with_an_alert(
    start_peer: StartPeer,
    make_client_ctx: Callable[..., ssl.SSLContext],
    rogue_ca: trustme.CA,
    lab_ca: trustme.CA,
) -> None:
    peer = await start_peer()
    ctx = make_client_ctx(rogue_ca, "vcse.steven.lab", trust=lab_ca)
    result = await call(peer, ctx)
    assert result.final is None
    assert not result.timed_out
    assert result.tls_error == "TLS alert: unknown ca (the Edge refused our certificate)"
    assert result.local_port > 0
    assert peer.requests == []
    assert any("do not trust" in e for e in peer.tls_errors)


async def test_missing_client_certificate_is_refused_with_certificate_required(
    start_peer: StartPeer, make_client_ctx: Callable[..., ssl.SSLContext], lab_ca: trustme.CA
) -> None:
    peer = await start_peer()
    result = await call(peer, make_client_ctx(None, None, trust=lab_ca))
    assert result.final is None
    assert result.tls_error is not None
    assert result.tls_error.startswith("TLS alert: certificate required")


async def test_server_certificate_we_do_not_trust_fails_the_handshake(
    start_peer: StartPeer,
    make_client_ctx: Callable[..., ssl.SSLContext],
    lab_ca: trustme.CA,
    rogue_ca: trustme.CA,
) -> None:
    peer = await start_peer()
    result = await call(peer, make_client_ctx(lab_ca, "vcse.steven.lab", trust=rogue_ca))
    assert result.final is None
    assert result.tls_error is not None
    assert result.tls_error.startswith("TLS: we do not trust the Edge's certificate")
    assert peer.requests == []


async def test_refused_connection_is_reported_not_raised(expe_client_ctx: ssl.SSLContext) -> None:
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    peer = Peer(("127.0.0.1", port))
    result = await call(peer, expe_client_ctx)
    assert result.final is None
    assert result.local_port == 0
    assert result.tls_error is not None
    assert "connection refused" in result.tls_error
    # The request is still reported, with a sent-by that cannot resolve.
    assert result.request.vias[0].host == "fedsim.invalid"


async def test_silent_edge_times_out(
    nursery: trio.Nursery, edge_server_ctx: ssl.SSLContext, expe_client_ctx: ssl.SSLContext
) -> None:
    async def handshake_then_listen(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.do_handshake()
        await trio.sleep_forever()

    listeners = await nursery.start(
        partial(
            trio.serve_ssl_over_tcp, handshake_then_listen, 0, edge_server_ctx, host="127.0.0.1"
        )
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    result = await call(Peer(("127.0.0.1", port)), expe_client_ctx, timeout=0.5)
    assert result.final is None
    assert result.tls_error is None
    assert result.timed_out


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "REFER"}, "not one of INVITE, MESSAGE, OPTIONS, SUBSCRIBE"),
        ({"from_uri": "2000@acano.steven.lab"}, "from URI"),
        ({"to_uri": "sip:"}, "to URI"),
        ({"pai": "tel:+3225551234"}, "must be a sip: or sips: URI"),
        ({"timeout": 0}, "timeout"),
        ({"edge": ("127.0.0.1", 70000)}, "outside 1-65535"),
    ],
)
async def test_bad_inputs_raise_fedsim_error(
    expe_client_ctx: ssl.SSLContext, options: dict[str, object], match: str
) -> None:
    with pytest.raises(FedsimError, match=match):
        await call(Peer(("127.0.0.1", 5061)), expe_client_ctx, **options)


@pytest.mark.parametrize(
    ("options", "match"), [({"answer": 180}, "answer 180"), ({"ring_seconds": -1}, "ring")]
)
async def test_serve_peer_rejects_bad_settings(
    edge_server_ctx: ssl.SSLContext, options: dict[str, object], match: str
) -> None:
    with pytest.raises(FedsimError, match=match):
        await serve_peer(host="127.0.0.1", port=0, ssl_context=edge_server_ctx, **options)  # type: ignore[arg-type]


async def test_an_edge_that_breaks_framing_is_reported_not_raised(
    nursery: trio.Nursery, edge_server_ctx: ssl.SSLContext, expe_client_ctx: ssl.SSLContext
) -> None:
    async def garbage(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"SIP/2.0 200 OK\r\nContent-Length: many\r\n\r\n")
        await trio.sleep_forever()

    listeners = await nursery.start(
        partial(trio.serve_ssl_over_tcp, garbage, 0, edge_server_ctx, host="127.0.0.1")
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    result = await call(Peer(("127.0.0.1", port)), expe_client_ctx)
    assert result.final is None
    assert result.tls_error is not None
    assert "not SIP framing" in result.tls_error
