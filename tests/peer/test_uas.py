"""serve_peer driven by a raw TLS client: keep-alives, many requests, CANCEL, presence,
bad clients."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
import trio

from simulator.errors import FedsimError
from simulator.peer.conn import SipConnection
from simulator.peer.uas import serve_peer
from simulator.sip import Headers, Request, Response, build_response, serialize

CALL_ID = "f1b3ad5d-183b-4632-b210-c2f9bec71960"
OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def request(
    method: str,
    *,
    cseq: int = 1,
    cseq_method: str | None = None,
    branch: str = "z9hG4bKraw1",
    to_tag: str | None = None,
    body: bytes = b"",
) -> Request:
    to = "<sip:stejanss@steven.lab>" + (f";tag={to_tag}" if to_tag else "")
    pairs = [
        ("Via", f"SIP/2.0/TLS 127.0.0.1:5062;branch={branch}"),
        ("Max-Forwards", "70"),
        ("From", "<sip:bob@skype.lab>;tag=280f2bf329"),
        ("To", to),
        ("Call-ID", CALL_ID),
        ("CSeq", f"{cseq} {cseq_method or method}"),
    ]
    if body:
        pairs.append(("Content-Type", "application/sdp"))
    return Request(method=method, uri="sip:stejanss@steven.lab", headers=Headers(pairs), body=body)


def audio_offer(formats: str) -> bytes:
    return OFFER + f"m=audio 4000 RTP/AVP {formats}\r\n".encode()


async def start(nursery: trio.Nursery, ctx: ssl.SSLContext, **options: object) -> tuple[str, int]:
    addr: tuple[str, int] = await nursery.start(
        partial(serve_peer, host="127.0.0.1", port=0, ssl_context=ctx, **options)  # type: ignore[arg-type]
    )
    return addr


Connect = Callable[[tuple[str, int], ssl.SSLContext], Awaitable[SipConnection]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Factory of TLS client connections, all closed at teardown."""
    streams: list[trio.abc.AsyncResource] = []

    async def open_connection(addr: tuple[str, int], ctx: ssl.SSLContext) -> SipConnection:
        tcp = await trio.open_tcp_stream(*addr)
        streams.append(tcp)
        stream = trio.SSLStream(tcp, ctx, server_hostname="vcse.steven.lab")
        await stream.do_handshake()
        return SipConnection(stream)

    yield open_connection
    for stream in streams:
        await trio.aclose_forcefully(stream)


async def receive_response(conn: SipConnection) -> Response:
    message = await receive(conn)
    assert isinstance(message, Response)
    return message


async def receive(conn: SipConnection) -> Request | Response:
    with trio.fail_after(5):
        return await conn.receive()


