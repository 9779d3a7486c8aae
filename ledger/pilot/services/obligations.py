"""Obligations and their settlement.

An obligation is fixed when a plant's report is verified: verified emissions x the year's
share, rounded once, half up (`ledger.pilot.emissions.obligation_t`), with the rule's fee and
deadline copied. A plant settles it, in one request and one database transaction, by

- retiring eligible credits it holds: through the carbon registry's retirement service, so
  the registry records the retirement (purpose `thermal_power_pilot`, the compliance year,
  the plant as beneficiary, the obligation's code as the reason) and a public certificate
  exists; eligible means a batch of a project in the rule's region, of one of its
  methodologies, of a vintage inside its window;
- paying the fee for some tonnes into the forest compensation fund: one ledger transaction
  (`ledger.core.post`) from the plant's CNY account to the fund account;
- or both. Ineligible credits, another plant's obligation or account, more tonnes than are
  open: refused whole (nothing of the request stays: the caller rolls the unit of work back).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import NotFound, ValidationFailed
from ledger import core as ledger
from ledger.carbon.models import CarbonBatch, CarbonProject
from ledger.carbon.services import credits
from ledger.pilot import emissions, errors
from ledger.pilot.models import (
    PilotEmissionReport,
    PilotObligation,
    PilotRule,
    PilotSettlement,
)
from ledger.pilot.services.common import JURISDICTION, fetch, now_and_today, readable

MAX_PARTS = 50
MAX_TONNES = 10**12


def obligation_code(year: int, plant_party_id: int) -> str:
    return f"PO-{year}-{plant_party_id}"


def open_obligation(session: Session, actor: Principal, report: PilotEmissionReport,
                    rule: PilotRule, *, now: dt.datetime | None = None) -> PilotObligation:
    """The obligation of a verified report under `rule` (called by verification and by
    setting a rule; no authorization of its own)."""
    now, _ = now_and_today(now)
    obligation = PilotObligation(
        code=obligation_code(report.year, report.plant_party_id),
        plant_party_id=report.plant_party_id, year=report.year, report_id=report.id,
        rule_id=rule.id, emissions_tco2=report.emissions_tco2, share_bp=rule.share_bp,
        obligation_t=emissions.obligation_t(report.emissions_tco2, rule.share_bp),
        fee_fen_per_tco2=rule.fee_fen_per_tco2, settlement_deadline=rule.settlement_deadline,
        retired_t=0, fee_t=0, paid_fen=0, created_at=now)
    if obligation.obligation_t == 0:
        obligation.settled_on = local_today_of(now)
    session.add(obligation)
    session.flush()
    audit.record(session, actor, "pilot.obligation.create", "pilot_obligation", obligation.id,
                 after=audit.snapshot(obligation))
    return obligation


def local_today_of(now: dt.datetime) -> dt.date:
    return now_and_today(now)[1]


def open_pending(session: Session, actor: Principal, rule: PilotRule, *,
                 now: dt.datetime | None = None) -> list[PilotObligation]:
    """Obligations for the year's verified reports that have none yet."""
    reports = session.scalars(sa.select(PilotEmissionReport).where(
        PilotEmissionReport.year == rule.year, PilotEmissionReport.status == "verified",
        ~sa.exists().where(PilotObligation.report_id == PilotEmissionReport.id)).order_by(
        PilotEmissionReport.id)).all()
    return [open_obligation(session, actor, r, rule, now=now) for r in reports]


def get_obligation(session: Session, actor: Principal, obligation_id: int) -> PilotObligation:
    """An obligation; a plant reads only its own."""
    scope = readable(actor)
    if scope.nothing:
        authorize(actor, "pilot.read")
    obligation = fetch(session, PilotObligation, obligation_id)
    if obligation is None:
        raise errors.ObligationNotFound(f"no pilot obligation {obligation_id}")
    if scope.party is not None and obligation.plant_party_id != scope.party:
        raise errors.NotYourObligation(f"obligation {obligation.code} is another plant's")
    return obligation


def list_obligations(session: Session, actor: Principal, *, year: int | None = None,
                     plant_party_id: int | None = None) -> sa.Select:
    scope = readable(actor)
    if scope.nothing:
        authorize(actor, "pilot.read")
    stmt = sa.select(PilotObligation).where(
        scope.condition(party=PilotObligation.plant_party_id))
    if year is not None:
        stmt = stmt.where(PilotObligation.year == year)
    if plant_party_id is not None:
        stmt = stmt.where(PilotObligation.plant_party_id == plant_party_id)
    return stmt.order_by(PilotObligation.year, PilotObligation.id)


