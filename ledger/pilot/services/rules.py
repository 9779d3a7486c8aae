"""The pilot rule of each compliance year, as data: share of verified emissions to
compensate, fee per tonne, eligible credits, deadlines, the fund account. A rule is changed
freely until it has fixed an obligation; then it is immutable (an obligation copies the share,
fee and deadline it was computed with, so nothing already owed moves)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Region
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import NotFound, ValidationFailed
from ledger import core as ledger
from ledger.carbon.models import METHODOLOGY_CODES
from ledger.pilot import errors
from ledger.pilot.models import PilotObligation, PilotRule
from ledger.pilot.services.common import now_and_today, valid_year

#: the highest fee a rule may set (10,000,000.00 yuan per tonne): with at most 10^9 t owed,
#: every payment fits the ledger's 64-bit amounts
MAX_FEE_FEN_PER_TCO2 = 10**9
RULE_FIELDS = ("share_bp", "fee_fen_per_tco2", "eligible_region_code", "eligible_methodologies",
               "vintage_from", "vintage_to", "report_deadline", "settlement_deadline",
               "fund_account_code", "note")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(session: Session, actor: Principal, year: int, values: dict[str, Any]) -> None:
    problems: list[dict[str, Any]] = []

    def bad(field: str, message: str) -> None:
        problems.append({"location": "json", "field": field, "message": message})

    if not valid_year(year):
        bad("year", "a year (2000-2100)")
    share: Any = values.get("share_bp")
    if not _int(share) or not 0 <= share <= 10_000:
        bad("share_bp", "basis points of verified emissions, 0-10,000 (100 bp = 1 %)")
    fee: Any = values.get("fee_fen_per_tco2")
    if not _int(fee) or not 0 < fee <= MAX_FEE_FEN_PER_TCO2:
        bad("fee_fen_per_tco2", "a positive whole number of fen per tCO2")
    region = values.get("eligible_region_code")
    if not isinstance(region, str) or session.get(Region, region) is None:
        bad("eligible_region_code", "a known region code (prefecture or county), e.g. 522300")
    methods = values.get("eligible_methodologies")
    if not isinstance(methods, list) or not methods or any(
            m not in METHODOLOGY_CODES for m in methods) or len(set(methods)) != len(methods):
        bad("eligible_methodologies", f"distinct methodologies of {list(METHODOLOGY_CODES)}")
    low: Any = values.get("vintage_from")
    high: Any = values.get("vintage_to")
    if not valid_year(low) or not valid_year(high) or low > high:
        bad("vintage_to", "vintage_from <= vintage_to, both years")
    report_by, settle_by = values.get("report_deadline"), values.get("settlement_deadline")
    if not isinstance(report_by, dt.date) or not isinstance(settle_by, dt.date):
        bad("settlement_deadline", "dates (report_deadline and settlement_deadline)")
    elif valid_year(year) and not (dt.date(year + 1, 1, 1) <= report_by <= settle_by):
        bad("settlement_deadline", "the report deadline falls after the year ends and the "
                                   "settlement deadline on or after it")
    fund = values.get("fund_account_code")
    if not isinstance(fund, str) or not fund:
        bad("fund_account_code", "the forest compensation fund's ledger account")
    else:
        try:
            account = ledger.account_balance(session, actor, fund)
        except NotFound:
            bad("fund_account_code", f"no ledger account {fund!r}")
        else:
            if account.asset != "CNY" or account.kind != "fund":
                bad("fund_account_code", f"{fund} holds {account.asset} as {account.kind}; "
                                         "the fund is a CNY account of kind fund")
    note = values.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 1000):
        bad("note", "at most 1,000 characters")
    if problems:
        raise ValidationFailed("invalid pilot rule", errors=problems)


def put_rule(session: Session, actor: Principal, year: int, values: dict[str, Any], *,
             now: dt.datetime | None = None) -> PilotRule:
    """Create or replace the rule of `year` (refused once it has fixed an obligation); the
    year's verified reports without an obligation get theirs now."""
    authorize(actor, "pilot.rule.write")
    now, _ = now_and_today(now)
    _check(session, actor, year, values)
    rule = session.scalar(sa.select(PilotRule).where(PilotRule.year == year).with_for_update())
    clean = {f: values.get(f) for f in RULE_FIELDS}
    if rule is None:
        rule = PilotRule(year=year, version=1, updated_at=now, updated_by=actor.label, **clean)
        session.add(rule)
        session.flush()
        audit.record(session, actor, "pilot.rule.create", "pilot_rule", rule.id,
                     after=audit.snapshot(rule))
    else:
        if session.scalar(sa.select(PilotObligation.id).where(
                PilotObligation.rule_id == rule.id).limit(1)) is not None:
            raise errors.RuleInUse(f"the {year} rule has fixed obligations already; it cannot "
                                   "change (obligations keep the share and fee they were "
                                   "computed with)")
        before = audit.snapshot(rule)
        for field, value in clean.items():
            setattr(rule, field, value)
        rule.version += 1
        rule.updated_at, rule.updated_by = now, actor.label
        session.flush()
        audit.record(session, actor, "pilot.rule.update", "pilot_rule", rule.id,
                     before=before, after=audit.snapshot(rule))
    from ledger.pilot.services import obligations  # obligations read rules: no import circle

    obligations.open_pending(session, actor, rule, now=now)
    return rule


def get_rule(session: Session, year: int) -> PilotRule:
    rule = session.scalar(sa.select(PilotRule).where(PilotRule.year == year)) \
        if valid_year(year) else None
    if rule is None:
        raise errors.RuleNotFound(f"no pilot rule for {year}: an admin or the finance bureau "
                                  "sets it (PUT /pilot/rules/{year})")
    return rule


def find_rule(session: Session, year: int) -> PilotRule | None:
    return session.scalar(sa.select(PilotRule).where(PilotRule.year == year))


def list_rules(session: Session) -> list[PilotRule]:
    return list(session.scalars(sa.select(PilotRule).order_by(PilotRule.year)))
