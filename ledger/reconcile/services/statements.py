"""Bank column mappings and statement imports (one unit of work each, committed by the caller).

An import reads the whole file first (`ledger.reconcile.statement_file`) and stores nothing
when any line is bad: the 422 answer lists every problem. Accepted lines are added to the
account's statement for the month; a line already held (same bank serial, or same content and
occurrence) is counted, not added again, so re-importing a file changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit, clock
from ecovalue.auth import Principal, authorize
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed
from ledger import core as ledger
from ledger.reconcile import errors, statement_file
from ledger.reconcile.models import (
    ReconcileBankMapping,
    ReconcileImport,
    ReconcileLine,
    ReconcileRun,
    ReconcileStatement,
)

DEFAULT_BANK = "DEFAULT"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[
        {"location": "json", "field": field, "message": message}])


# --- bank column mappings --------------------------------------------------------------------


def put_mapping(session: Session, actor: Principal, bank_code: str, *, name_zh: str,
                columns: dict, source: str = "bank",
                now: dt.datetime | None = None) -> ReconcileBankMapping:
    """Save (create or replace) how one bank's files name their columns."""
    now = now or utcnow()
    authorize(actor, "reconcile.mapping.write")
    problems = statement_file.validate_mapping(columns)
    if problems:
        raise ValidationFailed("the column mapping is not valid", errors=problems)
    mapping = session.scalar(sa.select(ReconcileBankMapping)
                             .where(ReconcileBankMapping.bank_code == bank_code))
    before = audit.snapshot(mapping) if mapping else None
    if mapping is None:
        mapping = ReconcileBankMapping(bank_code=bank_code)
        session.add(mapping)
    mapping.name_zh, mapping.source, mapping.columns = name_zh, source, columns
    mapping.updated_by, mapping.updated_at = actor.label, now
    session.flush()
    audit.record(session, actor, "reconcile.mapping.put", "reconcile_bank_mapping", bank_code,
                 before=before, after=audit.snapshot(mapping))
    return mapping


def list_mappings(session: Session, actor: Principal) -> list[ReconcileBankMapping]:
    authorize(actor, "reconcile.read")
    return list(session.scalars(sa.select(ReconcileBankMapping)
                                .order_by(ReconcileBankMapping.bank_code)))


def get_mapping(session: Session, actor: Principal, bank_code: str) -> ReconcileBankMapping:
    authorize(actor, "reconcile.read")
    mapping = session.scalar(sa.select(ReconcileBankMapping)
                             .where(ReconcileBankMapping.bank_code == bank_code))
    if mapping is None:
        raise errors.MappingNotFound(f"no column mapping for bank {bank_code}")
    return mapping


# --- statements ------------------------------------------------------------------------------


@dataclasses.dataclass
class ImportResult:
    import_id: int
    statement_id: int
    account_code: str
    period: dt.date
    bank_code: str
    format: str
    encoding: str
    rows_read: int
    lines_added: int
    lines_already_present: int
    opening_balance_fen: int
    closing_balance_fen: int
    line_count: int


def get_statement(session: Session, actor: Principal, statement_id: int) -> ReconcileStatement:
    authorize(actor, "reconcile.read")
    found = session.get(ReconcileStatement, statement_id) \
        if isinstance(statement_id, int) and 0 < statement_id < 2**63 else None
    if found is None:
        raise errors.StatementNotFound(f"no statement {statement_id}")
    return found


def find_statement(session: Session, account_code: str,
                   period: dt.date) -> ReconcileStatement | None:
    return session.scalar(sa.select(ReconcileStatement).where(
        ReconcileStatement.account_code == account_code, ReconcileStatement.period == period))


def list_statements(session: Session, actor: Principal, *, account: str | None = None,
                    period: dt.date | None = None) -> sa.Select:
    authorize(actor, "reconcile.read")
    stmt = sa.select(ReconcileStatement)
    if account:
        stmt = stmt.where(ReconcileStatement.account_code == account)
    if period:
        stmt = stmt.where(ReconcileStatement.period == period)
    return stmt.order_by(ReconcileStatement.period.desc(), ReconcileStatement.id.desc())


def statement_lines(session: Session, actor: Principal, statement_id: int) -> sa.Select:
    get_statement(session, actor, statement_id)
    return sa.select(ReconcileLine).where(ReconcileLine.statement_id == statement_id) \
        .order_by(ReconcileLine.value_date, ReconcileLine.id)


def signed_run_exists(session: Session, account_code: str, period: dt.date) -> bool:
    return (session.scalar(sa.select(sa.func.count()).select_from(ReconcileRun).where(
        ReconcileRun.account_code == account_code, ReconcileRun.period == period,
        ReconcileRun.status == "signed_off")) or 0) > 0


