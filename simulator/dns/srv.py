"""SRV target ordering (RFC 2782). Pure: the random source is passed in.

The Edge tries SRV targets in the order RFC 2782 prescribes, and a lab wants
that order to be reproducible, so :func:`order_srv` takes the ``random.Random``
it draws from instead of reading a global one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SrvTarget", "order_srv"]

# RFC 2782: priority, weight and port are 16-bit unsigned integers.
_U16_MAX = 0xFFFF


@dataclass(frozen=True, slots=True)
class SrvTarget:
    """One SRV record's data: where a service lives.

    Attributes:
        priority: lower is tried first (RFC 2782 "Priority").
        weight: relative share within one priority (RFC 2782 "Weight").
        port: the service's port.
        target: absolute, lower-case host name with a trailing dot; ``"."`` alone
            means "service decidedly not available at this domain" (RFC 2782).
    """

    priority: int
    weight: int
    port: int
    target: str

    def __post_init__(self) -> None:
        for field_name in ("priority", "weight", "port"):
            value = getattr(self, field_name)
            if not 0 <= value <= _U16_MAX:
                raise ValueError(f"SRV {field_name} must be 0..65535, not {value!r}")
        if not self.target.endswith(".") or self.target != self.target.lower():
            raise ValueError(
                f"SRV target must be absolute and lower-case (trailing dot), not {self.target!r}"
            )

    @property
    def unavailable(self) -> bool:
        """True for the RFC 2782 "." target: the domain says it offers no such service."""
        return self.target == "."


def order_srv(targets: Sequence[SrvTarget], rng: random.Random) -> list[SrvTarget]:
    """Put SRV targets in the order a client must try them (RFC 2782, "Usage rules").

    Ascending priority; within one priority, repeated weighted random selection:
    the not-yet-ordered records are listed with weight-0 records first, a running
    sum of weights is kept, a number is drawn uniformly from 0 to the total
    (inclusive), and the first record whose running sum is >= that number comes
    next. Weight-0 records thus have a small chance of being picked when others
    have weight, exactly as the RFC says.

    Args:
        targets: the SRV records of one name, in any order.
        rng: the random source; seed it for a reproducible order.

    Returns:
        Every target exactly once, in trying order. A lone "." target means the
        service is decidedly not available, so the result is empty.
    """
    if len(targets) == 1 and targets[0].unavailable:
        return []
    ordered: list[SrvTarget] = []
    for priority in sorted({t.priority for t in targets}):
        # Stable: input order is "any order" for the RFC, and keeps seeded runs repeatable.
        remaining = [t for t in targets if t.priority == priority]
        while remaining:
            remaining.sort(key=lambda t: t.weight != 0)  # weight 0 first; stable otherwise
            total = sum(t.weight for t in remaining)
            pick = rng.randint(0, total)
            running = 0
            for index, target in enumerate(remaining):
                running += target.weight
                if running >= pick:
                    ordered.append(remaining.pop(index))
                    break
    return ordered
