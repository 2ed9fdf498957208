"""`fedsim check` end to end against the lab DNS, with good and bad certificates.

Each test runs the real command (argument parsing, PEM reading, DNS over UDP to
an in-process serve_dns, report, rendering, exit status) and compares what
Skype would answer with the Cisco note's and the reference's verbatim strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from simulator.cli import main
from simulator.diagnostics import parse_edge_log
from simulator.dns import ZoneSet, parse_zone_text, serve_dns
from simulator.pki import IssuedCert

Check = Callable[..., Awaitable[tuple[int, str, str]]]

RULE_LINE = re.compile(r"^  (\d) (PASS|FAIL|WARN|SKIP)  ", re.MULTILINE)


def statuses(out: str) -> dict[int, str]:
    """Rule number -> PASS/FAIL/WARN/SKIP, from the text report."""
    return {int(n): s for n, s in RULE_LINE.findall(out)}


def reference_header(shared_dir: Path, code: int) -> str:
    """The verbatim client-facing ms-diagnostics value of reference §7.1 for ``code``."""
    text = (shared_dir / "reference" / "ms-federation.md").read_text(encoding="utf-8")
    section = text[text.index("### 7.1") : text.index("### 7.2")]
    match = re.search(rf"ms-diagnostics: ({code};[^`\n]*)", section)
    assert match is not None, f"reference §7.1 lost its {code} line"
    return match.group(1)


def seed_record(shared_dir: Path, symbol: str) -> tuple[tuple[str, str], ...]:
    """The Data of the Cisco note's Edge record with ``symbol`` (parsed from the seed)."""
    text = (shared_dir / "seeds" / "000_dd4cf63e5627e786.txt").read_text(encoding="utf-8")
    records = [r for r in parse_edge_log(text) if r.result_symbol == symbol]
    assert len(records) == 1
    return records[0].data


