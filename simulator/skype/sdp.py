"""SDP (RFC 4566 / RFC 3264) for the emulated Skype user: a real answer to the peer's offer.

fedsim carries no media; the answer only has to be valid so a real Expressway
(or SIPp, or baresip) completes the call: same media lines in the same order,
the first codec we share per audio line, port 0 for what we refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Static payload types we accept (RFC 3551), in our order of preference.
CODECS: dict[str, str] = {"0": "PCMU/8000", "8": "PCMA/8000"}

#: Where the (absent) media would go: TEST-NET-free loopback, a fixed even port.
MEDIA_PORT = 20000


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaLine:
    """One ``m=`` line of an offer."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]


#: RFC 4566 §5.14 m= line: media, port[/count], proto, formats; ASCII tokens only.
_M_LINE = re.compile(
    r"m=(?P<kind>[A-Za-z0-9!#$%&'*+.^_`{|}~-]+) (?P<port>[0-9]+)(?:/[0-9]+)? "
    r"(?P<proto>[A-Za-z0-9/._+-]+)(?P<formats>(?: [!-~]+)*) *"
)


def parse_media_lines(body: bytes) -> list[MediaLine]:
    """Return the offer's well-formed ``m=`` lines; anything else is skipped, never fatal.

    Peers send garbage too (fuzzers, broken SDP): a line that is not RFC 4566
    grammar in ASCII cannot be answered, so it is left out of the answer.
    """
    lines: list[MediaLine] = []
    for raw in body.decode("utf-8", "replace").splitlines():
        match = _M_LINE.fullmatch(raw)
        if match is None:
            continue
        lines.append(
            MediaLine(
                kind=match["kind"],
                port=int(match["port"]),
                proto=match["proto"],
                formats=tuple(match["formats"].split()),
            )
        )
    return lines


def build_answer(offer: bytes, *, address: str, session_id: int) -> bytes:
    """Answer ``offer`` (RFC 3264 §6); with no usable offer, make our own audio offer."""
    family = "IP6" if ":" in address else "IP4"
    head = [
        "v=0",
        f"o=- {session_id} {session_id} IN {family} {address}",
        "s=session",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    media: list[str] = []
    offered = parse_media_lines(offer)
    if not offered:
        offered = [MediaLine(kind="audio", port=1, proto="RTP/AVP", formats=tuple(CODECS))]
    for index, line in enumerate(offered):
        shared = [fmt for fmt in line.formats if fmt in CODECS]
        if line.kind != "audio" or line.port == 0 or not shared or "RTP/" not in line.proto:
            # RFC 3264 §6: a refused stream keeps its place with port 0.
            fmts = " ".join(line.formats) or "0"
            media.append(f"m={line.kind} 0 {line.proto} {fmts}")
            continue
        chosen = shared[0]
        media.append(f"m=audio {MEDIA_PORT + 2 * index} {line.proto} {chosen}")
        media.append(f"a=rtpmap:{chosen} {CODECS[chosen]}")
        media.append("a=sendrecv")
    return ("\r\n".join(head + media) + "\r\n").encode("ascii")
