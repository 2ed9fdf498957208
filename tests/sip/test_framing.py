"""StreamFramer and the message table (h11's SIMPLE_CASES / tr() pattern).

Every case in SIMPLE_CASES is checked in both directions (serialize gives the
wire bytes, parse gives the message) and through the framer three ways:
whole, one byte at a time, and followed by the start of another message.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.sip import (
    FramingError,
    Headers,
    KeepAlive,
    MessageTooLarge,
    Need,
    Request,
    Response,
    StreamFramer,
    parse_message,
    serialize,
)

VIA = "SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK42ee6fd7;rport"

SIMPLE_CASES: list[tuple[Request | Response, bytes]] = [
    (
        Request(
            method="OPTIONS",
            uri="sip:sip.skype.lab",
            headers=Headers(
                [
                    ("Via", VIA),
                    ("From", "<sip:ping@steven.lab>;tag=1"),
                    ("To", "<sip:sip.skype.lab>"),
                    ("Call-ID", "opt-1"),
                    ("CSeq", "1 OPTIONS"),
                    ("Max-Forwards", "70"),
                ]
            ),
        ),
        b"OPTIONS sip:sip.skype.lab SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK42ee6fd7;rport\r\n"
        b"From: <sip:ping@steven.lab>;tag=1\r\n"
        b"To: <sip:sip.skype.lab>\r\n"
        b"Call-ID: opt-1\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
    ),
    (
        # Compact names kept as sent; a body with CRLFs and a NUL in it.
        Request(
            method="INVITE",
            uri="sip:stejanss@skype.lab",
            headers=Headers(
                [
                    ("v", VIA),
                    ("f", '"DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884'),
                    ("t", "<sip:stejanss@skype.lab>"),
                    ("i", "f1b3ad5d-183b-4632-b210-c2f9bec71960"),
                    ("CSeq", "2066245576 INVITE"),
                    ("c", "application/sdp"),
                ]
            ),
            body=b"v=0\r\n\r\n\x00s=-\r\n",
        ),
        b"INVITE sip:stejanss@skype.lab SIP/2.0\r\n"
        b"v: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK42ee6fd7;rport\r\n"
        b'f: "DX70 Steven" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n'
        b"t: <sip:stejanss@skype.lab>\r\n"
        b"i: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n"
        b"CSeq: 2066245576 INVITE\r\n"
        b"c: application/sdp\r\n"
        b"Content-Length: 13\r\n"
        b"\r\n"
        b"v=0\r\n\r\n\x00s=-\r\n",
    ),
    (
        Response(
            status=504,
            reason="Server time-out",
            headers=Headers(
                [
                    ("Via", VIA + ";received=10.48.36.47;ms-received-port=25002"),
                    ("Call-ID", "c"),
                    ("CSeq", "7 INVITE"),
                    ("From", "<sip:2000@acano.steven.lab>;tag=a"),
                    ("To", "<sip:stejanss@skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882"),
                    ("Server", "RTC/6.0"),
                ]
            ),
        ),
        b"SIP/2.0 504 Server time-out\r\n"
        b"Via: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK42ee6fd7;rport;received=10.48.36.47"
        b";ms-received-port=25002\r\n"
        b"Call-ID: c\r\n"
        b"CSeq: 7 INVITE\r\n"
        b"From: <sip:2000@acano.steven.lab>;tag=a\r\n"
        b"To: <sip:stejanss@skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882\r\n"
        b"Server: RTC/6.0\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
    ),
    (
        # An empty reason phrase keeps its SP (RFC 4475 noreason), UTF-8 in a header.
        Response(
            status=180,
            reason="",
            headers=Headers(
                [
                    ("Via", VIA),
                    ("From", "<sip:a@b>;tag=1"),
                    ("To", '"Stéphane" <sip:c@d>;tag=2'),
                    ("Call-ID", "r"),
                    ("CSeq", "1 INVITE"),
                ]
            ),
            body=b"hello",
        ),
        b"SIP/2.0 180 \r\n"
        b"Via: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK42ee6fd7;rport\r\n"
        b"From: <sip:a@b>;tag=1\r\n"
        b'To: "St\xc3\xa9phane" <sip:c@d>;tag=2\r\n'
        b"Call-ID: r\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Length: 5\r\n"
        b"\r\n"
        b"hello",
    ),
]

NEXT_START = b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/TLS h"


@pytest.mark.parametrize(("message", "wire"), SIMPLE_CASES)
def test_serialize_simple(message: Request | Response, wire: bytes) -> None:
    assert serialize(message) == wire


@pytest.mark.parametrize(("message", "wire"), SIMPLE_CASES)
def test_parse_simple(message: Request | Response, wire: bytes) -> None:
    assert parse_message(wire) == message


@pytest.mark.parametrize(("message", "wire"), SIMPLE_CASES)
def test_framer_simple_whole_bytewise_and_with_trailing_data(
    message: Request | Response, wire: bytes
) -> None:
    # Whole.
    framer = StreamFramer()
    framer.receive_data(wire)
    assert framer.next_message() == wire
    assert framer.next_message() is Need.DATA
    # One byte at a time: nothing before the last byte, then exactly the message.
    framer = StreamFramer()
    for i in range(len(wire)):
        assert framer.next_message() is Need.DATA
        framer.receive_data(wire[i : i + 1])
    out = framer.next_message()
    assert out == wire
    assert isinstance(out, bytes)
    assert parse_message(out) == message
    # With the start of the next message behind it.
    framer = StreamFramer()
    framer.receive_data(wire + NEXT_START)
    assert framer.next_message() == wire
    assert framer.next_message() is Need.DATA
    assert framer.buffered == len(NEXT_START)
    assert framer.in_message


# --- keep-alives (RFC 5626 §3.5.1) and CRLFs between messages (RFC 3261 §7.5) -----------

MSG = SIMPLE_CASES[0][1]

KEEPALIVE_CASES: list[tuple[bytes, list[bytes | Need | KeepAlive]]] = [
    (b"\r\n\r\n", [KeepAlive.PING, Need.DATA]),
    (b"\r\n", [Need.DATA]),
    (b"\r\n\r", [Need.DATA]),
    (b"\r", [Need.DATA]),
    (b"\r\n\r\n\r\n\r\n", [KeepAlive.PING, KeepAlive.PING, Need.DATA]),
    (b"\r\n" + MSG, [MSG, Need.DATA]),
    (MSG + b"\r\n\r\n" + MSG, [MSG, KeepAlive.PING, MSG, Need.DATA]),
    (MSG + b"\r\n" + MSG, [MSG, MSG, Need.DATA]),
    (b"\r\n\r\n\r\n" + MSG, [KeepAlive.PING, MSG, Need.DATA]),
    (MSG + b"\r\n", [MSG, Need.DATA]),
]


def drain(framer: StreamFramer) -> list[bytes | Need | KeepAlive]:
    out: list[bytes | Need | KeepAlive] = []
    while True:
        item = framer.next_message()
        out.append(item)
        if item is Need.DATA:
            return out


@pytest.mark.parametrize(("wire", "expected"), KEEPALIVE_CASES)
def test_keepalive_and_crlf_between_messages(
    wire: bytes, expected: list[bytes | Need | KeepAlive]
) -> None:
    framer = StreamFramer()
    framer.receive_data(wire)
    assert drain(framer) == expected


def test_ping_byte_at_a_time() -> None:
    framer = StreamFramer()
    for byte in b"\r\n\r":
        framer.receive_data(bytes([byte]))
        assert framer.next_message() is Need.DATA
    assert not framer.in_message
    framer.receive_data(b"\n")
    assert framer.next_message() is KeepAlive.PING
    assert framer.buffered == 0


def test_lone_crlf_then_message_is_not_a_ping() -> None:
    framer = StreamFramer()
    framer.receive_data(b"\r\n")
    assert framer.next_message() is Need.DATA
    framer.receive_data(MSG)
    assert drain(framer) == [MSG, Need.DATA]


# --- Content-Length rules --------------------------------------------------------------

HEAD = (
    b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\n"
    b"From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n"
)


@pytest.mark.parametrize(
    ("length_lines", "body", "framed_len"),
    [
        (b"l: 5\r\n", b"hello", 5),
        (b"Content-Length: 005\r\n", b"hello", 5),
        (b"content-length   :\r\n   5\r\n", b"hello", 5),  # folded, odd spacing
        (b"Content-Length: 5\r\nl: 5\r\n", b"hello", 5),  # duplicates agree: framing is safe
    ],
)
def test_content_length_spellings(length_lines: bytes, body: bytes, framed_len: int) -> None:
    wire = HEAD + length_lines + b"\r\n" + body
    framer = StreamFramer()
    framer.receive_data(wire + b"junk")
    out = framer.next_message()
    assert out == wire
    assert isinstance(out, bytes)
    assert out.endswith(body[:framed_len])


def test_duplicate_equal_content_length_frames_but_does_not_parse() -> None:
    # RFC 4475 §3.3.8 rule (one value only) is the parser's job, not a framing loss.
    from simulator.sip import SipParseError

    wire = HEAD + b"Content-Length: 5\r\nl: 5\r\n\r\nhello"
    with pytest.raises(SipParseError, match="more than one Content-Length"):
        parse_message(wire)


@pytest.mark.parametrize(
    ("length_lines", "why"),
    [
        (b"", "no Content-Length on a stream"),  # RFC 3261 §18.3
        (b"Content-Length: -5\r\n", "not a number"),  # RFC 4475 ncl
        (b"Content-Length: five\r\n", "not a number"),
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", "conflicting"),  # RFC 4475 mcl01
        (b"Content-Length: \r\n", "not a number"),
    ],
)
def test_framing_errors_kill_the_framer(length_lines: bytes, why: str) -> None:
    framer = StreamFramer()
    framer.receive_data(HEAD + length_lines + b"\r\nhello")
    with pytest.raises(FramingError, match=why) as info:
        framer.next_message()
    assert info.value.status_hint == 400
    assert not isinstance(info.value, MessageTooLarge)
    # Dead: the same error again, whatever happens next.
    with pytest.raises(FramingError) as again:
        framer.next_message()
    assert again.value is info.value
    with pytest.raises(FramingError):
        framer.receive_data(MSG)


# --- size limits -----------------------------------------------------------------------


def test_header_block_over_limit_is_refused_before_the_blank_line() -> None:
    framer = StreamFramer(max_header_bytes=1024)
    framer.receive_data(b"INVITE sip:a@b SIP/2.0\r\n")
    filler = b"X-Filler: " + b"a" * 90 + b"\r\n"  # 102 bytes a line, never a blank line
    while framer.buffered + len(filler) <= 1024:
        framer.receive_data(filler)
        assert framer.next_message() is Need.DATA
    framer.receive_data(filler)
    with pytest.raises(MessageTooLarge) as info:
        framer.next_message()
    assert info.value.status_hint == 513
    assert framer.buffered == 0  # the buffer is let go


def test_header_block_over_limit_with_blank_line() -> None:
    wire = HEAD + b"X-Filler: " + b"a" * 2000 + b"\r\nl: 0\r\n\r\n"
    framer = StreamFramer(max_header_bytes=len(wire) - 1)
    framer.receive_data(wire)
    with pytest.raises(MessageTooLarge) as info:
        framer.next_message()
    assert info.value.status_hint == 513
    # Exactly at the limit is fine.
    framer = StreamFramer(max_header_bytes=len(wire))
    framer.receive_data(wire)
    assert framer.next_message() == wire


def test_body_over_limit_is_refused_before_it_arrives() -> None:
    framer = StreamFramer(max_body_bytes=100)
    framer.receive_data(HEAD + b"Content-Length: 101\r\n\r\n")
    with pytest.raises(MessageTooLarge) as info:
        framer.next_message()
    assert info.value.status_hint == 413
    framer = StreamFramer(max_body_bytes=100)
    wire = HEAD + b"Content-Length: 100\r\n\r\n" + b"b" * 100
    framer.receive_data(wire)
    assert framer.next_message() == wire


def test_absurd_content_length_is_too_large_not_a_crash() -> None:
    framer = StreamFramer()
    framer.receive_data(HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n")
    with pytest.raises(MessageTooLarge):
        framer.next_message()


def test_limits_must_be_sane() -> None:
    with pytest.raises(ValueError, match="max_header_bytes"):
        StreamFramer(max_header_bytes=0)


class CountingBuffer(bytearray):
    """A bytearray that counts how many bytes find() was asked to look through."""

    scanned = 0

    def find(self, sub: object, start: object = None, *args: object) -> int:  # type: ignore[override]
        begin = 0 if start is None else int(start)  # type: ignore[call-overload]
        CountingBuffer.scanned += max(0, len(self) - begin)
        return super().find(sub, begin, *args)  # type: ignore[arg-type]


def test_slow_dribble_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    # A byte at a time through a 20 kB header block: the search must resume where
    # it stopped (3 bytes back), not rescan the buffer each time (O(n^2)).
    wire = HEAD + b"X-Filler: " + b"a" * 20000 + b"\r\nl: 0\r\n\r\n"
    framer = StreamFramer()
    monkeypatch.setattr(framer, "_buffer", CountingBuffer())
    CountingBuffer.scanned = 0
    for i in range(len(wire)):
        assert framer.next_message() is Need.DATA
        framer.receive_data(wire[i : i + 1])
    assert framer.next_message() == wire
    assert CountingBuffer.scanned < 5 * len(wire)


# --- invariants ------------------------------------------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes | KeepAlive], bytes, list[int]]:
    """A stream of messages and pings, and the points to cut it at."""
    items: list[bytes | KeepAlive] = draw(
        st.lists(
            st.one_of(
                st.sampled_from([wire for _, wire in SIMPLE_CASES]),
                st.just(KeepAlive.PING),
            ),
            min_size=1,
            max_size=6,
        )
    )
    stream = b"".join(b"\r\n\r\n" if item is KeepAlive.PING else item for item in items)
    assert isinstance(stream, bytes)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    return items, stream, cuts


@given(streams())
def test_any_split_of_a_stream_gives_the_same_messages(
    case: tuple[list[bytes | KeepAlive], bytes, list[int]],
) -> None:
    items, stream, cuts = case
    framer = StreamFramer()
    got: list[bytes | KeepAlive] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        framer.receive_data(stream[start:end])
        while (item := framer.next_message()) is not Need.DATA:
            assert not isinstance(item, Need)
            got.append(item)
    assert got == items
    assert framer.buffered == 0
