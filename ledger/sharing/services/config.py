"""What benefit sharing is configured with, all of it data: rules and their versions, the
funds it distributes and traces, and the single-tree programmes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.clock import utcnow
from ecovalue.errors import ValidationFailed
from ledger import core
from ledger.sharing import errors
from ledger.sharing.allocation import validate_rule
from ledger.sharing.models import (
    SOURCE_KINDS,
    SharingFund,
    SharingRule,
    SharingRuleVersion,
    SharingTreeProgramme,
)
from ledger.sharing.services.register import READER

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")


def canonical_sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_code(code: Any, field: str = "code") -> None:
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise ValidationFailed(f"invalid {field}", errors=[{
            "location": "json", "field": field,
            "message": "1-60 characters: letters, digits, '_', '.', '-'"}])


def _check_definition(definition: Any) -> None:
    problems = validate_rule(definition)
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        raise errors.InvalidRule(f"invalid rule definition: {detail}", errors=[
            {"location": "json", "field": f"definition.{p['field']}".rstrip("."),
             "message": p["message"]} for p in problems])


# --- rules -------------------------------------------------------------------------------------


def create_rule(session: Session, actor: Principal, *, code: str, name_zh: str,
                name_en: str | None, source_kind: str, source_ref: str | None,
                definition: dict, now: dt.datetime | None = None
                ) -> tuple[SharingRule, SharingRuleVersion]:
    """A rule with its first version."""
    authorize(actor, "sharing.rule.write")
    now = now or utcnow()
    _check_code(code)
    if source_kind not in SOURCE_KINDS:
        raise ValidationFailed("invalid source_kind", errors=[
            {"location": "json", "field": "source_kind",
             "message": f"one of {', '.join(SOURCE_KINDS)}"}])
    _check_definition(definition)
    if session.scalar(sa.select(SharingRule.id).where(SharingRule.code == code)):
        raise errors.RuleExists(f"a rule {code!r} exists: add a version to it")
    rule = SharingRule(code=code, name_zh=name_zh, name_en=name_en, source_kind=source_kind,
                       source_ref=source_ref, created_by=actor.label, created_at=now)
    session.add(rule)
    session.flush()
    audit.record(session, actor, "sharing.rule.create", "sharing_rule", rule.id,
                 after=audit.snapshot(rule))
    return rule, _add_version(session, actor, rule, definition, now)


def _add_version(session: Session, actor: Principal, rule: SharingRule, definition: dict,
                 now: dt.datetime) -> SharingRuleVersion:
    last = session.scalar(sa.select(sa.func.max(SharingRuleVersion.version))
                          .where(SharingRuleVersion.rule_id == rule.id)) or 0
    version = SharingRuleVersion(rule_id=rule.id, version=last + 1, definition=definition,
                                 definition_sha256=canonical_sha256(definition),
                                 created_by=actor.label, created_at=now)
    session.add(version)
    session.flush()
    audit.record(session, actor, "sharing.rule.version", "sharing_rule_version", version.id,
                 after=audit.snapshot(version))
    return version


def get_rule(session: Session, code: str) -> SharingRule:
    rule = session.scalar(sa.select(SharingRule).where(SharingRule.code == code)) \
        if isinstance(code, str) and "\x00" not in code else None
    if rule is None:
        raise errors.RuleNotFound(f"no sharing rule {code!r}")
    return rule


def versions_of(session: Session, rule: SharingRule) -> list[SharingRuleVersion]:
    return list(session.scalars(sa.select(SharingRuleVersion).where(
        SharingRuleVersion.rule_id == rule.id).order_by(SharingRuleVersion.version)))


def add_version(session: Session, actor: Principal, code: str, definition: dict, *,
                now: dt.datetime | None = None) -> SharingRuleVersion:
    """A new version of a rule (the earlier ones stay as they were)."""
    authorize(actor, "sharing.rule.write")
    rule = get_rule(session, code)
    _check_definition(definition)
    return _add_version(session, actor, rule, definition, now or utcnow())


def replace_version(session: Session, actor: Principal, code: str, version: int,
                    definition: dict) -> SharingRuleVersion:
    """Change an unused version's definition; a version a run has used is immutable."""
    authorize(actor, "sharing.rule.write")
    row = get_version(session, code, version)
    if row.used_at is not None:
        raise errors.RuleVersionUsed(
            f"version {version} of rule {code} was used by a run on "
            f"{row.used_at.isoformat()}: it cannot change; add a new version")
    _check_definition(definition)
    before = audit.snapshot(row)
    row.definition = definition
    row.definition_sha256 = canonical_sha256(definition)
    session.flush()
    audit.record(session, actor, "sharing.rule.version.replace", "sharing_rule_version", row.id,
                 before=before, after=audit.snapshot(row))
    return row


def get_version(session: Session, code: str, version: int | None = None) -> SharingRuleVersion:
    """A version of a rule (default: its latest)."""
    rule = get_rule(session, code)
    stmt = sa.select(SharingRuleVersion).where(SharingRuleVersion.rule_id == rule.id)
    stmt = stmt.where(SharingRuleVersion.version == version) if version is not None \
        else stmt.order_by(SharingRuleVersion.version.desc()).limit(1)
    row = session.scalars(stmt).first() if version is None or 0 < version < 2**31 else None
    if row is None:
        raise errors.RuleNotFound(f"rule {code!r} has no version {version}")
    return row


