"""Benefit-sharing operations, each one unit of work the caller commits:
`op(session, actor, ...)`, authorize first, flush but never commit, audit every change.
Money moves only through `ledger.core` (`post_batch`); the arithmetic is
`ledger.sharing.allocation` (pure)."""

from ledger.sharing.services import (
    config,
    register,
    reversal,
    runs,
    statements,
    totals,
    trace,
)
from ledger.sharing.services.checks import verify

__all__ = ["config", "register", "reversal", "runs", "statements", "totals", "trace", "verify"]
