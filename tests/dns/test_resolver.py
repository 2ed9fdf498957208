"""The Edge's resolver against a real serve_dns: outcomes, TCP fallback, cache, SRV order."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from simulator.dns.resolver import Resolver
from simulator.dns.server import serve_dns
from simulator.dns.srv import SrvTarget, order_srv
from simulator.dns.zone import ZoneSet, parse_zone_text

ZONE = """\
$ORIGIN steven.lab.
$TTL 300
@       SOA ns hostmaster 1 3600 600 86400 30
vcse    A 127.0.0.2
vcse    AAAA ::2
v4only  A 127.0.0.3
alias   CNAME vcse
brief 0 A 127.0.0.9
_sipfederationtls._tcp SRV 0 0 5061 vcse
_none._tcp SRV 0 0 0 .
_sip._tls SRV 10 60 5061 a
_sip._tls SRV 10 20 5061 b
_sip._tls SRV 10 0 5061 c
_sip._tls SRV 20 0 5061 d
_sip._tls SRV 5 10 5061 e
"""
# 60 SRV targets do not fit the 1232 bytes the resolver offers over UDP.
MANY = "".join(
    f"_sip._tcp.many.lab. 60 SRV 0 0 5061 host-number-{i:02d}.many.lab.\n" for i in range(60)
)
# A zone whose SOA minimum (1 day) is far above the resolver's negative-caching cap.
SLOW_NEGATIVE = "slow.lab. 300 SOA ns.slow.lab. h.slow.lab. 1 3600 600 86400 86400\n"
ZONES = ZoneSet.from_records(
    parse_zone_text(ZONE, source="steven.lab.zone")
    + parse_zone_text(MANY + SLOW_NEGATIVE, source="<lab records>"),
    silent=["quiet.steven.lab."],
    servfail=["broken.steven.lab."],
)


@pytest.fixture
async def server(nursery: trio.Nursery) -> tuple[str, int]:
    address: tuple[str, int] = await nursery.start(serve_dns, ZONES, "127.0.0.1", 0)
    return address


async def test_srv_ok(server: tuple[str, int]) -> None:
    answer = await Resolver(server).srv("_sipfederationtls._tcp.STEVEN.lab")
    assert answer.name == "_sipfederationtls._tcp.steven.lab."
    assert answer.outcome == "ok"
    assert answer.targets == (SrvTarget(0, 0, 5061, "vcse.steven.lab."),)
    assert answer.ttl == 300


SRV_OUTCOMES = [
    # (name, outcome, ttl): negative answers live for min(SOA TTL, minimum) = 30 (RFC 2308)
    ("vcse.steven.lab.", "nodata", 30),
    ("_sip._tcp.nobody.steven.lab.", "nxdomain", 30),
    ("_none._tcp.steven.lab.", "nodata", 300),  # a lone "." target (RFC 2782)
    ("_sip._tcp.example.com.", "refused", 0),
    ("broken.steven.lab.", "servfail", 0),
    ("nobody.slow.lab.", "nxdomain", 60),  # capped
    ("bad..name", "nxdomain", 0),  # cannot exist: not even asked
]


@pytest.mark.parametrize(("name", "outcome", "ttl"), SRV_OUTCOMES)
async def test_srv_outcomes(server: tuple[str, int], name: str, outcome: str, ttl: int) -> None:
    answer = await Resolver(server).srv(name)
    assert (answer.outcome, answer.targets, answer.ttl) == (outcome, (), ttl)


async def test_silent_server_is_a_timeout(server: tuple[str, int]) -> None:
    resolver = Resolver(server, timeout=0.2, attempts=2)
    answer = await resolver.srv("_sip._tcp.quiet.steven.lab.")
    assert (answer.outcome, answer.ttl) == ("timeout", 0)
    addresses = await resolver.addresses("quiet.steven.lab.")
    assert (addresses.outcome, addresses.addresses) == ("timeout", ())


async def test_nobody_listening_is_a_timeout_not_an_exception() -> None:
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    answer = await Resolver(("127.0.0.1", free), timeout=0.2, attempts=2).srv("x.lab.")
    assert answer.outcome == "timeout"


ADDRESS_CASES = [
    ("vcse.steven.lab", "ok", ("127.0.0.2", "::2")),
    ("v4only.steven.lab", "ok", ("127.0.0.3",)),
    ("alias.steven.lab", "ok", ("127.0.0.2", "::2")),  # through the CNAME
    ("_sipfederationtls._tcp.steven.lab", "nodata", ()),
    ("nobody.steven.lab", "nxdomain", ()),
    ("www.example.com", "refused", ()),
    ("broken.steven.lab", "servfail", ()),
]


@pytest.mark.parametrize(("name", "outcome", "addresses"), ADDRESS_CASES)
async def test_addresses(
    server: tuple[str, int], name: str, outcome: str, addresses: tuple[str, ...]
) -> None:
    answer = await Resolver(server).addresses(name)
    assert (answer.outcome, answer.addresses) == (outcome, addresses)


async def test_truncated_udp_reply_is_retried_over_tcp(server: tuple[str, int]) -> None:
    answer = await Resolver(server).srv("_sip._tcp.many.lab.")
    assert answer.outcome == "ok"
    assert len(answer.targets) == 60  # a truncated UDP reply carries none of them


async def test_srv_order_follows_rfc2782_with_the_seeded_rng(server: tuple[str, int]) -> None:
    in_zone_order = [
        SrvTarget(10, 60, 5061, "a.steven.lab."),
        SrvTarget(10, 20, 5061, "b.steven.lab."),
        SrvTarget(10, 0, 5061, "c.steven.lab."),
        SrvTarget(20, 0, 5061, "d.steven.lab."),
        SrvTarget(5, 10, 5061, "e.steven.lab."),
    ]
    seen = set()
    for seed in range(20):
        answer = await Resolver(server, rng=random.Random(seed)).srv("_sip._tls.steven.lab.")
        assert list(answer.targets) == order_srv(in_zone_order, random.Random(seed))
        assert [t.priority for t in answer.targets] == [5, 10, 10, 10, 20]
        seen.add(answer.targets)
    assert len(seen) > 1  # the weights really do reorder the priority-10 group


async def test_cache_answers_after_the_server_is_gone(nursery: trio.Nursery) -> None:
    resolver = Resolver(("127.0.0.1", 0), timeout=0.2, attempts=1)
    async with trio.open_nursery() as inner:
        resolver.server = await inner.start(serve_dns, ZONES, "127.0.0.1", 0)
        assert (await resolver.srv("_sipfederationtls._tcp.steven.lab.")).outcome == "ok"
        assert (await resolver.srv("_sip._tcp.nobody.steven.lab.")).outcome == "nxdomain"
        assert (await resolver.addresses("vcse.steven.lab.")).outcome == "ok"
        assert (await resolver.addresses("brief.steven.lab.")).ttl == 0
        assert (await resolver.srv("broken.steven.lab.")).outcome == "servfail"
        inner.cancel_scope.cancel()
    # Positive and negative answers are kept for their TTL...
    assert (await resolver.srv("_sipfederationtls._tcp.steven.lab.")).outcome == "ok"
    assert (await resolver.srv("_sip._tcp.nobody.steven.lab.")).outcome == "nxdomain"
    assert (await resolver.addresses("vcse.steven.lab.")).addresses == ("127.0.0.2", "::2")
    # ...but TTL 0, SERVFAIL and never-asked names go back to the (gone) server.
    assert (await resolver.addresses("brief.steven.lab.")).outcome == "timeout"
    assert (await resolver.srv("broken.steven.lab.")).outcome == "timeout"
    assert (await resolver.srv("_other._tcp.steven.lab.")).outcome == "timeout"
    resolver.clear_cache()
    assert (await resolver.srv("_sipfederationtls._tcp.steven.lab.")).outcome == "timeout"


async def test_cache_off_asks_every_time() -> None:
    resolver = Resolver(("127.0.0.1", 0), timeout=0.2, attempts=1, cache=False)
    async with trio.open_nursery() as inner:
        resolver.server = await inner.start(serve_dns, ZONES, "127.0.0.1", 0)
        assert (await resolver.srv("_sipfederationtls._tcp.steven.lab.")).outcome == "ok"
        inner.cancel_scope.cancel()
    assert (await resolver.srv("_sipfederationtls._tcp.steven.lab.")).outcome == "timeout"


async def test_cached_answer_expires_with_its_ttl(mock_clock: trio.testing.MockClock) -> None:
    resolver = Resolver(("127.0.0.1", 0), timeout=1, attempts=1)
    async with trio.open_nursery() as inner:
        resolver.server = await inner.start(serve_dns, ZONES, "127.0.0.1", 0)
        assert (await resolver.addresses("vcse.steven.lab.")).ttl == 300
        inner.cancel_scope.cancel()
    mock_clock.jump(299.5)
    cached = await resolver.addresses("vcse.steven.lab.")
    assert (cached.outcome, cached.ttl) == ("ok", 0)  # what is left, rounded down
    mock_clock.jump(1)
    mock_clock.autojump_threshold = 0  # let the now-unanswered query time out at once
    assert (await resolver.addresses("vcse.steven.lab.")).outcome == "timeout"


async def test_replies_with_the_wrong_id_or_question_are_ignored(nursery: trio.Nursery) -> None:
    # A spoofer answers first; the resolver must wait for the reply that matches (RFC 5452).
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))

    async def spoofing_server() -> None:
        with sock:
            while True:
                query, peer = await sock.recvfrom(65535)
                reply = ZONES.answer(query, transport="udp")
                assert reply is not None
                wrong_id = bytes([reply[0] ^ 0xFF]) + reply[1:]
                other = ZONES.answer(query.replace(b"vcse", b"evil"), transport="udp")
                assert other is not None
                for packet in (wrong_id, other, b"junk", reply):
                    await sock.sendto(packet, peer)

    nursery.start_soon(spoofing_server)
    answer = await Resolver(sock.getsockname(), timeout=2).addresses("vcse.steven.lab.")
    assert (answer.outcome, answer.addresses) == ("ok", ("127.0.0.2", "::2"))


@pytest.mark.parametrize(("timeout", "attempts"), [(0, 1), (-1, 1), (1, 0)])
def test_resolver_rejects_nonsense_settings(timeout: float, attempts: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Resolver(("127.0.0.1", 53), timeout=timeout, attempts=attempts)
