"""The fast paths of build_response, Headers and serialize agree with the general ones.

build_response copies the usual request (one line each of Call-ID, CSeq, From
and To, any number of Vias) with a few C-level calls, and appends the Edge's
Via parameters to the top Via as text when the parser's fast-path match shows
they are new; everything else takes the general loop. Whatever the request and
the arguments, both must give the same bytes, or the same error.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import (
    Headers,
    Request,
    Response,
    build_response,
    parse_message,
    serialize,
)
from simulator.sip.abnf import TOKEN_RE
from simulator.sip.headers import _PLAIN_VALUE_RE, _check_pair, _check_pair_why, check_pairs
from simulator.sip.response import (
    DEFAULT_COPY_ORDER,
    _appended_top_via_params,
    _copy_default,
    _with_top_via_params,
    _with_top_via_params_general,
)
from simulator.sip.uri import Param

MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = ALNUM + "-.!%*_+`'~"


def mostly(good: list[object], bad: list[object]) -> st.SearchStrategy[object]:
    """One of ``good`` four times in five, else one of ``bad``."""
    return st.integers(0, 4).flatmap(lambda i: st.sampled_from(bad if i == 0 else good))


VIA_NAMES = ["received", "ms-received-port", "ms-received-cid", "rport", "x"]
#: The Edge's names in other cases, names already in the generated Vias, non-tokens.
ODD_NAMES = ["RECEIVED", "Branch", "egress-zone", "a;b", "a=b", "", "a b", "\u017f", 5, None]
GOOD_VALUES = ["10.48.36.47", "25002", "100", "z9hG4bK1", None]
ODD_VALUES = ["[::1]", '"q;v"', "a;b", "a=b", "", "a b", "1.2.3.4;x=y", 7, b"x"]

edge_params = st.lists(
    st.tuples(mostly(VIA_NAMES, ODD_NAMES), mostly(GOOD_VALUES, ODD_VALUES)), max_size=4
).map(tuple)

top_vias = mostly(
    [
        "SIP/2.0/TLS 127.0.0.1:40123;branch=z9hG4bK-2671-1-0",
        "SIP/2.0/TLS 10.48.36.47:5061;egress-zone=DNSZone1;branch=z9hG4bK42;rport",
        "SIP/2.0/TCP h;branch=z9hG4bK1;received=10.0.0.1",
        "SIP/2.0/TLS h;branch=z9hG4bKreceived1",
        "SIP/2.0/TLS h;BRANCH=z9hG4bK1;x",
    ],
    [
        "SIP/2.0/TLS [::1]:5061;branch=z9hG4bK1",
        "SIP/2.0/TLS h;branch=z9hG4bK1, SIP/2.0/TLS g;branch=z9hG4bK2",
        "SIP / 2.0 / TLS h;branch=z9hG4bK1",
        'SIP/2.0/TLS h;branch=z9hG4bK1;x="q"',
        "SIP/2.0/TLS h;ms-received-cid=1",
    ],
)
to_values = mostly(
    ["<sip:bob@edge.bench>", '"Bob" <sip:bob@edge.bench>', "<sip:bob@edge.bench>;tag=1"],
    ["sip:bob@edge.bench", "<sip:bob@edge.bench>;TAG=x", "<sip:bob@edge.bench>;x=tag"],
)
extra_lines = st.lists(
    st.tuples(
        mostly(["Server", "Record-Route", "X-Tag"], ["v", "t", "Call-ID", "CSeq"]),
        mostly(["RTC/6.0", "a b"], [" x", "x ", "a\tb", "", "\x7f"]),
    ),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A parsable request: usual lines, sometimes compact, repeated or missing."""
    lines = [f"Via: {draw(top_vias)}"]
    lines += draw(st.lists(st.just("Via: SIP/2.0/TLS 10.0.0.9;branch=z9hG4bK9"), max_size=2))
    lines += [
        f"{draw(mostly(['To'], ['t']))}: {draw(to_values)}",
        f"{draw(mostly(['From'], ['f']))}: <sip:a@partner.bench>;tag=1",
        f"{draw(mostly(['Call-ID'], ['i']))}: 1-2671@127.0.0.1",
        "CSeq: 1 INVITE",
        "Max-Forwards: 70",
    ]
    lines += draw(st.lists(st.sampled_from(["Server: x", "k: timer", "Record-Route: <sip:p>"])))
    lines = draw(st.permutations(lines))
    return ("\r\n".join(["INVITE sip:bob@edge.bench SIP/2.0", *lines, "", ""])).encode()


def outcome(build: Callable[[], Response]) -> object:
    """The response's bytes, or the error (type and message): bad arguments raise
    ValueError, TypeError or AttributeError (a non-str Via parameter name)."""
    try:
        return serialize(build())
    except Exception as exc:
        return (type(exc), str(exc))


#: The general loop: an equal copy order that is not the default object.
GENERAL_ORDER = list(DEFAULT_COPY_ORDER)


