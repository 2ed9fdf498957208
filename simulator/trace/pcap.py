"""SIP messages as a capture file the field's tools read, and captures read back.

**Writing.** :class:`PcapngEncoder` turns each :class:`WireMessage` into packets
of a pcapng file: the message in clear (the Edge sees it after TLS), with its
real addresses, ports and time, carried by TCP segments synthesized per
connection (a SYN, SYN-ACK, ACK when a connection first shows up, then PSH|ACK
data segments no larger than the MSS with sequence and acknowledgement numbers
consistent per flow, and FIN when the Edge says the connection closed).

The encapsulation is Ethernet (link type 1) with fixed, locally administered
MAC addresses, one for the Edge and one for every peer, because it is the link
type every reader takes: sngrep 1.6 knows a fixed list of link layers (Ethernet
among them; ``LINKTYPE_IPV4``/``IPV6`` not) and tshark dissects it natively.
The file is pcapng (libpcap 1.10 under sngrep reads it; so does tshark). The
ports stay the real ones: tshark's SIP heuristic dissector for TCP and UDP
(enabled by default) finds SIP on any port, including 5061/5062 where the clear
text would otherwise go to the TLS dissector of ``sip-tls``; sngrep looks for
SIP in every payload whatever the port.

**Reading.** :func:`read_capture` takes a pcap or pcapng (Ethernet, Linux
"cooked" v1/v2, raw IP, BSD loopback) and returns the SIP messages in it: UDP
datagrams as they are, TCP payloads reassembled per flow and cut into messages
by :class:`~simulator.sip.StreamFramer` (Content-Length). TLS flows are not
decrypted (use Wireshark with the key log); they are simply not SIP in clear.

No I/O here but :class:`PcapWriter`'s writes to the file object it is given.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from simulator import __version__
from simulator.errors import FedsimError
from simulator.sip import FramingError, KeepAlive, Need, StreamFramer
from simulator.trace.model import WireMessage

__all__ = [
    "DEFAULT_MSS",
    "CaptureError",
    "CapturedMessage",
    "PcapWriter",
    "PcapngEncoder",
    "internet_checksum",
    "read_capture",
]

#: Largest TCP payload per synthesized segment: Ethernet's 1500-byte MTU less
#: 20 bytes of IPv4 and 20 of TCP (RFC 879); IPv6 uses the same, it is only a size.
DEFAULT_MSS = 1460
#: Connections whose TCP state the encoder keeps; past it the oldest is dropped
#: (its next message then opens it again with a new handshake).
DEFAULT_MAX_FLOWS = 65536
#: Bytes :class:`PcapWriter` gathers before one write to the file.
DEFAULT_FLUSH_BYTES = 64 * 1024

LINKTYPE_ETHERNET = 1
# Locally administered unicast MACs (the 0x02 bit): the Edge's, and the peers'.
_EDGE_MAC = bytes.fromhex("02edc0000001")
_PEER_MAC = bytes.fromhex("02edc0000002")
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_TCP_FIN, _TCP_SYN, _TCP_PSH, _TCP_ACK = 0x01, 0x02, 0x08, 0x10
_WINDOW = 65535
_TTL = 64


def internet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``.

    The one's complement sum of 16-bit words is the whole big-endian number modulo
    0xFFFF (2**16 = 1 mod 0xFFFF), computed in C; a nonzero sum that is a multiple
    of 0xFFFF is 0xFFFF, as the end-around carries give it.
    """
    if len(data) % 2:
        data += b"\0"
    total = int.from_bytes(data, "big") % 0xFFFF
    if total == 0 and any(data):
        total = 0xFFFF
    return ~total & 0xFFFF


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


@dataclass(slots=True)
class _Endpoint:
    ip: bytes
    port: int
    mac: bytes
    seq: int


@dataclass(slots=True)
class _Flow:
    edge: _Endpoint
    peer: _Endpoint
    v6: bool
    ip_id: int = 0


