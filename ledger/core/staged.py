"""The staged batch path: a large batch (`STAGED_MIN_LEGS` legs or more, such as a
benefit-sharing distribution to 100,000 households) posted set-based in SQL instead of leg
by leg in Python.

The legs go into a temporary table (one `executemany` on SQLite, COPY on PostgreSQL, then
ANALYZE), and the database does the per-leg work: it resolves the account codes, checks
that every account exists and holds the leg's asset, computes each account's sums once,
checks the no-overdraft guard, the 64-bit range and back-dating on the end state, inserts
the postings with one `INSERT ... SELECT` and updates the balances with one `UPDATE ...
FROM`. Python keeps what is per transaction (headers, their validation, the digest lines,
the audit event).

**Same guards, same errors, by construction.** The staged path writes only a batch it has
checked will succeed. It hands the batch, untouched, to the ordinary path
(`ledger.core.posting`) whenever anything is not the plain case — a leg it cannot check
in SQL (an account named by id, an odd amount or direction), a pending or dated-apart
transaction, a header problem, an unknown account or asset, a closed period, an expired
hold to release, a guard or range failure, a back-dated debit — so every refusal is
raised by the ordinary path's own rules and messages, in their order (validation, then
authorization, then period and guards). Until then it has written nothing but its
temporary table (and, on PostgreSQL, taken row locks the ordinary path takes again).
Authorization uses the ordinary rule (`posting.authorize_debits`) on the accounts the
batch debits, once validation is known to pass, as the ordinary path does.

**Concurrency.** As on the ordinary path: the look-up takes the period lock first
(PostgreSQL); the balance rows of every account touched are then locked in one statement
in ascending account id; SQLite's writer lock covers everything.

**Statement budget** (tests/ledger/test_statement_budget.py), whatever the batch's size:
SQLite 18 statements — the look-up (period, expired holds), the ids, the two temporary
tables (create if missing, empty: four), the legs (one executemany), the per-account sums
(one `INSERT ... SELECT`), the unknown accounts and assets, the debited accounts, the guard
and range check, the batch row, the headers, the postings, the balances, the batch's
digest, and the audit event (two); PostgreSQL the same with one TRUNCATE for both tables,
plus an ANALYZE of each and the lock of the balance rows, in as many round trips (the
test pins both).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth.policy import Principal
from ecovalue.db import bulk_insert, dialect_name
from ledger.core import posting, rules, store
from ledger.core.amounts import MAX_AMOUNT
from ledger.core.calendar import local_date, month_of
from ledger.core.rules import AccountRow, Prepared, TransactionSpec

#: batches with at least this many legs take the staged path (below it the ordinary path's
#: per-leg Python is cheaper than the extra statements)
STAGED_MIN_LEGS = 5000

#: the temporary table of a staged batch (its own metadata: not part of the schema)
LEGS = sa.Table("ledger_staged_legs", sa.MetaData(),
                sa.Column("leg_no", sa.BigInteger), sa.Column("tx_id", sa.BigInteger),
                sa.Column("code", sa.Text), sa.Column("direction", sa.Text),
                sa.Column("amount", sa.BigInteger), sa.Column("asset", sa.Text))
_COLUMNS = ("leg_no", "tx_id", "code", "direction", "amount", "asset")
_CREATE = {
    "sqlite": ["CREATE TEMP TABLE IF NOT EXISTS ledger_staged_legs (leg_no INTEGER, "
               "tx_id INTEGER, code TEXT, direction TEXT, amount INTEGER, asset TEXT)",
               "CREATE TEMP TABLE IF NOT EXISTS ledger_staged_sums (account_id INTEGER "
               "PRIMARY KEY, debits INTEGER, credits INTEGER, legs INTEGER)"],
    "postgresql": ["CREATE TEMP TABLE IF NOT EXISTS ledger_staged_legs (leg_no bigint, "
                   "tx_id bigint, code text, direction text, amount bigint, asset text) "
                   "ON COMMIT DELETE ROWS",
                   "CREATE TEMP TABLE IF NOT EXISTS ledger_staged_sums (account_id bigint "
                   "PRIMARY KEY, debits bigint, credits bigint, legs bigint) "
                   "ON COMMIT DELETE ROWS"],
}
_EMPTY = {"sqlite": ["DELETE FROM temp.ledger_staged_legs", "DELETE FROM temp.ledger_staged_sums"],
          "postgresql": ["TRUNCATE ledger_staged_legs, ledger_staged_sums"]}
#: each account's sums, once, over the legs that name it by code and in its asset (the
#: sums stay in 64 bits: `_plain` bounds the batch's total)
_SUMS = """
INSERT INTO ledger_staged_sums (account_id, debits, credits, legs)
SELECT a.id, sum(CASE WHEN l.direction = 'debit' THEN l.amount ELSE 0 END),
       sum(CASE WHEN l.direction = 'credit' THEN l.amount ELSE 0 END), count(*)
  FROM ledger_staged_legs AS l
  JOIN ledger_accounts AS a ON a.code = l.code
  JOIN ledger_assets AS s ON s.id = a.asset_id AND s.code = l.asset
 GROUP BY a.id
