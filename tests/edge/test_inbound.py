"""The inbound Edge end to end on loopback: a simulated Expressway-E calls in over
mutual TLS, and gets what Microsoft's Access Edge would send (seeds, reference §2.2, §7.2)."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from simulator.cli import main
from simulator.edge.app import LabAddresses, serve_lab
from simulator.edge.state import Limits
from simulator.lab import Lab, builtin_lab, load_lab_text, with_overrides
from simulator.peer import CallResult, place_call
from simulator.pki import CertSpec, client_context, issue_pki
from simulator.sip import serialize

LOOPBACK = ("127.0.0.1", 0)


@dataclass
class Running:
    lab: Lab
    addresses: LabAddresses
    certs: Path
    logs: Path

    def events(self) -> list[dict[str, object]]:
        path = self.logs / "events.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def edge_log(self) -> str:
        return (self.logs / "edge.log").read_text()

    async def call(
        self,
        from_uri: str,
        to_uri: str = "sip:stejanss@skype.lab",
        *,
        cert: str = "vcse.steven.lab",
        pai: str | None = None,
        method: str = "INVITE",
    ) -> CallResult:
        issued = self.addresses.issued
        ctx = client_context(
            cert=issued[cert].cert_path,
            key=issued[cert].key_path,
            chain=issued[cert].chain_path,
            trust=[issued["public-root"].cert_path],
        )
        return await place_call(
            edge=self.addresses.federation,
            ssl_context=ctx,
            server_hostname=self.lab.edge.fqdn,
            from_uri=from_uri,
            to_uri=to_uri,
            pai=pai,
            method=method,
            timeout=10,
        )


async def start(nursery: trio.Nursery, lab: Lab, tmp_path: Path, **limits: float) -> Running:
    lab = with_overrides(lab, listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK)
    certs, logs = tmp_path / "certs", tmp_path / "logs"
    addresses = await nursery.start(
        lambda task_status: serve_lab(
            lab,
            log_dir=logs,
            certs_dir=certs,
            limits=Limits(dns_timeout=0.3, dns_attempts=1, **limits),  # type: ignore[arg-type]
            task_status=task_status,
        )
    )
    return Running(lab=lab, addresses=addresses, certs=certs, logs=logs)


@pytest.fixture
async def seed(nursery: trio.Nursery, tmp_path: Path) -> Running:
    return await start(nursery, builtin_lab(), tmp_path)


# --- the seeds, verbatim -------------------------------------------------------------

PEER_FACING_504 = re.compile(
    r"SIP/2\.0 504 Server time-out\r\n"
    r"Via: SIP/2\.0/TLS 127\.0\.0\.1:(?P<port>\d+);branch=z9hG4bK\S+?"
    r";received=127\.0\.0\.1;ms-received-port=(?P=port);ms-received-cid=[0-9A-F]+00\r\n"
    r"Call-ID: (?P<callid>\S+)\r\n"
    r"CSeq: (?P<cseq>\d+) INVITE\r\n"
    r"From: .*<sip:2000@acano\.steven\.lab>;tag=\S+\r\n"
    r"To: <sip:stejanss@skype\.lab>;tag=[0-9A-F]{32}\r\n"
    r"Server: RTC/6\.0\r\n"
    r"Content-Length: 0\r\n\r\n"
)


async def test_seed_srv_outside_domain_gets_bare_504_and_the_seed_record(seed: Running) -> None:
    """Cisco note, first failure: acano.steven.lab's SRV points at vcse.steven.lab."""
    result = await seed.call("sip:2000@acano.steven.lab")
    assert result.final is not None
    wire = serialize(result.final).decode()
    match = PEER_FACING_504.fullmatch(wire)
    assert match, wire
    assert "ms-diagnostics" not in wire.lower()  # never towards a federated peer
    assert int(match["port"]) == result.local_port
    record = seed.edge_log()
    expected = (
        "Severity: warning\n"
        "Text: The domain of the message resolved by DNS SRV but none of the FQDNs is in the "
        "same domain\n"
        "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH\n"
        "SIP-Start-Line: INVITE sip:stejanss@skype.lab SIP/2.0\n"
        f"SIP-Call-ID: {match['callid']}\n"
        f"SIP-CSeq: {match['cseq']} INVITE\n"
        f"Peer: vcse.steven.lab:{result.local_port}\n"
        'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"\n'
        "$$end_record\n"
    )
    assert record.endswith(expected), record
    first = record.splitlines()[0]
    assert re.fullmatch(
        r"TL_WARN\(TF_DIAG\) \[sfvedge\\sfvedge\][0-9A-F]{4}\.[0-9A-F]{4}::"
        r"\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\.\d{3}\.[0-9A-F]{8} "
        r"\(SIPStack,SIPAdminLog::WriteDiagnosticEvent:SIPAdminLog\.cpp\(830\)\) "
        r"\[\d+\] \$\$begin_record",
        first,
    ), first
    (event,) = seed.events()
    assert event["rule"] == "srv-not-in-domain"
    assert event["status"] == 504
    assert event["fidelity"] == "verbatim"


