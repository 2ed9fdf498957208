"""MESSAGE answers and the text that lands in events.jsonl."""

from __future__ import annotations

import base64

import pytest

from simulator.skype.im import (
    ACCEPT_TYPES,
    embedded_first_message,
    extract_text,
    message_body,
    message_media_answer,
    parse_content_type,
    receive_message,
)

MULTIPART = (
    b"------=_NextPart_1\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
    b"<b>hi</b> there\r\n"
    b"------=_NextPart_1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
    b"hi there\r\n"
    b"------=_NextPart_1--\r\n"
)
CPIM = (
    b"From: <sip:2000@steven.lab>\r\nTo: <sip:stejanss@skype.lab>\r\n\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nvia cpim"
)

TEXTS = [
    ("text/plain; charset=UTF-8", "héllo".encode(), "héllo"),
    ("text/plain; charset=ISO-8859-1", "héllo".encode("latin-1"), "héllo"),
    ("text/plain; charset=bogus", b"plain", "plain"),
    (None, b"no type", "no type"),
    ("text/html", b"<span style='x'>A &amp; B</span>\r\n<br/>c", "A & B c"),
    ('multipart/alternative;boundary="----=_NextPart_1"', MULTIPART, "hi there"),
    ("message/cpim", CPIM, "via cpim"),
    ("message/cpim", b"no blank line", None),
    ("application/im-iscomposing+xml", b"<isComposing/>", None),
    ("application/ms-imdn+xml", b"<imdn/>", None),
    ("image/gif", b"GIF89a", None),
]


@pytest.mark.parametrize(("content_type", "body", "text"), TEXTS)
def test_extract_text(content_type: str | None, body: bytes, text: str | None) -> None:
    """Plain text in its charset, HTML without tags, the text part of multipart, CPIM's inside."""
    assert extract_text(content_type, body) == text


ANSWERS = [
    ("text/plain; charset=UTF-8", 200, "hi"),
    ("text/html", 200, "hi"),
    ("application/ms-imdn+xml", 200, None),
    ("application/im-iscomposing+xml", 200, None),
    (None, 200, "hi"),
    ("application/json", 415, None),
    ("application/sdp", 415, None),
]


@pytest.mark.parametrize(("content_type", "status", "text"), ANSWERS)
def test_receive_message(content_type: str | None, status: int, text: str | None) -> None:
    """The client's accept-types (plus CPIM and typing) get 200; others 415 with Accept."""
    decision = receive_message(content_type, b"hi")
    assert (decision.status, decision.text) == (status, text)
    if status == 415:
        assert decision.reason == "Unsupported Media Type"
        assert decision.headers == (("Accept", ", ".join(ACCEPT_TYPES)),)
    else:
        assert (decision.reason, decision.headers) == ("OK", ())


def test_embedded_first_message_reads_ms_body() -> None:
    """The SfB 2015 INVITE's ms-text-format carries 'qwe' as cXdl (reference 4.1)."""
    assert embedded_first_message(["text/plain; charset=UTF-8; ms-body=cXdl"]) == "qwe"


@pytest.mark.parametrize(
    "values",
    [[], ["text/plain; charset=UTF-8"], ["text/plain; ms-body=%%%"], ["image/gif; ms-body=cXdl"]],
)
def test_embedded_first_message_absent_or_unreadable(values: list[str]) -> None:
    """No ms-body, bad base64, or a body without text: None."""
    assert embedded_first_message(values) is None


def test_embedded_first_message_html_and_unpadded_base64() -> None:
    """ms-im-format carries HTML; base64 without padding still decodes."""
    encoded = base64.b64encode(b"<b>hello</b>").decode().rstrip("=")
    assert embedded_first_message([f"text/html; charset=UTF-8; ms-body={encoded}"]) == "hello"


def test_message_media_answer_and_body() -> None:
    """The m=message answer lines and the user's own MESSAGE body (V forms)."""
    assert message_media_answer("sip:a@b") == [
        "m=message 5060 sip sip:a@b",
        "a=accept-types:" + " ".join(ACCEPT_TYPES),
    ]
    assert message_body("hé") == ("text/plain; charset=UTF-8", "hé".encode())


def test_parse_content_type() -> None:
    """Lower-case media type; parameters with quoted values unquoted; None is empty."""
    assert parse_content_type(None) == ("", {})
    assert parse_content_type('Multipart/Alternative; Boundary="a\\"b"; x=1') == (
        "multipart/alternative",
        {"boundary": 'a"b', "x": "1"},
    )
