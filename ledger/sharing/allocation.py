"""Benefit-sharing arithmetic, pure: integer fen in, integer fen out (numpy, no I/O).

The one rounding rule, everywhere an amount is split: **largest remainder to the fen**.
Each part first gets the floor of its exact quota `amount x weight / total weight`; the fen
left over (fewer than the number of parts) go one each to the parts with the largest
remainders, ties broken by position (the earlier part first; callers order parts by a stable
key, e.g. the household's party id). So the parts always sum to the whole, no part is
negative, no part is more than one fen from its exact quota, and the same input gives the
same output.

A rule (`evaluate_rule`) is a tree of parts whose `share_bp` (basis points, 1/10,000) sum to
10,000 at every level; leaves pay a named account, the village collective, or the village's
households by shares (股份), area, trees, members, or equally per household.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ledger import core

#: a whole, in basis points: the shares of the parts of a split sum to this
WHOLE_BP = 10_000
#: what households can be split by (the register's columns), and "equal" (one each)
HOUSEHOLD_BASES = ("shares", "area_m2", "trees", "members", "equal")
#: what the villages of a run can be split by: the register summed per village, or equally
VILLAGE_BASES = ("shares", "area_m2", "trees", "members", "households", "equal")
PART_KINDS = ("account", "collective", "households", "villages", "split")
_INT64_SAFE = 2**62


class RuleError(ValueError):
    """A rule definition that cannot be evaluated; `errors` lists every problem found
    (field paths like `parts.1.share_bp`)."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class AllocationError(ValueError):
    """An amount that cannot be split as asked (no weight to split by, a negative amount)."""


def largest_remainder(amount: int, weights: Sequence[int] | np.ndarray) -> np.ndarray:
    """Split `amount` (integer fen, >= 0) by integer `weights` (>= 0, not all zero when the
    amount is positive): an int64 array of parts summing exactly to `amount`. Ties of the
    remainder go to the earlier position. The house's one helper
    (`ledger.core.largest_remainder`), its refusals as `AllocationError`."""
    try:
        return core.largest_remainder(amount, weights)
    except core.SplitError as exc:
        raise AllocationError(str(exc)) from exc


def split_bp(amount: int, shares_bp: Sequence[int]) -> np.ndarray:
    """`amount` split by basis points that must sum to 10,000 (largest remainder)."""
    if sum(int(s) for s in shares_bp) != WHOLE_BP:
        raise AllocationError(f"shares sum to {sum(shares_bp)} bp, not {WHOLE_BP}")
    return largest_remainder(amount, np.asarray(shares_bp, dtype=np.int64))


# --- rules -------------------------------------------------------------------------------------


def validate_rule(definition: Any) -> list[dict[str, str]]:
    """Every problem of a rule definition (an empty list when it can be evaluated)."""
    problems: list[dict[str, str]] = []

    def err(path: str, message: str) -> None:
        problems.append({"field": path or "definition", "message": message})

    def node(part: Any, path: str, *, in_village: bool, top: bool) -> None:
        if not isinstance(part, Mapping):
            err(path, "a part is an object")
            return
        kind = part.get("kind")
        if kind not in PART_KINDS:
            err(f"{path}kind", f"one of {', '.join(PART_KINDS)}")
            return
        label = part.get("label")
        if label is not None and (not isinstance(label, str) or len(label) > 100):
            err(f"{path}label", "text of at most 100 characters")
        if not top:
            bp = part.get("share_bp")
            if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= WHOLE_BP:
                err(f"{path}share_bp", f"an integer from 0 to {WHOLE_BP} (basis points)")
        if kind == "account":
            code = part.get("account")
            if not isinstance(code, str) or not code.strip():
                err(f"{path}account", "the code of the ledger account this part pays")
        elif kind in ("collective", "households") and not in_village:
            err(f"{path}kind", f"a {kind!r} part belongs inside a 'villages' part "
                               "(which says how the villages of a run share)")
        if kind == "households" and part.get("basis") not in HOUSEHOLD_BASES:
            err(f"{path}basis", f"one of {', '.join(HOUSEHOLD_BASES)}")
        if kind == "villages":
            if in_village:
                err(f"{path}kind", "villages cannot nest inside a village")
            if part.get("basis") not in VILLAGE_BASES:
                err(f"{path}basis", f"one of {', '.join(VILLAGE_BASES)}")
        if kind in ("split", "villages"):
            parts = part.get("parts")
            if not isinstance(parts, list) or not parts:
                err(f"{path}parts", "a non-empty list of parts")
                return
            if len(parts) > 50:
                err(f"{path}parts", "at most 50 parts")
                return
            total = 0
            for i, child in enumerate(parts):
                node(child, f"{path}parts.{i}.", in_village=in_village or kind == "villages",
                     top=False)
                if isinstance(child, Mapping) and isinstance(child.get("share_bp"), int) \
                        and not isinstance(child.get("share_bp"), bool):
                    total += child["share_bp"]
            if total != WHOLE_BP:
                err(f"{path}parts", f"the shares of the parts sum to {total} bp, not "
                                    f"{WHOLE_BP} (the whole)")

    if not isinstance(definition, Mapping):
        err("", "a rule definition is an object")
        return problems
    node(definition, "", in_village=False, top=True)
    if definition.get("kind") not in ("split", "villages"):
        problems.append({"field": "kind", "message": "the top of a rule is a 'split' or a "
                                                     "'villages' part"})
    return problems


