"""The outbound Edge end to end on loopback: a simulated Skype client calls out through
the Edge's clients port, and gets what the Cisco note's client log shows (reference
§2.1, §7.1), or the partner's answer relayed."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest
import trio

from simulator.diagnostics import parse_ms_diagnostics
from simulator.sip import Response, serialize

SOURCE = 'source="sip.skype.lab"'

# The seed's client-facing 504 (reference §7.1), less the FE's Authentication-Info.
CLIENT_504 = re.compile(
    r"SIP/2\.0 504 Server time-out\r\n"
    r'From: "Steven Janssens"<sip:stejanss@skype\.lab>;tag=[0-9a-f]{10};epid=[0-9a-f]{10}\r\n'
    r"To: <(?P<to>sip:[^>]+)>;tag=[0-9A-F]{32}\r\n"
    r"Call-ID: [0-9a-f]{32}\r\n"
    r"CSeq: 1 INVITE\r\n"
    r"Via: SIP/2\.0/TLS 127\.0\.0\.1:(?P<port>\d+);branch=z9hG4bK[0-9a-f]{16}"
    r";ms-received-port=(?P=port);ms-received-cid=[0-9A-F]+00\r\n"
    r"ms-diagnostics: (?P<diag>[^\r\n]+)\r\n"
    r"Server: RTC/6\.0\r\n"
    r"Content-Length: 0\r\n\r\n"
)


def client_504(result: Any) -> str:
    """The final response's ms-diagnostics value, after checking the whole envelope."""
    assert result.final is not None, result.error
    text = serialize(result.final).decode()
    match = CLIENT_504.fullmatch(text)
    assert match, text
    assert int(match["port"]) == result.local[1]
    return match["diag"]


def only_event(lab: Any) -> dict[str, Any]:
    (event,) = lab.events()
    return event


# --- the seeds, verbatim ---------------------------------------------------------------


