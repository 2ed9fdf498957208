"""``fedsim run --html``: the page read with html.parser, escaped, loaded by Chromium offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from simulator.lab import Expect
from simulator.run import CallReport, CallTrace, LabReport, Outcome
from simulator.run.model import LabCert, LabFacts, LabPeer, WireMessage
from simulator.run.page import render_page
from simulator.run.results import RunResults
from simulator.run.shard import Catalogue

Tree = Callable[[str], Any]

SEED_1 = "seeds--01-acano-srv-points-to-parent-domain--call-"
SEED_2 = "seeds--02-acano-cert-lacks-srv-target--call-"
BARE_504 = "received SIP/2.0 504 Server time-out (RTC/6.0; no ms-diagnostics)"
HEADER_1009 = (
    'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";'
    'domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061";source="sip.skype.lab"'
)

# (article id, column, texts it shows, texts it must not show)
COLUMNS = [
    (
        SEED_1 + "1",
        "expressway",
        [BARE_504, "SIPMSG:\n|SIP/2.0 504 Server time-out"],
        ["ms-diagnostics:"],
    ),
    (
        SEED_1 + "1",
        "edge",
        [
            "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH",
            "SRV? _sipfederationtls._tcp.acano.steven.lab -> OK: vcse.steven.lab:5061",
            'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"',
            "answer: verbatim: seen in Microsoft traces or logs",
        ],
        [],
    ),
    (SEED_1 + "1", "client", ["nothing: the call never reached sip:stejanss@skype.lab"], []),
    (SEED_1 + "3", "client", [HEADER_1009, "SIP/2.0 504 Server time-out", "Fix: Point"], []),
    (
        SEED_1 + "3",
        "expressway",
        ["nothing arrived: the Edge never sent it the request"],
        ["SIPMSG"],
    ),
    (
        SEED_1 + "3",
        "edge",
        [
            # Outbound to a domain nobody configured: bhargavs' Data reason= (reference §12)
            "Result-Code: 0x00000000 EMU_UNVERIFIED_DOMAIN_UNKNOWN",
            'reason="The domain of the message is not configured and does not appear to belong',
            "log record: inferred",
        ],
        [],
    ),
    (SEED_1 + "2", "expressway", ["received SIP/2.0 200 OK", 'Action="Sent"', "|BYE sip:"], []),
    (
        SEED_2 + "1",
        "edge",
        [
            "Result-Code: 0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH",
            "names seen in the TLS handshake: vcse.steven.lab",
            "issued by public-root",
        ],
        [],
    ),
    (
        SEED_2 + "1",
        "client",
        [
            "add vcse.acano.steven.lab to the SANs of certificate 'vcse.steven.lab' "
            '([certs."vcse.steven.lab"] san = ["vcse.steven.lab", "vcse.acano.steven.lab"])'
        ],
        [],
    ),
    (
        "outbound--04-expressway-does-not-trust-edge--call-1",
        "expressway",
        ["nothing arrived: it refused the Edge's TLS handshake", "refused: TLS:"],
        [],
    ),
    (
        "outbound--04-expressway-does-not-trust-edge--call-1",
        "client",
        ["add it to [peers.expe] trust (now private-root)"],
        [],
    ),
    (
        "outbound--01-good-partner--call-1",
        "expressway",
        ["received INVITE sip:2000@steven.lab SIP/2.0", 'Action="Received"'],
        [],
    ),
    (
        "pki--08-office365-private-ca--call-2",
        "client",
        ["Office 365 (hosted) trusts only public CAs: issue certificate 'vcse.steven.lab'"],
        [],
    ),
]


def _page(catalogue_run: Any, html_tree: Tree) -> Any:
    html = Path(catalogue_run.html).read_text(encoding="utf-8")
    return html_tree(html)


@pytest.fixture(scope="module")
def page(catalogue_run: Any, html_tree: Tree) -> Any:
    return _page(catalogue_run, html_tree)


def column(page: Any, article: str, party: str) -> str:
    call = page.one("article", id=article)
    return call.one("section", data_party=party).text()


@pytest.mark.parametrize(("article", "party", "shown", "absent"), COLUMNS)
def test_each_column_holds_what_that_party_saw(
    page: Any, article: str, party: str, shown: list[str], absent: list[str]
) -> None:
    text = column(page, article, party)
    for wanted in shown:
        assert wanted in text, f"{party} of {article} lacks {wanted!r}:\n{text}"
    for unwanted in absent:
        assert unwanted not in text, f"{party} of {article} shows {unwanted!r}"


def test_every_call_has_three_columns_a_ladder_and_its_files(page: Any, catalogue_run: Any) -> None:
    doc = json.loads(Path(catalogue_run.json).read_text())
    calls = [c for lab in doc["labs"] for c in lab["calls"]]
    articles = list(page.iter("article"))
    assert len(articles) == len(calls) == doc["summary"]["calls"]
    index_links = [a.attrs["href"] for a in page.one("nav").iter("a")]
    assert index_links == [f"#{a.attrs['id']}" for a in articles]
    for article in articles:
        parties = [s.attrs["data-party"] for s in article.iter("section")]
        assert parties == ["expressway", "edge", "client"], article.attrs["id"]
        assert len(list(article.iter("svg"))) == 1, article.attrs["id"]
        # Each download is a data: URL holding the same text as its <details> block.
        links = list(article.iter("a"))
        blocks = {
            d.one("summary").text(): d.one("pre").text()
            for d in article.iter("details", **{"class": "file"})
        }
        assert links, article.attrs["id"]
        for link in links:
            head, _, data = link.attrs["href"].partition(",")
            assert head.startswith("data:")
            assert head.endswith(";charset=utf-8")
            # The file keeps the wire's CRLF; an HTML parser reads CRLF as LF.
            shown = blocks[link.attrs["download"]]
            assert unquote(data).replace("\r\n", "\n") == shown.replace("\r\n", "\n")
    lab_facts = list(page.iter("details", **{"class": "lab-facts"}))
    assert len(lab_facts) == doc["summary"]["labs"]


def test_lab_section_shows_dns_certificates_trust_and_policy(page: Any) -> None:
    lab = page.one("section", id="lab-seeds--01-acano-srv-points-to-parent-domain")
    text = lab.one("details", **{"class": "lab-facts"}).text()
    assert "_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab." in text
    certs = lab.one("table", **{"class": "certs"})
    rows = [[td.text() for td in tr.iter("td")] for tr in certs.iter("tr")]
    root = next(r for r in rows if r and r[0] == "public-root")
    assert root[-2:] == ["public root", "Edge, peer expe"]
    leaf = next(r for r in rows if r and r[0] == "vcse.steven.lab")
    assert leaf[1:4] == ["vcse.steven.lab", "vcse.steven.lab", "public-root"]
    assert "(valid)" in leaf[4]
    assert ["federation", "discovery"] in [
        [c.text() for c in tr.children if not isinstance(c, str)] for tr in lab.iter("tr")
    ]


def test_page_fetches_nothing(catalogue_run: Any) -> None:
    html = Path(catalogue_run.html).read_text(encoding="utf-8")
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert " src=" not in lowered
    # No attribute names a URL (message bodies shown as text may quote one, escaped:
    # a presence document's xmlns="http://schemas.microsoft.com/...").
    attributes = lowered.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert re.search(r"""=\s*["']?\s*(?:https?:)?//""", attributes) is None
    assert "default-src 'none'" in html


