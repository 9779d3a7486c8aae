"""The invariants of benefit sharing, checked by `ecovalue ledger verify` after the core's."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth import Principal
from ledger import core
from ledger.sharing.models import SharingFund, SharingRun, SharingRunLine, SharingRunSource


def verify(session: Session, actor: Principal) -> list[str]:
    """Every paid run: its lines sum to its amount, every paying line names a transaction, and
    its ledger batch credited exactly the lines' accounts with the lines' amounts; every
    distribution's sources sum to its amount; no inflow is attributed more than it brought."""
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
        if run.status != "paid":
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
        credited: dict[str, int] = defaultdict(int)
        for view in core.load_views(session, tx_ids):
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
        for inflow, total in session.execute(sa.select(
                SharingRunSource.inflow_transaction_id, sa.func.sum(SharingRunSource.amount_fen))
                .where(SharingRunSource.fund_id == fund.id)
                .group_by(SharingRunSource.inflow_transaction_id)):
            if int(total) > brought.get(inflow, 0):
                problems.append(f"sharing fund {fund.account_code}: inflow {inflow} attributed "
                                f"{total} fen, more than the {brought.get(inflow, 0)} it brought")
    return problems
