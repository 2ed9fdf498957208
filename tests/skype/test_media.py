"""The Skype user's answer to SDP offers: one table per behaviour, real offers as data.

The offers in ``data/`` are real where they can be: baresip 1.0.0's three
``mediaenc`` modes (captured from this project's Debian package), SIPp's default
UAC offer, a Lync 2013 client's offer and a SfB 2015 IM offer (reference [FIX]).
``expressway-best-effort.sdp`` (a Cisco endpoint's best-effort SRTP shape) and
``webrtc-dtls.sdp`` are synthetic.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from simulator.skype.media import (
    DEFAULT_CODECS,
    ENCRYPTION_MISMATCH,
    UNSUPPORTED_SDP,
    MediaAnswer,
    MediaRefusal,
    MediaSettings,
    answer_offer,
    check_answer,
    make_offer,
    parse_crypto,
)
from simulator.skype.sdp import parse_sdp

DATA = Path(__file__).parent / "data"
USER = "sip:stejanss@skype.lab"


def offer(name: str) -> bytes:
    return (DATA / name).read_bytes()


def answer(
    body: bytes,
    encryption: str = "required",
    *,
    seed: int = 1,
    address: str = "127.0.0.1",
    **settings: object,
) -> MediaAnswer | MediaRefusal:
    return answer_offer(
        body,
        settings=MediaSettings(encryption=encryption, **settings),  # type: ignore[arg-type]
        address=address,
        port=20000,
        rng=random.Random(seed),
        user_uri=USER,
    )


def lines(result: MediaAnswer | MediaRefusal) -> list[str]:
    assert isinstance(result, MediaAnswer), result
    text = result.sdp.decode("ascii")
    assert text.endswith("\r\n")
    return text.split("\r\n")[:-1]


# (offer, policy) -> what the user does: the module docstring's table, on real offers.
POLICY_TABLE = [
    ("sipp-uac.sdp", "required", "52017"),
    ("sipp-uac.sdp", "supported", "RTP/AVP"),
    ("sipp-uac.sdp", "rejected", "RTP/AVP"),
    ("baresip-plain.sdp", "required", "52017"),
    ("baresip-plain.sdp", "supported", "RTP/AVP"),
    ("baresip-plain.sdp", "rejected", "RTP/AVP"),
    ("baresip-srtp.sdp", "required", "RTP/SAVP"),
    ("baresip-srtp.sdp", "supported", "RTP/SAVP"),
    ("baresip-srtp.sdp", "rejected", "RTP/AVP"),
    ("baresip-srtp-mand.sdp", "required", "RTP/SAVP"),
    ("baresip-srtp-mand.sdp", "supported", "RTP/SAVP"),
    ("baresip-srtp-mand.sdp", "rejected", "52017"),
    ("expressway-best-effort.sdp", "required", "RTP/SAVP"),
    ("expressway-best-effort.sdp", "rejected", "RTP/AVP"),
    ("lync2013-offer.sdp", "required", "RTP/SAVP"),
    ("lync2013-offer.sdp", "rejected", "52017"),
    ("webrtc-dtls.sdp", "required", "52063"),
    ("webrtc-dtls.sdp", "supported", "52063"),
    ("sfb2015-im-offer.sdp", "required", "message"),
    ("sfb2015-im-offer.sdp", "rejected", "message"),
]


@pytest.mark.parametrize(("name", "encryption", "expected"), POLICY_TABLE)
def test_policy_decides_answer_or_refusal(name: str, encryption: str, expected: str) -> None:
    """Each offer gets the answer profile, or the 52017/52063 refusal, the policy says."""
    result = answer(offer(name), encryption)
    if expected in ("52017", "52063"):
        assert isinstance(result, MediaRefusal), result
        header = ENCRYPTION_MISMATCH if expected == "52017" else UNSUPPORTED_SDP
        assert (result.status, result.reason, result.headers) == (
            488,
            "Not Acceptable Here",
            (header,),
        )
        assert result.fidelity == "verbatim"
    else:
        assert isinstance(result, MediaAnswer), result
        assert (result.profile or "message") == expected


def test_refusal_headers_are_the_verbatim_strings() -> None:
    """The two ms-client-diagnostics values are the reference's V rows, byte for byte."""
    assert ENCRYPTION_MISMATCH == (
        "ms-client-diagnostics",
        '52017;reason="Encryption levels dont match"',
    )
    assert UNSUPPORTED_SDP == (
        "ms-client-diagnostics",
        '52063;reason="Unsupported session description"',
    )


