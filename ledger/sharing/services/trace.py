"""Where every fen went: traceability of pooled money, as a documented rule.

A fund pools the payments of many plants, agreements and carbon sales, and pays many
households; which yuan went where is therefore a rule, not a fact. The rule:

1. **Inflows.** The inflows of a fund are the posted credits of its ledger account
   (`ledger.core.account_inflows`), oldest first (effective date, then transaction id);
   reversals are not inflows, and an inflow that was reversed is left out from then on.
2. **Window and attribution.** When a distribution is paid, its amount is attributed to the
   inflows effective from the run's `window_from` (default: the fund's first inflow) to the
   payment date, pro rata to what each of them still has unattributed to earlier
   distributions, by largest remainder to the fen (ties: the older inflow). This is fixed
   in `sharing_run_sources` at payment and never recomputed.
   A distribution that was reversed (红字冲销) keeps its attribution as history, but it no
   longer counts: its money is back in the fund, unattributed, for a later distribution.
3. **Within a distribution.** Each recipient line's amount is attributed to the run's
   sources by `allocation.attribution_matrix`: every cell is the exact pro-rata
   `line x source / run amount` rounded down or up, rows summing exactly to the line,
   columns exactly to the source's part. The matrix is computed once, when the run is paid,
   and stored (`sharing_run_attributions`); the queries read it (a run paid before it was
   stored has its matrix computed by the same rule when asked).

So for a payment into a fund, the recipients' parts plus what is still undistributed sum
exactly to the payment (a reversed distribution is listed beside them, in `reversed_runs`,
its part counted as undistributed again); for a household's receipt, its sources sum exactly
to the receipt, and a household's net (`received_fen`) is what it was paid less what was
reversed.
A single-tree purchase is paid straight to the households: its source is the buyer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue.auth import Principal, authorize
from ledger import core
from ledger.sharing import allocation, errors
from ledger.sharing.models import (
    SharingFund,
    SharingRun,
    SharingRunAttribution,
    SharingRunLine,
    SharingRunSource,
)
from ledger.sharing.services.register import READER


def counted_sources(fund_id: int) -> sa.Select:
    """(inflow transaction id, fen attributed) of a fund's inflows to its distributions that
    were not reversed."""
    reversed_runs = sa.select(SharingRun.id).where(SharingRun.status == "reversed")
    return sa.select(SharingRunSource.inflow_transaction_id,
                     sa.func.sum(SharingRunSource.amount_fen)) \
        .where(SharingRunSource.fund_id == fund_id,
               SharingRunSource.run_id.not_in(reversed_runs)) \
        .group_by(SharingRunSource.inflow_transaction_id)


def unattributed(session: Session, fund: SharingFund, *, window_from: dt.date | None,
                 date_to: dt.date) -> tuple[list[core.Inflow], np.ndarray]:
    """The fund's inflows in the window (not reversed), and what each still has unattributed."""
    inflows = [i for i in core.account_inflows(session, READER, fund.account_code,
                                               date_from=window_from, date_to=date_to)
               if i.reversed_by_id is None]
    used = dict(session.execute(counted_sources(fund.id)).all())
    remaining = np.array([max(i.amount - int(used.get(i.transaction_id, 0)), 0)
                          for i in inflows], dtype=np.int64)
    return inflows, remaining


@dataclasses.dataclass(frozen=True)
class Receipt:
    """A part of a payment that reached a recipient (or a source that funded a receipt)."""

    run_id: int
    reference: str
    paid_on: dt.date | None
    line_no: int
    kind: str
    party_id: int | None
    name_zh: str | None
    village_party_id: int | None
    account_code: str
    amount_fen: int


def store_attribution(session: Session, run: SharingRun, lines: list[tuple[int, int]],
                      sources: list[tuple[int, int]]) -> None:
    """Compute and store the attribution matrix of a run being paid: `lines` are its
    (line_no, amount_fen) in line order, `sources` its (inflow transaction id, amount_fen).
    A run too large for one matrix (`allocation.MAX_MATRIX_CELLS`) stores none (its queries
    refuse as they would when computing it)."""
    ordered = sorted(sources)
    paying = [(no, amount) for no, amount in lines if amount > 0]
    if len(paying) * len(ordered) > allocation.MAX_MATRIX_CELLS:
        return
    matrix = allocation.attribution_matrix(
        np.array([amount for _, amount in paying], dtype=np.int64),
        np.array([amount for _, amount in ordered], dtype=np.int64))
    full = np.zeros((len(lines), len(ordered)), dtype="<i8")
    if paying:
        full[np.array([no for no, _ in paying], dtype=np.int64) - 1] = matrix
    session.add(SharingRunAttribution(run_id=run.id, source_ids=[i for i, _ in ordered],
                                      line_count=len(lines), matrix=full.tobytes()))


