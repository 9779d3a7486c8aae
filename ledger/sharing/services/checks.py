"""The invariants of benefit sharing, checked by `ecovalue ledger verify` after the core's."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth import Principal
from ledger import core
from ledger.sharing.models import SharingFund, SharingRun, SharingRunLine, SharingRunSource
from ledger.sharing.services.trace import counted_sources


def verify(session: Session, actor: Principal) -> list[str]:
    """Every paid (or reversed) run: its lines sum to its amount, every paying line names a
    transaction, and its ledger batch credited exactly the lines' accounts with the lines'
    amounts; every distribution's sources sum to its amount; a reversed run's every batch
    transaction is reversed in the ledger by the reversal the run records, and a paid run's
    by none; no inflow is attributed more than it brought (by runs not reversed)."""
    problems: list[str] = []
    sums = dict(session.execute(sa.select(SharingRunLine.run_id, sa.func.sum(
        SharingRunLine.amount_fen)).group_by(SharingRunLine.run_id)).all())
    unpaid = dict(session.execute(sa.select(SharingRunLine.run_id, sa.func.count()).where(
        SharingRunLine.amount_fen > 0, SharingRunLine.transaction_id.is_(None))
        .group_by(SharingRunLine.run_id)).all())
    sources = dict(session.execute(sa.select(SharingRunSource.run_id, sa.func.sum(
        SharingRunSource.amount_fen)).group_by(SharingRunSource.run_id)).all())
    for run in session.scalars(sa.select(SharingRun).order_by(SharingRun.id)):
        if int(sums.get(run.id) or 0) != run.amount_fen:
            problems.append(f"sharing run {run.id}: lines sum to {sums.get(run.id)}, not "
                            f"{run.amount_fen}")
        if run.status not in ("paid", "reversed"):
            continue
        if unpaid.get(run.id):
            problems.append(f"sharing run {run.id}: {unpaid[run.id]} paying lines without a "
                            "transaction")
        if run.kind == "distribution" and int(sources.get(run.id) or 0) != run.amount_fen:
            problems.append(f"sharing run {run.id}: sources sum to {sources.get(run.id)}, not "
                            f"{run.amount_fen}")
        if run.ledger_batch_id is None:
            problems.append(f"sharing run {run.id}: paid without a ledger batch")
            continue
        _, tx_ids = core.get_batch(session, actor, run.ledger_batch_id)
        views = core.load_views(session, tx_ids)
        recorded = {int(a): int(b) for a, b in run.reversal_transaction_ids or []}
        if run.status == "reversed" and recorded != {v.id: v.reversed_by_id for v in views}:
            problems.append(f"sharing run {run.id}: reversed, but its ledger transactions "
                            f"{tx_ids} are not all reversed by the reversals it records")
        if run.status == "paid" and (recorded or any(v.reversed_by_id for v in views)):
            problems.append(f"sharing run {run.id}: paid, but a transaction of its batch was "
                            "reversed in the ledger")
        credited: dict[str, int] = defaultdict(int)
        for view in views:
            for p in view.postings:
                if p.direction == "credit":
                    credited[p.account_code] += p.amount
        expected: dict[str, int] = defaultdict(int)
        for code, amount in session.execute(sa.select(
                SharingRunLine.account_code, SharingRunLine.amount_fen).where(
                SharingRunLine.run_id == run.id, SharingRunLine.amount_fen > 0)):
            expected[code] += amount
        if dict(credited) != dict(expected):
            problems.append(f"sharing run {run.id}: ledger batch {run.ledger_batch_id} does "
                            "not credit the run's lines")
    for fund in session.scalars(sa.select(SharingFund)):
        brought = {i.transaction_id: i.amount for i in core.account_inflows(
            session, actor, fund.account_code)}
        rows: list[Any] = list(session.execute(counted_sources(fund.id)).all())
        used = {int(i): int(t) for i, t in rows}
        for inflow, total in used.items():
            if total > brought.get(inflow, 0):
                problems.append(f"sharing fund {fund.account_code}: inflow {inflow} attributed "
                                f"{total} fen, more than the {brought.get(inflow, 0)} it brought")
    return problems
