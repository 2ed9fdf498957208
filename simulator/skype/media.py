"""The Skype user's media decision: an SDP offer in, an answer or a refusal out.

Theory (sources and tags in docs/reference/skype-user.md §2). A Skype for
Business client negotiates SRTP with SDES keys (RFC 4568), one crypto-suite
only, ``AES_CM_128_HMAC_SHA1_80``. Microsoft's [MS-SDPEXT] bends RFC 4568 so
SRTP can be optional: an ``RTP/AVP`` offer *with* ``a=crypto`` asks for SRTP if
the answerer can, and an answerer that encrypts answers ``RTP/SAVP``; an
``RTP/SAVP`` offer requires SRTP. The client's policy (``[edge]
media_encryption``, Microsoft's ``EncryptionLevel``) decides:

=================  ==============  ==============  ==============
offer              ``required``    ``supported``   ``rejected``
=================  ==============  ==============  ==============
RTP/SAVP + crypto  SRTP answer     SRTP answer     488 52017
RTP/AVP + crypto   SRTP answer     SRTP answer     plain answer
RTP/AVP            488 52017       plain answer    plain answer
=================  ==============  ==============  ==============

An SDP it cannot use gets 488 with 52063, no common codec a bare 488. The
answer copies the shape of a real Lync client's answer (§2.2): session lines,
Microsoft's per-stream attributes, ICE credentials and host candidates for the
given address, one ``a=crypto`` line with a fresh key, the accepted codecs. An
IM session offer (``m=message ... sip null``) is answered as a Skype client
answers it (:mod:`simulator.skype.im`).

Every random choice (key, SSRC, ICE credentials) comes from the ``rng`` passed
in, so a seeded lab gives the same bytes every run. Nothing here raises for a
peer's input: :func:`answer_offer` returns a :class:`MediaRefusal` instead.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from simulator.diagnostics.catalogue import MS_DIAGNOSTICS, Fidelity
from simulator.skype.im import message_media_answer
from simulator.skype.sdp import MediaDescription, SdpError, SessionDescription, parse_sdp

__all__ = [
    "DEFAULT_CODECS",
    "ENCRYPTION_MISMATCH",
    "MEDIA_ENCRYPTION_VALUES",
    "REFUSAL_FORMS",
    "UNSUPPORTED_SDP",
    "AnswerCheck",
    "Crypto",
    "MediaAnswer",
    "MediaEncryption",
    "MediaRefusal",
    "MediaSettings",
    "RefusalCause",
    "RefusalForm",
    "answer_offer",
    "check_answer",
    "make_offer",
    "parse_crypto",
]

MediaEncryption = Literal["required", "supported", "rejected"]
#: The values of ``[edge] media_encryption``; "required" is Microsoft's default.
MEDIA_ENCRYPTION_VALUES: tuple[MediaEncryption, ...] = get_args(MediaEncryption)

RefusalCause = Literal["encryption", "unsupported-sdp", "codecs"]
RefusalForm = Literal["diagnostics", "legacy"]
#: The values of the refusal form: Lync 2010+ (488 + ms-client-diagnostics) or the
#: older status line with a Warning (reference 2.2), which every SIP stack decodes.
REFUSAL_FORMS: tuple[RefusalForm, ...] = get_args(RefusalForm)

#: The only crypto-suite Skype negotiates ([MS-SDPEXT] a=crypto; reference 2.8).
SUITE = "AES_CM_128_HMAC_SHA1_80"
#: 16-byte master key + 14-byte salt (RFC 4568 §6.1): 40 base64 characters.
KEY_BYTES = 30

#: 488 with the Lync 2010 client's header (V, reference 2.3).
ENCRYPTION_MISMATCH = (
    "ms-client-diagnostics",
    f'52017;reason="{MS_DIAGNOSTICS[52017].reason}"',
)
#: 488 with the header pidgin-sipe sends for an SDP it cannot use (V, reference 2.4).
UNSUPPORTED_SDP = (
    "ms-client-diagnostics",
    f'52063;reason="{MS_DIAGNOSTICS[52063].reason}"',
)
NOT_ACCEPTABLE = (488, "Not Acceptable Here")
#: The older refusal (V: [MS-SDP] example status line; pidgin-sipe's Warning, reference 2.2).
LEGACY_ENCRYPTION_MISMATCH = (488, "Encryption Levels not compatible")
LEGACY_WARNING = ("Warning", '308 lcs.microsoft.com "Encryption Levels not compatible"')

#: Codecs the emulated user accepts by default: the Lync client's offer in the
#: reference's fixture (2.20), by encoding name. An entry may also be NAME/RATE.
DEFAULT_CODECS: tuple[str, ...] = (
    "SILK",
    "G722",
    "PCMU",
    "PCMA",
    "G7221",
    "SIREN",
    "x-msrta",
    "CN",
    "telephone-event",
)
#: Encodings that never make a call on their own (comfort noise, DTMF, redundancy).
_AUXILIARY = frozenset({"cn", "telephone-event", "red"})

#: RFC 3551 static payload types (the ones a peer may send without a=rtpmap).
_STATIC_PAYLOADS: dict[str, tuple[str, int]] = {
    "0": ("PCMU", 8000),
    "3": ("GSM", 8000),
    "4": ("G723", 8000),
    "5": ("DVI4", 8000),
    "6": ("DVI4", 16000),
    "7": ("LPC", 8000),
    "8": ("PCMA", 8000),
    "9": ("G722", 8000),
    "10": ("L16", 44100),
    "11": ("L16", 44100),
    "12": ("QCELP", 8000),
    "13": ("CN", 8000),
    "14": ("MPA", 90000),
    "15": ("G728", 8000),
    "16": ("DVI4", 11025),
    "17": ("DVI4", 22050),
    "18": ("G729", 8000),
}

#: The audio payload types of a Lync client's offer (V, reference 2.10 [FIX]),
#: used when fedsim's user makes an offer: (payload type, rtpmap, fmtp or None).
_LYNC_OFFER: tuple[tuple[str, str, str | None], ...] = (
    ("104", "SILK/16000", "useinbandfec=1; usedtx=0"),
    ("9", "G722/8000", None),
    ("112", "G7221/16000", "bitrate=24000"),
    ("111", "SIREN/16000", "bitrate=16000"),
    ("0", "PCMU/8000", None),
    ("8", "PCMA/8000", None),
    ("103", "SILK/8000", "useinbandfec=1; usedtx=0"),
    ("13", "CN/8000", None),
    ("101", "telephone-event/8000", "0-16"),
)

_RTP_PLAIN = ("RTP/AVP", "RTP/AVPF")
_RTP_SECURE = ("RTP/SAVP", "RTP/SAVPF")
#: RFC 5245 ice-char.
_ICE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: [MS-SDPEXT] §3.1.5.31.1 (as quoted by pidgin-sipe): an SSRC is 1..4294967040.
_MAX_SSRC = 0xFFFFFF00
#: RFC 4568 tag: 1*9DIGIT.
_TAG = re.compile(r"[0-9]{1,9}")
_CRYPTO = re.compile(
    r"(?P<tag>\S+)[ \t]+(?P<suite>\S+)[ \t]+(?P<params>\S+)(?P<session>(?:[ \t]+\S+)*)"
)
_RTPMAP = re.compile(r"(?P<pt>[0-9]{1,3}) +(?P<name>[^/ ]+)/(?P<rate>[0-9]{1,9})(?:/(?P<ch>\S+))?")
_FMTP = re.compile(r"(?P<pt>[0-9]{1,3}) +(?P<params>.+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSettings:
    """What the emulated user does with media (lab settings, defaults = a stock client).

    Attributes:
        encryption: ``[edge] media_encryption``: ``required`` (Microsoft's
            default), ``supported`` or ``rejected``.
        codecs: encodings the user accepts, by name (``PCMU``) or NAME/RATE
            (``SILK/16000``), case-insensitive; an offer sharing none is refused.
        ice: write ICE credentials and host candidates into answers and offers
            (a Skype client always gathers them; reference 2.22).
        refusal: how a refusal reads: ``diagnostics`` (Lync 2010 and later: 488 Not
            Acceptable Here + ``ms-client-diagnostics``) or ``legacy`` (``488
            Encryption Levels not compatible`` + ``Warning``, for peers whose SIP
            stack cannot decode ``ms-client-diagnostics``: libre, hence baresip
            1.0.0, reads that header as ``To``; reference 2.24).
    """

    encryption: MediaEncryption = "required"
    codecs: tuple[str, ...] = DEFAULT_CODECS
    ice: bool = True
    refusal: RefusalForm = "diagnostics"

    def __post_init__(self) -> None:
        if self.encryption not in MEDIA_ENCRYPTION_VALUES:
            raise ValueError(
                f"media_encryption {self.encryption!r} is not one of "
                f"{', '.join(MEDIA_ENCRYPTION_VALUES)}"
            )
        if not self.codecs or not all(c.strip() for c in self.codecs):
            raise ValueError("codecs must name at least one encoding")
        if self.refusal not in REFUSAL_FORMS:
            raise ValueError(f"refusal {self.refusal!r} is not one of {', '.join(REFUSAL_FORMS)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Crypto:
    """One ``a=crypto`` line (RFC 4568 §9.1), taken apart.

    Attributes:
        tag: the decimal tag as written.
        suite: the crypto-suite as written.
        method: the key method (``inline``).
        key: the base64 key||salt.
        lifetime: the ``|2^31`` part, if any.
        mki: the ``|1:1`` part, if any.
    """

    tag: str
    suite: str
    method: str
    key: str
    lifetime: str | None
    mki: str | None

    @property
    def usable(self) -> bool:
        """Whether a Skype client can use it: our suite, inline, a 30-byte key."""
        if self.suite.upper() != SUITE or self.method != "inline" or not _TAG.fullmatch(self.tag):
            return False
        try:
            return len(base64.b64decode(self.key, validate=True)) == KEY_BYTES
        except ValueError:
            return False


def parse_crypto(value: str) -> Crypto | None:
    """Take an ``a=crypto`` value apart; None when it is not RFC 4568 grammar.

    Only the first key-param is kept (Skype sends one); session parameters are
    ignored.
    """
    match = _CRYPTO.fullmatch(value.strip())
    if match is None:
        return None
    method, sep, info = match["params"].split(";", 1)[0].partition(":")
    if not method or not sep or not info:
        return None
    key, *rest = info.split("|")
    lifetime = next((part for part in rest if ":" not in part), None)
    mki = next((part for part in rest if ":" in part), None)
    return Crypto(
        tag=match["tag"],
        suite=match["suite"],
        method=method,
        key=key,
        lifetime=lifetime,
        mki=mki,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaAnswer:
    """The SDP the user sends back in its 200 (or offers there, for a delayed offer).

    Attributes:
        sdp: the body, ``application/sdp``.
        is_offer: True when the INVITE had no SDP and this is the user's offer.
        kinds: the accepted stream kinds in order (``audio``, ``message``).
        profile: the audio transport written (``RTP/SAVP`` or ``RTP/AVP``), None
            for an IM-only session.
        codecs: the audio encodings accepted, in the answer's order.
        fidelity: how far the body matches a real client's: always ``inferred``
            (its lines are copied from a Lync answer, the whole is fedsim's).
    """

    sdp: bytes
    is_offer: bool
    kinds: tuple[str, ...]
    profile: str | None
    codecs: tuple[str, ...]
    fidelity: Fidelity = "inferred"

    @property
    def secure(self) -> bool:
        """Whether the audio stream is SRTP."""
        return self.profile in _RTP_SECURE

    @property
    def summary(self) -> str:
        """One line for logs and events, e.g. ``RTP/SAVP PCMU PCMA`` or ``message``."""
        if self.profile is None:
            return " ".join(self.kinds)
        return " ".join((self.profile, *self.codecs))


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaRefusal:
    """The user's refusal of an offer: the final response to send.

    Attributes:
        status / reason: the status line (488 Not Acceptable Here).
        headers: extra header lines (the ms-client-diagnostics, or none).
        cause: which rule refused.
        detail: one sentence for logs: what in the offer was refused and why.
        fidelity: how far status + headers match a real client's answer.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    cause: RefusalCause
    detail: str
    fidelity: Fidelity


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerCheck:
    """Whether a peer's answer to the user's offer is one the user can live with.

    Attributes:
        ok: the call can go on.
        secure: the audio stream is SRTP (None when there is no audio stream).
        detail: one sentence: what the answer said.
    """

    ok: bool
    secure: bool | None
    detail: str


def _refusal(cause: RefusalCause, detail: str, form: RefusalForm = "diagnostics") -> MediaRefusal:
    """The 488 for ``cause``, in the Lync 2010 form or the legacy one."""
    status, reason = NOT_ACCEPTABLE
    headers: tuple[tuple[str, str], ...] = ()
    fidelity: Fidelity = "verbatim"
    if form == "legacy":
        if cause == "encryption":
            status, reason = LEGACY_ENCRYPTION_MISMATCH
            headers = (LEGACY_WARNING,)
        else:
            fidelity = "inferred"  # no legacy form of 52063 / codec refusals is on record
    elif cause == "encryption":
        headers = (ENCRYPTION_MISMATCH,)
    elif cause == "unsupported-sdp":
        headers = (UNSUPPORTED_SDP,)
    else:
        fidelity = "inferred"
    return MediaRefusal(
        status=status,
        reason=reason,
        headers=headers,
        cause=cause,
        detail=detail,
        fidelity=fidelity,
    )


@dataclass(frozen=True, slots=True)
class _Codec:
    pt: str
    name: str
    rate: int
    channels: str | None
    fmtp: str | None

    @property
    def rtpmap(self) -> str:
        tail = f"/{self.channels}" if self.channels else ""
        return f"{self.name}/{self.rate}{tail}"


def _codecs(media: MediaDescription) -> list[_Codec]:
    """The offered payload types with their encodings (a=rtpmap, else RFC 3551)."""
    rtpmaps: dict[str, tuple[str, int, str | None]] = {}
    for value in media.values("rtpmap"):
        match = _RTPMAP.fullmatch(value.strip())
        if match is not None:
            rtpmaps.setdefault(match["pt"], (match["name"], int(match["rate"]), match["ch"]))
    fmtps: dict[str, str] = {}
    for value in media.values("fmtp"):
        match = _FMTP.fullmatch(value.strip())
        if match is not None:
            fmtps.setdefault(match["pt"], match["params"])
    found: list[_Codec] = []
    for pt in media.formats:
        if pt in rtpmaps:
            name, rate, channels = rtpmaps[pt]
        elif pt in _STATIC_PAYLOADS:
            name, rate = _STATIC_PAYLOADS[pt]
            channels = None
        else:
            continue
        found.append(_Codec(pt=pt, name=name, rate=rate, channels=channels, fmtp=fmtps.get(pt)))
    return found


def _wanted(codec: _Codec, accepted: Sequence[str]) -> bool:
    for entry in accepted:
        name, _, rate = entry.partition("/")
        if name.strip().lower() == codec.name.lower() and (not rate or rate == str(codec.rate)):
            return True
    return False


def _choose(media: MediaDescription, accepted: Sequence[str]) -> list[_Codec]:
    """Every offered codec the user accepts, in the offer's order; [] without a real one."""
    chosen = [c for c in _codecs(media) if _wanted(c, accepted)]
    if not any(c.name.lower() not in _AUXILIARY for c in chosen):
        return []
    return chosen


def _random_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_ICE_CHARS) for _ in range(length))


