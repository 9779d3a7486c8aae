"""The pure allocation module: hand-worked numbers, the published splits, properties."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.sharing.allocation import (
    WHOLE_BP,
    AllocationError,
    RuleError,
    Village,
    attribute,
    attribution_matrix,
    evaluate_rule,
    largest_remainder,
    split_bp,
    validate_rule,
)


def village(collective: int, households: list[int], **columns: list[int]) -> Village:
    n = len(households)
    cols = {name: np.asarray(columns.get(name, [0] * n), dtype=np.int64)
            for name in ("shares", "area_m2", "trees", "members")}
    return Village(collective, np.asarray(households, dtype=np.int64), cols)


def amounts(blocks) -> dict:
    out = {}
    for kind, targets, _village, _part, values, _weights in blocks:
        if kind == "households":
            for t, v in zip(targets.tolist(), values.tolist(), strict=True):
                out[("household", t)] = out.get(("household", t), 0) + v
        else:
            out[(kind, targets)] = out.get((kind, targets), 0) + int(values[0])
    return out


# --- largest remainder, by hand ---------------------------------------------------------------


def test_largest_remainder_by_hand():
    # 100 fen in three equal parts: quotas 33.33 each, the one fen left goes to the first
    assert largest_remainder(100, [1, 1, 1]).tolist() == [34, 33, 33]
    # 10 fen by 1:2:3:4 -> quotas 1, 2, 3, 4 exactly
    assert largest_remainder(10, [1, 2, 3, 4]).tolist() == [1, 2, 3, 4]
    # 7 fen by 5:3 -> quotas 4.375 and 2.625: floors 4 + 2, the fen to the larger remainder
    assert largest_remainder(7, [5, 3]).tolist() == [4, 3]
    # 2 fen by 1:1:1:1: the earlier positions win the ties
    assert largest_remainder(2, [1, 1, 1, 1]).tolist() == [1, 1, 0, 0]
    # a zero weight gets nothing
    assert largest_remainder(5, [0, 1, 0]).tolist() == [0, 5, 0]


def test_largest_remainder_beyond_64_bits_is_exact():
    amount = 9 * 10**17
    parts = largest_remainder(amount, [3 * 10**6, 10**6 + 1, 7])
    assert int(parts.sum()) == amount
    exact = [amount * w / (4 * 10**6 + 8) for w in (3 * 10**6, 10**6 + 1, 7)]
    assert all(abs(int(p) - e) <= 1 for p, e in zip(parts, exact, strict=True))


@pytest.mark.parametrize(("amount", "weights", "message"), [
    (-1, [1], "negative amount"),
    (10, [0, 0], "every weight is zero"),
    (10, [], "nothing to share"),
    (10, [1, -1], "weight is negative"),
    (10, [0.5, 0.5], "integers"),
    (1.5, [1], "integer number of fen"),
])
def test_largest_remainder_refuses(amount, weights, message):
    with pytest.raises(AllocationError, match=message):
        largest_remainder(amount, weights)


def test_split_bp_refuses_shares_that_do_not_sum_to_the_whole():
    with pytest.raises(AllocationError, match="9000 bp"):
        split_bp(100, [6000, 2000, 1000])


# --- published cases ----------------------------------------------------------------------------


YUANMOU = {"kind": "villages", "basis": "equal", "parts": [
    {"kind": "collective", "label": "village group 村民小组", "share_bp": 6000},
    {"kind": "account", "label": "village committee 村委会", "account": "COMMITTEE",
     "share_bp": 2000},
    {"kind": "account", "label": "township 乡镇", "account": "TOWNSHIP", "share_bp": 2000}]}
SANMING = {"kind": "villages", "basis": "equal", "parts": [
    {"kind": "collective", "label": "collective 村集体", "share_bp": 3000},
    {"kind": "households", "label": "villagers 村民", "basis": "shares", "share_bp": 7000}]}


def test_yuanmou_60_20_20():
    """Yuanmou (Yunnan) carbon revenue: village group 60 %, committee 20 %, township 20 %."""
    got = amounts(evaluate_rule(1_000_000_01, YUANMOU, [village(7, [])]))
    assert got == {("collective", 7): 600_000_01, ("account", "COMMITTEE"): 200_000_00,
                   ("account", "TOWNSHIP"): 200_000_00}


def test_sanming_30_70_by_shares():
    """Sanming (Fujian) forest ticket: collective 30 %, villagers 70 % (here by shares)."""
    v = village(7, [11, 12, 13], shares=[1, 1, 2])
    got = amounts(evaluate_rule(100_000_00, SANMING, [v]))
    assert got == {("collective", 7): 30_000_00, ("household", 11): 17_500_00,
                   ("household", 12): 17_500_00, ("household", 13): 35_000_00}
    # 1 fen more: quotas 3,000,000.3 and 7,000,000.7 fen, so the villagers get the odd fen;
    # among them the quotas are 1,750,000.25 / 1,750,000.25 / 3,500,000.5: the third gets it
    got = amounts(evaluate_rule(100_000_01, SANMING, [v]))
    assert got[("collective", 7)] == 30_000_00
    assert [got[("household", h)] for h in (11, 12, 13)] == [17_500_00, 17_500_00, 35_000_01]


def test_wangmo_single_tree_village_totals_split_by_trees():
    """Dalang: 128 households x 450 trees x 3 yuan = 172,800 yuan; split by trees, every
    household gets exactly 1,350 yuan; Xinhe's 137 households 184,950 yuan."""
    rule = {"kind": "villages", "basis": "trees", "parts": [
        {"kind": "households", "basis": "trees", "share_bp": WHOLE_BP}]}
    dalang = village(1, list(range(100, 228)), trees=[450] * 128)
    xinhe = village(2, list(range(300, 437)), trees=[450] * 137)
    got = amounts(evaluate_rule(172_800_00 + 184_950_00, rule, [dalang, xinhe]))
    assert set(got.values()) == {1_350_00}
    assert sum(v for (k, h), v in got.items() if 100 <= h < 228) == 172_800_00
    assert sum(v for (k, h), v in got.items() if 300 <= h < 437) == 184_950_00


