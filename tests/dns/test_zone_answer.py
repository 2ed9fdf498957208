"""ZoneSet.lookup and ZoneSet.answer: what an authoritative server says, checked with dnspython."""

from __future__ import annotations

import struct
from typing import Literal

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.dns.zone import ZoneSet, parse_zone_text

Transport = Literal["udp", "tcp"]

ZONE = """\
$ORIGIN steven.lab.
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 30
        NS ns
ns      A 127.0.0.1
vcse    A 127.0.0.2
vcse    AAAA ::2
alias   CNAME vcse
outside CNAME www.example.com.
deep    CNAME alias
dangling CNAME missing
loop1   CNAME loop2
loop2   CNAME loop1
_sipfederationtls._tcp SRV 0 0 5061 vcse
"""
# No SOA: served from synthetic zones acano.partner.lab and cms.lab.
PASTED = """\
_sipfederationtls._tcp.acano.partner.lab. 300 IN SRV 0 0 5061 vcse.acano.partner.lab.
vcse.acano.partner.lab. 300 IN A 127.0.0.3
host.sub.cms.lab. 300 IN A 127.0.0.4
down.lab. 300 IN A 127.0.0.5
"""
BIG = "".join(f'big.steven.lab. 300 TXT "{"x" * 60} {i}"\n' for i in range(12))


def make_zones() -> ZoneSet:
    records = parse_zone_text(ZONE, source="steven.lab.zone")
    records += parse_zone_text(PASTED + BIG, source="<lab records>")
    return ZoneSet.from_records(
        records, silent=["quiet.steven.lab"], servfail=["broken.steven.lab.", "down.lab"]
    )


ZONES = make_zones()

LOOKUPS = [
    # (name, type, outcome, answer (name type rdata), authority owner or None, additional names)
    (
        "_sipfederationtls._tcp.steven.lab.",
        "SRV",
        "ok",
        ["_sipfederationtls._tcp.steven.lab. SRV 0 0 5061 vcse.steven.lab."],
        None,
        ["vcse.steven.lab. A", "vcse.steven.lab. AAAA"],
    ),
    ("VCSE.Steven.LAB", "a", "ok", ["vcse.steven.lab. A 127.0.0.2"], None, []),
    ("vcse.steven.lab.", "MX", "nodata", [], "steven.lab.", []),
    ("_tcp.steven.lab.", "SRV", "nodata", [], "steven.lab.", []),  # empty non-terminal
    ("nobody.steven.lab.", "A", "nxdomain", [], "steven.lab.", []),
    ("www.example.com.", "A", "refused", [], None, []),
    (
        "deep.steven.lab.",
        "A",
        "ok",
        [
            "deep.steven.lab. CNAME alias.steven.lab.",
            "alias.steven.lab. CNAME vcse.steven.lab.",
            "vcse.steven.lab. A 127.0.0.2",
        ],
        None,
        [],
    ),
    ("alias.steven.lab.", "CNAME", "ok", ["alias.steven.lab. CNAME vcse.steven.lab."], None, []),
    ("outside.steven.lab.", "A", "ok", ["outside.steven.lab. CNAME www.example.com."], None, []),
    (
        "dangling.steven.lab.",
        "A",
        "nxdomain",
        ["dangling.steven.lab. CNAME missing.steven.lab."],
        "steven.lab.",
        [],
    ),
    (
        "loop1.steven.lab.",
        "A",
        "ok",
        ["loop1.steven.lab. CNAME loop2.steven.lab.", "loop2.steven.lab. CNAME loop1.steven.lab."],
        None,
        [],
    ),
    (
        "vcse.steven.lab.",
        "ANY",
        "ok",
        ["vcse.steven.lab. A 127.0.0.2", "vcse.steven.lab. AAAA ::2"],
        None,
        [],
    ),
    (
        "_sipfederationtls._tcp.acano.partner.lab.",
        "SRV",
        "ok",
        ["_sipfederationtls._tcp.acano.partner.lab. SRV 0 0 5061 vcse.acano.partner.lab."],
        None,
        ["vcse.acano.partner.lab. A"],
    ),
    ("x.acano.partner.lab.", "A", "nxdomain", [], "acano.partner.lab.", []),
    (
        "acano.partner.lab.",
        "SOA",
        "ok",
        [
            "acano.partner.lab. SOA ns.acano.partner.lab."
            " hostmaster.acano.partner.lab. 1 3600 600 86400 60"
        ],
        None,
        [],
    ),
    ("other.cms.lab.", "A", "nxdomain", [], "cms.lab.", []),
    ("quiet.steven.lab.", "A", "silent", [], None, []),
    ("a.quiet.steven.lab.", "SRV", "silent", [], None, []),
    ("broken.steven.lab.", "A", "servfail", [], None, []),
    ("down.lab.", "A", "servfail", [], None, []),
    ("vcse.steven.lab.", "TYPE65", "nodata", [], "steven.lab.", []),
]


