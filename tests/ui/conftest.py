"""A headless Chromium driven over the DevTools protocol through a pipe: no npm, no websocket.

``chromium --remote-debugging-pipe`` reads DevTools commands from its file
descriptor 3 and writes answers and events to 4, each a JSON object ended by a
NUL byte. That is all a test needs to open a page, run JavaScript in it, click
and read what it rendered, and take a screenshot (Debian's chromium; no
download of a browser of its own).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

#: The flags this machine needs (no sandbox as root, no GPU, no network of Chromium's own).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)


def _child_fds(commands: int, answers: int) -> None:
    """In the child: the pipe Chromium reads on fd 3, the one it writes on fd 4."""
    os.dup2(commands, 3)
    os.dup2(answers, 4)


def _high(fd: int) -> int:
    """``fd`` moved to 10 or above, so putting the child's ends on 3 and 4 clobbers none."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    """One Chromium process and one page in it."""

    def __init__(self, profile: Path, *, width: int = 1400, height: int = 1000) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            pytest.fail(
                "chromium is not installed: make test (.ci/ensure-packages) installs it "
                "(the live page's browser tests need it)"
            )
        to_browser_r, self._out = (_high(fd) for fd in os.pipe())
        self._in, from_browser_w = (_high(fd) for fd in os.pipe())
        # Chromium reads fd 3 and writes fd 4: put our pipe ends there in the child.
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=partial(_child_fds, to_browser_r, from_browser_w),
            start_new_session=True,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.session = ""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events in between are skipped)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._id:
                    if "error" in answer:
                        raise AssertionError(f"{method}: {answer['error']}")
                    result: dict[str, Any] = answer.get("result", {})
                    return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{method}: no answer from Chromium in {timeout} s")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise AssertionError("Chromium closed its DevTools pipe")
                self._buffer += chunk

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete' && location.href !== 'about:blank'")

    def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy (bounded); its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout} s: {expression}")
            time.sleep(0.1)

    def screenshot(self) -> bytes:
        """A PNG of the page's whole height."""
        height = int(self.js("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=min(max(height, 800), 2200),
            deviceScaleFactor=1,
            mobile=False,
        )
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        for fd in (self._in, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile, stopped (by PID) after the test."""
    b = Browser(tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()