def settlements_of(session: Session, obligation_ids: Sequence[int]) -> list[PilotSettlement]:
    if not obligation_ids:
        return []
    return list(session.scalars(sa.select(PilotSettlement).where(
        PilotSettlement.obligation_id.in_(obligation_ids)).order_by(PilotSettlement.id)))


def status_of(obligation: PilotObligation, today: dt.date) -> str:
    """open (nothing settled), partially_settled, settled, or overdue (tonnes still open
    after the settlement deadline)."""
    remaining = obligation.obligation_t - obligation.retired_t - obligation.fee_t
    if remaining == 0:
        return "settled"
    if today > obligation.settlement_deadline:
        return "overdue"
    return "open" if obligation.retired_t + obligation.fee_t == 0 else "partially_settled"


def obligation_view(session: Session, obligation: PilotObligation, *,
                    today: dt.date | None = None,
                    settlements: list[PilotSettlement] | None = None) -> dict[str, Any]:
    today = today or now_and_today(None)[1]
    where = emissions.position(obligation.obligation_t, obligation.retired_t, obligation.fee_t,
                               obligation.fee_fen_per_tco2)
    plant = session.get(Party, obligation.plant_party_id)
    parts = settlements if settlements is not None else settlements_of(session, [obligation.id])
    return {
        "id": obligation.id, "code": obligation.code, "year": obligation.year,
        "plant": {"id": obligation.plant_party_id, "name_zh": plant.name_zh if plant else None,
                  "name_en": plant.name_en if plant else None},
        "report_id": obligation.report_id, "emissions_tco2": obligation.emissions_tco2,
        "share_bp": obligation.share_bp, "obligation_t": obligation.obligation_t,
        "fee_fen_per_tco2": obligation.fee_fen_per_tco2,
        "settlement_deadline": obligation.settlement_deadline,
        "retired_t": where.retired_t, "fee_t": where.fee_t, "paid_fen": where.paid_fen,
        "shortfall_t": where.shortfall_t, "shortfall_fen": where.shortfall_fen,
        "status": status_of(obligation, today), "settled_on": obligation.settled_on,
        "late": obligation.settled_on is not None
        and obligation.settled_on > obligation.settlement_deadline,
        "settlements": [settlement_view(s) for s in parts],
    }


def settlement_view(s: PilotSettlement) -> dict[str, Any]:
    return {"id": s.id, "kind": s.kind, "quantity_t": s.quantity_t, "amount_fen": s.amount_fen,
            "from_account": s.from_account_code, "batch": s.batch_asset_code,
            "vintage_year": s.vintage_year, "certificate_number": s.certificate_number,
            "certificate_url": f"/carbon/public/certificates/{s.certificate_number}"
            if s.certificate_number else None,
            "ledger_transaction_id": s.ledger_transaction_id, "settled_on": s.settled_on,
            "settled_at": s.settled_at, "settled_by": s.settled_by}


# --- settlement ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RetirementPart:
    """Credits to retire against the obligation: a carbon account (id or code) and a
    quantity, or an exact serial block it holds."""

    account: int | str
    quantity_t: int | None = None
    serial_block: str | None = None


def _locked(session: Session, obligation_id: int) -> PilotObligation | None:
    """The obligation, its row locked (PostgreSQL; SQLite's writer holds the database), read
    fresh: concurrent settlements of one obligation queue here."""
    if isinstance(obligation_id, bool) or not isinstance(obligation_id, int) \
            or not 0 < obligation_id < 2**63:
        return None
    return session.scalar(sa.select(PilotObligation).where(
        PilotObligation.id == obligation_id).with_for_update().execution_options(
        populate_existing=True))


