"""Amount rules, pure: a posting amount is a positive integer that fits a signed 64-bit
column. Floats and numeric strings are refused rather than rounded or truncated: 1.5 and
"1.0" are errors, not 1.

`largest_remainder` is the house's one rule for splitting an amount into parts (dividends,
compensation shares, instalments, attribution): used by benefit sharing and compensation,
and by any floor above that splits money or credits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecovalue import printable
from ecovalue.db import INT64_MAX

#: the largest amount, and the largest running total, a 64-bit signed column holds
MAX_AMOUNT = INT64_MAX


def amount_problem(value: Any) -> str | None:
    """Why `value` is not a valid posting amount, or None if it is."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer in the asset's smallest unit (got {type(value).__name__})"
    if value <= 0:
        return "must be greater than zero"
    if value > MAX_AMOUNT:
        return f"must not exceed {MAX_AMOUNT} (64-bit range)"
    return None


def signed_problem(value: Any) -> str | None:
    """Why `value` is not a valid signed 64-bit integer (expected balances), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer (got {type(value).__name__})"
    if not -MAX_AMOUNT - 1 <= value <= MAX_AMOUNT:
        return "must fit a signed 64-bit integer"
    return None


def yuan_text(amount_fen: int) -> str:
    """Exact decimal rendering of fen as yuan: 123456 -> '1234.56', -5 -> '-0.05'."""
    return printable.yuan(amount_fen)


#: products below this stay exact in int64 (the vectorised path); beyond, Python integers
_INT64_SAFE = 2**62


class SplitError(ValueError):
    """An amount that cannot be split as asked (negative, no weight to split by, not an
    integer)."""


def largest_remainder(amount: int, weights: Sequence[int] | np.ndarray) -> np.ndarray:
    """Split `amount` (an integer >= 0 in the asset's smallest unit) by integer `weights`
    (>= 0, not all zero when the amount is positive) into an int64 array of parts that sum
    exactly to `amount`.

    Each part first gets the floor of its exact quota `amount x weight / sum(weights)`; the
    units left over (fewer than the number of parts) go one each to the parts with the
    largest remainders, equal remainders to the earlier position. So no part is negative,
    none is a unit or more from its exact quota, a zero weight gets nothing, and the same
    input gives the same output. Exact beyond 64 bits (Python integers there).

        largest_remainder(100, [1, 1, 1]) -> [34, 33, 33]    (the tie goes to the first)
        largest_remainder(7, [3, 4, 3])   -> [2, 3, 2]       (quotas 2.1, 2.8, 2.1)
    """
    if isinstance(amount, bool) or not isinstance(amount, int | np.integer):
        raise SplitError(f"the amount must be an integer number of fen, not {amount!r}")
    amount = int(amount)
    w = np.asarray(weights)
    if w.dtype.kind == "f" and len(w):
        raise SplitError("weights must be integers (exact), not floats")
    if amount < 0:
        raise SplitError(f"a negative amount ({amount} fen) cannot be shared out")
    n = len(w)
    if n == 0:
        if amount:
            raise SplitError("there is nothing to share the amount among")
        return np.zeros(0, dtype=np.int64)
    if w.dtype == object:
        w = np.array([int(x) for x in w], dtype=object)
    if (w < 0).any():
        raise SplitError("a weight is negative")
    total = int(w.sum())
    if total == 0:
        if amount:
            raise SplitError("every weight is zero: nothing to split the amount by")
        return np.zeros(n, dtype=np.int64)
    if w.dtype != object and amount * int(w.max()) < _INT64_SAFE and total < _INT64_SAFE:
        base, remainder = np.divmod(w.astype(np.int64) * amount, total)
        left = amount - int(base.sum())
        if left:  # largest remainder first; equal remainders: the earlier position first
            order = np.lexsort((np.arange(n), -remainder))
            base[order[:left]] += 1
        return base.astype(np.int64)
    quotas = [divmod(int(x) * amount, total) for x in w]
    parts = [q for q, _ in quotas]
    left = amount - sum(parts)
    for i in sorted(range(n), key=lambda i: (-quotas[i][1], i))[:left]:
        parts[i] += 1
    return np.array(parts, dtype=np.int64)
