"""What benefit sharing paid over some days, per fund (or tree programme) and village: the
finance bureau's period reports read it here rather than from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue.auth import Principal, authorize
from ledger.sharing.models import SharingFund, SharingRun, SharingRunLine, SharingTreeProgramme


def paid_by_village(session: Session, actor: Principal, *, date_from: dt.date,
                    date_to: dt.date) -> list[dict[str, Any]]:
    """Runs paid on the days given (`paid_on`), per run kind, fund or programme and village
    (None: parts paid to named accounts): runs, households paid (distinct, a line above
    zero), fen to households, to the village collective and to named accounts. A
    distribution reversed (红字冲销) on the days given (`reversed_on`) adds negative rows
    (`reversal` true: every count and amount negated), so that a month's rows net what the
    month moved: a run paid and reversed in the same month nets to zero. Ordered by kind,
    fund or programme, village, then paid before reversed."""
    authorize(actor, "sharing.read")
    paid = _rows(session, SharingRun.paid_on, ("paid", "reversed"), date_from, date_to, 1)
    reversed_ = _rows(session, SharingRun.reversed_on, ("reversed",), date_from, date_to, -1)
    return sorted(paid + reversed_, key=lambda r: (
        r["kind"], r["fund_or_programme"] or "", r["village_party_id"] is None,
        r["village_party_id"] or 0, r["reversal"]))


def _rows(session: Session, day: Any, statuses: tuple[str, ...], date_from: dt.date,
          date_to: dt.date, sign: int) -> list[dict[str, Any]]:
    source = sa.func.coalesce(SharingFund.account_code, SharingTreeProgramme.code)
    name = sa.func.coalesce(SharingFund.name_zh, SharingTreeProgramme.name_zh)
    key = (SharingRun.kind, source, name, SharingRunLine.village_party_id, Party.name_zh)
    paid_household = sa.case((sa.and_(SharingRunLine.kind == "household",
                                      SharingRunLine.amount_fen > 0), SharingRunLine.party_id))
    stmt = sa.select(
        *key, sa.func.count(sa.distinct(SharingRun.id)), sa.func.count(sa.distinct(paid_household)),
        *(sa.func.coalesce(sa.func.sum(sa.case((SharingRunLine.kind == kind,
                                                SharingRunLine.amount_fen), else_=0)), 0)
          for kind in ("household", "collective", "account"))) \
        .join(SharingRunLine, SharingRunLine.run_id == SharingRun.id) \
        .outerjoin(SharingFund, SharingFund.id == SharingRun.fund_id) \
        .outerjoin(SharingTreeProgramme, SharingTreeProgramme.id == SharingRun.programme_id) \
        .outerjoin(Party, Party.id == SharingRunLine.village_party_id) \
        .where(SharingRun.status.in_(statuses), day >= date_from, day <= date_to) \
        .group_by(*key).order_by(*key)
    out = []
    for row in session.execute(stmt):
        values: Any = tuple(row)
        (kind, code, fund_name, village, village_name, runs, households, to_households,
         to_collective, to_accounts) = values
        out.append({"kind": kind, "fund_or_programme": code, "name_zh": fund_name,
                    "village_party_id": village, "village_name_zh": village_name,
                    "runs": sign * int(runs), "households": sign * int(households),
                    "households_fen": sign * int(to_households),
                    "collective_fen": sign * int(to_collective),
                    "accounts_fen": sign * int(to_accounts), "reversal": sign < 0})
    return out