def region_prefix(code: str) -> str:
    """The prefix of the county codes inside a region: 522300 (a prefecture) -> 5223,
    520000 (a province) -> 52, 522326 (a county) -> 522326."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def _eligibility(session: Session, rule: PilotRule, index: int,
                 account: credits.Account) -> list[dict[str, Any]]:
    """Why `account`'s credits may not settle an obligation under `rule` (empty if they may)."""
    field = f"retirements.{index}.account"
    problems = []

    def bad(message: str) -> None:
        problems.append({"location": "json", "field": field, "message": message})

    if account.role != "tradable":
        bad(f"{account.code} holds {account.role} credits, not tradable ones")
    batch = session.get_one(CarbonBatch, account.batch_id)
    project = session.get_one(CarbonProject, batch.project_id)
    if not project.county_code.startswith(region_prefix(rule.eligible_region_code)):
        bad(f"{batch.asset_code} comes from county {project.county_code}, outside the "
            f"eligible region {rule.eligible_region_code}")
    if project.methodology not in rule.eligible_methodologies:
        bad(f"{batch.asset_code} is {project.methodology}; eligible: "
            f"{', '.join(rule.eligible_methodologies)}")
    if not rule.vintage_from <= batch.vintage_year <= rule.vintage_to:
        bad(f"{batch.asset_code} is of vintage {batch.vintage_year}, outside "
            f"{rule.vintage_from}-{rule.vintage_to}")
    return problems