def stored_matrix(session: Session, run_id: int) -> tuple[list[int], np.ndarray] | None:
    """A paid run's stored attribution (source ids, line_count x sources matrix whose row
    line_no - 1 is that line's), or None for a run paid before it was stored."""
    row = session.connection().execute(
        sa.select(SharingRunAttribution.source_ids, SharingRunAttribution.line_count,
                  SharingRunAttribution.matrix)
        .where(SharingRunAttribution.run_id == run_id)).first()
    if row is None:
        return None
    ids = [int(i) for i in row[0]]
    return ids, np.frombuffer(row[2], dtype="<i8").reshape(row[1], len(ids))


def _paying_lines(session: Session, run: SharingRun) -> list[sa.Row]:
    """A run's lines with an amount, in line order, with the recipient's name (Core rows:
    a run may have 100,000 lines)."""
    return list(session.connection().execute(
        sa.select(SharingRunLine.line_no, SharingRunLine.kind, SharingRunLine.party_id,
                  SharingRunLine.village_party_id, SharingRunLine.account_code,
                  SharingRunLine.amount_fen, Party.name_zh)
        .outerjoin(Party, Party.id == SharingRunLine.party_id)
        .where(SharingRunLine.run_id == run.id, SharingRunLine.amount_fen > 0)
        .order_by(SharingRunLine.line_no)).all())


def _run_matrix(session: Session, run: SharingRun, *, stored: bool = True
                ) -> tuple[list[sa.Row], list[int], np.ndarray]:
    """A paid distribution's paying lines, its sources (inflow ids, ascending) and the
    attribution matrix (paying lines x sources): the stored one, or (`stored=False`, or a
    run paid before it was stored) computed from the lines and sources."""
    lines = _paying_lines(session, run)
    kept = stored_matrix(session, run.id) if stored else None
    if kept is not None:
        ids, full = kept
        return lines, ids, full[np.array([ln.line_no for ln in lines], dtype=np.int64) - 1]
    sources = session.execute(
        sa.select(SharingRunSource.inflow_transaction_id, SharingRunSource.amount_fen)
        .where(SharingRunSource.run_id == run.id)
        .order_by(SharingRunSource.inflow_transaction_id)).all()
    matrix = allocation.attribution_matrix(
        np.array([ln.amount_fen for ln in lines], dtype=np.int64),
        np.array([s[1] for s in sources], dtype=np.int64))
    return lines, [int(s[0]) for s in sources], matrix


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    ordered = sorted(i for i in ids if i is not None)
    for start in range(0, len(ordered), 10_000):
        out.update(session.execute(sa.select(Party.id, Party.name_zh).where(
            Party.id.in_(ordered[start:start + 10_000]))).all())
    return out


def _inflow(session: Session, transaction_id: int) -> tuple[SharingFund, core.Inflow] | None:
    for fund in session.scalars(sa.select(SharingFund).order_by(SharingFund.id)):
        found = core.account_inflows(session, READER, fund.account_code,
                                     transaction_ids=[transaction_id])
        if found:
            return fund, found[0]
    return None


