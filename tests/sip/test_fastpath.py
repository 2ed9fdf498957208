"""The fast paths (one regex per header kind) agree with the full RFC 3261 grammar.

parse_uri, parse_name_addr and parse_via try a strict-subset regex first and
build the value from its groups; only when it fails do they run the full
grammar. Whatever the input, the answer must be the same as the full
grammar's: an equal value (same text back from ``str()``), or the same
SipParseError (message and status). The generators below stay close to the
edges of the subset: IPv4 look-alikes, ports around 60000 and 65535, the
Via parameters with rules of their own in any case, quoted display names with
quoted-pairs, whitespace where the grammar allows some and where it does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import (
    FramingError,
    SipParseError,
    StreamFramer,
    abnf,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from simulator.sip.headers import split_top_level
from simulator.sip.uri import _parse_name_addr_full, _parse_uri_full, _parse_via_parm_full

MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = ALNUM + "-.!%*_+`'~"


T = TypeVar("T")


def mostly(good: list[T], bad: list[T]) -> st.SearchStrategy[T]:
    """One of ``good`` nine times in ten, else one of ``bad`` (so half the texts are valid)."""
    return st.integers(0, 9).flatmap(lambda i: st.sampled_from(bad if i == 0 else good))


ws = mostly(["", "", "", " "], ["\t", "  "])
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=6) | st.sampled_from(
    ["", "a b", "\u0131", "\u212a"]
)
hosts = mostly(
    [
        *("skype.lab", "sip.skype.lab.", "a", "a-b.c", "10.48.36.47", "255.255.255.255"),
        *("9abc", "1.2.3.4.example"),
    ],
    ["256.1.1.1", "1.2.3.4.5", "1.2.3", "-a", "a-", "a_b", "[::1]", "[2001:db8::1]", "[::g]", ""],
)
ports = mostly(["", "", ":0", ":5060", ":05060", ":59999"], [":60000", ":65535", ":65536", ":"])
uri_params = st.lists(
    st.tuples(
        mostly(["transport", "lr", "gr", "maddr", "a%41", "x[1]"], ["", "p?q", "a@b", "a b"]),
        st.none() | mostly(["tls", "urn:uuid:7b3d", "10.0.0.1"], ["", "%zz", "a=b"]),
    ),
    max_size=3,
)


@st.composite
def uri_texts(draw: st.DrawFn) -> str:
    scheme = draw(mostly(["sip", "SIP", "sips", "Sip", "sipS"], ["tel", "sipx"]))
    userinfo = draw(
        mostly(
            ["", "2000@", "u:pw@", "u:@", "a;b=c@", "a?b@", "a%41@"],
            ["a b@", "@", "a@b@", "a:b:c@"],
        )
    )
    params = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in draw(uri_params))
    tail = draw(mostly([""], ["?X=1", "?", "@x"]))
    return f"{scheme}:{userinfo}{draw(hosts)}{draw(ports)}{params}{tail}"


header_params = st.lists(
    st.tuples(
        ws,
        tokens,
        st.none()
        | st.tuples(
            ws,
            mostly(
                ["1", "z9hG4bK1", "tag", "10.0.0.1"],
                ['"q;v"', '"<urn:uuid:7b>"', "[::1]", "", '"x', "a b"],
            ),
        ),
    ),
    max_size=3,
)


def render_params(params: list[tuple[str, str, tuple[str, str] | None]]) -> str:
    out = ""
    for space, name, value in params:
        out += f"{space};{space}{name}"
        if value is not None:
            out += f"{value[0]}={value[0]}{value[1]}"
    return out


@st.composite
def name_addr_texts(draw: st.DrawFn) -> str:
    display = draw(
        mostly(
            ["", "", '"DX70 Steven" ', '"Steven"', '""', "Bench Partner ", "A \t B", "sip ", '"ü"'],
            ['"a\\"b" ', '"a\\\\" ', '"un', '"\x7f" ', "Bell, A ", "ü "],
        )
    )
    uri = draw(uri_texts())
    form = draw(mostly(["<{}>"], ["{}", "< {}>", "<{}", "<>"]))
    lead, trail = draw(ws), draw(ws)
    return f"{lead}{display}{form.format(uri)}{render_params(draw(header_params))}{trail}"


via_params = st.lists(
    st.tuples(
        mostly([""], [" "]),
        mostly(
            [
                *("branch", "Branch", "BRANCH", "received", "RECEIVED", "rport", "rPort"),
                *("rportx", "branchx", "x", "egress-zone"),
            ],
            ["\u017f", ""],
        ),
        mostly(
            ["z9hG4bK1", "10.48.36.47", "5060", "abc", "1.2.3.256", None],
            [None, "123456", '"q"', "[::1]", "a b", ""],
        ),
    ),
    max_size=4,
)


@st.composite
def via_texts(draw: st.DrawFn) -> str:
    protocol = draw(mostly(["SIP/2.0/"], ["SIP / 2.0 / ", "sip/2.0/", "SIP/3.0/", "SIP/"]))
    transport = draw(mostly(["TLS", "TCP", "udp", "x-y"], ["", "T S"]))
    gap = draw(mostly([" "], ["  ", "\t", ""]))
    params = "".join(
        f"{space};{name}" if value is None else f"{space};{name}={value}"
        for space, name, value in draw(via_params)
    )
    one = f"{protocol}{transport}{gap}{draw(hosts)}{draw(ports)}{params}"
    more = draw(mostly([""], [", SIP/2.0/TLS h", ",,SIP/2.0/TLS h", ", "]))
    return draw(ws) + one + more + draw(ws)


def outcome(parse: Callable[[str], object], text: str) -> object:
    """The value and its text, or the error as (message, status)."""
    try:
        value = parse(text)
    except SipParseError as exc:
        return ("error", exc.message, exc.status_hint, exc.offending)
    rendered = [str(v) for v in value] if isinstance(value, list) else str(value)
    return (value, rendered)


def full_via(value: str) -> list[object]:
    """parse_via with only the full grammar (the same splitting and empty check)."""
    out: list[object] = []
    for piece in split_top_level(value):
        if not piece.strip(" \t"):
            raise SipParseError(
                "empty Via value", offending=value.encode("utf-8", "surrogateescape")
            )
        out.append(_parse_via_parm_full(piece.strip(" \t"), value))
    return out


@MANY
@given(uri_texts())
def test_parse_uri_equals_the_full_grammar(text: str) -> None:
    assert outcome(parse_uri, text) == outcome(_parse_uri_full, text)


@MANY
@given(name_addr_texts())
def test_parse_name_addr_equals_the_full_grammar(text: str) -> None:
    assert outcome(parse_name_addr, text) == outcome(_parse_name_addr_full, text)


@MANY
@given(via_texts())
def test_parse_via_equals_the_full_grammar(text: str) -> None:
    assert outcome(parse_via, text) == outcome(full_via, text)


@MANY
@given(name_addr_texts())
def test_fast_contact_check_accepts_only_what_the_full_grammar_accepts(text: str) -> None:
    if abnf.FAST_CONTACT_RE.fullmatch(text):
        _parse_name_addr_full(text)  # must not raise


# --- the common shapes do take the fast path (else the speed silently goes) -------------

COMMON: list[tuple[re.Pattern[str], str]] = [
    (abnf.FAST_SIP_URI_RE, "sip:stejanss@skype.lab"),
    (abnf.FAST_SIP_URI_RE, "sip:2000@127.0.0.1:5071;transport=tls"),
    (abnf.FAST_NAME_ADDR_RE, '"DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884'),
    (abnf.FAST_NAME_ADDR_RE, '"Bench Partner" <sip:2000@partner.bench>;tag=12345SIPpTag001'),
    (abnf.FAST_NAME_ADDR_RE, "<sip:stejanss@skype.lab>"),
    (abnf.FAST_NAME_ADDR_RE, "<sip:stejanss@skype.lab>;tag=280f2bf329;epid=c21eec507a"),
    (abnf.FAST_CONTACT_RE, '<sip:2000@acano.steven.lab;gr=urn:uuid:7b3d>;+sip.instance="<urn:7b>"'),
    (abnf.FAST_CONTACT_RE, "<sip:2000@127.0.0.1:5071;transport=tls>"),
    (
        abnf.FAST_VIA_RE,
        "SIP/2.0/TLS 10.48.36.47:5061;egress-zone=DNSZone1;branch=z9hG4bK42ee6f"
        ";proxy-call-id=6b2a018a-2da5;rport",
    ),
    (abnf.FAST_VIA_RE, "SIP/2.0/TLS 10.48.36.46:5061;received=10.48.36.46;rport=28119"),
    (abnf.FAST_VIA_RE, "SIP/2.0/TLS 127.0.0.1:5071;branch=z9hG4bK-12345-1-0"),
]


@pytest.mark.parametrize(("pattern", "text"), COMMON)
def test_common_shapes_take_the_fast_path(pattern: re.Pattern[str], text: str) -> None:
    assert pattern.fullmatch(text)


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/TLS h;received=example.com",
        "SIP/2.0/TLS h;RECEIVED",
        "SIP/2.0/TLS h;branch",
        "SIP/2.0/TLS h;rport=abc",
        "SIP/2.0/TLS h:65536",
        "SIP/2.0/TLS 1.2.3.4.5",
        "SIP/2.0/TLS h;\u017f=1",
    ],
)
def test_via_the_fast_path_leaves_is_still_refused(text: str) -> None:
    assert abnf.FAST_VIA_RE.fullmatch(text) is None
    with pytest.raises(SipParseError):
        parse_via(text)


def test_lazy_headers_are_equal_to_the_eager_ones_after_parse() -> None:
    data = (
        b"INVITE sip:u@skype.lab SIP/2.0\r\n"
        b"v: SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK1, SIP/2.0/TLS h\r\n"
        b"Via: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK2;received=10.0.0.2\r\n"
        b'f: "a \\" b" <sip:x@steven.lab>;tag=1\r\n'
        b"t: sip:u@skype.lab\r\n"
        b"i: c\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert message.from_ == _parse_name_addr_full('"a \\" b" <sip:x@steven.lab>;tag=1')
    assert message.to == _parse_name_addr_full("sip:u@skype.lab")
    assert [str(v) for v in message.vias] == [
        "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK1",
        "SIP/2.0/TLS h",
        "SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK2;received=10.0.0.2",
    ]
    assert message.vias[2].received == "10.0.0.2"


# --- the framer's Content-Length scan ---------------------------------------------------

length_lines = st.lists(
    mostly(
        [
            "Content-Length: 5",
            "l: 0",
            "Via: SIP/2.0/TLS h",
            "X-A: content-length: 9",
            "To: <sip:a@b>",
        ],
        [
            *("content-LENGTH :7", "L:\t5 ", "Content-Length: 0005", "Content-Length: 5"),
            *("Content-Length: -1", "Content-Length: ", "Content-Length: 99999999999999"),
            *("Content-Length: 5\rX", "Content-Length: 5\nl: 6", " 6", "\t7", "l:", "Xl: 1"),
            *("Content-Length: 262145", "Content-Length: 262144", "Content-Length: \uff15"),
            *("Content-Lengthy: 1", ":l: 3", "Content-Length: 1 2", "l: 1\r"),
        ],
    ),
    max_size=6,
)


def length_outcome(scan: Callable[[StreamFramer], int]) -> object:
    framer = StreamFramer()
    try:
        return scan(framer)
    except FramingError as exc:
        return (type(exc), exc.message, exc.status_hint, exc.offending)


@MANY
@given(length_lines)
def test_framer_content_length_scan_equals_the_line_by_line_rule(lines: list[str]) -> None:
    block = "\r\n".join(["MESSAGE sip:a@b SIP/2.0", *lines, "", ""]).encode("utf-8")
    fast = length_outcome(lambda f: f._body_length(bytearray(block), len(block)))
    # The line-by-line rule (unfold, split at CRLF, name before the first colon).
    assert fast == length_outcome(lambda f: f._body_length_folded(block))