@pytest.mark.parametrize(
    ("name", "rtype", "outcome", "answer", "authority", "additional"),
    LOOKUPS,
    ids=[f"{c[0]}/{c[1]}->{c[2]}" for c in LOOKUPS],
)
def test_lookup(
    name: str,
    rtype: str,
    outcome: str,
    answer: list[str],
    authority: str | None,
    additional: list[str],
) -> None:
    result = ZONES.lookup(name, rtype)
    assert result.outcome == outcome
    assert [f"{r.name} {r.rtype} {r.rdata}" for r in result.records] == answer
    assert [r.name for r in result.authority] == ([authority] if authority else [])
    assert all(r.rtype == "SOA" for r in result.authority)
    assert [f"{r.name} {r.rtype}" for r in result.additional] == additional


def test_negative_soa_ttl_is_the_lesser_of_ttl_and_minimum() -> None:
    # RFC 2308 §3: SOA TTL 300, MINIMUM 30 -> 30.
    (soa,) = ZONES.lookup("nobody.steven.lab.", "A").authority
    assert soa.ttl == 30


def test_synthetic_apexes() -> None:
    assert set(ZONES.apexes) == {
        "steven.lab.",
        "acano.partner.lab.",
        "partner.lab.",
        "cms.lab.",
        "down.lab.",
    }


def test_synthetic_apexes_of_the_design_example() -> None:
    # DESIGN.md's lab: the SRV's domain and the host's parent each become a zone.
    text = (
        "_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.\n"
        "vcse.steven.lab. 300 IN A 127.0.0.1\n"
    )
    zones = ZoneSet.from_records(parse_zone_text(text, source="lab.toml"))
    assert zones.apexes == ("acano.steven.lab.", "steven.lab.")
    # The closest enclosing zone answers, with its own synthetic SOA.
    (soa,) = zones.lookup("nobody.acano.steven.lab.", "A").authority
    assert soa.rdata == "ns.acano.steven.lab. hostmaster.acano.steven.lab. 1 3600 600 86400 60"
    assert zones.lookup("vcse.steven.lab.", "A").outcome == "ok"
    assert zones.lookup("steven.lab.", "A").outcome == "nodata"
    assert zones.lookup("lab.", "A").outcome == "refused"


# ---------------------------------------------------------------------------------------------
# answer(): bytes in, bytes out, read back with dnspython (an independent implementation)


def ask(
    name: str,
    rtype: str,
    *,
    transport: Transport = "udp",
    payload: int | None = None,
    zones: ZoneSet = ZONES,
) -> dns.message.Message:
    query = dns.message.make_query(
        name, rtype, use_edns=0 if payload is not None else False, payload=payload or 1232
    )
    query.id = 0x1234
    wire = zones.answer(query.to_wire(), transport=transport)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == 0x1234
    assert reply.flags & dns.flags.QR
    assert not reply.flags & dns.flags.RA  # authoritative only, never recursive
    assert reply.question == query.question
    return reply


def texts(section: list[dns.rrset.RRset]) -> list[str]:
    return sorted(str(rrset) for rrset in section)


ANSWERS = [
    # (name, type, rcode, aa, answer rrset texts, authority types, additional names)
    (
        "_sipfederationtls._tcp.steven.lab.",
        "SRV",
        "NOERROR",
        True,
        ["_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab."],
        [],
        ["vcse.steven.lab."],
    ),
    ("vcse.steven.lab.", "TXT", "NOERROR", True, [], ["SOA"], []),
    ("nobody.steven.lab.", "A", "NXDOMAIN", True, [], ["SOA"], []),
    ("www.example.com.", "A", "REFUSED", False, [], [], []),
    (
        "alias.steven.lab.",
        "A",
        "NOERROR",
        True,
        [
            "alias.steven.lab. 300 IN CNAME vcse.steven.lab.",
            "vcse.steven.lab. 300 IN A 127.0.0.2",
        ],
        [],
        [],
    ),
    ("broken.steven.lab.", "A", "SERVFAIL", False, [], [], []),
    ("vcse.steven.lab.", "AXFR", "REFUSED", False, [], [], []),
]