def trace_payment(session: Session, actor: Principal | None, transaction_id: int, *,
                  detail: bool) -> dict[str, Any]:
    """Where the fen of a payment went: a payment into a sharing fund (a plant's fee, a
    carbon sale, an instalment) or a single-tree purchase, identified by its ledger
    transaction. In aggregate (public): per village, what its collective and its households
    received, plus named accounts and what is still undistributed in the fund. In detail
    (role-scoped, `sharing.trace.read`; a trader for its own payments): every recipient.
    The parts sum exactly to the payment."""
    if not isinstance(transaction_id, int) or not 0 < transaction_id < 2**63:
        raise errors.InflowNotFound(f"no payment {transaction_id}")
    purchase_line = session.execute(
        sa.select(SharingRunLine.run_id).join(SharingRun, SharingRun.id == SharingRunLine.run_id)
        .where(SharingRunLine.transaction_id == transaction_id,
               SharingRun.kind == "single_tree").limit(1)).first()
    receipts: list[Receipt] = []
    reversals: list[dict[str, Any]] = []
    if purchase_line is not None:
        run = session.get(SharingRun, purchase_line[0])
        assert run is not None
        payers = [run.buyer_party_id] if run.buyer_party_id else []
        if detail:
            authorize(actor, "sharing.trace.read", party=payers)
        amount = run.amount_fen
        kind, fund_code, paid_on = "single_tree", None, run.paid_on
        for bought in session.execute(sa.select(SharingRunLine).where(
                SharingRunLine.run_id == run.id, SharingRunLine.amount_fen > 0)
                .order_by(SharingRunLine.line_no)).scalars():
            receipts.append(Receipt(run.id, run.reference, run.paid_on, bought.line_no,
                                    bought.kind, bought.party_id, None, bought.village_party_id,
                                    bought.account_code, bought.amount_fen))
        undistributed = 0
        memo = run.memo
        payer_accounts = [run.payer_account_code]
    else:
        found = _inflow(session, transaction_id)
        if found is None:
            raise errors.InflowNotFound(f"transaction {transaction_id} paid nothing into a "
                                        "sharing fund and is no single-tree purchase")
        fund, inflow = found
        payers = sorted({party for _, party in inflow.payers})
        if detail:
            authorize(actor, "sharing.trace.read", party=payers)
        amount, kind, fund_code, paid_on = inflow.amount, "fund_inflow", fund.account_code, \
            inflow.effective_date
        memo = inflow.memo
        payer_accounts = [code for code, _ in inflow.payers]
        distributed = 0
        runs = session.scalars(sa.select(SharingRun).join(
            SharingRunSource, SharingRunSource.run_id == SharingRun.id)
            .where(SharingRunSource.inflow_transaction_id == transaction_id,
                   SharingRunSource.fund_id == fund.id).order_by(SharingRun.id)).all()
        for run in runs:
            lines, sources, matrix = _run_matrix(session, run)
            column = matrix[:, sources.index(transaction_id)]
            if run.status == "reversed":  # paid, then paid back: undistributed again
                reversals.append({"run_id": run.id, "reference": run.reference,
                                  "paid_on": run.paid_on, "reversed_on": run.reversed_on,
                                  "amount_fen": int(column.sum()),
                                  **({"reason": run.reversal_reason} if detail else {})})
                continue
            distributed += int(column.sum())
            run_id, reference, paid = run.id, run.reference, run.paid_on
            receipts.extend([
                Receipt(run_id, reference, paid, ln[0], ln[1], ln[2], ln[6], ln[3], ln[4], part)
                for ln, part in zip(lines, column.tolist(), strict=True) if part])
        undistributed = amount - distributed
    names = _names(session, {r.party_id for r in receipts
                             if r.party_id is not None and r.name_zh is None} |
                   {r.village_party_id for r in receipts if r.village_party_id is not None} |
                   set(payers))
    villages: dict[int | None, dict[str, Any]] = {}
    for r in receipts:
        key = r.village_party_id if r.kind != "account" else None
        row = villages.setdefault(key, {
            "village_party_id": key, "village_name_zh": names.get(key) if key else None,
            "collective_fen": 0, "households_fen": 0, "household_count": 0, "accounts_fen": 0})
        if r.kind == "collective":
            row["collective_fen"] += r.amount_fen
        elif r.kind == "household":
            row["households_fen"] += r.amount_fen
            row["household_count"] += 1
        else:
            row["accounts_fen"] += r.amount_fen
    out: dict[str, Any] = {
        "transaction_id": transaction_id, "kind": kind, "fund_account_code": fund_code,
        "effective_date": paid_on, "memo": memo, "amount_fen": amount,
        "payers": [{"party_id": p, "name_zh": names.get(p)} for p in payers],
        "payer_accounts": payer_accounts,
        "distributed_fen": amount - undistributed, "undistributed_fen": undistributed,
        "reversed_runs": reversals,
        "by_village": sorted(villages.values(), key=lambda v: (v["village_party_id"] is None,
                                                               v["village_party_id"] or 0)),
        "rule": "pro rata to unattributed inflows, largest remainder to the fen "
                "(ledger/sharing/README.md, 'Where every fen went')",
    }
    if detail:
        out["recipients"] = [r if r.name_zh is not None else dataclasses.replace(
            r, name_zh=names.get(r.party_id or 0)) for r in receipts]
    return out


