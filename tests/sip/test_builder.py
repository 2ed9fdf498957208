"""builder_for: objects filled through a builder are ordinary frozen instances."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.sip import Headers, NameAddr, Request, SipUri, Via, abnf, parse_message
from simulator.sip.builder import builder_for
from simulator.sip.message import trusted_request, trusted_response
from simulator.sip.uri import _check_groups, parse_name_addr, parse_uri, parse_via

INVITE = (
    b"INVITE sip:bob@edge.bench SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:40123;branch=z9hG4bK-1\r\n"
    b'From: "Bench Partner" <sip:2000@partner.bench>;tag=1\r\n'
    b"To: <sip:bob@edge.bench>\r\nCall-ID: 1@h\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_built_values_equal_constructed_ones_and_stay_frozen() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    uri = SipUri(scheme="sip", user="2000", host="partner.bench")
    built = [
        (request.from_, NameAddr(display="Bench Partner", uri=uri, params=(("tag", "1"),))),
        (request.from_.uri, uri),
        (parse_uri("tel:+1"), parse_uri("tel:+1")),
        (
            request.vias[0],
            Via(transport="TLS", host="127.0.0.1", port=40123, params=(("branch", "z9hG4bK-1"),)),
        ),
        (parse_via("SIP/2.0/TLS [::1]")[0], Via(transport="TLS", host="[::1]")),
        (parse_name_addr("sip:a@b;x"), NameAddr(uri=parse_uri("sip:a@b"), params=(("x", None),))),
        (request.headers, Headers(request.headers.pairs)),
        (request, Request(method="INVITE", uri=request.uri, headers=request.headers)),
    ]
    for value, constructed in built:
        assert type(value) is type(constructed)
        assert value == constructed
        assert hash(value) == hash(constructed)
        assert repr(value) == repr(constructed)
        name = type(value).__slots__[0]
        with pytest.raises((dataclasses.FrozenInstanceError, AttributeError)):
            setattr(value, name, getattr(value, name))


def test_trusted_messages_are_what_the_constructors_give() -> None:
    headers = Headers([("Call-ID", "1")])
    request = trusted_request("OPTIONS", "sip:a@b", headers, b"x")
    assert request == Request(method="OPTIONS", uri="sip:a@b", headers=headers, body=b"x")
    response = trusted_response(200, "OK", headers, b"")
    assert response == dataclasses.replace(response)
    assert response._cache == {}
    assert request._cache is not response._cache


def test_builder_for_refuses_a_class_without_slots() -> None:
    class Plain:
        pass

    with pytest.raises(TypeError, match="no __slots__"):
        builder_for(Plain)


def test_a_layout_mismatch_fails_at_once() -> None:
    builder = builder_for(SipUri)

    class Other:
        __slots__ = ("a",)

    with pytest.raises(TypeError):
        builder().__class__ = Other


def test_the_fast_patterns_have_the_groups_the_builders_unpack() -> None:
    _check_groups()  # passes for the real patterns (it also runs at import)
    assert abnf.FAST_NAME_ADDR_RE.groupindex["params"] == abnf.FAST_NAME_ADDR_RE.groups
    # parse.py reads the Request-Line's method and URI as groups 1 and 2.
    assert abnf.FAST_REQUEST_LINE_RE.groupindex["method"] == 1
    assert abnf.FAST_REQUEST_LINE_RE.groupindex["uri"] == 2