class PcapngEncoder:
    """Encode WireMessages as pcapng blocks: pure, no I/O (see the module docstring).

    :meth:`header` is the file's start (section header, one Ethernet interface);
    :meth:`encode` the packets of one message; :meth:`encode_close` the FINs of a
    connection the Edge closed. Sequence numbers start from a value derived from
    the connection id, so the same messages always give the same bytes.
    """

    def __init__(self, *, mss: int = DEFAULT_MSS, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if not 1 <= mss <= 65495:
            raise ValueError(f"mss must be 1 to 65495, not {mss}")
        self.mss = mss
        self.max_flows = max_flows
        self._flows: dict[str, _Flow] = {}

    def header(self) -> bytes:
        """The section header block and the one interface description block."""
        section = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + (
            _option(4, f"fedsim {__version__}".encode()) + _option(0, b"")
        )
        interface = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 0) + (
            _option(2, b"fedsim") + _option(9, b"\x06") + _option(0, b"")
        )
        return _block(0x0A0D0D0A, section) + _block(1, interface)

    def encode(self, message: WireMessage) -> bytes:
        """The packets of one message: a handshake first on a new connection, then data.

        Raises:
            ValueError: an address is not an IP address.
        """
        when = round(message.when * 1_000_000)
        out: list[bytes] = []
        flow = self._flows.pop(message.connection, None)
        if flow is None:
            flow = self._open(message)
            # The side that spoke first opened the connection (SIP: the request sender).
            client, server = (
                (flow.peer, flow.edge)
                if message.direction == "incoming"
                else (flow.edge, flow.peer)
            )
            out.append(self._segment(flow, client, server, _TCP_SYN, b"", when, syn_mss=True))
            client.seq += 1
            out.append(
                self._segment(flow, server, client, _TCP_SYN | _TCP_ACK, b"", when, syn_mss=True)
            )
            server.seq += 1
            out.append(self._segment(flow, client, server, _TCP_ACK, b"", when))
        self._flows[message.connection] = flow  # most recently used last
        if len(self._flows) > self.max_flows:
            del self._flows[next(iter(self._flows))]
        sender, receiver = (
            (flow.peer, flow.edge) if message.direction == "incoming" else (flow.edge, flow.peer)
        )
        data = message.data
        mss = self.mss
        for start in range(0, len(data), mss):
            chunk = data[start : start + mss]
            last = start + mss >= len(data)
            flags = _TCP_PSH | _TCP_ACK if last else _TCP_ACK
            out.append(self._segment(flow, sender, receiver, flags, chunk, when))
            sender.seq = (sender.seq + len(chunk)) & 0xFFFFFFFF
        return b"".join(out)

    def encode_close(self, connection: str, when: float) -> bytes:
        """FIN|ACK both ways and the last ACK, for a connection the Edge saw close.

        Returns:
            The packets, or b"" for a connection that carried no message.
        """
        flow = self._flows.pop(connection, None)
        if flow is None:
            return b""
        at = round(when * 1_000_000)
        out = []
        for one, other in ((flow.edge, flow.peer), (flow.peer, flow.edge)):
            out.append(self._segment(flow, one, other, _TCP_FIN | _TCP_ACK, b"", at))
            one.seq = (one.seq + 1) & 0xFFFFFFFF
        out.append(self._segment(flow, flow.edge, flow.peer, _TCP_ACK, b"", at))
        return b"".join(out)

    def _open(self, message: WireMessage) -> _Flow:
        local = ipaddress.ip_address(message.local[0].partition("%")[0])
        remote = ipaddress.ip_address(message.remote[0].partition("%")[0])
        v6 = local.version == 6 or remote.version == 6
        if v6:
            local, remote = (
                ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a
                for a in (local, remote)
            )
        # Initial sequence numbers from the connection id: stable output, distinct flows.
        isn = zlib.crc32(message.connection.encode("utf-8", "surrogateescape"))
        return _Flow(
            edge=_Endpoint(local.packed, message.local[1], _EDGE_MAC, isn),
            peer=_Endpoint(remote.packed, message.remote[1], _PEER_MAC, isn ^ 0x5A5A5A5A),
            v6=v6,
        )

    def _segment(
        self,
        flow: _Flow,
        src: _Endpoint,
        dst: _Endpoint,
        flags: int,
        payload: bytes,
        when: int,
        *,
        syn_mss: bool = False,
    ) -> bytes:
        options = struct.pack("!BBH", 2, 4, self.mss) if syn_mss else b""
        ack = dst.seq if flags & _TCP_ACK else 0
        offset = (20 + len(options)) // 4
        tcp = struct.pack(
            "!HHIIBBHHH", src.port, dst.port, src.seq, ack, offset << 4, flags, _WINDOW, 0, 0
        )
        segment = tcp + options + payload
        if flow.v6:
            pseudo = src.ip + dst.ip + struct.pack("!IxxxB", len(segment), 6)
        else:
            pseudo = src.ip + dst.ip + struct.pack("!xBH", 6, len(segment))
        checksum = internet_checksum(pseudo + segment)
        segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
        if flow.v6:
            ip = struct.pack("!IHBB", 6 << 28, len(segment), 6, _TTL) + src.ip + dst.ip
            ethertype = _ETHERTYPE_IPV6
        else:
            flow.ip_id = (flow.ip_id + 1) & 0xFFFF
            header = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), flow.ip_id, 0x4000, _TTL, 6, 0,
                src.ip, dst.ip,
            )  # fmt: skip
            ip = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
            ethertype = _ETHERTYPE_IPV4
        frame = dst.mac + src.mac + struct.pack("!H", ethertype) + ip + segment
        pad = -len(frame) % 4
        total = 32 + len(frame) + pad
        return (
            struct.pack(
                "<IIIIIII", 6, total, 0, when >> 32, when & 0xFFFFFFFF, len(frame), len(frame)
            )
            + frame
            + b"\0" * pad
            + struct.pack("<I", total)
        )


