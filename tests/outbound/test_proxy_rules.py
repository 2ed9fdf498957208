"""The Edge as an RFC 3261 proxy on the outbound leg, driven by a raw TLS client:
Max-Forwards (483), CANCEL of a ringing call (§16.10), requests outside any dialog (481)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from simulator.peer.conn import SipConnection
from simulator.peer.skype import build_client_request
from simulator.pki import client_context
from simulator.sip import Headers, Request, Response

SRV_STEVEN = """
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
"""


@asynccontextmanager
async def connect(lab: Any) -> AsyncIterator[tuple[SipConnection, tuple[str, int]]]:
    ctx = client_context(trust=[lab.addresses.issued["public-root"].cert_path])
    tcp = await trio.open_tcp_stream(*lab.addresses.clients)
    local = tcp.socket.getsockname()
    stream = trio.SSLStream(tcp, ctx, server_hostname="sip.skype.lab")
    async with stream:
        yield SipConnection(stream), (str(local[0]), int(local[1]))


async def until_status(conn: SipConnection, method: str, status: int) -> Response:
    with trio.fail_after(10):
        while True:
            message = await conn.receive()
            if isinstance(message, Response) and message.cseq[1] == method:
                if message.status == status:
                    return message
                assert message.status < 200, message.start_line


async def test_max_forwards_zero_is_483_before_any_routing(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab")
    async with connect(lab) as (conn, local):
        request = build_client_request(
            method="OPTIONS",
            from_uri="sip:stejanss@skype.lab",
            to_uri="sip:2000@steven.lab",
            local=local,
            rng=random.Random(),
        )
        request = Request(
            method="OPTIONS",
            uri=request.uri,
            headers=request.headers.replace("Max-Forwards", "0"),
        )
        await conn.send(request)
        reply = await until_status(conn, "OPTIONS", 483)
    assert reply.reason == "Too Many Hops"
    assert reply.headers.get("Server") == "RTC/6.0"
    assert lab.partner_requests == []
    (event,) = lab.events()
    assert event["rule"] == "too-many-hops"
    assert "srv" not in event["extra"]


async def test_cancel_of_a_ringing_call_reaches_the_partner(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab", ring_seconds=30)
    async with connect(lab) as (conn, local):
        invite = build_client_request(
            method="INVITE",
            from_uri="sip:stejanss@skype.lab",
            to_uri="sip:2000@steven.lab",
            local=local,
            rng=random.Random(),
        )
        await conn.send(invite)
        await until_status(conn, "INVITE", 180)
        cancel = Request(
            method="CANCEL",
            uri=invite.uri,
            headers=Headers(
                [
                    ("Via", invite.headers.get("Via") or ""),
                    ("Max-Forwards", "70"),
                    ("From", invite.headers.get("From") or ""),
                    ("To", invite.headers.get("To") or ""),
                    ("Call-ID", invite.call_id),
                    ("CSeq", "1 CANCEL"),
                ]
            ),
        )
        await conn.send(cancel)
        await until_status(conn, "CANCEL", 200)
        terminated = await until_status(conn, "INVITE", 487)
    assert len(terminated.vias) == 1
    assert await lab.wait_partner(3) == ["INVITE", "CANCEL", "ACK"]
    forwarded_invite, partner_cancel = (r for r, _ in lab.partner_requests[:2])
    # RFC 3261 §9.1: the CANCEL the Edge sends matches its own INVITE's branch.
    assert partner_cancel.vias[0].branch == forwarded_invite.vias[0].branch
    assert len(partner_cancel.vias) == 1
    events = [(e["rule"], e["status"]) for e in lab.events()]
    assert events == [("forwarded", 487)]


async def test_bye_outside_any_dialog_is_481(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab")
    async with connect(lab) as (conn, local):
        request = build_client_request(
            method="OPTIONS",
            from_uri="sip:stejanss@skype.lab",
            to_uri="sip:2000@steven.lab",
            local=local,
            rng=random.Random(),
        )
        bye = Request(
            method="BYE",
            uri=request.uri,
            headers=request.headers.replace("To", "<sip:2000@steven.lab>;tag=nosuchdialog").replace(
                "CSeq", "2 BYE"
            ),
        )
        await conn.send(bye)
        reply = await until_status(conn, "BYE", 481)
    assert reply.headers.get("Server") == "RTC/6.0"
    assert lab.partner_requests == []