@MANY
@given(
    requests(),
    edge_params,
    st.none() | st.sampled_from(["0123456789ABCDEF", "x y"]),
    extra_lines,
    st.booleans(),
)
def test_build_response_fast_path_equals_the_general_loop(
    data: bytes,
    params: tuple[Param, ...],
    to_tag: str | None,
    extra: list[tuple[str, str]],
    vias_built: bool,
) -> None:
    fast, general = parse_message(data), parse_message(data)
    assert isinstance(fast, Request)
    assert isinstance(general, Request)
    if vias_built:
        _ = fast.vias  # the accessor's Vias in the cache instead of the parser's matches

    def build(request: Request, order: list[str] | tuple[str, ...]) -> Response:
        return build_response(
            request, 504, to_tag=to_tag, headers=extra, via_params=params, copy_order=order
        )

    expected = outcome(lambda: build(general, GENERAL_ORDER))
    assert outcome(lambda: build(fast, DEFAULT_COPY_ORDER)) == expected
    # A Request built by hand has no cache: the same again.
    plain = Request(method=fast.method, uri=fast.uri, headers=fast.headers, body=fast.body)
    assert outcome(lambda: build(plain, DEFAULT_COPY_ORDER)) == expected


@MANY
@given(requests(), edge_params)
def test_top_via_text_append_equals_the_general_rule(
    data: bytes, params: tuple[Param, ...]
) -> None:
    request = parse_message(data)
    assert isinstance(request, Request)
    line = request.headers.get("Via")
    assert line is not None

    def run(fn: Callable[[Request, str, tuple[Param, ...]], str]) -> object:
        try:
            return fn(request, line, params)
        except Exception as exc:
            return (type(exc), str(exc))

    assert run(_with_top_via_params) == run(_with_top_via_params_general)


def test_the_edge_case_takes_the_text_append() -> None:
    data = (
        b"INVITE sip:bob@edge.bench SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 127.0.0.1:40123;branch=z9hG4bK-2671-1-0\r\n"
        b"From: <sip:a@partner.bench>;tag=1\r\nTo: <sip:bob@edge.bench>\r\n"
        b"Call-ID: 1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    line = request.headers.get("Via")
    assert line is not None
    params = (("received", "127.0.0.1"), ("ms-received-port", "40123"), ("ms-received-cid", "1"))
    appended = _appended_top_via_params(request, line, params)
    assert appended == ";received=127.0.0.1;ms-received-port=40123;ms-received-cid=1"
    keys, pairs = request.headers._keys, request.headers.pairs
    assert _copy_default(request, keys, pairs, "t", params) is not None


# --- Headers and serialize ---------------------------------------------------------------


def check_pair_by_the_regexes(name: str, value: str) -> tuple[str, str]:
    """_check_pair as it was first written: two regexes, then the reasons why not."""
    if (
        type(name) is str
        and type(value) is str
        and TOKEN_RE.fullmatch(name)
        and _PLAIN_VALUE_RE.fullmatch(value)
    ):
        return (name, value)
    return _check_pair_why(name, value)


header_values = st.text(
    st.sampled_from([*" \t\r\n\x00\x1f\x7f\x80\u00e9\ud800\U0001f600", *ALNUM, *"-;=<>\"'"]),
    max_size=8,
)


def pair_outcome(check: Callable[[str, str], tuple[str, str]], name: str, value: str) -> object:
    try:
        return check(name, value)
    except (ValueError, TypeError) as exc:
        return (type(exc), str(exc))


@MANY
@given(
    st.sampled_from(["Server", "Via", "X-A", "a b", "", "\u017f", "v", "Call-Id"]) | st.text(),
    header_values | st.sampled_from([None, b"x", 5]),
)
def test_check_pair_equals_the_regex_rule(name: str, value: str) -> None:
    expected = pair_outcome(check_pair_by_the_regexes, name, value)
    assert pair_outcome(_check_pair, name, value) == expected


@MANY
@given(st.lists(st.tuples(st.sampled_from(["Server", "X-A", "v", "t"]), header_values)))
def test_check_pairs_equals_headers(pairs: list[tuple[str, str]]) -> None:
    try:
        headers = Headers(pairs)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            check_pairs(pairs)
        return
    assert check_pairs(pairs) == (headers.pairs, headers._keys)


def serialize_line_by_line(message: Request | Response) -> bytes:
    """serialize as it was written first: one f-string per header line."""
    body = message.body
    text = "".join(
        [
            message.start_line,
            "\r\n",
            *[f"{name}: {value}\r\n" for name, value in message.headers.pairs],
            f"Content-Length: {len(body)}\r\n\r\n",
        ]
    )
    return text.encode("utf-8", "surrogateescape") + body


@MANY
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Via", "X-A", "v"]), header_values.map(lambda s: s.strip(" \t"))
        ).filter(lambda p: "\r" not in p[1] and "\n" not in p[1]),
        max_size=4,
    ),
    st.binary(max_size=8),
)
def test_serialize_equals_the_line_by_line_rendering(
    pairs: list[tuple[str, str]], body: bytes
) -> None:
    try:
        headers = Headers(pairs)
    except ValueError:
        return
    message = Response(status=200, reason="OK", headers=headers, body=body)
    assert serialize(message) == serialize_line_by_line(message)
    assert re.match(rb"SIP/2\.0 200 OK\r\n", serialize(message))
