"""The lab on IPv6 (::1): Expressway-Es run dual-stack (issue 12).

Both ports listen on ``[::1]``, the lab DNS too, and the outbound partner has
only an AAAA record: every accepted request is answered, its event says what
went on the wire, and the Edge writes ``received=::1`` (RFC 3261 §18.2.1's
IPv6address, no brackets) on the top Via.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import trio

from simulator.edge.app import serve_lab
from simulator.edge.outbound import OutboundLimits
from simulator.edge.state import Limits
from simulator.lab import load_lab_text, with_overrides
from simulator.peer import serve_peer
from simulator.pki import client_context, issue_pki, server_context
from simulator.sip import KeepAlive, Need, Response, StreamFramer, parse_message

V6 = ("::1", 0)
STEP = 10.0

LAB = '''
name = "ipv6"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]

[dns]
records = """
lab.                                 300 IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300
_sipfederationtls._tcp.steven.lab.   300 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab.                     300 IN AAAA ::1
_sipfederationtls._tcp.partner6.lab. 300 IN SRV 0 0 {port} vcse.partner6.lab.
vcse.partner6.lab.                   300 IN AAAA ::1
"""

[certs.public-root]
ca = true
public = true

[certs."sip.skype.lab"]
issuer = "public-root"
san = ["sip.skype.lab"]

[certs."vcse.steven.lab"]
issuer = "public-root"
san = ["vcse.steven.lab"]

[certs."vcse.partner6.lab"]
issuer = "public-root"
san = ["vcse.partner6.lab"]
'''


def request(method: str, call: str, *, uri: str, sender: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS [::1]:5061;branch=z9hG4bK{call}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <{sender}>;tag=abc\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:2000@[::1]:5061;transport=tls>\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def responses(stream: trio.SSLStream[trio.SocketStream], until: int) -> list[Response]:
    """Responses up to and including the first with a status >= ``until``."""
    framer = StreamFramer()
    out: list[Response] = []
    with trio.fail_after(STEP):
        while True:
            item = framer.next_message()
            if isinstance(item, bytes):
                message = parse_message(item)
                if isinstance(message, Response):
                    out.append(message)
                    if message.status >= until:
                        return out
                continue
            if item is KeepAlive.PING:
                continue
            assert item is Need.DATA
            data = await stream.receive_some(65536)
            assert data, f"closed after {[r.status for r in out]}"
            framer.receive_data(data)


async def test_both_ports_and_an_aaaa_only_partner_over_ipv6(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    certs, logs = tmp_path / "certs", tmp_path / "logs"
    probe = load_lab_text(LAB.replace("{port}", "5061"), path=tmp_path / "lab.toml")
    issued = issue_pki(probe.certs, certs, now=dt.datetime.now(dt.UTC))
    root = issued["public-root"].cert_path
    partner = issued["vcse.partner6.lab"]
    partner_ctx = server_context(
        cert=partner.cert_path, key=partner.key_path, trust=[root], require_client_cert=True
    )
    seen: list[tuple[str, tuple[str, int]]] = []
    peer = await nursery.start(
        lambda task_status: serve_peer(
            host="::1",
            port=0,
            ssl_context=partner_ctx,
            on_request=lambda r, remote: seen.append((r.method, remote)),
            task_status=task_status,
        )
    )
    lab = load_lab_text(LAB.replace("{port}", str(peer[1])), path=tmp_path / "lab.toml")
    lab = with_overrides(lab, listen=V6, clients=V6, dns_listen=V6)
    addresses = await nursery.start(
        lambda task_status: serve_lab(
            lab,
            log_dir=logs,
            certs_dir=certs,
            limits=Limits(dns_timeout=1.0, dns_attempts=1),
            outbound=OutboundLimits(connect_timeout=2, handshake_timeout=2, transaction_timeout=5),
            task_status=task_status,
        )
    )
    assert addresses.federation[0] == addresses.clients[0] == addresses.dns[0] == "::1"

    # Inbound: an SRTP INVITE from steven.lab over ::1 is accepted (100, 180, 200).
    expe = issued["vcse.steven.lab"]
    ctx = client_context(cert=expe.cert_path, key=expe.key_path, trust=[root])
    tcp = await trio.open_tcp_stream(*addresses.federation)
    fed = trio.SSLStream(tcp, ctx, server_hostname="sip.skype.lab")
    sdp = b"\r\n".join(
        [
            b"v=0",
            b"o=- 1 1 IN IP6 ::1",
            b"s=-",
            b"c=IN IP6 ::1",
            b"t=0 0",
            b"m=audio 30000 RTP/SAVP 0",
            b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BEJSwt1ILT8x2ksrr33NdrSdq9vxqMudDTZ2taz1",
            b"",
        ]
    )
    await fed.send_all(
        request(
            "INVITE", "v6in", uri="sip:stejanss@skype.lab", sender="sip:2000@steven.lab", body=sdp
        )
    )
    got = await responses(fed, 200)
    assert [r.status for r in got] == [100, 180, 200]
    # The Skype user's SRTP answer names the Edge's IPv6 address (MS-ICE2 form).
    assert b"c=IN IP6 ::1\r\n" in got[-1].body
    assert b"a=x-candidate-ipv6:1 1 UDP 33553407 ::1 " in got[-1].body
    top = got[-1].vias[0]
    assert top.received == "::1"
    assert top.param("ms-received-port") is not None
    await trio.aclose_forcefully(fed)

    # Outbound: the clients port over ::1, to a partner with only an AAAA record.
    tcp = await trio.open_tcp_stream(*addresses.clients)
    cli = trio.SSLStream(
        tcp, client_context(trust=[root], check_hostname=True), server_hostname="sip.skype.lab"
    )
    await cli.send_all(
        request("OPTIONS", "v6out", uri="sip:2000@partner6.lab", sender="sip:bob@skype.lab")
    )
    got = await responses(cli, 200)
    assert got[-1].status == 200
    await trio.aclose_forcefully(cli)
    assert [(method, remote[0]) for method, remote in seen] == [("OPTIONS", "::1")]

    events = [json.loads(line) for line in (logs / "events.jsonl").read_text().splitlines()]
    by_call = {e.get("call_id"): e for e in events}
    assert by_call["v6in"]["status"] == 200  # the event says what went on the wire
    assert by_call["v6out"]["status"] == 200
    assert [e for e in events if e.get("kind") == "internal-error"] == []