def test_nested_split_with_a_fee():
    rule = {"kind": "split", "parts": [
        {"kind": "account", "label": "fee 手续费", "account": "FEE", "share_bp": 50},
        {"kind": "villages", "label": "villages", "basis": "members", "share_bp": 9950, "parts": [
            {"kind": "collective", "share_bp": 2000},
            {"kind": "split", "label": "villagers", "share_bp": 8000, "parts": [
                {"kind": "households", "basis": "members", "share_bp": 5000},
                {"kind": "households", "basis": "equal", "share_bp": 5000}]}]}]}
    a = village(1, [10, 11], members=[3, 1])
    b = village(2, [20], members=[4])
    got = amounts(evaluate_rule(1_000_00, rule, [a, b]))
    # fee 0.5 % = 500 fen; villages 99,500 fen by members 4:4 -> 49,750 each
    assert got[("account", "FEE")] == 500
    assert got[("collective", 1)] == got[("collective", 2)] == 9_950
    # village a: villagers 39,800 = 19,900 by members (3:1) + 19,900 equally
    assert got[("household", 10)] == 14_925 + 9_950
    assert got[("household", 11)] == 4_975 + 9_950
    assert got[("household", 20)] == 39_800
    assert sum(got.values()) == 1_000_00


@pytest.mark.parametrize(("definition", "field"), [
    ({"kind": "split", "parts": [{"kind": "account", "account": "A", "share_bp": 6000},
                                 {"kind": "account", "account": "B", "share_bp": 3000}]},
     "parts"),
    ({"kind": "split", "parts": [{"kind": "collective", "share_bp": 10000}]}, "parts.0.kind"),
    ({"kind": "villages", "basis": "height", "parts": [
        {"kind": "collective", "share_bp": 10000}]}, "basis"),
    ({"kind": "villages", "basis": "equal", "parts": [
        {"kind": "households", "basis": "age", "share_bp": 10000}]}, "parts.0.basis"),
    ({"kind": "account", "account": "A"}, "kind"),
    ({"kind": "split", "parts": [{"kind": "account", "share_bp": 10000}]}, "parts.0.account"),
    ({"kind": "split", "parts": [{"kind": "account", "account": "A", "share_bp": 10000.0}]},
     "parts.0.share_bp"),
    ("60/40", "definition"),
])
def test_bad_rules_are_refused_with_the_field(definition, field):
    problems = validate_rule(definition)
    assert field in [p["field"] for p in problems], problems
    with pytest.raises(RuleError):
        evaluate_rule(100, definition, [village(1, [2], shares=[1])])