# --- funds -------------------------------------------------------------------------------------


def register_fund(session: Session, actor: Principal, *, account_code: str, name_zh: str,
                  name_en: str | None = None, now: dt.datetime | None = None) -> SharingFund:
    """Declare a ledger fund account (CNY) as one that benefit sharing distributes and
    traces."""
    authorize(actor, "sharing.fund.write")
    account = core.get_account(session, READER, account_code)
    balance = core.account_balance(session, READER, account.code)
    if balance.asset != "CNY" or account.kind != "fund":
        raise ValidationFailed("a sharing fund is a CNY account of kind 'fund'", errors=[
            {"location": "json", "field": "account_code",
             "message": f"{account.code} is a {account.kind} account in {balance.asset}"}])
    if session.scalar(sa.select(SharingFund.id).where(SharingFund.account_code == account.code)):
        raise errors.FundExists(f"{account.code} is already a sharing fund")
    fund = SharingFund(account_code=account.code, name_zh=name_zh, name_en=name_en,
                       attributed_fen=0, created_by=actor.label, created_at=now or utcnow())
    session.add(fund)
    session.flush()
    audit.record(session, actor, "sharing.fund.register", "sharing_fund", fund.id,
                 after=audit.snapshot(fund))
    return fund


def get_fund(session: Session, code: str, *, lock: bool = False) -> SharingFund:
    stmt = sa.select(SharingFund).where(SharingFund.account_code == code)
    if lock:
        stmt = stmt.with_for_update()
    fund = session.scalar(stmt) if isinstance(code, str) and "\x00" not in code else None
    if fund is None:
        raise errors.FundNotFound(f"no sharing fund {code!r} (register the account as one)")
    return fund


# --- single-tree programmes ---------------------------------------------------------------------


def create_programme(session: Session, actor: Principal, *, code: str, name_zh: str,
                     name_en: str | None, price_fen_per_tree_year: int,
                     max_trees_per_household: int, max_trees_per_mu: int, term_years: int,
                     now: dt.datetime | None = None) -> SharingTreeProgramme:
    """A single-tree programme's terms (the Wangmo programme: 300 fen per tree and year, at
    most 450 trees per household and 225 per mu, 5 years)."""
    authorize(actor, "sharing.programme.write")
    _check_code(code)
    problems = []
    for field, value, low, high in (
            ("price_fen_per_tree_year", price_fen_per_tree_year, 1, 10**8),
            ("max_trees_per_household", max_trees_per_household, 1, 10**6),
            ("max_trees_per_mu", max_trees_per_mu, 0, 10**4),
            ("term_years", term_years, 1, 100)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            problems.append({"location": "json", "field": field,
                             "message": f"a whole number from {low} to {high:,}"})
    if problems:
        raise ValidationFailed("invalid programme", errors=problems)
    if session.scalar(sa.select(SharingTreeProgramme.id)
                      .where(SharingTreeProgramme.code == code)):
        raise errors.ProgrammeExists(f"a programme {code!r} exists; a programme never "
                                     "changes: create one with a new code")
    programme = SharingTreeProgramme(
        code=code, name_zh=name_zh, name_en=name_en,
        price_fen_per_tree_year=price_fen_per_tree_year,
        max_trees_per_household=max_trees_per_household, max_trees_per_mu=max_trees_per_mu,
        term_years=term_years, created_by=actor.label, created_at=now or utcnow())
    session.add(programme)
    session.flush()
    audit.record(session, actor, "sharing.programme.create", "sharing_tree_programme",
                 programme.id, after=audit.snapshot(programme))
    return programme


def get_programme(session: Session, code: str) -> SharingTreeProgramme:
    row = session.scalar(sa.select(SharingTreeProgramme).where(
        SharingTreeProgramme.code == code)) if isinstance(code, str) and "\x00" not in code \
        else None
    if row is None:
        raise errors.ProgrammeNotFound(f"no single-tree programme {code!r}")
    return row


# --- reads -------------------------------------------------------------------------------------


def list_rules(session: Session, actor: Principal) -> list[SharingRule]:
    authorize(actor, "sharing.read")
    return list(session.scalars(sa.select(SharingRule).order_by(SharingRule.code)))


def read_rule(session: Session, actor: Principal, code: str) -> SharingRule:
    authorize(actor, "sharing.read")
    return get_rule(session, code)


def list_funds(session: Session, actor: Principal) -> list[SharingFund]:
    authorize(actor, "sharing.read")
    return list(session.scalars(sa.select(SharingFund).order_by(SharingFund.id)))


def list_programmes(session: Session) -> list[SharingTreeProgramme]:
    """Single-tree programmes: their terms are published (no check)."""
    return list(session.scalars(sa.select(SharingTreeProgramme)
                                .order_by(SharingTreeProgramme.code)))
