"""Amount rules, pure: a posting amount is a positive integer that fits a signed 64-bit
column. Floats and numeric strings are refused rather than rounded or truncated: 1.5 and
"1.0" are errors, not 1."""

from __future__ import annotations

from typing import Any

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
    sign = "-" if amount_fen < 0 else ""
    whole, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{whole}.{fen:02d}"