@pytest.mark.parametrize(
    ("name", "rtype", "rcode", "aa", "answer", "authority", "additional"),
    ANSWERS,
    ids=[f"{a[0]}/{a[1]}->{a[2]}" for a in ANSWERS],
)
def test_answer(
    name: str,
    rtype: str,
    rcode: str,
    aa: bool,
    answer: list[str],
    authority: list[str],
    additional: list[str],
) -> None:
    reply = ask(name, rtype)
    assert dns.rcode.to_text(reply.rcode()) == rcode
    assert bool(reply.flags & dns.flags.AA) is aa
    assert texts(reply.answer) == answer
    assert [dns.rdatatype.to_text(r.rdtype) for r in reply.authority] == authority
    assert sorted({r.name.to_text() for r in reply.additional}) == additional


def test_answer_echoes_rd_and_the_question_case() -> None:
    query = dns.message.make_query("VcSe.StEvEn.LaB.", "A")
    query.flags &= ~dns.flags.RD
    reply = dns.message.from_wire(ZONES.answer(query.to_wire(), transport="udp") or b"")
    assert not reply.flags & dns.flags.RD
    assert reply.question[0].name.to_text() == "VcSe.StEvEn.LaB."
    query.flags |= dns.flags.RD
    reply = dns.message.from_wire(ZONES.answer(query.to_wire(), transport="udp") or b"")
    assert reply.flags & dns.flags.RD


@pytest.mark.parametrize(
    ("transport", "payload", "truncated"),
    [
        ("udp", None, True),  # 12 x 70-byte TXT > 512 without EDNS
        ("udp", 100, True),  # a payload below 512 is read as 512 (RFC 6891 §6.2.5)
        ("udp", 4096, False),
        ("udp", 65000, False),  # clamped to 4096, still enough
        ("tcp", None, False),
    ],
)
def test_truncation(transport: Transport, payload: int | None, truncated: bool) -> None:
    reply = ask("big.steven.lab.", "TXT", transport=transport, payload=payload)
    assert bool(reply.flags & dns.flags.TC) is truncated
    assert len(reply.answer[0] if reply.answer else []) == (0 if truncated else 12)
    assert (reply.edns >= 0) is (payload is not None)  # an OPT in, an OPT out


def test_additional_is_dropped_before_truncating() -> None:
    # 30 SRV records to targets we hold: the answer fits 1232 bytes, not with every AAAA too.
    lines = [f"_sip._tcp.many.lab. 60 SRV 0 0 5061 h{i:02d}.many.lab." for i in range(30)]
    lines += [f"h{i:02d}.many.lab. 60 AAAA 2001:db8::{i + 1}" for i in range(30)]
    zones = ZoneSet.from_records(parse_zone_text("\n".join(lines), source="t"))
    reply = ask("_sip._tcp.many.lab.", "SRV", payload=1232, zones=zones)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer[0]) == 30
    assert reply.additional == []


def test_silent_name_gets_no_reply() -> None:
    query = dns.message.make_query("quiet.steven.lab.", "A")
    assert ZONES.answer(query.to_wire(), transport="udp") is None
    assert ZONES.answer(query.to_wire(), transport="tcp") is None


def header(packet: bytes) -> tuple[int, int, int]:
    qid, flags, qdcount = struct.unpack_from("!HHH", packet)
    return qid, flags, qdcount


def good_query() -> bytes:
    query = dns.message.make_query("vcse.steven.lab.", "A")
    query.id = 0xBEEF
    return query.to_wire()


def test_truncated_query_gets_formerr_with_its_id() -> None:
    wire = ZONES.answer(good_query()[:15], transport="udp")
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == 0xBEEF
    assert reply.rcode() == dns.rcode.FORMERR


