"""SIPp through stunnel against ``fedsim serve``: the seed's three inbound calls, a small
load on one TLS connection, and a partner certificate the Edge must refuse.

Debian's SIPp has no TLS (shared/interop/README.md §0), so stunnel in client mode
does the mutual TLS with the config ``fedsim serve`` prints (re-written with a
free accept port by the ``stunnel`` fixture). SIPp runs the scenario serve
writes next to its logs, which logs ``<call-id> final <status>`` per call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Lab, Procs

pytestmark = pytest.mark.interop

#: The seed's record for acano.steven.lab, line by line (seeds/001, reference §3).
ACANO_RECORD = [
    "Severity: warning",
    "Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the same "
    "domain",
    "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
    "SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0",
    'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"',
]

#: The seed's record for a certificate that lacks the SRV target (seeds/001).
VIDEO_RECORD = [
    "Severity: error",
    "Text: Message cannot be routed because the peer's certificate does not contain a matching "
    "FQDN",
    "Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
    "SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0",
    'Data: expected-fqdn="vcse.video.steven.lab";certName="vcse.steven.lab";'
    'info="The peer certificate does not contain a matching FQDN"',
]


def sipp(
    lab: Lab,
    procs: Procs,
    tool: Callable[[str], str],
    tmp_path: Path,
    port: int,
    from_domain: str,
    *,
    calls: int = 1,
    rate: int = 10,
    timeout: int = 10,
    scenario: str = "sipp_uac_invite.xml",
    user: str = "stejanss",
) -> tuple[int, list[str], str]:
    """Run the printed SIPp command (one TCP socket, -t t1) against stunnel's ``port``.

    Returns SIPp's exit code, its "<call-id> final <status>" (and "<call-id> notify
    ...") log lines and its output.
    """
    log = tmp_path / f"sipp-{from_domain}-{user}.log"
    argv = [
        tool("sipp"),
        "-sf",
        lab.log_dir / scenario,
        "-t",
        "t1",
        f"127.0.0.1:{port}",
        "-s",
        user,
        "-key",
        "from_domain",
        from_domain,
        "-key",
        "to_domain",
        "skype.lab",
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-timeout",
        f"{timeout}s",
        "-nostdin",
        "-trace_logs",
        "-log_file",
        log,
    ]
    code, output = procs.run(argv, cwd=tmp_path, timeout=timeout + 10)
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return code, [line for line in lines if " final " in line or " notify " in line], output


def inbound(lab: Lab, method: str = "INVITE") -> list[dict[str, object]]:
    return [
        e for e in lab.events() if e.get("direction") == "inbound" and e.get("method") == method
    ]


def record_of(edge_log: str, call_id: str) -> list[str]:
    """The lines of the Edge log record that names ``call_id``."""
    for record in edge_log.split("$$end_record"):
        if f"SIP-Call-ID: {call_id}\n" in record:
            return record.split("$$begin_record", 1)[1].strip().splitlines()
    raise AssertionError(f"no Edge log record names {call_id}:\n{edge_log}")


def test_presence_subscription_receives_notifies_with_a_pidf_body(
    lab: Lab, procs: Procs, tool: Callable[[str], str], stunnel: Callable[..., int], tmp_path: Path
) -> None:
    """The printed presence scenario: 200, a PIDF NOTIFY (alice is busy in the seed lab),
    un-SUBSCRIBE, the terminating NOTIFY. check_it makes SIPp fail a NOTIFY that is not
    application/pidf+xml or has no <basic> status."""
    code, lines, output = sipp(
        lab,
        procs,
        tool,
        tmp_path,
        stunnel(),
        "steven.lab",
        scenario="sipp_uac_subscribe.xml",
        user="alice",
    )
    assert code == 0, output
    call_id = lines[0].split(" ", 1)[0]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "final 200",
        "notify active open Busy",
        "notify terminated open Busy",
    ]
    assert [e["status"] for e in inbound(lab, "SUBSCRIBE") if e["call_id"] == call_id] == [200]
    notifies = [e for e in lab.events() if e.get("kind") == "notify"]
    assert [(e["subscription_state"], e["presence"]) for e in notifies] == [
        ("active;expires=60", "busy"),
        ("terminated;reason=timeout", "busy"),
    ]


def test_call_from_steven_lab_is_answered_200_then_ack_and_bye(
    lab: Lab, procs: Procs, tool: Callable[[str], str], stunnel: Callable[..., int], tmp_path: Path
) -> None:
    code, finals, output = sipp(lab, procs, tool, tmp_path, stunnel(), "steven.lab")
    assert code == 0, output
    assert len(finals) == 1
    assert finals[0].endswith(" final 200"), finals
    [event] = inbound(lab)
    assert (event["accepted"], event["status"], event["from"]) == (True, 200, "sip:2000@steven.lab")
    assert lab.edge_log() == ""  # an accepted call writes no diagnostic record


@pytest.mark.parametrize(
    ("domain", "rule", "record"),
    [
        pytest.param("acano.steven.lab", "srv-not-in-domain", ACANO_RECORD, id="srv-mismatch"),
        pytest.param("video.steven.lab", "cert-mismatch", VIDEO_RECORD, id="cert-mismatch"),
    ],
)
def test_seed_failure_is_a_bare_504_with_the_seed_edge_record(
    lab: Lab,
    procs: Procs,
    tool: Callable[[str], str],
    stunnel: Callable[..., int],
    tmp_path: Path,
    domain: str,
    rule: str,
    record: list[str],
) -> None:
    # The scenario fails a 504 that carries ms-diagnostics (check_it_inverse): the
    # seeds show a bare 504 towards the federated peer, so exit 0 proves there was none.
    code, finals, output = sipp(lab, procs, tool, tmp_path, stunnel(), domain)
    assert code == 0, output
    [final] = finals
    call_id, _, status = final.partition(" final ")
    assert status == "504"
    [event] = inbound(lab)
    assert (event["accepted"], event["status"], event["rule"]) == (False, 504, rule)
    assert event["call_id"] == call_id
    lines = record_of(lab.edge_log(), call_id)
    for line in record:
        assert line in lines, f"{line!r} missing from the Edge record:\n" + "\n".join(lines)
    assert f"SIP-Call-ID: {call_id}" in lines
    assert "SIP-CSeq: 1 INVITE" in lines
    assert any(line.startswith("Peer: vcse.steven.lab:") for line in lines)


def test_fifty_calls_on_one_connection_are_all_answered_and_all_logged(
    lab: Lab, procs: Procs, tool: Callable[[str], str], stunnel: Callable[..., int], tmp_path: Path
) -> None:
    code, finals, output = sipp(
        lab, procs, tool, tmp_path, stunnel(), "steven.lab", calls=50, rate=50, timeout=20
    )
    assert code == 0, output
    assert "Successful call" in output
    assert len(finals) == 50
    assert all(line.endswith(" final 200") for line in finals)
    events = inbound(lab)
    accepted = [e for e in events if e["accepted"] is True and e["status"] == 200]
    assert len(accepted) == 50 == len(events)
    assert len({e["call_id"] for e in accepted}) == 50
    assert {e["call_id"] for e in accepted} == {line.split(" final ")[0] for line in finals}
    # -t t1: every call came over the same TLS connection (one peer port).
    assert len({e["peer"] for e in accepted}) == 1


def test_partner_cert_from_an_untrusted_ca_gets_no_sip_answer(
    lab: Lab,
    procs: Procs,
    tool: Callable[[str], str],
    stunnel: Callable[..., int],
    rogue: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert, key = rogue
    port = stunnel(cert=cert, key=key)
    code, finals, output = sipp(lab, procs, tool, tmp_path, port, "steven.lab", timeout=5)
    assert code != 0, output
    assert finals == []  # no final response of any kind reached SIPp
    assert inbound(lab) == []  # the INVITE never reached the policy
    refused = [e for e in lab.events() if e.get("kind") == "tls-handshake-failed"]
    assert len(refused) >= 1, lab.events()
    assert all(e["status"] is None for e in refused)
    assert lab.alive()
