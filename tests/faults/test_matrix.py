"""The fault matrix, on every leg (issue 12, item 2).

Every leg fedsim serves or opens::

    leg          who misbehaves           fedsim's side
    federation   an Expressway-E          the Edge's mutual-TLS port
    clients      a Skype client           the Edge's clients port (TLS, server auth)
    peer         the Edge (as a client)   ``fedsim peer``'s listener (serve_peer)
    dns-tcp      a resolver               the lab DNS server over TCP
    partner      a federated partner      the Edge as TLS client (its outbound leg)

times three ways of going away (:data:`FAULTS`): closing without a TLS
close_notify (TCP FIN), a TCP reset (SO_LINGER 0), and a half-close
(``shutdown(SHUT_WR)``, still reading), times eight moments (:data:`MOMENTS`).
Moments a leg does not have are skipped with the reason in
:data:`NOT_APPLICABLE`, never silently.

To hit a moment exactly, the misbehaving side drives TLS by hand
(:class:`Wire`: an ``ssl.SSLObject`` over memory BIOs on a raw trio socket),
so the test decides which raw bytes go out and how many come in: "during the
handshake" is after the ClientHello, "in the middle of a request" is half of
its TLS record, "in the middle of a response" is half of the server's record
taken off TCP. "While the Edge waits" is known, not guessed: the test waits
until the lab DNS has been asked the silent name (a spy on the zone), or until
the partner has sent its 100.

After each case: the lab is alive, a new connection to the same leg is
answered (for a dialog: its BYE, which outlives the connection), every
listener answers, and once the lab has stopped, every request fedsim took off
the wire has exactly one event and no ``internal-error`` was recorded. A
subset runs with every listener on ``::1``.

Last, per leg, a peer that stops reading: it sends requests and reads nothing,
and the server must close it at its idle deadline (short ones here), not hold
it, or a task blocked on it, for ever.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

import dnslib
import pytest
import trio

from simulator.sip import (
    KeepAlive,
    Need,
    Request,
    Response,
    StreamFramer,
    build_response,
    parse_message,
    serialize,
)

#: Upper bound on any one exchange: a hung server fails the test instead of hanging it.
STEP = 10.0
#: Seconds of idle timeout in the "stops reading" tests.
SHORT_IDLE = 0.5

LEGS = ("federation", "clients", "peer", "dns-tcp", "partner")
FAULTS = ("fin", "reset", "half-close")
MOMENTS = (
    "handshake",  # during the TLS handshake: after the ClientHello
    "after-handshake",  # after the handshake (or the TCP connect), before any request
    "mid-request",  # half of the request's bytes are out
    "before-answer",  # the whole request is out, nothing of its answer read
    "waiting",  # the server waits for DNS (or for the partner) on the request's behalf
    "mid-response",  # part of the answer's TLS record (or DNS message) taken off TCP
    "after-final",  # the final response is read (an OPTIONS: no dialog)
    "in-dialog",  # an INVITE's 200 is read; no ACK, no BYE yet
)

#: (leg, moment) that cannot happen, and why.
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("dns-tcp", "handshake"): "DNS over TCP has no TLS handshake",
    ("dns-tcp", "waiting"): "the lab DNS answers from its own zones: it waits on nothing",
    ("dns-tcp", "in-dialog"): "DNS has no dialogs",
    ("peer", "waiting"): (
        "fedsim peer answers at once (no DNS, no partner, ring_seconds=0 here): it waits on nothing"
    ),
}

#: The subset of moments also run with every listener on ::1.
IPV6_MOMENTS = ("handshake", "mid-request", "mid-response", "in-dialog")

SDP_LINES = ("v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0")
#: Best-effort SRTP (an SDES key): the lab's Skype users keep Microsoft's RequireEncryption.
SDES = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BEJSwt1ILT8x2ksrr33NdrSdq9vxqMudDTZ2taz1"
SDP = "".join(f"{line}\r\n" for line in (*SDP_LINES, "m=audio 30000 RTP/AVP 8 0", SDES)).encode()


def _cases(legs: tuple[str, ...]) -> list[Any]:
    params = []
    for host, moments in (("127.0.0.1", MOMENTS), ("::1", IPV6_MOMENTS)):
        for leg in legs:
            for moment in moments:
                for how in FAULTS:
                    reason = NOT_APPLICABLE.get((leg, moment))
                    marks = [pytest.mark.skip(reason=f"{leg}/{moment}: {reason}")] if reason else []
                    ident = f"{leg}-{moment}-{how}" + ("-v6" if ":" in host else "")
                    params.append(pytest.param(leg, moment, how, host, marks=marks, id=ident))
    return params


# --- a TLS endpoint driven by hand -------------------------------------------------------


class Wire:
    """One end of a connection whose every raw byte the test controls.

    TLS (when ``context`` is given) is an ``ssl.SSLObject`` over memory BIOs:
    records are read off TCP one at a time, exactly (header, then body), so the
    test can stop anywhere inside one; bytes read but not yet given to TLS stay
    in :attr:`held`. SIP messages come out of a :class:`StreamFramer`.
    """

    def __init__(
        self,
        sock: trio.socket.SocketType,
        context: ssl.SSLContext | None,
        *,
        server_side: bool = False,
    ) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = (
            None
            if context is None
            else context.wrap_bio(
                self.incoming,
                self.outgoing,
                server_side=server_side,
                server_hostname=None if server_side else "sip.skype.lab",
            )
        )
        self.framer = StreamFramer()
        self.held = b""
        self.closed = False
        self.local = sock.getsockname()
        #: Post-handshake records that carried no data (TLS 1.3 session tickets).
        self.tickets = 0
        #: How many tickets the server sends (OpenSSL's default, which fedsim keeps).
        self.server_tickets = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).num_tickets

    @classmethod
    async def connect(
        cls, address: tuple[str, int], context: ssl.SSLContext | None, *, rcvbuf: int = 0
    ) -> Wire:
        """A TCP connection to ``address`` (not yet any TLS)."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                # Before connecting, so the window we announce is small from the start.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            with trio.fail_after(STEP):
                await sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return cls(sock, context)

    # raw bytes

    async def send_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def recv_exact(self, size: int) -> bytes:
        data = self.held[:size]
        self.held = self.held[size:]
        while len(data) < size:
            chunk = await self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError("the other side closed")
            data += chunk
        return data

    async def record(self) -> bytes:
        """The next TLS record, whole (raises EOFError or OSError when the connection ends)."""
        header = await self.recv_exact(5)
        return header + await self.recv_exact(int.from_bytes(header[3:5], "big"))

    async def take_part_of_a_record(self) -> None:
        """Take the header and half the body of the next record that carries data off
        TCP, and stop there (the bytes stay in :attr:`held`).

        A TLS 1.3 server's session tickets come before its first data: when depends
        on its TLS stack (fedsim's TlsStream sends them with its last handshake
        flight, trio.SSLStream with its first write), but always ``server_tickets``
        of them; a client reads them and gives them to TLS first.
        """
        await self._take_tickets()
        header = await self.recv_exact(5)
        size = int.from_bytes(header[3:5], "big")
        self.held = header + await self.recv_exact(max(1, size // 2)) + self.held

    # TLS

    def _tls(self) -> ssl.SSLObject:
        assert self.tls is not None, "a plain TCP wire"
        return self.tls

    async def flush(self) -> None:
        if self.outgoing.pending:
            await self.send_raw(self.outgoing.read())

    def _step(self) -> bool:
        try:
            self._tls().do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    async def send_client_hello(self) -> None:
        self._step()
        await self.flush()

    async def take_client_hello(self) -> None:
        """(Server side) read the ClientHello off TCP, and answer nothing."""
        self.incoming.write(await self.record())

    async def handshake(self, *, until_tickets: bool = False) -> None:
        """Run the handshake to its end.

        Args:
            until_tickets: (TLS 1.3 client) also wait for the server's session
                tickets. A TLS 1.3 client is done before the server has read its
                Finished; a server that sends its tickets at once (fedsim's
                TlsStream does, with its last flight) shows with them that its side
                of the handshake is done too.
        """
        with trio.fail_after(STEP):
            while not self._step():
                await self.flush()
                self.incoming.write(await self.record())
            await self.flush()
            if until_tickets:
                await self._take_tickets()

    async def _take_tickets(self) -> None:
        tls = self.tls
        if tls is not None and not tls.server_side and tls.version() == "TLSv1.3":
            while self.tickets < self.server_tickets:
                self._feed(await self.record())
                assert not self.framer.buffered, "data came before the session tickets"

    def _feed(self, record: bytes) -> None:
        """Give one whole record to TLS; what it carried goes to the framer."""
        self.incoming.write(record)
        carried = False
        while True:
            try:
                data = self._tls().read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                return  # close_notify
            if not data:
                return
            carried = True
            self.framer.receive_data(data)
        if not carried:
            self.tickets += 1  # after the handshake, a record without data is a ticket

    def encrypt(self, data: bytes) -> bytes:
        """``data`` as the TLS records that would carry it (not sent)."""
        self._tls().write(data)
        return self.outgoing.read()

    async def send(self, data: bytes) -> None:
        await self.send_raw(self.encrypt(data))

    async def message(self) -> Request | Response | None:
        """The next SIP message, or None when the connection ends."""
        with trio.fail_after(STEP):
            while True:
                item = self.framer.next_message()
                if isinstance(item, bytes):
                    return parse_message(item)
                if item is KeepAlive.PING:
                    continue
                assert item is Need.DATA
                try:
                    record = await self.record()
                except (EOFError, OSError):
                    return None
                try:
                    self._feed(record)
                except ssl.SSLError:
                    return None

    async def final(self, seen: list[Response] | None = None) -> Response | None:
        """Responses up to the first final one (collected in ``seen``); None: closed first."""
        while True:
            message = await self.message()
            if message is None:
                return None
            if isinstance(message, Response):
                if seen is not None:
                    seen.append(message)
                if message.status >= 200:
                    return message

    async def closed_by_other_side(self) -> None:
        """Read (and drop) until the other side ends the connection."""
        with trio.fail_after(STEP):
            while True:
                try:
                    data = self.held or await self.sock.recv(65536)
                except OSError:
                    return
                self.held = b""
                if not data:
                    return

    # going away

    def fault(self, how: str) -> None:
        """Go away as ``how`` says (see :data:`FAULTS`)."""
        if how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close()
        elif how == "fin":
            # FIN first; a killed process whose kernel still held unread bytes follows
            # it with a reset, as a real one does. No close_notify either way.
            self.sock.shutdown(socket.SHUT_WR)
            self.close()
        else:
            assert how == "half-close"
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


# --- SIP for the legs --------------------------------------------------------------------


def sip_request(
    method: str,
    call: str,
    *,
    uri: str,
    sender: str,
    host: str,
    cseq: int = 1,
    to: str | None = None,
    body: bytes = b"",
) -> bytes:
    sent_by = f"[{host}]" if ":" in host else host
    head = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {sent_by}:5061;branch=z9hG4bK{call}{method.lower()}{cseq}\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <{sender}>;tag=abc\r\n"
        f"To: {to or f'<{uri}>'}\r\n"
        f"Call-ID: {call}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <{sender};transport=tls>\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@dataclass(frozen=True)
class SipLeg:
    """A SIP listener under test: where, with which certificate, which request."""

    name: str
    cert: str | None
    uri: str
    sender: str
    #: Whether its TLS sends the TLS 1.3 session tickets with the handshake's last flight.
    prompt_tickets: bool = True
    #: The Request-URI of the "waiting" moment (its domain's SRV is never answered).
    waiting_uri: str | None = None
    waiting_sender: str | None = None

    def address(self, lab: Any) -> tuple[str, int]:
        return {"federation": lab.federation, "clients": lab.clients, "peer": lab.peer}[self.name]

    def request(self, moment: str, call: str, host: str) -> tuple[bytes, int]:
        """The request of ``moment`` and the final status it gets when all goes well."""
        if moment == "after-final":
            return sip_request("OPTIONS", call, uri=self.uri, sender=self.sender, host=host), 200
        if moment == "waiting":
            assert self.waiting_uri is not None
            sender = self.waiting_sender or self.sender
            invite = sip_request(
                "INVITE", call, uri=self.waiting_uri, sender=sender, host=host, body=SDP
            )
            return invite, 504
        return sip_request(
            "INVITE", call, uri=self.uri, sender=self.sender, host=host, body=SDP
        ), 200

    def bye(self, call: str, ok: Response, host: str) -> bytes:
        """The BYE of the dialog ``ok`` (an INVITE's 200) created."""
        to = ok.headers.get("To")
        return sip_request("BYE", call, uri=self.uri, sender=self.sender, host=host, cseq=2, to=to)


SIP_LEGS = {
    "federation": SipLeg(
        "federation",
        cert="vcse.steven.lab",
        uri="sip:stejanss@skype.lab",
        sender="sip:2000@steven.lab",
        waiting_uri="sip:stejanss@skype.lab",
        waiting_sender="sip:2000@slow.lab",  # the Edge resolves the sender's domain
    ),
    "clients": SipLeg(
        "clients",
        cert=None,
        uri="sip:bob@skype.lab",
        sender="sip:alice@skype.lab",
        waiting_uri="sip:x@slowout.lab",  # the Edge resolves the callee's domain
    ),
    "peer": SipLeg(
        "peer",
        cert="sip.skype.lab",
        uri="sip:2000@partner.lab",
        sender="sip:bob@skype.lab",
        prompt_tickets=False,  # trio.SSLStream sends them with its first write
    ),
}
SILENT = {
    "federation": "_sipfederationtls._tcp.slow.lab",
    "clients": "_sipfederationtls._tcp.slowout.lab",
}


def dns_query(name: str = "_sipfederationtls._tcp.steven.lab") -> bytes:
    wire = dnslib.DNSRecord.question(name, "SRV").pack()
    return len(wire).to_bytes(2, "big") + wire


async def dns_answer(wire: Wire) -> dnslib.DNSRecord | None:
    """The next length-prefixed DNS message, or None when the connection ends."""
    with trio.fail_after(STEP):
        try:
            prefix = await wire.recv_exact(2)
            return dnslib.DNSRecord.parse(await wire.recv_exact(int.from_bytes(prefix, "big")))
        except (EOFError, OSError):
            return None


# --- what every case checks ---------------------------------------------------------------


@dataclass
class Case:
    """What the misbehaving side did, for the checks after it."""

    call: str
    method: str
    #: The whole request went out before the fault.
    sent_whole: bool = False
    responses: list[Response] = field(default_factory=list)
    final: Response | None = None
    #: The final status the request gets when all goes well.
    expected: int = 0
    #: The final answer (SIP) or the answer (DNS) was read before the fault.
    answered: bool = False
    #: Other proof that the server took the request: part of an answer came back, or
    #: the Edge asked the lab DNS on its behalf.
    taken: bool = False

    def accepted(self, how: str) -> bool | None:
        """Whether the server certainly took the request off the wire (None: maybe).

        A response proves it; before a FIN or a half-close the request's bytes are
        read before the end of the stream. A reset right behind the request can
        make the server's kernel drop them unread.
        """
        if self.responses or self.taken:
            return True
        if not self.sent_whole:
            return False
        return True if how != "reset" else None


def _count(events: list[dict[str, object]], call: str, method: str) -> int:
    return sum(
        1
        for e in events
        if e.get("call_id") == call and e.get("method") == method and e.get("rule") != "in-dialog"
    )


def check_one_event(lab: Any, leg: str, case: Case, how: str) -> None:
    """Once the lab has stopped: the request has exactly one event if it was accepted."""
    if leg == "peer":
        count = lab.partner_requests.count((case.method, case.call))
    else:
        count = _count(lab.events(), case.call, case.method)
    accepted = case.accepted(how)
    if accepted is None:
        assert count <= 1, f"{case.call}: {count} events"
    else:
        assert count == int(accepted), f"{case.call}: {count} events, accepted={accepted}"


async def wait_for_event(lab: Any, call: str, method: str) -> None:
    """Wait until the request's event is written (the Edge finished it; polled: a file)."""
    with trio.fail_after(STEP):
        while True:
            if _count(lab.events(), call, method):
                return
            await trio.sleep(0.02)


def check_no_internal_error(lab: Any) -> None:
    assert lab.internal_errors() == []
    assert lab.peer_reports == []


# --- the four listeners ---------------------------------------------------------------------


async def drive_sip(lab: Any, wire: Wire, leg: SipLeg, moment: str, how: str, case: Case) -> None:
    """Take a SIP listener to ``moment`` and go away as ``how`` says."""
    if moment == "handshake":
        await wire.send_client_hello()
        wire.fault(how)
        return
    await wire.handshake(until_tickets=leg.prompt_tickets)
    if moment == "after-handshake":
        wire.fault(how)
        return
    request, case.expected = leg.request(moment, case.call, lab.host)
    raw = wire.encrypt(request)
    if moment == "mid-request":
        await wire.send_raw(raw[: len(raw) // 2])
        wire.fault(how)
        return
    await wire.send_raw(raw)
    case.sent_whole = True
    if moment == "before-answer":
        wire.fault(how)
        return
    if moment == "waiting":
        if leg.name == "clients":
            trying = await wire.message()  # 100 comes before the Edge routes (RFC 3261 §16.2)
            assert isinstance(trying, Response)
            assert trying.status == 100
            case.responses.append(trying)
        await lab.asked(SILENT[leg.name])
        case.taken = True
        wire.fault(how)
        return
    if moment == "mid-response":
        await wire.take_part_of_a_record()
        case.taken = True
        wire.fault(how)
        return
    case.final = await wire.final(case.responses)
    assert case.final is not None
    assert case.final.status == 200
    case.answered = True
    wire.fault(how)


async def drive_dns(wire: Wire, moment: str, how: str, case: Case) -> None:
    """Take the lab DNS's TCP side to ``moment`` and go away as ``how`` says."""
    if moment == "after-handshake":
        wire.fault(how)
        return
    query = dns_query()
    if moment == "mid-request":
        await wire.send_raw(query[: len(query) // 2])
        wire.fault(how)
        return
    await wire.send_raw(query)
    case.sent_whole = True
    if moment == "before-answer":
        wire.fault(how)
        return
    if moment == "mid-response":
        prefix = await wire.recv_exact(2)
        size = int.from_bytes(prefix, "big")
        wire.held = prefix + await wire.recv_exact(size // 2)
        wire.fault(how)
        return
    assert moment == "after-final"
    answer = await dns_answer(wire)
    assert answer is not None
    assert answer.rr
    case.answered = True
    wire.fault(how)


async def after_half_close(wire: Wire, leg: str, moment: str, case: Case) -> None:
    """A half-closed client still reads; the server closes its side too.

    Over plain TCP (DNS) a query sent before the half-close is still answered. Over
    TLS, a TCP FIN without close_notify is a truncation: once the server has read it,
    OpenSSL refuses to write on that session (UNEXPECTED_EOF_WHILE_READING), so an
    answer arrives only if the server sent it before reading the end; if it does, it
    is the right one.
    """
    pending = case.sent_whole and not case.answered
    if leg == "dns-tcp":
        if pending:
            answer = await dns_answer(wire)
            assert answer is not None
            assert answer.rr
    elif pending:
        case.final = await wire.final(case.responses)
        assert case.final is None or case.final.status == case.expected, moment
    await wire.closed_by_other_side()


async def next_request_is_answered(lab: Any, leg: str, moment: str, case: Case) -> None:
    """A new connection to the same leg is served; a dialog's BYE still finds it."""
    if leg == "dns-tcp":
        assert await lab.dns_tcp_answers()
        return
    sip = SIP_LEGS[leg]
    if moment == "in-dialog":
        assert case.final is not None
        bye = sip.bye(case.call, case.final, lab.host)
        final = await lab.sip_final(sip.address(lab), sip.cert, bye)
        assert final is not None
        assert final.status == 200, "the dialog did not outlive its connection"
    options = sip_request(
        "OPTIONS", f"next-{case.call}", uri=sip.uri, sender=sip.sender, host=lab.host
    )
    final = await lab.sip_final(sip.address(lab), sip.cert, options)
    assert final is not None
    assert final.status == 200


def check_tls_failures(lab: Any, leg: str, moment: str, how: str, port: int) -> None:
    """A handshake cut short is one TLS-failure event; any later fault is none."""
    kinds = {"federation": "tls-handshake-failed", "clients": "client-tls-failed"}
    if leg not in kinds:
        return
    mine = [
        e
        for e in lab.events()
        if e.get("kind") == kinds[leg] and str(e.get("peer_address", "")).endswith(f":{port}")
    ]
    if moment != "handshake":
        assert mine == []
    elif how == "reset":
        assert len(mine) <= 1  # a reset may beat the server to the accept
    else:
        assert len(mine) == 1


@pytest.mark.parametrize(("leg", "moment", "how", "host"), _cases(LEGS[:4]))
async def test_a_listener_survives(
    fault_lab: Any, leg: str, moment: str, how: str, host: str
) -> None:
    lab = await fault_lab(host=host)
    call = f"{leg}-{moment}-{how}"
    if leg == "dns-tcp":
        case = Case(call=call, method="QUERY")
        wire = await Wire.connect(lab.dns, None)
    else:
        sip = SIP_LEGS[leg]
        case = Case(call=call, method="OPTIONS" if moment == "after-final" else "INVITE")
        wire = await Wire.connect(sip.address(lab), lab.client_context(sip.cert))
    port = wire.local[1]
    try:
        if leg == "dns-tcp":
            await drive_dns(wire, moment, how, case)
        else:
            await drive_sip(lab, wire, SIP_LEGS[leg], moment, how, case)
        if how == "half-close":
            await after_half_close(wire, leg, moment, case)
    finally:
        wire.close()

    await next_request_is_answered(lab, leg, moment, case)
    await lab.all_listeners_answer(call)
    if leg in ("federation", "clients") and case.accepted(how):
        # The Edge finishes a request whose client left (a DNS wait included) ...
        await wait_for_event(lab, case.call, case.method)
    # ... and once it has stopped, nothing more can be written: count.
    await lab.stop()
    if leg != "dns-tcp":
        check_one_event(lab, leg, case, how)
    check_tls_failures(lab, leg, moment, how, port)
    check_no_internal_error(lab)


# --- the partner leg: the Edge as a TLS client ---------------------------------------------


def partner_answer(request: Request, status: int, host: str) -> bytes:
    """The partner's ``status`` to ``request`` (a 200 to INVITE makes a dialog)."""
    headers: list[tuple[str, str]] = []
    body = b""
    if status == 200 and request.method == "INVITE":
        sent_by = f"[{host}]" if ":" in host else host
        headers = [
            ("Contact", f"<sip:2000@{sent_by};transport=tls>"),
            ("Content-Type", "application/sdp"),
        ]
        body = SDP
    tag = None if status == 100 else "partnertag"
    return serialize(build_response(request, status, to_tag=tag, headers=headers, body=body))


async def serve_well(wire: Wire, host: str) -> None:
    """A partner that behaves: 100 and 200 to INVITE, 200 to the rest; ACK absorbed."""
    await wire.handshake()
    while (message := await wire.message()) is not None:
        if isinstance(message, Response) or message.method == "ACK":
            continue
        if message.method == "INVITE":
            await wire.send(partner_answer(message, 100, host))
        await wire.send(partner_answer(message, 200, host))


@dataclass
class Script:
    """What the misbehaving partner does, and what it tells the client's side."""

    moment: str
    how: str
    host: str
    #: Set by the client once it holds the relayed final answer.
    client_has_final: trio.Event = field(default_factory=trio.Event)
    #: Set by the partner once it went away.
    gone: trio.Event = field(default_factory=trio.Event)
    #: Set once the Edge closed its side of a half-closed leg.
    edge_closed: trio.Event = field(default_factory=trio.Event)


async def misbehave(wire: Wire, script: Script) -> None:
    """The first connection the Edge opens to fault.lab: go away at ``script.moment``."""
    try:
        await _until_the_moment(wire, script)
    finally:
        wire.fault(script.how)
        script.gone.set()
    if script.how == "half-close":
        await wire.closed_by_other_side()
        script.edge_closed.set()


async def _until_the_moment(wire: Wire, script: Script) -> None:
    moment = script.moment
    if moment == "handshake":
        await wire.take_client_hello()
        return
    await wire.handshake()
    if moment == "after-handshake":
        return
    if moment == "mid-request":
        await wire.take_part_of_a_record()  # half of the Edge's forwarded request
        return
    request = await wire.message()
    assert isinstance(request, Request)
    if moment == "before-answer":
        return
    if request.method == "INVITE":
        await wire.send(partner_answer(request, 100, script.host))
    if moment == "waiting":
        return  # the Edge waits for the final response
    final = wire.encrypt(partner_answer(request, 200, script.host))
    if moment == "mid-response":
        await wire.send_raw(final[: len(final) // 2])
        return
    await wire.send_raw(final)
    with trio.fail_after(STEP):
        await script.client_has_final.wait()


async def fault_partner(
    lab: Any, script: Script, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Accept the Edge on fault.lab's port: misbehave on the first connection, then serve."""
    context = lab.server_context("vcse.fault.lab")
    async with trio.open_nursery() as nursery:
        task_status.started()
        first = True
        while True:
            sock, _ = await lab.fault_listener.accept()
            wire = Wire(sock, context, server_side=True)
            nursery.start_soon(_partner_connection, wire, script if first else None)
            first = False


async def _partner_connection(wire: Wire, script: Script | None) -> None:
    try:
        if script is not None:
            await misbehave(wire, script)
        else:
            with contextlib.suppress(EOFError, OSError, ssl.SSLError):
                await serve_well(wire, "")
    finally:
        wire.close()


#: What the Skype client's request gets when the partner goes away at each moment.
PARTNER_FINAL = {
    "handshake": 504,
    "after-handshake": 504,
    "mid-request": 504,
    "before-answer": 504,
    "waiting": 504,
    "mid-response": 504,
    "after-final": 200,  # relayed before the partner left
    "in-dialog": 200,
}


@pytest.mark.parametrize(("leg", "moment", "how", "host"), _cases(("partner",)))
async def test_the_partner_leg_survives(
    fault_lab: Any, leg: str, moment: str, how: str, host: str
) -> None:
    lab = await fault_lab(host=host)
    script = Script(moment=moment, how=how, host=host)
    call = f"partner-{moment}-{how}"
    method = "OPTIONS" if moment == "after-final" else "INVITE"
    async with trio.open_nursery() as partners:
        await partners.start(fault_partner, lab, script)
        client = await Wire.connect(lab.clients, lab.client_context(None))
        try:
            await client.handshake()
            body = SDP if method == "INVITE" else b""
            invite = sip_request(
                method, call, uri="sip:2000@fault.lab", sender="sip:alice@skype.lab",
                host=host, body=body,
            )  # fmt: skip
            await client.send(invite)
            final = await client.final()
            script.client_has_final.set()
            assert final is not None
            assert final.status == PARTNER_FINAL[moment]
            if final.status == 504:
                # The lost partner connection (reference §2.1 O9; inferred for a loss
                # after the handshake): ms-diagnostics 1047, the reset's Winsock code.
                diagnostics = final.headers.get("ms-diagnostics") or ""
                assert diagnostics.startswith("1047;"), diagnostics
                assert "10054" in diagnostics
            if moment == "in-dialog":
                with trio.fail_after(STEP):
                    await script.gone.wait()
                to = final.headers.get("To")
                uri, sender = "sip:2000@fault.lab", "sip:alice@skype.lab"
                await client.send(
                    sip_request("ACK", call, uri=uri, sender=sender, host=host, to=to)
                    + sip_request("BYE", call, uri=uri, sender=sender, host=host, cseq=2, to=to)
                )
                bye = await client.final()
                assert bye is not None
                # 481 once the Edge has dropped the dialog with its partner connection;
                # 504 (1047) if the BYE went out on the leg before the Edge saw it go.
                assert bye.status in (481, 504)
        finally:
            client.close()
        with trio.fail_after(STEP):
            await script.gone.wait()
            if how == "half-close":
                await script.edge_closed.wait()  # the Edge closed its side too

        # The next call to fault.lab opens a new connection, and that partner behaves.
        options = sip_request(
            "OPTIONS", f"next-{call}", uri="sip:2000@fault.lab", sender="sip:alice@skype.lab",
            host=host,
        )  # fmt: skip
        after = await lab.sip_final(lab.clients, None, options)
        assert after is not None
        assert after.status == 200
        await lab.all_listeners_answer(call)
        partners.cancel_scope.cancel()
    await lab.stop()
    [event] = [e for e in lab.events() if e.get("call_id") == call and e.get("method") == method]
    assert event["status"] == PARTNER_FINAL[moment]
    check_no_internal_error(lab)


# --- a peer that stops reading --------------------------------------------------------------

#: Requests a non-reading peer sends: more answers than the socket buffers on both sides
#: hold once the receiver's buffer is small, so the server's sends must block.
FLOOD = 400
#: Receive buffer of the non-reading side (the kernel doubles it; it keeps the window small).
SMALL_RCVBUF = 4096
#: linux/tcp.h: tcpi_state of an established connection.
TCP_ESTABLISHED = 1
#: Overrides for the "stops reading" tests: every deadline short, so a stuck send is
#: cut within a couple of seconds (the clients port lets requests it took finish
#: within the longest call: connect + handshake + transaction).
STALL_LIMITS = {
    "idle_timeout": SHORT_IDLE,
    "connect_timeout": SHORT_IDLE,
    "partner_handshake_timeout": SHORT_IDLE,
    "transaction_timeout": SHORT_IDLE,
}


def tcp_state(sock: trio.socket.SocketType) -> int:
    """The kernel's TCP state of ``sock`` (``struct tcp_info``'s first byte)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


async def closed_by_the_server(wire: Wire) -> None:
    """Wait (bounded) until the other side has closed or reset the connection; nothing is
    read, so the state is asked of the kernel."""
    with trio.fail_after(STEP):
        while True:
            if tcp_state(wire.sock) != TCP_ESTABLISHED:
                return
            await trio.sleep(0.02)


@pytest.mark.parametrize("leg", ["federation", "clients", "peer", "dns-tcp"])
async def test_a_listener_closes_a_peer_that_stops_reading(fault_lab: Any, leg: str) -> None:
    lab = await fault_lab(**STALL_LIMITS)
    calls = [f"stall-{leg}-{n}" for n in range(FLOOD)]
    if leg == "dns-tcp":
        wire = await Wire.connect(lab.dns, None, rcvbuf=SMALL_RCVBUF)
        requests = [dns_query() for _ in calls]
        send = wire.send_raw
    else:
        sip = SIP_LEGS[leg]
        wire = await Wire.connect(
            sip.address(lab), lab.client_context(sip.cert), rcvbuf=SMALL_RCVBUF
        )
        requests = [
            sip_request("OPTIONS", call, uri=sip.uri, sender=sip.sender, host=lab.host)
            for call in calls
        ]
        send = wire.send
    try:
        if leg != "dns-tcp":
            await wire.handshake()
        sent = 0
        with trio.fail_after(STEP):
            for request in requests:
                try:
                    await send(request)
                except OSError:
                    break  # the server closed it while this send waited for room
                sent += 1
        await closed_by_the_server(wire)
    finally:
        wire.close()
    assert sent > 0

    if leg == "dns-tcp":
        assert await lab.dns_tcp_answers()
    else:
        assert (
            await lab.sip_final(
                sip.address(lab),
                sip.cert,
                sip_request(
                    "OPTIONS", "after-stall", uri=sip.uri, sender=sip.sender, host=lab.host
                ),
            )
            is not None
        )
    await lab.all_listeners_answer(leg)
    await lab.stop()
    # What the server took off the wire before it closed (requests are read in order):
    # one event each; what still sat in a socket buffer was never accepted: none.
    if leg in ("federation", "clients"):
        events = lab.events()
        counts = [_count(events, call, "OPTIONS") for call in calls[:sent]]
    elif leg == "peer":
        counts = [lab.partner_requests.count(("OPTIONS", call)) for call in calls[:sent]]
    else:
        counts = [1]
    taken = counts.count(1)
    assert taken > 0
    assert counts == [1] * taken + [0] * (len(counts) - taken)
    check_no_internal_error(lab)


async def stall(wire: Wire, host: str, closed: trio.Event) -> None:
    """A partner that takes the Edge's request, then only sends: BYEs for dialogs that do
    not exist, which the Edge must answer (481), and reads nothing."""
    await wire.handshake()
    request = await wire.message()
    assert isinstance(request, Request)
    sent_by = f"[{host}]" if ":" in host else host
    with trio.fail_after(STEP):
        for n in range(FLOOD):
            bye = sip_request(
                "BYE", f"stall-{n}", uri=f"sip:alice@{sent_by}", sender="sip:2000@fault.lab",
                host=host, to="<sip:alice@skype.lab>;tag=gone",
            )  # fmt: skip
            try:
                await wire.send(bye)
            except OSError:
                break  # the Edge closed it while this send waited for room
    await closed_by_the_server(wire)
    closed.set()


async def test_the_edge_closes_a_partner_that_stops_reading(fault_lab: Any) -> None:
    lab = await fault_lab(**STALL_LIMITS)
    context = lab.server_context("vcse.fault.lab")
    closed = trio.Event()

    async def partner(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            first = True
            while True:
                sock, _ = await lab.fault_listener.accept()
                if first:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
                wire = Wire(sock, context, server_side=True)

                async def run(wire: Wire = wire, first: bool = first) -> None:
                    try:
                        if first:
                            await stall(wire, lab.host, closed)
                        else:
                            with contextlib.suppress(EOFError, OSError, ssl.SSLError):
                                await serve_well(wire, lab.host)
                    finally:
                        wire.close()

                nursery.start_soon(run)
                first = False

    uri, sender = "sip:2000@fault.lab", "sip:alice@skype.lab"
    async with trio.open_nursery() as partners:
        await partners.start(partner)
        request = sip_request("OPTIONS", "stalled", uri=uri, sender=sender, host=lab.host)
        final = await lab.sip_final(lab.clients, None, request)
        assert final is not None
        # The partner never answered: 408 at the transaction timeout, or 504 (1047)
        # when the Edge gave up the connection first.
        assert final.status in (408, 504)
        with trio.fail_after(STEP):
            await closed.wait()
        options = sip_request("OPTIONS", "after-stall", uri=uri, sender=sender, host=lab.host)
        after = await lab.sip_final(lab.clients, None, options)
        assert after is not None
        assert after.status == 200
        await lab.all_listeners_answer("partner")
        partners.cancel_scope.cancel()
    await lab.stop()
    assert _count(lab.events(), "stalled", "OPTIONS") == 1
    check_no_internal_error(lab)
