"""The one SIP stream, without sockets: over trio.testing.memory_stream_pair.

Framing, pongs, the unparsable-input policy, corking and the log-before-reply
rule, the ACK fast path and the idle deadline, each seen from the peer's end of
an in-memory stream (style.md rule 8; hypercorn's tests over memory streams).
"""

from __future__ import annotations

import trio
import trio.testing

from simulator.net.sipstream import PONG, SipStream
from simulator.sip import Request, SipParseError, error_response_for

OPTIONS = (
    b"OPTIONS sip:a@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK{n}\r\n"
    b"From: <sip:a@steven.lab>;tag=1\r\nTo: <sip:b@skype.lab>\r\nCall-ID: c{n}\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)
ACK = OPTIONS.replace(b"OPTIONS sip", b"ACK sip").replace(b"1 OPTIONS", b"1 ACK")
#: A request that frames but does not parse (its CSeq method is not its method).
MISMATCH = OPTIONS.replace(b"1 OPTIONS", b"1 INVITE")
#: A request without Content-Length on a stream: framing is lost (RFC 4475 ncl).
NO_LENGTH = b"OPTIONS sip:a@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bKx\r\n"
NO_LENGTH += b"Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 12\r\ncontent-length: 3\r\n\r\n"


def options(n: int) -> bytes:
    return OPTIONS.replace(b"{n}", str(n).encode())


def pair(**kwargs: object) -> tuple[SipStream, trio.testing.MemoryStapledStream]:  # type: ignore[type-arg]
    ours, theirs = trio.testing.memory_stream_pair()
    return SipStream(ours, **kwargs), theirs  # type: ignore[arg-type]


async def read_all(stream: trio.abc.Stream) -> bytes:
    """Everything available now (the memory stream has no network to wait on)."""
    data = b""
    with trio.move_on_after(0.05):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_messages_come_out_parsed_and_pings_are_ponged() -> None:
    sip, peer = pair()
    await peer.send_all(b"\r\n\r\n" + options(1) + options(2))
    first = await sip.next_message()
    second = await sip.next_message()
    assert isinstance(first, Request)
    assert isinstance(second, Request)
    assert (first.call_id, second.call_id) == ("c1", "c2")
    assert await read_all(peer) == PONG
    await peer.aclose()
    assert await sip.next_message() is None  # EOF


async def test_an_unparsable_request_is_answered_and_the_stream_goes_on() -> None:
    seen: list[tuple[bytes, SipParseError]] = []

    def policy(raw: bytes, exc: SipParseError) -> bytes | None:
        seen.append((raw, exc))
        return error_response_for(raw, exc.status_hint, server="RTC/6.0", to_tag="T")

    sip, peer = pair(on_unparsable=policy)
    await peer.send_all(MISMATCH + options(2))
    message = await sip.next_message()
    assert isinstance(message, Request)
    assert message.call_id == "c2"  # the bad one was answered and skipped
    reply = await read_all(peer)
    assert reply.startswith(b"SIP/2.0 400 ")
    assert [raw for raw, _ in seen] == [MISMATCH]
    assert sip.framing_error is None


async def test_a_framing_error_is_answered_then_ends_the_stream() -> None:
    replies: list[int] = []

    def policy(raw: bytes, exc: SipParseError) -> bytes | None:
        replies.append(exc.status_hint)
        return error_response_for(raw, exc.status_hint, server="RTC/6.0", to_tag="T")

    sip, peer = pair(on_unparsable=policy)
    await peer.send_all(NO_LENGTH + options(3))
    assert await sip.next_message() is None  # framing lost: only closing is left
    assert sip.framing_error is not None
    assert replies == [400]
    assert (await read_all(peer)).startswith(b"SIP/2.0 400 ")


async def test_dropped_messages_are_never_parsed() -> None:
    # The federation port drops ACKs unparsed; a broken ACK costs nothing either.
    bad: list[bytes] = []
    sip, peer = pair(drop=b"ACK ", on_unparsable=lambda raw, _: bad.append(raw))
    await peer.send_all(ACK.replace(b"1 ACK", b"1 INVITE") + ACK + options(4))
    message = await sip.next_message()
    assert isinstance(message, Request)
    assert message.call_id == "c4"
    assert bad == []


async def test_corked_replies_of_a_burst_leave_in_one_write_after_the_log_is_flushed() -> None:
    order: list[str] = []
    ours, peer = trio.testing.memory_stream_pair()
    sends: list[bytes] = []
    real_send = ours.send_all

    async def counting_send(data: bytes | bytearray | memoryview) -> None:
        order.append("send")
        sends.append(bytes(data))
        await real_send(data)

    ours.send_all = counting_send  # type: ignore[method-assign]
    sip = SipStream(ours, cork=True, before_send=lambda: order.append("flush"))
    await peer.send_all(options(1) + options(2) + options(3))  # one burst
    for _ in range(3):
        message = await sip.next_message()
        assert isinstance(message, Request)
        await sip.send(b"reply " + message.call_id.encode() + b"\r\n")
    assert sends == []  # held while the burst is answered
    with trio.move_on_after(0.05):
        await sip.next_message()  # needs data: the burst's replies go first
    assert sends == [b"reply c1\r\nreply c2\r\nreply c3\r\n"]
    # The records reach the disk right before the replies leave (and before each read).
    assert order[-2:] == ["flush", "send"]
    assert order.count("send") == 1


async def test_release_sends_the_burst_so_far_before_a_long_wait() -> None:
    sip, peer = pair(cork=True)
    await peer.send_all(options(1) + options(2))
    await sip.next_message()
    await sip.send(b"first\r\n")
    await sip.release()  # e.g. before a DNS query that may take its timeout
    assert await read_all(peer) == b"first\r\n"
    await sip.next_message()
    await sip.send(b"second\r\n")
    assert sip.pending == [b"second\r\n"]  # still corked for the rest of the burst


async def test_without_cork_every_send_flushes_first() -> None:
    order: list[str] = []
    sip, peer = pair(before_send=lambda: order.append("flush"))
    await sip.send(b"one\r\n")
    await sip.send(b"two\r\n")
    assert await read_all(peer) == b"one\r\ntwo\r\n"
    assert order == ["flush", "flush"]


async def test_the_idle_deadline_ends_a_silent_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sip, peer = pair(idle_timeout=30.0)
    await peer.send_all(options(1))
    with sip.idle_scope() as scope:
        assert await sip.next_message() is not None
        await sip.next_message()  # nothing more comes: the scope's deadline passes
    assert scope.cancelled_caught
    assert trio.current_time() >= 30.0


async def test_a_peer_that_keeps_talking_pushes_the_deadline_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sip, peer = pair(idle_timeout=30.0)

    async def talk() -> None:
        for n in range(5):
            await trio.sleep(20)  # each gap is shorter than the timeout
            await peer.send_all(options(n))

    got = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(talk)
        with sip.idle_scope() as scope:
            while await sip.next_message() is not None:
                got += 1
    assert got == 5  # 100 s of talk in all, longer than one timeout
    assert scope.cancelled_caught


async def test_wire_tap_sees_every_message_both_ways() -> None:
    seen: list[tuple[str, bytes]] = []
    sip, peer = pair(on_wire=lambda direction, data: seen.append((direction, data)))
    await peer.send_all(b"\r\n\r\n" + options(1))
    await sip.next_message()
    await sip.send(b"SIP/2.0 200 OK\r\n\r\n")
    assert seen == [("in", options(1)), ("out", b"SIP/2.0 200 OK\r\n\r\n")]  # no pong
