"""Hypothesis invariants for the SIP core.

* parse(serialize(m)) == m for generated requests and responses, and the
  parsed URIs, name-addrs and Vias equal the ones the message was built from;
* h11's fuzz rule: whatever bytes a peer sends (random, or a valid INVITE with
  random damage), parsing either succeeds or raises SipParseError, and the
  framer raises nothing but FramingError. Anything else is a bug.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import (
    FramingError,
    Headers,
    KeepAlive,
    NameAddr,
    Need,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    Via,
    parse_message,
    serialize,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GEN = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOKEN_CHARS = ALNUM + "-.!%*_+`'~"
UNRESERVED = ALNUM + "-_.!~*'()"
PARAMCHARS = UNRESERVED + "[]/:&+$"
ESCAPES = ["%41", "%00", "%3a", "%40"]


def runs(alphabet: str, *, min_size: int = 1, max_size: int = 10) -> st.SearchStrategy[str]:
    """Strings over ``alphabet`` plus %-escapes (cheap to generate, unlike from_regex)."""
    return st.lists(
        st.sampled_from([*alphabet, *ESCAPES]), min_size=min_size, max_size=max_size
    ).map("".join)


tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
toplabels = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
hosts = st.one_of(
    st.sampled_from(["skype.lab", "sip.skype.lab", "10.48.36.47", "[2001:db8::1]", "[::1]"]),
    st.builds(lambda a, b: f"{a}.{b}", labels, toplabels),
    st.builds(lambda *o: ".".join(map(str, o)), *[st.integers(0, 255)] * 4),
)
ports = st.none() | st.integers(0, 65535)
#: Header text: one line, no edge whitespace, nothing that cannot be encoded.
line_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
).map(lambda s: s.strip(" \t"))
QUOTE_ME = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
quoted = line_text.map(lambda s: '"' + QUOTE_ME.sub(lambda m: "\\" + m.group(), s) + '"')
words = st.text(ALNUM + "-.!%*_+`'~()<>:\\\"/[]?{}", min_size=1, max_size=20)
call_ids = st.builds(lambda a, b: a if b is None else f"{a}@{b}", words, st.none() | words)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    user = draw(st.none() | runs(UNRESERVED + "&=+$,;?/"))
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=draw(st.none() | runs(UNRESERVED + "&=+$,", min_size=0))
        if user is not None
        else None,
        host=draw(hosts),
        port=draw(ports),
        params=tuple(
            draw(st.lists(st.tuples(runs(PARAMCHARS), st.none() | runs(PARAMCHARS)), max_size=3))
        ),
    )


gen_values = st.one_of(tokens, st.just("[2001:db8::9]"), quoted)
params = st.lists(st.tuples(tokens, st.none() | gen_values), max_size=3).map(tuple)


@st.composite
def name_addrs(draw: st.DrawFn, tag: bool) -> NameAddr:
    extra = draw(params)
    if tag:
        extra = (("tag", draw(tokens)), *extra)
    return NameAddr(
        display=draw(st.none() | line_text),
        uri=draw(sip_uris()),
        params=extra,
    )


#: Via params with a value grammar of their own (RFC 3261 §20.42, RFC 3581): Via()
#: accepts e.g. a bare ";received", which the parser rightly refuses, so the
#: generic params below never take these names.
VIA_RULED = frozenset({"branch", "received", "rport"})
via_params = st.lists(
    st.tuples(tokens.filter(lambda t: t.lower() not in VIA_RULED), st.none() | gen_values),
    max_size=3,
).map(tuple)


@st.composite
def vias(draw: st.DrawFn) -> Via:
    return Via(
        transport=draw(st.sampled_from(["TLS", "TCP", "UDP"]) | tokens),
        host=draw(hosts),
        port=draw(ports),
        params=(("branch", "z9hG4bK" + draw(tokens)), *draw(via_params)),
    )


@st.composite
def messages(draw: st.DrawFn) -> tuple[Request | Response, NameAddr, NameAddr, list[Via]]:
    via_list = draw(st.lists(vias(), min_size=1, max_size=3))
    from_ = draw(name_addrs(tag=True))
    to = draw(name_addrs(tag=draw(st.booleans())))
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "MESSAGE"]) | tokens)
    lines = [("Via", str(v)) for v in via_list]
    lines += [
        ("From", str(from_)),
        ("To", str(to)),
        ("Call-ID", draw(call_ids)),
        ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
    ]
    if draw(st.booleans()):
        lines.append(("Max-Forwards", str(draw(st.integers(0, 255)))))
    lines += draw(st.lists(st.tuples(tokens.map(lambda t: "X-" + t), line_text), max_size=4))
    # Any order, except that the Vias keep theirs (RFC 3261 §7.3.1): one block, anywhere.
    others = draw(st.permutations(lines[len(via_list) :]))
    at = draw(st.integers(0, len(others)))
    lines = [*others[:at], *lines[: len(via_list)], *others[at:]]
    body = draw(st.binary(max_size=64))
    message: Request | Response
    if draw(st.booleans()):
        message = Request(
            method=method, uri=str(draw(sip_uris())), headers=Headers(lines), body=body
        )
    else:
        message = Response(
            status=draw(st.integers(100, 699)),
            reason=draw(line_text),
            headers=Headers(lines),
            body=body,
        )
    return message, from_, to, via_list


@GEN
@given(messages())
def test_parse_serialize_round_trip(
    case: tuple[Request | Response, NameAddr, NameAddr, list[Via]],
) -> None:
    message, from_, to, via_list = case
    parsed = parse_message(serialize(message))
    assert parsed == message
    assert parsed.from_ == from_
    assert parsed.to == to
    assert parsed.vias == via_list
    assert serialize(parsed) == serialize(message)


# --- the fuzz rule ---------------------------------------------------------------------


def parse_or_refuse(data: bytes) -> None:
    """Parse, or refuse with SipParseError; a parsed message must round-trip."""
    try:
        message = parse_message(data)
    except SipParseError as exc:
        status = exc.status_hint
    else:
        assert parse_message(serialize(message)) == message
        return
    assert 400 <= status <= 599


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    parse_or_refuse(data)
    parse_or_refuse(b"INVITE sip:a@b SIP/2.0\r\n" + data)


SEED = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 10.48.36.47:5061;egress-zone=DNSZone1;branch=z9hG4bK42ee6f;rport\r\n"
    b"Via: SIP/2.0/TLS 10.48.54.160:52768;branch=z9hG4bK6594;received=10.48.54.160\r\n"
    b"Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n"
    b"CSeq: 2066245576 INVITE\r\n"
    b'From: "DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n'
    b"To: <sip:stejanss@skype.lab>\r\n"
    b"Max-Forwards: 15\r\n"
    b'Contact: <sip:2000@acano.steven.lab;gr=urn:uuid:7b3d>;+sip.instance="<urn:uuid:7b>"\r\n'
    b"Date: Thu, 02 Mar 2017 07:10:46 GMT\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 12\r\n"
    b"\r\n"
    b"v=0\r\ns=-\r\nt=0"
)

#: Bytes that matter to the grammar, for insertions.
INTERESTING = b' \t\r\n:;,=<>"\\@?%[]/0\x00\x80\xff'


def _byte(value: int) -> bytes:
    return bytes([value])


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["replace", "delete", "insert", "duplicate"]))
        if op == "replace" and pos < len(data):
            data[pos] = draw(st.sampled_from(INTERESTING) | st.integers(0, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=8) | st.sampled_from(INTERESTING).map(_byte))
        else:
            start = data.rfind(b"\r\n", 0, pos) + 2
            end = data.find(b"\r\n", pos)
            if end > start:
                data[end:end] = b"\r\n" + data[start:end]
    return bytes(data)


@FUZZ
@given(mutations())
def test_damaged_invite_only_raises_sip_parse_error(data: bytes) -> None:
    parse_or_refuse(data)


@FUZZ
@given(st.lists(st.binary(max_size=80) | st.sampled_from([SEED, b"\r\n", b"\r\n\r\n"]), max_size=8))
def test_framer_only_raises_framing_error(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_header_bytes=512, max_body_bytes=64)
    try:
        for chunk in chunks:
            framer.receive_data(chunk)
            while (item := framer.next_message()) is not Need.DATA:
                if isinstance(item, bytes):
                    parse_or_refuse(item)
                else:
                    assert item is KeepAlive.PING
    except FramingError as exc:
        status = exc.status_hint
    else:
        return
    assert status in (400, 413, 513)
