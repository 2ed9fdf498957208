"""Training exercises: each fails as intended until fixed, each solution passes; page edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.errors import FedsimError, LabError
from simulator.lab import load_lab_text
from simulator.run import load_lab_files, run_labs
from simulator.trace import WireMessage as TapMessage
from simulator.ui.exercise import (
    CertEdit,
    EditError,
    check_lab_text,
    edit_lab_text,
    find_exercise,
    form_edits,
)
from simulator.ui.live import LiveCalls, live_views, wire_message

EXERCISES = Path(__file__).resolve().parents[2] / "scenarios" / "exercises"
SOLUTIONS = EXERCISES / "solutions"

#: Each exercise as shipped: what its call gets (status, rule, ms-diagnostics).
BROKEN = {
    "01-acano-srv-points-to-parent-domain": (504, "srv-not-in-domain", None),
    "02-acano-cert-lacks-srv-target": (504, "cert-mismatch", None),
    "03-cms-srv-points-to-subdomain": (504, "srv-not-in-domain", 1009),
    "04-cms-cert-lacks-srv-target": (504, "cert-mismatch", 1010),
    "05-missing-a-record": (504, "no-address", 1014),
    "06-no-srv-record": (504, "srv-nxdomain", None),
    "07-untrusted-private-ca": (None, "tls-handshake-failed", None),
    "08-office365-private-ca": (None, "tls-handshake-failed", None),
    "09-expired-certificate": (None, "tls-handshake-failed", None),
    "10-revoked-certificate": (None, "tls-handshake-failed", None),
}
#: Their other calls that must fail too, by number.
BROKEN_MORE = {
    "10-revoked-certificate": {2: (504, "cert-revoked", 1010)},
}


def test_at_least_eight_exercises_each_with_task_hints_and_a_solution() -> None:
    exercises = sorted(p.stem for p in EXERCISES.glob("*.toml"))
    assert exercises == sorted(BROKEN)
    assert len(exercises) >= 8
    assert sorted(p.stem for p in SOLUTIONS.glob("*.toml")) == exercises
    for path in EXERCISES.glob("*.toml"):
        lab = check_lab_text(path.read_text(encoding="utf-8"), path=path)
        assert lab.exercise is not None
        assert lab.exercise.task
        assert len(lab.exercise.hints) >= 2, path
        assert lab.name == path.stem
        # Self-contained: the page copies it elsewhere, so it may name no file.
        assert not lab.dns.zones, path


async def test_exercises_fail_as_intended_and_solutions_pass() -> None:
    reports = await run_labs(load_lab_files([EXERCISES]), jobs=4)
    assert all(r.error is None for r in reports), [r.error for r in reports]
    for report in reports:
        name = report.id.rsplit("/", 1)[-1]
        judged = [c for c in report.calls if c.number in (1,)]
        if report.id.startswith("solutions/"):
            assert all(c.verdict == "PASS" for c in report.calls), report.id
            continue
        assert [c.verdict for c in judged] == ["FAIL"], report.id
        got = judged[0].got
        assert (got.status, got.rule, got.ms_diagnostics) == BROKEN[name], report.id
        for number, wanted in BROKEN_MORE.get(name, {}).items():
            (call,) = [c for c in report.calls if c.number == number]
            assert call.verdict == "FAIL", report.id
            assert (call.got.status, call.got.rule, call.got.ms_diagnostics) == wanted, report.id


def test_find_exercise_by_number_name_or_part(tmp_path: Path) -> None:
    assert find_exercise("02", EXERCISES).stem == "02-acano-cert-lacks-srv-target"
    assert find_exercise("expired", EXERCISES).stem == "09-expired-certificate"
    with pytest.raises(Exception, match="matches several"):
        find_exercise("acano", EXERCISES)
    with pytest.raises(Exception, match="no exercises"):
        find_exercise("01", tmp_path)


# --- the page's edits -----------------------------------------------------------------

LAB = '''\
# a comment that stays
name = "x"

[exercise]
task = "fix it"
hints = ["one", "two"]

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]

[dns]
records = """
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.
"""

[certs.public-root]
ca = true
public = true

[certs."vcse.steven.lab"]
issuer = "public-root"
cn = "vcse.steven.lab"
san = [
    "vcse.steven.lab",   # the old name
]

[peers.expe]
cert = "vcse.steven.lab"

[[calls]]
direction = "inbound"
via = "expe"
from = "sip:2000@steven.lab"
to = "sip:a@skype.lab"
expect.status = 200
'''


def test_edits_change_the_keys_in_place_and_keep_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    new = edit_lab_text(
        LAB,
        records="vcse.steven.lab. 300 IN A 127.0.0.1\n",
        certs={
            "vcse.steven.lab": CertEdit(
                san=("vcse.steven.lab", "vcse.acano.steven.lab"), validity="expired"
            )
        },
    )
    assert new.startswith("# a comment that stays\n")
    lab = check_lab_text(new, path=path)
    assert lab.dns.records.strip() == "vcse.steven.lab. 300 IN A 127.0.0.1"
    spec = lab.cert_spec("vcse.steven.lab")
    assert spec.san == ("vcse.steven.lab", "vcse.acano.steven.lab")
    assert spec.validity == "expired"
    assert spec.cn == "vcse.steven.lab"
    assert lab.exercise is not None
    assert lab.exercise.hints == ("one", "two")


@pytest.mark.parametrize(
    ("records", "certs", "error"),
    [
        ("x ''' y", {}, "'''"),
        (None, {"vcse.steven.lab": CertEdit(cn="bad name!")}, "not a DNS name"),
        (None, {"vcse.steven.lab": CertEdit(validity="soon")}, "choose one of"),
        (None, {"nowhere": CertEdit(cn="a.lab")}, "not a table of its own"),
    ],
)
def test_edits_the_page_cannot_make_are_one_line(
    records: str | None, certs: dict[str, CertEdit], error: str
) -> None:
    with pytest.raises(EditError, match=error):
        edit_lab_text(LAB, records=records, certs=certs)


def test_a_bad_edit_is_refused_by_the_loader_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    new = edit_lab_text(LAB, records="vcse.steven.lab. 300 IN A nowhere")
    with pytest.raises(FedsimError, match=r"x\.toml:\d+:"):
        check_lab_text(new, path=path)
    with pytest.raises(LabError, match=r"\[exercise\] table is gone"):
        check_lab_text(
            LAB.replace('[exercise]\ntask = "fix it"\nhints = ["one", "two"]\n', ""), path=path
        )


def test_form_edits_keep_only_what_changed(tmp_path: Path) -> None:
    lab = load_lab_text(LAB, path=tmp_path / "x.toml")
    records, certs = form_edits(
        {
            "records": "a",
            "cn:vcse.steven.lab": "vcse.steven.lab",
            "san:vcse.steven.lab": "vcse.steven.lab,  vcse.acano.steven.lab",
            "issuer:vcse.steven.lab": "public-root",
            "validity:vcse.steven.lab": "valid",
            "revoked:vcse.steven.lab": "no",
        },
        lab,
    )
    assert records == "a"
    assert certs == {"vcse.steven.lab": CertEdit(san=("vcse.steven.lab", "vcse.acano.steven.lab"))}
    _records, revoked = form_edits({"revoked:vcse.steven.lab": "yes"}, lab)
    assert revoked == {"vcse.steven.lab": CertEdit(revoked=True)}
    new = edit_lab_text(LAB, certs=revoked)
    assert check_lab_text(new, path=tmp_path / "x.toml").cert_spec("vcse.steven.lab").revoked
    with pytest.raises(EditError, match="choose no or yes"):
        form_edits({"revoked:vcse.steven.lab": "maybe"}, lab)
    with pytest.raises(EditError, match="not a CA"):
        form_edits({"issuer:vcse.steven.lab": "vcse.steven.lab"}, lab)


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('[exercise]\nhints = ["a"]\n', "missing required key"),
        ('[exercise]\ntask = "t"\ncalls = [2]\n', "is not a call of this lab"),
        ('[exercise]\ntask = "t"\ncalls = []\n', "non-empty list"),
        ('[exercise]\ntask = "t"\nhint = ["a"]\n', "did you mean 'hints'"),
    ],
)
def test_the_exercise_table_is_checked_like_the_rest(
    tmp_path: Path, table: str, error: str
) -> None:
    text = LAB.replace('[exercise]\ntask = "fix it"\nhints = ["one", "two"]\n', table)
    with pytest.raises(LabError, match=error):
        load_lab_text(text, path=tmp_path / "x.toml")


# --- the feed -------------------------------------------------------------------------

EVENT = {
    "time": "2026-12-03T10:00:00.123+00:00",
    "kind": "decision",
    "direction": "inbound",
    "call_id": "c-1",
    "method": "INVITE",
    "from": "sip:2000@acano.steven.lab",
    "to": "sip:stejanss@skype.lab",
    "peer": "vcse.steven.lab:5555",
    "rule": "srv-not-in-domain",
    "accepted": False,
    "status": 504,
}
RECORD = "TL_WARN(TF_DIAG) ... $$begin_record\nResult-Code: 0xc3e93d6f X\n$$end_record"
INVITE = (
    b"INVITE sip:stejanss@skype.lab SIP/2.0\r\nCall-ID: c-1\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 0\r\n\r\n"
)
ANSWER = (
    b"SIP/2.0 504 Server time-out\r\nCall-ID: c-1\r\nCSeq: 1 INVITE\r\nServer: RTC/6.0\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _tap(direction: str, data: bytes) -> TapMessage:
    return TapMessage(
        1.0,
        direction,
        "external",
        ("127.0.0.1", 5061),
        ("127.0.0.1", 5555),
        "100",
        data,  # type: ignore[arg-type]
    )


def test_rows_come_from_the_recorders_lines_and_the_taps_messages() -> None:
    feed = LiveCalls()
    feed.wire(_tap("incoming", INVITE))  # the request comes before its decision
    feed.observe(json.dumps(EVENT), RECORD)
    feed.observe(json.dumps({"time": "x", "kind": "in-dialog", "call_id": "c-1"}), None)
    feed.observe("not json", None)
    feed.wire(_tap("outgoing", ANSWER))
    assert feed.queued == 3  # lines of the recorder (the taps' messages queue apart)
    (row,) = feed.take_new()
    assert (row.number, row.rule, row.outcome, row.time) == (
        1,
        "srv-not-in-domain",
        "504",
        "10:00:00",
    )
    assert [m.start_line for m in row.messages] == [
        "INVITE sip:stejanss@skype.lab SIP/2.0",
        "SIP/2.0 504 Server time-out",
    ]
    report, views = live_views(row, None)
    assert report.trace.edge_record == RECORD
    assert "received SIP/2.0 504 Server time-out" in views.expressway.headline
    assert any(d.name.endswith("--edge.log") for d in views.downloads)
    assert feed.take_new() == []


def test_a_call_from_outside_says_where_its_messages_are() -> None:
    feed = LiveCalls()
    feed.observe(json.dumps(EVENT), RECORD)
    (row,) = feed.take_new()
    _report, views = live_views(row, None)
    assert "not captured" in views.expressway.headline
    assert "SIPPROXY" not in views.expressway.headline


def test_tap_messages_name_the_leg_and_the_parties() -> None:
    message = wire_message(_tap("outgoing", ANSWER))
    assert (message.leg, message.sender, message.receiver) == ("federation", "Edge", "Expressway-E")
