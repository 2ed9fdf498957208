"""SDP offers and answers of the simulated Expressway-E (RFC 3264)."""

from __future__ import annotations

import pytest

from simulator.peer import sdp


def test_offer_lists_g711_and_telephone_events() -> None:
    body = sdp.build_offer(address="127.0.0.1", port=2326, session_id=7).decode()
    assert "m=audio 2326 RTP/AVP 0 8 101\r\n" in body
    assert "c=IN IP4 127.0.0.1\r\n" in body
    assert "a=rtpmap:0 PCMU/8000\r\n" in body
    assert "a=rtpmap:8 PCMA/8000\r\n" in body
    assert body.startswith("v=0\r\n")


def test_offer_on_ipv6_says_ip6() -> None:
    body = sdp.build_offer(address="::1", port=2326, session_id=7).decode()
    assert "c=IN IP6 ::1\r\n" in body


@pytest.mark.parametrize("port", [0, 2327, 65536])
def test_offer_refuses_odd_or_out_of_range_ports(port: int) -> None:
    with pytest.raises(ValueError, match="RTP port"):
        sdp.build_offer(address="127.0.0.1", port=port, session_id=1)


@pytest.mark.parametrize(
    ("formats", "chosen"),
    [("0 8 101", "0"), ("8 0", "8"), ("18 8", "8"), ("9 0", "0")],
)
def test_answer_picks_the_first_shared_codec_in_offer_order(formats: str, chosen: str) -> None:
    offer = f"v=0\r\nm=audio 4000 RTP/AVP {formats}\r\n".encode()
    answer = sdp.build_answer(offer, address="127.0.0.1", port=24000, session_id=3)
    assert answer is not None
    assert f"m=audio 24000 RTP/AVP {chosen}\r\n" in answer.decode()


def test_answer_keeps_a_refused_video_line_in_place_with_port_zero() -> None:
    offer = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 97\r\n"
    answer = sdp.build_answer(offer, address="127.0.0.1", port=24000, session_id=3)
    assert answer is not None
    lines = [line for line in answer.decode().split("\r\n") if line.startswith("m=")]
    assert lines == ["m=audio 24000 RTP/AVP 0", "m=video 0 RTP/AVP 97"]


@pytest.mark.parametrize(
    "offer",
    [b"", b"v=0\r\nm=audio 4000 RTP/AVP 18\r\n", b"v=0\r\nm=audio 0 RTP/AVP 0\r\n", b"m=audio x"],
)
def test_answer_is_none_without_a_usable_audio_line(offer: bytes) -> None:
    assert sdp.build_answer(offer, address="127.0.0.1", port=24000, session_id=3) is None
