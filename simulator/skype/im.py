"""Instant messages to the Skype user: page-mode MESSAGE and the Skype IM session.

Theory (docs/reference/skype-user.md §4). A Skype for Business client chats in
an *IM session*: an INVITE whose SDP is ``m=message 5060 sip null`` with an
``a=accept-types:`` list, answered ``m=message 5060 sip sip:<own URI>``, after
which every message is a MESSAGE inside that dialog (RFC 3428 bodies). The
first message can ride in the INVITE itself, base64 in ``ms-text-format``
(``Supported: ms-embedded-first-message``). A federated partner may also send a
page-mode MESSAGE outside any dialog; fedsim's user takes it with 200 (inferred).

This module decides what to answer a MESSAGE and pulls the readable text out
of its body for ``events.jsonl``: text/plain, text/html (tags dropped),
multipart/alternative (its text part), message/cpim (RFC 3862, its inner body).
It never raises for a peer's input.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from simulator.diagnostics.catalogue import Fidelity

__all__ = [
    "ACCEPT_TYPES",
    "MessageDecision",
    "embedded_first_message",
    "extract_text",
    "message_body",
    "message_media_answer",
    "parse_content_type",
    "receive_message",
]

#: The SfB 2015 client's ``a=accept-types`` (V, reference 4.1/4.2), in its order.
ACCEPT_TYPES: tuple[str, ...] = (
    "text/plain",
    "multipart/alternative",
    "image/gif",
    "text/rtf",
    "text/html",
    "application/x-ms-ink",
    "application/ms-imdn+xml",
    "text/x-msmsgsinvite",
)
#: Bodies accepted on top of those: RFC 3862 wrapping and RFC 3994 typing notices.
_ALSO_ACCEPTED = ("message/cpim", "application/im-iscomposing+xml")

#: Content-Type of the messages the user sends (V: the ms-text-format value, reference 4.1).
TEXT_PLAIN = "text/plain; charset=UTF-8"

_PARAM = re.compile(
    r";\s*(?P<name>[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[^;\s]*)'
)


def message_media_answer(user_uri: str) -> list[str]:
    """The ``m=message`` lines of the user's answer to an IM session offer (V, reference 4.2)."""
    return [f"m=message 5060 sip {user_uri}", f"a=accept-types:{' '.join(ACCEPT_TYPES)}"]


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lower-case media type and parameters.

    None or an empty value gives ``("", {})``; quoted parameter values are unquoted.
    """
    if not value or not value.strip():
        return "", {}
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(";" + rest):
        raw = match["value"]
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(match["name"].lower(), raw)
    return media_type.strip().lower(), params


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment (what a Skype user would read)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextOnly()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # HTMLParser's own complaint about broken markup
        return html
    return " ".join("".join(parser.parts).split())


def _multipart_text(content_type: str, body: bytes) -> str | None:
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode("utf-8", "replace") + b"\r\n\r\n" + body,
        policy=email.policy.compat32,
    )
    if not message.is_multipart():
        return None
    parts = [p for p in message.walk() if not p.is_multipart()]
    for wanted in ("text/plain", "text/html"):
        for part in parts:
            if part.get_content_type() != wanted:
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            text = _decode(data, part.get_content_charset())
            return _html_text(text) if wanted == "text/html" else text
    return None


def _cpim_text(body: bytes) -> str | None:
    """RFC 3862: message headers, a blank line, MIME headers, a blank line, the content."""
    text = body.replace(b"\r\n", b"\n")
    _, sep, rest = text.partition(b"\n\n")
    if not sep:
        return None
    mime, sep, content = rest.partition(b"\n\n")
    if not sep:
        return None
    inner_type: str | None = None
    for line in mime.decode("utf-8", "replace").split("\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "content-type":
            inner_type = value.strip()
    if parse_content_type(inner_type)[0] == "message/cpim":
        return None  # one level of wrapping is all RFC 3862 needs
    return extract_text(inner_type, content)


def extract_text(content_type: str | None, body: bytes) -> str | None:
    """The readable text of a message body, or None when it carries none.

    Args:
        content_type: the Content-Type header value (None: taken as text/plain).
        body: the body.

    Returns:
        The text (HTML reduced to its words), or None for bodies without text
        (typing notices, delivery notices, images, ink).
    """
    media_type, params = parse_content_type(content_type)
    charset = params.get("charset")
    if media_type in ("", "text/plain", "text/rtf"):
        return _decode(body, charset)
    if media_type == "text/html":
        return _html_text(_decode(body, charset))
    if media_type == "multipart/alternative":
        return _multipart_text(content_type or "", body)
    if media_type == "message/cpim":
        return _cpim_text(body)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDecision:
    """What the user answers a MESSAGE, and what it read.

    Attributes:
        status / reason: the final response (200 OK, or 415 Unsupported Media Type).
        headers: extra header lines (``Accept`` on a 415, RFC 3428 §7).
        text: the readable text for ``events.jsonl`` (None: the body had none).
        content_type: the body's media type, lower case ("" when absent).
        fidelity: how far the answer matches a real client's (inferred: Skype's
            page-mode behaviour towards a partner is not public, reference 4.4).
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    text: str | None
    content_type: str
    fidelity: Fidelity = "inferred"


def receive_message(content_type: str | None, body: bytes) -> MessageDecision:
    """Decide the answer to a MESSAGE (page-mode or inside an IM session).

    A body type the client lists in ``a=accept-types`` (plus CPIM and typing
    notices) is taken with 200; any other gets 415 with the list in ``Accept``.
    A MESSAGE without a body or Content-Type is taken as empty text/plain.
    """
    media_type, _ = parse_content_type(content_type)
    if media_type and media_type not in (*ACCEPT_TYPES, *_ALSO_ACCEPTED):
        return MessageDecision(
            status=415,
            reason="Unsupported Media Type",
            headers=(("Accept", ", ".join(ACCEPT_TYPES)),),
            text=None,
            content_type=media_type,
        )
    return MessageDecision(
        status=200,
        reason="OK",
        headers=(),
        text=extract_text(content_type, body),
        content_type=media_type,
    )


def embedded_first_message(ms_text_format: Sequence[str]) -> str | None:
    """The first message a Skype INVITE carries in ``ms-text-format`` (reference 4.1).

    Args:
        ms_text_format: the values of every ``ms-text-format`` header of the INVITE,
            e.g. ``text/plain; charset=UTF-8; ms-body=cXdl``.

    Returns:
        The decoded text of the first value with a readable ``ms-body``, or None.
    """
    for value in ms_text_format:
        media_type, params = parse_content_type(value)
        encoded = params.get("ms-body")
        if not encoded:
            continue
        try:
            raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        text = extract_text(value if media_type else None, raw)
        if text is not None:
            return text
    return None


def message_body(text: str) -> tuple[str, bytes]:
    """The Content-Type and body of a message the user sends (plain text, UTF-8)."""
    return TEXT_PLAIN, text.encode("utf-8")