LEGACY_TABLE = [
    (
        "sipp-uac.sdp",
        "required",
        (488, "Encryption Levels not compatible"),
        (("Warning", '308 lcs.microsoft.com "Encryption Levels not compatible"'),),
        "verbatim",
    ),
    ("webrtc-dtls.sdp", "required", (488, "Not Acceptable Here"), (), "inferred"),
]


@pytest.mark.parametrize(("name", "encryption", "status", "headers", "fidelity"), LEGACY_TABLE)
def test_legacy_refusal_has_no_ms_client_diagnostics(
    name: str,
    encryption: str,
    status: tuple[int, str],
    headers: tuple[tuple[str, str], ...],
    fidelity: str,
) -> None:
    """refusal="legacy" swaps the header libre cannot decode for the older Warning form."""
    result = answer(offer(name), encryption, refusal="legacy")
    assert isinstance(result, MediaRefusal)
    assert ((result.status, result.reason), result.headers, result.fidelity) == (
        status,
        headers,
        fidelity,
    )


def test_srtp_answer_has_the_lync_shape() -> None:
    """The SRTP answer to baresip srtp-mand is the Lync answer's lines in its order."""
    got = lines(answer(offer("baresip-srtp-mand.sdp")))
    ufrag = next(x for x in got if x.startswith("a=ice-ufrag:"))
    pwd = next(x for x in got if x.startswith("a=ice-pwd:"))
    ssrc = next(x for x in got if x.startswith("a=x-ssrc-range:"))
    crypto = next(x for x in got if x.startswith("a=crypto:"))
    assert got == [
        "v=0",
        "o=- 0 1 IN IP4 127.0.0.1",
        "s=noname",
        "c=IN IP4 127.0.0.1",
        "b=CT:99980",
        "t=0 0",
        "m=audio 20000 RTP/SAVP 0 8 9 101",
        ssrc,
        "a=rtcp-fb:* x-message app send:dsh recv:dsh",
        "a=rtcp-rsize",
        "a=label:main-audio",
        "a=x-source:main-audio",
        ufrag,
        pwd,
        "a=candidate:1 1 UDP 2130706431 127.0.0.1 20000 typ host",
        "a=candidate:1 2 UDP 2130705918 127.0.0.1 20001 typ host",
        crypto,
        "a=maxptime:200",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
    ]
    assert len(ufrag) == len("a=ice-ufrag:") + 4
    assert len(pwd) == len("a=ice-pwd:") + 24
    start, _, end = ssrc.removeprefix("a=x-ssrc-range:").partition("-")
    assert start == end
    assert 1 <= int(start) <= 0xFFFFFF00


def test_crypto_answer_reuses_the_offer_tag_with_a_fresh_key() -> None:
    """RFC 4568 §7.1.2: the answer's tag is the accepted line's; the key is ours (30 bytes)."""
    crypto = next(x for x in lines(answer(offer("baresip-srtp.sdp"))) if x.startswith("a=crypto:"))
    parsed = parse_crypto(crypto.removeprefix("a=crypto:"))
    assert parsed is not None
    assert parsed.usable
    assert (parsed.tag, parsed.suite, parsed.lifetime, parsed.mki) == (
        "1",
        "AES_CM_128_HMAC_SHA1_80",
        "2^31",
        None,
    )
    offered = parse_sdp(offer("baresip-srtp.sdp")).media[0].first("crypto")
    assert offered is not None
    assert parsed.key not in offered
    assert len(base64.b64decode(parsed.key)) == 30


