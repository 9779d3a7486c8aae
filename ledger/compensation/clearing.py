"""Clearing a compensation agreement for one period: numbers in, numbers out (pure).

Given the period's fund amount, the parties' contribution and allocation shares, the
conditions with their monitored values and the clearing rule of each, `clear` says what each
party contributes and receives and who pays whom, netted, exact to the fen.

The rules, in order (ledger/compensation/README.md says the same for users):

1. **Contributions and allocations.** The period's amount is split by the contribution shares
   and, separately, by the allocation shares, each with `split_largest_remainder`: every part
   is rounded down to the fen, then the fen left over go one each to the largest remainders;
   ties go to the party listed first in the agreement. The parts sum exactly to the amount.
2. **Conditions.** A condition is met when its monitored value is at most (water-quality
   class) or at least (forest coverage, GEP change) its target. A condition without a
   monitored value cannot be evaluated: missing is not zero, and clearing refuses
   (`MissingValues`) rather than guess.
3. **Clearing a failed condition** takes `portion_bp` (basis points, default the whole) of the
   affected party's *original* allocation, rounded down to the fen and never more than what is
   left of it, and
   - `withhold`: returns it to the contributors by their contribution shares (they pay less);
   - `redirect`: pays it to one named party;
   - `split`: pays it to several named parties by their shares (largest remainder).
   Failed conditions are applied one pass, in the agreement's order, each to original
   allocations: money redirected to a party is not withheld again by another failure.
4. **Net position** of a party = what it receives - what it contributes; the positions sum to
   zero. **Netting**: debtors (negative) pay creditors (positive), both taken in the
   agreement's party order, each debtor paying the earliest creditor still owed, so that at most
   (parties - 1) transfers settle the period.

The Chishui River agreement (reference/published_cases.md, case 4) gives the published
numbers: contributions 1:5:4 and allocations 3:4:3 of 200,000,000 yuan, so Guizhou and
Sichuan each pay 20,000,000 yuan to Yunnan when every section passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from ledger import core

#: basis points in a whole (portion_bp = 10000 is all of an allocation)
WHOLE_BP = 10_000

#: indicator -> (unit, comparison): "at_most" is met when value <= target
INDICATORS: dict[str, tuple[str, str]] = {
    "water_quality_class": ("class", "at_most"),  # GB 3838 class I..V as 1..5, 劣V as 6
    "forest_coverage_percent": ("%", "at_least"),
    "gep_change_percent": ("%", "at_least"),  # from a published valuation run
}
COMPARISONS = ("at_most", "at_least")
ACTIONS = ("withhold", "redirect", "split")


def split_largest_remainder(amount: int, shares: Sequence[int]) -> list[int]:
    """`amount` (integer, >= 0) split in proportion to `shares` (integers >= 0, not all zero):
    each part rounded down, the rest one unit each to the largest remainders, ties to the
    earlier share. The parts sum exactly to `amount`; a zero share gets nothing. The house's
    one helper, `ledger.core.largest_remainder` (its refusals are `ValueError`s)."""
    if amount < 0:
        raise ValueError("the amount to split must not be negative")
    if any(s < 0 for s in shares) or not any(shares):
        raise ValueError("shares must be non-negative and not all zero")
    parts: list[int] = core.largest_remainder(amount, list(shares)).tolist()
    return parts


@dataclasses.dataclass(frozen=True)
class Party:
    key: str
    contribution_share: int
    allocation_share: int


@dataclasses.dataclass(frozen=True)
class Recipient:
    party: str
    share: int = 1


@dataclasses.dataclass(frozen=True)
class Condition:
    key: str
    section: str
    indicator: str
    target: float
    comparison: str
    #: clearing when failed: the party whose allocation is affected, the action, recipients
    party: str
    action: str
    recipients: tuple[Recipient, ...] = ()
    portion_bp: int = WHOLE_BP


@dataclasses.dataclass(frozen=True)
class Evaluation:
    condition: str
    section: str
    indicator: str
    target: float
    comparison: str
    value: float
    met: bool


@dataclasses.dataclass(frozen=True)
class Adjustment:
    """Money moved by a failed condition: `amount_fen` of `source`'s allocation to `party`."""

    condition: str
    action: str
    source: str
    party: str
    amount_fen: int


@dataclasses.dataclass(frozen=True)
class Position:
    party: str
    contribution_fen: int
    allocation_fen: int  #: by the allocation shares, before clearing
    withheld_fen: int  #: taken from its allocation by failed conditions
    received_fen: int  #: redirected or returned to it by failed conditions
    receives_fen: int  #: allocation - withheld + received
    net_fen: int  #: receives - contribution (positive: it is owed money)


