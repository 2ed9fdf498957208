"""The runner's pure parts: SRV placeholder rewriting, -k matching, expect-vs-got comparison."""

from __future__ import annotations

import pytest

from simulator.lab import Expect
from simulator.run import Outcome, compare, matches, rewrite_srv_ports
from simulator.run.runner import find_record

RECORDS = """
; the peer's placeholder port 5061 ; SRV 0 0 5061 in a comment stays
_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.
_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 10 5 5071 vcse.cms.steven.lab. ; tail
_sipfederationtls._tcp.x.steven.lab.\tIN\tsrv\t1 1 5061\tvcse.x.steven.lab.
vcse.steven.lab. 300 IN A 127.0.0.1
srv.steven.lab. 5061 IN A 127.0.0.1
"""


def test_rewrite_replaces_only_srv_ports_that_are_placeholders() -> None:
    out = rewrite_srv_ports(RECORDS, {5061: 40001})
    lines = out.splitlines()
    assert lines[1] == "; the peer's placeholder port 5061 ; SRV 0 0 5061 in a comment stays"
    assert lines[2] == "_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 40001 vcse.steven.lab."
    assert lines[3].startswith("_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 10 5 5071 ")
    assert lines[3].endswith("; tail")
    assert (
        lines[4] == "_sipfederationtls._tcp.x.steven.lab.\tIN\tsrv\t1 1 40001\tvcse.x.steven.lab."
    )
    assert lines[5:] == RECORDS.splitlines()[5:]  # A records, even with a 5061 TTL


def test_rewrite_without_placeholders_is_identity() -> None:
    assert rewrite_srv_ports(RECORDS, {}) == RECORDS
    assert rewrite_srv_ports(RECORDS, {9999: 1}) == RECORDS


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, True),
        ("", True),
        ("acano", True),
        ("call-2", True),
        ("call-3", False),
        ("seeds/01", True),
        ("01-acano-x call-2", True),
        ("*call-[12]", True),
        ("inbound/*", False),
        ("seeds/*-x call-?", True),
    ],
)
def test_k_pattern_is_a_substring_or_a_glob(pattern: str | None, expected: bool) -> None:
    assert matches(pattern, "01-acano-x", "seeds/01-acano-x", 2) is expected


def test_compare_checks_only_what_the_lab_sets() -> None:
    got = Outcome(
        status=504,
        edge_log="SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
        rule="cert-mismatch",
        ms_diagnostics=1010,
        ms_diagnostics_params={
            "tls-target": "vcse.cms.steven.lab",
            "PeerServer": "vcse.steven.lab",
        },
        forwarded=False,
    )
    assert compare(Expect(status=504), got) == ()
    assert compare(Expect(forwarded=False, rule="cert-mismatch"), got) == ()
    # parameter names match case-insensitively (reference §3.1: Domain= vs domain=)
    assert (
        compare(
            Expect(ms_diagnostics=1010, ms_diagnostics_params={"peerserver": "vcse.steven.lab"}),
            got,
        )
        == ()
    )


def test_compare_reports_every_broken_expectation_in_order() -> None:
    got = Outcome(status=200, rule="accepted", forwarded=True)
    expect = Expect(
        status=504,
        edge_log="SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
        ms_diagnostics=1009,
        ms_diagnostics_params={"fqdn1": "vcse.sub.cms.steven.lab:5061"},
        forwarded=False,
        rule="srv-not-in-domain",
    )
    lines = [m.line() for m in compare(expect, got)]
    assert lines == [
        "status: expected 504, got 200",
        'edge_log: expected "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH", got nothing',
        "ms_diagnostics: expected 1009, got nothing",
        'ms_diagnostics_params.fqdn1: expected "vcse.sub.cms.steven.lab:5061", got nothing',
        "forwarded: expected false, got true",
        'rule: expected "srv-not-in-domain", got "accepted"',
    ]


def test_a_refused_handshake_shows_as_tls_refused() -> None:
    got = Outcome(status=None, rule="tls-handshake-failed", error="connection reset")
    (mismatch,) = compare(Expect(status=200), got)
    assert mismatch.line() == 'status: expected 200, got "tls-refused"'


def test_find_record_by_call_id_then_by_peer_address() -> None:
    log = (
        "TL_WARN(TF_DIAG) [x\\x] $$begin_record\nResult-Code: A\nSIP-Call-ID: one\n"
        "Peer: vcse.steven.lab:1000\n$$end_record\n"
        "TL_ERROR(TF_DIAG) [x\\x] $$begin_record\nResult-Code: B\nSIP-Call-ID: -\n"
        "Peer: 127.0.0.1:2000\n$$end_record\n"
    )
    one = find_record(log, call_id="one", peer_address=None)
    assert one is not None
    assert "Result-Code: A" in one
    tls = find_record(log, call_id="nope", peer_address="127.0.0.1:2000")
    assert tls is not None
    assert "Result-Code: B" in tls
    assert find_record(log, call_id="nope", peer_address="127.0.0.1:1") is None