def test_crypto_answer_picks_the_usable_suite_among_several() -> None:
    """An Expressway-style offer leads with _32; the user answers the _80 line's tag."""
    crypto = next(
        x for x in lines(answer(offer("expressway-best-effort.sdp"))) if x.startswith("a=crypto:")
    )
    assert crypto.startswith("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")


def test_other_streams_keep_their_place_with_port_zero() -> None:
    """RFC 3264 §6: the video line of the Expressway offer is refused in place."""
    got = lines(answer(offer("expressway-best-effort.sdp")))
    m_lines = [x for x in got if x.startswith("m=")]
    assert m_lines == ["m=audio 20000 RTP/SAVP 9 0 8 101", "m=video 0 RTP/AVP 97 34"]


def test_plain_answer_has_no_crypto_and_rejected_says_so() -> None:
    """A plain answer carries no a=crypto; a 'rejected' user adds a=encryption:rejected."""
    supported = lines(answer(offer("sipp-uac.sdp"), "supported"))
    rejected = lines(answer(offer("baresip-srtp.sdp"), "rejected"))
    assert not any(x.startswith("a=crypto") for x in supported + rejected)
    assert "a=encryption:rejected" not in supported
    assert "a=encryption:rejected" in rejected
    assert "m=audio 20000 RTP/AVP 0" in supported


@pytest.mark.parametrize(
    ("codecs", "expected"),
    [
        (DEFAULT_CODECS, ("PCMU", "PCMA", "G722", "telephone-event")),
        (("PCMA",), ("PCMA",)),
        (("g722", "telephone-event"), ("G722", "telephone-event")),
        (("G722/16000",), None),
        (("SILK",), None),
        (("telephone-event", "CN"), None),
    ],
)
def test_codecs_are_the_offered_ones_the_user_takes(
    codecs: tuple[str, ...], expected: tuple[str, ...] | None
) -> None:
    """Offer order, case-insensitive names, NAME/RATE; DTMF or CN alone is no common codec."""
    result = answer(offer("baresip-srtp-mand.sdp"), codecs=codecs)
    if expected is None:
        assert isinstance(result, MediaRefusal)
        assert (result.status, result.headers, result.cause, result.fidelity) == (
            488,
            (),
            "codecs",
            "inferred",
        )
    else:
        assert isinstance(result, MediaAnswer)
        assert result.codecs == expected


DIRECTIONS = [("sendonly", "a=recvonly"), ("recvonly", "a=sendonly"), ("inactive", "a=inactive")]


@pytest.mark.parametrize(("offered", "answered"), DIRECTIONS)
def test_direction_mirrors_the_offer(offered: str, answered: str) -> None:
    """RFC 3264 §6.1: a hold offer gets the mirrored direction."""
    body = offer("sipp-uac.sdp") + f"a={offered}\r\n".encode()
    assert answered in lines(answer(body, "supported"))


UNUSABLE = [
    b"hello",
    b"v=1\r\n",
    b"v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
    b"v=0\r\nm=audio 5000\r\n",
    b"v=0\r\nthis is not sdp\r\n",
    b"v=0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
    b"v=0\r\nm=audio 0 RTP/AVP 0\r\n",
    b"v=0\r\nm=audio 5000 RTP/SAVP 0\r\n",
    b"v=0\r\nc=IN IP4\r\nm=audio 5000 RTP/AVP 0\r\n",
    b"\xff\xfe",
]


@pytest.mark.parametrize("body", UNUSABLE)
def test_sdp_it_cannot_use_gets_52063(body: bytes) -> None:
    """Not SDP, no usable stream, or SAVP without any key: 488 + 52063."""
    result = answer(body, "supported")
    assert isinstance(result, MediaRefusal), result
    assert result.headers == (UNSUPPORTED_SDP,)