def test_name_longer_than_255_octets_gets_formerr() -> None:
    # Four 63-octet labels are 257 octets on the wire: legal labels, an illegal name.
    name = b"".join(b"\x3f" + b"x" * 63 for _ in range(4)) + b"\x00"
    packet = struct.pack("!HHHHHH", 77, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    reply = ZONES.answer(packet, transport="udp")
    assert reply is not None
    assert header(reply)[0] == 77
    assert header(reply)[1] & 0xF == dns.rcode.FORMERR


def test_two_questions_get_formerr() -> None:
    wire = bytearray(good_query())
    wire[4:6] = b"\x00\x02"
    reply = ZONES.answer(bytes(wire), transport="udp")
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR


def test_zero_questions_get_formerr() -> None:
    wire = good_query()[:12]
    wire = wire[:4] + b"\x00\x00" + wire[6:]
    reply = ZONES.answer(wire, transport="udp")
    assert reply is not None
    assert header(reply)[1] & 0xF == dns.rcode.FORMERR


def test_other_opcode_gets_notimp() -> None:
    query = dns.message.make_query("steven.lab.", "SOA")
    query.set_opcode(dns.opcode.NOTIFY)
    reply = ZONES.answer(query.to_wire(), transport="udp")
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NOTIMP


def test_edns_version_1_gets_badvers() -> None:
    query = dns.message.make_query("vcse.steven.lab.", "A", use_edns=1)
    reply = dns.message.from_wire(ZONES.answer(query.to_wire(), transport="udp") or b"")
    assert reply.rcode() == dns.rcode.BADVERS


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x12",
        b"\x00" * 11,
        bytes(dns.message.make_response(dns.message.make_query("a.", "A")).to_wire()),
    ],
    ids=["empty", "one byte", "eleven bytes", "a response"],
)
def test_short_packets_and_responses_are_dropped(packet: bytes) -> None:
    assert ZONES.answer(packet, transport="udp") is None


def assert_no_internal_error(packet: bytes, reply: bytes | None) -> None:
    """The contract: nothing raises, and SERVFAIL (our bug path) never appears for junk."""
    if reply is None:
        return
    assert len(reply) >= 12
    assert header(reply)[0] == header(packet)[0]  # the id is always echoed
    assert header(reply)[1] & 0x8000  # a response
    assert header(reply)[1] & 0xF != dns.rcode.SERVFAIL  # this zone set stages none... here
    dns.message.from_wire(reply)  # and dnspython can read what we sent


FUZZ_ZONES = ZoneSet.from_records(
    parse_zone_text(ZONE, source="z") + parse_zone_text(PASTED + BIG, source="p")
)


@given(st.binary(max_size=600))
@settings(max_examples=400)
def test_answer_never_raises_on_arbitrary_bytes(packet: bytes) -> None:
    for transport in ("udp", "tcp"):
        assert_no_internal_error(packet, FUZZ_ZONES.answer(packet, transport=transport))


SEED_QUERIES = [
    dns.message.make_query(name, rtype, use_edns=edns).to_wire()
    for name, rtype in [
        ("_sipfederationtls._tcp.steven.lab.", "SRV"),
        ("alias.steven.lab.", "A"),
        ("big.steven.lab.", "TXT"),
        ("nobody.example.com.", "AAAA"),
        (f"{'a' * 63}.{'b' * 63}.{'c' * 63}.{'d' * 61}.", "A"),  # 255 octets: the longest name
    ]
    for edns in (False, 0)
]


@given(
    st.sampled_from(SEED_QUERIES),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "delete", "insert"]), st.integers(0, 200), st.integers(0, 255)
        ),
        min_size=1,
        max_size=6,
    ),
)
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_answer_never_raises_on_mutated_queries(
    seed: bytes, mutations: list[tuple[str, int, int]]
) -> None:
    # dnslib's own fuzz.py idea: delete, add or change random bytes of a valid packet.
    packet = bytearray(seed)
    for kind, position, value in mutations:
        at = position % (len(packet) + 1)
        if kind == "flip" and at < len(packet):
            packet[at] = value
        elif kind == "delete" and at < len(packet):
            del packet[at]
        elif kind == "insert":
            packet.insert(at, value)
    wire = bytes(packet)
    assert_no_internal_error(wire, FUZZ_ZONES.answer(wire, transport="udp"))


def test_a_label_over_63_octets_is_formerr_not_servfail() -> None:
    """Found by the mutation test: deleting a label's length byte can splice labels
    into one of 64+ octets, which dnslib reads but cannot write back (RFC 1035 §2.3.4)."""
    seed = (
        b"%\xea\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00?"
        + b"a" * 63
        + b"?"
        + b"b" * 63
        + b"?"
        + b"c" * 63
        + b"="
        + b"d" * 61
        + b"\x00\x00\x01\x00\x01"
    )
    packet = bytearray(seed)
    packet[176] = 0
    del packet[13]
    reply = FUZZ_ZONES.answer(bytes(packet), transport="udp")
    assert reply is not None
    assert reply[3] & 0xF == dns.rcode.FORMERR
