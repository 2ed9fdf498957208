"""RFC 2782 ordering of SRV targets: priority first, then weighted random choice."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.dns.srv import SrvTarget, order_srv


def t(priority: int, weight: int, name: str) -> SrvTarget:
    return SrvTarget(priority, weight, 5061, f"{name}.lab.")


class Draws(random.Random):
    """A random source whose randint answers are fixed in advance, to walk the RFC's steps."""

    def __init__(self, draws: list[int]) -> None:
        super().__init__(0)
        self.draws = list(draws)
        self.asked: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        self.asked.append((a, b))
        return self.draws.pop(0)


STEPS = [
    # (targets as (priority, weight, name), draws, expected names, expected randint ranges)
    ([(0, 10, "a"), (0, 20, "b")], [0, 0], ["a", "b"], [(0, 30), (0, 20)]),
    ([(0, 10, "a"), (0, 20, "b")], [11, 0], ["b", "a"], [(0, 30), (0, 10)]),
    ([(0, 10, "a"), (0, 20, "b")], [30, 10], ["b", "a"], [(0, 30), (0, 10)]),
    # Weight-0 records go first in the running sum: a draw of 0 picks them (RFC 2782).
    ([(0, 10, "a"), (0, 0, "z")], [0, 10], ["z", "a"], [(0, 10), (0, 10)]),
    ([(0, 10, "a"), (0, 0, "z")], [1, 0], ["a", "z"], [(0, 10), (0, 0)]),
    # All weights 0: every draw is 0 and the list order stands.
    ([(0, 0, "a"), (0, 0, "b"), (0, 0, "c")], [0, 0, 0], ["a", "b", "c"], [(0, 0)] * 3),
    # Lower priority first, whatever the weights.
    ([(20, 100, "late"), (10, 0, "early")], [0, 0], ["early", "late"], [(0, 0), (0, 100)]),
]


@pytest.mark.parametrize(("targets", "draws", "expected", "ranges"), STEPS)
def test_rfc2782_steps(
    targets: list[tuple[int, int, str]],
    draws: list[int],
    expected: list[str],
    ranges: list[tuple[int, int]],
) -> None:
    rng = Draws(draws)
    ordered = order_srv([t(*target) for target in targets], rng)
    assert [o.target for o in ordered] == [f"{name}.lab." for name in expected]
    assert rng.asked == ranges


def test_lone_dot_target_means_no_service() -> None:
    assert order_srv([SrvTarget(0, 0, 0, ".")], random.Random(1)) == []
    assert SrvTarget(0, 0, 0, ".").unavailable


def test_weights_share_first_place_in_proportion() -> None:
    targets = [t(0, 90, "heavy"), t(0, 10, "light")]
    rng = random.Random(2782)
    firsts = Counter(order_srv(targets, rng)[0].target for _ in range(2000))
    # Expected 1800 / 200; a seeded rng makes this exact, the bounds just document intent.
    assert 1700 < firsts["heavy.lab."] < 1900


@pytest.mark.parametrize(
    ("priority", "weight", "port", "target"),
    [(-1, 0, 1, "a."), (0, 65536, 1, "a."), (0, 0, 70000, "a."), (0, 0, 1, "a"), (0, 0, 1, "A.")],
)
def test_srv_target_is_validated(priority: int, weight: int, port: int, target: str) -> None:
    with pytest.raises(ValueError, match="SRV"):
        SrvTarget(priority, weight, port, target)


targets_strategy = st.lists(
    st.builds(
        SrvTarget,
        st.integers(0, 3),
        st.integers(0, 20),
        st.integers(1, 65535),
        st.sampled_from([f"h{i}.lab." for i in range(8)]),
    ),
    max_size=12,
)


@given(targets_strategy, st.integers(0, 2**32))
def test_order_is_a_permutation_in_priority_order(targets: list[SrvTarget], seed: int) -> None:
    ordered = order_srv(targets, random.Random(seed))
    assert Counter(ordered) == Counter(targets)  # every target exactly once
    priorities = [o.priority for o in ordered]
    assert priorities == sorted(priorities)


@given(targets_strategy, st.integers(0, 2**32))
def test_seeded_order_is_reproducible(targets: list[SrvTarget], seed: int) -> None:
    assert order_srv(targets, random.Random(seed)) == order_srv(targets, random.Random(seed))