def test_savp_with_only_foreign_suites_is_an_encryption_mismatch() -> None:
    """SAVP whose crypto lines are all of other suites: 52017 (reference 2.14, inferred)."""
    key = base64.b64encode(bytes(30)).decode()
    body = f"v=0\r\nm=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{key}\r\n"
    result = answer(body.encode(), "supported")
    assert isinstance(result, MediaRefusal)
    assert result.headers == (ENCRYPTION_MISMATCH,)


def test_ms_sdp_encryption_required_without_key_is_a_mismatch() -> None:
    """An old-style a=encryption:required offer (k= key, no a=crypto) cannot be met: 52017."""
    body = b"v=0\r\nm=audio 5000 RTP/AVP 0\r\nk=base64:abcd\r\na=encryption:required\r\n"
    result = answer(body, "supported")
    assert isinstance(result, MediaRefusal)
    assert result.headers == (ENCRYPTION_MISMATCH,)


def test_im_session_answer_is_the_sfb_form() -> None:
    """m=message 5060 sip null is answered m=message 5060 sip <own URI> + accept-types."""
    assert lines(answer(offer("sfb2015-im-offer.sdp"), address="192.0.2.7")) == [
        "v=0",
        "o=- 0 0 IN IP4 192.0.2.7",
        "s=session",
        "c=IN IP4 192.0.2.7",
        "t=0 0",
        f"m=message 5060 sip {USER}",
        "a=accept-types:text/plain multipart/alternative image/gif text/rtf text/html "
        "application/x-ms-ink application/ms-imdn+xml text/x-msmsgsinvite",
    ]


def test_ipv6_answer_uses_ip6_and_ms_ipv6_candidates() -> None:
    """An IPv6 Edge address gives IN IP6 lines and a=x-candidate-ipv6 (reference 2.18)."""
    got = lines(answer(offer("baresip-srtp-mand.sdp"), address="::1"))
    assert "c=IN IP6 ::1" in got
    assert "a=x-candidate-ipv6:1 1 UDP 33553407 ::1 20000 typ host" in got
    assert not any(x.startswith("a=candidate:") for x in got)


def test_ice_can_be_turned_off() -> None:
    """ice=False leaves out the credentials and candidates, nothing else."""
    with_ice = lines(answer(offer("baresip-srtp.sdp")))
    without = lines(answer(offer("baresip-srtp.sdp"), ice=False))
    dropped = [x for x in with_ice if x not in without]
    assert all(x.startswith(("a=ice-", "a=candidate:", "a=crypto:", "a=x-ssrc")) for x in dropped)
    assert not any(x.startswith(("a=ice-", "a=candidate:")) for x in without)


def test_same_seed_same_bytes_different_seed_different_keys() -> None:
    """Every random choice comes from the rng: seeded runs are reproducible."""
    first = answer(offer("baresip-srtp.sdp"), seed=7)
    again = answer(offer("baresip-srtp.sdp"), seed=7)
    other = answer(offer("baresip-srtp.sdp"), seed=8)
    assert isinstance(first, MediaAnswer)
    assert isinstance(again, MediaAnswer)
    assert isinstance(other, MediaAnswer)
    assert first.sdp == again.sdp != other.sdp