def trace_household(session: Session, actor: Principal, household_party_id: int, *,
                    date_from: dt.date | None = None, date_to: dt.date | None = None
                    ) -> dict[str, Any]:
    """Where every fen a household received came from: each paid line of the household, with
    its sources (inflows of the fund, each with its payer; or the buyer of a single-tree
    purchase), each line's sources summing exactly to it. A line of a reversed distribution
    is listed with its reversal (`reversed_on`, `reversal_transaction_id`): between the
    dates, `paid_fen` is the line if it was paid then, `reversed_fen` the line if it was
    reversed then, `net_fen` their difference; `received_fen` and `by_payer` are net."""
    authorize(actor, "sharing.trace.read")
    party = session.get(Party, household_party_id) if isinstance(household_party_id, int) \
        and 0 < household_party_id < 2**63 else None
    if party is None:
        raise errors.UnknownHousehold(f"no party {household_party_id}")
    stmt = sa.select(SharingRunLine, SharingRun).join(
        SharingRun, SharingRun.id == SharingRunLine.run_id).where(
        SharingRunLine.party_id == party.id, SharingRunLine.kind != "account",
        SharingRun.status.in_(("paid", "reversed")), SharingRunLine.amount_fen > 0)

    def within(column: Any) -> Any:
        return sa.and_(column.is_not(None),
                       *([column >= date_from] if date_from is not None else []),
                       *([column <= date_to] if date_to is not None else []))

    if date_from is not None or date_to is not None:
        stmt = stmt.where(sa.or_(within(SharingRun.paid_on), within(SharingRun.reversed_on)))
    rows = session.execute(stmt.order_by(SharingRun.paid_on, SharingRun.id,
                                         SharingRunLine.line_no)).all()
    receipts: list[dict[str, Any]] = []
    inflow_cache: dict[int, core.Inflow] = {}
    party_ids: set[int] = set()
    for line, run in rows:
        sources: list[dict[str, Any]] = []
        if run.kind == "single_tree":
            sources.append({"kind": "single_tree_buyer", "transaction_id": line.transaction_id,
                            "payer_party_id": run.buyer_party_id, "payer_accounts":
                            [run.payer_account_code], "effective_date": run.paid_on,
                            "memo": run.memo, "amount_fen": line.amount_fen})
            party_ids.add(run.buyer_party_id or 0)
        else:
            kept = stored_matrix(session, run.id)
            if kept is not None:  # the one row of the household's line
                source_ids, row = kept[0], kept[1][line.line_no - 1]
            else:
                lines, source_ids, matrix = _run_matrix(session, run)
                row = matrix[next(i for i, ln in enumerate(lines)
                                  if ln.line_no == line.line_no)]
            fund = session.get(SharingFund, run.fund_id)
            assert fund is not None
            missing = [s for s in source_ids if s not in inflow_cache]
            if missing:
                inflow_cache.update((i.transaction_id, i) for i in core.account_inflows(
                    session, READER, fund.account_code, transaction_ids=missing))
            for source_id, part in zip(source_ids, row.tolist(), strict=True):
                if part:
                    inflow = inflow_cache[source_id]
                    payer_parties = sorted({p for _, p in inflow.payers})
                    party_ids.update(payer_parties)
                    sources.append({
                        "kind": "fund_inflow", "transaction_id": source_id,
                        "payer_party_id": payer_parties[0] if payer_parties else None,
                        "payer_accounts": [c for c, _ in inflow.payers],
                        "effective_date": inflow.effective_date, "memo": inflow.memo,
                        "amount_fen": part})
        paid = line.amount_fen if _between(run.paid_on, date_from, date_to) else 0
        reversed_fen = line.amount_fen if run.status == "reversed" and \
            _between(run.reversed_on, date_from, date_to) else 0
        reversal_of = dict(map(tuple, run.reversal_transaction_ids or []))
        receipts.append({"run_id": run.id, "reference": run.reference, "kind": run.kind,
                         "paid_on": run.paid_on, "line_no": line.line_no,
                         "village_party_id": line.village_party_id,
                         "transaction_id": line.transaction_id, "amount_fen": line.amount_fen,
                         "status": run.status, "reversed_on": run.reversed_on,
                         "reversal_transaction_id": reversal_of.get(line.transaction_id),
                         "reversal_reason": run.reversal_reason, "paid_fen": paid,
                         "reversed_fen": reversed_fen, "net_fen": paid - reversed_fen,
                         "sources": sources})
    names = _names(session, party_ids)
    by_payer: dict[int | None, int] = defaultdict(int)
    for receipt in receipts:
        # -1, 0 or 1: a reversal pays each source back exactly what it funded
        sign = receipt["net_fen"] // receipt["amount_fen"]
        for source in receipt["sources"]:
            source["payer_name_zh"] = names.get(source["payer_party_id"] or 0)
            by_payer[source["payer_party_id"]] += sign * source["amount_fen"]
    return {"household_party_id": party.id, "name_zh": party.name_zh,
            "received_fen": sum(r["net_fen"] for r in receipts),
            "paid_fen": sum(r["paid_fen"] for r in receipts),
            "reversed_fen": sum(r["reversed_fen"] for r in receipts), "receipts": receipts,
            "by_payer": [{"payer_party_id": p, "payer_name_zh": names.get(p or 0),
                          "amount_fen": v} for p, v in sorted(by_payer.items(),
                                                              key=lambda kv: kv[0] or 0)]}