@dataclasses.dataclass(frozen=True)
class Transfer:
    payer: str
    payee: str
    amount_fen: int


@dataclasses.dataclass(frozen=True)
class Clearing:
    amount_fen: int
    evaluations: tuple[Evaluation, ...]
    adjustments: tuple[Adjustment, ...]
    positions: tuple[Position, ...]
    transfers: tuple[Transfer, ...]

    @property
    def all_met(self) -> bool:
        return all(e.met for e in self.evaluations)


class MissingValues(ValueError):
    """Conditions whose monitored value is missing: `missing` lists (condition, section,
    indicator)."""

    def __init__(self, missing: Sequence[tuple[str, str, str]]) -> None:
        super().__init__(f"{len(missing)} condition(s) have no monitored value")
        self.missing = list(missing)


def gep_change_percent(base_gep_yuan: float, gep_yuan: float) -> float:
    """The change of GEP from a base year, in percent: (GEP - GEP_base) / GEP_base x 100
    (both in yuan at the same constant prices). A base that is not positive has no change."""
    if not base_gep_yuan > 0:
        raise ValueError("the base year's GEP must be positive")
    return (gep_yuan - base_gep_yuan) / base_gep_yuan * 100.0


def is_met(value: float, target: float, comparison: str) -> bool:
    return value <= target if comparison == "at_most" else value >= target


def evaluate(conditions: Sequence[Condition],
             values: Mapping[tuple[str, str], float]) -> list[Evaluation]:
    """Each condition against the monitored value of its (section, indicator); MissingValues
    when any has none."""
    missing = [(c.key, c.section, c.indicator) for c in conditions
               if (c.section, c.indicator) not in values]
    if missing:
        raise MissingValues(missing)
    return [Evaluation(c.key, c.section, c.indicator, c.target, c.comparison,
                       values[(c.section, c.indicator)],
                       is_met(values[(c.section, c.indicator)], c.target, c.comparison))
            for c in conditions]


def net_transfers(parties: Sequence[str], nets: Mapping[str, int]) -> list[Transfer]:
    """Who pays whom so that every party ends at its net position: debtors in party order pay
    creditors in party order (greedy), at most len(parties) - 1 transfers."""
    if sum(nets.values()) != 0:
        raise ValueError("net positions must sum to zero")
    creditors = [p for p in parties if nets[p] > 0]
    owed = {p: nets[p] for p in creditors}
    transfers = []
    creditor = 0
    for payer in parties:
        debt = -nets[payer]
        while debt > 0:
            payee = creditors[creditor]
            amount = min(debt, owed[payee])
            transfers.append(Transfer(payer, payee, amount))
            debt -= amount
            owed[payee] -= amount
            if owed[payee] == 0:
                creditor += 1
    return transfers


def clear(amount_fen: int, parties: Sequence[Party], conditions: Sequence[Condition],
          values: Mapping[tuple[str, str], float]) -> Clearing:
    """The clearing of one period (see the module docstring for the rules)."""
    if amount_fen < 0:
        raise ValueError("the period's amount must not be negative")
    keys = [p.key for p in parties]
    contributions = dict(zip(keys, split_largest_remainder(
        amount_fen, [p.contribution_share for p in parties]), strict=True))
    allocations = dict(zip(keys, split_largest_remainder(
        amount_fen, [p.allocation_share for p in parties]), strict=True))
    evaluations = evaluate(conditions, values)
    withheld = dict.fromkeys(keys, 0)
    received = dict.fromkeys(keys, 0)
    adjustments: list[Adjustment] = []
    for condition, evaluation in zip(conditions, evaluations, strict=True):
        if evaluation.met:
            continue
        source = condition.party
        taken = min(allocations[source] * condition.portion_bp // WHOLE_BP,
                    allocations[source] - withheld[source])
        if taken <= 0:
            continue
        withheld[source] += taken
        if condition.action == "withhold":
            targets = [(p.key, p.contribution_share) for p in parties]
        else:
            targets = [(r.party, r.share) for r in condition.recipients]
        for (party, _), part in zip(targets, split_largest_remainder(
                taken, [share for _, share in targets]), strict=True):
            if part:
                received[party] += part
                adjustments.append(Adjustment(condition.key, condition.action, source, party,
                                              part))
    positions = []
    for key in keys:
        receives = allocations[key] - withheld[key] + received[key]
        positions.append(Position(key, contributions[key], allocations[key], withheld[key],
                                  received[key], receives, receives - contributions[key]))
    transfers = net_transfers(keys, {p.party: p.net_fen for p in positions})
    return Clearing(amount_fen, tuple(evaluations), tuple(adjustments), tuple(positions),
                    tuple(transfers))