@pytest.mark.parametrize(
    ("encryption", "profile", "crypto"),
    [
        ("required", "RTP/SAVP", "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
        ("supported", "RTP/AVP", "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"),
        ("rejected", "RTP/AVP", None),
    ],
)
def test_delayed_offer_gets_the_users_offer(
    encryption: str, profile: str, crypto: str | None
) -> None:
    """An INVITE without SDP gets an offer in the 200: SAVP, optional SRTP, or plain."""
    result = answer(b"", encryption)
    assert isinstance(result, MediaAnswer)
    assert result.is_offer
    got = lines(result)
    m_line = next(x for x in got if x.startswith("m=audio"))
    assert m_line.split()[2] == profile == result.profile
    found = [x for x in got if x.startswith("a=crypto:")]
    if crypto is None:
        assert not found
    else:
        assert len(found) == 1
        assert found[0].startswith(crypto)
        assert found[0].endswith("|2^31|1:1")


@pytest.mark.parametrize("encryption", ["required", "supported", "rejected"])
def test_users_offer_is_answerable_by_a_user_of_the_same_policy(encryption: str) -> None:
    """make_offer and answer_offer agree: two fedsim users of one policy can talk."""
    settings = MediaSettings(encryption=encryption)  # type: ignore[arg-type]
    body = make_offer(settings=settings, address="127.0.0.1", port=30000, rng=random.Random(2))
    result = answer(body, encryption)
    assert isinstance(result, MediaAnswer)
    verdict = check_answer(result.sdp, settings=settings)
    assert verdict.ok, verdict.detail
    assert verdict.secure == (encryption != "rejected")


CHECKS = [
    ("required", "RTP/AVP", False, False),
    ("required", "RTP/SAVP", True, True),
    ("supported", "RTP/AVP", False, True),
    ("rejected", "RTP/SAVP", True, False),
]


@pytest.mark.parametrize(("encryption", "profile", "secure", "ok"), CHECKS)
def test_check_answer_applies_the_policy(
    encryption: str, profile: str, secure: bool, ok: bool
) -> None:
    """A required user cannot take a plain answer; a rejecting one cannot take SRTP."""
    key = base64.b64encode(bytes(30)).decode()
    body = f"v=0\r\nm=audio 4000 {profile} 0\r\na=rtpmap:0 PCMU/8000\r\n"
    if secure:
        body += f"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31\r\n"
    verdict = check_answer(body.encode(), settings=MediaSettings(encryption=encryption))  # type: ignore[arg-type]
    assert (verdict.ok, verdict.secure) == (ok, secure)


def test_check_answer_rejects_refused_or_unreadable_audio() -> None:
    """Port 0, no audio at all, or not SDP: the call cannot go on."""
    settings = MediaSettings(encryption="supported")
    for body in (b"v=0\r\nm=audio 0 RTP/AVP 0\r\n", b"v=0\r\n", b"nonsense"):
        assert not check_answer(body, settings=settings).ok


def test_settings_refuse_bad_values() -> None:
    """A lab typo is a ValueError naming the allowed values, not a silent default."""
    with pytest.raises(ValueError, match="required, supported, rejected"):
        MediaSettings(encryption="mandatory")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="codecs"):
        MediaSettings(codecs=())
    with pytest.raises(ValueError, match="diagnostics, legacy"):
        MediaSettings(refusal="loud")  # type: ignore[arg-type]


CRYPTOS = [
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40, ("1", None, None, True)),
    ("2 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + "|2^31|1:1", ("2", "2^31", "1:1", True)),
    ("3 aes_cm_128_hmac_sha1_80 inline:" + "A" * 40 + "|2^31", ("3", "2^31", None, True)),
    ("1 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40, ("1", None, None, False)),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 39, ("1", None, None, False)),
    ("x AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40, ("x", None, None, False)),
    ("1 AES_CM_128_HMAC_SHA1_80 uri:" + "A" * 40, ("1", None, None, False)),
]


@pytest.mark.parametrize(("value", "expected"), CRYPTOS)
def test_parse_crypto(value: str, expected: tuple[str, str | None, str | None, bool]) -> None:
    """RFC 4568 lines apart: tag, lifetime, MKI, and whether Skype can use the key."""
    parsed = parse_crypto(value)
    assert parsed is not None
    assert (parsed.tag, parsed.lifetime, parsed.mki, parsed.usable) == expected


@pytest.mark.parametrize("value", ["", "1", "1 AES_CM_128_HMAC_SHA1_80", "1 S inline", "1 S :k"])
def test_parse_crypto_rejects_non_grammar(value: str) -> None:
    """Too few fields, or a key-param without method or info: None, not an exception."""
    assert parse_crypto(value) is None
