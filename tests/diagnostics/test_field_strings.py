"""``fedsim explain`` decodes every verbatim string of shared/reference/field-cases.md.

The strings are read from the file itself: every backticked or double-quoted
string of the columns that hold what was seen (the cases' "Symptom (verbatim)",
§2a's "Verbatim (as seen)", §2b-2d's "String (verbatim)"). Each must come out
of :func:`explain_text` as something fedsim knows: no "not in fedsim's catalogue",
no "no explanation", and at least one meaning. A new case in the file with a
string fedsim cannot decode fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.diagnostics import explain_text

#: Words and names quoted in passing in those columns: not artefacts to decode (a
#: lone word, a host name from a vendor's example list, the OCER spec's trailing ".").
_NOT_ARTEFACTS = re.compile(r"[.…]|[A-Za-z]+|[a-z0-9-]+(?:\.[a-z0-9-]+)+")


def verbatim_strings(text: str) -> list[tuple[str, str]]:
    """(row key, string) for every verbatim string in field-cases.md's symptom columns."""
    out: list[tuple[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line) <= set("|-: "):
            continue
        column = next(
            (i for i, h in enumerate(header) if h.startswith(("symptom", "verbatim", "string"))),
            None,
        )
        if column is None or column >= len(cells):
            continue
        cell = cells[column]
        ticks = re.findall(r"`([^`]+)`", cell)
        quotes = re.findall(r'"([^"]+)"', re.sub(r"`[^`]+`", " ", cell))
        out.extend((cells[0], s) for s in ticks + quotes if not _NOT_ARTEFACTS.fullmatch(s))
    return out


@pytest.fixture(scope="module")
def strings(shared_dir: Path) -> list[tuple[str, str]]:
    text = (shared_dir / "reference" / "field-cases.md").read_text(encoding="utf-8")
    return verbatim_strings(text)


def test_the_walk_finds_the_file_s_strings(strings: list[tuple[str, str]]) -> None:
    found = {s for _key, s in strings}
    assert len(strings) > 100
    assert "SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN" in found
    assert (
        "We can't set up the conversation because your organizations are not set up to talk "
        "to each other." in found
    )
    assert 'Detail="sslv3 alert certificate unknown"' in found
    assert {key for key, _s in strings} >= {
        f"C{n}" for n in range(1, 34) if n not in (26, 29, 30, 31)
    }


def test_every_verbatim_string_is_explained(strings: list[tuple[str, str]]) -> None:
    unknown: list[str] = []
    for key, string in strings:
        try:
            out = explain_text(string)
        except Exception as exc:  # any failure is a string fedsim cannot decode
            unknown.append(f"{key}: {string[:80]!r}: {type(exc).__name__}: {exc}")
            continue
        if (
            "Meaning:" not in out
            or "Not in fedsim's catalogue" in out
            or "no explanation available" in out
        ):
            unknown.append(f"{key}: {string[:80]!r}:\n{out}")
    assert unknown == [], "\n".join(unknown)


@pytest.mark.parametrize(
    ("string", "says"),
    [
        (
            "Exit \u2013 domain [push.lync.com] is unknown and DNS SRV results did not match "
            "anything",
            "New-CsHostingProvider",
        ),
        ("SIPPROXY_E_EPROUTING_MSG_INVALID_EXT_SPLIT_DOMAIN", "its value is not public"),
        ("0xc3e93c5e SIPPROXY_E_ROUTING", "Cannot process Route headers"),
        ('ms-diagnostics=1008;"Unable to resolve DNS SRV Record"', "ms-diagnostics 1008"),
        ("ms-client-diagnostics: 21", "Meaning: The client could not establish media"),
        ("Diagnosis : ErrorCode=2, Source=x,Reason=See response code", "ms-diagnostics 2:"),
        (
            "We can't set up the conversation because your organizations are not set up to talk "
            "to each other.",
            "New-CsEdgeAllowAllKnownDomains",
        ),
    ],
)
def test_a_few_decodings(string: str, says: str) -> None:
    assert says in explain_text(string)


def test_1002_says_what_each_client_reads() -> None:
    out = explain_text('ms-diagnostics: 1002;reason="From URI not authorized to communicate with '
                       'federated partners";source="sip.skype.lab"')  # fmt: skip
    assert "What a Skype for Business user reads: This message was not delivered to" in out
    assert (
        "What a Teams user reads: We can't set up the conversation because your organizations "
        "are not set up to talk to each other." in out
    )


def test_fedsim_explain_decodes_an_expressway_event_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = (
        'Event="Inbound TLS Negotiation Error" Service="SIP" Src-ip="192.0.2.1" '
        'Detail="self signed certificate in certificate chain"'
    )
    assert main(["explain", line]) == 0
    out = capsys.readouterr().out
    assert "Expressway: an incoming TLS connection failed" in out
    assert "Expressway: the peer's certificate chain is not trusted" in out


def test_text_fedsim_knows_nothing_of_is_still_one_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "hello world"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "nothing fedsim knows" in err