class PcapWriter:
    """Write WireMessages to a pcapng file, buffered so a write never waits on the disk.

    :meth:`write` only builds bytes (tens of microseconds per message) and appends
    them to a buffer; the buffer goes to the file in one ``write`` when it passes
    ``flush_bytes``, on :meth:`flush` (call it now and then so the file can be
    read while the lab runs) and on :meth:`close`.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        encoder: PcapngEncoder | None = None,
        flush_bytes: int = DEFAULT_FLUSH_BYTES,
    ) -> None:
        """Start a capture on ``file`` (opened for binary writing; the writer closes it)."""
        self._file = file
        self._encoder = encoder if encoder is not None else PcapngEncoder()
        self._flush_bytes = flush_bytes
        self._pending: list[bytes] = [self._encoder.header()]
        self._size = 0
        self.messages = 0

    @classmethod
    def create(
        cls,
        path: str,
        *,
        encoder: PcapngEncoder | None = None,
        flush_bytes: int = DEFAULT_FLUSH_BYTES,
    ) -> PcapWriter:
        """Open ``path`` (replacing it) and start a capture there (:meth:`close` closes it)."""
        file = open(path, "wb", buffering=0)  # noqa: SIM115 (the writer owns it)
        return cls(file, encoder=encoder, flush_bytes=flush_bytes)

    def write(self, message: WireMessage) -> None:
        """Add one message's packets to the buffer (and write the buffer out when full)."""
        self._add(self._encoder.encode(message))
        self.messages += 1

    def connection_closed(self, connection: str, when: float) -> None:
        """Add the FINs of a connection that closed (and forget its TCP state)."""
        self._add(self._encoder.encode_close(connection, when))

    def flush(self) -> None:
        """Write what is buffered to the file.

        The buffer is emptied first: when the write fails (a full disk), its packets
        are dropped rather than kept to grow without bound.
        """
        if self._pending:
            data = memoryview(b"".join(self._pending))
            self._pending.clear()
            self._size = 0
            while data:
                data = data[self._file.write(data) :]

    def close(self) -> None:
        """Flush and close the file."""
        try:
            self.flush()
        finally:
            self._file.close()

    def _add(self, packets: bytes) -> None:
        if packets:
            self._pending.append(packets)
            self._size += len(packets)
            if self._size >= self._flush_bytes:
                self.flush()


# ---------------------------------------------------------------------------
# Reading captures
# ---------------------------------------------------------------------------