# --- escaping -------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>'\"><img src=x onerror=alert(2)>&amp;"


def hostile_run() -> RunResults:
    """A run whose every lab string is markup: the page must show it as text."""
    trace = CallTrace(
        scenario=HOSTILE,
        number=1,
        direction="outbound",
        method="INVITE",
        from_uri=f"sip:{HOSTILE}@skype.lab",
        to_uri="sip:x@y.lab",
        caller="Skype client",
        edge_fqdn=HOSTILE,
        peer_name=HOSTILE,
        request_line=f"INVITE sip:{HOSTILE} SIP/2.0",
        responses=(f"SIP/2.0 504 {HOSTILE}",),
        event={
            "rule": HOSTILE,
            "status": 504,
            "explanation": HOSTILE,
            "edge_log": {"symbol": HOSTILE},
        },
        edge_record=f"$$begin_record\nText: {HOSTILE}\n$$end_record",
        messages=(
            WireMessage(
                leg="client",
                sender="Skype client",
                receiver="Edge",
                text=f"INVITE sip:{HOSTILE} SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
            ),
            WireMessage(
                leg="client",
                sender="Edge",
                receiver="Skype client",
                text=(
                    "SIP/2.0 504 x\r\nCSeq: 1 INVITE\r\n"
                    f'ms-diagnostics: 1009;reason="{HOSTILE}"\r\n\r\n'
                ),
            ),
        ),
    )
    call = CallReport(
        id=f"{HOSTILE} call-1",
        number=1,
        label=HOSTILE,
        expect=Expect(status=200, edge_log=HOSTILE),
        got=Outcome(status=504, edge_log=HOSTILE, error=HOSTILE),
        mismatches=(),
        trace=trace,
        seconds=0.0,
    )
    cert = LabCert(
        name=HOSTILE,
        subject=HOSTILE,
        issuer=HOSTILE,
        cn=HOSTILE,
        sans=(HOSTILE,),
        not_before=HOSTILE,
        not_after=HOSTILE,
    )
    facts = LabFacts(
        edge_fqdn=HOSTILE,
        domains=(HOSTILE,),
        edge_cert=HOSTILE,
        edge_trust=(HOSTILE,),
        policy=((HOSTILE, HOSTILE),),
        dns_records=HOSTILE,
        dns_zones=((HOSTILE, HOSTILE),),
        certs=(cert,),
        peers=(LabPeer(name=HOSTILE, cert=HOSTILE, listen=HOSTILE),),
    )
    lab = LabReport(
        name=HOSTILE,
        id=f"x/{HOSTILE}",
        path=HOSTILE,
        summary=HOSTILE,
        calls=(call,),
        error=HOSTILE,
        facts=facts,
    )
    return RunResults(catalogue=Catalogue(labs=((HOSTILE, "0"),)), pattern=HOSTILE, labs=(lab,))


