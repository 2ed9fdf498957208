"""The RFC 4566 reader: what it keeps, what it tolerates, what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.skype.sdp import MAX_SDP_BYTES, SdpError, parse_sdp

DATA = Path(__file__).parent / "data"


def test_reads_session_and_media_levels() -> None:
    """Session c=/a= stay on the session; a=, c= after an m= belong to that block."""
    parsed = parse_sdp(
        b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
        b"a=ice-ufrag:abcd\r\nt=0 0\r\n"
        b"m=audio 5004/2 RTP/AVP 0 101\r\nc=IN IP4 192.0.2.9/127\r\na=rtpmap:0 PCMU/8000\r\n"
        b"a=sendrecv\r\nm=message 5060 sip null\r\na=accept-types:text/plain\r\n"
    )
    assert parsed.origin == "- 1 2 IN IP4 192.0.2.1"
    assert parsed.connection == "192.0.2.1"
    assert parsed.values("ice-ufrag") == ("abcd",)
    audio, message = parsed.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == (
        "audio",
        5004,
        "RTP/AVP",
        ("0", "101"),
    )
    assert audio.connection == "192.0.2.9"
    assert audio.first("rtpmap") == "0 PCMU/8000"
    assert audio.has("sendrecv")
    assert audio.first("sendrecv") == ""
    assert audio.first("crypto") is None
    assert (message.media, message.proto, message.formats) == ("message", "sip", ("null",))


TOLERATED = [
    (b"v=0\nm=audio 5000 RTP/AVP 0\n", 1),  # LF only
    (b"v=0\r\n\r\nm=audio 0 RTP/AVP\r\n\r\n", 1),  # blank lines, Lync 2007 fallback
    (b"v=0\r\nx=unknown type\r\nm=audio 5000 RTP/AVP 0\r\n", 1),
    (b"v=0\r\n", 0),
]


@pytest.mark.parametrize(("body", "streams"), TOLERATED)
def test_tolerates_what_real_endpoints_send(body: bytes, streams: int) -> None:
    """LF line ends, blank lines, unknown line types, an m= line without formats."""
    assert len(parse_sdp(body).media) == streams


REFUSED = [
    b"",
    b"v=1\r\n",
    b"o=- 0 0 IN IP4 1.2.3.4\r\nv=0\r\n",
    b"v=0\r\nm=audio\r\n",
    b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN IP4\r\n",
    b"v=0\r\nc=NET IP4 1.2.3.4\r\n",
    b"v=0\r\na=:value\r\n",
    b"v=0\r\nnot a line\r\n",
    b"v=0\r\n\xff\r\n",
    b"v=0\r\n" + b"a=x\r\n" * (MAX_SDP_BYTES // 5),
]


@pytest.mark.parametrize("body", REFUSED)
def test_refuses_what_is_not_sdp(body: bytes) -> None:
    """No v=0 first, a bad m=/c=/a= line, not UTF-8, too large: SdpError."""
    with pytest.raises(SdpError):
        parse_sdp(body)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.sdp")), ids=lambda p: p.name)
def test_every_sample_offer_parses(path: Path) -> None:
    """The real and synthetic offers the media tests use are all readable."""
    assert parse_sdp(path.read_bytes()).media
