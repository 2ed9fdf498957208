"""A served lab with ``--trace --pcap --keylog``, one call per outcome, read with the field's tools.

One real ``fedsim serve`` (a subprocess, stopped by SIGTERM as a person would stop
it) and, in this test process, the lab's other parties speaking exact bytes: an
Expressway-E on the federation port (a call answered 200, one refused for its SRV,
one for its certificate), a Skype client on the clients port (a 504 with 1009, a
call the Edge relays to a partner, a call the Edge's own user answers) and that
partner. Meanwhile ``tcpdump`` records the lab's loopback traffic (TLS).

Then: ``trace.log`` reads back into exactly the bytes each party sent and got,
with the Edge's TF_DIAG records in their place; ``tshark`` lists the Call-ID and
status of every message of the capture and decrypts the tcpdump capture with the
key log; ``sngrep`` finds the calls. Every process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import ssl
import stat
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio

from simulator.bench.procs import free_port
from simulator.diagnostics import ParsedEdgeRecord, parse_edge_log
from simulator.pki import KEYLOG_MODE, client_context
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
from simulator.trace import ComponentRecord, TraceMessage, parse_trace
from simulator.trace.pcap import read_capture

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
#: Upper bound for any process to start, stop or answer; a hang is a bug, this fails it.
LIMIT = 30.0
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    # Best-effort SRTP: the lab's users keep Microsoft's RequireEncryption.
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BEJSwt1ILT8x2ksrr33NdrSdq9vxqMudDTZ2taz1\r\n"
)

LAB = """\
name = "wire"
summary = "one call per outcome, with the trace, the capture and the key log on"