def test_a_village_without_anything_to_split_by_is_an_error():
    with pytest.raises(AllocationError, match="no household with shares"):
        evaluate_rule(100, SANMING, [village(7, [1, 2], shares=[0, 0])])


# --- attribution ------------------------------------------------------------------------------


def test_attribution_by_hand():
    # a distribution of 100 yuan from inflows with 300 and 100 yuan unattributed: 75 / 25
    assert attribute(100_00, [300_00, 100_00]).tolist() == [75_00, 25_00]
    with pytest.raises(AllocationError, match="do not cover"):
        attribute(500_00, [300_00, 100_00])
    m = attribution_matrix([3, 3, 4], [5, 5])
    assert m.sum(axis=1).tolist() == [3, 3, 4]
    assert m.sum(axis=0).tolist() == [5, 5]
    assert m.tolist() == [[2, 1], [1, 2], [2, 2]]


amount_st = st.integers(min_value=0, max_value=10**13)
weights_st = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(amount_st, weights_st)
def test_property_largest_remainder(amount, weights):
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    parts = largest_remainder(amount, weights)
    assert int(parts.sum()) == amount
    assert (parts >= 0).all()
    total = sum(weights)
    for p, w in zip(parts.tolist(), weights, strict=True):
        assert w * amount // total <= p <= w * amount // total + 1
    assert largest_remainder(amount, weights).tolist() == parts.tolist()


@st.composite
def villages_st(draw):
    count = draw(st.integers(min_value=1, max_value=4))
    out, next_id = [], 1000
    for c in range(count):
        n = draw(st.integers(min_value=1, max_value=12))
        ids = list(range(next_id, next_id + n))
        next_id += n
        shares = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
        shares[0] = max(shares[0], 1)
        trees = draw(st.lists(st.integers(1, 450), min_size=n, max_size=n))
        out.append(village(c + 1, ids, shares=shares, trees=trees, members=[1] * n,
                           area_m2=[1] * n))
    return out


@settings(max_examples=200, deadline=None)
@given(amount_st, villages_st(), st.integers(0, WHOLE_BP))
def test_property_rules_sum_exactly(amount, villages, collective_bp):
    rule = {"kind": "villages", "basis": "households", "parts": [
        {"kind": "collective", "share_bp": collective_bp},
        {"kind": "households", "basis": "shares", "share_bp": WHOLE_BP - collective_bp}]}
    blocks = evaluate_rule(amount, rule, villages)
    values = np.concatenate([b[4] for b in blocks])
    assert int(values.sum()) == amount
    assert (values >= 0).all()
    again = evaluate_rule(amount, rule, villages)
    assert [b[4].tolist() for b in again] == [b[4].tolist() for b in blocks]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=40),
       st.lists(st.integers(0, 10**9), min_size=1, max_size=8), st.randoms())
def test_property_attribution_matrix_exact_both_ways(receipts, source_weights, rnd):
    total = sum(receipts)
    if sum(source_weights) == 0:
        source_weights[0] = 1
    sources = largest_remainder(total, source_weights).tolist()
    m = attribution_matrix(receipts, sources)
    assert m.sum(axis=1).tolist() == receipts
    assert m.sum(axis=0).tolist() == sources
    assert (m >= 0).all()
    if total:
        exact = np.outer(np.array(receipts, dtype=float), np.array(sources, dtype=float)) / total
        assert (np.abs(m - exact) < 1 + 1e-6 * exact.max()).all()
    assert attribution_matrix(receipts, sources).tolist() == m.tolist()


def test_100000_households_allocate_fast():
    n = 100_000
    rng = np.random.default_rng(7)
    v = Village(1, np.arange(10, 10 + n, dtype=np.int64),
                {"shares": rng.integers(1, 20, n), "trees": rng.integers(1, 451, n),
                 "members": rng.integers(1, 8, n), "area_m2": rng.integers(1, 4000, n)})
    start = time.perf_counter()
    blocks = evaluate_rule(987_654_321_01, SANMING, [v])
    elapsed = time.perf_counter() - start
    assert int(np.concatenate([b[4] for b in blocks]).sum()) == 987_654_321_01
    assert elapsed < 2.0, elapsed  # typically ~20 ms; generous for a shared machine
