"""The Edge's DNS client: SRV and address lookups against one server, on trio.

A stub resolver with the behaviour the Edge's decisions depend on: RFC 2782
ordering of SRV targets, a TTL-respecting cache (negative answers included,
RFC 2308), and a plain outcome for every kind of failure. It never raises for
network trouble; a server that does not answer is outcome "timeout".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import trio

from simulator.dns.srv import SrvTarget, order_srv
from simulator.dns.text import name_problem
from simulator.dns.wire import RCODE, TYPE_CODES, Reply, WireRecord, build_query, parse_reply

__all__ = ["AddressAnswer", "Outcome", "Resolver", "SrvAnswer"]

Outcome = Literal["ok", "nxdomain", "nodata", "servfail", "refused", "timeout"]

# RFC 6891 payload size we offer (DNS Flag Day 2020: avoids IP fragmentation).
EDNS_PAYLOAD = 1232
# Negative answers are cached for the SOA minimum / TTL (RFC 2308 §5), but no longer than
# this, so a lab whose zone is fixed is seen again within a minute.
NEGATIVE_TTL_CAP = 60
MAX_REPLY = 65535
_CACHED_OUTCOMES = ("ok", "nodata", "nxdomain")


@dataclass(frozen=True, slots=True, kw_only=True)
class SrvAnswer:
    """The SRV records of a name, in the order to try them.

    Attributes:
        name: the name asked for (absolute, lower-case).
        outcome: "ok" when targets is not empty; a lone "." target is "nodata".
        targets: in RFC 2782 order.
        ttl: seconds the answer stays valid (0 for failures).
    """

    name: str
    outcome: Outcome
    targets: tuple[SrvTarget, ...] = ()
    ttl: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressAnswer:
    """The addresses of a host: A records first, then AAAA.

    Attributes:
        name: the name asked for (absolute, lower-case).
        outcome: "ok" when addresses is not empty.
        addresses: IPv4 then IPv6 addresses, as text.
        ttl: seconds the answer stays valid (0 for failures).
    """

    name: str
    outcome: Outcome
    addresses: tuple[str, ...] = ()
    ttl: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Result:
    outcome: Outcome
    records: tuple[WireRecord, ...] = ()
    ttl: int = 0


def _normal(name: str) -> str:
    lowered = name.strip().lower()
    return lowered if lowered.endswith(".") else lowered + "."


def _data(records: tuple[WireRecord, ...], qname: str, rtype: str) -> list[WireRecord]:
    """Records of ``rtype`` owned by ``qname`` or by a name its CNAME chain reaches."""
    names = {qname}
    for record in records:
        if record.rtype == "CNAME" and record.name in names:
            names.add(record.rdata)
    return [r for r in records if r.rtype == rtype and r.name in names]


def _negative_ttl(reply: Reply) -> int:
    # RFC 2308 §5: cache a negative answer for min(SOA TTL, SOA MINIMUM).
    for record in reply.authority:
        if record.rtype == "SOA":
            minimum = int(record.rdata.split()[-1])
            return min(record.ttl, minimum, NEGATIVE_TTL_CAP)
    return 0  # no SOA: RFC 2308 §5 says do not cache


class Resolver:
    """Ask one DNS server for SRV and address records, with a cache.

    Each attempt is a UDP query offering EDNS payload 1232, retried over TCP
    when the reply is truncated; replies must match the query's id and
    question (RFC 5452 §4.1). Timeouts and SERVFAIL are not cached.
    """

    def __init__(
        self,
        server: tuple[str, int],
        *,
        timeout: float = 2.0,
        attempts: int = 2,
        rng: random.Random | None = None,
        cache: bool = True,
    ) -> None:
        """Set up a resolver; nothing is sent until the first lookup.

        Args:
            server: (address, port) of the DNS server.
            timeout: seconds each attempt may take.
            attempts: how many times to ask before answering "timeout".
            rng: random source for RFC 2782 weighted ordering (seed it for repeatable runs).
            cache: keep answers for their TTL.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts!r}")
        self.server = server
        self.timeout = timeout
        self.attempts = attempts
        self.rng = rng if rng is not None else random.Random()
        self.cache = cache
        self._cache: dict[tuple[str, str], tuple[float, _Result]] = {}
        # Query ids must be unpredictable (RFC 5452 §9.2) and must not disturb self.rng,
        # whose draws decide the SRV order.
        self._ids = random.SystemRandom()
        # Hot path of the Edge: every request looks up the same few SRV names. Names
        # already found well-formed, and the targets parsed from a cached answer, are
        # kept so a cache hit costs a dict lookup (and the RFC 2782 draw, when there
        # is more than one target).
        self._good_names: set[str] = set()
        self._parsed: dict[str, tuple[tuple[WireRecord, ...], list[SrvTarget]]] = {}
        #: Bumped by clear_cache: a caller keeping answers for their TTL drops them too.
        self.generation = 0

    def clear_cache(self) -> None:
        """Forget every cached answer (and bump :attr:`generation`)."""
        self._cache.clear()
        self.generation += 1

    def answers_from_cache(self, name: str, rtype: str = "SRV") -> bool:
        """Whether a lookup of ``name`` would be answered without asking the server.

        A server answering a burst of requests holds its replies until the burst is
        done, but not across a query that may take the whole DNS timeout: it asks
        this first.
        """
        qname = _normal(name)
        if not self._well_formed(qname):
            return True  # answered at once: such a name cannot exist
        entry = self._cache.get((qname, rtype)) if self.cache else None
        return entry is not None and trio.current_time() < entry[0]

    async def srv(self, name: str) -> SrvAnswer:
        """Look up the SRV records of ``name``, ordered per RFC 2782."""
        qname = _normal(name)
        if not self._well_formed(qname):
            return SrvAnswer(name=qname, outcome="nxdomain")  # such a name cannot exist
        result = await self._lookup(qname, "SRV")
        if result.outcome != "ok":
            return SrvAnswer(name=qname, outcome=result.outcome, ttl=result.ttl)
        parsed = self._parsed.get(qname)
        if parsed is not None and parsed[0] is result.records:
            targets = parsed[1]
        else:
            targets = []
            for record in _data(result.records, qname, "SRV"):
                priority, weight, port, target = record.rdata.split()
                targets.append(SrvTarget(int(priority), int(weight), int(port), target))
            if len(self._parsed) > 4096:
                self._parsed.clear()
            self._parsed[qname] = (result.records, targets)
        ordered = (
            targets
            if len(targets) == 1 and not targets[0].unavailable
            else order_srv(targets, self.rng)
        )
        if not ordered:  # RFC 2782: a lone "." target means "decidedly not available"
            return SrvAnswer(name=qname, outcome="nodata", ttl=result.ttl)
        return SrvAnswer(name=qname, outcome="ok", targets=tuple(ordered), ttl=result.ttl)

    async def addresses(self, name: str) -> AddressAnswer:
        """Look up A then AAAA records of ``name``; "ok" when either has data."""
        qname = _normal(name)
        if not self._well_formed(qname):
            return AddressAnswer(name=qname, outcome="nxdomain")
        v4 = await self._lookup(qname, "A")
        if v4.outcome == "nxdomain":  # the name does not exist: no AAAA either
            return AddressAnswer(name=qname, outcome="nxdomain", ttl=v4.ttl)
        v6 = await self._lookup(qname, "AAAA")
        found = [r.rdata for r in _data(v4.records, qname, "A")]
        found += [r.rdata for r in _data(v6.records, qname, "AAAA")]
        if found:
            ttl = min(part.ttl for part in (v4, v6) if part.outcome == "ok")
            return AddressAnswer(name=qname, outcome="ok", addresses=tuple(found), ttl=ttl)
        outcomes = (v4.outcome, v6.outcome)
        worst: Outcome = next(
            (o for o in ("timeout", "servfail", "refused") if o in outcomes), "nodata"
        )
        ttl = min(v4.ttl, v6.ttl) if worst == "nodata" else 0
        return AddressAnswer(name=qname, outcome=worst, ttl=ttl)

    def _well_formed(self, qname: str) -> bool:
        if qname in self._good_names:
            return True
        if name_problem(qname) is not None:
            return False
        if len(self._good_names) > 4096:
            self._good_names.clear()
        self._good_names.add(qname)
        return True

    async def _lookup(self, qname: str, rtype: str) -> _Result:
        key = (qname, rtype)
        now = trio.current_time()
        if self.cache and key in self._cache:
            expires, cached = self._cache[key]
            if now < expires:
                return _Result(
                    outcome=cached.outcome, records=cached.records, ttl=int(expires - now)
                )
            del self._cache[key]
        result = await self._query(qname, rtype)
        if self.cache and result.outcome in _CACHED_OUTCOMES and result.ttl > 0:
            self._cache[key] = (now + result.ttl, result)
        return result

    async def _query(self, qname: str, rtype: str) -> _Result:
        for _ in range(self.attempts):
            reply = await self._exchange(qname, rtype, tcp=False)
            if reply is not None and reply.tc:
                reply = await self._exchange(qname, rtype, tcp=True)  # RFC 1035 §4.2.1
            if reply is not None:
                return self._classify(reply, qname, rtype)
        return _Result(outcome="timeout")

    def _classify(self, reply: Reply, qname: str, rtype: str) -> _Result:
        if reply.rcode == RCODE["NOERROR"]:
            if _data(reply.answer, qname, rtype):
                return _Result(
                    outcome="ok", records=reply.answer, ttl=min(r.ttl for r in reply.answer)
                )
            return _Result(outcome="nodata", ttl=_negative_ttl(reply))
        if reply.rcode == RCODE["NXDOMAIN"]:
            return _Result(outcome="nxdomain", ttl=_negative_ttl(reply))
        if reply.rcode == RCODE["REFUSED"]:
            return _Result(outcome="refused")
        return _Result(outcome="servfail")  # SERVFAIL, and FORMERR/NOTIMP: the server failed us

    def _matches(self, reply: Reply, qid: int, qname: str, rtype: str) -> bool:
        if not reply.qr or reply.id != qid:
            return False
        if reply.question is None:
            # Header-only error replies (FORMERR, SERVFAIL) may omit the question.
            return reply.rcode != RCODE["NOERROR"] and not reply.answer
        return reply.question == (qname, TYPE_CODES[rtype], 1)

    async def _exchange(self, qname: str, rtype: str, *, tcp: bool) -> Reply | None:
        """One attempt bounded by the timeout; None on timeout or network trouble."""
        qid = self._ids.randrange(0x10000)
        query = build_query(qname, rtype, qid=qid, edns_payload=EDNS_PAYLOAD)
        with trio.move_on_after(self.timeout):
            try:
                if tcp:
                    return await self._exchange_tcp(query, qid, qname, rtype)
                return await self._exchange_udp(query, qid, qname, rtype)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                return None
        return None

    async def _exchange_udp(self, query: bytes, qid: int, qname: str, rtype: str) -> Reply | None:
        host, port = self.server
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
            # Connected: the kernel drops datagrams from anyone but the server.
            await sock.connect(sockaddr)
            await sock.send(query)
            while True:
                reply = parse_reply(await sock.recv(MAX_REPLY))
                if reply is not None and self._matches(reply, qid, qname, rtype):
                    return reply

    async def _exchange_tcp(self, query: bytes, qid: int, qname: str, rtype: str) -> Reply | None:
        host, port = self.server
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(len(query).to_bytes(2, "big") + query)
            buffer = bytearray()
            while True:
                while len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2], "big"):
                    chunk = await stream.receive_some(MAX_REPLY)
                    if not chunk:
                        return None
                    buffer += chunk
                length = int.from_bytes(buffer[:2], "big")
                reply = parse_reply(bytes(buffer[2 : 2 + length]))
                del buffer[: 2 + length]
                if reply is not None and self._matches(reply, qid, qname, rtype):
                    return reply