def _between(day: dt.date | None, date_from: dt.date | None, date_to: dt.date | None) -> bool:
    return day is not None and (date_from is None or day >= date_from) and \
        (date_to is None or day <= date_to)


def run_sources(session: Session, run_id: int) -> dict[str, Any]:
    """What funded a paid distribution, in aggregate (public): its sources with their payers."""
    from ledger.sharing.services.runs import get_run

    run = get_run(session, run_id)
    out: dict[str, Any] = {"run_id": run.id, "reference": run.reference, "kind": run.kind,
                           "status": run.status, "amount_fen": run.amount_fen,
                           "paid_on": run.paid_on, "sources": []}
    if run.status not in ("paid", "reversed"):  # a reversed run lists what had funded it
        return out
    if run.kind == "single_tree":
        names = _names(session, {run.buyer_party_id or 0})
        out["sources"] = [{"transaction_id": None, "payer_party_id": run.buyer_party_id,
                           "payer_name_zh": names.get(run.buyer_party_id or 0),
                           "effective_date": run.paid_on, "amount_fen": run.amount_fen}]
        return out
    fund = session.get(SharingFund, run.fund_id)
    assert fund is not None
    parts = dict(session.execute(sa.select(SharingRunSource.inflow_transaction_id,
                                           SharingRunSource.amount_fen)
                                 .where(SharingRunSource.run_id == run.id)).all())
    inflows = core.account_inflows(session, READER, fund.account_code,
                                   transaction_ids=list(parts))
    names = _names(session, {p for i in inflows for _, p in i.payers})
    for inflow in inflows:
        payer = sorted({p for _, p in inflow.payers})
        out["sources"].append({
            "transaction_id": inflow.transaction_id,
            "payer_party_id": payer[0] if payer else None,
            "payer_name_zh": names.get(payer[0]) if payer else None,
            "effective_date": inflow.effective_date,
            "amount_fen": int(parts[inflow.transaction_id])})
    return out


def fund_inflows(session: Session, actor: Principal, fund_code: str, *,
                 date_from: dt.date | None = None, date_to: dt.date | None = None
                 ) -> list[dict[str, Any]]:
    """The payments into a sharing fund (oldest first), each with its payer and how much of
    it is already attributed to distributions."""
    from ledger.sharing.services.config import get_fund

    authorize(actor, "sharing.read")
    fund = get_fund(session, fund_code)
    used = dict(session.execute(counted_sources(fund.id)).all())
    inflows = core.account_inflows(session, READER, fund.account_code, date_from=date_from,
                                   date_to=date_to)
    names = _names(session, {p for i in inflows for _, p in i.payers})
    out = []
    for i in inflows:
        payer = sorted({p for _, p in i.payers})
        attributed = int(used.get(i.transaction_id) or 0)
        out.append({"transaction_id": i.transaction_id, "effective_date": i.effective_date,
                    "type": i.type, "memo": i.memo, "amount_fen": i.amount,
                    "payer_party_id": payer[0] if payer else None,
                    "payer_name_zh": names.get(payer[0]) if payer else None,
                    "payer_accounts": [c for c, _ in i.payers], "attributed_fen": attributed,
                    "unattributed_fen": 0 if i.reversed_by_id else i.amount - attributed,
                    "reversed_by_id": i.reversed_by_id})
    return out