[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["public-root"]
federation = "discovery"
machine = "sfvedge"
users = {{ stejanss = 200 }}
seed = 17

[dns]
records = \"\"\"
steven.lab.                              300 IN SOA ns.steven.lab. h.steven.lab. 1 3600 600 86400 30
_sipfederationtls._tcp.steven.lab.        300 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab.                          300 IN A   127.0.0.1
_sipfederationtls._tcp.acano.steven.lab.  300 IN SRV 0 0 5061 vcse.steven.lab.
_sipfederationtls._tcp.video.steven.lab.  300 IN SRV 0 0 5061 vcse.video.steven.lab.
vcse.video.steven.lab.                    300 IN A   127.0.0.1
_sipfederationtls._tcp.cms.steven.lab.    300 IN SRV 0 0 5061 vcse.sub.cms.steven.lab.
vcse.sub.cms.steven.lab.                  300 IN A   127.0.0.1
far.lab.                                  300 IN SOA ns.far.lab. h.far.lab. 1 3600 600 86400 30
_sipfederationtls._tcp.far.lab.           300 IN SRV 0 0 {partner_port} vcse.far.lab.
vcse.far.lab.                             300 IN A   127.0.0.1
\"\"\"

[certs.public-root]
ca = true
public = true
cn = "fedsim Lab Public Root CA"

[certs."sip.skype.lab"]
issuer = "public-root"
san = ["sip.skype.lab"]
eku = ["serverAuth", "clientAuth"]

[certs."vcse.steven.lab"]
issuer = "public-root"
san = ["vcse.steven.lab"]
eku = ["serverAuth", "clientAuth"]

[certs."vcse.far.lab"]
issuer = "public-root"
san = ["vcse.far.lab"]
eku = ["serverAuth", "clientAuth"]
"""


def request(
    method: str,
    uri: str,
    *,
    call_id: str,
    cseq: int,
    from_: str,
    to: str,
    to_tag: str | None = None,
    port: int,
    body: bytes = b"",
) -> bytes:
    """One request as a UA writes it, byte for byte what the test sends."""
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/TLS 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}{method.lower()}",
        "Max-Forwards: 70",
        f"From: <{from_}>;tag=t{call_id}",
        f"To: <{to}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:test@127.0.0.1:{port};transport=tls>",
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Party:
    """One TLS connection of the test: every byte it sent and got, and the messages got."""

    stream: trio.SSLStream[trio.SocketStream]
    local_port: int
    sent: bytearray = field(default_factory=bytearray)
    got: bytearray = field(default_factory=bytearray)
    framer: StreamFramer = field(default_factory=StreamFramer)
    messages: list[Request | Response] = field(default_factory=list)

    async def send(self, data: bytes) -> None:
        self.sent += data
        await self.stream.send_all(data)

    async def receive(self) -> bool:
        """Read once; False at the end of the connection."""
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        if not data:
            return False
        self.got += data
        self.framer.receive_data(bytes(data))
        while (item := self.framer.next_message()) is not Need.DATA:
            if not isinstance(item, KeepAlive):
                assert isinstance(item, bytes)
                self.messages.append(parse_message(item))
        return True

    async def final(self, call_id: str, method: str) -> Response:
        """Read until the final response to (call_id, method) has come."""

        def found() -> Response | None:
            for m in self.messages:
                if (
                    isinstance(m, Response)
                    and m.status >= 200
                    and m.call_id == call_id
                    and m.cseq[1] == method
                ):
                    return m
            return None

        with trio.fail_after(LIMIT):
            while (answer := found()) is None:
                assert await self.receive(), f"the Edge closed before answering {call_id}"
        return answer

    async def close(self) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.aclose()


async def connect(port: int, context: ssl.SSLContext) -> Party:
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    local = int(tcp.socket.getsockname()[1])
    stream = trio.SSLStream(tcp, context, server_hostname="sip.skype.lab")
    await stream.do_handshake()
    return Party(stream=stream, local_port=local)


@dataclass
class Served:
    """What the served lab wrote, and what each party of the test sent and got."""

    log_dir: Path
    banner: str
    trace: str
    capture: Path
    keylog: Path
    tcpdump: Path
    ports: dict[str, int]
    #: Each connection's Peer: in the trace -> (what the Edge received, what it sent).
    wire: dict[str, tuple[bytes, bytes]]

    def trace_messages(self) -> list[TraceMessage]:
        return [r for r in parse_trace(self.trace) if isinstance(r, TraceMessage)]


async def place_calls(
    ports: dict[str, int], certs: Path, serve_pid: int
) -> dict[str, tuple[bytes, bytes]]:
    """Every party's calls; then SIGTERM to fedsim serve and the partner reads to its end."""
    ca = certs / "public-root.crt"
    expe_ctx = client_context(
        cert=certs / "vcse.steven.lab.crt", key=certs / "vcse.steven.lab.key", trust=[ca]
    )
    skype_ctx = client_context(trust=[ca])
    partner_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    partner_ctx.load_cert_chain(certs / "vcse.far.lab.crt", certs / "vcse.far.lab.key")
    wire: dict[str, tuple[bytes, bytes]] = {}
    listener = (await trio.open_tcp_listeners(ports["partner"], host="127.0.0.1"))[0]

    async def partner() -> None:
        """vcse.far.lab: answers the relayed INVITE 486 and reads the Edge's ACK, to the end."""
        tcp = await listener.accept()
        party = Party(stream=trio.SSLStream(tcp, partner_ctx, server_side=True), local_port=0)
        answered = 0
        while await party.receive():
            for m in party.messages[answered:]:
                if isinstance(m, Request) and m.method == "INVITE":
                    await party.send(serialize(build_response(m, 486, to_tag="far1")))
            answered = len(party.messages)
        await trio.aclose_forcefully(party.stream)
        wire[f"vcse.far.lab:{ports['partner']}"] = (bytes(party.sent), bytes(party.got))

    with trio.fail_after(LIMIT * 2):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partner)
            await _calls(ports, expe_ctx, skype_ctx, serve_pid, wire)
    await listener.aclose()
    return wire


