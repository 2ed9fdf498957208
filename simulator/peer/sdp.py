"""SDP (RFC 4566 / RFC 3264) as a Cisco Expressway-E relays it: an audio offer and answers.

fedsim carries no media. The bodies only have to be valid, so that an Edge (or a
real Skype client behind it) accepts the call: G.711 in both laws plus DTMF
events, the shape a Cisco endpoint's offer has once it crosses the Expressway.

The offer's encryption is the Expressway zone's media encryption mode, the
setting a Skype user's ``RequireEncryption`` meets (docs/reference/skype-user.md
§2): ``best-effort`` (the default: ``RTP/AVP`` with SDES ``a=crypto`` lines,
what a Cisco endpoint with BestEffort encryption offers; Microsoft reads it as
"SRTP if you can"), ``srtp`` (``RTP/SAVP``: encryption forced), ``plain``
(``RTP/AVP`` without keys: a zone that forces it off, or an endpoint that cannot
encrypt), ``none`` (no SDP: a delayed offer), ``dtls`` (DTLS-SRTP,
``UDP/TLS/RTP/SAVPF`` with a fingerprint: a WebRTC-style endpoint, which a
Skype client cannot use). ``im`` is the Skype IM session's offer
(``m=message 5060 sip null``). No I/O.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

from simulator.skype.im import ACCEPT_TYPES

Offer = Literal["best-effort", "srtp", "plain", "none", "im", "dtls"]
#: The offers ``fedsim call --offer`` and ``[[calls]] offer`` name, the default first.
OFFERS: tuple[Offer, ...] = get_args(Offer)
#: The SDES suites offered: the 80-bit tag Microsoft needs, the 32-bit one Cisco adds.
_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

#: Static payload types we offer and accept (RFC 3551 §6), in our order of preference.
AUDIO_CODECS: dict[str, str] = {"0": "PCMU/8000", "8": "PCMA/8000"}
#: RFC 4733 telephone events, offered as Cisco endpoints do.
DTMF_PAYLOAD = "101"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaLine:
    """One ``m=`` line (RFC 4566 §5.14)."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]


def parse_media_lines(body: bytes) -> tuple[MediaLine, ...]:
    """Return the ``m=`` lines of ``body``; malformed lines are skipped, never fatal."""
    lines: list[MediaLine] = []
    for raw in body.decode("utf-8", "replace").splitlines():
        if not raw.startswith("m="):
            continue
        parts = raw[2:].split()
        if len(parts) < 3:
            continue
        port = parts[1].split("/")[0]
        if not port.isdigit():
            continue
        lines.append(
            MediaLine(kind=parts[0], port=int(port), proto=parts[2], formats=tuple(parts[3:]))
        )
    return tuple(lines)


def _head(address: str, session_id: int) -> list[str]:
    family = "IP6" if ":" in address else "IP4"
    return [
        "v=0",
        f"o=tandberg {session_id} 1 IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "b=AS:64",
        "t=0 0",
    ]


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _key(session_id: int, tag: int) -> str:
    """30 bytes of SDES key and salt (RFC 4568 §6.1), base64: fixed per session (no media)."""
    return base64.b64encode(hashlib.sha256(f"{session_id}/{tag}".encode()).digest()[:30]).decode()


def build_offer(*, address: str, port: int, session_id: int, encryption: Offer = "plain") -> bytes:
    """An audio offer (RFC 3264 §5): PCMU, PCMA and telephone events on ``address:port``.

    Args:
        address: where the (absent) media would go; IPv6 literals get ``IP6``.
        port: RTP port, even (RFC 3550 §11).
        session_id: the ``o=`` session id, from the caller's random source.
        encryption: ``plain``, ``best-effort`` or ``srtp`` (module docstring);
            ``im`` gives the IM session offer.

    Raises:
        ValueError: a bad port, or ``none`` (a delayed offer has no body).
    """
    if port % 2 or not 0 < port < 65536:
        raise ValueError(f"RTP port must be even and in 2-65534, not {port}")
    if encryption == "none":
        raise ValueError("a delayed offer has no SDP")
    if encryption == "im":
        return build_im_offer(address=address)
    formats = [*AUDIO_CODECS, DTMF_PAYLOAD]
    lines = _head(address, session_id)
    proto = {"srtp": "RTP/SAVP", "dtls": "UDP/TLS/RTP/SAVPF"}.get(encryption, "RTP/AVP")
    lines.append(f"m=audio {port} {proto} {' '.join(formats)}")
    lines.extend(f"a=rtpmap:{pt} {codec}" for pt, codec in AUDIO_CODECS.items())
    lines.append(f"a=rtpmap:{DTMF_PAYLOAD} telephone-event/8000")
    lines.append(f"a=fmtp:{DTMF_PAYLOAD} 0-15")
    if encryption == "dtls":
        digest = hashlib.sha256(str(session_id).encode()).hexdigest().upper()
        pairs = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
        lines += [f"a=fingerprint:sha-256 {pairs}", "a=setup:actpass", "a=rtcp-mux"]
    elif encryption != "plain":
        lines.extend(
            f"a=crypto:{tag} {suite} inline:{_key(session_id, tag)}|2^48"
            for tag, suite in enumerate(_SUITES, start=1)
        )
    lines.append("a=sendrecv")
    return _join(lines)