def our_record(out: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The symbol and Data of the one Edge record in the report."""
    records = parse_edge_log(out)
    assert len(records) == 1
    assert records[0].result_symbol is not None
    return records[0].result_symbol, records[0].data


async def test_good_configuration_federates(check: Check) -> None:
    code, out, err = await check("cms.steven.lab", "vcse.cms.steven.lab")
    assert (code, err) == (0, "")
    # Rule 8: this certificate names no CRL distribution point, a warning under the
    # default revocation = soft (a Lync Edge certificate must carry one, reference 1.9).
    assert statuses(out) == {**dict.fromkeys(range(1, 8), "PASS"), 8: "WARN"}
    assert "a certificate names no CRL distribution point" in out
    assert "SRV 0 0 5061 vcse.cms.steven.lab" in out
    assert "vcse.cms.steven.lab: 192.0.2.20, 2001:db8::20" in out
    assert "vcse.cms.steven.lab: in the certificate" in out
    assert "accepted: the Edge routes the INVITE to sip:user@skype.lab" in out
    assert "the Edge would connect to vcse.cms.steven.lab:5061 (192.0.2.20, 2001:db8::20)" in out
    assert "What to change" not in out
    assert out.rstrip().endswith("Result: cms.steven.lab would federate (inbound and outbound)")


async def test_seed_srv_pointing_at_the_parent_domain(check: Check, shared_dir: Path) -> None:
    code, out, _ = await check("acano.steven.lab", "vcse.steven.lab")
    assert code == 1
    assert statuses(out) == {1: "PASS", 2: "FAIL", 3: "SKIP", 4: "SKIP", 5: "PASS", 6: "PASS",
                             7: "PASS", 8: "WARN"}  # fmt: skip
    assert "vcse.steven.lab:5061: NOT in acano.steven.lab: it is in steven.lab, a parent" in out
    # Inbound: bare 504 to the Expressway, the note's record in the Edge log.
    assert "      SIP/2.0 504 Server time-out\n      Server: RTC/6.0\n    Edge log" in out
    symbol, data = our_record(out)
    assert symbol == "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
    assert data == seed_record(shared_dir, symbol)
    assert 'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"\n' in out
    assert "Peer: vcse.steven.lab:5061\n" in out
    # Outbound: the client's 1009, as the note shows it (for this domain).
    expected = (
        '1009;reason="No match for domain in DNS SRV results";domain="acano.steven.lab";'
        'fqdn1="vcse.steven.lab:5061";source="sip.skype.lab"'
    )
    assert f"      ms-diagnostics: {expected}\n" in out
    assert (
        "point _sipfederationtls._tcp.acano.steven.lab at vcse.acano.steven.lab (a host directly "
        "in acano.steven.lab, instead of vcse.steven.lab) with an A record for "
        "vcse.acano.steven.lab -> the Expressway-E, and add vcse.acano.steven.lab to the "
        "Expressway-E certificate's SANs"
    ) in out
    assert "would NOT federate (inbound: srv-not-in-domain, outbound: srv-not-in-domain)" in out


async def test_certificate_without_the_srv_target(check: Check, shared_dir: Path) -> None:
    # The note's second case: cms.steven.lab -> vcse.cms.steven.lab, certificate vcse.steven.lab.
    code, out, _ = await check("cms.steven.lab", "vcse.steven.lab")
    assert code == 1
    assert statuses(out)[4] == "FAIL"
    assert "vcse.cms.steven.lab: NOT in the certificate" in out
    symbol, data = our_record(out)
    assert symbol == "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"
    assert data == (
        ("expected-fqdn", "vcse.cms.steven.lab"),
        ("certName", "vcse.steven.lab"),
        ("info", "The peer certificate does not contain a matching FQDN"),
    )
    assert dict(data)["info"] == dict(seed_record(shared_dir, symbol))["info"]
    assert f"      ms-diagnostics: {reference_header(shared_dir, 1010)}\n" in out
    assert "add vcse.cms.steven.lab to the Expressway-E certificate's SANs and reissue it" in out


async def test_seed_1009_for_a_sub_domain_target_is_verbatim(
    check: Check, shared_dir: Path, nursery: trio.Nursery
) -> None:
    # Reference §7.1's 1009 is for cms.steven.lab -> vcse.sub.cms.steven.lab: stage it apart.
    records = (
        "_sipfederationtls._tcp.cms.steven.lab. 300 IN SRV 0 0 5061 vcse.sub.cms.steven.lab.\n"
    )
    zones = ZoneSet.from_records(parse_zone_text(records, source="<sub>"))
    host, port = await nursery.start(serve_dns, zones, "127.0.0.1", 0)
    code, out, _ = await check(
        "cms.steven.lab", "vcse.steven.lab", "--dns", f"{host}:{port}", "--direction", "outbound"
    )
    assert code == 1
    assert "it is in a sub-domain of cms.steven.lab (sub.cms.steven.lab)" in out
    assert f"      ms-diagnostics: {reference_header(shared_dir, 1009)}\n" in out
    assert "inbound:" not in out
    assert statuses(out)[7] == "PASS"


async def test_cn_only_certificate_passes(check: Check) -> None:
    code, out, _ = await check("cnonly.steven.lab", "cn-only")
    assert code == 0, out
    assert "certificate names (CN, the certificate has no DNS SAN): vcse.cnonly.steven.lab" in out
    assert "vcse.cnonly.steven.lab: in the certificate" in out


async def test_cn_does_not_count_when_the_certificate_has_sans(check: Check) -> None:
    code, out, _ = await check("cms.steven.lab", "cn-not-san")
    assert code == 1
    assert "(the CN vcse.cms.steven.lab does not count: the certificate has DNS SANs)" in out
    assert "(its CN says so, but a certificate with DNS SANs is matched on them)" in out


async def test_no_srv_record_is_1008(check: Check) -> None:
    code, out, _ = await check("nosrv.steven.lab", "vcse.steven.lab")
    assert code == 1
    assert statuses(out)[1] == "FAIL"
    assert "NXDOMAIN: the name does not exist" in out
    assert (
        'ms-diagnostics: 1008;reason="Unable to resolve DNS SRV record";source="sip.skype.lab"\n'
        in out
    )
    assert our_record(out)[0] == "EMU_UNVERIFIED_NO_SRV"
    assert (
        "publish '_sipfederationtls._tcp.nosrv.steven.lab. IN SRV 0 0 5061 vcse.nosrv.steven.lab.'"
        in out
    )


async def test_silent_dns_server_is_a_timeout(check: Check) -> None:
    code, out, _ = await check("silent.steven.lab", "vcse.steven.lab")
    assert code == 1
    assert "no answer: the DNS server did not reply in time" in out
    assert "ms-diagnostics: 1008;" in out
    assert "answered TIMEOUT for _sipfederationtls._tcp.silent.steven.lab" in out


async def test_missing_address_is_1014_outbound_only(check: Check) -> None:
    code, out, _ = await check("noa.steven.lab", "vcse.noa.steven.lab")
    assert code == 1
    assert statuses(out)[3] == "FAIL"
    assert "vcse.noa.steven.lab: no address: NXDOMAIN" in out
    assert (
        'ms-diagnostics: 1014;reason="Unable to resolve DNS A record.";source="sip.skype.lab"\n'
        in out
    )
    assert "accepted: the Edge routes the INVITE" in out  # the callback check needs no A record
    assert "publish an A (or AAAA) record for vcse.noa.steven.lab" in out

    code, out, _ = await check("noa.steven.lab", "vcse.noa.steven.lab", "--direction", "inbound")
    assert code == 0
    assert statuses(out)[3] == "SKIP"
    assert "outbound calls only, and --direction is inbound" in out


async def test_first_target_without_address_uses_the_next(check: Check) -> None:
    code, out, _ = await check("two.steven.lab", "both-two")
    assert code == 0
    assert statuses(out)[3] == "WARN"
    assert "the Edge would connect to b.two.steven.lab:5061 (192.0.2.50)" in out

    # Only the unreachable target is in the certificate: inbound passes, outbound 1010.
    code, out, _ = await check("two.steven.lab", "only-a-two")
    assert code == 1
    assert statuses(out)[4] == "WARN"
    assert "accepted: the Edge routes the INVITE" in out
    assert 'tls-target="b.two.steven.lab";PeerServer="a.two.steven.lab"' in out


async def test_private_ca_not_trusted_fails_rule_5(
    check: Check, pki: dict[str, IssuedCert]
) -> None:
    code, out, _ = await check("cms.steven.lab", "private")
    assert code == 1
    assert statuses(out)[5] == "FAIL"
    assert "CN=Steven Lab Private Root" in out
    assert "of 'vcse.cms.steven.lab' is not a trusted CA and was not sent" in out
    # Inbound, fedsim serve refuses this certificate at the TLS handshake: so does check.
    assert "refused at the TLS handshake" in out
    assert parse_edge_log(out) == []
    assert 'HRESULT="0x80090325(SEC_E_UNTRUSTED_ROOT)";source="sip.skype.lab"' in out
    assert "import its root CA into the Edge's Trusted Root store (here: --trust ROOT.pem)" in out

    # Imported into the Edge's store: trusted.
    code, out, _ = await check(
        "cms.steven.lab", "private", "--trust", str(pki["private-root"].cert_path)
    )
    assert code == 0, out
    assert "1 private from --trust" in out


async def test_hosted_refuses_a_private_ca(check: Check, pki: dict[str, IssuedCert]) -> None:
    trust = ("--trust", str(pki["private-root"].cert_path))
    code, out, _ = await check("cms.steven.lab", "private", *trust, "--hosted")
    assert code == 1
    assert statuses(out)[5] == "FAIL"
    assert "its root is not a public CA: Office 365 refuses it" in out
    assert "Office 365 (hosted) trusts only public CAs" in out
    assert 'HRESULT="0x80090325(SEC_E_UNTRUSTED_ROOT)"' in out

    code, out, _ = await check("cms.steven.lab", "vcse.cms.steven.lab", *trust, "--hosted")
    assert code == 0
    assert "its root is a public CA, as Office 365 requires" in out


async def test_expired_certificate_fails_rule_6(check: Check) -> None:
    code, out, _ = await check("cms.steven.lab", "expired")
    assert code == 1
    assert (statuses(out)[5], statuses(out)[6]) == ("PASS", "FAIL")
    assert "the certificate 'vcse.cms.steven.lab' expired on" in out
    # Inbound the handshake refuses it (as fedsim serve); outbound the client gets 1010.
    assert "refused at the TLS handshake" in out
    assert 'HRESULT="0x80090328(SEC_E_CERT_EXPIRED)"' in out
    assert "renew the certificate" in out


async def test_intermediate_must_be_sent(check: Check, pki: dict[str, IssuedCert]) -> None:
    code, out, _ = await check("cms.steven.lab", "via-inter")
    assert code == 1
    assert statuses(out)[5] == "FAIL"
    assert "was not sent" in out

    inter = str(pki["public-inter"].cert_path)
    code, out, _ = await check("cms.steven.lab", "via-inter", "--chain", inter)
    assert code == 0, out
    assert "sent with it: Lab Public Issuing CA" in out

    # A PEM holding the leaf and its chain works the same.
    code, _, _ = await check("cms.steven.lab", str(pki["via-inter"].chain_path))
    assert code == 0


async def test_missing_eku_follows_the_client_eku_rule(check: Check) -> None:
    # Default rule client_eku=require: fedsim serve refuses the handshake, so check fails.
    code, out, _ = await check("cms.steven.lab", "server-only")
    assert code == 1
    assert statuses(out)[7] == "FAIL"
    assert "inbound: the Expressway-E is the TLS client: needs clientAuth: MISSING" in out
    assert "outbound: the Expressway-E is the TLS server: needs serverAuth: present" in out
    assert "refused at the TLS handshake" in out

    code, out, _ = await check("cms.steven.lab", "server-only", "--rule", "client_eku=ignore")
    assert code == 0
    assert statuses(out)[7] == "WARN"

    code, out, _ = await check("cms.steven.lab", "server-only", "--direction", "outbound")
    assert statuses(out)[7] == "PASS"


async def test_wildcard_is_not_accepted(check: Check) -> None:
    code, out, _ = await check("cms.steven.lab", "wildcard")
    assert code == 1
    assert "only a wildcard covers it" in out


async def test_edge_names_and_users_are_options(check: Check) -> None:
    code, out, _ = await check(
        "acano.steven.lab",
        "vcse.steven.lab",
        "--skype-domain",
        "contoso.com",
        "--edge-fqdn",
        "sip.contoso.com",
        "--from-user",
        "2000",
        "--to-user",
        "stejanss",
    )
    assert code == 1
    assert "SIP-Start-Line: INVITE sip:stejanss@contoso.com SIP/2.0" in out
    assert ';source="sip.contoso.com"' in out
    assert "a Skype user calls sip:2000@acano.steven.lab" in out

    code, out, _ = await check(
        "acano.steven.lab", "vcse.steven.lab", "--skype-domain", "contoso.com"
    )
    assert ';source="sip.contoso.com"' in out  # default Edge FQDN: sip.<Skype domain>


async def test_default_trust_is_the_system_store(
    check: Check, pki: dict[str, IssuedCert], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # ssl's default verify paths honour SSL_CERT_FILE / SSL_CERT_DIR.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["public-root"].cert_path))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    code, out, _ = await check("cms.steven.lab", "vcse.cms.steven.lab", "--hosted", public=None)
    assert code == 0, out
    assert f"1 public from the system store {pki['public-root'].cert_path}" in out

    empty = tmp_path / "none.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    code, out, _ = await check("cms.steven.lab", "vcse.cms.steven.lab", public=None)
    assert code == 1
    assert "trusted CAs: none: no system CA store found" in out


CASES = [
    ("cms.steven.lab", "vcse.cms.steven.lab", ()),
    ("acano.steven.lab", "vcse.steven.lab", ()),
    ("cms.steven.lab", "vcse.steven.lab", ()),
    ("nosrv.steven.lab", "vcse.steven.lab", ()),
    ("noa.steven.lab", "vcse.noa.steven.lab", ()),
    ("cms.steven.lab", "expired", ()),
    ("cms.steven.lab", "server-only", ("--direction", "inbound")),
]


@pytest.mark.parametrize(("domain", "cert", "extra"), CASES)
async def test_json_has_the_same_verdicts(
    check: Check, domain: str, cert: str, extra: tuple[str, ...]
) -> None:
    text_code, text, _ = await check(domain, cert, *extra)
    json_code, out, _ = await check(domain, cert, *extra, "--json")
    doc = json.loads(out)
    assert json_code == text_code
    assert doc["federates"] is (json_code == 0)
    assert doc["domain"] == domain
    assert {r["number"]: r["status"].upper() for r in doc["rules"]} == statuses(text)
    for rule in doc["rules"]:
        for line in rule["evidence"]:
            assert line in text
    for direction, answer in doc["answers"].items():
        assert f"  {direction}: {answer['call']}" in text
        if answer["accepted"]:
            assert answer["rule"] == "accepted"
            continue
        if answer["rule"] == "tls-handshake-failed":
            assert answer["status"] is None
            assert "refused at the TLS handshake" in text
            continue
        assert answer["status"] == 504
        for name, value in answer["headers"]:
            assert f"      {name}: {value}\n" in text
        if direction == "inbound":
            # Two runs, two times: compare the record below its time-stamped first line.
            body = answer["edge_log"].split("\n", 1)[1]
            assert body in text.replace("\n      ", "\n")
            assert answer["ms_diagnostics"] is None
    assert doc["fixes"] == [line[4:] for line in text.splitlines() if line.startswith("  - ")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cert", "{pem}", "--domain", "not a domain"], "--domain 'not a domain': not a DNS"),
        (["--cert", "{missing}", "--domain", "cms.steven.lab"], "no such file"),
        (["--cert", "{notpem}", "--domain", "cms.steven.lab"], "no CERTIFICATE block found"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--chain", "{notpem}"],
         "no CERTIFICATE block found"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--trust", "{missing}"],
         "no such file (check the --trust path)"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--dns", "nonsense!"],
         "--dns 'nonsense!'"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--dns", "127.0.0.1:99999"],
         "outside 0-65535"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--dns", "[::1]:x"],
         "expected [IPv6]:port"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--dns", "127.0.0.1", "--timeout", "0"],
         "--timeout 0.0"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--from-user", "a b", "--dns", "::1"],
         "from_user must be a SIP user part"),
        (["--cert", "{pem}", "--domain", "cms.steven.lab", "--direction", "sideways"],
         "invalid choice: 'sideways'"),
        (["--cert", "{pem}"], "fedsim check needs --domain and --cert, or --lab LAB.toml"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_and_exit_2(
    argv: list[str],
    message: str,
    pki: dict[str, IssuedCert],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notpem = tmp_path / "expe.pem"
    notpem.write_text("this is not a certificate\n")
    paths = {
        "pem": str(pki["vcse.cms.steven.lab"].cert_path),
        "missing": str(tmp_path / "nope.pem"),
        "notpem": str(notpem),
    }
    code = main(["check", *(a.format(**paths) for a in argv)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("fedsim: error: ")
    assert message in err
