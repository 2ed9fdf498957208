"""parse_message rules, Headers, and the URI / name-addr / Via parsers."""

from __future__ import annotations

import pytest

from simulator.sip import (
    AbsoluteUri,
    Headers,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    Via,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    serialize,
)

GOOD = {
    "start": "OPTIONS sip:u@skype.lab SIP/2.0",
    "Via": "SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1",
    "To": "<sip:u@skype.lab>",
    "From": "<sip:x@steven.lab>;tag=1",
    "Call-ID": "abc@10.48.36.47",
    "CSeq": "1 OPTIONS",
    "Max-Forwards": "70",
}


def wire(*, drop: tuple[str, ...] = (), extra: tuple[str, ...] = (), **change: str) -> bytes:
    """A valid OPTIONS with some lines changed, dropped or added."""
    fields = {**GOOD, **{k.replace("_", "-"): v for k, v in change.items()}}
    lines = [fields.pop("start")]
    lines += [f"{k}: {v}" for k, v in fields.items() if k not in drop]
    lines += list(extra)
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


def test_the_base_message_is_valid() -> None:
    message = parse_message(wire())
    assert isinstance(message, Request)
    assert message.start_line == GOOD["start"]
    assert message.call_id == "abc@10.48.36.47"
    assert message.cseq == (1, "OPTIONS")
    assert message.max_forwards == 70
    assert message.to.uri == SipUri(scheme="sip", user="u", host="skype.lab")
    assert message.from_.tag == "1"
    assert "Content-Length" not in message.headers


REJECTIONS: list[tuple[str, bytes, int, str]] = [
    ("missing Via", wire(drop=("Via",)), 400, "missing Via"),
    ("missing CSeq", wire(drop=("CSeq",)), 400, "missing CSeq"),
    ("two To lines", wire(extra=("t: <sip:y@b>",)), 400, "more than one To"),
    ("two Max-Forwards", wire(extra=("Max-Forwards: 70",)), 400, "more than one Max-Forwards"),
    ("SIP/3.0", wire(start="OPTIONS sip:u@skype.lab SIP/3.0"), 505, "version"),
    ("lower-case method in CSeq", wire(CSeq="1 options"), 400, "CSeq method"),
    ("unknown method, CSeq mismatch", wire(start="FOO sip:a@b SIP/2.0"), 501, "CSeq method"),
    ("CSeq 2**32", wire(CSeq="4294967296 OPTIONS"), 400, "CSeq number"),
    ("CSeq without method", wire(CSeq="1"), 400, "bad CSeq"),
    ("CSeq 5000 digits", wire(CSeq="9" * 5000 + " OPTIONS"), 400, "CSeq number"),
    ("Max-Forwards 256", wire(Max_Forwards="256"), 400, "Max-Forwards over 255"),
    ("Max-Forwards -1", wire(Max_Forwards="-1"), 400, "bad Max-Forwards"),
    ("Call-ID with space", wire(Call_ID="a b"), 400, "bad Call-ID"),
    ("empty Call-ID", wire(Call_ID=""), 400, "bad Call-ID"),
    ("tab in request line", wire(start="OPTIONS\tsip:u@b SIP/2.0"), 400, "Request-Line"),
    ("URI in <>", wire(start="OPTIONS <sip:u@b> SIP/2.0"), 400, "no scheme"),
    ("headers in R-URI", wire(start="OPTIONS sip:u@b?X=1 SIP/2.0"), 400, "escaped headers"),
    ("bad host in R-URI", wire(start="OPTIONS sip:u@b_c SIP/2.0"), 400, "bad host"),
    ("Via without host", wire(Via="SIP/2.0/TLS"), 400, "bad Via"),
    ("Via ;;", wire(Via="SIP/2.0/TLS h;;branch=z9hG4bK1"), 400, "parameter"),
    ("Via ,,", wire(Via="SIP/2.0/TLS h;branch=z9hG4bK1,,SIP/2.0/TLS g"), 400, "empty Via"),
    ("Via received=host", wire(Via="SIP/2.0/TLS h;received=example.com"), 400, "received"),
    ("Via rport=abc", wire(Via="SIP/2.0/TLS h;rport=abc"), 400, "rport"),
    ("Via port 70000", wire(Via="SIP/2.0/TLS h:70000"), 400, "port"),
    ("Via 1.2.3.4.5", wire(Via="SIP/2.0/TLS 1.2.3.4.5"), 400, "Via"),
    ("Contact ;;", wire(extra=("Contact: <sip:a@b>;;",)), 400, "parameter"),
    ("Contact ,,", wire(extra=("Contact: <sip:a@b>,,<sip:c@d>",)), 400, "empty Contact"),
    ("Contact addr-spec ?", wire(extra=("m: sip:a@b?X=1",)), 400, "enclosed in <>"),
    ("To < uri >", wire(To="< sip:u@b >"), 400, "inside <>"),
    ("To unterminated <", wire(To="<sip:u@b"), 400, "'<' without '>'"),
    ("From bad display", wire(From="Bell, A <sip:a@b>;tag=1"), 400, "display name"),
    ("From no scheme", wire(From="nobody;tag=1"), 400, "neither"),
    ("Date EST", wire(extra=("Date: Sat, 13 Nov 2010 23:29:00 EST",)), 400, "GMT"),
    ("header without colon", wire(extra=("Garbage",)), 400, "name: value"),
    ("header name with space", wire(extra=("Bad Name: x",)), 400, "name: value"),
    ("bare LF in a header", wire(extra=("X-A: a\nb",)), 400, "bare CR or LF"),
    ("bare CR in a header", wire(extra=("X-A: a\rb",)), 400, "bare CR or LF"),
    ("no blank line", wire()[:-2], 400, "no empty line"),
    ("empty", b"", 400, "no empty line"),
    ("status 099", b"SIP/2.0 099 Low\r\n\r\n", 400, "100-699"),
    ("status 1000", b"SIP/2.0 1000 Big\r\n\r\n", 400, "Status-Line"),
    ("response SIP/3.0", b"SIP/3.0 200 OK\r\n\r\n", 505, "version"),
    ("response missing headers", b"SIP/2.0 200 OK\r\n\r\n", 400, "missing"),
    ("Content-Length -1", wire().replace(b"Length: 0", b"Length: -1"), 400, "not a number"),
    (
        "Content-Length huge",
        wire().replace(b"Length: 0", b"Length: " + b"9" * 30),
        400,
        "absurd",
    ),
]