def build_im_offer(*, address: str) -> bytes:
    """The Skype IM session offer (V: a SfB 2015 client's, docs/reference/skype-user.md 4.1).

    ``m=message 5060 sip null`` and the client's ``a=accept-types`` list, with the
    trailing space the client writes.
    """
    family = "IP6" if ":" in address else "IP4"
    lines = [
        "v=0",
        f"o=- 0 0 IN {family} {address}",
        "s=session",
        f"c=IN {family} {address}",
        "t=0 0",
        "m=message 5060 sip null",
        f"a=accept-types:{' '.join(ACCEPT_TYPES)} ",
    ]
    return _join(lines)


#: How the simulated Expressway-E's zone treats media encryption when it answers.
AnswerEncryption = Literal["auto", "plain", "srtp"]
#: ``[peers.NAME] media`` / ``fedsim peer --media``, the default first.
ANSWER_ENCRYPTIONS: tuple[AnswerEncryption, ...] = get_args(AnswerEncryption)


def _crypto_tags(offer: bytes) -> list[str | None]:
    """Per ``m=`` line, the tag of its first AES_CM_128_HMAC_SHA1_80 SDES line, if any."""
    tags: list[str | None] = []
    for raw in offer.decode("utf-8", "replace").splitlines():
        if raw.startswith("m="):
            tags.append(None)
        elif raw.startswith("a=crypto:") and tags and tags[-1] is None:
            tag, _, rest = raw[len("a=crypto:") :].partition(" ")
            if rest.split(" ", 1)[0].upper() == _SUITES[0] and tag.isdigit():
                tags[-1] = tag
    return tags


def build_answer(
    offer: bytes,
    *,
    address: str,
    port: int,
    session_id: int,
    encryption: AnswerEncryption = "auto",
) -> bytes | None:
    """Answer ``offer`` (RFC 3264 §6), or None when no audio line is acceptable.

    Every offered ``m=`` line gets one answer line in the same place; the ones we
    refuse get port 0, as §6 requires. The caller answers None with 488.
    ``encryption`` is the zone's media encryption: ``auto`` answers SRTP to an
    offer with an SDES key (its own ``a=crypto`` line, the offer's tag, RFC 4568
    §7.1.2) and plain RTP to a plain one; ``plain`` (an Expressway that forces
    encryption off) refuses ``RTP/SAVP`` and answers keyed ``RTP/AVP`` without
    keys; ``srtp`` (forced on) refuses a line without a key.
    """
    lines = _head(address, session_id)
    accepted = False
    tags = _crypto_tags(offer)
    for index, line in enumerate(parse_media_lines(offer)):
        shared = [fmt for fmt in line.formats if fmt in AUDIO_CODECS]
        tag = tags[index] if index < len(tags) else None
        secure_only = line.proto.upper() in ("RTP/SAVP", "RTP/SAVPF")
        usable = line.kind == "audio" and line.port != 0 and bool(shared) and "RTP/" in line.proto
        if encryption == "plain" and secure_only:
            usable = False
        if (encryption == "srtp" or secure_only) and tag is None:
            usable = False
        if not usable:
            lines.append(f"m={line.kind} 0 {line.proto} {' '.join(line.formats) or '0'}")
            continue
        accepted = True
        chosen = shared[0]
        lines.append(f"m=audio {port + 2 * index} {line.proto} {chosen}")
        lines.append(f"a=rtpmap:{chosen} {AUDIO_CODECS[chosen]}")
        if tag is not None and encryption != "plain":
            lines.append(f"a=crypto:{tag} {_SUITES[0]} inline:{_key(session_id, 0)}")
        lines.append("a=sendrecv")
    return _join(lines) if accepted else None