async def test_crlf_ping_gets_a_pong_and_the_connection_keeps_serving(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send_raw(b"\r\n\r\n")
    with trio.fail_after(5):
        assert await conn.stream.receive_some(10) == b"\r\n"
    await conn.send(request("OPTIONS"))
    assert (await receive_response(conn)).status == 200


async def test_many_requests_share_one_connection(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send_raw(
        serialize(request("OPTIONS", cseq=1)) + serialize(request("OPTIONS", cseq=2))
    )
    first, second = await receive_response(conn), await receive_response(conn)
    assert [first.cseq, second.cseq] == [(1, "OPTIONS"), (2, "OPTIONS")]
    await conn.send(request("INVITE", cseq=3, body=audio_offer("8")))
    assert (await receive_response(conn)).status == 100
    ok = await receive_response(conn)
    assert ok.status == 200
    assert b"m=audio 24000 RTP/AVP 8" in ok.body
    await conn.send(request("BYE", cseq=4, to_tag=ok.to.tag))
    assert (await receive_response(conn)).status == 200


async def test_responses_carry_a_to_tag_except_100(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx, answer=486), expe_client_ctx)
    await conn.send(request("INVITE", body=audio_offer("0")))
    trying, busy = await receive_response(conn), await receive_response(conn)
    assert (trying.status, trying.to.tag) == (100, None)
    assert busy.status == 486
    assert busy.to.tag is not None
    assert len(busy.to.tag) == 16
    await conn.send(request("OPTIONS", cseq=2))
    assert (await receive_response(conn)).to.tag is not None


async def test_cancel_of_a_ringing_invite_gets_200_then_487(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    # The peer would ring for an hour: only the CANCEL can end the INVITE.
    addr = await start(nursery, edge_server_ctx, ring_seconds=3600)
    conn = await connect(addr, expe_client_ctx)
    await conn.send(request("INVITE", cseq=7, body=audio_offer("0")))
    assert (await receive_response(conn)).status == 100
    ringing = await receive_response(conn)
    assert ringing.status == 180
    # RFC 3261 §9.1: CANCEL has the INVITE's Call-ID, CSeq number and branch.
    await conn.send(request("CANCEL", cseq=7))
    cancel_ok = await receive_response(conn)
    terminated = await receive_response(conn)
    assert (cancel_ok.status, cancel_ok.cseq) == (200, (7, "CANCEL"))
    assert (terminated.status, terminated.cseq) == (487, (7, "INVITE"))
    assert terminated.to.tag == ringing.to.tag


async def test_ringing_peer_answers_when_the_ring_time_is_over(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx, ring_seconds=0.01), expe_client_ctx)
    await conn.send(request("INVITE", body=audio_offer("0")))
    statuses = [(await receive_response(conn)).status for _ in range(3)]
    assert statuses == [100, 180, 200]


@pytest.mark.parametrize(
    ("message", "status"),
    [
        (request("CANCEL", cseq=9), 481),  # nothing ringing
        (request("BYE", to_tag="0123456789abcdef"), 481),  # no such dialog
        (
            request("INVITE", to_tag="0123456789abcdef", body=audio_offer("0")),
            481,
        ),  # re-INVITE, no dialog
        (request("PUBLISH"), 405),
        (request("FROBNICATE"), 501),
        (request("INVITE", body=audio_offer("18")), 488),  # G.729 only: no codec in common
    ],
)
async def test_requests_outside_what_the_peer_knows(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
    message: Request,
    status: int,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send(message)
    response = await receive_response(conn)
    if response.status == 100:
        response = await receive_response(conn)
    assert response.status == status
    if status in (405, 501):
        assert "INVITE" in response.headers.get_all("Allow")


async def test_invite_without_sdp_gets_an_offer_in_the_200(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send(request("INVITE"))
    assert (await receive_response(conn)).status == 100
    ok = await receive_response(conn)
    assert ok.status == 200
    assert b"m=audio 24000 RTP/AVP 0 8 101" in ok.body


async def test_bad_clients_do_not_stop_the_peer(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    addr = await start(nursery, edge_server_ctx)
    # Plaintext SIP on the TLS port: the peer closes (or resets) the connection.
    async with await trio.open_tcp_stream(*addr) as plain:
        await plain.send_all(serialize(request("OPTIONS")))
        with trio.fail_after(5), contextlib.suppress(trio.BrokenResourceError):
            while await plain.receive_some(4096):
                pass
    # A connection that drops mid-handshake.
    async with await trio.open_tcp_stream(*addr) as half:
        await half.send_all(b"\x16\x03\x01\x00")
    # A message that frames but does not parse, then a good one on the same connection.
    conn = await connect(addr, expe_client_ctx)
    await conn.send_raw(b"NOT SIP AT ALL\r\nContent-Length: 0\r\n\r\n")
    await conn.send(request("OPTIONS", cseq=2))
    assert (await receive_response(conn)).cseq == (2, "OPTIONS")
    # A stream that cannot be framed any more is closed; the listener goes on.
    await conn.send_raw(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n")
    with trio.fail_after(5), contextlib.suppress(trio.BrokenResourceError):
        while await conn.stream.receive_some(4096):
            pass
    fresh = await connect(addr, expe_client_ctx)
    await fresh.send(request("OPTIONS", cseq=3))
    assert (await receive_response(fresh)).status == 200


async def test_silent_handshake_is_cut_after_the_handshake_timeout(
    nursery: trio.Nursery, connect: Connect, edge_server_ctx: ssl.SSLContext
) -> None:
    errors: list[str] = []
    addr = await start(
        nursery,
        edge_server_ctx,
        handshake_timeout=0.05,
        on_tls_error=lambda reason, remote: errors.append(reason),
    )
    async with await trio.open_tcp_stream(*addr) as silent:
        with trio.fail_after(5):
            assert await silent.receive_some(10) == b""
    assert errors == ["no TLS handshake within 0.05 s"]


# --- presence: the IM and Presence Service behind the Expressway-E ---------------------

EDGE_RR = "<sip:sip.skype.lab:5061;transport=tls;lr>"


def subscribe(
    *,
    cseq: int = 1,
    to_tag: str | None = None,
    expires: str | None = "3600",
    event: str | None = "presence",
    accept: str | None = "application/msrtc-event-categories+xml, application/pidf+xml",
) -> Request:
    """A SUBSCRIBE as the Edge relays a Skype user's: Record-Route and Contact set."""
    base = request("SUBSCRIBE", cseq=cseq, branch=f"z9hG4bKsub{cseq}", to_tag=to_tag)
    pairs = [*base.headers.pairs, ("Record-Route", EDGE_RR)]
    pairs.append(("Contact", "<sip:bob@192.0.2.7:50123;transport=tls>"))
    for name, value in (("Event", event), ("Accept", accept), ("Expires", expires)):
        if value is not None:
            pairs.append((name, value))
    return Request(method="SUBSCRIBE", uri=base.uri, headers=Headers(pairs))


async def receive_request(conn: SipConnection) -> Request:
    message = await receive(conn)
    assert isinstance(message, Request)
    return message


async def test_a_presence_subscription_gets_200_then_pidf_notifies_in_its_dialog(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    addr = await start(nursery, edge_server_ctx, presence="away")
    conn = await connect(addr, expe_client_ctx)
    await conn.send(subscribe())
    ok = await receive_response(conn)
    assert (ok.status, ok.headers.get("Expires")) == (200, "3600")
    assert ok.headers.get("Contact") is not None
    assert ok.to.tag is not None
    notify = await receive_request(conn)
    # RFC 3261 §12.1.1 / §12.2.1.1: the subscriber's Contact, the Record-Route as routes.
    assert (notify.method, notify.uri) == ("NOTIFY", "sip:bob@192.0.2.7:50123;transport=tls")
    assert notify.headers.get_all("Route") == [EDGE_RR]
    assert (notify.from_.tag, notify.to.tag, notify.call_id) == (ok.to.tag, "280f2bf329", CALL_ID)
    assert notify.cseq == (1, "NOTIFY")
    assert notify.headers.get("Event") == "presence"
    assert notify.headers.get("Subscription-State") == "active;expires=3600"
    assert notify.headers.get("Content-Type") == "application/pidf+xml"  # not categories
    assert b"<basic>open</basic>" in notify.body
    assert b"<note>Away</note>" in notify.body
    await conn.send(build_response(notify, 200))

    await conn.send(subscribe(cseq=2, to_tag=ok.to.tag))  # a refresh
    assert (await receive_response(conn)).status == 200
    refreshed = await receive_request(conn)
    assert refreshed.cseq == (2, "NOTIFY")
    assert (refreshed.headers.get("Subscription-State") or "").startswith("active;expires=")

    await conn.send(subscribe(cseq=3, to_tag=ok.to.tag, expires="0"))  # un-SUBSCRIBE
    assert (await receive_response(conn)).status == 200
    ended = await receive_request(conn)
    assert (ended.cseq, ended.headers.get("Subscription-State")) == (
        (3, "NOTIFY"),
        "terminated;reason=timeout",
    )
    await conn.send(subscribe(cseq=4, to_tag=ok.to.tag))  # the dialog is gone
    assert (await receive_response(conn)).status == 481


async def test_a_subscription_left_to_expire_ends_with_notify_terminated(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send(subscribe(expires="1"))
    assert (await receive_response(conn)).status == 200
    first = await receive_request(conn)
    assert first.headers.get("Subscription-State") == "active;expires=1"
    assert b"<note>Available</note>" in first.body  # the default presence: online
    last = await receive_request(conn)  # within receive_request's bound, after the grant
    assert (last.cseq, last.headers.get("Subscription-State")) == (
        (2, "NOTIFY"),
        "terminated;reason=timeout",
    )


@pytest.mark.parametrize(
    ("message", "status", "header"),
    [
        (subscribe(event="dialog"), 489, ("Allow-Events", "presence")),
        (subscribe(event=None), 489, ("Allow-Events", "presence")),
        (
            subscribe(accept="application/msrtc-event-categories+xml"),
            406,
            ("Accept", "application/pidf+xml"),
        ),
        (subscribe(expires="soon"), 400, None),
        (subscribe(to_tag="0123456789abcdef"), 481, None),  # no such subscription
    ],
)
async def test_subscriptions_the_peer_refuses(
    nursery: trio.Nursery,
    connect: Connect,
    edge_server_ctx: ssl.SSLContext,
    expe_client_ctx: ssl.SSLContext,
    message: Request,
    status: int,
    header: tuple[str, str] | None,
) -> None:
    conn = await connect(await start(nursery, edge_server_ctx), expe_client_ctx)
    await conn.send(message)
    refused = await receive_response(conn)
    assert refused.status == status
    if header is not None:
        assert refused.headers.get(header[0]) == header[1]
    # No NOTIFY follows a refusal: the next thing on the wire answers the next request.
    await conn.send(request("OPTIONS", cseq=9))
    assert (await receive_response(conn)).cseq == (9, "OPTIONS")


async def test_an_unknown_presence_state_is_refused_before_listening(
    edge_server_ctx: ssl.SSLContext,
) -> None:
    with pytest.raises(FedsimError, match="'sleepy' is not one of online, busy"):
        await serve_peer(host="127.0.0.1", port=0, ssl_context=edge_server_ctx, presence="sleepy")
