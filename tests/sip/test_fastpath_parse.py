"""The parser's string-method shortcuts agree with the grammar they stand for.

parse_message reads ``CSeq: N METHOD`` with partition/isdigit when METHOD is the
Request-Line's method, and Headers.get finds known spellings without
canonical_name; both must answer exactly as the regex path does.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import Headers, Request, SipParseError, canonical_name, parse_message
from simulator.sip.message import KNOWN_METHODS, parse_cseq

MANY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMBERS = ["1", "0", "007", "123456789", "999999999", "1234567890", "4294967295", "4294967296"]
ODD_NUMBERS = ["", "-1", "+1", "1.0", "\u0661", "\uff11", "1 ", " 1"]
numbers = st.sampled_from([*NUMBERS, *ODD_NUMBERS]) | st.integers(0, 2**33).map(str)
methods = st.sampled_from(["INVITE", "invite", "OPTIONS", "FOO", "INVITE ", "", "IN VITE"])
gaps = st.sampled_from([" ", "  ", "\t", " \t", ""])


def cseq_outcome(data: bytes) -> object:
    try:
        message = parse_message(data)
    except SipParseError as exc:
        return ("error", exc.message, exc.status_hint, exc.offending)
    assert isinstance(message, Request)
    return message.cseq


def expected_outcome(method: str, value: str) -> object:
    """What the grammar says: parse_cseq, then the method check (RFC 4475 §3.1.2.17)."""
    try:
        cseq = parse_cseq(value)
    except SipParseError as exc:
        return ("error", exc.message, exc.status_hint, exc.offending)
    if cseq[1] != method:
        status = 400 if method in KNOWN_METHODS else 501
        message = "CSeq method does not match the Request-Line"
        return ("error", message, status, value.encode())
    return cseq


@MANY
@given(numbers, gaps, methods, st.sampled_from(["INVITE", "FOO"]))
def test_cseq_shortcut_equals_parse_cseq(number: str, gap: str, method: str, line: str) -> None:
    value = f"{number}{gap}{method}".strip(" \t")
    data = (
        f"{line} sip:bob@edge.bench SIP/2.0\r\n"
        "Via: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n"
        f"Call-ID: 1\r\nCSeq: {value}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    assert cseq_outcome(data) == expected_outcome(line, value)


names = st.sampled_from(["Call-ID", "call-id", "CALL-ID", "i", "I", "Call-Id", "v", "Via", "X-A"])


@MANY
@given(st.lists(st.tuples(names, st.sampled_from(["1", "2"])), max_size=5), names | st.text())
def test_headers_get_equals_the_canonical_lookup(pairs: list[tuple[str, str]], name: str) -> None:
    headers = Headers(pairs)
    key = canonical_name(name)
    expected = next((v for n, v in pairs if canonical_name(n) == key), None)
    assert headers.get(name) == expected
