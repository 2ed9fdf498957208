"""DNS wire format through dnslib, behind small typed functions. Pure.

dnslib has no type hints and raises a mix of exception types on bad packets,
so everything that touches it lives here and converts at the edge: in come
bytes and plain values, out go bytes and frozen dataclasses. Only the codec
is used (``DNSRecord.parse``/``pack`` and the RD classes); dnslib's threaded
server and ``ZoneResolver`` are not (the latter answers NXDOMAIN where
NODATA is right).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dnslib import (
    AAAA,
    CNAME,
    EDNS0,
    MX,
    NAPTR,
    NS,
    PTR,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSHeader,
    DNSLabel,
    DNSQuestion,
    DNSRecord,
)

from simulator.dns.text import (
    decode_character_string,
    encode_character_string,
    name_from_labels,
    split_rdata,
)

__all__ = [
    "RCODE",
    "TYPE_CODES",
    "Query",
    "RecordLike",
    "Reply",
    "WireRecord",
    "build_query",
    "build_reply",
    "header_reply",
    "parse_query",
    "parse_reply",
    "rr_from_record",
    "type_name",
]

# RFC 1035 §4.1.1 and RFC 6891 §9 (BADVERS is 16: upper 8 bits live in the OPT TTL).
RCODE: dict[str, int] = {
    "NOERROR": 0,
    "FORMERR": 1,
    "SERVFAIL": 2,
    "NXDOMAIN": 3,
    "NOTIMP": 4,
    "REFUSED": 5,
    "BADVERS": 16,
}
# The types we serve, plus the meta-types a query may carry (RFC 1035 §3.2.3, RFC 6891).
TYPE_CODES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "NAPTR": 35,
    "OPT": 41,
    "IXFR": 251,
    "AXFR": 252,
    "ANY": 255,
}
_TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}
CLASS_IN = 1
CLASS_ANY = 255
HEADER_LEN = 12
MAX_WIRE_NAME = 255
MAX_LABEL_OCTETS = 63
_QR = 0x8000
_OPCODE_MASK = 0x7800
_TC = 0x0200
_RD = 0x0100
_CD = 0x0010


def type_name(code: int) -> str:
    """Name an RR type as zone files do: "SRV", or "TYPE65" for ones we do not know (RFC 3597)."""
    return _TYPE_NAMES.get(code, f"TYPE{code}")


class RecordLike(Protocol):
    """What build_reply needs of a record (zone.Record and WireRecord both fit)."""

    @property
    def name(self) -> str: ...
    @property
    def rtype(self) -> str: ...
    @property
    def ttl(self) -> int: ...
    @property
    def rdata(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WireRecord:
    """A record read off the wire; rdata in the same canonical text as zone.Record."""

    name: str
    rtype: str
    ttl: int
    rdata: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """The parts of a parsed query that the answer depends on."""

    id: int
    flags: int
    qlabels: tuple[bytes, ...]
    qname: str
    qtype: int
    qclass: int
    edns_payload: int | None
    edns_version: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The parts of a parsed response that a stub resolver needs."""

    id: int
    qr: bool
    tc: bool
    aa: bool
    rcode: int
    question: tuple[str, int, int] | None
    answer: tuple[WireRecord, ...]
    authority: tuple[WireRecord, ...]


def _label(name: str) -> object:
    """Build a dnslib label from an absolute name without its IDNA or escape handling."""
    body = name.rstrip(".")
    return DNSLabel(tuple(part.encode("ascii") for part in body.split(".")) if body else ())


def _labels_of(label: object) -> tuple[bytes, ...]:
    return tuple(bytes(part) for part in getattr(label, "label", ()))


def _name_of(label: object) -> str:
    return name_from_labels(_labels_of(label))


