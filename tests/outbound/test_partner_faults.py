"""A partner that resets mid-dialog: the Skype client still gets an answer, and the
Edge keeps serving (issue 8, "the partner resets the connection mid-dialog")."""

from __future__ import annotations

import socket
import struct
from typing import Any

import trio

from simulator.pki import server_context
from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    StreamFramer,
    build_response,
    parse_message,
    serialize,
)

SRV = """
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
"""

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 9 RTP/AVP 0\r\n"
)


async def resetting_partner(listener: trio.SocketListener, ctx: Any, seen: list[str]) -> None:
    """Answer INVITE with 200, then reset TCP (no close_notify) when the ACK arrives."""
    async with listener:
        tcp = await listener.accept()
    tls = trio.SSLStream(tcp, ctx, server_side=True)
    await tls.do_handshake()
    framer = StreamFramer()
    while True:
        item = framer.next_message()
        if item is Need.DATA:
            framer.receive_data(bytes(await tls.receive_some(65536)))
            continue
        if item is KeepAlive.PING:
            continue
        assert isinstance(item, bytes)
        message = parse_message(item)
        assert isinstance(message, Request)
        seen.append(message.method)
        if message.method == "INVITE":
            ok = build_response(
                message,
                200,
                to_tag="partner1",
                headers=[
                    ("Contact", "<sip:2000@127.0.0.1;transport=tls>"),
                    ("Content-Type", "application/sdp"),
                ],
                body=SDP,
            )
            await tls.send_all(serialize(ok))
        elif message.method == "ACK":
            tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await trio.aclose_forcefully(tls)
            return


async def test_partner_reset_after_the_200_then_bye_still_gets_an_answer(
    outbound_lab: Any, nursery: trio.Nursery
) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    lab = await outbound_lab(records=SRV, partner_port=port)
    peer = lab.addresses.issued["vcse.steven.lab"]
    ctx = server_context(
        cert=peer.cert_path,
        key=peer.key_path,
        trust=[lab.addresses.issued["public-root"].cert_path],
        require_client_cert=True,
    )
    seen: list[str] = []
    nursery.start_soon(resetting_partner, listener, ctx, seen)

    result = await lab.call("sip:2000@steven.lab")  # INVITE, 200, ACK, then BYE
    assert result.final is not None
    assert result.final.status == 200
    assert seen == ["INVITE", "ACK"]
    # The BYE could not reach the partner: the client still gets a final answer.
    assert result.bye is not None
    assert len(result.bye_responses) >= 1
    assert result.bye_responses[-1].status >= 400
    # And the Edge keeps serving: a local call is answered.
    local = await lab.call("sip:stejanss@skype.lab", method="OPTIONS")
    assert local.final is not None
    assert local.final.status == 200
