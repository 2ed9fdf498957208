"""build_response: RFC 3261 §8.2.6.2 copying, and the seed's peer-facing 504 byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.sip import (
    REASON_PHRASES,
    Headers,
    Request,
    SipParseError,
    build_response,
    parse_message,
    serialize,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"

#: The INVITE of seed 000 as it reached the Edge from Expressway-E (10.48.36.47,
#: source port 25002): Expressway-E's, Expressway-C's and CMS's Vias, taken from
#: the 504 in the seed without what the Edge appended to the top one.
SEED_INVITE = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 10.48.36.47:5061;egress-zone=DNSZone1"
    b";branch=z9hG4bK42ee6fd77d32cc8925196770b950b33554.731d73c3f4246d6a255e38a9f695bfc0"
    b";proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7;rport\r\n"
    b"Via: SIP/2.0/TLS 10.48.36.46:5061;egress-zone=TraversalZoneClient1"
    b";branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486"
    b";proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119"
    b";ingress-zone=TraversalZoneServer1\r\n"
    b"Via: SIP/2.0/TLS 10.48.54.160:52768;branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3"
    b";received=10.48.54.160;ingress-zone=NeighborZoneAcano1SIP\r\n"
    b"Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n"
    b"CSeq: 2066245576 INVITE\r\n"
    b'From: "DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n'
    b"To: <sip:stejanss@skype.lab>\r\n"
    b"Max-Forwards: 15\r\n"
    b"Record-Route: <sip:proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7@10.48.36.47:5061"
    b";transport=tls;lr>\r\n"
    b'Contact: <sip:2000@acano.steven.lab;gr=urn:uuid:7b3d1a2e>;+sip.instance="<urn:uuid:7b3d>"\r\n'
    b"Allow: INVITE,ACK,BYE,CANCEL,INFO,OPTIONS,REFER,SUBSCRIBE,NOTIFY\r\n"
    b"Supported: replaces,timer\r\n"
    b"User-Agent: TANDBERG/529 (ce9.1.3)\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 12\r\n"
    b"\r\n"
    b"v=0\r\ns=-\r\nt=0"
)

#: The peer-facing 504 of ms-federation.md §7.2 / seed 000, as the Edge sends it.
SEED_504 = (
    b"SIP/2.0 504 Server time-out\r\n"
    b"Via: SIP/2.0/TLS 10.48.36.47:5061;egress-zone=DNSZone1"
    b";branch=z9hG4bK42ee6fd77d32cc8925196770b950b33554.731d73c3f4246d6a255e38a9f695bfc0"
    b";proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7;rport"
    b";received=10.48.36.47;ms-received-port=25002;ms-received-cid=100\r\n"
    b"Via: SIP/2.0/TLS 10.48.36.46:5061;egress-zone=TraversalZoneClient1"
    b";branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486"
    b";proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119"
    b";ingress-zone=TraversalZoneServer1\r\n"
    b"Via: SIP/2.0/TLS 10.48.54.160:52768;branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3"
    b";received=10.48.54.160;ingress-zone=NeighborZoneAcano1SIP\r\n"
    b"Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n"
    b"CSeq: 2066245576 INVITE\r\n"
    b'From: "DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n'
    b"To: <sip:stejanss@skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882\r\n"
    b"Server: RTC/6.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

EDGE_VIA_PARAMS = (
    ("received", "10.48.36.47"),
    ("ms-received-port", "25002"),
    ("ms-received-cid", "100"),
)


def seed_504_lines() -> list[str]:
    """The 504 as printed in seed 000, with the PDF's line wrapping undone.

    In the seed each header starts with a space (the first with " |"); a line
    without one continues the previous line. Wraps happen after "-" or ";"
    (joined directly) or at a space (joined with one).
    """
    [seed] = (SHARED / "seeds").glob("000_*.txt")
    text = seed.read_text(encoding="utf-8")
    start = text.index(" |SIP/2.0 504 Server time-out")
    end = text.index(" Content-Length: 0", start) + len(" Content-Length: 0")
    lines: list[str] = []
    for raw in text[start:end].splitlines():
        if not raw.strip():
            continue
        if raw.startswith(" "):
            lines.append(raw.removeprefix(" |").strip())
        else:
            joiner = "" if lines[-1].endswith(("-", ";")) else " "
            lines[-1] += joiner + raw.strip()
    return lines


def test_seed_504_literal_matches_the_seed_text() -> None:
    assert SEED_504.decode().split("\r\n")[:-2] == seed_504_lines()


def test_build_response_reproduces_the_seed_504() -> None:
    invite = parse_message(SEED_INVITE)
    assert isinstance(invite, Request)
    response = build_response(
        invite,
        504,
        to_tag="C65A7B0A8766A5F1D386474833D07882",
        via_params=EDGE_VIA_PARAMS,
        headers=[("Server", "RTC/6.0")],
    )
    assert serialize(response) == SEED_504
    assert parse_message(SEED_504) == response


def test_untouched_vias_are_copied_verbatim() -> None:
    invite = parse_message(SEED_INVITE)
    assert isinstance(invite, Request)
    response = build_response(invite, 504, via_params=EDGE_VIA_PARAMS)
    vias_in = invite.headers.get_all("Via")
    vias_out = response.headers.get_all("Via")
    assert vias_out[1:] == vias_in[1:]
    assert vias_out[0] == vias_in[0] + (
        ";received=10.48.36.47;ms-received-port=25002;ms-received-cid=100"
    )
    assert response.vias[0].param("ms-received-cid") == "100"


def request(*lines: tuple[str, str]) -> Request:
    return Request(method="INVITE", uri="sip:u@skype.lab", headers=Headers(lines))


BASE = (
    ("v", "SIP/2.0/TLS a.example;branch=z9hG4bK1 , SIP/2.0/TLS  b.example;branch=z9hG4bK2"),
    ("Via", "SIP/2.0/TLS c.example;branch=z9hG4bK3"),
    ("f", "<sip:x@steven.lab>;tag=1"),
    ("t", "<sip:u@skype.lab>"),
    ("i", "call-1"),
    ("CSeq", "5 INVITE"),
    ("Contact", "<sip:x@10.0.0.1>"),
)


def test_compact_names_come_out_long_and_multi_value_lines_stay_whole() -> None:
    response = build_response(request(*BASE), 200, via_params=[("received", "192.0.2.1")])
    assert response.headers.pairs == (
        (
            "Via",
            "SIP/2.0/TLS a.example;branch=z9hG4bK1;received=192.0.2.1"
            ", SIP/2.0/TLS  b.example;branch=z9hG4bK2",
        ),
        ("Via", "SIP/2.0/TLS c.example;branch=z9hG4bK3"),
        ("Call-ID", "call-1"),
        ("CSeq", "5 INVITE"),
        ("From", "<sip:x@steven.lab>;tag=1"),
        ("To", "<sip:u@skype.lab>"),
    )
    assert (response.status, response.reason) == (200, "OK")


def test_existing_to_tag_is_kept_and_existing_via_param_is_set_in_place() -> None:
    lines = (
        ("Via", "SIP/2.0/TLS a.example:5061;rport;branch=z9hG4bK1"),
        *BASE[2:3],
        ("To", "<sip:u@skype.lab>;tag=theirs"),
        *BASE[4:6],
    )
    response = build_response(request(*lines), 487, to_tag="ours", via_params=[("rport", "5062")])
    assert response.headers.get("To") == "<sip:u@skype.lab>;tag=theirs"
    # A changed parameter re-renders the Via, in place, keeping the order.
    assert response.headers.get("Via") == "SIP/2.0/TLS a.example:5061;rport=5062;branch=z9hG4bK1"
    assert response.reason == "Request Terminated"


def test_copy_order_and_extra_headers() -> None:
    # The client-facing 504 of ms-federation.md §7.1 puts From, To, Call-ID, CSeq, Via.
    response = build_response(
        request(*BASE),
        504,
        to_tag="98283FD4A66E24FFB4967CDB73149B25",
        copy_order=("From", "To", "Call-ID", "CSeq", "Via"),
        headers=[("ms-diagnostics", '1009;reason="No match";source="sip.skype.lab"')],
    )
    assert [name for name, _ in response.headers] == [
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Via",
        "Via",
        "ms-diagnostics",
    ]
    assert response.to.tag == "98283FD4A66E24FFB4967CDB73149B25"
    assert response.start_line == "SIP/2.0 504 Server time-out"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (180, "Ringing"),
        (400, "Bad Request"),
        (404, "Not Found"),
        (413, "Request Entity Too Large"),
        (480, "Temporarily Unavailable"),
        (486, "Busy Here"),
        (487, "Request Terminated"),
        (501, "Not Implemented"),
        (504, "Server time-out"),
        (505, "Version Not Supported"),
        (513, "Message Too Large"),
    ],
)
def test_standard_reason_phrases(status: int, reason: str) -> None:
    assert REASON_PHRASES[status] == reason
    assert build_response(request(*BASE), status).reason == reason


def test_unknown_status_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="pass reason="):
        build_response(request(*BASE), 499)
    assert build_response(request(*BASE), 499, "Custom").reason == "Custom"


def test_content_length_cannot_be_passed_as_a_header() -> None:
    with pytest.raises(ValueError, match="Content-Length"):
        build_response(request(*BASE), 200, headers=[("Content-Length", "0")])


def test_body_goes_out_with_its_length() -> None:
    response = build_response(request(*BASE), 200, body=b"v=0\r\n")
    assert serialize(response).endswith(b"Content-Length: 5\r\n\r\nv=0\r\n")


def test_caller_input_is_validated() -> None:
    with pytest.raises(ValueError, match="to_tag"):
        build_response(request(*BASE), 486, to_tag="a\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="Via parameter"):
        build_response(request(*BASE), 486, via_params=[("received", "a b")])
    with pytest.raises(ValueError, match="header"):
        build_response(request(*BASE), 486, headers=[("Server", "RTC/6.0\r\n")])


IPV6_REQUEST = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS [::1]:5061;branch=z9hG4bKv6\r\n"
    b"From: <sip:2000@steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\n"
    b"Call-ID: v6\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize(
    "received", ["::1", "2001:db8::9:1", "[2001:db8::9:1]", "::ffff:10.0.0.1", "10.48.36.47"]
)
def test_received_may_be_an_ipv6_address_as_rfc_3261_writes_it(received: str) -> None:
    # via-received = "received" EQUAL (IPv4address / IPv6address): the Edge answering a
    # peer on ::1 writes received=::1 (issue 12), and the answer parses back.
    request = parse_message(IPV6_REQUEST)
    assert isinstance(request, Request)
    params = (("received", received), ("ms-received-port", "5555"), ("ms-received-cid", "100"))
    wire = serialize(build_response(request, 504, to_tag="AB", via_params=params))
    assert f";received={received};ms-received-port=5555;".encode() in wire
    again = parse_message(wire)
    assert again.vias[0].received == received


@pytest.mark.parametrize("bad", ["::1x", "::1:", "1:2:3:4:5:6:7:8:9"])
def test_received_that_is_no_ip_address_is_refused(bad: str) -> None:
    text = IPV6_REQUEST.replace(b"branch=z9hG4bKv6", b"branch=z9hG4bKv6;received=" + bad.encode())
    with pytest.raises(SipParseError):
        _ = parse_message(text).vias