async def test_seed_1009_srv_target_in_a_subdomain(outbound_lab: Any) -> None:
    """Cisco note: _sipfederationtls._tcp.cms.steven.lab points at vcse.sub.cms.steven.lab."""
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 0 0 5061 vcse.sub.cms.steven.lab.
vcse.sub.cms.steven.lab.               300 IN A   127.0.0.1
""",
        trace=True,
    )
    result = await lab.call("sip:stejanss.space@cms.steven.lab")
    assert [r.status for r in result.responses] == [100, 504]
    assert client_504(result) == (
        '1009;reason="No match for domain in DNS SRV results";domain="cms.steven.lab";'
        'fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
    )
    assert result.ack is not None
    assert result.ack.cseq == (1, "ACK")
    event = only_event(lab)
    assert event["rule"] == "srv-not-in-domain"
    assert event["direction"] == "outbound"
    assert event["fidelity"] == "verbatim"
    assert event["edge_log"]["fidelity"] == "inferred"
    assert event["extra"]["forwarded"] is False
    assert event["extra"]["srv"]["targets"] == ["vcse.sub.cms.steven.lab:5061"]
    record = lab.edge_log()
    # cms.steven.lab is not configured: the record bhargavs shows for that case
    # (reference §12): a component line, then Data with reason= (Result-Code not public).
    # The component line is the SIPStack trace's, just before the record there;
    # edge.log keeps only the TF_DIAG records.
    assert "TF_COMPONENT" not in record
    trace = lab.trace_log()
    component = trace.index(
        " Exit - domain [cms.steven.lab] is unknown and DNS SRV results did not match anything\n"
    )
    line_start = trace.rindex("\n", 0, component) + 1
    assert trace[line_start:].startswith("TL_ERROR(TF_COMPONENT) [sfvedge\\sfvedge]")
    assert trace.index("TL_WARN(TF_DIAG)", component) > component
    assert "Result-Code: 0x00000000 EMU_UNVERIFIED_DOMAIN_UNKNOWN\n" in record
    assert (
        'Data: domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";reason="The '
        "domain of the message is not configured and does not appear to belong to a federated "
        'partner"\n'
    ) in record
    assert "SIP-Start-Line: INVITE sip:stejanss.space@cms.steven.lab SIP/2.0\n" in record
    assert event["component"]["text"] == (
        "Exit - domain [cms.steven.lab] is unknown and DNS SRV results did not match anything"
    )


async def test_seed_1010_partner_certificate_lacks_the_srv_target(outbound_lab: Any) -> None:
    """Cisco note: SRV -> vcse.cms.steven.lab, but the Expressway-E presents vcse.steven.lab."""
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 0 0 {port} vcse.cms.steven.lab.
vcse.cms.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_cert="vcse.steven.lab",
    )
    result = await lab.call("sip:stejanss.space@cms.steven.lab")
    assert client_504(result) == (
        '1010;reason="Certificate trust with another server could not be established";'
        'ErrorType="The peer certificate does not contain a matching FQDN";'
        'tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";'
        'HRESULT="0x80090322(SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab"'
    )
    assert lab.partner_requests == []  # nothing is sent to a partner the Edge refused
    event = only_event(lab)
    assert event["rule"] == "cert-mismatch"
    assert event["fidelity"] == "verbatim"
    (attempt,) = event["extra"]["targets_tried"]
    assert attempt["cert_names"] == ["vcse.steven.lab"]
    assert 'Data: expected-fqdn="vcse.cms.steven.lab";certName="vcse.steven.lab"' in lab.edge_log()


# --- DNS failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "outcome"),
    [
        ("nosrv.steven.lab", "NXDOMAIN"),
        ("nodata.steven.lab", "NODATA"),
        ("quiet.steven.lab", "TIMEOUT"),
    ],
)
async def test_srv_lookup_failure_is_1008(outbound_lab: Any, domain: str, outcome: str) -> None:
    lab = await outbound_lab(
        records='_sipfederationtls._tcp.nodata.steven.lab. 300 IN TXT "no SRV here"',
        dns='silent = ["quiet.steven.lab"]',
    )
    result = await lab.call(f"sip:bob@{domain}")
    assert client_504(result) == f'1008;reason="Unable to resolve DNS SRV record";{SOURCE}'
    event = only_event(lab)
    assert event["rule"] == f"srv-{outcome.lower()}"
    assert event["edge_log"]["data"]["dns-result"] == outcome
    assert f"SIP-Call-ID: {result.request.call_id}\n" in lab.edge_log()


async def test_srv_target_without_address_is_1014(outbound_lab: Any) -> None:
    lab = await outbound_lab(
        records=(
            "_sipfederationtls._tcp.noaddr.steven.lab. 300 IN SRV 0 0 5061 vcse.noaddr.steven.lab."
        ),
    )
    result = await lab.call("sip:bob@noaddr.steven.lab")
    assert client_504(result) == f'1014;reason="Unable to resolve DNS A record.";{SOURCE}'
    event = only_event(lab)
    assert event["rule"] == "no-address"
    assert event["fidelity"] == "inferred"
    assert event["extra"]["targets_tried"][0]["address_outcome"] == "nxdomain"


# --- connect and TLS failures -------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connect_refused_is_1046_with_wsaeconnrefused(outbound_lab: Any) -> None:
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_port=closed_port(),
    )
    result = await lab.call("sip:bob@steven.lab")
    assert client_504(result) == (
        '1046;reason="Failed to connect to a federated peer server";'
        f'WinsockFailureCode="10061(WSAECONNREFUSED)";{SOURCE}'
    )
    event = only_event(lab)
    assert (event["rule"], event["fidelity"]) == ("connect-refused", "unverified")


async def test_connect_timeout_is_1046_with_wsaetimedout(outbound_lab: Any) -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so connect hangs.
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            filler.connect_ex(("127.0.0.1", port))
        lab = await outbound_lab(
            records="""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
            partner_port=port,
            connect_timeout=0.5,
        )
        result = await lab.call("sip:bob@steven.lab")
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert client_504(result) == (
        '1046;reason="Failed to connect to a federated peer server";'
        f'WinsockFailureCode="10060(WSAETIMEDOUT)";{SOURCE}'
    )
    assert only_event(lab)["rule"] == "connect-timeout"


async def test_partner_that_does_not_trust_the_edge_is_1047(outbound_lab: Any) -> None:
    """TLS 1.3: the partner's 'unknown ca' alert arrives on the Edge's first read."""
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_cert="vcse.steven.lab",
        partner_trust="private-root",
    )
    result = await lab.call("sip:bob@steven.lab")
    assert client_504(result) == (
        '1047;reason="Failed to complete TLS negotiation with a federated peer server";'
        f'HRESULT="0x80090325(SEC_E_UNTRUSTED_ROOT)";{SOURCE}'
    )
    event = only_event(lab)
    assert (event["rule"], event["fidelity"]) == ("tls-alert", "inferred")
    assert event["edge_log"]["data"]["alert"] == "TLSV1_ALERT_UNKNOWN_CA"
    assert lab.partner_requests == []


