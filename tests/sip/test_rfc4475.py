"""RFC 4475 torture tests: every message parses or is rejected as the RFC recommends.

The corpus and its index live in ../shared/testdata/rfc4475. Each file is
checked twice: as a UDP datagram (``parse_message`` on the whole file) and as
TLS/TCP stream bytes (through ``StreamFramer`` first), because RFC 4475 asks
for different behaviour on the two for clerr, ncl, mcl01, dblreq and inv2543.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.sip import (
    AbsoluteUri,
    FramingError,
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    SipUri,
    StreamFramer,
    parse_message,
    serialize,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "testdata" / "rfc4475"


def _index() -> list[dict[str, str]]:
    with (CORPUS / "index.tsv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


INDEX = _index()
VALID = [row["file"] for row in INDEX if row["verdict"] == "valid"]
INVALID_FILES = [row["file"] for row in INDEX if row["verdict"] == "invalid"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """What RFC 4475 recommends for an invalid message.

    status: the status to answer on a datagram (None = a response: drop it).
    why: a fragment of our error message, so a test fails if the message is
        rejected for some other reason than the one the RFC case is about.
    stream: what the framer does with the same bytes on TLS/TCP:
        "parse" (frames it, then parse_message rejects as on a datagram),
        "need" (waits for more bytes), or "framing" (FramingError, close).
    """

    section: str
    status: int | None
    why: str
    stream: str = "parse"


# RFC 4475 section -> recommended outcome. Each row quotes the RFC's advice.
INVALID: dict[str, Rejection] = {
    # "This request ... SHOULD be rejected with a 400 Bad Request"
    "badinv01.dat": Rejection(section="3.1.2.1", status=400, why="bad or empty parameter"),
    # UDP: 400; "[on a stream] the element SHOULD wait for more data"
    "clerr.dat": Rejection(
        section="3.1.2.2", status=400, why="Content-Length is larger", stream="need"
    ),
    # "respond with an error"; stream: framing is lost, close the connection
    "ncl.dat": Rejection(section="3.1.2.3", status=400, why="not a number", stream="framing"),
    # "respond with a 400 Bad Request due to the CSeq error"
    "scalar02.dat": Rejection(section="3.1.2.4", status=400, why="CSeq number over 2**32-1"),
    # a response: "drop" it
    "scalarlg.dat": Rejection(section="3.1.2.5", status=None, why="CSeq number over 2**32-1"),
    # "reasonable to respond 400"
    "quotbal.dat": Rejection(section="3.1.2.6", status=400, why="quoted display name"),
    # "should be rejected with a 400"
    "ltgtruri.dat": Rejection(section="3.1.2.7", status=400, why="URI has no scheme"),
    "lwsruri.dat": Rejection(section="3.1.2.8", status=400, why="malformed Request-Line"),
    "lwsstart.dat": Rejection(section="3.1.2.9", status=400, why="malformed Request-Line"),
    "trws.dat": Rejection(section="3.1.2.10", status=400, why="malformed Request-Line"),
    "escruri.dat": Rejection(section="3.1.2.11", status=400, why="escaped headers"),
    "baddate.dat": Rejection(section="3.1.2.12", status=400, why="GMT"),
    "regbadct.dat": Rejection(section="3.1.2.13", status=400, why="must be enclosed in <>"),
    "badaspec.dat": Rejection(section="3.1.2.14", status=400, why="inside <>"),
    # The file has no blank line after its headers: a datagram is malformed for
    # that alone, a stream waits; test_baddn_display_name checks the real point.
    "baddn.dat": Rejection(section="3.1.2.15", status=400, why="no empty line", stream="need"),
    # "respond 505 Version Not Supported"
    "badvers.dat": Rejection(section="3.1.2.16", status=505, why="unsupported SIP version"),
    "mismatch01.dat": Rejection(section="3.1.2.17", status=400, why="CSeq method"),
    # "respond 501 Not Implemented (400 acceptable)"
    "mismatch02.dat": Rejection(section="3.1.2.18", status=501, why="CSeq method"),
    # a response: "drop"
    "bigcode.dat": Rejection(section="3.1.2.19", status=None, why="malformed Status-Line"),
    # "ideally respond 400"
    "insuf.dat": Rejection(section="3.3.1", status=400, why="missing To, From, Call-ID"),
    "multi01.dat": Rejection(
        section="3.3.8", status=400, why="more than one Call-ID, To, From, CSeq, Max-Forwards"
    ),
    # UDP: error; stream: framing error, close
    "mcl01.dat": Rejection(
        section="3.3.9", status=400, why="more than one Content-Length", stream="framing"
    ),
}


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def frame_all(data: bytes) -> list[bytes | Need | KeepAlive | FramingError]:
    """Everything the framer makes of ``data`` delivered in one read, up to Need.DATA."""
    framer = StreamFramer()
    framer.receive_data(data)
    out: list[bytes | Need | KeepAlive | FramingError] = []
    while True:
        try:
            item = framer.next_message()
        except FramingError as exc:
            out.append(exc)
            return out
        out.append(item)
        if item is Need.DATA:
            return out


def test_tables_cover_the_corpus() -> None:
    assert len(INDEX) == 49
    assert sorted(INVALID) == sorted(INVALID_FILES)
    for row in INDEX:
        if row["verdict"] == "invalid":
            assert INVALID[row["file"]].section == row["rfc_section"]


# --- valid messages -------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID)
def test_valid_message_parses_and_round_trips(name: str) -> None:
    message = parse_message(load(name))
    again = parse_message(serialize(message))
    assert again == message
    assert serialize(again) == serialize(message)


#: Messages whose stream framing differs from "one message, then wait".
STREAM_SPECIAL = {"dblreq.dat", "inv2543.dat"}


@pytest.mark.parametrize("name", [n for n in VALID if n not in STREAM_SPECIAL])
def test_valid_message_frames_as_one_message_on_a_stream(name: str) -> None:
    data = load(name)
    assert frame_all(data) == [data, Need.DATA]


def test_dblreq_trailing_invite_is_the_next_message_on_a_stream() -> None:
    # RFC 4475 §3.1.1.8: on UDP the trailing INVITE is ignored ...
    data = load("dblreq.dat")
    register = parse_message(data)
    assert isinstance(register, Request)
    assert (register.method, register.body) == ("REGISTER", b"")
    # ... on a stream it is the next message. Its Content-Length (150) is 5 bytes
    # short of its SDP, so the leftover "C\r\n\r\n" is a header block without
    # Content-Length: the stream is out of sync and must be closed.
    first, second, error = frame_all(data)
    assert isinstance(first, bytes)
    assert parse_message(first) == register
    assert isinstance(second, bytes)
    invite = parse_message(second)
    assert isinstance(invite, Request)
    assert (invite.method, len(invite.body)) == ("INVITE", 150)
    assert isinstance(error, FramingError)
    assert error.offending == b"C\r\n\r\n"


def test_inv2543_is_a_datagram_only_message() -> None:
    # RFC 4475 §3.4.1: RFC 2543 syntax (no Content-Length, no Max-Forwards, no
    # branch, no From tag) is accepted on a datagram; RFC 3261 §18.3 makes
    # Content-Length mandatory on a stream, so there it is a framing error.
    data = load("inv2543.dat")
    invite = parse_message(data)
    assert isinstance(invite, Request)
    assert invite.max_forwards is None
    assert invite.vias[0].branch is None
    assert invite.from_.tag is None
    assert invite.body.startswith(b"v=0\r\n")
    assert invite.body.endswith(b"RTP/AVP 0\r\n")
    [error] = frame_all(data)
    assert isinstance(error, FramingError)
    assert error.status_hint == 400


def test_wsinv_folding_and_odd_spellings() -> None:
    m = parse_message(load("wsinv.dat"))
    assert isinstance(m, Request)
    assert m.cseq == (9, "INVITE")
    assert m.max_forwards == 68
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert all(v.protocol == "SIP/2.0" for v in m.vias)
    assert m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert ("TO", "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n") in m.headers.pairs
    assert len(m.body) == 150


def test_intmeth_keeps_odd_bytes() -> None:
    m = parse_message(load("intmeth.dat"))
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    uri = m.to.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_esc02_percent_is_not_an_escape_outside_uris() -> None:
    m = parse_message(load("esc02.dat"))
    assert isinstance(m, Request)
    assert m.method == "RE%47IST%45R"
    assert m.to.display == "%Z%45"
    assert m.headers.get_all("Contact") == [
        "<sip:alias1@host1.example.com>",
        "<sip:alias3@host3.example.com>",
    ]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_escnull_and_semiuri_user_parts_are_kept_escaped() -> None:
    m = parse_message(load("escnull.dat"))
    assert isinstance(m.to.uri, SipUri)
    assert m.to.uri.user == "null-%00-null"
    s = parse_message(load("semiuri.dat"))
    assert isinstance(s, Request)
    assert s.uri == "sip:user;par=u%40example.net@example.com"
    assert s.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports_keeps_unknown_transports() -> None:
    m = parse_message(load("transports.dat"))
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_reason_phrases_unusual_and_empty() -> None:
    unreason = parse_message(load("unreason.dat"))
    assert isinstance(unreason, Response)
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(load("noreason.dat"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_mpart01_binary_body_is_framed_by_content_length() -> None:
    m = parse_message(load("mpart01.dat"))
    assert len(m.body) == 553
    assert b"\x00" in m.body


def test_unknown_schemes_parse_as_absolute_uris() -> None:
    unkscm = parse_message(load("unkscm.dat"))
    assert isinstance(unkscm, Request)
    assert unkscm.uri == "nobodyKnowsThisScheme:totallyopaquecontent"
    unksm2 = parse_message(load("unksm2.dat"))
    assert unksm2.to.uri == AbsoluteUri(scheme="isbn", rest="2983792873")
    assert unksm2.from_.uri == AbsoluteUri(scheme="http", rest="//www.example.com")


def test_contact_params_addr_spec_versus_name_addr() -> None:
    # RFC 4475 §3.3.12 / §3.3.13 (RFC 3261 §20.10): without <> the ;param is a
    # contact parameter, inside <> it is a URI parameter.
    from simulator.sip import parse_name_addr

    cparam01 = parse_message(load("cparam01.dat"))
    contact = parse_name_addr(cparam01.headers.get("Contact") or "")
    assert contact.params == (("unknownparam", None),)
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.params == ()
    cparam02 = parse_message(load("cparam02.dat"))
    contact = parse_name_addr(cparam02.headers.get("Contact") or "")
    assert contact.params == ()
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.params == (("unknownparam", None),)
    regescrt = parse_message(load("regescrt.dat"))
    contact = parse_name_addr(regescrt.headers.get("m") or "")
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_zeromf_and_badbranch_are_legal_to_parse() -> None:
    assert parse_message(load("zeromf.dat")).max_forwards == 0
    assert parse_message(load("badbranch.dat")).vias[0].branch == "z9hG4bK"


# --- invalid messages -----------------------------------------------------------------


@pytest.mark.parametrize("name", INVALID_FILES)
def test_invalid_message_rejected_as_recommended_on_a_datagram(name: str) -> None:
    expected = INVALID[name]
    with pytest.raises(SipParseError) as info:
        parse_message(load(name))
    assert expected.why in info.value.message
    if expected.status is not None:
        assert info.value.status_hint == expected.status


@pytest.mark.parametrize("name", INVALID_FILES)
def test_invalid_message_on_a_stream(name: str) -> None:
    expected = INVALID[name]
    data = load(name)
    out = frame_all(data)
    if expected.stream == "need":
        assert out == [Need.DATA]
    elif expected.stream == "framing":
        [error] = out
        assert isinstance(error, FramingError)
        assert error.status_hint == 400
    else:
        message, need = out
        assert need is Need.DATA
        assert isinstance(message, bytes)
        with pytest.raises(SipParseError) as info:
            parse_message(message)
        assert expected.why in info.value.message


def test_clerr_completes_when_the_rest_of_the_body_arrives() -> None:
    data = load("clerr.dat")
    framer = StreamFramer()
    framer.receive_data(data)
    assert framer.next_message() is Need.DATA
    header_len = data.index(b"\r\n\r\n") + 4
    framer.receive_data(b"x" * (header_len + 9999 - len(data)))
    message = framer.next_message()
    assert isinstance(message, bytes)
    assert len(message) == header_len + 9999
    assert len(parse_message(message).body) == 9999


def test_baddn_display_name_is_rejected_with_the_blank_line_restored() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(load("baddn.dat") + b"\r\n")
    assert info.value.status_hint == 400
    assert "display name" in info.value.message


def test_conformance_summary(capsys: pytest.CaptureFixture[str]) -> None:
    valid_ok = 0
    for name in VALID:
        try:
            message = parse_message(load(name))
        except SipParseError:
            continue
        valid_ok += parse_message(serialize(message)) == message
    invalid_ok = 0
    for name in INVALID_FILES:
        expected = INVALID[name]
        try:
            parse_message(load(name))
        except SipParseError as exc:
            invalid_ok += expected.why in exc.message and (
                expected.status is None or exc.status_hint == expected.status
            )
    line = (
        f"RFC 4475: {valid_ok}/{len(VALID)} valid parsed and round-tripped, "
        f"{invalid_ok}/{len(INVALID_FILES)} invalid rejected as recommended"
    )
    with capsys.disabled():
        print(f"\n{line}")
    assert (valid_ok, invalid_ok) == (len(VALID), len(INVALID_FILES)), line
