"""The pilot's invariants, run by `ecovalue ledger verify` (LEDGER_VERIFY_CHECKS) after the
core's and the registry's: each obligation's settled totals equal its settlements and never
exceed it; each retirement settlement is a registry retirement of the same plant, tonnes,
compliance year and reason naming the obligation; each fee settlement is a posted ledger
transaction of type pilot.fee moving exactly its amount into the year's fund."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth import Principal, authorize
from ecovalue.errors import NotFound
from ledger import core as ledger
from ledger.carbon.models import CarbonRetirement
from ledger.pilot.models import PilotObligation, PilotRule, PilotSettlement


def verify(session: Session, actor: Principal) -> list[str]:
    """The problems found (empty when every pilot record agrees with the ledger and registry)."""
    authorize(actor, "ledger.read")
    problems: list[str] = []
    totals: dict[int, dict[str, int]] = defaultdict(lambda: {"retirement": 0, "fee": 0,
                                                             "fen": 0})
    settlements = list(session.scalars(sa.select(PilotSettlement).order_by(PilotSettlement.id)))
    obligations = {o.id: o for o in session.scalars(sa.select(PilotObligation))}
    funds = {r.id: r.fund_account_code for r in session.scalars(sa.select(PilotRule))}
    retirements = {r.certificate_number: r for r in session.scalars(sa.select(
        CarbonRetirement).where(CarbonRetirement.certificate_number.in_(
        [s.certificate_number for s in settlements if s.certificate_number])))}
    for s in settlements:
        obligation = obligations[s.obligation_id]
        totals[s.obligation_id][s.kind] += s.quantity_t
        totals[s.obligation_id]["fen"] += s.amount_fen
        where = f"pilot settlement {s.id} ({obligation.code})"
        if s.kind == "retirement":
            retired = retirements.get(s.certificate_number or "")
            if retired is None:
                problems.append(f"{where}: no registry retirement {s.certificate_number}")
            elif (retired.party_id, retired.quantity_t, retired.compliance_year,
                  retired.reason) != (obligation.plant_party_id, s.quantity_t,
                                      obligation.year, f"pilot obligation {obligation.code}"):
                problems.append(f"{where}: registry retirement {s.certificate_number} differs")
            continue
        try:
            tx = ledger.get_transaction(session, actor, s.ledger_transaction_id)
        except NotFound:
            problems.append(f"{where}: no ledger transaction {s.ledger_transaction_id}")
            continue
        fund = funds[obligation.rule_id]
        credited = sum(p.amount for p in tx.postings
                       if p.direction == "credit" and p.account_code == fund)
        if tx.type != "pilot.fee" or tx.status != "posted" or credited != s.amount_fen:
            problems.append(f"{where}: ledger transaction {tx.id} does not pay "
                            f"{s.amount_fen} fen into {fund}")
        elif tx.reversed_by_id is not None:
            problems.append(f"{where}: its fee payment {tx.id} was reversed by "
                            f"{tx.reversed_by_id}; the obligation still counts it")
    for obligation in obligations.values():
        got = totals[obligation.id]
        if (got["retirement"], got["fee"], got["fen"]) != (
                obligation.retired_t, obligation.fee_t, obligation.paid_fen):
            problems.append(f"pilot obligation {obligation.code}: settled totals "
                            f"{obligation.retired_t} t retired, {obligation.fee_t} t fee, "
                            f"{obligation.paid_fen} fen differ from its settlements")
        if obligation.retired_t + obligation.fee_t > obligation.obligation_t:
            problems.append(f"pilot obligation {obligation.code}: settled beyond its tonnes")
    return problems
