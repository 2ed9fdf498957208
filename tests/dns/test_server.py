"""serve_dns on real loopback sockets, asked by dig and dnspython, and abused by bad clients."""

from __future__ import annotations

import re
import shutil
from functools import partial

import dns.asyncbackend
import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest
import trio

from simulator.dns.server import DnsListenError, serve_dns
from simulator.dns.zone import ZoneSet, parse_zone_text

ZONE = """\
$ORIGIN steven.lab.
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 30
ns      A 127.0.0.1
vcse    A 127.0.0.2
vcse    AAAA ::2
_sipfederationtls._tcp SRV 0 0 5061 vcse
"""
BIG = "".join(f'big.steven.lab. 300 TXT "{"x" * 60} {i}"\n' for i in range(12))
ZONES = ZoneSet.from_records(
    parse_zone_text(ZONE + BIG, source="steven.lab.zone"), silent=["quiet.steven.lab."]
)
SRV_LINE = "_sipfederationtls._tcp.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab."
TRIO = dns.asyncbackend.get_backend("trio")


def require_tool(name: str) -> str:
    """Return the path of a real peer tool, failing (not skipping) when CI lacks it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path


@pytest.fixture
async def server(nursery: trio.Nursery) -> tuple[str, int]:
    address: tuple[str, int] = await nursery.start(serve_dns, ZONES, "127.0.0.1", 0)
    return address


async def test_reports_the_bound_address(server: tuple[str, int]) -> None:
    host, port = server
    assert host == "127.0.0.1"
    assert port > 0


# ---------------------------------------------------------------------------------------------
# dig


async def dig(address: tuple[str, int], *args: str) -> tuple[str, set[str], list[str]]:
    """Run dig; return (status, header flags, answer lines with single spaces)."""
    host, port = address
    command = [require_tool("dig"), f"@{host}", "-p", str(port), "+time=2", "+tries=1"]
    result = await trio.run_process(
        [*command, "+noall", "+comments", "+answer", *args], capture_stdout=True, check=False
    )
    out = result.stdout.decode()
    status = re.search(r"status: (\w+)", out)
    flags = re.search(r";; flags: ([a-z ]*);", out)
    assert status is not None, out
    assert flags is not None, out
    answers = [" ".join(line.split()) for line in out.splitlines() if line and line[0] != ";"]
    return status.group(1), set(flags.group(1).split()), answers


@pytest.mark.interop
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
async def test_dig_srv(server: tuple[str, int], transport: str) -> None:
    status, flags, answers = await dig(
        server, transport, "_sipfederationtls._tcp.steven.lab", "SRV"
    )
    assert status == "NOERROR"
    assert "aa" in flags
    assert "ra" not in flags
    assert answers == [SRV_LINE]


@pytest.mark.interop
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
async def test_dig_nxdomain_and_nodata(server: tuple[str, int], transport: str) -> None:
    status, flags, answers = await dig(server, transport, "nobody.steven.lab", "A")
    assert (status, answers) == ("NXDOMAIN", [])
    assert "aa" in flags
    status, flags, answers = await dig(server, transport, "vcse.steven.lab", "SRV")
    assert (status, answers) == ("NOERROR", [])


@pytest.mark.interop
async def test_dig_sees_tc_over_udp_and_everything_over_tcp(server: tuple[str, int]) -> None:
    # +noedns: a 512-byte limit; +ignore: show the truncated reply instead of retrying on TCP.
    status, flags, answers = await dig(server, "+noedns", "+ignore", "big.steven.lab", "TXT")
    assert status == "NOERROR"
    assert "tc" in flags
    assert answers == []
    status, flags, answers = await dig(server, "+tcp", "big.steven.lab", "TXT")
    assert "tc" not in flags
    assert len(answers) == 12


@pytest.mark.interop
async def test_dig_over_ipv6(nursery: trio.Nursery) -> None:
    address = await nursery.start(serve_dns, ZONES, "::1", 0)
    assert address[0] == "::1"
    for transport in ("+notcp", "+tcp"):
        status, _, answers = await dig(
            address, transport, "_sipfederationtls._tcp.steven.lab", "SRV"
        )
        assert (status, answers) == ("NOERROR", [SRV_LINE])


# ---------------------------------------------------------------------------------------------
# dnspython with its trio backend


async def ask(
    address: tuple[str, int], name: str, rtype: str, *, tcp: bool = False
) -> dns.message.Message:
    host, port = address
    query = dns.message.make_query(name, rtype)
    if tcp:
        return await dns.asyncquery.tcp(query, host, port=port, timeout=5, backend=TRIO)
    return await dns.asyncquery.udp(query, host, port=port, timeout=5, backend=TRIO)


@pytest.mark.parametrize("tcp", [False, True])
async def test_dnspython_srv_nodata_nxdomain(server: tuple[str, int], tcp: bool) -> None:
    reply = await ask(server, "_sipfederationtls._tcp.steven.lab.", "SRV", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert [str(rrset) for rrset in reply.answer] == [SRV_LINE]
    assert sorted(str(rrset.rdtype.name) for rrset in reply.additional) == ["A", "AAAA"]

    reply = await ask(server, "vcse.steven.lab.", "TXT", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rrset.rdtype.name for rrset in reply.authority] == ["SOA"]

    reply = await ask(server, "nobody.steven.lab.", "SRV", tcp=tcp)
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert [rrset.rdtype.name for rrset in reply.authority] == ["SOA"]


# ---------------------------------------------------------------------------------------------
# bad clients


async def assert_still_answers(address: tuple[str, int]) -> None:
    for tcp in (False, True):
        reply = await ask(address, "vcse.steven.lab.", "A", tcp=tcp)
        assert [str(rrset) for rrset in reply.answer] == ["vcse.steven.lab. 300 IN A 127.0.0.2"]


async def udp_socket(address: tuple[str, int]) -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.connect(address)
    return sock


async def test_malformed_datagrams_get_formerr_or_nothing(server: tuple[str, int]) -> None:
    good = dns.message.make_query("vcse.steven.lab.", "A")
    good.id = 0x4242
    with await udp_socket(server) as sock:
        await sock.send(b"\x01")  # shorter than a header: dropped
        await sock.send(good.to_wire()[:14])  # a header and junk: FORMERR
        reply = dns.message.from_wire(await sock.recv(65535))
        assert reply.id == 0x4242
        assert reply.rcode() == dns.rcode.FORMERR
    await assert_still_answers(server)


async def tcp_exchange(address: tuple[str, int], payload: bytes) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    received = b""
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*address)
        async with stream:
            await stream.send_all(payload)
            while chunk := await stream.receive_some(65536):
                received += chunk
    return received


async def test_length_prefix_above_the_limit_closes_only_that_connection(
    server: tuple[str, int],
) -> None:
    assert await tcp_exchange(server, b"\xff\xff" + b"x" * 100) == b""
    assert await tcp_exchange(server, b"\x00\x00") == b""  # a zero-length query
    await assert_still_answers(server)


async def test_short_read_closes_only_that_connection(server: tuple[str, int]) -> None:
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*server)
        await stream.send_all(b"\x03\xe8abc")  # promises 1000 bytes, sends 3, hangs up
        await stream.aclose()
    await assert_still_answers(server)


async def test_tcp_connection_serves_many_queries(server: tuple[str, int]) -> None:
    queries = []
    for qid, name in ((1, "vcse.steven.lab."), (2, "nobody.steven.lab.")):
        query = dns.message.make_query(name, "A")
        query.id = qid
        wire = query.to_wire()
        queries.append(len(wire).to_bytes(2, "big") + wire)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream(*server)
        async with stream:
            await stream.send_all(b"".join(queries))  # pipelined in one segment
            buffer = b""
            replies: list[dns.message.Message] = []
            while len(replies) < 2:
                buffer += await stream.receive_some(65536)
                while len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
                    size = int.from_bytes(buffer[:2], "big")
                    replies.append(dns.message.from_wire(buffer[2 : 2 + size]))
                    buffer = buffer[2 + size :]
    assert [(r.id, r.rcode()) for r in replies] == [(1, dns.rcode.NOERROR), (2, dns.rcode.NXDOMAIN)]


async def test_idle_tcp_connection_is_closed(nursery: trio.Nursery) -> None:
    address = await nursery.start(partial(serve_dns, ZONES, "127.0.0.1", 0, idle_timeout=0.05))
    assert await tcp_exchange(address, b"") == b""  # we send nothing; the server hangs up
    assert await tcp_exchange(address, b"\x00\x20abc") == b""  # half a query, then nothing
    await assert_still_answers(address)


async def test_silent_name_gets_no_reply_but_the_next_query_does(server: tuple[str, int]) -> None:
    quiet = dns.message.make_query("quiet.steven.lab.", "A")
    with await udp_socket(server) as sock:
        await sock.send(quiet.to_wire())
        with trio.move_on_after(0.2) as waited:
            await sock.recv(65535)
        assert waited.cancelled_caught
    await assert_still_answers(server)


async def test_port_in_use_is_a_one_line_user_error(server: tuple[str, int]) -> None:
    with pytest.raises(DnsListenError) as caught:
        await serve_dns(ZONES, "127.0.0.1", server[1])
    assert caught.value.port == server[1]
    assert str(caught.value).startswith(f"dns: cannot listen on 127.0.0.1:{server[1]}: ")
    assert "(fix: " in str(caught.value)


@pytest.mark.interop
async def test_dig_output_pastes_back_into_a_zone(server: tuple[str, int]) -> None:
    # What a TAC engineer does: run dig against the customer's DNS, paste the whole output.
    host, port = server
    command = [require_tool("dig"), f"@{host}", "-p", str(port), "+time=2", "+tries=1"]
    result = await trio.run_process(
        [*command, "_sipfederationtls._tcp.steven.lab", "SRV"], capture_stdout=True
    )
    records = parse_zone_text(result.stdout.decode(), source="<pasted dig>")
    assert [(r.name, r.rtype, r.rdata) for r in records] == [
        ("_sipfederationtls._tcp.steven.lab.", "SRV", "0 0 5061 vcse.steven.lab."),
        ("vcse.steven.lab.", "A", "127.0.0.2"),
        ("vcse.steven.lab.", "AAAA", "::2"),
    ]