def rr_from_record(record: RecordLike, *, ttl: int | None = None) -> object:
    """Encode one record (canonical rdata text) as a dnslib RR ready to pack.

    Raises:
        ValueError: the rdata does not fit its type (zone.py only builds good ones).
    """
    words = split_rdata(record.rdata)
    texts = [w.text for w in words]
    rtype = record.rtype
    try:
        if rtype == "A":
            rd = A(str(ipaddress.IPv4Address(texts[0])))
        elif rtype == "AAAA":
            rd = AAAA(list(ipaddress.IPv6Address(texts[0]).packed))
        elif rtype in ("NS", "CNAME", "PTR"):
            rd = {"NS": NS, "CNAME": CNAME, "PTR": PTR}[rtype](_label(texts[0]))
        elif rtype == "MX":
            rd = MX(_label(texts[1]), int(texts[0]))
        elif rtype == "SRV":
            rd = SRV(int(texts[0]), int(texts[1]), int(texts[2]), _label(texts[3]))
        elif rtype == "SOA":
            rd = SOA(_label(texts[0]), _label(texts[1]), [int(t) for t in texts[2:7]])
        elif rtype == "TXT":
            rd = TXT([decode_character_string(w.text) for w in words])
        elif rtype == "NAPTR":
            order, pref = int(texts[0]), int(texts[1])
            strings = [decode_character_string(t) for t in texts[2:5]]
            rd = NAPTR(order, pref, *strings, _label(texts[5]))
        else:
            raise ValueError(f"type {rtype} is not served")
    except (IndexError, ValueError, UnicodeError) as exc:
        raise ValueError(f"bad {rtype} rdata {record.rdata!r}: {exc}") from exc
    code = TYPE_CODES[rtype]
    return RR(_label(record.name), code, CLASS_IN, record.ttl if ttl is None else ttl, rd)


def header_reply(data: bytes, rcode: str) -> bytes:
    """A header-only reply (no sections) built from the first 12 bytes of a query.

    Used for FORMERR and NOTIMP, where the rest of the query cannot be trusted
    (RFC 1035 §4.1.1: the id is copied so the client can match it).
    """
    qid, flags = struct.unpack_from("!HH", data)
    out_flags = _QR | (flags & (_OPCODE_MASK | _RD)) | (RCODE[rcode] & 0xF)
    return struct.pack("!HHHHHH", qid, out_flags, 0, 0, 0, 0)


def parse_query(data: bytes) -> Query | bytes | None:
    """Parse a query, or say how to refuse it.

    Returns:
        A Query to answer; bytes, a ready reply (FORMERR, NOTIMP) when the
        packet is not a query we can answer; None when it must be dropped
        (shorter than a header, or a response: answering responses invites loops).
    """
    if len(data) < HEADER_LEN:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", data)
    if flags & _QR:
        return None
    if flags & _OPCODE_MASK:
        return header_reply(data, "NOTIMP")  # RFC 1035 §4.1.1: only QUERY is implemented
    if qdcount != 1:
        return header_reply(data, "FORMERR")
    try:
        request = DNSRecord.parse(data)
        question = request.questions[0]
        qlabels = _labels_of(question.qname)
        qtype, qclass = int(question.qtype), int(question.qclass)
        opts = [rr for rr in request.ar if int(rr.rtype) == TYPE_CODES["OPT"]]
        payload = [int(rr.rclass) for rr in opts]
        version = [(int(rr.ttl) >> 16) & 0xFF for rr in opts]
    except Exception:  # dnslib raises DNSError, BufferError, IndexError, ... on junk
        return header_reply(data, "FORMERR")
    if len(opts) > 1 or qtype == TYPE_CODES["OPT"]:
        return header_reply(data, "FORMERR")  # RFC 6891 §6.1.1 / §6.1.2
    if sum(len(label) + 1 for label in qlabels) + 1 > MAX_WIRE_NAME:
        return header_reply(data, "FORMERR")  # RFC 1035 §2.3.4: 255 octets at most
    if any(len(label) > MAX_LABEL_OCTETS for label in qlabels):
        # RFC 1035 §2.3.4: 63 octets per label. dnslib decodes a longer one (a
        # compression pointer can splice labels together) but cannot echo it back.
        return header_reply(data, "FORMERR")
    return Query(
        id=qid,
        flags=flags,
        qlabels=qlabels,
        qname=name_from_labels(qlabels),
        qtype=qtype,
        qclass=qclass,
        edns_payload=payload[0] if payload else None,
        edns_version=version[0] if version else None,
    )


# What our OPT record advertises (DNS Flag Day 2020: 1232 avoids IP fragmentation).
ADVERTISED_PAYLOAD = 1232