async def _calls(
    ports: dict[str, int],
    expe_ctx: ssl.SSLContext,
    skype_ctx: ssl.SSLContext,
    serve_pid: int,
    wire: dict[str, tuple[bytes, bytes]],
) -> None:
    """The Expressway-E's and the Skype client's calls, then fedsim serve is stopped."""
    fed = ports["federation"]
    # The Expressway-E, first connection: steven.lab, accepted (200, ACK, BYE, 200).
    expe = await connect(fed, expe_ctx)
    to = "sip:stejanss@skype.lab"
    invite = partial(request, "INVITE", to, cseq=1, to=to, port=expe.local_port, body=SDP)
    await expe.send(invite(call_id="accepted", from_="sip:2000@steven.lab"))
    ok = await expe.final("accepted", "INVITE")
    assert ok.status == 200
    tag = ok.to.tag
    await expe.send(request("ACK", to, call_id="accepted", cseq=1, from_="sip:2000@steven.lab",
                            to=to, to_tag=tag, port=expe.local_port))  # fmt: skip
    await expe.send(request("BYE", to, call_id="accepted", cseq=2, from_="sip:2000@steven.lab",
                            to=to, to_tag=tag, port=expe.local_port))  # fmt: skip
    assert (await expe.final("accepted", "BYE")).status == 200
    await expe.close()
    # A second connection: the acano SRV outside its domain, the video certificate.
    expe2 = await connect(fed, expe_ctx)
    for call_id, domain in (("acano", "acano.steven.lab"), ("video", "video.steven.lab")):
        frm = f"sip:2000@{domain}"
        await expe2.send(request("INVITE", to, call_id=call_id, cseq=1, from_=frm, to=to,
                                 port=expe2.local_port, body=SDP))  # fmt: skip
        assert (await expe2.final(call_id, "INVITE")).status == 504
        await expe2.send(request("ACK", to, call_id=call_id, cseq=1, from_=frm, to=to,
                                 to_tag=None, port=expe2.local_port))  # fmt: skip
    await expe2.close()
    # The Skype client: 1009 from cms, a partner's 486 relayed, a local user's 200.
    skype = await connect(ports["clients"], skype_ctx)
    frm = "sip:alice@skype.lab"
    for call_id, callee, status in (
        ("cms", "sip:stejanss.space@cms.steven.lab", 504),
        ("far", "sip:bob@far.lab", 486),
        ("local", "sip:stejanss@skype.lab", 200),
    ):
        await skype.send(request("INVITE", callee, call_id=call_id, cseq=1, from_=frm,
                                 to=callee, port=skype.local_port, body=SDP))  # fmt: skip
        final = await skype.final(call_id, "INVITE")
        assert final.status == status, final
        tag = final.to.tag if status == 200 else None
        await skype.send(request("ACK", callee, call_id=call_id, cseq=1, from_=frm, to=callee,
                                 to_tag=tag, port=skype.local_port))  # fmt: skip
    await skype.send(request("BYE", "sip:stejanss@skype.lab", call_id="local", cseq=2,
                             from_=frm, to="sip:stejanss@skype.lab", to_tag=tag,
                             port=skype.local_port))  # fmt: skip
    assert (await skype.final("local", "BYE")).status == 200
    await skype.close()
    for party in (expe, expe2):
        wire[f"vcse.steven.lab:{party.local_port}"] = (bytes(party.sent), bytes(party.got))
    wire[f"127.0.0.1:{skype.local_port}"] = (bytes(skype.sent), bytes(skype.got))
    # Stop the lab as a person does; the partner leg ends with it.
    os.kill(serve_pid, signal.SIGTERM)


