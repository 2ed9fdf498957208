"""The lab's DNS data: master-file parsing, the zone model and the pure answer seam. No I/O.

Users paste records the way ``dig`` prints them, or point at RFC 1035 master
files; :func:`parse_zone_text` reads both and says file:line when a line is
wrong. :class:`ZoneSet` holds every record of a lab and answers queries as an
authoritative server would: NOERROR with data, NODATA (NOERROR, no answer, SOA
in authority) when the name exists without that type, NXDOMAIN when it does
not exist, REFUSED outside our zones. :meth:`ZoneSet.answer` is the one seam
between bytes and that logic (the shape of dnspython's nanonameserver
``handle``); the trio server only moves datagrams.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from simulator.dns.text import (
    TextError,
    Token,
    decode_character_string,
    encode_character_string,
    name_problem,
    tokenize_line,
)
from simulator.dns.wire import (
    CLASS_ANY,
    CLASS_IN,
    HEADER_LEN,
    TYPE_CODES,
    build_reply,
    header_reply,
    parse_query,
    rr_from_record,
    type_name,
)
from simulator.errors import FedsimError

__all__ = [
    "SUPPORTED_TYPES",
    "Lookup",
    "Outcome",
    "Record",
    "ZoneError",
    "ZoneSet",
    "load_zone_file",
    "parse_zone_text",
]

SUPPORTED_TYPES = ("SOA", "NS", "A", "AAAA", "CNAME", "SRV", "TXT", "NAPTR", "PTR", "MX")
_TTL_MAX = 2**31 - 1  # RFC 2181 §8
_U16_MAX = 0xFFFF
_U32_MAX = 2**32 - 1
# RFC 1035 §4.2.1: without EDNS a UDP reply is at most 512 bytes. RFC 6891 lets the client
# offer more; we honour up to 4096 (BIND's default ceiling) and never less than 512.
UDP_PLAIN_LIMIT = 512
UDP_EDNS_CEILING = 4096
TCP_LIMIT = 0xFFFF  # the two-byte length prefix (RFC 1035 §4.2.2)
# Stop chasing CNAMEs after this many links (a loop in a lab zone must not hang the answer).
MAX_CNAME_CHAIN = 8
# Negative answers carry min(SOA TTL, SOA minimum) (RFC 2308 §3); a synthetic SOA's minimum:
SYNTHETIC_SOA = "ns.{apex} hostmaster.{apex} 1 3600 600 86400 60"
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TTL_WITH_UNITS = re.compile(r"(?:[0-9]+[smhdw])+")
_CLASSES = ("IN", "CH", "HS", "CS")
_RR_TYPE_LIKE = re.compile(r"[A-Z][A-Z0-9]*")
_FIX_NAME = "write letters, digits, '-' or '_' between dots, e.g. sip.example.com."

Outcome = Literal["ok", "nodata", "nxdomain", "refused", "servfail", "silent"]


class ZoneError(FedsimError):
    """A zone file or a lab's ``records`` has a line we cannot serve.

    The message reads ``path:line: bad SRV record '<text>': <what> (fix: <how>)``.

    Attributes:
        source: the file (or "<lab records>") the line came from.
        line: its line number, or None when the whole file is at fault.
        text: the offending line (or value), as written.
    """

    def __init__(
        self,
        what: str,
        *,
        source: str,
        line: int | None,
        text: str,
        subject: str = "bad line",
        fix: str,
    ) -> None:
        self.source = source
        self.line = line
        self.text = text
        self.what = what
        self.fix = fix
        where = source if line is None else f"{source}:{line}"
        shown = text if len(text) <= 120 else text[:117] + "..."
        super().__init__(f"{where}: {subject} '{shown}': {what} (fix: {fix})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One resource record as we serve it.

    Attributes:
        name: absolute, lower-case owner name with a trailing dot.
        rtype: "SRV", "A", ... (one of SUPPORTED_TYPES).
        ttl: seconds, 0..2**31-1 (RFC 2181 §8).
        rdata: canonical zone-format rdata text (absolute lower-case names,
            quoted character-strings).
        source: "path:line" where the record was written.
    """

    name: str
    rtype: str
    ttl: int
    rdata: str
    source: str

    def __post_init__(self) -> None:
        if self.name != self.name.lower() or name_problem(self.name) is not None:
            raise ValueError(f"record name must be absolute and lower-case, not {self.name!r}")
        if self.rtype not in SUPPORTED_TYPES:
            raise ValueError(f"record type must be one of {SUPPORTED_TYPES}, not {self.rtype!r}")
        if not 0 <= self.ttl <= _TTL_MAX:
            raise ValueError(f"TTL must be 0..{_TTL_MAX}, not {self.ttl!r}")
        if not self.rdata:
            raise ValueError("rdata must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """What an authoritative server holds for one question.

    Attributes:
        outcome: "ok" (answer has data), "nodata" (the name exists, not that
            type), "nxdomain", "refused" (not our zone), "servfail" or "silent"
            (staged failures).
        records: the answer section: the CNAME chain inside our zones, then data.
        authority: the zone's SOA for nodata and nxdomain (RFC 2308 §2).
        additional: A/AAAA records of SRV targets we hold (RFC 2782 "Usage rules").
    """

    outcome: Outcome
    records: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


# --------------------------------------------------------------------------------------------
# Parsing


class _Bad(Exception):
    """An rdata or field problem; the caller adds where it happened."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def _parse_ttl(text: str, *, limit: int = _TTL_MAX) -> int | None:
    """Read "300" or BIND's "1h30m"; None when ``text`` is not a TTL at all."""
    lowered = text.lower()
    if text.isascii() and text.isdigit():
        value = int(text)
    elif _TTL_WITH_UNITS.fullmatch(lowered):
        value = sum(int(n) * _TTL_UNITS[u] for n, u in re.findall(r"([0-9]+)([smhdw])", lowered))
    else:
        return None
    if value > limit:
        raise _Bad(f"{text} is above {limit}", f"use a value from 0 to {limit}")
    return value


def _absolute(text: str, origin: str | None) -> str:
    """Resolve a zone-file name against $ORIGIN (RFC 1035 §5.1) and check it."""
    if text == "@":
        if origin is None:
            raise _Bad("'@' needs an origin", "add a $ORIGIN line above it, or write the name")
        name = origin
    elif text.endswith("."):
        name = text.lower()
    elif origin is None:
        raise _Bad(
            f"relative name '{text}' and no $ORIGIN",
            f"end it with a dot ('{text}.') or add a $ORIGIN line above it",
        )
    else:
        name = text.lower() + "." + ("" if origin == "." else origin)
    if (problem := name_problem(name)) is not None:
        raise _Bad(problem, _FIX_NAME)
    return name


def _plain(words: list[Token], count: int, shape: str) -> list[str]:
    if len(words) != count:
        raise _Bad(f"expected {count} field(s), got {len(words)}", f"write it as {shape}")
    for word in words:
        if word.quoted:
            raise _Bad(f'"{word.text}" should not be quoted', f"write it as {shape}")
    return [w.text for w in words]


def _u16(text: str, field: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > _U16_MAX:
        raise _Bad(f"{field} '{text}' is not a number from 0 to 65535", f"give {field} as 0..65535")
    return int(text)


def _rd_a(words: list[Token], origin: str | None) -> str:
    (text,) = _plain(words, 1, "one IPv4 address, e.g. 127.0.0.1")
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise _Bad(f"'{text}' is not an IPv4 address", "write e.g. 127.0.0.1") from None


def _rd_aaaa(words: list[Token], origin: str | None) -> str:
    (text,) = _plain(words, 1, "one IPv6 address, e.g. ::1")
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise _Bad(f"'{text}' is not an IPv6 address", "write e.g. ::1") from None


def _rd_name(words: list[Token], origin: str | None) -> str:
    (text,) = _plain(words, 1, "one host name, e.g. sip.example.com.")
    return _absolute(text, origin)


def _rd_mx(words: list[Token], origin: str | None) -> str:
    pref, exchange = _plain(words, 2, "'preference exchange', e.g. 10 mail.example.com.")
    return f"{_u16(pref, 'preference')} {_absolute(exchange, origin)}"


def _rd_srv(words: list[Token], origin: str | None) -> str:
    shape = "'priority weight port target', e.g. 0 0 5061 sip.example.com."
    priority, weight, port, target = _plain(words, 4, shape)
    numbers = [_u16(priority, "priority"), _u16(weight, "weight"), _u16(port, "port")]
    # RFC 2782: the target is a domain name, "." meaning "no such service here".
    return " ".join([*map(str, numbers), "." if target == "." else _absolute(target, origin)])


def _rd_soa(words: list[Token], origin: str | None) -> str:
    shape = "'mname rname serial refresh retry expire minimum'"
    mname, rname, *times = _plain(words, 7, shape)
    values = []
    for field, text in zip(("serial", "refresh", "retry", "expire", "minimum"), times, strict=True):
        value = _parse_ttl(text, limit=_U32_MAX)
        if value is None:
            raise _Bad(f"{field} '{text}' is not a number", f"write {shape}")
        values.append(value)
    return " ".join([_absolute(mname, origin), _absolute(rname, origin), *map(str, values)])


def _string(word: Token) -> bytes:
    try:
        data = decode_character_string(word.text)
    except TextError as exc:
        raise _Bad(exc.what, exc.fix) from None
    if len(data) > 255:
        raise _Bad(
            f"a string is {len(data)} bytes long (255 at most)",
            'split it into several "quoted" strings',
        )
    return data


def _rd_txt(words: list[Token], origin: str | None) -> str:
    if not words:
        raise _Bad("no text", 'write one or more "quoted strings"')
    return " ".join(encode_character_string(_string(w)) for w in words)


def _rd_naptr(words: list[Token], origin: str | None) -> str:
    shape = '\'order preference "flags" "service" "regexp" replacement\''
    if len(words) != 6:
        raise _Bad(f"expected 6 fields, got {len(words)}", f"write it as {shape}")
    order, pref, replacement = _plain([words[0], words[1], words[5]], 3, shape)
    strings = [encode_character_string(_string(w)) for w in words[2:5]]
    numbers = [str(_u16(order, "order")), str(_u16(pref, "preference"))]
    name = "." if replacement == "." else _absolute(replacement, origin)
    return " ".join([*numbers, *strings, name])


_RDATA: dict[str, Callable[[list[Token], str | None], str]] = {
    "A": _rd_a,
    "AAAA": _rd_aaaa,
    "NS": _rd_name,
    "CNAME": _rd_name,
    "PTR": _rd_name,
    "MX": _rd_mx,
    "SRV": _rd_srv,
    "SOA": _rd_soa,
    "TXT": _rd_txt,
    "NAPTR": _rd_naptr,
}


@dataclass(slots=True)
class _Entry:
    """One logical zone entry: a line, or several joined by parentheses."""

    line: int
    indented: bool
    text: str
    tokens: list[Token]


def _entries(text: str, source: str, first_line: int) -> Iterable[_Entry]:
    """Join physical lines into entries (RFC 1035 §5.1: "( )" continue a line)."""
    pending: _Entry | None = None
    for number, raw in enumerate(text.splitlines(), start=first_line):
        try:
            tokens = tokenize_line(raw)
        except TextError as exc:
            raise ZoneError(
                exc.what, source=source, line=number, text=raw.strip(), fix=exc.fix
            ) from None
        if pending is None:
            if not tokens:
                continue
            pending = _Entry(number, raw[:1] in (" ", "\t"), raw.strip(), [])
        else:
            pending.text += " " + raw.strip()
        for token in tokens:
            pending.tokens.append(token)
        opened = sum(t.is_open for t in pending.tokens)
        closed = sum(t.is_close for t in pending.tokens)
        if closed > opened or opened > 1:
            raise ZoneError(
                "unbalanced parentheses",
                source=source,
                line=pending.line,
                text=pending.text,
                fix="use one '(' ... ')' pair per record",
            )
        if opened == closed:
            pending.tokens = [t for t in pending.tokens if not (t.is_open or t.is_close)]
            yield pending
            pending = None
    if pending is not None:
        raise ZoneError(
            "'(' is never closed",
            source=source,
            line=pending.line,
            text=pending.text,
            fix="add the closing ')'",
        )


def _is_field(word: Token) -> bool:
    """Could ``word`` follow a blank owner (a TTL, a class or a type)?"""
    upper = word.text.upper()
    if word.quoted:
        return False
    return (
        upper in _CLASSES
        or upper in SUPPORTED_TYPES
        or word.text.isdigit()
        or bool(_TTL_WITH_UNITS.fullmatch(word.text.lower()))
    )


def parse_zone_text(
    text: str,
    *,
    source: str,
    origin: str | None = None,
    default_ttl: int = 3600,
    first_line: int = 1,
) -> list[Record]:
    """Parse RFC 1035 §5 master-file text, or ``dig`` answer lines pasted verbatim.

    Supported: ``$ORIGIN``, ``$TTL``, ``@``, relative and absolute names, a
    blank owner (an indented line) meaning the previous owner, ``;`` comments
    (so dig's ``;; ANSWER SECTION:`` lines are ignored), parentheses spanning
    lines, an optional TTL and class in either order, and the types in
    SUPPORTED_TYPES.

    An indented line whose first word cannot be a TTL, class or type is read as
    an owner name: records pasted into an indented TOML string still work.

    Args:
        text: the zone text.
        source: where it came from, for messages ("zones/x.zone", "<lab records>").
        origin: the initial $ORIGIN (absolute), if any.
        default_ttl: TTL for records that give none before any $TTL.
        first_line: the number of the first line (a lab file passes the line of
            its ``records`` key so errors point into the lab file).

    Returns:
        The records in file order.

    Raises:
        ZoneError: a line that cannot be served, naming source and line.
    """
    records: list[Record] = []
    ttl_default = default_ttl
    current_origin = None if origin is None else origin.lower()
    owner: str | None = None
    for entry in _entries(text, source, first_line):
        words = entry.tokens

        def fail(what: str, fix: str, subject: str = "bad line", e: _Entry = entry) -> ZoneError:
            return ZoneError(
                what, source=source, line=e.line, text=e.text, subject=subject, fix=fix
            )

        head = words[0].text
        if not words[0].quoted and head.startswith("$"):
            directive = head.upper()
            try:
                if directive == "$ORIGIN" and len(words) == 2:
                    current_origin = _absolute(words[1].text, current_origin)
                elif directive == "$TTL" and len(words) == 2:
                    value = _parse_ttl(words[1].text)
                    if value is None:
                        raise _Bad(f"'{words[1].text}' is not a TTL", "write e.g. $TTL 300")
                    ttl_default = value
                elif directive in ("$ORIGIN", "$TTL"):
                    raise _Bad(f"{directive} takes one value", f"write e.g. {directive} ...")
                elif directive == "$INCLUDE":
                    raise _Bad("$INCLUDE is not supported", "list the other file under [dns] zones")
                else:
                    raise _Bad(f"unknown directive {head}", "use $ORIGIN or $TTL")
            except _Bad as bad:
                raise fail(bad.what, bad.fix, subject=f"bad {directive}") from None
            continue

        index = 0
        if entry.indented and _is_field(words[0]):
            if owner is None:
                raise fail(
                    "an indented line reuses the previous owner, and there is none",
                    "write the owner name at the start of the line",
                )
            name = owner
        else:
            if words[0].quoted:
                raise fail("an owner name cannot be quoted", "remove the quotes")
            try:
                name = _absolute(words[0].text, current_origin)
            except _Bad as bad:
                raise fail(bad.what, bad.fix, subject="bad owner name") from None
            index = 1
        ttl: int | None = None
        rclass: str | None = None
        try:
            while index < len(words) and not words[index].quoted:
                word = words[index].text
                if word.upper() in _CLASSES and rclass is None:
                    rclass = word.upper()
                elif ttl is None and (value := _parse_ttl(word)) is not None:
                    ttl = value
                else:
                    break
                index += 1
        except _Bad as bad:
            raise fail(bad.what, bad.fix, subject="bad TTL") from None
        if rclass not in (None, "IN"):
            raise fail(f"class {rclass} is not served", "use IN or leave the class out")
        if index >= len(words) or words[index].quoted:
            raise fail("no record type", f"add a type: one of {' '.join(SUPPORTED_TYPES)}")
        rtype = words[index].text.upper()
        if rtype not in SUPPORTED_TYPES:
            what = (
                f"type {rtype} is not served"
                if _RR_TYPE_LIKE.fullmatch(rtype)
                else f"'{words[index].text}' is not a record type"
            )
            raise fail(what, f"use one of {' '.join(SUPPORTED_TYPES)}")
        try:
            rdata = _RDATA[rtype](words[index + 1 :], current_origin)
        except _Bad as bad:
            raise fail(bad.what, bad.fix, subject=f"bad {rtype} record") from None
        owner = name
        records.append(
            Record(
                name=name,
                rtype=rtype,
                ttl=ttl_default if ttl is None else ttl,
                rdata=rdata,
                source=f"{source}:{entry.line}",
            )
        )
    return records


def load_zone_file(path: Path) -> list[Record]:
    """Read an RFC 1035 master file.

    Raises:
        ZoneError: the file is missing, unreadable, not UTF-8, or has a bad line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ZoneError(
            f"cannot read the zone file: {reason}",
            source=str(path),
            line=None,
            text=str(path),
            subject="bad zone file",
            fix="check the path (relative to the lab file) and that it is UTF-8 text",
        ) from None
    return parse_zone_text(text, source=str(path))


# --------------------------------------------------------------------------------------------
# The zone model


def _is_under(name: str, apex: str) -> bool:
    return apex == "." or name == apex or name.endswith("." + apex)


def _synthetic_apex(name: str) -> str:
    """The apex of the zone a record with no SOA above it is served from.

    Service labels ("_sipfederationtls._tcp") name a service of the domain
    after them, so that domain is the apex
    (``_sipfederationtls._tcp.acano.steven.lab`` -> ``acano.steven.lab``).
    Any other name is a host: its first label is dropped while more than two
    labels remain (``vcse.steven.lab`` -> ``steven.lab``).
    """
    labels = name.rstrip(".").split(".") if name != "." else []
    stripped = False
    while len(labels) > 1 and labels[0].startswith("_"):
        labels.pop(0)
        stripped = True
    while not stripped and len(labels) > 2:
        labels.pop(0)
    return ".".join(labels) + "." if labels else "."


def _source_line(source: str) -> tuple[str, int | None]:
    path, _, line = source.rpartition(":")
    return (path, int(line)) if path and line.isdigit() else (source, None)


def _record_error(record: Record, what: str, fix: str) -> ZoneError:
    path, line = _source_line(record.source)
    text = f"{record.name} {record.ttl} IN {record.rtype} {record.rdata}"
    return ZoneError(
        what, source=path, line=line, text=text, subject=f"bad {record.rtype} record", fix=fix
    )


def _normal_name(name: str) -> str:
    lowered = name.lower()
    return lowered if lowered.endswith(".") else lowered + "."


class ZoneSet:
    """Every record of a lab, grouped into zones, answering as an authoritative server.

    Build it with :meth:`from_records`. Names are matched case-insensitively
    (RFC 4343); there are no delegations and no wildcards.
    """

    __slots__ = ("_by_name", "_existing", "_servfail", "_silent", "_soa", "apexes")

    def __init__(
        self,
        *,
        by_name: dict[str, tuple[Record, ...]],
        soa: dict[str, Record],
        silent: tuple[str, ...],
        servfail: tuple[str, ...],
    ) -> None:
        self._by_name = by_name
        self._soa = soa
        self._silent = silent
        self._servfail = servfail
        # Longest first, so the closest enclosing zone wins.
        self.apexes: tuple[str, ...] = tuple(sorted(soa, key=lambda a: (-len(a), a)))
        existing: set[str] = set()
        for name in by_name:
            # Every name and its ancestors exist: an empty non-terminal such as
            # "_tcp.example.com." answers NODATA, not NXDOMAIN (RFC 8020).
            labels = name.rstrip(".").split(".")
            existing.update(".".join(labels[i:]) + "." for i in range(len(labels)))
        self._existing = frozenset(existing)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Record],
        *,
        silent: Iterable[str] = (),
        servfail: Iterable[str] = (),
    ) -> ZoneSet:
        """Group records into zones.

        Zones are the SOA owners; a record under no SOA gets a synthetic zone
        (see :func:`_synthetic_apex`) with the SOA in ``SYNTHETIC_SOA``, so
        negative answers always carry one. Identical records are kept once.

        Args:
            records: the lab's records, from every file and ``records`` block.
            silent: names (and everything below them) that get no answer at all,
                to stage a DNS timeout.
            servfail: names (and everything below them) answered SERVFAIL.

        Raises:
            ZoneError: a CNAME beside other data at one name (RFC 1034 §3.6.2),
                two different SOAs for one zone, or rdata that cannot be encoded.
                A silent/servfail name that is not a domain name is one too.
        """
        by_name: dict[str, list[Record]] = {}
        seen: set[tuple[str, str, str]] = set()
        soa: dict[str, Record] = {}
        for record in records:
            key = (record.name, record.rtype, record.rdata)
            if key in seen:
                continue
            seen.add(key)
            try:
                rr_from_record(record)
            except ValueError as exc:
                raise _record_error(record, str(exc), "rewrite the rdata") from None
            here = by_name.setdefault(record.name, [])
            if (record.rtype == "CNAME" and here) or any(r.rtype == "CNAME" for r in here):
                raise _record_error(
                    record,
                    f"{record.name} has a CNAME and other records",
                    "a CNAME owner may hold nothing else (RFC 1034 §3.6.2): drop one of them",
                )
            if record.rtype == "SOA":
                if record.name in soa:
                    raise _record_error(
                        record,
                        f"zone {record.name} already has an SOA ({soa[record.name].source})",
                        "keep one SOA per zone",
                    )
                soa[record.name] = record
            here.append(record)
        real_apexes = tuple(soa)
        for name, group in list(by_name.items()):
            if any(_is_under(name, apex) for apex in real_apexes):
                continue
            apex = _synthetic_apex(name)
            if apex not in soa:
                synthetic = Record(
                    name=apex,
                    rtype="SOA",
                    ttl=60,
                    rdata=SYNTHETIC_SOA.format(apex="" if apex == "." else apex),
                    source=f"<synthetic SOA for {group[0].source}>",
                )
                soa[apex] = synthetic
                by_name.setdefault(apex, []).append(synthetic)
        return cls(
            by_name={name: tuple(group) for name, group in by_name.items()},
            soa=soa,
            silent=tuple(cls._checked_names(silent, "silent")),
            servfail=tuple(cls._checked_names(servfail, "servfail")),
        )

    @staticmethod
    def _checked_names(names: Iterable[str], key: str) -> list[str]:
        out = []
        for raw in names:
            name = _normal_name(raw)
            if (problem := name_problem(name)) is not None:
                raise ZoneError(
                    problem,
                    source=f"[dns] {key}",
                    line=None,
                    text=raw,
                    subject="bad name",
                    fix=_FIX_NAME,
                )
            out.append(name)
        return out

    def records(self) -> tuple[Record, ...]:
        """Every record served, synthetic SOAs included, grouped by owner."""
        return tuple(r for group in self._by_name.values() for r in group)

    def _zone_of(self, name: str) -> str | None:
        return next((apex for apex in self.apexes if _is_under(name, apex)), None)

    def _negative_soa(self, apex: str) -> Record:
        # RFC 2308 §3: the SOA in a negative answer has TTL min(SOA TTL, SOA MINIMUM).
        soa = self._soa[apex]
        minimum = int(soa.rdata.split()[-1])
        return dataclasses.replace(soa, ttl=min(soa.ttl, minimum))

    def lookup(self, name: str, rtype: str) -> Lookup:
        """Resolve one question against our data, as an authoritative server would.

        Args:
            name: the query name (any case, trailing dot optional).
            rtype: "SRV", "A", "ANY", or "TYPE65" for a type we never hold.

        Returns:
            The outcome and the records of each section.
        """
        qname = _normal_name(name)
        qtype = rtype.upper()
        if any(_is_under(qname, s) for s in self._silent):
            return Lookup(outcome="silent")
        if any(_is_under(qname, s) for s in self._servfail):
            return Lookup(outcome="servfail")
        apex = self._zone_of(qname)
        if apex is None:
            return Lookup(outcome="refused")
        chain: list[Record] = []
        current = qname
        while True:
            here = self._by_name.get(current, ())
            cname = next((r for r in here if r.rtype == "CNAME"), None)
            if cname is not None and qtype not in ("CNAME", "ANY"):
                # RFC 1034 §4.3.2 step 3a: restart at the canonical name while we are
                # authoritative for it; otherwise the chain so far is the answer.
                chain.append(cname)
                target = cname.rdata
                target_apex = self._zone_of(target)
                if target_apex is None or len(chain) >= MAX_CNAME_CHAIN:
                    return Lookup(outcome="ok", records=tuple(chain))
                if any(r.name == target for r in chain[:-1]) or target == qname:
                    return Lookup(outcome="ok", records=tuple(chain))  # a loop: stop here
                current, apex = target, target_apex
                continue
            matches = [r for r in here if qtype == "ANY" or r.rtype == qtype]
            if matches:
                return Lookup(
                    outcome="ok",
                    records=(*chain, *matches),
                    additional=self._additional(matches),
                )
            # RFC 6604: after a CNAME the rcode describes the last name looked up.
            outcome: Outcome = "nodata" if current in self._existing else "nxdomain"
            return Lookup(
                outcome=outcome, records=tuple(chain), authority=(self._negative_soa(apex),)
            )

    def _additional(self, answers: list[Record]) -> tuple[Record, ...]:
        out: list[Record] = []
        for record in answers:
            if record.rtype != "SRV":
                continue
            target = record.rdata.split()[-1]
            for extra in self._by_name.get(target, ()):
                if extra.rtype in ("A", "AAAA") and extra not in out:
                    out.append(extra)
        return tuple(out)

    def answer(self, query: bytes, *, transport: Literal["udp", "tcp"]) -> bytes | None:
        """Answer one DNS query packet; the pure seam under the trio server.

        AA=1, RA=0; the id, RD and the question are echoed. NOERROR with data;
        NODATA is NOERROR with the SOA in authority; NXDOMAIN with the SOA;
        REFUSED outside our zones. Over UDP the reply fits 512 bytes, or the
        client's EDNS payload size clamped to 512..4096, else TC=1 (RFC 1035
        §4.2.1, RFC 6891 §6.2.5). Malformed queries get FORMERR when a header
        arrived; responses (QR=1) and short packets are dropped; opcodes other
        than QUERY get NOTIMP.

        Args:
            query: the packet as received (for TCP, without the length prefix).
            transport: "udp" or "tcp", which decides the size limit.

        Returns:
            The reply packet, or None to send nothing (dropped, or a silent name).
            Never raises: a bug here answers SERVFAIL rather than stopping the server.
        """
        try:
            return self._answer(query, transport)
        except Exception:  # "never raises" is the contract; a bug must not stop the server
            return header_reply(query, "SERVFAIL") if len(query) >= HEADER_LEN else None

    def _answer(self, data: bytes, transport: Literal["udp", "tcp"]) -> bytes | None:
        query = parse_query(data)
        if query is None or isinstance(query, bytes):
            return query
        if transport == "tcp":
            limit = TCP_LIMIT
        elif query.edns_payload is None:
            limit = UDP_PLAIN_LIMIT
        else:
            limit = min(max(query.edns_payload, UDP_PLAIN_LIMIT), UDP_EDNS_CEILING)
        if query.edns_version not in (None, 0):
            return build_reply(query, rcode="BADVERS", aa=False, limit=limit)  # RFC 6891 §6.1.3
        result = self.lookup(query.qname, type_name(query.qtype))
        if result.outcome == "silent":
            return None
        if result.outcome in ("refused", "servfail"):
            rcode = result.outcome.upper()
            return build_reply(query, rcode=rcode, aa=False, limit=limit)
        if query.qclass not in (CLASS_IN, CLASS_ANY) or query.qtype in (
            TYPE_CODES["AXFR"],
            TYPE_CODES["IXFR"],
        ):
            # We serve class IN only, and zone transfers are not for a lab's clients.
            return build_reply(query, rcode="REFUSED", aa=False, limit=limit)
        return build_reply(
            query,
            rcode="NXDOMAIN" if result.outcome == "nxdomain" else "NOERROR",
            aa=True,
            answer=result.records,
            authority=result.authority,
            additional=result.additional,
            limit=limit,
        )
