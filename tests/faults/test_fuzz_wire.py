"""Mutated requests on the wire, on both ports: an answer or a clean close, never a dead lab.

The fuzz harness's mutations (simulator.fuzz.sip.mutate) of requests that reach
every step of each port's path: a federated caller's INVITE (screening, the
caller's SRV, the policy, the emulated user), a Skype client's INVITE to a
federated partner (screening, the target's SRV, the partner leg), to a user of
a homed domain, and a client's SUBSCRIBE (the user's NOTIFY). After every
probe a sentinel OPTIONS on the same connection tells whether the connection
survived; when it did not, the next probe opens a new one. The lab must still
answer on every listener at the end, with no internal error.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from simulator.fuzz.sip import mutate
from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    parse_message,
)

STEP = 10.0
#: Probes per request kind (each costs at most one round trip or one connection).
PROBES = 40


def _request(method: str, call: str, *, uri: str, sender: str, extra: str = "") -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS 127.0.0.1:5555;branch=z9hG4bK{call}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <{sender}>;tag=f{call}\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Contact: <sip:me@127.0.0.1:5555;transport=tls>\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


#: (port, sender certificate, request) per kind.
KINDS: dict[str, tuple[str, str | None, bytes]] = {
    "federation-invite": (
        "federation",
        "vcse.steven.lab",
        _request("INVITE", "fed", uri="sip:alice@skype.lab", sender="sip:2000@steven.lab"),
    ),
    "clients-invite-partner": (
        "clients",
        None,
        _request("INVITE", "out", uri="sip:2000@partner.lab", sender="sip:bob@skype.lab"),
    ),
    "clients-invite-local": (
        "clients",
        None,
        _request("INVITE", "loc", uri="sip:alice@skype.lab", sender="sip:bob@skype.lab"),
    ),
    "clients-subscribe": (
        "clients",
        None,
        _request(
            "SUBSCRIBE",
            "sub",
            uri="sip:alice@skype.lab",
            sender="sip:bob@skype.lab",
            extra="Event: presence\r\nExpires: 60\r\n",
        ),
    ),
}


class Probe:
    """One TLS connection to a port, with a sentinel after each probe."""

    def __init__(self, lab: Any, port: str, cert: str | None) -> None:
        self.lab, self.port, self.cert = lab, port, cert
        self.stream: trio.SSLStream[trio.SocketStream] | None = None
        self.framer = StreamFramer(max_body_bytes=1 << 20)
        self.count = 0

    async def _connect(self) -> trio.SSLStream[trio.SocketStream]:
        address = self.lab.federation if self.port == "federation" else self.lab.clients
        tcp = await trio.open_tcp_stream(*address)
        tls = trio.SSLStream(
            tcp, self.lab.client_context(self.cert), server_hostname="sip.skype.lab"
        )
        with trio.fail_after(STEP):
            await tls.do_handshake()
        self.framer = StreamFramer(max_body_bytes=1 << 20)
        return tls

    def _sentinel(self, call: str) -> bytes:
        if self.port == "federation":
            return _request("OPTIONS", call, uri="sip:alice@skype.lab", sender="sip:2@steven.lab")
        return _request("OPTIONS", call, uri="sip:alice@skype.lab", sender="sip:bob@skype.lab")

    async def send(self, data: bytes) -> str:
        """ "answered" (the sentinel came back 200), "closed", or "desynced"."""
        if self.stream is None:
            self.stream = await self._connect()
        self.count += 1
        sentinel = f"sentinel-{self.count}"
        try:
            await self.stream.send_all(data + self._sentinel(sentinel))
            outcome = await self._until(sentinel)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome = "closed"
        if outcome != "answered":
            await trio.aclose_forcefully(self.stream)
            self.stream = None
        return outcome

    async def _until(self, sentinel: str) -> str:
        assert self.stream is not None
        with trio.fail_after(STEP):
            while True:
                item = self.framer.next_message()
                if isinstance(item, bytes):
                    try:
                        message = parse_message(item)
                    except SipParseError:
                        continue  # an echo of the probe's own bad header
                    if isinstance(message, Response) and message.call_id == sentinel:
                        return "answered" if message.status == 200 else "desynced"
                    if isinstance(message, Request):
                        continue  # the user's NOTIFY
                    continue
                if item is KeepAlive.PING:
                    continue
                assert item is Need.DATA
                data = await self.stream.receive_some(65536)
                if not data:
                    return "closed"
                self.framer.receive_data(data)

    async def aclose(self) -> None:
        if self.stream is not None:
            await trio.aclose_forcefully(self.stream)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_mutated_requests_get_an_answer_or_a_clean_close(fault_lab: Any, kind: str) -> None:
    lab = await fault_lab()
    port, cert, seed = KINDS[kind]
    rng = random.Random(f"fuzz-wire-{kind}")
    probe = Probe(lab, port, cert)
    outcomes: dict[str, int] = {}
    for _ in range(PROBES):
        outcome = await probe.send(mutate(seed, rng, [seed]))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    await probe.aclose()
    assert outcomes.get("answered", 0) >= PROBES // 3, outcomes
    assert lab.internal_errors() == []
    # Every listener still answers (a fresh connection on each).
    for check_port, check_cert in (("federation", "vcse.steven.lab"), ("clients", None)):
        fresh = Probe(lab, check_port, check_cert)
        assert await fresh.send(b"") == "answered"
        await fresh.aclose()