class Output:
    """A child's merged output, read with a deadline (no sleeping)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.text = b""

    def wait_for(self, wanted: bytes) -> None:
        deadline = time.monotonic() + LIMIT
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while wanted not in self.text:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    pytest.fail(f"no {wanted!r} within {LIMIT:g} s: {self.text.decode()}")
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    pytest.fail(f"the process ended without {wanted!r}: {self.text.decode()}")
                self.text += chunk

    def rest(self) -> str:
        while chunk := os.read(self.fd, 65536):
            self.text += chunk
        return self.text.decode("utf-8", "replace")


def stop(proc: subprocess.Popen[bytes], how: signal.Signals) -> None:
    """Signal the process by its PID, SIGKILL it when it lingers, reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, how)
        try:
            proc.wait(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def ended_flows(capture: Path) -> set[frozenset[int]]:
    """The TCP connections (as their two ports) whose FIN or RST a tcpdump pcap holds so far."""
    data = capture.read_bytes() if capture.exists() else b""
    ended: set[frozenset[int]] = set()
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack("<I", data[pos + 8 : pos + 12])[0]
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) >= 14 + 20 + 14 and frame[23] == 6:
            tcp = 14 + (frame[14] & 0x0F) * 4
            if frame[tcp + 13] & 0x05:
                ended.add(frozenset(struct.unpack("!HH", frame[tcp : tcp + 4])))
    return ended


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The lab served once for the module: tcpdump, fedsim serve, the calls, both stopped."""
    tcpdump_path, _ = (require(t) for t in ("tcpdump", "tshark"))
    base = tmp_path_factory.mktemp("served")
    ports = {
        "federation": free_port(),
        "clients": free_port(),
        "dns": free_port(udp_too=True),
        "partner": free_port(),
    }
    lab = base / "wire.toml"
    lab.write_text(LAB.format(partner_port=ports["partner"]), encoding="utf-8")
    logs, certs, capture = base / "logs", base / "certs", base / "tcpdump.pcap"
    filter_ = " or ".join(f"tcp port {ports[p]}" for p in ("federation", "clients", "partner"))
    tcpdump = subprocess.Popen(
        # -U --immediate-mode: each packet is written as it arrives.
        [tcpdump_path, "-i", "lo", "--immediate-mode", "-U", "-n", "-w", str(capture), filter_],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    serve: subprocess.Popen[bytes] | None = None
    try:
        Output(tcpdump).wait_for(b"listening on")
        serve = subprocess.Popen(
            [sys.executable, "-m", "simulator", "serve", str(lab),
             "--listen", f"127.0.0.1:{ports['federation']}",
             "--clients", f"127.0.0.1:{ports['clients']}",
             "--dns-listen", f"127.0.0.1:{ports['dns']}",
             "--log-dir", str(logs), "--certs-dir", str(certs),
             "--trace", "--pcap", str(logs / "lab.pcapng"), "--keylog", str(logs / "keys.log")],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out = Output(serve)
        out.wait_for(b"decisions (")
        wire = trio.run(place_calls, ports, certs, serve.pid)
        assert serve.wait(timeout=LIMIT) == 0, out.rest()
        banner = out.rest()
        # tcpdump has written every connection's end: then it holds every packet before.
        flows = 4  # two Expressway-E connections, the Skype client's, the partner leg
        deadline = time.monotonic() + LIMIT
        while len(ended_flows(capture)) < flows:
            if time.monotonic() > deadline:
                pytest.fail(f"tcpdump did not see {flows} connections end: {ended_flows(capture)}")
            time.sleep(0.01)
    finally:
        if serve is not None:
            stop(serve, signal.SIGTERM)
        stop(tcpdump, signal.SIGINT)  # tcpdump writes out what it has and exits
    return Served(
        log_dir=logs,
        banner=banner,
        trace=(logs / "trace.log").read_text(encoding="utf-8"),
        capture=logs / "lab.pcapng",
        keylog=logs / "keys.log",
        tcpdump=capture,
        ports=ports,
        wire=wire,
    )


def require(name: str) -> str:
    from shutil import which

    path = which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: make test (.ci/ensure-packages) installs it")
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion (subprocess.run kills it by PID when it overruns)."""
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=LIMIT * 2,
        check=False,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def fields(data: bytes) -> tuple[str, str, str]:
    """(Call-ID, status code, method) of one message, as tshark prints them."""
    message = parse_message(data)
    if isinstance(message, Response):
        return message.call_id, str(message.status), ""
    return message.call_id, "", message.method


# --- the trace ----------------------------------------------------------------------------


def test_the_trace_reads_back_into_the_bytes_each_party_sent_and_got(served: Served) -> None:
    messages = served.trace_messages()
    assert messages
    assert all(m.exact for m in messages)
    by_peer: dict[str, tuple[bytes, bytes]] = {}
    for m in messages:
        assert m.peer is not None
        received, sent = by_peer.get(m.peer, (b"", b""))
        if m.direction == "incoming":
            received += m.data
        else:
            sent += m.data
        by_peer[m.peer] = (received, sent)
    assert set(by_peer) == set(served.wire)  # no message on any other connection
    for peer, (party_sent, party_got) in served.wire.items():
        assert by_peer[peer] == (party_sent, party_got), peer


def test_each_message_has_its_side_and_direction(served: Served) -> None:
    sides = {(m.peer or "").split(":")[0]: m.side for m in served.trace_messages()}
    assert sides == {
        "vcse.steven.lab": "external",  # the federation port
        "127.0.0.1": "internal",  # the clients port
        "vcse.far.lab": "external",  # the Edge's own leg to the partner
    }


