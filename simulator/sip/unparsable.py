"""Answers to requests we could not parse (RFC 3261 §8.2, RFC 4475).

A request that fails to parse still deserves a ``400`` (or ``505``...) when we
can find its Via, From, To, Call-ID and CSeq lines: the peer matches the
response to its transaction with them. Pure: bytes in, bytes out.
"""

from __future__ import annotations

from simulator.sip.response import REASON_PHRASES

#: The lines a response must echo (RFC 3261 §8.2.6.2), long and compact names.
_ECHO: dict[bytes, bytes] = {
    b"via": b"Via",
    b"v": b"Via",
    b"from": b"From",
    b"f": b"From",
    b"to": b"To",
    b"t": b"To",
    b"call-id": b"Call-ID",
    b"i": b"Call-ID",
    b"cseq": b"CSeq",
}

#: Longest header block we look through for echo lines.
_SCAN_LIMIT = 64 * 1024


def error_response_for(raw: bytes, status: int, *, server: str, to_tag: str) -> bytes | None:
    """Build ``status`` for the unparsable request ``raw``, or None when it is not a request.

    Responses (``SIP/2.0 ...``) get no answer, nor does a request without a Via
    (there is no way back to its sender). Every echo line that exists is copied,
    so a request missing its Call-ID, From and To (RFC 4475 §3.3.1 ``insuf``:
    "ideally respond 400") is still answered with its Via and CSeq, and the peer
    can match the answer by the branch.
    """
    head = raw[:_SCAN_LIMIT].split(b"\r\n\r\n", 1)[0]
    lines = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").split(b"\r\n")
    if not lines or lines[0].startswith(b"SIP/"):
        return None
    echoed: list[bytes] = []
    seen: set[bytes] = set()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        canonical = _ECHO.get(name.strip().lower())
        if canonical is None:
            continue
        if canonical != b"Via" and canonical in seen:
            continue
        seen.add(canonical)
        value = value.strip()
        if canonical == b"To" and b"tag=" not in value.lower():
            value += b";tag=" + to_tag.encode("ascii")
        echoed.append(canonical + b": " + value)
    if b"Via" not in seen:
        return None
    reason = REASON_PHRASES.get(status, "Error").encode("ascii")
    out = [b"SIP/2.0 %d %s" % (status, reason), *echoed]
    out.append(b"Server: " + server.encode("ascii", "replace"))
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"
