"""No connection can take the lab down (issue 12).

- The reproduction: a Skype client hangs up on the clients port without a TLS
  close_notify after ``100 Trying``; every listener must still answer.
- Request-derived text that cannot become a DNS name gets an answer and an
  event (484 on the clients port, 400 on the federation port), not a crash.
- A fedsim bug reached through any server or leg is contained by the guard:
  an ``internal-error`` event (or report), the connection closed, the server
  still serving.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import dnslib
import pytest
import trio

from simulator.dns.zone import ZoneSet
from simulator.edge import clients as clients_module
from simulator.edge import inbound as inbound_module
from simulator.edge.outbound import Outbound
from simulator.peer import uas as uas_module
from simulator.sip import KeepAlive, Need, Response, StreamFramer, parse_message

STEP = 10.0


def request(
    method: str,
    call: str,
    *,
    uri: str = "sip:stejanss@skype.lab",
    sender: str = "sip:2000@steven.lab",
    via_host: str = "127.0.0.1:5061",
) -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {via_host};branch=z9hG4bK{call}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <{sender}>;tag=abc\r\n"
        f"To: <{uri}>\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class Peer:
    """A TLS client connection with a SIP framer on the receive side."""

    def __init__(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.stream = stream
        self.framer = StreamFramer()

    @classmethod
    async def open(cls, lab: Any, address: tuple[str, int], cert: str | None) -> Peer:
        tcp = await trio.open_tcp_stream(*address)
        tls = trio.SSLStream(tcp, lab.client_context(cert), server_hostname="sip.skype.lab")
        with trio.fail_after(STEP):
            await tls.do_handshake()
        return cls(tls)

    async def response(self) -> Response | None:
        """The next response, or None when the connection ends."""
        with trio.fail_after(STEP):
            while True:
                item = self.framer.next_message()
                if isinstance(item, bytes):
                    message = parse_message(item)
                    if isinstance(message, Response):
                        return message
                    continue
                if item is KeepAlive.PING:
                    continue
                assert item is Need.DATA
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                if not data:
                    return None
                self.framer.receive_data(data)

    async def final(self) -> Response | None:
        while True:
            response = await self.response()
            if response is None or response.status >= 200:
                return response

    def reset(self) -> None:
        """Close with a TCP reset and no TLS close_notify (a killed client)."""
        sock = self.stream.transport_stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def federation_options(lab: Any, call: str) -> int | None:
    peer = await Peer.open(lab, lab.federation, "vcse.steven.lab")
    await peer.stream.send_all(request("OPTIONS", call))
    final = await peer.final()
    await peer.aclose()
    return None if final is None else final.status


async def clients_options(lab: Any, call: str, uri: str = "sip:2000@partner.lab") -> int | None:
    peer = await Peer.open(lab, lab.clients, None)
    await peer.stream.send_all(request("OPTIONS", call, uri=uri, sender="sip:bob@skype.lab"))
    final = await peer.final()
    await peer.aclose()
    return None if final is None else final.status


def dns_query_tcp(address: tuple[str, int], name: str) -> dnslib.DNSRecord:
    """One SRV query over TCP (blocking socket: it runs in a thread)."""
    wire = dnslib.DNSRecord.question(name, "SRV").pack()
    with socket.create_connection(address, timeout=STEP) as sock:
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        prefix = sock.recv(2)
        if len(prefix) < 2:
            raise ConnectionError("the DNS server closed the connection without an answer")
        size = int.from_bytes(prefix, "big")
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the DNS server closed the connection mid-answer")
            data += chunk
    return dnslib.DNSRecord.parse(data)


def dns_query_udp(address: tuple[str, int], name: str) -> dnslib.DNSRecord | None:
    wire = dnslib.DNSRecord.question(name, "SRV").pack()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(wire, address)
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
    return dnslib.DNSRecord.parse(data)


async def events_of(lab: Any, call_id: str) -> list[dict[str, object]]:
    """The events of ``call_id``, once there is one (polled: the log is a file)."""
    with trio.fail_after(STEP):
        while True:
            found = [e for e in lab.events() if e.get("call_id") == call_id]
            if found:
                return found
            await trio.sleep(0.05)


# --- the reproduction ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["reset", "fin-without-close-notify"])
async def test_a_client_hanging_up_after_100_trying_leaves_every_listener_up(
    fault_lab: Any, how: str
) -> None:
    lab = await fault_lab()
    client = await Peer.open(lab, lab.clients, None)
    await client.stream.send_all(
        request("INVITE", "crash1", uri="sip:bob@partner.lab", sender="sip:alice@skype.lab")
    )
    first = await client.response()
    assert first is not None
    assert first.status == 100
    if how == "reset":
        client.reset()
    else:
        await client.stream.transport_stream.aclose()  # TCP FIN, no TLS close_notify
    await lab.all_listeners_answer(how)
    assert lab.internal_errors() == []
    # The call that lost its client still gets its one event (the partner answered it).
    assert len(await events_of(lab, "crash1")) == 1


# --- request-derived names that cannot be DNS names --------------------------------------

LONG_HOST = ".".join(["a"] * 150) + ".lab"  # 150 one-letter labels: over 253 octets


@pytest.mark.parametrize(
    "host", [LONG_HOST, "[::1]", "x" * 64 + ".lab"], ids=["150-labels", "ipv6", "long-label"]
)
async def test_clients_port_answers_484_for_a_domain_that_cannot_be_resolved(
    fault_lab: Any, host: str
) -> None:
    lab = await fault_lab()
    client = await Peer.open(lab, lab.clients, None)
    await client.stream.send_all(
        request("INVITE", "unroutable", uri=f"sip:bob@{host}", sender="sip:alice@skype.lab")
    )
    final = await client.final()
    assert final is not None
    assert final.status == 484
    await client.aclose()
    [event] = [e for e in lab.events() if e.get("call_id") == "unroutable"]
    assert (event["status"], event["rule"]) == (484, "unroutable-domain")
    assert lab.internal_errors() == []
    await lab.all_listeners_answer("after")


@pytest.mark.parametrize("host", [LONG_HOST, "[::1]"], ids=["150-labels", "ipv6"])
async def test_federation_port_answers_400_for_a_sender_domain_that_cannot_be_resolved(
    fault_lab: Any, host: str
) -> None:
    lab = await fault_lab()
    peer = await Peer.open(lab, lab.federation, "vcse.steven.lab")
    await peer.stream.send_all(request("INVITE", "badsender", sender=f"sip:2000@{host}"))
    final = await peer.final()
    assert final is not None
    assert final.status == 400
    await peer.stream.send_all(request("OPTIONS", "same-connection"))
    final = await peer.final()
    assert final is not None
    assert final.status == 200
    await peer.aclose()
    [event] = [e for e in lab.events() if e.get("call_id") == "badsender"]
    assert event["status"] == 400
    assert lab.internal_errors() == []


# --- a bug behind any server is contained -------------------------------------------------


class Injected(RuntimeError):
    """The bug the tests plant."""


def _boom(*_args: object, **_kwargs: object) -> Any:
    raise Injected("planted by the test")


async def _aboom(*_args: object, **_kwargs: object) -> Any:
    raise Injected("planted by the test")


async def _poke_federation(lab: Any) -> None:
    peer = await Peer.open(lab, lab.federation, "vcse.steven.lab")
    await peer.stream.send_all(request("OPTIONS", "poke"))
    assert await peer.final() is None  # closed without an answer: the bug ended it
    await peer.aclose()


async def _poke_clients(lab: Any) -> None:
    peer = await Peer.open(lab, lab.clients, None)
    await peer.stream.send_all(
        request("OPTIONS", "poke", uri="sip:2000@partner.lab", sender="sip:bob@skype.lab")
    )
    assert await peer.final() is None
    await peer.aclose()


async def _poke_dns_tcp(lab: Any) -> None:
    with pytest.raises(ConnectionError, match="without an answer"):
        await trio.to_thread.run_sync(
            lambda: dns_query_tcp(lab.dns, "_sipfederationtls._tcp.steven.lab")
        )


async def _poke_dns_udp(lab: Any) -> None:
    reply = await trio.to_thread.run_sync(
        dns_query_udp, lab.dns, "_sipfederationtls._tcp.steven.lab"
    )
    assert reply is None


async def _poke_peer(lab: Any) -> None:
    peer = await Peer.open(lab, lab.peer, "sip.skype.lab")
    await peer.stream.send_all(request("OPTIONS", "poke", uri="sip:2000@partner.lab"))
    assert await peer.final() is None
    await peer.aclose()


async def _poke_partner(lab: Any) -> None:
    # The partner answers; the Edge's reader of that leg meets the bug: the call gets
    # the lost-connection diagnostic (1047), not a dead Edge.
    peer = await Peer.open(lab, lab.clients, None)
    await peer.stream.send_all(
        request("OPTIONS", "poke", uri="sip:2000@partner.lab", sender="sip:bob@skype.lab")
    )
    final = await peer.final()
    assert final is not None
    assert final.status == 504
    assert "1047" in (final.headers.get("ms-diagnostics") or "")
    await peer.aclose()


#: server -> (what to break, how to reach it)
SERVERS: dict[str, tuple[tuple[object, str, Any], Any]] = {
    "federation": ((inbound_module, "_request", _aboom), _poke_federation),
    "clients": ((clients_module, "_dispatch", _aboom), _poke_clients),
    "dns-tcp": ((ZoneSet, "answer", _boom), _poke_dns_tcp),
    "dns-udp": ((ZoneSet, "answer", _boom), _poke_dns_udp),
    "peer": ((uas_module, "_handle", _aboom), _poke_peer),
    "partner": ((Outbound, "_response_from_partner", _aboom), _poke_partner),
}


@pytest.mark.parametrize("server", list(SERVERS))
async def test_a_bug_behind_any_server_is_contained_and_reported(
    fault_lab: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    lab = await fault_lab()
    (target, name, broken), poke = SERVERS[server]
    with monkeypatch.context() as patch:
        patch.setattr(target, name, broken)
        await poke(lab)
    if server == "peer":
        assert [(r.server, r.error_type) for r in lab.peer_reports] == [("peer", "Injected")]
    else:
        [event] = lab.internal_errors()
        assert (event["server"], event["error_type"]) == (server, "Injected")
        assert "Traceback" not in str(event["error"])
    # Unpatched, every server answers again.
    await lab.all_listeners_answer("after")
    assert await clients_options(lab, "partner-after") == 200
