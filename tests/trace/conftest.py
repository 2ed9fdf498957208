"""What the Edge would hand the trace writers for one call per outcome (importlib mode:
tests get them through the ``calls`` fixture, never by importing this file)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable

import pytest

from simulator.trace import Direction, Side, WireMessage

START = dt.datetime(2026, 11, 21, 22, 33, 6, 7000, tzinfo=dt.UTC).timestamp()
EDGE_FED = ("127.0.0.1", 5061)
EDGE_CLIENTS = ("127.0.0.1", 5062)
# One ephemeral port per connection, as real peers have.
EXPE = ("127.0.0.1", 38078)
EXPE_2 = ("127.0.0.1", 38079)
SKYPE = ("127.0.0.1", 40112)
SKYPE_2 = ("127.0.0.1", 40113)
PARTNER = ("127.0.0.1", 5071)
EDGE_LEG = ("127.0.0.1", 41200)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\n"
)
# [CISCO] 1009, as the Edge sends it to the Skype client.
DIAG_1009 = (
    'ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";'
    'domain="cms.steven.lab";fqdn1="vcse.sub.cms.steven.lab:5061";source="sip.skype.lab"'
)


def message(
    start: str,
    call_id: str,
    cseq: str,
    *,
    from_: str,
    to: str,
    extra: tuple[str, ...] = (),
    body: bytes = b"",
) -> bytes:
    headers = [
        "Via: SIP/2.0/TLS 127.0.0.1:38078;branch=z9hG4bK" + call_id.split("@")[0],
        f"From: <{from_}>;tag=f{len(call_id)}",
        f"To: <{to}>" + (";tag=" + "a" * 32 if start.startswith("SIP/") else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq}",
        *(["Max-Forwards: 70"] if not start.startswith("SIP/") else []),
        *extra,
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join([start, *headers]) + "\r\n\r\n").encode() + body


class Calls:
    """A lab's SIP messages in time order, 10 ms apart."""

    def __init__(self) -> None:
        self.messages: list[WireMessage] = []

    def add(
        self,
        direction: Direction,
        side: Side,
        local: tuple[str, int],
        remote: tuple[str, int],
        connection: str,
        data: bytes,
    ) -> None:
        when = START + 0.01 * len(self.messages)
        self.messages.append(WireMessage(when, direction, side, local, remote, connection, data))


def build_calls() -> list[WireMessage]:
    calls = Calls()
    # 1. steven.lab: accepted, 180, 200 with SDP, ACK, BYE, 200.
    a, fa, ta = "accept-1@127.0.0.1", "sip:2000@steven.lab", "sip:stejanss@skype.lab"
    inv = message(f"INVITE {ta} SIP/2.0", a, "1 INVITE", from_=fa, to=ta, body=SDP)
    calls.add("incoming", "external", EDGE_FED, EXPE, "fed-1", inv)
    for start in ("SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"):
        calls.add("outgoing", "external", EDGE_FED, EXPE, "fed-1", message(
            start, a, "1 INVITE", from_=fa, to=ta))  # fmt: skip
    ok = message("SIP/2.0 200 OK", a, "1 INVITE", from_=fa, to=ta, body=SDP)
    calls.add("outgoing", "external", EDGE_FED, EXPE, "fed-1", ok)
    for method, cseq in (("ACK", "1 ACK"), ("BYE", "2 BYE")):
        req = message(f"{method} {ta} SIP/2.0", a, cseq, from_=fa, to=ta)
        calls.add("incoming", "external", EDGE_FED, EXPE, "fed-1", req)
    bye_ok = message("SIP/2.0 200 OK", a, "2 BYE", from_=fa, to=ta)
    calls.add("outgoing", "external", EDGE_FED, EXPE, "fed-1", bye_ok)
    # 2. acano.steven.lab: refused, a bare 504 (no ms-diagnostics across federation).
    b, fb = "refused-2@127.0.0.1", "sip:2000@acano.steven.lab"
    inv = message(f"INVITE {ta} SIP/2.0", b, "1 INVITE", from_=fb, to=ta, body=SDP)
    calls.add("incoming", "external", EDGE_FED, EXPE_2, "fed-2", inv)
    calls.add("outgoing", "external", EDGE_FED, EXPE_2, "fed-2", message(
        "SIP/2.0 504 Server time-out", b, "1 INVITE", from_=fb, to=ta,
        extra=("Server: RTC/6.0",)))  # fmt: skip
    ack = message(f"ACK {ta} SIP/2.0", b, "1 ACK", from_=fb, to=ta)
    calls.add("incoming", "external", EDGE_FED, EXPE_2, "fed-2", ack)
    # 3. A Skype user calls cms.steven.lab: 504 with the client-facing 1009.
    c, fc, tc = "out-3@127.0.0.1", "sip:stejanss@skype.lab", "sip:stejanss.space@cms.steven.lab"
    inv = message(f"INVITE {tc} SIP/2.0", c, "1 INVITE", from_=fc, to=tc, body=SDP)
    calls.add("incoming", "internal", EDGE_CLIENTS, SKYPE, "cli-3", inv)
    calls.add("outgoing", "internal", EDGE_CLIENTS, SKYPE, "cli-3", message(
        "SIP/2.0 504 Server time-out", c, "1 INVITE", from_=fc, to=tc,
        extra=(DIAG_1009, "Server: RTC/6.0")))  # fmt: skip
    # 4. A Skype user calls steven.lab: forwarded over the Edge's own leg, 486 back.
    d, td = "busy-4@127.0.0.1", "sip:2000@steven.lab"
    inv = message(f"INVITE {td} SIP/2.0", d, "1 INVITE", from_=fc, to=td, body=SDP)
    calls.add("incoming", "internal", EDGE_CLIENTS, SKYPE_2, "cli-4", inv)
    calls.add("outgoing", "external", EDGE_LEG, PARTNER, "leg-4", inv)
    busy = message("SIP/2.0 486 Busy Here", d, "1 INVITE", from_=fc, to=td)
    calls.add("incoming", "external", EDGE_LEG, PARTNER, "leg-4", busy)
    calls.add("outgoing", "internal", EDGE_CLIENTS, SKYPE_2, "cli-4", busy)
    return calls.messages


@pytest.fixture
def calls() -> list[WireMessage]:
    """One call per outcome (200 dialog, refused 504, 504 with 1009 to the client, 486)."""
    return build_calls()


def require_tool(name: str) -> str:
    """Return the path of a real tool, failing (not skipping) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path


@pytest.fixture
def tool() -> Callable[[str], str]:
    """``tool(name)``: the path of a real tool (tshark, sngrep, tcpdump), or the test fails."""
    return require_tool