def test_lab_strings_cannot_inject_markup(html_tree: Tree) -> None:
    html = render_page(hostile_run())
    tree = html_tree(html)
    tags = {n.tag for n in tree.iter()}
    assert "script" not in tags
    assert "img" not in tags
    for node in tree.iter():
        assert not any(k.startswith("on") for k in node.attrs), node.tag
    assert HOSTILE in tree.text()
    # Attribute values that carry lab strings come back intact, not broken out of.
    links = list(tree.one("article").iter("a"))
    assert links
    # File names are the lab id with "/" as "--", like the ladder files.
    assert all(HOSTILE.replace("/", "--") in link.attrs["download"] for link in links)
    texts = [link for link in links if not link.attrs["download"].endswith(".json")]
    assert all(HOSTILE in unquote(link.attrs["href"]) for link in texts)


# --- a real browser -------------------------------------------------------------------


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: make test (.ci/ensure-packages) installs it "
            "(the page render test needs it)"
        )
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


@pytest.mark.interop
def test_page_loads_in_headless_chromium_without_a_network_request(
    catalogue_run: Any, html_tree: Tree, tmp_path: Path
) -> None:
    page = Path(catalogue_run.html)
    netlog = tmp_path / "netlog.json"
    done = _chromium([f"--log-net-log={netlog}", "--dump-dom", page.as_uri()], tmp_path / "profile")
    assert done.returncode == 0
    dom = html_tree(done.stdout)
    # The browser built the same page: every call with its three columns and ladder.
    first = dom.one("article", id=SEED_1 + "3")
    assert HEADER_1009 in first.one("section", data_party="client").text()
    assert len(list(dom.iter("article"))) == len(list(html_tree(page.read_text()).iter("article")))
    # Chromium logs every request; the page made none (its own background traffic,
    # such as update checks, is "not an origin"; a page's requests name it).
    assert page_requests(netlog) == []
    # The check sees them when a page does make requests.
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>'
    )
    control_log = tmp_path / "control-netlog.json"
    _chromium([f"--log-net-log={control_log}", "--dump-dom", control.as_uri()], tmp_path / "p2")
    assert page_requests(control_log) != []


def page_requests(netlog: Path) -> list[object]:
    """The URL requests a page started, from a Chromium ``--log-net-log`` file."""
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]
        for e in log["events"]
        if e["type"] == start_job
        and isinstance(e.get("params"), dict)
        and e["params"].get("initiator", "not an origin") != "not an origin"
    ]