def import_statement(session: Session, actor: Principal, data: bytes, filename: str, *,
                     account: str, period: dt.date, bank_code: str = DEFAULT_BANK,
                     opening_balance_fen: int | None = None,
                     closing_balance_fen: int | None = None,
                     now: dt.datetime | None = None) -> ImportResult:
    """Read a statement file of `account` for the month `period` and add its lines; refused
    whole (StatementRejected, every problem listed) when any line or balance is wrong."""
    now = now or utcnow()
    authorize(actor, "reconcile.statement.import")
    period = period.replace(day=1)
    problem = statement_file.period_problem(period, clock.local_today())
    if problem:
        raise ValidationFailed(f"period: {problem}", errors=[
            {"location": "query", "field": "period", "message": problem}])
    target = ledger.get_account(session, actor, account)
    if ledger.get_asset(session, actor, "CNY").id != target.asset_id:
        raise _invalid("account", "a statement reconciles a CNY account")
    if signed_run_exists(session, target.code, period):
        raise errors.RunSignedOff(f"the reconciliation of {target.code} for {period:%Y-%m} is "
                                  "signed off: its statement can no longer change")
    mapping = session.scalar(sa.select(ReconcileBankMapping)
                             .where(ReconcileBankMapping.bank_code == bank_code))
    if mapping is None and bank_code != DEFAULT_BANK:
        raise errors.MappingNotFound(f"no column mapping for bank {bank_code}: save one "
                                     "(PUT /reconcile/banks/{bank_code}) or import with the "
                                     f"default headers (bank {DEFAULT_BANK})")
    parsed = statement_file.parse_statement(
        data, period=period, mapping=mapping.columns if mapping else None,
        opening_balance_fen=opening_balance_fen, closing_balance_fen=closing_balance_fen)
    statement = find_statement(session, target.code, period)
    problems = list(parsed.problems)
    held: dict[str, int] = {}
    if statement is not None:
        held = dict(session.execute(sa.select(ReconcileLine.fingerprint, ReconcileLine.amount_fen)
                                    .where(ReconcileLine.statement_id == statement.id)).all())
        if parsed.opening_balance_fen is not None and \
                parsed.opening_balance_fen != statement.opening_balance_fen:
            problems.append(statement_file.Problem(
                0, "opening_balance_fen", "opening-balance",
                f"the opening balance differs from the one already imported for "
                f"{period:%Y-%m} ({statement.opening_balance_fen} fen)"))
    new_lines = [ln for ln in parsed.lines if ln.fingerprint not in held]
    if not problems and parsed.opening_balance_fen is not None \
            and parsed.closing_balance_fen is not None:
        amounts = [*held.values(), *(ln.amount_fen for ln in new_lines)]
        closing = statement_file.closing_problem(parsed.opening_balance_fen,
                                                 parsed.closing_balance_fen, amounts)
        if closing is not None:
            problems.append(closing)
    if problems:
        problems.sort(key=lambda p: (p.row, p.field))
        shown = problems[:1000]
        raise errors.StatementRejected(
            f"{len(problems)} problems in {filename}; nothing was imported",
            errors=[p.as_error() for p in shown], problem_count=len(problems))
    assert parsed.opening_balance_fen is not None and parsed.closing_balance_fen is not None
    if statement is None:
        statement = ReconcileStatement(
            account_code=target.code, period=period, bank_code=bank_code,
            opening_balance_fen=parsed.opening_balance_fen,
            closing_balance_fen=parsed.closing_balance_fen, line_count=0,
            created_by=actor.label, created_at=now, updated_at=now)
        session.add(statement)
        session.flush()
    before = audit.snapshot(statement)
    record = ReconcileImport(
        statement_id=statement.id, account_code=target.code, period=period,
        bank_code=bank_code, filename=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(), format=parsed.format,
        encoding=parsed.encoding, status="accepted", rows_read=parsed.rows_read,
        lines_added=len(new_lines), lines_already_present=len(parsed.lines) - len(new_lines),
        problems=[], created_by=actor.label, created_at=now)
    session.add(record)
    session.flush()
    if new_lines:
        session.execute(sa.insert(ReconcileLine), [{
            "statement_id": statement.id, "import_id": record.id, "row_number": ln.row,
            "value_date": ln.value_date, "amount_fen": ln.amount_fen,
            "balance_fen": ln.balance_fen, "bank_serial": ln.bank_serial,
            "reference": ln.reference, "transaction_id": ln.transaction_id,
            "counterparty": ln.counterparty, "memo": ln.memo,
            "fingerprint": ln.fingerprint} for ln in new_lines])
    statement.closing_balance_fen = parsed.closing_balance_fen
    statement.line_count = len(held) + len(new_lines)
    statement.bank_code = bank_code
    statement.updated_at = now
    session.flush()
    audit.record(session, actor, "reconcile.statement.import", "reconcile_statement",
                 statement.id, before=before, after={
                     **audit.snapshot(statement), "import_id": record.id,
                     "file_sha256": record.sha256, "lines_added": record.lines_added,
                     "lines_already_present": record.lines_already_present})
    return ImportResult(record.id, statement.id, target.code, period, bank_code,
                        parsed.format, parsed.encoding, parsed.rows_read, record.lines_added,
                        record.lines_already_present, statement.opening_balance_fen,
                        statement.closing_balance_fen, statement.line_count)


def list_imports(session: Session, actor: Principal, statement_id: int) -> list[ReconcileImport]:
    get_statement(session, actor, statement_id)
    return list(session.scalars(sa.select(ReconcileImport)
                                .where(ReconcileImport.statement_id == statement_id)
                                .order_by(ReconcileImport.id)))
