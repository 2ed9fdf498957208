"""Broken lab files: each gives one LabError with the exact ``path:line:``, the key and a fix.

Every case edits BASE (a valid lab) by line number, so the expected line is plain
to see: BASE's line numbers are written in the comment column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.errors import LabError
from simulator.lab import load_lab, load_lab_text

BASE_LINES = [
    'name = "t"',  # 1
    "[edge]",  # 2
    'fqdn = "sip.skype.lab"',  # 3
    'domains = ["skype.lab"]',  # 4
    'cert = "sip.skype.lab"',  # 5
    'trust = ["root"]',  # 6
    "[dns]",  # 7
    'listen = "127.0.0.1:5353"',  # 8
    "[certs.root]",  # 9
    "ca = true",  # 10
    '[certs."sip.skype.lab"]',  # 11
    'issuer = "root"',  # 12
    '[certs."vcse.steven.lab"]',  # 13
    'issuer = "root"',  # 14
    "[peers.expe]",  # 15
    'cert = "vcse.steven.lab"',  # 16
    "[[calls]]",  # 17
    'direction = "inbound"',  # 18
    'via = "expe"',  # 19
    'from = "sip:2000@steven.lab"',  # 20
    'to = "sip:bob@skype.lab"',  # 21
    "expect = { status = 200 }",  # 22
]
BASE = "\n".join(BASE_LINES) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """Replace line ``at`` of BASE with ``new`` (None deletes it; lines may be several)."""

    at: int
    new: str | None
    line: int
    says: tuple[str, ...]
    append: str = ""

    def text(self) -> str:
        lines = list(BASE_LINES)
        if self.new is None:
            del lines[self.at - 1]
        else:
            lines[self.at - 1] = self.new
        return "\n".join(lines) + "\n" + self.append


def keep(at: int) -> str:
    return BASE_LINES[at - 1]


CASES: dict[str, Case] = {
    # -- TOML itself -----------------------------------------------------------------
    "toml-syntax": Case(
        at=8, new="listen = 127.0.0.1:5353", line=8, says=("invalid TOML", "line 8, column")
    ),
    "toml-duplicate-key": Case(
        at=4, new=keep(4) + '\nfqdn = "x.lab"', line=5, says=("invalid TOML",)
    ),
    # -- unknown keys, with a did-you-mean in each section --------------------------
    "unknown-top-key": Case(
        at=1, new='nme = "t"', line=1, says=("key 'nme'", "unknown key", "did you mean 'name'?")
    ),
    "unknown-edge-key": Case(
        at=2,
        new='[edge]\nlistn = "127.0.0.1:5061"',
        line=3,
        says=("[edge] key 'listn': unknown key (did you mean 'listen'?)",),
    ),
    "unknown-dns-key": Case(
        at=8,
        new='recrods = ""',
        line=8,
        says=("[dns] key 'recrods'", "did you mean 'records'?"),
    ),
    "unknown-cert-key": Case(
        at=12,
        new='isuer = "root"',
        line=12,
        says=("[certs.\"sip.skype.lab\"] key 'isuer'", "did you mean 'issuer'?"),
    ),
    "unknown-peer-key": Case(
        at=16,
        new=keep(16) + "\nanwser = 200",
        line=17,
        says=("[peers.expe] key 'anwser'", "did you mean 'answer'?"),
    ),
    "unknown-call-key": Case(
        at=18,
        new='dirction = "inbound"',
        line=18,
        says=("[[calls]] #1 key 'dirction'", "did you mean 'direction'?"),
    ),
    "unknown-expect-key": Case(
        at=22,
        new="expect = { stauts = 200 }",
        line=22,
        says=("[[calls]] #1 key 'expect.stauts'", "did you mean 'status'?"),
    ),
    "unknown-key-no-close-match": Case(
        at=2, new="[edge]\nzzzz = 1", line=3, says=("key 'zzzz'", "known keys: fqdn, domains")
    ),
    # -- wrong types, one per key family ---------------------------------------------
    "domains-is-a-string": Case(
        at=4,
        new='domains = "skype.lab"',
        line=4,
        says=(
            "[edge] key 'domains': expected a list of domain names, got a string "
            '(write domains = ["skype.lab"])',
        ),
    ),
    "fqdn-is-an-integer": Case(
        at=3, new="fqdn = 5", line=3, says=("key 'fqdn'", "expected a string, got an integer")
    ),
    "hosted-is-a-string": Case(
        at=3,
        new=keep(3) + '\nhosted = "yes"',
        line=4,
        says=("key 'hosted'", "expected true or false, got a string"),
    ),
    "listen-is-an-integer": Case(
        at=8,
        new="listen = 5353",
        line=8,
        says=("[dns] key 'listen'", 'expected a "host:port" string, got an integer'),
    ),
    "users-is-a-list": Case(
        at=3,
        new=keep(3) + '\nusers = ["bob"]',
        line=4,
        says=("key 'users'", "expected a table, got a list"),
    ),
    "dotted-user-needs-quotes": Case(
        at=3,
        new=keep(3) + "\nusers = { stejanss.space = 200 }",
        line=4,
        says=("key 'users'", "quote user names that contain dots"),
    ),
    "user-table-unknown-key": Case(
        at=3,
        new=keep(3) + "\nusers = { carol = { federaton = false } }",
        line=4,
        says=("key 'users'", "unknown key 'federaton'", "did you mean 'federation'?"),
    ),
    "user-table-bad-federation": Case(
        at=3,
        new=keep(3) + '\nusers = { carol = { federation = "no" } }',
        line=4,
        says=("users.carol.federation", "expected true or false, got a string"),
    ),
    "cert-is-a-list": Case(
        at=5,
        new='cert = ["sip.skype.lab"]',
        line=5,
        says=("key 'cert'", "expected a [certs] name or a table of files, got a list"),
    ),
    "ca-is-a-string": Case(
        at=10, new='ca = "yes"', line=10, says=("[certs.root] key 'ca'", "true or false")
    ),
    "san-item-is-not-a-string": Case(
        at=12,
        new=keep(12) + "\nsan = [1]",
        line=13,
        says=("key 'san'", "item 1: expected a string, got an integer"),
    ),
    "not-before-is-a-date": Case(
        at=12,
        new=keep(12) + "\nnot_before = 2024-01-01",
        line=13,
        says=("key 'not_before'", "expected a TOML date-time, got a date"),
    ),
    "status-is-a-string": Case(
        at=22,
        new='expect = { status = "504" }',
        line=22,
        says=("key 'expect.status'", "expected a SIP status code (100-699), got a string"),
    ),
    "expect-is-a-number": Case(
        at=22, new="expect = 504", line=22, says=("key 'expect'", "expected a table")
    ),
    "calls-is-a-table": Case(
        at=17,
        new="[calls]",
        line=17,
        says=("key 'calls'", "expected a list of tables, got a table"),
    ),
    # -- missing required keys -------------------------------------------------------
    "missing-fqdn": Case(at=3, new=None, line=2, says=("[edge] key 'fqdn'", "missing required")),
    "missing-trust": Case(at=6, new=None, line=2, says=("[edge] key 'trust'", "missing required")),
    "missing-peer-cert": Case(
        at=16, new=None, line=15, says=("[peers.expe] key 'cert'", "missing required")
    ),
    "missing-to": Case(at=21, new=None, line=17, says=("[[calls]] #1 key 'to'", "missing")),
    "missing-expect": Case(
        at=22, new=None, line=17, says=("key 'expect'", "missing required", "expect = ")
    ),
    "inbound-without-via": Case(
        at=19, new=None, line=17, says=("key 'via'", "placed by a peer", "expe")
    ),
    "missing-edge-section": Case(
        at=2, new="[edgy]", line=2, says=("key 'edgy'", "did you mean 'edge'?")
    ),
    # -- values ----------------------------------------------------------------------
    "bad-domain": Case(
        at=4,
        new='domains = ["skype.lab", "bad_domain"]',
        line=4,
        says=("key 'domains'", "item 2: 'bad_domain' is not a domain name"),
    ),
    "bad-domain-in-multiline-list-points-at-its-line": Case(
        at=4,
        new='domains = [\n  "skype.lab",\n  "-bad.lab",\n]',
        line=6,
        says=("item 2: '-bad.lab' is not a domain name",),
    ),
    "numeric-tld-is-not-a-domain": Case(
        at=3, new='fqdn = "10.0.0.1"', line=3, says=("'10.0.0.1' is not a domain name",)
    ),
    "hostport-without-port": Case(
        at=8, new='listen = "127.0.0.1"', line=8, says=("key 'listen'", "missing ':port'")
    ),
    "hostport-port-out-of-range": Case(
        at=8, new='listen = "127.0.0.1:70000"', line=8, says=("outside 0-65535",)
    ),
    "hostport-ipv6-without-brackets": Case(
        at=8, new='listen = "::1:53"', line=8, says=("needs brackets",)
    ),
    "status-out-of-range": Case(
        at=22,
        new="expect = { status = 999 }",
        line=22,
        says=("key 'expect.status'", "999 is not a SIP status code"),
    ),
    "peer-answer-out-of-range": Case(
        at=16,
        new=keep(16) + "\nanswer = 99",
        line=17,
        says=("[peers.expe] key 'answer'", "99 is not a SIP status code"),
    ),
    "peer-presence-unknown": Case(
        at=16,
        new=keep(16) + '\npresence = "sleepy"',
        line=17,
        says=("[peers.expe] key 'presence'", "'sleepy' is not one of"),
    ),
    "user-status-out-of-range": Case(
        at=6,
        new=keep(6) + "\n[edge.users]\nalice = 200\nbob = 1000",
        line=9,
        says=("key 'users'", "1000 is not a SIP status code"),
    ),
    "bad-federation": Case(
        at=3,
        new=keep(3) + '\nfederation = "open"',
        line=4,
        says=("key 'federation'", "'open' is not one of", '"discovery" | "allowlist" | "off"'),
    ),
    "bad-direction": Case(
        at=18,
        new='direction = "inbond"',
        line=18,
        says=("key 'direction'", "did you mean 'inbound'?"),
    ),
    "bad-eku": Case(
        at=12,
        new=keep(12) + '\neku = ["serverauth"]',
        line=13,
        says=("key 'eku'", "'serverauth' is not a known", "did you mean 'serverAuth'?"),
    ),
    "bad-validity": Case(
        at=12,
        new=keep(12) + '\nvalidity = "expird"',
        line=13,
        says=("key 'validity'", "did you mean 'expired'?"),
    ),
    "from-is-not-a-sip-uri": Case(
        at=20, new='from = "2000@steven.lab"', line=20, says=("key 'from'", "is not a SIP URI")
    ),
    "edge-log-is-not-a-symbol": Case(
        at=22,
        new='expect = { edge_log = "cert mismatch" }',
        line=22,
        says=("key 'expect.edge_log'", "not a Result-Code symbol"),
    ),
    "expect-nothing": Case(at=22, new="expect = {}", line=22, says=("key 'expect'", "cannot fail")),
    "params-without-error-id": Case(
        at=22,
        new="expect = { status = 504, ms_diagnostics_params = { domain = 'x' } }",
        line=22,
        says=("key 'expect.ms_diagnostics_params'", "without an ErrorId"),
    ),
    "lower-case-method": Case(
        at=21, new=keep(21) + '\nmethod = "invite"', line=22, says=("is not a SIP method",)
    ),
    "not-before-after-not-after": Case(
        at=12,
        new=keep(12) + "\nnot_before = 2025-01-01T00:00:00Z\nnot_after = 2024-01-01T00:00:00Z",
        line=14,
        says=("key 'not_after'", "later than not_before"),
    ),
    "two-listeners-on-one-port": Case(
        at=6,
        new=keep(6) + '\nclients = "127.0.0.1:5353"',
        line=9,
        says=("[dns] key 'listen'", "127.0.0.1:5353 is already used by [edge] key 'clients'"),
    ),
    # -- names that must be defined ---------------------------------------------------
    "undefined-edge-cert": Case(
        at=5,
        new='cert = "edge"',
        line=5,
        says=("key 'cert'", "no certificate 'edge' in [certs]", "sip.skype.lab"),
    ),
    "edge-cert-is-a-ca": Case(at=5, new='cert = "root"', line=5, says=("'root' is a CA",)),
    "undefined-peer-cert": Case(
        at=16,
        new='cert = "vcse.steven.lb"',
        line=16,
        says=("[peers.expe] key 'cert'", "did you mean 'vcse.steven.lab'?"),
    ),
    "undefined-issuer": Case(
        at=12,
        new='issuer = "rot"',
        line=12,
        says=("key 'issuer'", "no certificate 'rot'", "did you mean 'root'?"),
    ),
    "issuer-is-not-a-ca": Case(
        at=14,
        new='issuer = "sip.skype.lab"',
        line=14,
        says=("key 'issuer'", "'sip.skype.lab' is not a CA", "add ca = true"),
    ),
    "issuer-loop": Case(
        at=10,
        new='ca = true\nissuer = "other"',
        line=11,
        says=("key 'issuer'", "issuers form a loop: root -> other -> root"),
        append='[certs.other]\nca = true\nissuer = "root"\n',
    ),
    "public-leaf": Case(
        at=12, new=keep(12) + "\npublic = true", line=13, says=("only a CA can be public",)
    ),
    "undefined-trust-name": Case(
        at=6,
        new='trust = ["rooot"]',
        line=6,
        says=("key 'trust'", "item 1: no CA 'rooot'", "did you mean 'root'?"),
    ),
    "trust-names-a-leaf": Case(
        at=6,
        new='trust = ["root", "sip.skype.lab"]',
        line=6,
        says=("item 2: 'sip.skype.lab' is not a CA",),
    ),
    "via-undefined-peer": Case(
        at=19,
        new='via = "exp"',
        line=19,
        says=("[[calls]] #1 key 'via'", "no peer 'exp'", "did you mean 'expe'?"),
    ),
    "second-call-is-numbered": Case(
        at=22,
        new=keep(22) + '\n[[calls]]\ndirection = "outbound"\nfrom = "sip:bob@skype.lab"\nto = 5',
        line=26,
        says=("[[calls]] #2 key 'to'", "expected a string"),
    ),
    "blocked-and-allowed": Case(
        at=6,
        new=keep(6) + '\nblocked = ["steven.lab"]\n[[edge.allowed]]\ndomain = "steven.lab"',
        line=9,
        says=("[[edge.allowed]] #1 key 'domain'", "both blocked and allowed"),
    ),
    # -- files -----------------------------------------------------------------------
    "missing-trust-pem": Case(
        at=6,
        new='trust = ["root", "pki/ca.pem"]',
        line=6,
        says=("key 'trust'", "'pki/ca.pem': no such file", "/pki/ca.pem)"),
    ),
    "missing-cert-files": Case(
        at=5,
        new='cert = { cert = "edge.pem", key = "edge.key" }',
        line=5,
        says=("key 'cert.cert'", "'edge.pem': no such file"),
    ),
    "missing-zone-file": Case(
        at=8,
        new=keep(8) + '\nzones = ["zones/steven.lab.zone"]',
        line=9,
        says=("[dns] key 'zones'", "no such file", "zones/steven.lab.zone"),
    ),
    "zone-path-is-a-directory": Case(
        at=8, new=keep(8) + '\nzones = ["."]', line=9, says=("is a directory",)
    ),
    # -- the rest of the policy (issue 15) ------------------------------------------
    "unknown-provider-key": Case(
        at=6,
        new=keep(6) + '\n[[edge.hosting_providers]]\nproxy_fqdn = "sipfed.online.lync.com"'
        '\nverificaton = "AlwaysVerifiable"',
        line=9,
        says=("[[edge.hosting_providers]] #1 key 'verificaton'", "did you mean 'verification'"),
    ),
    "bad-verification-level": Case(
        at=6,
        new=keep(6) + '\n[[edge.hosting_providers]]\nproxy_fqdn = "sipfed.online.lync.com"'
        '\nverification = "AlwayVerifiable"',
        line=9,
        says=("'AlwayVerifiable' is not one of", "did you mean 'AlwaysVerifiable'"),
    ),
    "tenant-without-office365": Case(
        at=6,
        new=keep(6) + "\n[edge.tenant]\nallowed_domains = []",
        line=7,
        says=("key 'tenant'", "belong to Office 365", 'profile = "office365"'),
    ),
    "tenant-and-edge-lists": Case(
        at=6,
        new=keep(6) + '\nprofile = "office365"\nblocked = ["x.lab"]\n[edge.tenant]',
        line=8,
        says=("key 'blocked'", "the tenant's lists decide"),
    ),
    "unknown-tenant-key": Case(
        at=6,
        new=keep(6) + '\nprofile = "office365"\n[edge.tenant]\nallowed_domain = []',
        line=9,
        says=("[edge.tenant] key 'allowed_domain'", "did you mean 'allowed_domains'"),
    ),
    "revoked-root": Case(
        at=10, new="ca = true\nrevoked = true", line=11, says=("a root", "no CRL")
    ),
    "crl-url-not-http": Case(
        at=14,
        new=keep(14) + '\ncrl_url = "ldap://ca.lab/crl"',
        line=15,
        says=("key 'crl_url'", "is not an http:// URL"),
    ),
    "discovered-rate-zero": Case(
        at=6,
        new=keep(6) + "\n[edge.rules]\ndiscovered_rate = 0",
        line=8,
        says=("[edge.rules] key 'discovered_rate'", "a whole number from 1"),
    ),
    "discovered-refusal-200": Case(
        at=6,
        new=keep(6) + "\n[edge.rules]\ndiscovered_refusal = 200",
        line=8,
        says=("key 'discovered_refusal'", "200 is not one of 503, 403, 480, 504"),
    ),
    "route-on-an-outbound-call": Case(
        at=18,
        new='direction = "outbound"\nroute = "<sip:x.lab;lr>"',
        line=19,
        says=("key 'route'", "only an inbound call"),
    ),
    "crl-listen-clash": Case(
        at=8,
        new=keep(8) + '\n[pki]\ncrl_listen = "127.0.0.1:5353"',
        line=10,
        says=("[pki] key 'crl_listen'", "already used by [dns] key 'listen'"),
    ),
    "windows-event-not-a-number": Case(
        at=22,
        new='expect = { windows_event = "14508" }',
        line=22,
        says=("expect.windows_event", "a Windows event id"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_broken_lab_names_file_line_and_key(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(case.text())
    with pytest.raises(LabError) as info:
        load_lab(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{case.line}: "), message
    assert info.value.line == case.line
    assert info.value.path == str(path)
    for fragment in case.says:
        assert fragment in message, message
    assert "\n" not in message


def test_one_server_both_pinned_and_a_provider_stops_the_lab_with_event_14517(
    tmp_path: Path,
) -> None:
    """Field cases C7: the error line, then event 14517's two sentences (verbatim)."""
    text = BASE.replace(
        'trust = ["root"]\n',
        'trust = ["root"]\n'
        '[[edge.allowed]]\ndomain = "push.lync.com"\nproxy_fqdn = "sipfed.online.lync.com"\n'
        '[[edge.hosting_providers]]\nname = "LyncOnline"\nproxy_fqdn = "sipfed.online.lync.com"\n',
    )
    with pytest.raises(LabError) as info:
        load_lab_text(text, path=tmp_path / "lab.toml")
    first, *details = str(info.value).split("\n")
    assert first.startswith(f"{tmp_path / 'lab.toml'}:12: [[edge.hosting_providers]] #1 key ")
    assert "the allowed partner push.lync.com" in first
    assert details == [
        "  Event 14517: The server configuration validation mechanism detected some serious "
        "problems.",
        "  The server at FQDN [sipfed.online.lync.com] is configured as both type 'allowed "
        "partner server' and type 'IM service provider' .",
    ]


def test_base_lab_is_valid(tmp_path: Path) -> None:
    lab = load_lab_text(BASE, path=tmp_path / "lab.toml")
    assert lab.calls[0].line == 17


def test_catalogue_is_large() -> None:
    assert len(CASES) >= 25


def test_unreadable_pem_is_reported(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not a certificate\n")
    text = BASE.replace('trust = ["root"]', 'trust = ["ca.pem"]')
    with pytest.raises(LabError) as info:
        load_lab_text(text, path=tmp_path / "lab.toml")
    assert str(info.value).startswith(f"{tmp_path / 'lab.toml'}:6: ")
    assert "holds no PEM certificate" in str(info.value)