"""
#: the legs that name no account, or an account of another asset
_UNKNOWN = """
SELECT (SELECT count(*) FROM ledger_staged_legs)
       - (SELECT coalesce(sum(legs), 0) FROM ledger_staged_sums)
"""
#: the accounts the batch debits, as the write path knows them (for authorization)
_DEBITED = """
SELECT a.id, a.code, a.party_id, a.kind, a.no_overdraft, a.asset_id, s.code
  FROM ledger_staged_sums AS x
  JOIN ledger_accounts AS a ON a.id = x.account_id
  JOIN ledger_assets AS s ON s.id = a.asset_id
 WHERE x.debits > 0
 ORDER BY a.id
"""
#: PostgreSQL: the balance rows of every touched account, locked in ascending account id
_LOCK = """
SELECT count(*) FROM (
  SELECT b.account_id FROM ledger_balances AS b
   WHERE b.account_id IN (SELECT account_id FROM ledger_staged_sums)
   ORDER BY b.account_id FOR UPDATE) AS locked
"""
#: the touched accounts the batch cannot post to as it stands: a guarded account debited
#: below zero available or back-dated (its last posting is later than the batch), or a
#: running total leaving the 64-bit range (written without overflowing it)
_REFUSED = f"""
SELECT count(*) FROM ledger_staged_sums AS x
  JOIN ledger_balances AS b ON b.account_id = x.account_id
  JOIN ledger_accounts AS a ON a.id = x.account_id
 WHERE (x.debits > 0 AND a.no_overdraft = %(true)s
        AND (b.posted_credits + x.credits < b.posted_debits + x.debits + b.pending_debits
             OR b.last_effective_date > %(day)s))
    OR b.posted_debits > {MAX_AMOUNT} - x.debits
    OR b.posted_credits > {MAX_AMOUNT} - x.credits
"""
_INSERT_POSTINGS = """
INSERT INTO ledger_postings (transaction_id, account_id, asset_id, direction, amount,
                             effective_date, pending)
SELECT l.tx_id, a.id, a.asset_id, l.direction, l.amount, %(day)s, %(false)s
  FROM ledger_staged_legs AS l JOIN ledger_accounts AS a ON a.code = l.code
 ORDER BY l.leg_no
"""
_UPDATE_BALANCES = """
UPDATE ledger_balances AS b
   SET posted_debits = b.posted_debits + x.debits,
       posted_credits = b.posted_credits + x.credits,
       last_effective_date = CASE WHEN b.last_effective_date IS NULL
                                    OR b.last_effective_date < %(day)s
                                  THEN %(day)s ELSE b.last_effective_date END,
       version = b.version + 1, updated_at = %(now)s
  FROM ledger_staged_sums AS x
 WHERE b.account_id = x.account_id
"""


@dataclasses.dataclass
class _Staged:
    """What the Python pass over a batch found: the legs (code, direction, amount, asset)
    per transaction, and the one effective date of the batch."""

    legs: list[list[tuple[str, str, int, str]]]
    effective_date: dt.date


def _plain(specs: Sequence[TransactionSpec], *, today: dt.date, now: dt.datetime
           ) -> _Staged | None:
    """The batch's legs, if it is the plain case the staged path checks in SQL (posted
    transactions of one date, valid headers, accounts named by code, whole positive
    amounts, balanced per asset); None hands it to the ordinary path."""
    found = rules.Errors()
    dates = {rules.validate_header(spec, "", found, today, now) for spec in specs}
    if found.items or len(dates) != 1:
        return None
    out: list[list[tuple[str, str, int, str]]] = []
    debits = credits = 0
    for spec in specs:
        postings = spec.postings
        if spec.pending or spec.expires_at is not None or not isinstance(postings, Sequence) \
                or not 2 <= len(postings) <= rules.MAX_POSTINGS:
            return None
        sums: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
        legs = []
        for p in postings:
            ref, direction, amount, asset = p.account, p.direction, p.amount, p.asset
            if type(ref) is not str or "\x00" in ref or type(amount) is not int \
                    or not 0 < amount <= MAX_AMOUNT or type(asset) is not str \
                    or (direction != "debit" and direction != "credit"):
                return None
            sums[asset][direction == "credit"] += amount
            legs.append((ref, direction, amount, asset))
        if any(d != c or d > MAX_AMOUNT for d, c in sums.values()):
            return None
        total = sum(d for d, _ in sums.values())
        debits += total
        credits += total
        out.append(legs)
    if debits > MAX_AMOUNT or credits > MAX_AMOUNT:  # the SQL sums stay in 64 bits
        return None
    return _Staged(out, dates.pop())


def _sql(session: Session, sql: str, params: dict[str, Any]) -> Any:
    """A driver-level statement in the session's transaction (`%(name)s` placeholders),
    returning the cursor's first row's first value, or None."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        for name in params:
            sql = sql.replace(f"%({name})s", f":{name}")
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone() if cursor.description else None
        return None if row is None else row[0]
    except raw.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, raw.Error) from exc
    finally:
        cursor.close()


