"""The capture fedsim writes (pcapng, Ethernet, synthesized TCP) and what it reads back."""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import parse_message
from simulator.trace import WireMessage
from simulator.trace.pcap import (
    CapturedMessage,
    CaptureError,
    PcapngEncoder,
    PcapWriter,
    internet_checksum,
    read_capture,
)

GEN = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def capture(messages: list[WireMessage], *, mss: int = 1460) -> bytes:
    encoder = PcapngEncoder(mss=mss)
    return encoder.header() + b"".join(encoder.encode(m) for m in messages)


def blocks(data: bytes) -> list[tuple[int, bytes]]:
    """(block type, body) of every pcapng block, checking both length fields agree."""
    out = []
    pos = 0
    while pos < len(data):
        kind, total = struct.unpack("<II", data[pos : pos + 8])
        assert total % 4 == 0
        assert struct.unpack("<I", data[pos + total - 4 : pos + total])[0] == total
        out.append((kind, data[pos + 8 : pos + total - 4]))
        pos += total
    assert pos == len(data)
    return out


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(timestamp in microseconds, Ethernet frame) of every enhanced packet block."""
    out = []
    for kind, body in blocks(data):
        if kind == 6:
            _, high, low, caplen, length = struct.unpack("<IIIII", body[:20])
            assert caplen == length
            out.append(((high << 32) | low, body[20 : 20 + caplen]))
    return out


def tcp_segments(data: bytes) -> list[tuple[int, int, int, int, int, bytes]]:
    """(sport, dport, seq, ack, flags, payload) of every IPv4/IPv6 TCP frame."""
    out = []
    for _, frame in frames(data):
        ethertype = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
        tcp = ip[20:] if ethertype == 0x0800 else ip[40:]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        out.append((sport, dport, seq, ack, tcp[13], tcp[(tcp[12] >> 4) * 4 :]))
    return out


def enlarged(message: WireMessage, extra: int) -> WireMessage:
    """The message with ``extra`` more bytes of SDP (and its Content-Length to match)."""
    head, _, body = message.data.partition(b"\r\n\r\n")
    body = body.replace(b"s=-", b"s=" + b"x" * extra)
    head = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), head)
    data = head + b"\r\n\r\n" + body
    assert parse_message(data).body == body
    return replace(message, data=data)


def test_the_file_is_one_section_one_ethernet_interface_then_packets(
    calls: list[WireMessage],
) -> None:
    kinds = [kind for kind, _ in blocks(capture(calls))]
    assert kinds[:2] == [0x0A0D0D0A, 1]
    assert set(kinds[2:]) == {6}
    interface = blocks(capture(calls))[1][1]
    assert struct.unpack("<H", interface[:2])[0] == 1  # LINKTYPE_ETHERNET


def test_every_message_reads_back_with_its_addresses_and_time(calls: list[WireMessage]) -> None:
    found = read_capture(capture(calls))
    assert [f.data for f in found] == [m.data for m in calls]
    for got, sent in zip(found, calls, strict=True):
        ends = (
            (sent.remote, sent.local) if sent.direction == "incoming" else (sent.local, sent.remote)
        )
        assert (got.source, got.destination) == ends
        assert got.transport == "TCP"
        assert got.when == pytest.approx(sent.when, abs=1e-6)


def test_a_new_connection_opens_with_a_handshake_and_numbers_follow_on(
    calls: list[WireMessage],
) -> None:
    first = [m for m in calls if m.connection == "fed-1"]
    segments = tcp_segments(capture(first))
    syn, syn_ack, ack = segments[:3]
    assert (syn[0], syn[1], syn[4]) == (38078, 5061, 0x02)  # the peer spoke first
    assert syn_ack[4] == 0x12
    assert syn_ack[3] == syn[2] + 1
    assert ack[4] == 0x10
    assert (ack[2], ack[3]) == (syn[2] + 1, syn_ack[2] + 1)
    expected = {38078: syn[2] + 1, 5061: syn_ack[2] + 1}
    for sport, dport, seq, acked, flags, payload in segments[3:]:
        assert flags == 0x18  # PSH|ACK: every message fits one segment here
        assert seq == expected[sport]
        assert acked == expected[dport]
        expected[sport] += len(payload)


def test_a_large_message_is_cut_below_the_mss_and_reassembled(calls: list[WireMessage]) -> None:
    big = enlarged(calls[0], 5000)
    segments = tcp_segments(capture([big], mss=1000))
    data = [s for s in segments if s[5]]
    assert len(data) == -(-len(big.data) // 1000)
    assert all(len(s[5]) <= 1000 for s in data)
    assert [s[4] for s in data] == [0x10] * (len(data) - 1) + [0x18]
    assert read_capture(capture([big], mss=1000))[0].data == big.data


def test_ipv6_addresses_are_written_as_ipv6(calls: list[WireMessage]) -> None:
    six = [
        replace(m, local=("::1", m.local[1]), remote=("2001:db8::7", m.remote[1])) for m in calls
    ]
    found = read_capture(capture(six))
    assert [f.data for f in found] == [m.data for m in six]
    assert {f.source[0] for f in found} == {"::1", "2001:db8::7"}
    assert {struct.unpack("!H", f[12:14])[0] for _, f in frames(capture(six))} == {0x86DD}


def test_the_same_messages_give_the_same_bytes(calls: list[WireMessage]) -> None:
    assert capture(calls) == capture(calls)


def test_a_closed_connection_ends_with_fins_and_opens_again(calls: list[WireMessage]) -> None:
    encoder = PcapngEncoder()
    encoder.encode(calls[0])
    fins = encoder.encode_close("fed-1", calls[0].when + 1)
    assert [f[4] for f in tcp_segments(encoder.header() + fins)] == [0x11, 0x11, 0x10]
    assert encoder.encode_close("fed-1", 0) == b""
    again = tcp_segments(encoder.header() + encoder.encode(calls[1]))
    assert again[0][4] == 0x02  # a new handshake: the old state is gone


def test_flows_beyond_the_limit_forget_the_oldest(calls: list[WireMessage]) -> None:
    encoder = PcapngEncoder(max_flows=2)
    for i in range(3):
        encoder.encode(replace(calls[0], connection=f"c{i}"))
    assert encoder.encode_close("c0", 0) == b""
    assert encoder.encode_close("c2", 0) != b""


def test_an_address_that_is_not_ip_is_refused(calls: list[WireMessage]) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        PcapngEncoder().encode(replace(calls[0], remote=("vcse.steven.lab", 5061)))


@GEN
@given(st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=6), st.integers(1, 1460))
def test_any_payloads_read_back_through_any_mss(payloads: list[bytes], mss: int) -> None:
    sip = [b"MESSAGE sip:a SIP/2.0\r\nl: %d\r\n\r\n" % len(p) + p for p in payloads]
    sent = [
        WireMessage(1.0 + i, "incoming" if i % 2 else "outgoing", "external",
                    ("10.0.0.1", 5061), ("10.0.0.2", 40000), "c", data)
        for i, data in enumerate(sip)
    ]  # fmt: skip
    assert [f.data for f in read_capture(capture(sent, mss=mss))] == sip


# --- the writer ------------------------------------------------------------------


class CountingFile(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.final = b""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)

    def close(self) -> None:
        self.final = self.getvalue()
        super().close()


def test_the_writer_buffers_until_the_threshold_flush_or_close(calls: list[WireMessage]) -> None:
    file = CountingFile()
    writer = PcapWriter(file, flush_bytes=1 << 20)
    for m in calls:
        writer.write(m)
    assert file.writes == 0
    writer.flush()
    assert file.writes == 1
    writer.connection_closed("fed-1", calls[-1].when)
    writer.close()
    assert file.writes == 2
    assert file.final.startswith(capture(calls))
    assert [f.data for f in read_capture(file.final)] == [m.data for m in calls]
    assert writer.messages == len(calls)


def test_a_small_threshold_writes_as_it_goes(calls: list[WireMessage]) -> None:
    file = CountingFile()
    writer = PcapWriter(file, flush_bytes=1)
    writer.write(calls[0])
    assert file.writes == 1


def test_create_opens_the_path(tmp_path: Path, calls: list[WireMessage]) -> None:
    writer = PcapWriter.create(str(tmp_path / "lab.pcapng"))
    writer.write(calls[0])
    writer.close()
    assert read_capture((tmp_path / "lab.pcapng").read_bytes())[0].data == calls[0].data


# --- reading other captures ---------------------------------------------------------


def classic(link: int, packets: list[tuple[float, bytes]], *, nanos: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, link)]
    for when, frame in packets:
        frac = round((when % 1) * (1e9 if nanos else 1e6))
        out.append(struct.pack("<IIII", int(when), frac, len(frame), len(frame)) + frame)
    return b"".join(out)


def ip_packets(calls: list[WireMessage]) -> list[tuple[float, bytes]]:
    return [(ts / 1e6, frame[14:]) for ts, frame in frames(capture(calls))]


@pytest.mark.parametrize(
    ("link", "wrap"),
    [
        pytest.param(101, lambda ip: ip, id="raw"),
        pytest.param(228, lambda ip: ip, id="ipv4"),
        pytest.param(
            113, lambda ip: b"\0\0\x03\x04\0\x06" + b"\0" * 8 + b"\x08\x00" + ip, id="sll"
        ),
        pytest.param(276, lambda ip: b"\x08\x00" + b"\0" * 18 + ip, id="sll2"),
        pytest.param(0, lambda ip: b"\x02\0\0\0" + ip, id="null"),
        pytest.param(1, lambda ip: b"\2" * 12 + b"\x81\x00\x00\x07\x08\x00" + ip, id="vlan"),
    ],
)
def test_a_classic_pcap_of_any_usual_link_type_reads(
    calls: list[WireMessage], link: int, wrap: Callable[[bytes], bytes]
) -> None:
    packets = [(when, wrap(ip)) for when, ip in ip_packets(calls)]
    found = read_capture(classic(link, packets))
    assert [f.data for f in found] == [m.data for m in calls]


def test_nanosecond_times_and_a_cut_last_record_read(calls: list[WireMessage]) -> None:
    data = classic(101, ip_packets(calls), nanos=True)
    found = read_capture(data[:-10])
    assert [f.data for f in found] == [m.data for m in calls[:-1]]
    assert found[0].when == pytest.approx(calls[0].when, abs=1e-6)


def udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    a, b = (bytes(map(int, h.split("."))) for h in (src[0], dst[0]))
    body = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, 17, 0, a, b) + body


def test_sip_over_udp_is_one_message_a_datagram(calls: list[WireMessage]) -> None:
    packets = [(m.when, udp(m.remote, m.local, m.data)) for m in calls[:2]]
    packets.append((9.0, udp(("10.0.0.1", 53), ("10.0.0.2", 53), b"\x12\x34 not sip")))
    found = read_capture(classic(101, packets))
    assert [(f.transport, f.data) for f in found] == [("UDP", m.data) for m in calls[:2]]


def test_tcp_out_of_order_and_retransmitted_segments_reassemble(calls: list[WireMessage]) -> None:
    big = enlarged(calls[0], 3000)
    packets = ip_packets([big])
    handshake, data = packets[:3], packets[3:]
    shuffled = [*handshake, data[2], data[0], data[0], data[1], data[2]]
    assert [f.data for f in read_capture(classic(101, shuffled))] == [big.data]


def test_a_tls_flow_is_not_sip_and_is_skipped(calls: list[WireMessage]) -> None:
    tls = replace(calls[0], data=b"\x16\x03\x01\x00\x05hello", connection="tls")
    found = read_capture(capture([tls, calls[1]]))
    assert [f.data for f in found] == [calls[1].data]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"", "not a pcap or pcapng"),
        (b"TL_INFO(TF_PROTOCOL) ...", "not a pcap or pcapng"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 105), "link type 105"),
    ],
)
def test_what_is_not_a_readable_capture_is_one_clear_error(data: bytes, what: str) -> None:
    data += struct.pack("<IIII", 0, 0, 4, 4) + b"abcd" if len(data) == 24 else b""
    with pytest.raises(CaptureError, match=what):
        read_capture(data)


def test_captured_messages_compare_by_value() -> None:
    one = CapturedMessage(1.0, "UDP", ("a", 1), ("b", 2), b"x")
    assert one == CapturedMessage(1.0, "UDP", ("a", 1), ("b", 2), b"x")


def rfc1071(data: bytes) -> int:
    """RFC 1071 §4.1, word by word with end-around carries: the reference to agree with."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@GEN
@given(
    st.one_of(
        st.binary(max_size=1600),
        st.builds(lambda n: b"\xff\xff" * n, st.integers(0, 8)),  # sums of 0xFFFF
        st.builds(lambda n: b"\0" * n, st.integers(0, 8)),  # all zero
    )
)
def test_the_checksum_is_rfc_1071s(data: bytes) -> None:
    assert internet_checksum(data) == rfc1071(data)