@dataclasses.dataclass(frozen=True)
class Village:
    """One village of a run: its collective's party id and its households as of the record
    date, in a stable order (by party id), with their register columns as int64 arrays."""

    collective_party_id: int
    household_party_ids: np.ndarray
    columns: Mapping[str, np.ndarray]

    def weights(self, basis: str) -> np.ndarray:
        if basis == "equal":
            return np.ones(len(self.household_party_ids), dtype=np.int64)
        return np.asarray(self.columns[basis], dtype=np.int64)

    def total(self, basis: str) -> int:
        if basis == "equal":
            return 1
        if basis == "households":
            return len(self.household_party_ids)
        return int(np.asarray(self.columns[basis], dtype=np.int64).sum())


#: one block of an allocation: (kind, targets, village, part label, amounts, weights); the
#: weights (households blocks only, else None) are what the part was split by
Block = tuple[str, Any, int | None, str, np.ndarray, np.ndarray | None]
#: the most cells an attribution matrix may have (households x sources), about 400 MB
MAX_MATRIX_CELLS = 50_000_000


def evaluate_rule(amount: int, definition: Mapping[str, Any],
                  villages: Sequence[Village]) -> list[Block]:
    """Split `amount` fen by the rule among `villages`. Returns blocks
    `(kind, targets, village, part label, amounts, weights)`: kind `account` (targets: one
    code), `collective` (targets: one party id), `households` (targets: an array of party
    ids, amounts and weights arrays of the same length). Every level is a largest-remainder
    split, so the amounts of all blocks sum exactly to `amount`."""
    problems = validate_rule(definition)
    if problems:
        raise RuleError("invalid rule", problems)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise AllocationError(f"the amount must be a non-negative integer of fen, "
                              f"not {amount!r}")
    blocks: list[Block] = []

    def label_of(part: Mapping[str, Any], fallback: str) -> str:
        return str(part.get("label") or fallback)

    def run(part: Mapping[str, Any], value: int, path: str, village: Village | None) -> None:
        kind = part["kind"]
        if kind == "account":
            owner = None if village is None else village.collective_party_id
            blocks.append(("account", part["account"], owner, path,
                           np.array([value], dtype=np.int64), None))
        elif kind == "collective":
            assert village is not None
            blocks.append(("collective", village.collective_party_id,
                           village.collective_party_id, path, np.array([value], dtype=np.int64),
                           None))
        elif kind == "households":
            assert village is not None
            weights = village.weights(part["basis"])
            if value and (len(weights) == 0 or int(weights.sum()) == 0):
                raise AllocationError(
                    f"village {village.collective_party_id} has no household with "
                    f"{part['basis']} to share {value} fen by (rule part {path})")
            blocks.append(("households", village.household_party_ids,
                           village.collective_party_id, path, largest_remainder(value, weights),
                           weights))
        elif kind == "villages":
            basis = part["basis"]
            if not villages:
                raise AllocationError("the run has no village to share among")
            weights = np.array([v.total(basis) for v in villages], dtype=np.int64)
            if value and int(weights.sum()) == 0:
                raise AllocationError(f"no village has any {basis} to share by")
            for v, share in zip(villages, largest_remainder(value, weights), strict=True):
                split(part, int(share), path, v)
        else:
            split(part, value, path, village)

    def split(part: Mapping[str, Any], value: int, path: str, village: Village | None) -> None:
        parts = part["parts"]
        shares = split_bp(value, [p["share_bp"] for p in parts])
        for i, (child, share) in enumerate(zip(parts, shares, strict=True)):
            run(child, int(share), f"{path}/{label_of(child, str(i))}" if path
                else label_of(child, str(i)), village)

    run(definition, amount, "", None)
    return blocks