def test_the_diagnostic_records_sit_between_request_and_answer(served: Served) -> None:
    records = parse_trace(served.trace)
    # One sequence counter for every record, in file order: 1, 2, 3...
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    times = [r.when for r in records]
    assert times == sorted(times)  # type: ignore[type-var]
    diags = [r for r in records if isinstance(r, ParsedEdgeRecord)]
    # edge.log keeps the same TF_DIAG records, and nothing else.
    edge_log = (served.log_dir / "edge.log").read_text(encoding="utf-8")
    assert "TF_PROTOCOL" not in edge_log
    assert parse_edge_log(edge_log) == diags
    assert [(d.call_id, d.result_symbol) for d in diags] == [
        ("acano", "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"),
        ("video", "SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"),
        # cms.steven.lab is configured nowhere: the record bhargavs shows for that
        # outbound case (reference §12), after its TF_COMPONENT line.
        ("cms", "EMU_UNVERIFIED_DOMAIN_UNKNOWN"),
    ]
    (component,) = [r for r in records if isinstance(r, ComponentRecord)]
    assert component.text == (
        "Exit - domain [cms.steven.lab] is unknown and DNS SRV results did not match anything"
    )
    assert records[records.index(component) + 1] == diags[2]
    for diag in diags:
        at = records.index(diag)
        same = [
            (i, r)
            for i, r in enumerate(records)
            if isinstance(r, TraceMessage) and fields(r.data)[0] == diag.call_id
        ]
        before = [r for i, r in same if i < at]
        after = [r for i, r in same if i > at]
        requests = [r for r in before if r.direction == "incoming"]
        assert fields(requests[-1].data)[2] == "INVITE"  # the request it decided
        final = [r for r in after if r.direction == "outgoing" and int(fields(r.data)[1]) >= 200]
        assert fields(final[0].data)[1] == "504"
        # The transaction's Trace-Correlation-Id is the record's [...].
        assert {r.correlation_id for _, r in same} == {int(diag.correlation_id or 0)}


# --- the capture fedsim wrote ---------------------------------------------------------------


def tshark_fields(path: Path, *options: str) -> list[tuple[str, str, str]]:
    """(Call-ID, status, method) of every SIP message, one per message (PDML: a frame may
    carry several)."""
    done = run(require("tshark"), "-r", str(path), *options, "-Y", "sip", "-T", "pdml")
    assert done.returncode == 0, done.stderr
    out = []
    for packet in ET.fromstring(done.stdout).iter("packet"):
        for proto in packet.iter("proto"):
            if proto.get("name") != "sip":
                continue
            values = {f.get("name"): f.get("show", "") for f in proto.iter("field")}
            out.append(
                (
                    values.get("sip.Call-ID", ""),
                    values.get("sip.Status-Code", ""),
                    values.get("sip.Method", "") if "sip.Request-Line" in values else "",
                )
            )
    return out


def test_tshark_lists_every_message_of_the_capture(served: Served) -> None:
    messages = served.trace_messages()
    assert tshark_fields(served.capture) == [fields(m.data) for m in messages]
    assert [m.data for m in read_capture(served.capture.read_bytes())] == [m.data for m in messages]


def test_sngrep_finds_every_call_of_the_capture(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "sngrep.pcap"
    done = run(require("sngrep"), "-I", str(served.capture), "-N", "-O", str(out))
    assert done.returncode == 0, done.stderr
    counts = re.findall(r"Dialog count: (\d+)", done.stdout)
    assert counts, done.stdout
    assert int(counts[-1]) == 6  # accepted, acano, video, cms, far, local
    # what it decoded as SIP and wrote back out is every message
    assert len(read_capture(out.read_bytes())) == len(served.trace_messages())


# --- the key log ------------------------------------------------------------------------------


def test_serve_says_the_key_log_is_on_and_writes_it_0600(served: Served) -> None:
    assert re.search(rf"key log +{re.escape(str(served.keylog))} +\(mode 0600", served.banner)
    assert stat.S_IMODE(served.keylog.stat().st_mode) == KEYLOG_MODE
    assert f"logs        {served.log_dir / 'edge.log'}" in served.banner
    assert str(served.log_dir / "trace.log") in served.banner


def test_tshark_decrypts_the_tcpdump_capture_with_the_key_log(served: Served) -> None:
    decode = [f"tls.port=={served.ports[p]},sip" for p in ("federation", "clients", "partner")]
    options = ["-o", f"tls.keylog_file:{served.keylog}"]
    for rule in decode:
        options += ["-d", rule]
    decrypted = tshark_fields(served.tcpdump, *options)
    # Every message, and only those (several may share a TLS record, so compare counts).
    assert Counter(decrypted) == Counter(fields(m.data) for m in served.trace_messages())
