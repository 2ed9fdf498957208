"""A partner that resets mid-dialog: the Skype client still gets an answer, and the
Edge keeps serving (issue 8, "the partner resets the connection mid-dialog")."""

from __future__ import annotations

import socket
import struct
from typing import Any

import trio

from simulator.pki import server_context
from simulator.sip import (
    Headers,
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


async def scripted_partner(outbound_lab: Any) -> tuple[Any, trio.SocketListener, Any]:
    """An outbound lab whose partner (vcse.steven.lab) is a listener the test scripts."""
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
    return lab, listener, ctx


async def test_partner_reset_after_the_200_then_bye_still_gets_an_answer(
    outbound_lab: Any, nursery: trio.Nursery
) -> None:
    lab, listener, ctx = await scripted_partner(outbound_lab)
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


def _notify(subscribe: Request, tag: str, cseq: int, state: str) -> bytes:
    """The partner's NOTIFY in the SUBSCRIBE's dialog, with a PIDF document."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:2000@steven.lab">'
        b'<tuple id="t0"><status><basic>open</basic></status><note>Away</note></tuple>'
        b"</presence>\r\n"
    )
    pairs = [
        ("Via", f"SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKnotify{cseq}"),
        ("Max-Forwards", "70"),
        *(("Route", rr) for rr in subscribe.headers.get_all("Record-Route")),
        ("From", f"{subscribe.headers.get('To')};tag={tag}"),
        ("To", subscribe.headers.get("From") or ""),
        ("Call-ID", subscribe.call_id),
        ("CSeq", f"{cseq} NOTIFY"),
        ("Event", "presence"),
        ("Subscription-State", state),
        ("Content-Type", "application/pidf+xml"),
    ]
    contact = subscribe.headers.get("Contact") or "<sip:stejanss@127.0.0.1>"
    uri = contact.strip("<>").split(">", 1)[0]
    return serialize(Request(method="NOTIFY", uri=uri, headers=Headers(pairs), body=body))


async def eager_notifier(
    listener: trio.SocketListener, ctx: Any, seen: list[str], answered: trio.Event
) -> None:
    """Answer each SUBSCRIBE with its 200 and the NOTIFY in one TLS write (RFC 6665
    §4.2.1 has the NOTIFY follow at once; here nothing can come between them)."""
    async with listener:
        tcp = await listener.accept()
    tls = trio.SSLStream(tcp, ctx, server_side=True)
    try:
        await _notify_eagerly(tls, seen, answered)
    finally:
        await trio.aclose_forcefully(tls)


async def _notify_eagerly(
    tls: trio.SSLStream[trio.SocketStream], seen: list[str], answered: trio.Event
) -> None:
    await tls.do_handshake()
    framer = StreamFramer()
    tag, cseq = "partner1", 0
    while True:
        item = framer.next_message()
        if item is Need.DATA:
            data = bytes(await tls.receive_some(65536))
            if not data:
                return
            framer.receive_data(data)
            continue
        if item is KeepAlive.PING:
            continue
        assert isinstance(item, bytes)
        message = parse_message(item)
        if not isinstance(message, Request):
            seen.append(f"{message.status} {message.cseq[1]}")
            if seen.count("200 NOTIFY") == 2:
                answered.set()
            continue
        seen.append(message.method)
        if message.method == "SUBSCRIBE":
            ending = message.headers.get("Expires") == "0"
            ok = build_response(
                message,
                200,
                to_tag=tag,
                headers=[
                    ("Contact", "<sip:2000@127.0.0.1;transport=tls>"),
                    ("Expires", message.headers.get("Expires") or "3600"),
                ],
            )
            cseq += 1
            state = "terminated;reason=timeout" if ending else "active;expires=3600"
            await tls.send_all(serialize(ok) + _notify(message, tag, cseq, state))


async def test_a_notify_written_with_its_200_reaches_the_client_after_it(
    outbound_lab: Any, nursery: trio.Nursery
) -> None:
    """The Edge reads the partner's 200 and NOTIFY in one go: the dialog exists for the
    NOTIFY (no 481), and the client sees the 200 first."""
    lab, listener, ctx = await scripted_partner(outbound_lab)
    seen: list[str] = []
    answered = trio.Event()
    nursery.start_soon(eager_notifier, listener, ctx, seen, answered)

    result = await lab.call("sip:2000@steven.lab", method="SUBSCRIBE")
    assert result.final is not None
    assert result.final.status == 200
    states = [n.headers.get("Subscription-State") for n in result.after.notifies]
    assert states == ["active;expires=3600", "terminated;reason=timeout"]
    # Both NOTIFYs were relayed and answered 200 by the client, none refused by the Edge.
    with trio.fail_after(10):
        await answered.wait()
    assert seen == ["SUBSCRIBE", "200 NOTIFY", "SUBSCRIBE", "200 NOTIFY"]