@pytest.mark.parametrize(
    ("what", "data", "status", "why"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_reject(what: str, data: bytes, status: int, why: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status_hint == status
    assert why in info.value.message, what
    assert isinstance(info.value.offending, bytes)


ACCEPTS: list[tuple[str, bytes]] = [
    ("no Max-Forwards (RFC 2543)", wire(drop=("Max-Forwards",))),
    ("Contact *", wire(extra=("Contact: *",))),
    (
        "IPv6 Via and R-URI",
        wire(
            start="OPTIONS sip:u@[2001:db8::1]:5061 SIP/2.0",
            Via="SIP/2.0/TLS [2001:db8::2]:5061;received=[2001:db8::3]",
        ),
    ),
    (
        "Microsoft Contact",
        wire(
            extra=(
                "Contact: <sip:sip.skype.lab:5061;transport=tls;maddr=10.0.0.1;ms-opaque=d3>"
                ';text;audio;video;image;+sip.instance="<urn:uuid:F0E3>";methods="INVITE, BYE"',
            )
        ),
    ),
    ("leading CRLFs", b"\r\n\r\n" + wire()),
    ("lower-case sip version", wire(start="OPTIONS sip:u@skype.lab sip/2.0")),
    ("Date GMT", wire(extra=("Date: Sat, 13 Nov 2010 23:29:00 GMT",))),
    ("tel: To", wire(To="<tel:+3225551234>")),
    ("FQDN with trailing dot", wire(start="OPTIONS sip:u@skype.lab. SIP/2.0")),
    ("1.2.3.4.example as host", wire(Via="SIP/2.0/TLS 1.2.3.4.example;branch=z9hG4bK1")),
]


@pytest.mark.parametrize(("what", "data"), ACCEPTS, ids=[a[0] for a in ACCEPTS])
def test_accept(what: str, data: bytes) -> None:
    message = parse_message(data)
    assert parse_message(serialize(message)) == message


def test_response_fields_and_datagram_body_rules() -> None:
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=2\r\n"
        b"From: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 3 INVITE\r\nContent-Length: 3\r\n\r\n"
        b"abcTRAILING"
    )
    response = parse_message(data)
    assert isinstance(response, Response)
    assert (response.status, response.reason, response.body) == (200, "OK", b"abc")
    assert response.start_line == "SIP/2.0 200 OK"
    assert response.cseq == (3, "INVITE")
    # Without Content-Length a datagram's body is the rest of it.
    no_length = data.replace(b"Content-Length: 3\r\n", b"")
    assert parse_message(no_length).body == b"abcTRAILING"


def test_parse_only_takes_bytes() -> None:
    with pytest.raises(TypeError):
        parse_message("OPTIONS sip:a@b SIP/2.0\r\n\r\n")  # type: ignore[arg-type]


# --- Request / Response construction ---------------------------------------------------

HEADERS = Headers([("Via", GOOD["Via"]), ("Call-ID", "c")])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "IN VITE", "uri": "sip:a@b"}, "token"),
        ({"method": "INVITE", "uri": "sip:a@b c"}, "one word"),
        ({"method": "INVITE", "uri": ""}, "one word"),
        ({"method": "INVITE", "uri": "sip:a@b", "version": "HTTP/1.1"}, "SIP/2.0"),
    ],
)
def test_request_is_validated_when_built(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Request(headers=HEADERS, **kwargs)  # type: ignore[arg-type]


def test_messages_refuse_content_length_and_bad_types() -> None:
    with pytest.raises(ValueError, match="Content-Length"):
        Request(method="BYE", uri="sip:a@b", headers=HEADERS.append("l", "0"))
    with pytest.raises(TypeError):
        Request(method="BYE", uri="sip:a@b", headers=[("To", "x")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Response(status=200, reason="OK", headers=HEADERS, body="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="100-699"):
        Response(status=700, reason="No", headers=HEADERS)
    with pytest.raises(ValueError, match="one line"):
        Response(status=200, reason="O\r\nK", headers=HEADERS)


def test_accessors_on_a_built_message_raise_sip_parse_error_when_missing() -> None:
    request = Request(method="BYE", uri="sip:a@b", headers=Headers([("Call-ID", "c")]))
    assert request.call_id == "c"
    assert request.max_forwards is None
    assert request.vias == []
    with pytest.raises(SipParseError):
        _ = request.cseq
    with pytest.raises(SipParseError):
        _ = request.to
    assert request == Request(method="BYE", uri="sip:a@b", headers=Headers([("Call-ID", "c")]))
    assert hash(request) == hash(
        Request(method="BYE", uri="sip:a@b", headers=Headers([("Call-ID", "c")]))
    )


# --- Headers ---------------------------------------------------------------------------

COMPACT = [
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("u", "Allow-Events"),
    ("r", "Refer-To"),
    ("x", "Session-Expires"),
]


@pytest.mark.parametrize(("short", "long"), COMPACT)
def test_compact_form_equals_long_name(short: str, long: str) -> None:
    headers = Headers([(short.upper(), "1"), (long.lower(), "2")])
    assert headers.get(long) == "1"
    assert headers.get(short) == "1"
    assert long.upper() in headers
    assert headers.count(long) == 2
    assert headers.remove(short) == Headers()


def test_get_all_splits_list_headers_at_top_level_commas() -> None:
    headers = Headers(
        [
            ("Contact", '"Bell, A" <sip:a@b;x=1,2>;q=0.5 , <sip:c@d>'),
            ("m", "sip:e@f"),
            ("Allow", "INVITE,, ACK"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Route", '<sip:a@b;lr>,<sip:c@d;lr>;x="1,2"'),
            ("Via", "SIP/2.0/TLS a, SIP/2.0/TLS b"),
            ("v", "SIP/2.0/TLS c"),
        ]
    )
    assert headers.get_all("contact") == [
        '"Bell, A" <sip:a@b;x=1,2>;q=0.5',
        "<sip:c@d>",
        "sip:e@f",
    ]
    assert headers.get_all("Allow") == ["INVITE", "ACK"]
    assert headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]  # not a list header
    assert headers.get_all("Route") == ["<sip:a@b;lr>", '<sip:c@d;lr>;x="1,2"']
    assert headers.get_all("Via") == ["SIP/2.0/TLS a", "SIP/2.0/TLS b", "SIP/2.0/TLS c"]
    assert headers.get("Via") == "SIP/2.0/TLS a, SIP/2.0/TLS b"
    assert headers.get_lines("via") == ["SIP/2.0/TLS a, SIP/2.0/TLS b", "SIP/2.0/TLS c"]
    assert Headers([("Contact", "*")]).get_all("m") == ["*"]
    assert headers.get("Missing") is None
    assert headers.get_all("Missing") == []


def test_headers_are_immutable_and_ordered() -> None:
    headers = Headers([("To", "a"), ("X-A", "1"), ("t", "b")])
    assert headers.append("X-B", "2").pairs == (("To", "a"), ("X-A", "1"), ("t", "b"), ("X-B", "2"))
    assert headers.replace("TO", "c").pairs == (("TO", "c"), ("X-A", "1"))
    assert headers.replace("X-New", "n").pairs[-1] == ("X-New", "n")
    assert headers.remove("to").pairs == (("X-A", "1"),)
    assert headers.pairs == (("To", "a"), ("X-A", "1"), ("t", "b"))  # unchanged
    assert list(headers) == list(headers.pairs)
    assert len(headers) == 3
    assert headers == Headers(headers.pairs)
    assert headers != Headers([("to", "a"), ("X-A", "1"), ("t", "b")])  # spelling counts
    assert headers != "To: a"
    assert 3 not in headers
    with pytest.raises(AttributeError):
        headers._pairs = ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Bad Name", "x"),
        ("", "x"),
        ("X", "a\r\nb"),
        ("X", " lead"),
        ("X", "trail\t"),
        ("X", "\ud800"),
    ],
)
def test_headers_refuse_what_cannot_go_on_the_wire(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="header"):
        Headers([(name, value)])
    with pytest.raises(ValueError, match="header"):
        Headers().append(name, value)


# --- URIs ------------------------------------------------------------------------------

URIS: list[tuple[str, SipUri | AbsoluteUri]] = [
    ("sip:stejanss@skype.lab", SipUri(scheme="sip", user="stejanss", host="skype.lab")),
    (
        "sips:u:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=x&Priority=urgent",
        SipUri(
            scheme="sips",
            user="u",
            password="pw",
            host="[2001:db8::1]",
            port=5061,
            params=(("transport", "tls"), ("lr", None)),
            headers=(("Subject", "x"), ("Priority", "urgent")),
        ),
    ),
    ("sip:10.48.36.47:5061", SipUri(scheme="sip", host="10.48.36.47", port=5061)),
    ("sip:u:@h", SipUri(scheme="sip", user="u", password="", host="h")),
    (
        "sip:user;par=u%40example.net@example.com",
        SipUri(scheme="sip", user="user;par=u%40example.net", host="example.com"),
    ),
    (
        "tel:+3225551234;phone-context=x",
        AbsoluteUri(scheme="tel", rest="+3225551234;phone-context=x"),
    ),
    ("urn:service:sos", AbsoluteUri(scheme="urn", rest="service:sos")),
]


@pytest.mark.parametrize(("text", "uri"), URIS)
def test_parse_uri(text: str, uri: SipUri | AbsoluteUri) -> None:
    assert parse_uri(text) == uri
    assert str(uri) == text


def test_uri_param_lookup_and_scheme_case() -> None:
    uri = parse_uri("SIP:a@b;Transport=TLS;lr")
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.param("transport"), uri.param("LR"), uri.param("x")) == (
        "sip",
        "TLS",
        "",
        None,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:",
        "nocolon",
        "1sip:a@b",
        "sip:@h",
        "sip:a@b@c",
        "sip:a@[::g]",
        "sip:a@[2001:db8::1",
        "sip:a@[2001:db8::1]x",
        "sip:a@h:99999",
        "sip:a@h:",
        "sip:a@h;",
        "sip:a@h;p=",
        "sip:a@h?noequals",
        "sip:a b@h",
        "sip:a@h_h",
        "sip:a@-h",
        "tel:",
        "tel:has space",
    ],
)
def test_parse_uri_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_sip_uri_is_validated_when_built() -> None:
    with pytest.raises(ValueError, match="scheme"):
        SipUri(scheme="http", host="h")
    with pytest.raises(ValueError, match="host"):
        SipUri(scheme="sip", host="a b")
    with pytest.raises(ValueError, match="password needs a user"):
        SipUri(scheme="sip", host="h", password="x")
    with pytest.raises(ValueError, match="port"):
        SipUri(scheme="sip", host="h", port=65536)