def _rows(session: Session, sql: str) -> list[tuple]:
    raw: Any = session.connection().connection.driver_connection
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    except raw.Error as exc:  # pragma: no cover - the error SQLAlchemy would raise
        raise sa.exc.DBAPIError.instance(sql, None, exc, raw.Error) from exc
    finally:
        cursor.close()


def post_batch(session: Session, actor: Principal, specs: Sequence[TransactionSpec], *,
               memo: str | None, now: dt.datetime, action: str,
               enter: str) -> tuple[int, list[int]] | None:
    """Post `specs` (already checked by `services.post_batch` for their number, keys and
    memo) set-based, or return None, having written nothing, for the ordinary path to post
    or refuse them."""
    today = local_date(now)
    staged = _plain(specs, today=today, now=now)
    if staged is None:
        return None
    dialect = dialect_name(session)
    postgres = dialect == "postgresql"
    day = staged.effective_date
    debit_codes = sorted({code for legs in staged.legs for code, d, _, _ in legs
                          if d == "debit"})
    # the period lock (PostgreSQL), the closed month, the expired holds on what it debits
    lookup = store.look_up(session, [], debit_codes, now=now, months=[month_of(day)])
    if lookup.expired or lookup.closed:
        return None
    ids = store.allocate_ids(session, len(specs))
    for statement in (*_CREATE[dialect], *_EMPTY[dialect]):
        _sql(session, statement, {})
    rows = []
    n = 0
    for tx_id, legs in zip(ids, staged.legs, strict=True):
        for code, direction, amount, asset in legs:
            n += 1
            rows.append((n, tx_id, code, direction, amount, asset))
    bulk_insert(session, LEGS, _COLUMNS, rows)
    if postgres:
        _sql(session, "ANALYZE ledger_staged_legs", {})
    _sql(session, _SUMS, {})
    if postgres:
        _sql(session, "ANALYZE ledger_staged_sums", {})
    if _sql(session, _UNKNOWN, {}):
        return None
    debited = [AccountRow(*row) for row in _rows(session, _DEBITED)]
    posting.authorize_debits(actor, [Prepared(
        spec=specs[0], effective_date=day, legs=[(acc, "debit", 0) for acc in debited],
        type=specs[0].type)], action, enter=enter)
    stored_day = day if postgres else day.isoformat()
    if postgres:
        _sql(session, _LOCK, {})
    if _sql(session, _REFUSED, {"day": stored_day, "true": True if postgres else 1}):
        return None
    return _write(session, actor, specs, staged, ids, memo=memo, now=now,
                  stored_day=stored_day)


def _write(session: Session, actor: Principal, specs: Sequence[TransactionSpec],
           staged: _Staged, ids: list[int], *, memo: str | None, now: dt.datetime,
           stored_day: Any) -> tuple[int, list[int]]:
    postgres = dialect_name(session) == "postgresql"
    batch, headers = posting.open_batch(session, actor, len(specs), memo=memo, now=now)
    # the lines of `rules.batch_digest`, a transaction's header then its legs (the code
    # named is the account's, matched exactly; the asset its asset, checked), the legs
    # (ints and text, never None) formatted at once
    lines: list[str] = []
    day = staged.effective_date
    for tx_id, spec, legs in zip(ids, specs, staged.legs, strict=True):
        headers.add(tx_id, spec.type, "posted", day, spec.memo, spec.metadata, None, [])
        lines.append(rules.digest_line((tx_id, spec.type, "posted", day, spec.memo)))
        lines.extend([f"{tx_id}|{code}|{asset}|{d}|{amount}" for code, d, amount, asset in legs])
    headers.insert(session)
    _sql(session, _INSERT_POSTINGS, {"day": stored_day, "false": False if postgres else 0})
    _sql(session, _UPDATE_BALANCES, {
        "day": stored_day, "now": now if postgres else store.stamp(now)})
    posting.close_batch(session, actor, batch, ids, rules.lines_digest(lines))
    return batch.id, ids
