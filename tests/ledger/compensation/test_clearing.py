"""Clearing, pure: the published Chishui River settlement (reference/published_cases.md, case
4) with every section passing and with each failure clearing, withholding, portions, netting,
and the largest-remainder split's properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.compensation import clearing
from ledger.compensation.clearing import Condition, Party, Recipient, Transfer

YUAN = 100
FUND_FEN = 200_000_000 * YUAN  # 200,000,000 yuan a year
#: contributions Yunnan:Guizhou:Sichuan = 1:5:4, allocations 3:4:3
CHISHUI = [Party("yunnan", 1, 3), Party("guizhou", 5, 4), Party("sichuan", 4, 3)]
CONDITIONS = [
    Condition("qingshuipu", "QINGSHUIPU", "water_quality_class", 3, "at_most", party="yunnan",
              action="split", recipients=(Recipient("guizhou", 5), Recipient("sichuan", 5))),
    Condition("lianyuxi", "LIANYUXI", "water_quality_class", 3, "at_most", party="guizhou",
              action="redirect", recipients=(Recipient("sichuan"),)),
]


def _values(qingshuipu: int, lianyuxi: int) -> dict[tuple[str, str], float]:
    return {("QINGSHUIPU", "water_quality_class"): qingshuipu,
            ("LIANYUXI", "water_quality_class"): lianyuxi}


def _nets(result: clearing.Clearing) -> dict[str, int]:
    return {p.party: p.net_fen for p in result.positions}


def test_chishui_all_sections_pass_gives_the_published_settlement():
    result = clearing.clear(FUND_FEN, CHISHUI, CONDITIONS, _values(2, 3))
    assert result.all_met
    assert {p.party: p.contribution_fen for p in result.positions} == {
        "yunnan": 20_000_000 * YUAN, "guizhou": 100_000_000 * YUAN, "sichuan": 80_000_000 * YUAN}
    assert {p.party: p.allocation_fen for p in result.positions} == {
        "yunnan": 60_000_000 * YUAN, "guizhou": 80_000_000 * YUAN, "sichuan": 60_000_000 * YUAN}
    # published: Yunnan +40 M, Guizhou -20 M, Sichuan -20 M; Guizhou and Sichuan each paid 20 M
    assert _nets(result) == {"yunnan": 40_000_000 * YUAN, "guizhou": -20_000_000 * YUAN,
                             "sichuan": -20_000_000 * YUAN}
    assert list(result.transfers) == [Transfer("guizhou", "yunnan", 20_000_000 * YUAN),
                                      Transfer("sichuan", "yunnan", 20_000_000 * YUAN)]
    assert result.adjustments == ()


def test_chishui_qingshuipu_fails_yunnan_allocation_paid_half_each_to_guizhou_and_sichuan():
    result = clearing.clear(FUND_FEN, CHISHUI, CONDITIONS, _values(4, 3))
    assert [e.met for e in result.evaluations] == [False, True]
    receives = {p.party: p.receives_fen for p in result.positions}
    assert receives == {"yunnan": 0, "guizhou": 110_000_000 * YUAN,
                        "sichuan": 90_000_000 * YUAN}
    assert _nets(result) == {"yunnan": -20_000_000 * YUAN, "guizhou": 10_000_000 * YUAN,
                             "sichuan": 10_000_000 * YUAN}
    assert list(result.transfers) == [Transfer("yunnan", "guizhou", 10_000_000 * YUAN),
                                      Transfer("yunnan", "sichuan", 10_000_000 * YUAN)]
    assert [(a.source, a.party, a.amount_fen) for a in result.adjustments] == [
        ("yunnan", "guizhou", 30_000_000 * YUAN), ("yunnan", "sichuan", 30_000_000 * YUAN)]


def test_chishui_lianyuxi_fails_guizhou_allocation_paid_to_sichuan():
    result = clearing.clear(FUND_FEN, CHISHUI, CONDITIONS, _values(3, 5))
    receives = {p.party: p.receives_fen for p in result.positions}
    assert receives == {"yunnan": 60_000_000 * YUAN, "guizhou": 0,
                        "sichuan": 140_000_000 * YUAN}
    assert _nets(result) == {"yunnan": 40_000_000 * YUAN, "guizhou": -100_000_000 * YUAN,
                             "sichuan": 60_000_000 * YUAN}
    assert list(result.transfers) == [Transfer("guizhou", "yunnan", 40_000_000 * YUAN),
                                      Transfer("guizhou", "sichuan", 60_000_000 * YUAN)]


def test_both_fail_one_pass_on_original_allocations():
    result = clearing.clear(FUND_FEN, CHISHUI, CONDITIONS, _values(6, 4))
    receives = {p.party: p.receives_fen for p in result.positions}
    # Yunnan's 60 M split 30/30; Guizhou's own 80 M to Sichuan; Guizhou keeps what it was sent
    assert receives == {"yunnan": 0, "guizhou": 30_000_000 * YUAN,
                        "sichuan": 170_000_000 * YUAN}
    assert sum(receives.values()) == FUND_FEN
    assert sum(_nets(result).values()) == 0


def test_withhold_returns_the_allocation_to_the_contributors_by_contribution_share():
    withhold = [Condition("qingshuipu", "QINGSHUIPU", "water_quality_class", 3, "at_most",
                          party="yunnan", action="withhold")]
    result = clearing.clear(FUND_FEN, CHISHUI, withhold,
                            {("QINGSHUIPU", "water_quality_class"): 5})
    # Yunnan's 60 M goes back 1:5:4 = 6 / 30 / 24 M: each contributes that much less
    assert [(a.party, a.amount_fen) for a in result.adjustments] == [
        ("yunnan", 6_000_000 * YUAN), ("guizhou", 30_000_000 * YUAN),
        ("sichuan", 24_000_000 * YUAN)]
    assert _nets(result) == {"yunnan": -14_000_000 * YUAN, "guizhou": 10_000_000 * YUAN,
                             "sichuan": 4_000_000 * YUAN}


def test_vertical_withhold_means_the_payer_pays_less():
    parties = [Party("province", 100, 0), Party("wangmo", 0, 100)]
    condition = Condition("coverage", "WANGMO", "forest_coverage_percent", 60.0, "at_least",
                          party="wangmo", action="withhold", portion_bp=2_500)
    met = clearing.clear(1_000_000, parties, [condition],
                         {("WANGMO", "forest_coverage_percent"): 61.2})
    failed = clearing.clear(1_000_000, parties, [condition],
                            {("WANGMO", "forest_coverage_percent"): 59.9})
    assert met.transfers == (Transfer("province", "wangmo", 1_000_000),)
    assert failed.transfers == (Transfer("province", "wangmo", 750_000),)  # 25 % withheld


def test_a_portion_is_rounded_down_and_never_takes_more_than_is_left():
    parties = [Party("a", 1, 1), Party("b", 0, 1), Party("c", 0, 1)]
    twice = [Condition(f"c{i}", "S", "water_quality_class", 3, "at_most", party="b",
                       action="redirect", recipients=(Recipient("c"),), portion_bp=7_000)
             for i in range(2)]
    result = clearing.clear(1_000, parties, twice, {("S", "water_quality_class"): 4})
    # b's allocation is 333 fen (a gets the extra fen); 70 % = 233.1 -> 233, then only 100 left
    assert [a.amount_fen for a in result.adjustments] == [233, 100]
    assert {p.party: p.receives_fen for p in result.positions} == {"a": 334, "b": 0, "c": 666}


def test_missing_values_refuse_to_clear():
    with pytest.raises(clearing.MissingValues) as caught:
        clearing.clear(FUND_FEN, CHISHUI, CONDITIONS,
                       {("QINGSHUIPU", "water_quality_class"): 2})
    assert caught.value.missing == [("lianyuxi", "LIANYUXI", "water_quality_class")]


def test_the_boundary_of_a_target_is_met():
    assert clearing.is_met(3, 3, "at_most") and not clearing.is_met(3.5, 3, "at_most")
    assert clearing.is_met(60.0, 60.0, "at_least") and not clearing.is_met(59.99, 60, "at_least")


def test_largest_remainder_hand_worked():
    assert clearing.split_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]  # tie: first
    assert clearing.split_largest_remainder(10, [1, 5, 4]) == [1, 5, 4]
    assert clearing.split_largest_remainder(7, [3, 4, 3]) == [2, 3, 2]  # 2.1, 2.8, 2.1
    assert clearing.split_largest_remainder(5, [0, 1]) == [0, 5]
    with pytest.raises(ValueError):
        clearing.split_largest_remainder(-1, [1])
    with pytest.raises(ValueError):
        clearing.split_largest_remainder(1, [0, 0])


@given(st.integers(min_value=0, max_value=10**15),
       st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30)
       .filter(any))
def test_largest_remainder_sums_exactly_and_stays_within_a_fen(amount, shares):
    parts = clearing.split_largest_remainder(amount, shares)
    assert sum(parts) == amount
    total = sum(shares)
    for part, share in zip(parts, shares, strict=True):
        assert part >= 0 and abs(part * total - amount * share) < total
    assert parts == clearing.split_largest_remainder(amount, shares)


@given(st.integers(min_value=0, max_value=10**13),
       st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=8)
       .filter(lambda s: any(c for c, _ in s) and all(a for _, a in s)),
       st.lists(st.tuples(st.integers(0, 7), st.integers(1, 10_000), st.booleans(),
                          st.sampled_from(clearing.ACTIONS)), max_size=6))
def test_clearing_conserves_the_amount_and_nets_to_zero(amount, shares, failures):
    parties = [Party(f"p{i}", c, a) for i, (c, a) in enumerate(shares)]
    n = len(parties)
    conditions, values = [], {}
    for j, (who, portion, fails, action) in enumerate(failures):
        source = f"p{who % n}"
        others = [p.key for p in parties if p.key != source]
        recipients = {"withhold": (), "redirect": (Recipient(others[0]),),
                      "split": tuple(Recipient(k, i + 1) for i, k in enumerate(others))}[action]
        conditions.append(Condition(f"c{j}", f"S{j}", "water_quality_class", 3, "at_most",
                                    party=source, action=action, recipients=recipients,
                                    portion_bp=portion))
        values[(f"S{j}", "water_quality_class")] = 5 if fails else 2
    result = clearing.clear(amount, parties, conditions, values)
    assert sum(p.contribution_fen for p in result.positions) == amount
    assert sum(p.receives_fen for p in result.positions) == amount
    assert all(p.receives_fen >= 0 for p in result.positions)
    assert sum(p.net_fen for p in result.positions) == 0
    assert len(result.transfers) <= n - 1
    # the transfers bring every party exactly to its net position
    moved = {p.key: 0 for p in parties}
    for t in result.transfers:
        assert t.amount_fen > 0 and t.payer != t.payee
        moved[t.payer] -= t.amount_fen
        moved[t.payee] += t.amount_fen
    assert moved == {p.party: p.net_fen for p in result.positions}