def _family(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _stream_lines(
    *,
    profile: str,
    port: int,
    codecs: Sequence[_Codec],
    crypto_tag: str | None,
    crypto_tail: str,
    address: str,
    settings: MediaSettings,
    direction: str | None,
    rng: random.Random,
) -> list[str]:
    """One audio stream, attribute for attribute in the Lync answer's order (reference 2.16)."""
    ssrc = rng.randint(1, _MAX_SSRC)
    lines = [
        f"m=audio {port} {profile} {' '.join(c.pt for c in codecs)}",
        f"a=x-ssrc-range:{ssrc}-{ssrc}",
        "a=rtcp-fb:* x-message app send:dsh recv:dsh",
        "a=rtcp-rsize",
        "a=label:main-audio",
        "a=x-source:main-audio",
    ]
    if settings.ice:
        lines += [f"a=ice-ufrag:{_random_text(rng, 4)}", f"a=ice-pwd:{_random_text(rng, 24)}"]
        if _family(address) == "IP4":
            lines += [
                f"a=candidate:1 1 UDP 2130706431 {address} {port} typ host",
                f"a=candidate:1 2 UDP 2130705918 {address} {port + 1} typ host",
            ]
        else:
            lines += [
                f"a=x-candidate-ipv6:1 1 UDP 33553407 {address} {port} typ host",
                f"a=x-candidate-ipv6:1 2 UDP 33552894 {address} {port + 1} typ host",
            ]
    if crypto_tag is not None:
        key = base64.b64encode(rng.randbytes(KEY_BYTES)).decode("ascii")
        lines.append(f"a=crypto:{crypto_tag} {SUITE} inline:{key}{crypto_tail}")
    if settings.encryption == "rejected":
        lines.append("a=encryption:rejected")
    lines.append("a=maxptime:200")
    for codec in codecs:
        lines.append(f"a=rtpmap:{codec.pt} {codec.rtpmap}")
        fmtp = "0-16" if codec.name.lower() == "telephone-event" else codec.fmtp
        if fmtp:
            lines.append(f"a=fmtp:{codec.pt} {fmtp}")
    if direction is not None:
        lines.append(f"a={direction}")
    lines.append("a=ptime:20")
    return lines


def _session_head(address: str, *, version: int, name: str) -> list[str]:
    family = _family(address)
    return [
        "v=0",
        f"o=- 0 {version} IN {family} {address}",
        f"s={name}",
        f"c=IN {family} {address}",
        "b=CT:99980",
        "t=0 0",
    ]


def _body(lines: Sequence[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


#: RFC 3264 §6.1: the answer's direction mirrors the offer's.
_ANSWER_DIRECTION = {
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def _direction(media: MediaDescription) -> str | None:
    for offered, answered in _ANSWER_DIRECTION.items():
        if media.has(offered):
            return answered
    return None


def _refused_line(media: MediaDescription) -> str:
    """RFC 3264 §6: a refused stream keeps its place, with port 0."""
    formats = " ".join(media.formats) or "0"
    return f"m={media.media} 0 {media.proto} {formats}"


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to answer one RTP audio stream: SRTP with the offer's crypto line, or plain."""

    srtp: bool
    crypto: Crypto | None


@dataclass(frozen=True, slots=True)
class _Refuse:
    cause: RefusalCause
    detail: str


def _encryption_plan(media: MediaDescription, encryption: MediaEncryption) -> _Plan | _Refuse:
    """Apply the policy table of the module docstring to one RTP audio stream."""
    cryptos = [c for c in map(parse_crypto, media.values("crypto")) if c is not None]
    usable = next((c for c in cryptos if c.usable), None)
    if media.proto.upper() in _RTP_SECURE:
        if not media.values("crypto"):
            return _Refuse("unsupported-sdp", f"{media.proto} offer without a=crypto (no SDES key)")
        if usable is None:
            return _Refuse("encryption", f"{media.proto} offer without a usable {SUITE} inline key")
        if encryption == "rejected":
            return _Refuse("encryption", f"{media.proto} requires SRTP; the user rejects it")
        return _Plan(srtp=True, crypto=usable)
    if usable is not None:
        return _Plan(srtp=False, crypto=None) if encryption == "rejected" else _Plan(True, usable)
    if encryption == "required":
        return _Refuse("encryption", f"plain {media.proto} offer; the user requires encryption")
    if (media.first("encryption") or "").strip() == "required":
        return _Refuse(
            "encryption", f"{media.proto} offer requires encryption without an SDES key (MS-SDP)"
        )
    return _Plan(srtp=False, crypto=None)


def _audio_answer(
    media: MediaDescription,
    *,
    settings: MediaSettings,
    address: str,
    port: int,
    rng: random.Random,
) -> tuple[list[str], str, tuple[str, ...]] | MediaRefusal:
    plan = _encryption_plan(media, settings.encryption)
    if isinstance(plan, _Refuse):
        return _refusal(plan.cause, plan.detail, settings.refusal)
    codecs = _choose(media, settings.codecs)
    if not codecs:
        offered = " ".join(c.rtpmap for c in _codecs(media)) or "none known"
        return _refusal(
            "codecs",
            f"no codec in common (offered {offered}; the user accepts {' '.join(settings.codecs)})",
            settings.refusal,
        )
    profile = "RTP/AVP"
    if plan.srtp:
        profile = "RTP/SAVPF" if media.proto.upper() == "RTP/SAVPF" else "RTP/SAVP"
    lines = _stream_lines(
        profile=profile,
        port=port,
        codecs=codecs,
        crypto_tag=plan.crypto.tag if plan.crypto is not None else None,
        crypto_tail="|2^31",
        address=address,
        settings=settings,
        direction=_direction(media),
        rng=rng,
    )
    return lines, profile, tuple(c.name for c in codecs)


def _is_rtp_audio(media: MediaDescription) -> bool:
    return media.media.lower() == "audio" and media.proto.upper() in (*_RTP_PLAIN, *_RTP_SECURE)


def _is_im(media: MediaDescription) -> bool:
    return media.media.lower() == "message" and media.proto.lower() == "sip"


def answer_offer(
    offer: bytes,
    *,
    settings: MediaSettings,
    address: str,
    port: int,
    rng: random.Random,
    user_uri: str,
) -> MediaAnswer | MediaRefusal:
    """Answer an INVITE's SDP as a Skype for Business client would (module docstring).

    Args:
        offer: the INVITE's body (b"" for a delayed offer: the user then offers).
        settings: the user's media settings.
        address: the address to put in ``c=`` and the ICE candidates (the Edge's).
        port: the even RTP port to answer with (RTCP is ``port + 1``).
        rng: the only source of randomness (keys, SSRC, ICE credentials).
        user_uri: the user's own URI, for an IM session answer (reference 4.2).

    Returns:
        The answer, or the refusal to send instead of a 200. Never raises for
        anything the peer sent.
    """
    if not offer.strip():
        body = make_offer(settings=settings, address=address, port=port, rng=rng)
        return MediaAnswer(
            sdp=body,
            is_offer=True,
            kinds=("audio",),
            profile="RTP/SAVP" if settings.encryption == "required" else "RTP/AVP",
            codecs=tuple(rtpmap.split("/")[0] for _, rtpmap, _ in _offer_codecs(settings)),
        )
    try:
        parsed = parse_sdp(offer)
    except SdpError as exc:
        return _refusal("unsupported-sdp", f"unreadable SDP: {exc}", settings.refusal)
    return _answer_parsed(
        parsed, settings=settings, address=address, port=port, rng=rng, user_uri=user_uri
    )


def _answer_parsed(
    parsed: SessionDescription,
    *,
    settings: MediaSettings,
    address: str,
    port: int,
    rng: random.Random,
    user_uri: str,
) -> MediaAnswer | MediaRefusal:
    audio_index = next((i for i, m in enumerate(parsed.media) if m.port and _is_rtp_audio(m)), None)
    im_index = next((i for i, m in enumerate(parsed.media) if m.port and _is_im(m)), None)
    if audio_index is None and im_index is None:
        seen = ", ".join(f"m={m.media} {m.port} {m.proto}" for m in parsed.media) or "no m= line"
        return _refusal("unsupported-sdp", f"nothing the user can take ({seen})", settings.refusal)
    audio: tuple[list[str], str, tuple[str, ...]] | None = None
    if audio_index is not None:
        result = _audio_answer(
            parsed.media[audio_index], settings=settings, address=address, port=port, rng=rng
        )
        if isinstance(result, MediaRefusal):
            return result
        audio = result
    only_im = audio is None
    lines = (
        _session_head(address, version=0, name="session")
        if only_im
        else _session_head(address, version=1, name="noname")
    )
    kinds: list[str] = []
    for index, media in enumerate(parsed.media):
        if index == audio_index and audio is not None:
            lines += audio[0]
            kinds.append("audio")
        elif index == im_index:
            lines += message_media_answer(user_uri)
            kinds.append("message")
        else:
            lines.append(_refused_line(media))
    if only_im:
        # The SfB IM answer has no b= line (reference 4.2).
        lines = [line for line in lines if not line.startswith("b=")]
    return MediaAnswer(
        sdp=_body(lines),
        is_offer=False,
        kinds=tuple(kinds),
        profile=audio[1] if audio is not None else None,
        codecs=audio[2] if audio is not None else (),
    )


def _offer_codecs(settings: MediaSettings) -> list[tuple[str, str, str | None]]:
    """The Lync offer's codecs the user accepts; PCMU when the list names none of them."""
    chosen = []
    for pt, rtpmap, fmtp in _LYNC_OFFER:
        name, _, rate = rtpmap.partition("/")
        probe = _Codec(pt=pt, name=name, rate=int(rate), channels=None, fmtp=fmtp)
        if _wanted(probe, settings.codecs):
            chosen.append((pt, rtpmap, fmtp))
    return chosen or [("0", "PCMU/8000", None)]


def make_offer(*, settings: MediaSettings, address: str, port: int, rng: random.Random) -> bytes:
    """The audio offer the user sends (its own INVITE, or a 200 to a delayed offer).

    ``required`` offers ``RTP/SAVP`` with a key, ``supported`` ``RTP/AVP`` with a
    key (optional SRTP, [MS-SDPEXT]), ``rejected`` plain ``RTP/AVP``. The crypto
    line takes the Lync offer's form ``a=crypto:2 ...|2^31|1:1`` (reference 2.10).
    """
    codecs = [
        _Codec(
            pt=pt,
            name=rtpmap.split("/")[0],
            rate=int(rtpmap.split("/")[1]),
            channels=None,
            fmtp=fmtp,
        )
        for pt, rtpmap, fmtp in _offer_codecs(settings)
    ]
    lines = _session_head(address, version=0, name="session")
    lines += _stream_lines(
        profile="RTP/SAVP" if settings.encryption == "required" else "RTP/AVP",
        port=port,
        codecs=codecs,
        crypto_tag=None if settings.encryption == "rejected" else "2",
        crypto_tail="|2^31|1:1",
        address=address,
        settings=settings,
        direction=None,
        rng=rng,
    )
    return _body(lines)


def check_answer(answer: bytes, *, settings: MediaSettings) -> AnswerCheck:
    """Judge a peer's answer to :func:`make_offer` against the user's policy.

    A ``required`` user cannot accept a plain audio answer; every user needs an
    audio stream with a port and a codec it accepts.
    """
    try:
        parsed = parse_sdp(answer)
    except SdpError as exc:
        return AnswerCheck(ok=False, secure=None, detail=f"unreadable SDP answer: {exc}")
    audio = next((m for m in parsed.media if _is_rtp_audio(m)), None)
    if audio is None or audio.port == 0:
        return AnswerCheck(ok=False, secure=None, detail="the answer refuses the audio stream")
    secure = audio.proto.upper() in _RTP_SECURE and any(
        c is not None and c.usable for c in map(parse_crypto, audio.values("crypto"))
    )
    if settings.encryption == "required" and not secure:
        return AnswerCheck(
            ok=False, secure=False, detail=f"{audio.proto} answer to a user that requires SRTP"
        )
    if settings.encryption == "rejected" and secure:
        return AnswerCheck(ok=False, secure=True, detail="SRTP answer to a user that rejects it")
    if not _choose(audio, settings.codecs):
        return AnswerCheck(ok=False, secure=secure, detail="no codec the user accepts")
    return AnswerCheck(ok=True, secure=secure, detail=f"{audio.proto} answer accepted")