class CaptureError(FedsimError):
    """A capture file fedsim cannot read: what is wrong and what to do instead."""


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One SIP message found in a capture.

    Attributes:
        when: UNIX time of the packet that completed it.
        transport: "UDP" (one datagram) or "TCP" (reassembled from its flow).
        source / destination: (address, port) of sender and receiver.
        data: the message's bytes.
    """

    when: float
    transport: Literal["TCP", "UDP"]
    source: tuple[str, int]
    destination: tuple[str, int]
    data: bytes


_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: Link types read: header length before the IP packet (None: read from the header).
_LINK_HEADER = {0: 4, 1: None, 12: 0, 14: 0, 101: 0, 108: 4, 113: 16, 228: 0, 229: 0, 276: 20}
_LINK_NAMES = "Ethernet, Linux cooked (tcpdump -i any), raw IP or loopback"
#: A SIP start line (RFC 3261 §7.1, §7.2), enough to tell SIP from other payloads.
_START_LINE = re.compile(rb"(?:[A-Za-z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3}[ \r])")
#: A first line longer than this is not a SIP start line worth waiting for.
_SNIFF_BYTES = 8192
#: Out-of-order TCP bytes kept per flow while waiting for a gap to fill.
_MAX_PENDING = 1 << 20


@dataclass(slots=True)
class _Packet:
    when: float
    link: int
    frame: bytes


def _pcap_packets(data: bytes) -> Iterator[_Packet]:
    order, unit = _PCAP_MAGIC[data[:4]]
    if len(data) < 24:
        raise CaptureError("the pcap file header is cut short (fix: capture again)")
    link = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(order + "IIII", data[pos : pos + 16])
        pos += 16
        if pos + caplen > len(data):
            return  # the last record was cut (a capture stopped mid-write): keep the rest
        yield _Packet(sec + frac * unit, link, data[pos : pos + caplen])
        pos += caplen


def _pcapng_packets(data: bytes) -> Iterator[_Packet]:
    order = "<"
    links: list[tuple[int, float]] = []
    pos = 0
    while pos + 12 <= len(data):
        kind = struct.unpack(order + "I", data[pos : pos + 4])[0]
        if kind == 0x0A0D0D0A:  # a section header says its byte order
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        total = struct.unpack(order + "I", data[pos + 4 : pos + 8])[0]
        if total < 12 or pos + total > len(data):
            return
        body = data[pos + 8 : pos + total - 4]
        pos += total
        if kind == 1 and len(body) >= 8:
            links.append((struct.unpack(order + "H", body[:2])[0], _tsresol(body[8:], order)))
        elif kind in (6, 2) and len(body) >= 20:  # enhanced (or obsolete) packet block
            if kind == 6:
                iface, high, low, caplen = struct.unpack(order + "IIII", body[:16])
            else:
                iface, high, low, caplen = struct.unpack(order + "HxxIII", body[:16])
            if iface < len(links):
                link, unit = links[iface]
                yield _Packet(((high << 32) | low) * unit, link, body[20 : 20 + caplen])
        elif kind == 3 and links and len(body) >= 4:  # simple packet block: no time
            link, _ = links[0]
            yield _Packet(0.0, link, body[4:])


def _tsresol(options: bytes, order: str) -> float:
    """The interface's time unit from its ``if_tsresol`` option (default microseconds)."""
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack(order + "HH", options[pos : pos + 4])
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[pos + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        pos += 4 + length + (-length % 4)
    return 1e-6


def _ip_packet(packet: _Packet) -> bytes | None:
    """The IP packet inside a link-layer frame (None: not IP)."""
    if packet.link not in _LINK_HEADER:
        raise CaptureError(
            f"link type {packet.link} is not one fedsim reads ({_LINK_NAMES}): "
            "capture with tcpdump -i lo or -i any"
        )
    frame = packet.frame
    size = _LINK_HEADER[packet.link]
    if size is not None:
        return frame[size:]
    pos, ethertype = 12, 0
    while pos + 2 <= len(frame):
        ethertype = struct.unpack("!H", frame[pos : pos + 2])[0]
        if ethertype in (0x8100, 0x88A8):  # VLAN tags
            pos += 4
            continue
        break
    if ethertype not in (_ETHERTYPE_IPV4, _ETHERTYPE_IPV6):
        return None
    return frame[pos + 2 :]


def _transport(ip: bytes) -> tuple[int, str, str, bytes] | None:
    """(protocol, source, destination, IP payload) of an unfragmented IPv4/IPv6 packet."""
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if struct.unpack("!H", ip[6:8])[0] & 0x3FFF:
            return None  # a fragment: SIP over TCP or small UDP does not fragment here
        end = total if ihl <= total <= len(ip) else len(ip)
        src4, dst4 = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
        return ip[9], str(src4), str(dst4), ip[ihl:end]
    if version == 6 and len(ip) >= 40:
        length = struct.unpack("!H", ip[4:6])[0]
        proto, pos = ip[6], 40
        payload_end = min(len(ip), 40 + length) if length else len(ip)
        while proto in (0, 43, 60) and pos + 8 <= payload_end:  # hop-by-hop, routing, dest opts
            proto, pos = ip[pos], pos + (ip[pos + 1] + 1) * 8
        if proto == 44:
            return None
        src, dst = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
        return proto, str(src), str(dst), ip[pos:payload_end]
    return None


@dataclass(slots=True)
class _TcpFlow:
    next_seq: int | None = None
    pending: dict[int, bytes] | None = None
    framer: StreamFramer | None = None
    sip: bool | None = None  # None until the first line tells
    head: bytes = b""  # the first bytes, until they tell


def _deliver(
    flow: _TcpFlow, data: bytes, when: float, ends: tuple[tuple[str, int], tuple[str, int]]
) -> Iterator[CapturedMessage]:
    if flow.sip is None:
        # Decide on the first line (a SIP start line, or TLS, HTTP...): wait for all of it.
        flow.head += data
        start = flow.head.lstrip(b"\r\n")
        if start[:1].isalpha() and b"\r\n" not in start and len(start) < _SNIFF_BYTES:
            return
        flow.sip = _START_LINE.match(start) is not None
        if flow.sip:
            flow.framer = StreamFramer()
        data, flow.head = flow.head, b""
    if not flow.sip or flow.framer is None:
        return
    try:
        flow.framer.receive_data(data)
        while True:
            message = flow.framer.next_message()
            if message is Need.DATA:
                return
            if isinstance(message, KeepAlive):
                continue
            if _START_LINE.match(message):
                yield CapturedMessage(when, "TCP", ends[0], ends[1], message)
    except FramingError:
        flow.sip = False  # out of step: the rest of this flow cannot be cut into messages


def _tcp(
    flows: dict[tuple[tuple[str, int], tuple[str, int]], _TcpFlow],
    ends: tuple[tuple[str, int], tuple[str, int]],
    segment: bytes,
    when: float,
) -> Iterator[CapturedMessage]:
    if len(segment) < 20:
        return
    seq = struct.unpack("!I", segment[4:8])[0]
    offset = (segment[12] >> 4) * 4
    flags = segment[13]
    payload = segment[offset:]
    if flags & _TCP_SYN:  # a new connection on these ports: start over
        flows[ends] = _TcpFlow(next_seq=(seq + 1) & 0xFFFFFFFF)
        return
    flow = flows.setdefault(ends, _TcpFlow())
    if not payload or flow.sip is False:
        return
    if flow.next_seq is None:
        flow.next_seq = seq  # the capture started mid-connection
    ahead = (seq - flow.next_seq) & 0xFFFFFFFF
    if ahead >= 1 << 31:  # starts before what we have: a retransmission, keep the new tail
        payload = payload[(flow.next_seq - seq) & 0xFFFFFFFF :]
        seq = flow.next_seq
        ahead = 0
    if ahead:
        pending = flow.pending if flow.pending is not None else {}
        flow.pending = pending
        if sum(map(len, pending.values())) + len(payload) <= _MAX_PENDING:
            pending.setdefault(seq, payload)
        return
    while payload:
        yield from _deliver(flow, payload, when, ends)
        flow.next_seq = (flow.next_seq + len(payload)) & 0xFFFFFFFF
        payload = (flow.pending or {}).pop(flow.next_seq, b"")


def read_capture(data: bytes) -> list[CapturedMessage]:
    """Every SIP message sent in clear in a pcap or pcapng capture, in capture order.

    Raises:
        CaptureError: not a pcap/pcapng file, or a link type fedsim does not read.
    """
    if data[:4] in _PCAP_MAGIC:
        packets = _pcap_packets(data)
    elif data[:4] == _PCAPNG_MAGIC:
        packets = _pcapng_packets(data)
    else:
        raise CaptureError(
            "not a pcap or pcapng capture (it does not start with their magic number): "
            "give the file tcpdump -w, tshark -w, Wireshark or fedsim --pcap wrote"
        )
    flows: dict[tuple[tuple[str, int], tuple[str, int]], _TcpFlow] = {}
    out: list[CapturedMessage] = []
    for packet in packets:
        ip = _ip_packet(packet)
        found = _transport(ip) if ip else None
        if found is None:
            continue
        proto, src, dst, payload = found
        if proto not in (6, 17) or len(payload) < 8:
            continue
        sport, dport = struct.unpack("!HH", payload[:4])
        ends = ((src, sport), (dst, dport))
        if proto == 6:
            out.extend(_tcp(flows, ends, payload, packet.when))
        elif _START_LINE.match(body := payload[8:]):
            out.append(CapturedMessage(packet.when, "UDP", ends[0], ends[1], body))
    return out
