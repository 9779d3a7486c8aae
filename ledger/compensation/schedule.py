"""Payment schedules of an agreement: how its whole amount falls on its periods (pure).

- `equal`: the amount in equal parts, the fen left over one each to the earliest periods;
- `instalments`: the amounts as written, one per period, which must sum to the whole;
- `annuity`: the amount is a present value (a principal) repaid by level payments at `rate`
  per period (paid at each period's end). The level payment is numpy-financial's `pmt`,
  rounded half-up to the fen; each period's interest is the open balance times the rate,
  rounded half-up to the fen; the last payment is what closes the balance exactly. So the
  principal parts sum exactly to the whole, and the payments to the whole plus the interest.
  Each payment's present value (discounted to the start with numpy-financial's `pv`) is shown
  rounded half-up to the fen; their total may differ from the whole by the rounding of the
  payments, a few fen at most, and is reported as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy_financial as npf

from ledger.compensation.clearing import split_largest_remainder

SCHEDULE_TYPES = ("equal", "instalments", "annuity")


@dataclasses.dataclass(frozen=True)
class Instalment:
    period: str
    payment_fen: int  #: what the period's settlement clears
    principal_fen: int  #: the part of the whole it repays (sums exactly to the whole)
    interest_fen: int  #: annuity: interest on the open balance; otherwise 0
    balance_after_fen: int  #: what remains of the whole after the period
    present_value_fen: int  #: the payment discounted to the start (annuity; else = payment)


def _fen(value: Decimal | float) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def equal(amount_fen: int, periods: Sequence[str]) -> list[Instalment]:
    parts = split_largest_remainder(amount_fen, [1] * len(periods))
    return _plain(amount_fen, periods, parts)


def instalments(amount_fen: int, periods: Sequence[str],
                amounts_fen: Sequence[int]) -> list[Instalment]:
    if len(amounts_fen) != len(periods) or sum(amounts_fen) != amount_fen:
        raise ValueError("one instalment per period, summing to the whole amount")
    return _plain(amount_fen, periods, list(amounts_fen))


def _plain(amount_fen: int, periods: Sequence[str], parts: Sequence[int]) -> list[Instalment]:
    balance = amount_fen
    rows = []
    for period, part in zip(periods, parts, strict=True):
        balance -= part
        rows.append(Instalment(period, part, part, 0, balance, part))
    return rows


def annuity(amount_fen: int, periods: Sequence[str], rate: Decimal) -> list[Instalment]:
    """Level payments repaying `amount_fen` at `rate` per period (0 <= rate < 1)."""
    if not Decimal(0) <= rate < Decimal(1):
        raise ValueError("the rate per period is a fraction in [0, 1)")
    n = len(periods)
    # numpy-financial divides by the rate, so a zero rate is the plain quotient
    level = _fen(Decimal(amount_fen) / n) if rate == 0 else \
        _fen(-npf.pmt(float(rate), n, amount_fen))
    balance = amount_fen
    rows = []
    for i, period in enumerate(periods, start=1):
        interest = _fen(Decimal(balance) * rate)
        # the last payment closes the balance (and no payment repays more than is left)
        payment = balance + interest if i == n else min(level, balance + interest)
        principal = payment - interest
        balance -= principal
        present = payment if rate == 0 else _fen(-npf.pv(float(rate), i, 0, payment))
        rows.append(Instalment(period, payment, principal, interest, balance, present))
    return rows


def build(kind: str, amount_fen: int, periods: Sequence[str], *,
          amounts_fen: Sequence[int] | None = None, rate: Decimal | None = None
          ) -> list[Instalment]:
    """The schedule of an agreement's terms (already validated)."""
    if kind == "equal":
        return equal(amount_fen, periods)
    if kind == "instalments":
        return instalments(amount_fen, periods, amounts_fen or [])
    if kind == "annuity":
        return annuity(amount_fen, periods, rate if rate is not None else Decimal(0))
    raise ValueError(f"unknown schedule type {kind!r}")