def build_reply(
    query: Query,
    *,
    rcode: str,
    aa: bool,
    answer: Sequence[RecordLike] = (),
    authority: Sequence[RecordLike] = (),
    additional: Sequence[RecordLike] = (),
    limit: int,
) -> bytes:
    """Pack a reply to ``query`` that fits in ``limit`` bytes.

    The question is echoed as sent (case included, for 0x20 clients), RD and CD
    are copied (RFC 1035 §4.1.1, RFC 6840 §5.9), RA is 0 because we never
    recurse. When the reply does not fit, the additional section goes first
    (without TC, RFC 2181 §9); if it still does not fit, answer and authority
    are dropped and TC is set so the client retries over TCP (RFC 1035 §4.2.1).
    An OPT record is echoed whenever the query had one (RFC 6891 §6.1.1).
    """
    ext_rcode = RCODE[rcode] >> 4
    header = DNSHeader(
        id=query.id,
        bitmap=0,
        qr=1,
        aa=int(aa),
        rd=int(bool(query.flags & _RD)),
        cd=int(bool(query.flags & _CD)),
        ra=0,
        rcode=RCODE[rcode] & 0xF,
    )
    question = DNSQuestion(DNSLabel(query.qlabels), query.qtype, query.qclass)
    opt = (
        [EDNS0(udp_len=ADVERTISED_PAYLOAD, ext_rcode=ext_rcode)]
        if query.edns_payload is not None
        else []
    )

    def pack(sections: tuple[Sequence[RecordLike], ...], tc: bool) -> bytes:
        reply = DNSRecord(header, q=question)
        reply.header.tc = int(tc)
        reply.rr = [rr_from_record(r) for r in sections[0]]
        reply.auth = [rr_from_record(r) for r in sections[1]]
        reply.ar = [rr_from_record(r) for r in sections[2]] + opt
        return bytes(reply.pack())

    wire = pack((answer, authority, additional), tc=False)
    if len(wire) <= limit:
        return wire
    wire = pack((answer, authority, ()), tc=False)
    if len(wire) <= limit:
        return wire
    return pack(((), (), ()), tc=True)


def build_query(name: str, rtype: str, *, qid: int, edns_payload: int | None) -> bytes:
    """Pack a recursion-desired query for ``name``/``rtype`` (a checked absolute name)."""
    query = DNSRecord(
        DNSHeader(id=qid, bitmap=0, rd=1), q=DNSQuestion(_label(name), TYPE_CODES[rtype], CLASS_IN)
    )
    if edns_payload is not None:
        query.add_ar(EDNS0(udp_len=edns_payload))
    return bytes(query.pack())


def _rdata_text(rtype: str, rd: object) -> str:
    """Spell dnslib rdata in our canonical zone text."""
    if rtype == "A":
        return str(ipaddress.IPv4Address(bytes(getattr(rd, "data", b""))))
    if rtype == "AAAA":
        return str(ipaddress.IPv6Address(bytes(getattr(rd, "data", b""))))
    if rtype in ("NS", "CNAME", "PTR"):
        return _name_of(getattr(rd, "label", None))
    if rtype == "MX":
        return f"{int(getattr(rd, 'preference', 0))} {_name_of(getattr(rd, 'label', None))}"
    if rtype == "SRV":
        numbers = (int(getattr(rd, field, 0)) for field in ("priority", "weight", "port"))
        return " ".join([*map(str, numbers), _name_of(getattr(rd, "target", None))])
    if rtype == "SOA":
        times = " ".join(str(int(t)) for t in getattr(rd, "times", ()))
        mname, rname = getattr(rd, "mname", None), getattr(rd, "rname", None)
        return f"{_name_of(mname)} {_name_of(rname)} {times}"
    if rtype == "TXT":
        return " ".join(encode_character_string(bytes(s)) for s in getattr(rd, "data", ()))
    return str(rd)


def _wire_records(rrs: Any) -> tuple[WireRecord, ...]:  # dnslib's list of RR, untyped
    out = []
    for rr in rrs:
        code = int(rr.rtype)
        if code == TYPE_CODES["OPT"]:
            continue
        rtype = type_name(code)
        out.append(
            WireRecord(
                name=_name_of(rr.rname),
                rtype=rtype,
                ttl=int(rr.ttl),
                rdata=_rdata_text(rtype, rr.rdata),
            )
        )
    return tuple(out)


def parse_reply(data: bytes) -> Reply | None:
    """Parse a response into plain values; None when it is not a well-formed DNS message."""
    try:
        message = DNSRecord.parse(data)
        header = message.header
        question = None
        if message.questions:
            q = message.questions[0]
            question = (_name_of(q.qname), int(q.qtype), int(q.qclass))
        opts = [rr for rr in message.ar if int(rr.rtype) == TYPE_CODES["OPT"]]
        ext = (int(opts[0].ttl) >> 24) << 4 if opts else 0
        return Reply(
            id=int(header.id),
            qr=bool(header.qr),
            tc=bool(header.tc),
            aa=bool(header.aa),
            rcode=ext | int(header.rcode),
            question=question,
            answer=_wire_records(message.rr),
            authority=_wire_records(message.auth),
        )
    except Exception:  # dnslib raises several unrelated types on junk; a bad reply is just ignored
        return None