async def test_seed_certificate_without_srv_target_gets_the_cert_mismatch_record(
    seed: Running,
) -> None:
    """Cisco note, second failure: SRV right, certificate lacks vcse.video.steven.lab."""
    result = await seed.call("sip:2000@video.steven.lab")
    assert result.final is not None
    assert result.final.status == 504
    assert result.final.headers.get("Server") == "RTC/6.0"
    record = seed.edge_log()
    assert record.startswith("TL_ERROR(TF_DIAG) [sfvedge\\sfvedge]")
    assert "SIPAdminLog.cpp(833)" in record.splitlines()[0]
    assert "\nSeverity: error\n" in record
    assert (
        "\nText: Message cannot be routed because the peer's certificate does not contain a "
        "matching FQDN\nResult-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH\n"
    ) in record
    assert (
        '\nData: expected-fqdn="vcse.video.steven.lab";certName="vcse.steven.lab";'
        'info="The peer certificate does not contain a matching FQDN"\n'
    ) in record


async def test_good_partner_is_answered_as_the_skype_user(seed: Running) -> None:
    result = await seed.call("sip:2000@steven.lab")
    trying, ringing, ok = result.responses
    assert [r.status for r in result.responses] == [100, 180, 200]
    # 100 is the Edge's own (Server); 180 and 200 are the user's (User-Agent).
    assert trying.headers.get("Server") == "RTC/6.0"
    assert trying.to.tag is None
    for response in (ringing, ok):
        assert response.headers.get("Server") is None
        assert (response.headers.get("User-Agent") or "").endswith("(Skype for Business)")
        assert (response.headers.get("Record-Route") or "").startswith("<sip:sip.skype.lab:")
    assert ok.headers.get("Content-Type") == "application/sdp"
    # The simulated Expressway offers best-effort SRTP: the Skype user encrypts.
    assert b" RTP/SAVP " in ok.body
    assert b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" in ok.body
    assert b"a=candidate:1 1 UDP 2130706431 127.0.0.1 " in ok.body
    assert b"a=rtpmap:0 PCMU/8000" in ok.body
    assert re.fullmatch(r"[0-9A-F]{32}", ok.to.tag or "")
    assert result.forwarded_dialog  # ACK, BYE and its 200 completed
    assert seed.edge_log() == ""  # nothing to log for an accepted call
    (event,) = seed.events()
    assert event["rule"] == "accepted"
    assert event["user"] == {
        "media": "RTP/SAVP PCMU PCMA telephone-event",
        "secure": True,
        "offer": False,
    }


@pytest.mark.parametrize(
    ("method", "status"),
    [("OPTIONS", 200), ("MESSAGE", 200)],
)
async def test_other_methods_from_a_good_partner(seed: Running, method: str, status: int) -> None:
    result = await seed.call("sip:2000@steven.lab", method=method)
    assert result.final is not None
    assert result.final.status == status


async def test_pai_decides_over_from(seed: Running) -> None:
    """P-Asserted-Identity's domain is the one checked (reference §2.2 I2, configurable)."""
    result = await seed.call("sip:2000@steven.lab", pai="sip:2000@acano.steven.lab")
    assert result.final is not None
    assert result.final.status == 504
    (event,) = seed.events()
    assert event["domain"] == "acano.steven.lab"
    assert event["rule"] == "srv-not-in-domain"


async def test_no_srv_record_is_refused(seed: Running) -> None:
    result = await seed.call("sip:2000@nosrv.steven.lab")
    assert result.final is not None
    assert result.final.status == 504
    (event,) = seed.events()
    assert event["rule"] == "srv-nxdomain"


async def test_certificate_from_untrusted_ca_fails_the_handshake(
    nursery: trio.Nursery, seed: Running
) -> None:
    """The Edge refuses the TLS handshake itself; the process keeps serving."""
    issued = issue_pki(
        [
            *seed.lab.certs,
            CertSpec(name="rogue", issuer="private-root", cn="vcse.steven.lab"),
        ],
        seed.certs,
        now=dt.datetime.now(dt.UTC),
    )
    seed.addresses.issued["rogue"] = issued["rogue"]
    refused = await seed.call("sip:2000@steven.lab", cert="rogue")
    assert refused.final is None
    assert refused.tls_error
    events = seed.events()
    assert events[-1]["rule"] == "tls-handshake-failed"
    assert "EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED" in seed.edge_log()  # inferred, labelled
    again = await seed.call("sip:2000@steven.lab")
    assert again.final is not None
    assert again.final.status == 200


