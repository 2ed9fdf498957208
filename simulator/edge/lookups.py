"""The callback and outbound SRV lookups, as the policy sees them, for both directions.

The resolver answers with its own :class:`simulator.dns.SrvAnswer`; the policy
decides on a :class:`simulator.policy.SrvLookup`. :func:`srv_lookup` converts one
into the other, in one place. :class:`SrvLookups` keeps the conversion of each
distinct answer (so a cached decision recognises it by identity) and, for an
answer whose order cannot change (one target, or none), the lookup itself until
the resolver's answer expires: the hot path then costs a dict lookup.
"""

from __future__ import annotations

from collections import OrderedDict

import trio

from simulator.dns import Resolver, SrvAnswer
from simulator.policy import SrvLookup, SrvTarget

#: How many distinct answers and kept lookups are remembered.
MAX_KEPT = 10_000


def srv_lookup(name: str, answer: SrvAnswer) -> SrvLookup:
    """The policy's view of ``answer`` to the SRV query for ``name``.

    Targets are written without the root dot, as the Edge prints them; a "."
    among other targets (RFC 2782: "no service") is no target at all.
    """
    targets = tuple(
        SrvTarget(target=t.target.rstrip("."), port=t.port, priority=t.priority, weight=t.weight)
        for t in answer.targets
        if t.target.rstrip(".")
    )
    outcome = answer.outcome if targets or answer.outcome != "ok" else "nodata"
    return SrvLookup(name=name, outcome=outcome, targets=targets)


class SrvLookups:
    """SRV lookups through one resolver, converted once and kept while they cannot change."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._converted: OrderedDict[SrvAnswer, SrvLookup] = OrderedDict()
        #: name -> (lookup, trio time until which it holds, resolver generation)
        self._kept: dict[str, tuple[SrvLookup, float, int]] = {}

    def kept(self, name: str) -> SrvLookup | None:
        """The lookup of ``name`` while the resolver's cached answer still holds, else None."""
        entry = self._kept.get(name)
        if entry is None:
            return None
        srv, until, generation = entry
        if trio.current_time() < until and generation == self.resolver.generation:
            return srv
        del self._kept[name]
        return None

    def needs_query(self, name: str) -> bool:
        """Whether looking ``name`` up means asking the DNS server (and maybe its timeout)."""
        return self.kept(name) is None and not self.resolver.answers_from_cache(name)

    def keep(self, name: str, srv: SrvLookup, ttl: float) -> None:
        """Keep ``srv`` as the lookup of ``name`` for ``ttl`` seconds (tests use it too)."""
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[name] = (srv, trio.current_time() + ttl, self.resolver.generation)

    async def lookup(self, name: str) -> SrvLookup:
        """The SRV lookup of ``name``: kept, or asked of the resolver (which may cache)."""
        srv = self.kept(name)
        if srv is not None:
            return srv
        answer = await self.resolver.srv(name)
        srv = self._converted.get(answer)
        if srv is None:
            srv = srv_lookup(name, answer)
            self._converted[answer] = srv
            while len(self._converted) > MAX_KEPT:
                self._converted.popitem(last=False)
        if len(answer.targets) <= 1 and answer.ttl > 0 and self.resolver.cache:
            # One target or none: the order cannot change while the resolver holds the
            # answer, so the lookup is the same until then (answer.ttl is rounded down).
            self.keep(name, srv, answer.ttl)
        return srv