def _quantity(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_TONNES


def _check_parts(retirements: Sequence[RetirementPart], fee_t: int | None) -> None:
    problems: list[dict[str, Any]] = []
    if len(retirements) > MAX_PARTS:
        problems.append({"location": "json", "field": "retirements",
                         "message": f"at most {MAX_PARTS}"})
    for index, part in enumerate(retirements):
        if (part.quantity_t is None) == (part.serial_block is None):
            problems.append({"location": "json", "field": f"retirements.{index}",
                             "message": "quantity_t or serial_block, one of them"})
        elif part.quantity_t is not None and not _quantity(part.quantity_t):
            problems.append({"location": "json", "field": f"retirements.{index}.quantity_t",
                             "message": "a positive whole number of tonnes"})
    if fee_t is not None and not _quantity(fee_t):
        problems.append({"location": "json", "field": "fee_t",
                         "message": "a positive whole number of tonnes"})
    if not retirements and fee_t is None:
        problems.append({"location": "json", "field": "retirements",
                         "message": "retire credits, pay the fee for some tonnes, or both"})
    if problems:
        raise ValidationFailed("invalid settlement; nothing was settled", errors=problems)


def settle(session: Session, actor: Principal, obligation_id: int, *,
           retirements: Sequence[RetirementPart] = (), fee_t: int | None = None,
           from_account: int | str | None = None, memo: str | None = None,
           now: dt.datetime | None = None) -> PilotObligation:
    """Settle (part of) an obligation by retiring eligible credits and/or paying the fee for
    `fee_t` tonnes from the plant's CNY account (`from_account`, default its first CNY
    holding account) into the year's fund. All or nothing; see the module docstring."""
    now, today = now_and_today(now)
    scope = readable(actor)
    obligation = _locked(session, obligation_id)
    if obligation is None:
        authorize(actor, "pilot.obligation.settle", party=actor.party_id)
        raise errors.ObligationNotFound(f"no pilot obligation {obligation_id}")
    if scope.party is not None and obligation.plant_party_id != scope.party:
        raise errors.NotYourObligation(
            f"obligation {obligation.code} is another plant's; a plant settles only its own",
            action="pilot.obligation.settle")
    authorize(actor, "pilot.obligation.settle", party=obligation.plant_party_id)
    _check_parts(retirements, fee_t)
    open_t = obligation.obligation_t - obligation.retired_t - obligation.fee_t
    known = sum(p.quantity_t or 0 for p in retirements) + (fee_t or 0)
    if known > open_t:
        raise errors.OverSettlement(
            f"{obligation.code} has {open_t} t open; this settlement covers {known} t "
            "(nothing was settled)", open_t=open_t, requested_t=known)
    rule = session.get_one(PilotRule, obligation.rule_id)
    plant = session.get_one(Party, obligation.plant_party_id)
    problems: list[dict[str, Any]] = []
    accounts, foreign = [], []
    for index, part in enumerate(retirements):
        try:
            account = credits.find_account(session, part.account)
        except NotFound:
            problems.append({"location": "json", "field": f"retirements.{index}.account",
                             "message": f"no carbon account {part.account!r}"})
            continue
        accounts.append(account)
        if account.party_id != obligation.plant_party_id:
            foreign.append({"location": "json", "field": f"retirements.{index}.account",
                            "message": f"{account.code} is not the plant's account"})
        else:
            problems += _eligibility(session, rule, index, account)
    if foreign:
        raise errors.NotYourObligation("credits of another party cannot settle this plant's "
                                       "obligation; nothing was settled", errors=foreign)
    if problems:
        raise errors.IneligibleCredits(f"credits not eligible for {obligation.code} "
                                       "(the year's rule); nothing was settled",
                                       errors=problems)
    reason = f"pilot obligation {obligation.code}"
    before = audit.snapshot(obligation)
    retired_total, parts = 0, []
    for part, account in zip(retirements, accounts, strict=True):
        moved = credits.retire(
            session, actor, account=account.id, quantity_t=part.quantity_t,
            serial_block=part.serial_block, beneficiary_name=plant.name_zh[:200],
            purpose="thermal_power_pilot", compliance_year=obligation.year,
            jurisdiction=JURISDICTION, reason=reason, now=now)
        assert moved.retirement is not None
        retired_total += moved.quantity_t
        parts.append(PilotSettlement(
            obligation_id=obligation.id, plant_party_id=obligation.plant_party_id,
            kind="retirement", quantity_t=moved.quantity_t, amount_fen=0,
            from_account_code=account.code, batch_asset_code=account.asset_code,
            vintage_year=moved.batch.vintage_year,
            certificate_number=moved.retirement.certificate_number,
            ledger_transaction_id=moved.ledger_transaction_id, settled_on=today,
            settled_at=now, settled_by=actor.label))
    total = retired_total + (fee_t or 0)
    if total > open_t:  # a serial block turned out larger than the open tonnes
        raise errors.OverSettlement(
            f"{obligation.code} has {open_t} t open; this settlement covers {total} t "
            "(nothing was settled)", open_t=open_t, requested_t=total)
    if fee_t:
        amount = fee_t * obligation.fee_fen_per_tco2
        source = _money_account(session, actor, obligation, from_account)
        view = ledger.post(session, actor, ledger.TransactionSpec(
            type="pilot.fee", memo=(memo or f"{reason}: fee for {fee_t} t "
                                            f"({plant.name_zh})")[:500],
            metadata={"pilot": "fee", "obligation": obligation.code, "year": obligation.year,
                      "plant_party_id": obligation.plant_party_id, "tonnes": fee_t,
                      "fee_fen_per_tco2": obligation.fee_fen_per_tco2},
            postings=[ledger.PostingSpec(source, "CNY", "debit", amount),
                      ledger.PostingSpec(rule.fund_account_code, "CNY", "credit", amount)]),
            action="pilot.obligation.settle", now=now)
        parts.append(PilotSettlement(
            obligation_id=obligation.id, plant_party_id=obligation.plant_party_id, kind="fee",
            quantity_t=fee_t, amount_fen=amount, from_account_code=source,
            ledger_transaction_id=view.id, settled_on=today, settled_at=now,
            settled_by=actor.label))
        obligation.fee_t += fee_t
        obligation.paid_fen += amount
    obligation.retired_t += retired_total
    if obligation.retired_t + obligation.fee_t == obligation.obligation_t:
        obligation.settled_on = today
    session.add_all(parts)
    session.flush()
    audit.record(session, actor, "pilot.obligation.settle", "pilot_obligation", obligation.id,
                 before=before, after={**audit.snapshot(obligation), "settlements": [
                     {k: v for k, v in settlement_view(p).items() if k != "settled_at"}
                     for p in parts]})
    return obligation


def _money_account(session: Session, actor: Principal, obligation: PilotObligation,
                   ref: int | str | None) -> str:
    """The plant's CNY account the fee is paid from (code)."""
    if ref is None:
        found = session.scalars(ledger.list_accounts(
            session, actor, party_id=obligation.plant_party_id, asset="CNY",
            kind="holding")).first()
        if found is None:
            raise errors.NoMoneyAccount(
                f"party {obligation.plant_party_id} has no CNY holding account to pay the "
                "fee from", errors=[{"location": "json", "field": "from_account",
                                     "message": "required"}])
        return found.code
    try:
        balance = ledger.account_balance(session, actor, ref)
    except NotFound:
        raise errors.NoMoneyAccount(f"no account {ref!r}", errors=[
            {"location": "json", "field": "from_account", "message": "unknown account"}]) \
            from None
    if balance.party_id != obligation.plant_party_id:
        raise errors.NotYourObligation(f"{balance.account_code} is not the plant's account",
                                       errors=[{"location": "json", "field": "from_account",
                                                "message": "not the plant's account"}])
    if balance.asset != "CNY":
        raise errors.NoMoneyAccount(f"{balance.account_code} holds {balance.asset}, not CNY",
                                    errors=[{"location": "json", "field": "from_account",
                                             "message": "a CNY account"}])
    return balance.account_code