async def test_partner_reset_during_handshake_is_the_verbatim_1047(
    outbound_lab: Any, nursery: trio.Nursery
) -> None:
    """risual.com's form: the remote side reset the connection (WSAECONNRESET)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def reset(stream: trio.SocketStream) -> None:
        await stream.receive_some(4096)  # the ClientHello
        # SO_LINGER 0: close() sends RST instead of FIN.
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        stream.socket.close()

    nursery.start_soon(trio.serve_listeners, reset, listeners)
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_port=port,
    )
    result = await lab.call("sip:bob@steven.lab")
    assert client_504(result) == (
        '1047;reason="Failed to complete TLS negotiation with a federated peer server";'
        'WinsockFailureCode="10054(WSAECONNRESET)";'
        'WinsockFailureDescription="The peer forced closure of the connection";'
        f"{SOURCE}"
    )
    assert only_event(lab)["rule"] == "tls-reset"


@pytest.mark.parametrize(
    ("cert", "rule", "hresult"),
    [
        ("untrusted.vcse.cms", "untrusted-root", "0x80090325(SEC_E_UNTRUSTED_ROOT)"),
        ("expired.vcse.cms", "cert-expired", "0x80090328(SEC_E_CERT_EXPIRED)"),
    ],
)
async def test_partner_chain_refused_is_1010_with_its_hresult(
    outbound_lab: Any, cert: str, rule: str, hresult: str
) -> None:
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 0 0 {port} vcse.cms.steven.lab.
vcse.cms.steven.lab.                   300 IN A   127.0.0.1
""",
        partner_cert=cert,
    )
    result = await lab.call("sip:space@cms.steven.lab")
    assert client_504(result) == (
        '1010;reason="Certificate trust with another server could not be established";'
        'tls-target="vcse.cms.steven.lab";PeerServer="vcse.cms.steven.lab";'
        f'HRESULT="{hresult}";{SOURCE}'
    )
    event = only_event(lab)
    assert (event["rule"], event["fidelity"]) == (rule, "inferred")
    assert lab.partner_requests == []


# --- policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "rule", "diagnostics"),
    [
        ('blocked = ["steven.lab"]', "blocked-domain", None),
        ('federation = "off"', "federation-off", "1027"),
        (
            'federation = "allowlist"\n[[edge.allowed]]\ndomain = "other.lab"',
            "domain-not-allowed",
            None,
        ),
    ],
)
async def test_policy_refusals_are_403(
    outbound_lab: Any, edge: str, rule: str, diagnostics: str | None
) -> None:
    lab = await outbound_lab(
        records="""
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
""",
        edge=edge,
        partner_cert="vcse.steven.lab",
    )
    result = await lab.call("sip:bob@steven.lab")
    assert result.final is not None
    assert result.final.status == 403
    text = serialize(result.final).decode()
    diag = result.final.headers.get("ms-diagnostics")
    if diagnostics is None:
        assert diag is None
        assert text.endswith("Server: RTC/6.0\r\nContent-Length: 0\r\n\r\n")
    else:
        assert diag == (
            '1027;reason="Cannot route this type of SIP request to or from federated partners";'
            f"{SOURCE}"
        )
    event = only_event(lab)
    assert (event["rule"], event["fidelity"]) == (rule, "unverified")
    assert "extra" in event
    assert "srv" not in event["extra"]
    assert lab.partner_requests == []


# --- forwarding ----------------------------------------------------------------------------


async def test_allowed_partner_with_proxy_fqdn_is_reached_without_srv(outbound_lab: Any) -> None:
    lab = await outbound_lab(
        records="vcse.steven.lab. 300 IN A 127.0.0.1",  # no SRV for cms.steven.lab at all
        edge='[[edge.allowed]]\ndomain = "cms.steven.lab"\nproxy_fqdn = "vcse.steven.lab"',
        partner_cert="vcse.steven.lab",
        proxy_to_partner=True,
    )
    result = await lab.call("sip:space@cms.steven.lab")
    assert result.final is not None, result
    assert result.final.status == 200
    events = lab.events()
    forwarded = next(e for e in events if e["rule"] == "forwarded")
    assert forwarded["extra"]["route"] == {"kind": "proxy", "name": "vcse.steven.lab"}
    assert "srv" not in forwarded["extra"]
    assert lab.partner_methods() == ["INVITE", "ACK", "BYE"]


SRV_STEVEN = """
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 {port} vcse.steven.lab.
vcse.steven.lab.                   300 IN A   127.0.0.1
"""


