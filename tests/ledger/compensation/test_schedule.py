"""Schedules, pure: an annuity against hand-computed numbers, equal parts and instalments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.compensation import schedule


def test_annuity_hand_computed():
    """100,000.00 yuan at 5 % a year over 3 years, paid at each year's end.

    Level payment = 100000 x 0.05 / (1 - 1.05^-3) = 36,720.8564... -> 36,720.86 yuan.
    Year 1: interest 100000.00 x 5 % = 5,000.00; principal 31,720.86; balance 68,279.14.
    Year 2: interest 68279.14 x 5 % = 3,413.957 -> 3,413.96; principal 33,306.90;
            balance 34,972.24.
    Year 3: interest 34972.24 x 5 % = 1,748.612 -> 1,748.61; the payment closes the balance:
            34,972.24 + 1,748.61 = 36,720.85.
    Present values: 36720.86 / 1.05 = 34,972.2476 -> 34,972.25;
                    36720.86 / 1.05^2 = 33,306.9025 -> 33,306.90;
                    36720.85 / 1.05^3 = 31,720.8509 -> 31,720.85 (total 100,000.00).
    """
    rows = schedule.annuity(100_000_00, ["2021", "2022", "2023"], Decimal("0.05"))
    assert [r.payment_fen for r in rows] == [3_672_086, 3_672_086, 3_672_085]
    assert [r.interest_fen for r in rows] == [500_000, 341_396, 174_861]
    assert [r.principal_fen for r in rows] == [3_172_086, 3_330_690, 3_497_224]
    assert [r.balance_after_fen for r in rows] == [6_827_914, 3_497_224, 0]
    assert [r.present_value_fen for r in rows] == [3_497_225, 3_330_690, 3_172_085]
    assert sum(r.principal_fen for r in rows) == 100_000_00  # parts sum to the whole
    assert sum(r.present_value_fen for r in rows) == 100_000_00


def test_annuity_at_zero_rate_is_equal_payments_with_the_last_closing():
    rows = schedule.annuity(1_000, ["2021", "2022", "2023"], Decimal(0))
    assert [r.payment_fen for r in rows] == [333, 333, 334]
    assert sum(r.payment_fen for r in rows) == 1_000
    assert all(r.interest_fen == 0 for r in rows)


def test_annuity_of_a_tiny_amount_never_repays_more_than_is_left():
    rows = schedule.annuity(2, [str(2000 + i) for i in range(5)], Decimal("0.01"))
    assert all(r.balance_after_fen >= 0 and r.payment_fen >= 0 for r in rows)
    assert sum(r.principal_fen for r in rows) == 2


def test_annuity_refuses_a_rate_outside_0_1():
    with pytest.raises(ValueError):
        schedule.annuity(100, ["2021"], Decimal("1.5"))


def test_equal_parts_give_the_extra_fen_to_the_earliest_periods():
    rows = schedule.equal(1_000, ["2018", "2019", "2020"])
    assert [r.payment_fen for r in rows] == [334, 333, 333]
    assert [r.balance_after_fen for r in rows] == [666, 333, 0]
    chishui = schedule.equal(3 * 200_000_000_00, ["2018", "2019", "2020"])
    assert [r.payment_fen for r in chishui] == [200_000_000_00] * 3


def test_instalments_must_sum_to_the_whole():
    rows = schedule.instalments(1_000, ["2024", "2025"], [400, 600])
    assert [r.payment_fen for r in rows] == [400, 600]
    with pytest.raises(ValueError):
        schedule.instalments(1_000, ["2024", "2025"], [400, 500])