# --- labs built for one rule each ------------------------------------------------------

BASE = """
name = "rule"
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"{extra_trust}]
federation = "{federation}"
blocked = [{blocked}]
hosted = {hosted}
{allowed}
[dns]
records = \"\"\"
steven.lab. 300 IN SOA ns.steven.lab. hostmaster.steven.lab. 1 3600 600 86400 300
_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 {target}.
{target}. 300 IN A 127.0.0.1
\"\"\"
silent = ["quiet.steven.lab"]
[certs.public-root]
ca = true
public = true
[certs.private-root]
ca = true
[certs."sip.skype.lab"]
issuer = "public-root"
[certs.peer]
issuer = "{issuer}"
cn = "{cn}"
san = [{san}]
validity = "{validity}"
"""


def rule_lab(
    tmp_path: Path,
    *,
    target: str = "vcse.acano.steven.lab",
    cn: str = "vcse.acano.steven.lab",
    san: str = '"vcse.acano.steven.lab"',
    issuer: str = "public-root",
    validity: str = "valid",
    federation: str = "discovery",
    blocked: str = "",
    hosted: str = "false",
    allowed: str = "",
    extra_trust: str = "",
) -> Lab:
    text = BASE.format(
        target=target,
        cn=cn,
        san=san,
        issuer=issuer,
        validity=validity,
        federation=federation,
        blocked=blocked,
        hosted=hosted,
        allowed=allowed,
        extra_trust=extra_trust,
    )
    return load_lab_text(text, path=tmp_path / "rule.toml")


RULES = [
    pytest.param({}, "sip:2000@acano.steven.lab", 200, "accepted", id="good-san"),
    pytest.param({"san": ""}, "sip:2000@acano.steven.lab", 200, "accepted", id="cn-only-cert"),
    pytest.param(
        {"san": '"other.acano.steven.lab"'},
        "sip:2000@acano.steven.lab",
        504,
        "cert-mismatch",
        id="cn-ignored-when-san-exists",
    ),
    pytest.param(
        {"target": "vcse.sub.acano.steven.lab", "cn": "vcse.sub.acano.steven.lab", "san": ""},
        "sip:2000@acano.steven.lab",
        504,
        "srv-not-in-domain",
        id="srv-target-in-subdomain",
    ),
    pytest.param({}, "sip:2000@quiet.steven.lab", 504, "srv-timeout", id="dns-timeout"),
    pytest.param({}, "sip:2000@gone.steven.lab", 504, "srv-nxdomain", id="nxdomain"),
    pytest.param(
        {"blocked": '"steven.lab"'},
        "sip:2000@acano.steven.lab",
        None,
        "blocked-domain",
        id="blocked",
    ),
    pytest.param(
        {"federation": "off"}, "sip:2000@acano.steven.lab", None, "federation-off", id="fed-off"
    ),
    pytest.param(
        {"federation": "allowlist"},
        "sip:2000@acano.steven.lab",
        None,
        "domain-not-allowed",
        id="allowlist-not-listed",
    ),
    pytest.param(
        {
            "federation": "allowlist",
            "target": "nowhere.example",
            "allowed": '[[edge.allowed]]\ndomain = "acano.steven.lab"\n'
            'proxy_fqdn = "vcse.acano.steven.lab"',
        },
        "sip:2000@acano.steven.lab",
        200,
        "accepted",
        id="allowed-partner-server-matching-proxy-fqdn",
    ),
    pytest.param(
        {
            "federation": "allowlist",
            "allowed": '[[edge.allowed]]\ndomain = "acano.steven.lab"\n'
            'proxy_fqdn = "edge.acano.steven.lab"',
        },
        "sip:2000@acano.steven.lab",
        None,
        "proxy-fqdn-mismatch",
        id="allowed-partner-server-other-proxy-fqdn",
    ),
]


@pytest.mark.parametrize(("change", "from_uri", "status", "rule"), RULES)
async def test_rule(
    nursery: trio.Nursery,
    tmp_path: Path,
    change: dict[str, str],
    from_uri: str,
    status: int | None,
    rule: str,
) -> None:
    running = await start(nursery, rule_lab(tmp_path, **change), tmp_path)
    result = await running.call(from_uri, cert="peer")
    assert result.final is not None, result.tls_error
    if status is not None:
        assert result.final.status == status
    else:
        assert result.final.status >= 400
    (event,) = running.events()
    assert event["rule"] == rule
    if rule != "accepted":
        assert running.edge_log().rstrip().endswith("$$end_record")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"validity": "expired"}, id="expired"),
        pytest.param({"validity": "not-yet-valid"}, id="not-yet-valid"),
        pytest.param({"issuer": "private-root"}, id="untrusted-private-ca"),
        pytest.param(
            {"issuer": "private-root", "hosted": "true", "extra_trust": ', "private-root"'},
            id="hosted-needs-public-ca",
        ),
    ],
)
async def test_certificate_the_edge_cannot_trust_fails_the_handshake(
    nursery: trio.Nursery, tmp_path: Path, change: dict[str, str]
) -> None:
    running = await start(nursery, rule_lab(tmp_path, **change), tmp_path)
    result = await running.call("sip:2000@acano.steven.lab", cert="peer")
    assert result.final is None
    assert result.tls_error
    (event,) = running.events()
    assert event["rule"] == "tls-handshake-failed"


