"""Zone text parsing: master files, pasted dig lines, and one-line errors that point at the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.dns.zone import Record, ZoneError, ZoneSet, load_zone_file, parse_zone_text

DIG_PASTE = """\
; <<>> DiG 9.18.49 <<>> _sipfederationtls._tcp.acano.steven.lab SRV
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4242
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1

;; QUESTION SECTION:
;_sipfederationtls._tcp.acano.steven.lab. IN SRV

;; ANSWER SECTION:
_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.

;; ADDITIONAL SECTION:
vcse.steven.lab.\t\t300\tIN\tA\t127.0.0.1

;; Query time: 0 msec
"""

MASTER_FILE = """\
$ORIGIN steven.lab.
$TTL 1h
@   IN SOA ns hostmaster (
        2024010101 ; serial
        3600 600 86400 30 )   ; refresh retry expire minimum
    IN NS ns
ns  IN A 127.0.0.1
vcse 60 IN A 127.0.0.2
     IN 120 AAAA 0:0:0:0:0:0:0:2
alias CNAME vcse
_sipfederationtls._tcp SRV 10 60 5061 vcse
Upper.CASE.steven.lab. A 10.0.0.1
"""

Row = tuple[str, str, int, str]


def rows(records: list[Record]) -> list[Row]:
    return [(r.name, r.rtype, r.ttl, r.rdata) for r in records]


PARSE_CASES: list[tuple[str, str, list[Row]]] = [
    (
        "dig answer lines pasted verbatim, comments and all",
        DIG_PASTE,
        [
            (
                "_sipfederationtls._tcp.acano.steven.lab.",
                "SRV",
                300,
                "0 0 5061 vcse.steven.lab.",
            ),
            ("vcse.steven.lab.", "A", 300, "127.0.0.1"),
        ],
    ),
    (
        "master file: $ORIGIN, $TTL with units, @, parentheses, blank owner, TTL/class order",
        MASTER_FILE,
        [
            (
                "steven.lab.",
                "SOA",
                3600,
                "ns.steven.lab. hostmaster.steven.lab. 2024010101 3600 600 86400 30",
            ),
            ("steven.lab.", "NS", 3600, "ns.steven.lab."),
            ("ns.steven.lab.", "A", 3600, "127.0.0.1"),
            ("vcse.steven.lab.", "A", 60, "127.0.0.2"),
            ("vcse.steven.lab.", "AAAA", 120, "::2"),
            ("alias.steven.lab.", "CNAME", 3600, "vcse.steven.lab."),
            ("_sipfederationtls._tcp.steven.lab.", "SRV", 3600, "10 60 5061 vcse.steven.lab."),
            ("upper.case.steven.lab.", "A", 3600, "10.0.0.1"),
        ],
    ),
    (
        "every other served type, canonicalised",
        'T.lab. TXT "v=spf1 -all" "a \\"quoted\\" word" plain\n'
        "t.lab. 5 in mx 10 MAIL.t.lab.\n"
        "1.0.0.127.in-addr.arpa. PTR host.t.lab.\n"
        't.lab. NAPTR 10 20 "s" "SIPS+D2T" "" _sips._tcp.t.lab.\n'
        't.lab. TXT "\\240\\\\"\n',
        [
            ("t.lab.", "TXT", 3600, '"v=spf1 -all" "a \\"quoted\\" word" "plain"'),
            ("t.lab.", "MX", 5, "10 mail.t.lab."),
            ("1.0.0.127.in-addr.arpa.", "PTR", 3600, "host.t.lab."),
            ("t.lab.", "NAPTR", 3600, '10 20 "s" "SIPS+D2T" "" _sips._tcp.t.lab.'),
            ("t.lab.", "TXT", 3600, '"\\240\\\\"'),
        ],
    ),
    (
        "records pasted into an indented TOML string keep their owners",
        "    vcse.steven.lab. 300 IN A 127.0.0.1\n    vcse.steven.lab. 300 IN AAAA ::1\n",
        [
            ("vcse.steven.lab.", "A", 300, "127.0.0.1"),
            ("vcse.steven.lab.", "AAAA", 300, "::1"),
        ],
    ),
    (
        "an SRV target of '.' means no service (RFC 2782) and stays '.'",
        "_sip._tcp.x.lab. 60 SRV 0 0 0 .\n",
        [("_sip._tcp.x.lab.", "SRV", 60, "0 0 0 .")],
    ),
    ("blank lines and comments only", "\n; nothing here\n   \n;; ANSWER SECTION:\n", []),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_zone_text(text: str, expected: list[Row]) -> None:
    assert rows(parse_zone_text(text, source="t.zone")) == expected


def test_default_ttl_and_origin_arguments_apply() -> None:
    records = parse_zone_text("vcse A 127.0.0.1", source="t", origin="steven.lab.", default_ttl=42)
    assert rows(records) == [("vcse.steven.lab.", "A", 42, "127.0.0.1")]


def test_sources_count_lines_from_first_line() -> None:
    records = parse_zone_text(DIG_PASTE, source="lab.toml", first_line=20)
    # The SRV is on line 11 of the paste and the A record on line 14.
    assert [r.source for r in records] == ["lab.toml:30", "lab.toml:33"]


def test_parenthesised_record_reports_its_first_line() -> None:
    records = parse_zone_text(MASTER_FILE, source="steven.lab.zone")
    assert records[0].source == "steven.lab.zone:3"
    assert records[1].source == "steven.lab.zone:6"


BAD_LINES: list[tuple[str, int, str]] = [
    # (zone text, expected line, expected fragment of the message)
    ("a.lab. 300 IN SRV 0 0 70000 sip.a.lab.", 1, "bad SRV record 'a.lab. 300 IN SRV 0 0 70000"),
    ("ok.lab. A 127.0.0.1\na.lab. SRV 0 5061 sip.a.lab.", 2, "expected 4 field(s), got 3"),
    ("a.lab. A 127.0.0.256", 1, "bad A record"),
    ("a.lab. AAAA 127.0.0.1", 1, "is not an IPv6 address"),
    ("a.lab. 300 IN FOO bar", 1, "type FOO is not served"),
    ("a.lab. 300 CH A 127.0.0.1", 1, "class CH is not served"),
    ("a.lab. 300 IN", 1, "no record type"),
    ("vcse.steven.lab 300 IN A 127.0.0.1", 1, "relative name 'vcse.steven.lab' and no $ORIGIN"),
    ("a.lab. SRV 0 0 5061 sip", 1, "relative name 'sip'"),
    ('a.lab. TXT "never closed', 1, "unterminated quoted string"),
    ("a.lab. SOA ns.a.lab. h.a.lab. (\n 1 2 3 4 5\n", 1, "'(' is never closed"),
    ("a.lab. A 127.0.0.1 )", 1, "unbalanced parentheses"),
    ("$INCLUDE other.zone", 1, "$INCLUDE is not supported"),
    ("$TTL forever", 1, "'forever' is not a TTL"),
    ("$ORIGIN", 1, "$ORIGIN takes one value"),
    ("$GENERATE 1-2 a A 1.2.3.4", 1, "unknown directive $GENERATE"),
    ("   300 IN A 127.0.0.1", 1, "an indented line reuses the previous owner, and there is none"),
    ("@ A 127.0.0.1", 1, "'@' needs an origin"),
    ("*.a.lab. A 127.0.0.1", 1, "wildcard names are not served"),
    (f"{'x' * 64}.lab. A 127.0.0.1", 1, "63 at most"),
    ("a..lab. A 127.0.0.1", 1, "empty label"),
    ("a.lab. 9999999999 A 127.0.0.1", 1, "is above 2147483647"),
    (f'a.lab. TXT "{"x" * 256}"', 1, "256 bytes long (255 at most)"),
    ("a.lab. MX mail.a.lab.", 1, "expected 2 field(s)"),
    ('a.lab. A "127.0.0.1"', 1, "should not be quoted"),
    ("a.lab. SOA ns.a.lab. h.a.lab. 1 2 3 4 soon", 1, "minimum 'soon' is not a number"),
    ('a.lab. NAPTR 10 20 "s" "x"', 1, "expected 6 fields"),
    ("b\\.c.lab. A 127.0.0.1", 1, "bad owner name"),
]


@pytest.mark.parametrize(
    ("text", "line", "fragment"), BAD_LINES, ids=[b[2][:40] for b in BAD_LINES]
)
def test_bad_line_names_source_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ZoneError) as caught:
        parse_zone_text(text, source="zones/a.zone", first_line=1)
    error = caught.value
    assert error.source == "zones/a.zone"
    assert error.line == line
    assert str(error).startswith(f"zones/a.zone:{line}: ")
    assert fragment in str(error)
    assert "(fix: " in str(error)
    assert "\n" not in str(error)
    assert error.text  # the offending line travels with the error


def test_bad_line_in_lab_records_points_into_the_lab_file() -> None:
    with pytest.raises(ZoneError) as caught:
        parse_zone_text("ok.lab. A 127.0.0.1\nbad.lab. A nope\n", source="lab.toml", first_line=14)
    assert caught.value.line == 15
    assert str(caught.value).startswith("lab.toml:15: bad A record 'bad.lab. A nope': ")


def test_load_zone_file_reads_a_master_file(tmp_path: Path) -> None:
    path = tmp_path / "steven.lab.zone"
    path.write_text(MASTER_FILE, encoding="utf-8")
    records = load_zone_file(path)
    assert len(records) == 8
    assert records[2].source == f"{path}:7"


def test_load_zone_file_missing_is_a_zone_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.zone"
    with pytest.raises(ZoneError) as caught:
        load_zone_file(path)
    assert caught.value.line is None
    assert str(caught.value).startswith(f"{path}: bad zone file")
    assert "No such file" in str(caught.value)


def test_load_zone_file_not_utf8_is_a_zone_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.zone"
    path.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ZoneError, match="cannot read the zone file"):
        load_zone_file(path)


def test_record_rejects_non_canonical_names() -> None:
    with pytest.raises(ValueError, match="absolute and lower-case"):
        Record(name="Vcse.steven.lab.", rtype="A", ttl=1, rdata="127.0.0.1", source="x:1")
    with pytest.raises(ValueError, match="record type"):
        Record(name="vcse.steven.lab.", rtype="HINFO", ttl=1, rdata="x", source="x:1")


def test_cname_beside_other_data_is_refused_with_its_line() -> None:
    records = parse_zone_text("a.lab. A 127.0.0.1\na.lab. CNAME b.lab.\n", source="z.zone")
    with pytest.raises(ZoneError) as caught:
        ZoneSet.from_records(records)
    assert caught.value.line == 2
    assert "has a CNAME and other records" in str(caught.value)


def test_second_soa_for_a_zone_is_refused() -> None:
    text = "a.lab. SOA ns.a.lab. h.a.lab. 1 2 3 4 5\na.lab. SOA ns.a.lab. h.a.lab. 2 2 3 4 5\n"
    with pytest.raises(ZoneError, match=r"z\.zone:2: .*already has an SOA \(z\.zone:1\)"):
        ZoneSet.from_records(parse_zone_text(text, source="z.zone"))


def test_identical_records_are_served_once() -> None:
    text = "a.lab. 300 A 127.0.0.1\na.lab. 60 A 127.0.0.1\n"
    zones = ZoneSet.from_records(parse_zone_text(text, source="z"))
    assert len(zones.lookup("a.lab.", "A").records) == 1


@pytest.mark.parametrize("key", ["silent", "servfail"])
def test_bad_staged_failure_name_is_a_zone_error(key: str) -> None:
    with pytest.raises(ZoneError) as caught:
        ZoneSet.from_records([], **{key: ["ok.lab", "not..ok"]})
    assert str(caught.value).startswith(f"[dns] {key}: bad name 'not..ok': ")
