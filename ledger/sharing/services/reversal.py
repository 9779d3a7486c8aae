"""Reversing a paid distribution (红字冲销, red-ink reversal).

A paid distribution cannot be changed (ledger transactions are immutable); a wrong one is
reversed: every transaction of the batch that paid it is reversed through
`ledger.core.reverse_transaction` (its mirror image: each household, collective and named
account is debited what it received, the fund credited back), all in the caller's one unit
of work, so that either every transaction is reversed or none is (a recipient that no longer
holds what it received refuses the whole reversal: `409 insufficient-balance`, nothing
written). The reversal is dated today (Asia/Shanghai) in an open period.

- Who: the finance bureau or an admin, never whoever prepared the run (four eyes, 403).
- What can be reversed: a paid distribution; anything else is `409
  sharing-run-not-reversible` (a prepared or cancelled run paid nothing; a single-tree
  purchase is the buyer's payment, refunded by a transaction of its own, not reversed here).
- Twice: reversing a reversed run returns it unchanged (it pays back once).
- Attribution: the run's attribution to the fund's inflows (`sharing_run_sources`) is kept as
  history but no longer counts: the inflows' money is back in the fund, unattributed, for a
  later distribution; the fund's `attributed_fen` drops by the run's amount.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.clock import local_date, utcnow
from ecovalue.errors import ValidationFailed
from ledger import core
from ledger.sharing import errors
from ledger.sharing.models import SharingFund
from ledger.sharing.services.runs import RunResult, get_run, prepared_by

ACTION = "sharing.run.reverse"
MAX_REASON = 500


def _reason(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON:
        raise ValidationFailed("a reversal needs a reason", errors=[
            {"location": "json", "field": "reason",
             "message": f"required, 1 to {MAX_REASON} characters"}])
    return text


def reverse_run(session: Session, actor: Principal, run_id: int, *, reason: str,
                now: dt.datetime | None = None) -> RunResult:
    """Reverse every ledger transaction of a paid distribution, all or none, and mark the run
    `reversed` (see the module docstring). A reversed run is returned unchanged
    (`replayed`)."""
    now = now or utcnow()
    authorize(actor, ACTION)
    text = _reason(reason)
    run = get_run(session, run_id, lock=True)
    if run.status == "reversed":
        return RunResult(run, replayed=True)
    if run.kind != "distribution" or run.status != "paid":
        what = "a single-tree purchase (the buyer's payment)" if run.kind != "distribution" \
            else f"{run.status}, not paid"
        raise errors.RunNotReversible(f"run {run.id} is {what}: only a paid distribution can "
                                      "be reversed", status=run.status)
    if prepared_by(run, actor):
        raise errors.OwnRunReversal(f"run {run.id} was prepared by {run.prepared_by}: another "
                                    "finance officer reverses it")
    assert run.ledger_batch_id is not None and run.fund_id is not None
    fund = session.scalar(sa.select(SharingFund).where(SharingFund.id == run.fund_id)
                          .with_for_update())
    assert fund is not None
    today = local_date(now)
    _, tx_ids = core.get_batch(session, actor, run.ledger_batch_id)
    pairs = []
    for tx_id in tx_ids:
        reversal = core.reverse_transaction(
            session, actor, tx_id, effective_date=today, now=now,
            memo=f"{run.reference} 红字冲销 reversal of the distribution: {text}"[:500])
        pairs.append([tx_id, reversal.id])
    before = audit.snapshot(run)
    fund.attributed_fen -= run.amount_fen
    run.status, run.reversed_by, run.reversed_at, run.reversed_on = \
        "reversed", actor.label, now, today
    run.reversal_reason, run.reversal_transaction_ids = text, pairs
    session.flush()
    audit.record(session, actor, ACTION, "sharing_run", run.id, before=before,
                 after=audit.snapshot(run))
    return RunResult(run)
