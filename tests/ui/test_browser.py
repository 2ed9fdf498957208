"""The live page in a real browser: a served lab's calls in three columns, and an exercise solved.

Each test starts the real ``fedsim serve`` (the console script, every port free),
opens the ``ui`` URL its banner prints in headless Chromium (DevTools protocol
over a pipe, :mod:`cdp`), clicks as a person would and reads what the page
rendered. ``FEDSIM_SCREENSHOT=docs/live-view.png`` also writes the README's
screenshot from the first test (the committed PNG is not rewritten otherwise).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture hands it out; importlib mode cannot import conftest
    from conftest import Browser

REPO = Path(__file__).resolve().parents[2]
FEDSIM = Path(sys.executable).with_name("fedsim")
#: Seconds for fedsim serve to print its banner.
START_TIMEOUT = 60.0

pytestmark = pytest.mark.interop


class Served:
    """A running ``fedsim serve`` and what its banner said."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.log = cwd / "serve.out"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(FEDSIM), "serve", *args],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while "decisions (" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"fedsim serve did not start:\n{self.text()}")
            time.sleep(0.1)
        found = re.search(r"^  ui +(http://127\.0\.0\.1:\d+/)$", self.text(), re.M)
        assert found, self.text()
        self.url = found.group(1)
        clients = re.search(r"^  clients +(\S+)", self.text(), re.M)
        assert clients
        self.clients = clients.group(1)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


PORTS = ["--listen", "127.0.0.1:0", "--clients", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"]


def column(browser: Browser, party: str) -> str:
    return str(browser.js(f"document.querySelector('#detail [data-party={party}]').innerText"))


def place(browser: Browser, button: str, rows_before: int) -> int:
    """Click a place button; wait until the call's row is in and its columns are shown."""
    browser.js(f"document.getElementById('{button}').click()")
    browser.wait(f"document.querySelectorAll('#rows tr').length > {rows_before}")
    number = int(browser.wait("document.querySelector('#rows tr').dataset.call"))
    browser.wait(f"document.querySelector('#detail article[data-call=\"{number}\"]') !== null")
    return number


def test_a_served_lab_shows_each_call_in_three_columns_as_it_happens(
    tmp_path: Path, browser: Browser
) -> None:
    served = Served([*PORTS, "--log-dir", "logs", "--certs-dir", "certs"], tmp_path)
    try:
        browser.goto(served.url)
        browser.wait("document.getElementById('status').textContent === 'live'")
        # The lab panel: DNS, certificates with issuer and trust, policy, profile.
        lab = str(browser.js("document.getElementById('lab').innerText"))
        assert "_sipfederationtls._tcp.acano.steven.lab" in lab
        for fact in ("vcse.steven.lab", "public-root", "discovery", "RTC/6.0", "sfb2015"):
            assert fact in lab

        # Call 1 of the seed lab: inbound from acano.steven.lab, the note's first failure.
        first = place(browser, "place-1", 0)
        expressway = column(browser, "expressway")
        assert "received SIP/2.0 504 Server time-out" in expressway
        assert "no ms-diagnostics" in expressway
        edge = column(browser, "edge")
        assert (
            "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in edge
        )
        assert 'Data: domain="acano.steven.lab";fqdn1="vcse.steven.lab:5061"' in edge
        assert "nothing: the call never reached" in column(browser, "client")
        assert browser.js("document.querySelector('#detail .ladder svg') !== null")

        # Call 4: outbound to cms.steven.lab, the client's 504 with its 1009.
        place(browser, "place-4", 1)
        client = column(browser, "client")
        assert (
            'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";'
            'domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
        ) in client
        assert "vcse.cms.steven.lab" in client  # the fix, in this lab's names
        assert "nothing arrived" in column(browser, "expressway")
        # cms.steven.lab is not a configured partner: bhargavs' record (reference §12).
        edge = column(browser, "edge")
        assert "Result-Code: 0x00000000 EMU_UNVERIFIED_DOMAIN_UNKNOWN" in edge, edge
        assert 'reason="The domain of the message is not configured' in edge, edge
        links = browser.js(
            "[...document.querySelectorAll('#detail .files a')].map(a => a.getAttribute('href'))"
        )
        assert any(str(h).endswith("--messages.txt") for h in links), links
        assert any(str(h).endswith("--edge.log") for h in links), links
        record = browser.js(
            "fetch(document.querySelector(\"#detail .files a[href$='--edge.log']\").href)"
            ".then(r => r.text())"
        )
        assert "EMU_UNVERIFIED_DOMAIN_UNKNOWN" in record

        # A call from outside the page arrives by push, no reload.
        outside = subprocess.run(
            [
                str(FEDSIM),
                "client",
                "--edge",
                served.clients,
                "--ca",
                "certs/public-root.crt",
                "--server-name",
                "sip.skype.lab",
                "--to",
                "sip:2000@nosrv.steven.lab",
            ],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert outside.returncode == 0, outside.stdout + outside.stderr
        browser.wait("document.querySelectorAll('#rows tr').length === 3")
        assert "nosrv.steven.lab" in str(browser.js("document.querySelector('#rows tr').innerText"))
        # Its messages are the ones the Edge's taps saw on the clients port.
        third = int(browser.js("document.querySelector('#rows tr').dataset.call"))
        browser.js(f"document.querySelector('#rows a[data-call=\"{third}\"]').click()")
        browser.wait(f"document.querySelector('#detail article[data-call=\"{third}\"]') !== null")
        client = column(browser, "client")
        assert "SIP/2.0 504 Server time-out" in client, client
        assert "ms-diagnostics: 1008;" in client, client
        assert "not captured" not in column(browser, "expressway")
        browser.js(f"document.querySelector('#rows a[data-call=\"{first}\"]').click()")
        browser.wait(f"document.querySelector('#detail article[data-call=\"{first}\"]') !== null")
        png = browser.screenshot()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        (tmp_path / "live-view.png").write_bytes(png)
        wanted = os.environ.get("FEDSIM_SCREENSHOT")
        if wanted:
            (REPO / wanted).write_bytes(png)
    finally:
        served.stop()
    assert served.proc.returncode == 0, served.text()


def test_an_exercise_is_solved_through_the_page(tmp_path: Path, browser: Browser) -> None:
    exercise = REPO / "scenarios" / "exercises" / "02-acano-cert-lacks-srv-target.toml"
    served = Served(["--exercise", str(exercise), "--log-dir", "logs"], tmp_path)
    try:
        browser.goto(served.url)
        browser.wait("document.getElementById('status').textContent === 'live'")
        assert "cannot" not in served.text()
        # Broken as shipped: the check fails, with the Edge's reason.
        browser.js("document.getElementById('check-call-1').click()")
        browser.wait("document.getElementById('check-1').dataset.verdict === 'FAIL'")
        assert "cert-mismatch" in column(browser, "edge")
        # A hint, then a bad edit: one clear error, nothing applied, the lab goes on.
        browser.js("document.getElementById('hint').click()")
        browser.wait("document.querySelectorAll('#hints li').length === 1")
        browser.js(
            "document.getElementById('records').value += '\\nbroken.steven.lab. 300 IN A nowhere';"
            "document.getElementById('apply').click()"
        )
        error = str(browser.wait("document.getElementById('exercise-error')?.innerText"))
        assert error.startswith("not applied: ")
        assert "02-acano-cert-lacks-srv-target.toml:" in error
        work = tmp_path / "logs" / "exercise" / exercise.name
        assert "nowhere" not in work.read_text(encoding="utf-8")
        # The fix: the SRV target's name in the certificate's SANs.
        browser.js(
            "document.getElementById('records').value = document.getElementById('records')"
            ".value.replace('\\nbroken.steven.lab. 300 IN A nowhere', '');"
            "document.querySelector(\"input[name='san:vcse.steven.lab']\").value = "
            "'vcse.steven.lab, vcse.acano.steven.lab';"
            "document.getElementById('apply').click()"
        )
        browser.wait("document.getElementById('exercise-error') === null")
        assert '"vcse.acano.steven.lab"' in work.read_text(encoding="utf-8")
        browser.js("document.getElementById('check-call-1').click()")
        browser.wait("document.getElementById('check-1').dataset.verdict === 'PASS'")
        assert browser.js("document.getElementById('solved') !== null")
        assert "accepted" in column(browser, "edge")
    finally:
        served.stop()
    assert served.proc.returncode == 0, served.text()
