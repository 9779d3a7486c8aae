"""The house's one splitting rule, `ledger.core.largest_remainder`: hand-worked cases and its
properties (parts sum to the whole, none negative, each within a unit of its quota, ties to
the earlier position, same input same output)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import core
from ledger.compensation import clearing
from ledger.sharing import allocation


@pytest.mark.parametrize(("amount", "weights", "parts"), [
    (100, [1, 1, 1], [34, 33, 33]),        # 33.33 each: the tie goes to the first
    (7, [3, 4, 3], [2, 3, 2]),             # quotas 2.1, 2.8, 2.1: the one left to 2.8
    (2, [1, 1, 1, 1], [1, 1, 0, 0]),       # four equal remainders: the earlier two
    (10, [1, 5, 4], [1, 5, 4]),            # exact: nothing left over
    (5, [0, 1, 0], [0, 5, 0]),             # a zero weight gets nothing
    (1, [1, 3], [0, 1]),                   # 0.25, 0.75
    (0, [0, 0], [0, 0]),                   # nothing to split, nothing to split by
    (0, [], []),
    (9_876_543_21, [3000, 7000], [2_962_962_96, 6_913_580_25]),  # 2962962.963, 6913580.247
])
def test_hand_worked(amount, weights, parts):
    assert core.largest_remainder(amount, weights).tolist() == parts


def test_beyond_64_bits_is_exact():
    # amount x weight passes 2**63: floors 674998650002699994, 224999775000449999,
    # 1574996850006 with remainders 2400048, 400008, 1199952 (of 4000008); the one fen left
    # goes to the largest remainder, the first
    parts = core.largest_remainder(9 * 10**17, [3 * 10**6, 10**6 + 1, 7]).tolist()
    assert parts == [674_998_650_002_699_995, 224_999_775_000_449_999, 1_574_996_850_006]


@pytest.mark.parametrize(("amount", "weights", "message"), [
    (-1, [1], "negative amount"), (10, [0, 0], "every weight is zero"),
    (10, [], "nothing to share"), (10, [1, -1], "weight is negative"),
    (10, [0.5, 0.5], "integers"), (1.5, [1], "integer number of fen"),
    (True, [1], "integer number of fen"),
])
def test_refuses(amount, weights, message):
    with pytest.raises(core.SplitError, match=message):
        core.largest_remainder(amount, weights)


@given(st.integers(min_value=0, max_value=10**18),
       st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=40)
       .filter(any))
def test_properties(amount, weights):
    parts = core.largest_remainder(amount, weights)
    assert parts.dtype == np.int64
    assert int(parts.sum()) == amount
    total = sum(weights)
    for part, weight in zip(parts.tolist(), weights, strict=True):
        assert part >= 0
        assert abs(part * total - amount * weight) < total  # within a unit of the quota
        if weight == 0:
            assert part == 0
    assert core.largest_remainder(amount, weights).tolist() == parts.tolist()


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=10**6),
       st.integers(min_value=2, max_value=30))
def test_ties_go_to_the_earlier_position(amount, weight, n):
    parts = core.largest_remainder(amount, [weight] * n).tolist()
    assert parts == sorted(parts, reverse=True)  # the extra units sit at the front
    assert max(parts) - min(parts) <= 1


@given(st.integers(min_value=0, max_value=10**15),
       st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30)
       .filter(any))
def test_sharing_and_compensation_split_with_it(amount, weights):
    expected = core.largest_remainder(amount, weights).tolist()
    assert allocation.largest_remainder(amount, weights).tolist() == expected
    assert clearing.split_largest_remainder(amount, weights) == expected