async def test_private_ca_accepted_on_premises_when_trusted(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """On premises a private CA is fine once imported into the Edge's trust list."""
    lab = rule_lab(tmp_path, issuer="private-root", extra_trust=', "private-root"')
    running = await start(nursery, lab, tmp_path)
    result = await running.call("sip:2000@acano.steven.lab", cert="peer")
    assert result.final is not None
    assert result.final.status == 200


async def test_quiet_keeps_logs_but_prints_no_line_per_decision(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """``fedsim serve --quiet``: load tests keep edge.log and events.jsonl, not 2,000 lines/s."""
    lines: list[str] = []
    lab = with_overrides(builtin_lab(), listen=LOOPBACK, clients=LOOPBACK, dns_listen=LOOPBACK)
    addresses = await nursery.start(
        lambda task_status: serve_lab(
            lab,
            log_dir=tmp_path / "logs",
            certs_dir=tmp_path / "certs",
            console=lines.append,
            quiet=True,
            task_status=task_status,
        )
    )
    running = Running(
        lab=lab, addresses=addresses, certs=tmp_path / "certs", logs=tmp_path / "logs"
    )
    result = await running.call("sip:2000@acano.steven.lab")
    assert result.final is not None
    assert result.final.status == 504
    assert len(running.events()) == 1
    assert "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in running.edge_log()
    assert lines == []


# --- fedsim call / fedsim client against the Skype user of the built-in lab ----------------


async def _cli(argv: list[str]) -> int:
    """Run ``fedsim`` in a worker thread, so the Edge's event loop keeps serving."""
    return await trio.to_thread.run_sync(main, argv)


def _call_argv(seed: Running, *extra: str) -> list[str]:
    issued = seed.addresses.issued
    host, port = seed.addresses.federation
    return [
        "call",
        "--edge",
        f"{host}:{port}",
        "--cert",
        str(issued["vcse.steven.lab"].cert_path),
        "--key",
        str(issued["vcse.steven.lab"].key_path),
        "--ca",
        str(issued["public-root"].cert_path),
        "--server-name",
        "sip.skype.lab",
        "--from",
        "sip:2000@steven.lab",
        *extra,
    ]


async def test_fedsim_call_decodes_the_users_52017(
    seed: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _call_argv(seed, "--to", "sip:carol@skype.lab", "--offer", "plain")
    assert await _cli(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert "< SIP/2.0 488 Not Acceptable Here" in out
    assert "ms-client-diagnostics 52017: Encryption levels dont match" in out
    assert out[-1] == "> ACK sip:carol@skype.lab SIP/2.0"


async def test_fedsim_call_subscribes_and_reports_each_notify(
    seed: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _call_argv(seed, "--to", "sip:alice@skype.lab", "--method", "SUBSCRIBE")
    assert await _cli(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "NOTIFY active;expires=3600: busy (application/pidf+xml)",
        "NOTIFY terminated;reason=timeout: busy (application/pidf+xml)",
    ]


async def test_fedsim_client_opens_an_im_session_whose_text_is_in_the_events(
    seed: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = seed.addresses.clients
    ca = seed.addresses.issued["public-root"].cert_path
    argv = ["client", "--edge", f"{host}:{port}", "--ca", str(ca), "--server-name"]
    argv += ["sip.skype.lab", "--to", "sip:alice@skype.lab", "--offer", "im", "--text", "Hi!"]
    assert await _cli(argv) == 0
    out = capsys.readouterr().out
    assert "m=message 5060 sip sip:alice@skype.lab" in out
    texts = [e["user"]["text"] for e in seed.events() if e.get("kind") == "local"]  # type: ignore[index]
    messages = [e["text"] for e in seed.events() if e.get("kind") == "message"]
    assert (texts, messages) == (["Hi!"], ["Hi!"])  # embedded first, then in the dialog


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "MESSAGE", "--offer", "srtp"], "--offer: only for an INVITE"),
        (["--no-ack", "--no-hangup"], "--no-hangup leaves the call up"),
        (["--refresh"], "only for a SUBSCRIBE"),
    ],
)
def test_dialog_options_that_do_not_fit_are_one_error_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["call", "--via", "expe", "--from", "sip:2000@steven.lab", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