async def test_successful_call_is_forwarded_with_ack_and_bye_end_to_end(
    outbound_lab: Any,
) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab")
    result = await lab.call("sip:2000@steven.lab")
    assert result.error is None
    assert [r.status for r in result.responses] == [100, 200]
    final: Response = result.final
    # Our Via is gone; the client's own Via comes back stamped by the Edge.
    (via,) = final.vias
    assert via.branch == result.request.vias[0].branch
    assert via.param("ms-received-port") == str(result.local[1])
    # (serve_peer does not echo Record-Route in its 2xx, RFC 3261 §12.1.1: the
    # interop test with SIPp checks that the Edge relays it; the dialog here is
    # found by Call-ID.)
    assert final.headers.get("Content-Type") == "application/sdp"
    assert final.headers.get("ms-diagnostics") is None
    # The partner saw a proxied INVITE, then the ACK and the BYE through the Edge.
    assert lab.partner_methods() == ["INVITE", "ACK", "BYE"]
    invite = lab.partner_requests[0][0]
    edge_via, client_via = invite.vias
    assert str(edge_via).startswith("SIP/2.0/TLS sip.skype.lab:5061;branch=z9hG4bK")
    assert client_via.branch == result.request.vias[0].branch
    assert invite.max_forwards == 69
    assert invite.headers.get("Record-Route") == "<sip:sip.skype.lab:5061;transport=tls;lr>"
    assert invite.uri == "sip:2000@steven.lab"
    ack, bye = (r for r, _ in lab.partner_requests[1:])
    assert ack.vias[0].host == "sip.skype.lab"
    assert len(ack.vias) == 2
    assert ack.headers.get("Route") is None  # the Edge's own Route entry is consumed
    assert bye.to.tag == final.to.tag
    assert [r.status for r in result.bye_responses] == [200]
    assert len(result.bye_responses[0].vias) == 1
    rules = [(e["rule"], e["method"], e["status"]) for e in lab.events()]
    assert rules == [
        ("forwarded", "INVITE", 200),
        ("in-dialog", "ACK", None),
        ("forwarded", "BYE", 200),
    ]
    assert lab.edge_log() == ""  # success writes no diagnostic record


async def test_partner_connection_is_reused_by_the_next_call(outbound_lab: Any) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab")
    first = await lab.call("sip:2000@steven.lab", method="OPTIONS")
    second = await lab.call("sip:2001@steven.lab", method="MESSAGE")
    assert first.final.status == 200
    assert second.final.status == 200
    remotes = {remote for _, remote in lab.partner_requests}
    assert len(remotes) == 1, remotes
    second_event = lab.events()[-1]
    assert second_event["extra"]["targets_tried"][0]["reused"] is True


@pytest.mark.parametrize("status", [404, 480])
async def test_partner_error_without_diagnostics_gets_1034(outbound_lab: Any, status: int) -> None:
    lab = await outbound_lab(records=SRV_STEVEN, partner_cert="vcse.steven.lab", answer=status)
    result = await lab.call("sip:2000@steven.lab")
    assert result.final is not None
    assert result.final.status == status
    assert result.final.headers.get("ms-diagnostics") == (
        '1034;reason="Previous hop federated peer did not report diagnostic information";'
        f'Domain="steven.lab";PeerServer="vcse.steven.lab";{SOURCE}'
    )
    assert result.final.headers.get("Server") == "TANDBERG/4352 (X14.0.2)"  # the partner's
    assert await lab.wait_partner(2) == ["INVITE", "ACK"]  # the Edge ACKs the failure itself
    event = only_event(lab)
    assert (event["rule"], event["status"], event["ms_diagnostics_added"]) == (
        "forwarded",
        status,
        "1034",
    )
    diag = parse_ms_diagnostics(result.final.headers.get("ms-diagnostics") or "")
    assert diag.code == 1034


# --- local users --------------------------------------------------------------------------


async def test_local_domain_is_answered_by_the_edge_itself(outbound_lab: Any) -> None:
    lab = await outbound_lab(records="", edge="users = { busy = 486 }")
    result = await lab.call("sip:alice@skype.lab")
    assert [r.status for r in result.responses] == [100, 180, 200] or [
        r.status for r in result.responses
    ] == [180, 200]
    assert result.final.headers.get("Content-Type") == "application/sdp"
    assert [r.status for r in result.bye_responses] == [200]
    busy = await lab.call("sip:busy@skype.lab")
    assert busy.final.status == 486
    rules = [(e["rule"], e["status"]) for e in lab.events()]
    assert rules == [("local-user", 200), ("local-user", 486)]
    assert lab.partner_requests == []