# --- attribution (traceability) ----------------------------------------------------------------


def attribute(amount: int, remaining: Sequence[int] | np.ndarray) -> np.ndarray:
    """The parts of a distribution of `amount` attributed to the fund's inflows: pro rata to
    what each inflow still has unattributed (`remaining`, in inflow order), largest
    remainder; refused when the inflows do not cover the amount."""
    rem = np.asarray(remaining, dtype=np.int64)
    if amount > int(rem.sum()):
        raise AllocationError(f"the fund's unattributed inflows ({int(rem.sum())} fen) do not "
                              f"cover {amount} fen")
    return largest_remainder(amount, rem)


def attribution_matrix(receipts: Sequence[int] | np.ndarray,
                       sources: Sequence[int] | np.ndarray) -> np.ndarray:
    """Who received what of which source, exact both ways: a (receipts x sources) int64
    matrix whose row i sums to `receipts[i]`, whose column j sums to `sources[j]`, and whose
    every cell is the exact pro-rata `receipts[i] x sources[j] / total` rounded down or up
    (never more than a fen from it). Requires sum(receipts) == sum(sources).

    Each cell starts at the floor of its quota; the fen still missing per row (fewer than
    the number of sources) are then placed column by column (in source order), each column's
    fen to the rows missing the most (ties: the larger fractional remainder, then the earlier
    row). Filling each column from the rows with the largest residual need is Ryser's
    construction, which always completes when a 0/1 completion exists; the fractional parts
    of the quotas are such a completion in [0, 1), so one exists. Same input, same output."""
    a = np.asarray(receipts, dtype=np.int64)
    y = np.asarray(sources, dtype=np.int64)
    total = int(a.sum())
    if total != int(y.sum()):
        raise AllocationError(f"receipts sum to {total} fen but sources to {int(y.sum())}")
    m, k = len(a), len(y)
    if m * k > MAX_MATRIX_CELLS:
        raise AllocationError(f"{m} receipts x {k} sources is more than this query computes "
                              f"at once ({MAX_MATRIX_CELLS:,} cells)")
    if total == 0:
        return np.zeros((m, k), dtype=np.int64)
    if int(a.max(initial=0)) * int(y.max(initial=0)) < _INT64_SAFE:
        product = np.outer(a, y)
        base, remainder = np.divmod(product, total)
    else:
        exact = [[int(ai) * int(yj) for yj in y] for ai in a]
        base = np.array([[e // total for e in row] for row in exact], dtype=np.int64)
        remainder = np.array([[(e % total) * (1 << 20) // total for e in row] for row in exact],
                             dtype=np.int64)
    base = base.astype(np.int64)
    need = a - base.sum(axis=1)
    column_need = y - base.sum(axis=0)
    rows = np.arange(m)
    for j in range(k):
        take = int(column_need[j])
        if take <= 0:
            continue
        order = np.lexsort((rows, -remainder[:, j], -need))
        chosen = order[:take]
        if int(need[chosen].min()) <= 0:  # pragma: no cover - impossible by Ryser's theorem
            raise AllocationError("attribution could not be completed exactly")
        base[chosen, j] += 1
        need[chosen] -= 1
    return base