# --- name-addr -------------------------------------------------------------------------

NAME_ADDRS: list[tuple[str, NameAddr, str]] = [
    (
        '"DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884',
        NameAddr(
            display="DX70 Steven",
            uri=SipUri(scheme="sip", user="2000", host="acano.steven.lab"),
            params=(("tag", "9fea3e7d70afd884"),),
        ),
        '"DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884',
    ),
    (
        '"Steven Janssens"<sip:stejanss@skype.lab>;tag=280f2bf329;epid=c21eec507a',
        NameAddr(
            display="Steven Janssens",
            uri=SipUri(scheme="sip", user="stejanss", host="skype.lab"),
            params=(("tag", "280f2bf329"), ("epid", "c21eec507a")),
        ),
        '"Steven Janssens" <sip:stejanss@skype.lab>;tag=280f2bf329;epid=c21eec507a',
    ),
    (
        'sip:a@b;tag=1 ; x = "q;v"',
        NameAddr(
            uri=SipUri(scheme="sip", user="a", host="b"), params=(("tag", "1"), ("x", '"q;v"'))
        ),
        '<sip:a@b>;tag=1;x="q;v"',
    ),
    (
        "A  B\t<sip:a@b;lr>",
        NameAddr(
            display="A B", uri=SipUri(scheme="sip", user="a", host="b", params=(("lr", None),))
        ),
        '"A B" <sip:a@b;lr>',
    ),
    (
        '"quote \\" and \\\\" <tel:+1>',
        NameAddr(display='quote " and \\', uri=AbsoluteUri(scheme="tel", rest="+1")),
        '"quote \\" and \\\\" <tel:+1>',
    ),
    (
        "<sip:[::1]>;received=[::2]",
        NameAddr(uri=SipUri(scheme="sip", host="[::1]"), params=(("received", "[::2]"),)),
        "<sip:[::1]>;received=[::2]",
    ),
]


@pytest.mark.parametrize(("text", "expected", "canonical"), NAME_ADDRS)
def test_parse_name_addr(text: str, expected: NameAddr, canonical: str) -> None:
    parsed = parse_name_addr(text)
    assert parsed == expected
    assert str(parsed) == canonical
    assert parse_name_addr(canonical) == expected


def test_name_addr_tag_and_params() -> None:
    addr = parse_name_addr("<sip:a@b>;TAG=x;lr")
    assert (addr.tag, addr.param("tag"), addr.param("LR"), addr.param("no")) == ("x", "x", "", None)
    assert parse_name_addr("<sip:a@b>").tag is None


# --- Via -------------------------------------------------------------------------------


def test_parse_via_several_values_with_odd_spacing() -> None:
    vias = parse_via(
        "SIP / 2.0 / UDP  h1.example:5060 ; branch = z9hG4bK1 ;rport, SIP/2.0/TLS [::1]"
    )
    assert vias == [
        Via(
            transport="UDP",
            host="h1.example",
            port=5060,
            params=(("branch", "z9hG4bK1"), ("rport", None)),
        ),
        Via(transport="TLS", host="[::1]"),
    ]
    assert str(vias[0]) == "SIP / 2.0 / UDP  h1.example:5060 ; branch = z9hG4bK1 ;rport"
    assert (vias[0].branch, vias[0].rport, vias[0].received) == ("z9hG4bK1", "", None)
    assert vias[0].sent_by == "h1.example:5060"
    assert str(vias[1]) == "SIP/2.0/TLS [::1]"


def test_via_with_params_appends_to_the_raw_text() -> None:
    [via] = parse_via("SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1;rport")
    edge = via.with_params(("received", "10.48.36.47"), ("ms-received-port", "25002"))
    assert str(edge) == (
        "SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1;rport"
        ";received=10.48.36.47;ms-received-port=25002"
    )
    assert edge.received == "10.48.36.47"
    assert edge.params[-1] == ("ms-received-port", "25002")
    changed = via.with_params(("RPORT", "25002"))
    assert str(changed) == "SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1;rport=25002"
    built = Via(transport="TLS", host="h").with_params(("branch", "z9hG4bKx"))
    assert str(built) == "SIP/2.0/TLS h;branch=z9hG4bKx"


def test_via_is_validated_when_built() -> None:
    with pytest.raises(ValueError, match="protocol"):
        Via(protocol="SIP", transport="TLS", host="h")
    with pytest.raises(ValueError, match="parameter"):
        Via(transport="TLS", host="h", params=(("branch", "a b"),))
