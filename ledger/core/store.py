"""The ledger's storage: every statement of the write path, and every difference between
SQLite and PostgreSQL, behind one set of functions. The posting algorithm
(`ledger.core.posting`) calls these and never builds SQL itself.

The two databases serialise writers differently:

- SQLite: a writer holds the database write lock from `BEGIN IMMEDIATE` (see
  `ecovalue.db`), so every read of a write is already consistent and `FOR UPDATE` is a no-op;
- PostgreSQL: a write takes the period lock (a shared transaction-level advisory lock that
  closing a month takes exclusively) in its first statement, and row-locks the balance rows
  it touches in ascending account id (`SELECT ... FOR UPDATE ORDER BY account_id`), so
  concurrent writers never deadlock. The closed months are read in a statement after the
  period lock (each statement sees the rows committed before it began), with the balance rows.

Hot statements are Core statements built once at import, with bind parameters, so that
SQLAlchemy compiles each once per dialect and reuses it: a single POST runs a handful of
statements and building them per request cost more CPU than executing them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import idempotency
from ecovalue.db import bulk_insert, dialect_name, insert_ignoring_conflicts, pipelined
from ecovalue.errors import IdempotencyKeyReused
from ledger.core.models import (
    LedgerAccount,
    LedgerAsset,
    LedgerBalance,
    LedgerPendingHold,
    LedgerPeriod,
    LedgerPosting,
    LedgerTransaction,
)
from ledger.core.rules import AccountRow, StoredLeg, Totals, split_refs

PERIOD_LOCK_KEY = 0x6C656467  # "ledg"
#: at most this many expired holds are released by one write (the sweep does the rest)
EXPIRED_HOLDS_PER_WRITE = 100

TX = LedgerTransaction.__table__
POSTINGS = LedgerPosting.__table__
BALANCES = LedgerBalance.__table__
HOLDS = LedgerPendingHold.__table__
ACCOUNTS = LedgerAccount.__table__
ASSETS = LedgerAsset.__table__
PERIODS = LedgerPeriod.__table__

SIGNED = sa.case((POSTINGS.c.direction == "credit", POSTINGS.c.amount),
                 else_=-POSTINGS.c.amount)


def _postgres(session: Session) -> bool:
    return dialect_name(session) == "postgresql"


def run(session: Session, statement: sa.Executable, params: Any = None) -> sa.CursorResult:
    """Execute a Core statement on the session's connection, in its transaction (Core
    statements need none of the ORM's per-statement work)."""
    return session.connection().execute(statement, params)


# --- statements, built once ------------------------------------------------------------------

_IDS: sa.BindParameter[Any] = sa.bindparam("ids", expanding=True)
_CODES: sa.BindParameter[Any] = sa.bindparam("codes", expanding=True)
_ACCOUNT_MATCH = sa.or_(ACCOUNTS.c.id.in_(_IDS), ACCOUNTS.c.code.in_(_CODES))
_ACCOUNT_COLUMNS = (ACCOUNTS.c.id, ACCOUNTS.c.code, ACCOUNTS.c.party_id, ACCOUNTS.c.kind,
                    ACCOUNTS.c.no_overdraft, ACCOUNTS.c.asset_id, ASSETS.c.code)
_SELECT_ACCOUNTS = sa.select(*_ACCOUNT_COLUMNS).join(
    ASSETS, ASSETS.c.id == ACCOUNTS.c.asset_id).where(_ACCOUNT_MATCH)
_KEY_MATCH = (TX.c.idempotency_scope == sa.bindparam("scope"),
              TX.c.idempotency_key == sa.bindparam("key"))
#: the key is held in the shared idempotency records (by another route, or our own claim)
_KEY_CLAIMED = sa.exists().where(idempotency.RECORDS.c.scope == sa.bindparam("scope"),
                                 idempotency.RECORDS.c.key == sa.bindparam("key"))
#: the guarded accounts the write debits (whose expired holds it releases)
_GUARDED_DEBITED = sa.select(ACCOUNTS.c.id).where(
    sa.or_(ACCOUNTS.c.id.in_(sa.bindparam("debit_ids", expanding=True)),
           ACCOUNTS.c.code.in_(sa.bindparam("debit_codes", expanding=True))),
    ACCOUNTS.c.no_overdraft.is_(True))
_EXPIRED_HOLDS_WHERE = (
    HOLDS.c.expires_at <= sa.bindparam("now"),
    sa.exists().where(POSTINGS.c.transaction_id == HOLDS.c.transaction_id,
                      POSTINGS.c.direction == "debit",
                      POSTINGS.c.account_id.in_(_GUARDED_DEBITED)))
_CLOSED_WHERE = (PERIODS.c.status == "closed",
                 PERIODS.c.month.in_(sa.bindparam("months", expanding=True)))
_AGGREGATE: dict[str, Callable[..., sa.FunctionElement[Any]]] = {
    "postgresql": sa.func.array_agg, "sqlite": sa.func.json_group_array}


def _closed_months(dialect: str) -> sa.ScalarSelect:
    """The closed months among `months`, aggregated into one value."""
    return sa.select(_AGGREGATE[dialect](PERIODS.c.month)).where(*_CLOSED_WHERE) \
        .scalar_subquery()


def _expired_holds(dialect: str) -> sa.ScalarSelect:
    """The expired open holds that debit a guarded account the write debits, aggregated."""
    return sa.select(_AGGREGATE[dialect](HOLDS.c.transaction_id)).where(*_EXPIRED_HOLDS_WHERE) \
        .scalar_subquery()


def _unpack(dialect: str, value: Any) -> list:
    """An aggregate of `_closed_months` / `_expired_holds` as a list."""
    if value is None:
        return []
    return json.loads(value) if dialect == "sqlite" else list(value)


#: the idempotency key's transaction and request hash, and whether another route claimed it
_KEY_LOOKUP = (sa.select(TX.c.id).where(*_KEY_MATCH).scalar_subquery().label("key_id"),
               sa.select(TX.c.request_hash).where(*_KEY_MATCH).scalar_subquery()
               .label("key_hash"),
               _KEY_CLAIMED.label("key_claimed"))
_FIND_BY_KEY = sa.select(*_KEY_LOOKUP)


def _accounts_with_key(*head_columns: Any) -> sa.Select:
    """One row per matching account carrying the key look-up and `head_columns`, or one row
    of NULL accounts if none matches."""
    head = sa.select(*head_columns, *_KEY_LOOKUP).subquery("head")
    return sa.select(*_ACCOUNT_COLUMNS, *head.c).select_from(head.outerjoin(
        ACCOUNTS, _ACCOUNT_MATCH).outerjoin(ASSETS, ASSETS.c.id == ACCOUNTS.c.asset_id))


_LOCK_PERIODS_SHARED = sa.func.pg_advisory_xact_lock_shared(PERIOD_LOCK_KEY)
#: the look-up of a write, one statement: the key, the accounts, the expired holds, and on
#: PostgreSQL the shared period lock
_LOOK_UP = {
    "postgresql": _accounts_with_key(_LOCK_PERIODS_SHARED.label("locked"),
                                     _expired_holds("postgresql").label("expired")),
    "sqlite": _accounts_with_key(_expired_holds("sqlite").label("expired")),
}
#: a transaction by id, for a reversal or a resolution; on PostgreSQL with the period lock
_ORIGINAL = {
    "postgresql": sa.select(TX, _LOCK_PERIODS_SHARED.label("locked")).where(
        TX.c.id == sa.bindparam("id")),
    "sqlite": sa.select(TX).where(TX.c.id == sa.bindparam("id")),
}
_LOCK_PERIODS_EXCLUSIVE = sa.select(sa.func.pg_advisory_xact_lock(PERIOD_LOCK_KEY))
_INSERT_HEADER = {dialect: insert_ignoring_conflicts(dialect, TX, returning=(TX.c.id,))
                  for dialect in ("postgresql", "sqlite")}
_HEADER_PARAMS = {c.key: sa.bindparam(c.key, type_=c.type) for c in TX.c if c.key != "id"}
_KEYED_HEADER = insert_ignoring_conflicts("postgresql", TX).values(_HEADER_PARAMS) \
    .returning(TX.c.id).cte("header")
_CLAIM = idempotency.claim_from(
    _KEYED_HEADER, scope=_HEADER_PARAMS["idempotency_scope"],
    key=_HEADER_PARAMS["idempotency_key"], request_hash=_HEADER_PARAMS["request_hash"],
    now=_HEADER_PARAMS["created_at"]).cte("claim")
#: PostgreSQL, one round trip: a keyed header and the key's claim in the shared records
#: (no row: the key is taken by a transaction; a NULL claim: by another route's request)
_INSERT_KEYED_HEADER_AND_CLAIM = sa.select(_KEYED_HEADER.c.id,
                                           sa.select(_CLAIM.c.id).scalar_subquery())
_BALANCE_COLUMNS = (BALANCES.c.account_id, BALANCES.c.posted_debits,
                    BALANCES.c.posted_credits, BALANCES.c.pending_debits,
                    BALANCES.c.pending_credits, BALANCES.c.last_effective_date,
                    BALANCES.c.version)
_LOCK_BALANCES = sa.select(*_BALANCE_COLUMNS).where(BALANCES.c.account_id.in_(_IDS)) \
    .order_by(BALANCES.c.account_id).with_for_update()
#: the balance rows locked, with the closed months among `months` (read after the period lock)
_LOCK_BALANCES_AND_CLOSED = {
    dialect: _LOCK_BALANCES.add_columns(_closed_months(dialect).label("closed"))
    for dialect in _AGGREGATE}
_CLOSED = {dialect: sa.select(_closed_months(dialect)) for dialect in _AGGREGATE}
_BALANCE_FIELDS = ("posted_debits", "posted_credits", "pending_debits", "pending_credits",
                   "last_effective_date", "version", "updated_at")
_UPDATE_BALANCES = BALANCES.update().where(
    BALANCES.c.account_id == sa.bindparam("b_id")).values(
    {k: sa.bindparam(k) for k in _BALANCE_FIELDS})
_INSERT_POSTINGS = POSTINGS.insert()
_INSERT_HOLD = HOLDS.insert()
_LEGS = sa.select(POSTINGS.c.transaction_id, POSTINGS.c.account_id, POSTINGS.c.direction,
                  POSTINGS.c.amount).where(POSTINGS.c.transaction_id.in_(_IDS)) \
    .order_by(POSTINGS.c.id)
_EXPIRED_HOLDS_ON = sa.select(HOLDS.c.transaction_id).where(
    HOLDS.c.expires_at <= sa.bindparam("now"),
    sa.exists().where(POSTINGS.c.transaction_id == HOLDS.c.transaction_id,
                      POSTINGS.c.direction == "debit",
                      POSTINGS.c.account_id.in_(sa.bindparam("account_ids", expanding=True)))
).limit(EXPIRED_HOLDS_PER_WRITE)


# --- look-ups --------------------------------------------------------------------------------


#: a key found: (transaction id, its request hash), or (None, None) when the key is held in
#: the shared idempotency records by another route's request
Found = tuple[int | None, str | None]


@dataclasses.dataclass
class Lookup:
    """What validating a write needs from the database, read in one statement: the
    accounts (by id and by code), the expired holds on the guarded accounts it debits, and,
    with a key, what is already stored under it."""

    accounts: dict[int | str, AccountRow]
    expired: list[int]
    found: Found | None = None


def _account_rows(rows: Iterable[Any]) -> dict[int | str, AccountRow]:
    out: dict[int | str, AccountRow] = {}
    for row in rows:
        if row[0] is not None:
            account = AccountRow(*row[:7])
            out[account.id] = account
            out[account.code] = account
    return out


def look_up(session: Session, refs: Iterable[int | str], debited: Iterable[int | str], *,
            now: dt.datetime, scope: str | None = None, key: str | None = None) -> Lookup:
    """The first statement of a write: takes the period lock (PostgreSQL), reads the
    idempotency key (a found key means a replay or a reuse: the caller answers before
    validating anything), the accounts named and the expired holds on those debited."""
    dialect = dialect_name(session)
    ids, codes = split_refs(refs)
    debit_ids, debit_codes = split_refs(debited)
    rows = run(session, _LOOK_UP[dialect], {
        "ids": ids, "codes": codes, "debit_ids": debit_ids, "debit_codes": debit_codes,
        "now": now, "scope": scope, "key": key}).all()
    head = rows[0]
    if key is not None and (head.key_id is not None or head.key_claimed):
        return Lookup({}, [], (head.key_id, head.key_hash))
    expired = sorted(set(_unpack(dialect, head.expired)))[:EXPIRED_HOLDS_PER_WRITE]
    return Lookup(_account_rows(rows), expired)


def find_by_key(session: Session, scope: str, key: str) -> Found | None:
    """What is stored under an idempotency key of `scope`, or None if it is free."""
    row: Sequence[Any] = run(session, _FIND_BY_KEY, {"scope": scope, "key": key}).one()
    tx_id, request_hash, claimed = row
    if tx_id is None and not claimed:
        return None
    return tx_id, request_hash


def resolve_accounts(session: Session, refs: Iterable[int | str]) -> dict[int | str, AccountRow]:
    """Accounts by id and by code, with their asset code; unknown refs are absent."""
    ids, codes = split_refs(refs)
    if not ids and not codes:
        return {}
    return _account_rows(run(session, _SELECT_ACCOUNTS, {"ids": ids, "codes": codes}))


def original(session: Session, tx_id: int) -> Any:
    """The transaction a reversal or a resolution follows (None if there is none), read as
    the first statement of that write (on PostgreSQL with the period lock)."""
    return run(session, _ORIGINAL[dialect_name(session)], {"id": tx_id}).first()


def reversal_of(session: Session, tx_id: int) -> int | None:
    return session.scalar(sa.select(TX.c.id).where(TX.c.reverses_id == tx_id))


def resolution_of(session: Session, tx_id: int) -> Any:
    """The resolution (id, phase) of a pending, if any."""
    return session.execute(sa.select(TX.c.id, TX.c.phase).where(TX.c.pending_id == tx_id)
                           ).first()


def pending_legs(session: Session, tx_ids: Iterable[int]) -> dict[int, list[StoredLeg]]:
    """The legs (account id, direction, amount) of each transaction."""
    out: dict[int, list[StoredLeg]] = defaultdict(list)
    ids = list(tx_ids)
    if ids:
        legs: Iterable[Sequence[Any]] = run(session, _LEGS, {"ids": ids})
        for tx_id, account_id, direction, amount in legs:
            out[tx_id].append((account_id, direction, amount))
    return dict(out)


def expired_holds_on(session: Session, account_ids: Iterable[int],
                     now: dt.datetime) -> dict[int, list[StoredLeg]]:
    """Expired, unresolved pendings that debit one of `account_ids`, with all their legs.
    Cheap: the holds table has only open pendings."""
    ids = list(set(account_ids))
    if not ids:
        return {}
    found: Sequence[int] = run(session, _EXPIRED_HOLDS_ON,
                               {"now": now, "account_ids": ids}).scalars().all()
    return pending_legs(session, found)


def expired_holds(session: Session, now: dt.datetime, limit: int) -> list[int]:
    """Every pending past its expiry, oldest first."""
    return list(session.scalars(sa.select(HOLDS.c.transaction_id).where(
        HOLDS.c.expires_at <= now).order_by(HOLDS.c.transaction_id).limit(limit)))


# --- locks -----------------------------------------------------------------------------------


def lock_periods_exclusive(session: Session) -> None:
    """Closing or reopening a month waits for the writes in flight and keeps new ones out
    until it commits (PostgreSQL; SQLite's writers are serialised already)."""
    if _postgres(session):
        session.execute(_LOCK_PERIODS_EXCLUSIVE)


def lock_balances(session: Session, account_ids: Iterable[int], months: Iterable[dt.date]
                  ) -> tuple[dict[int, Totals], list[dt.date]]:
    """Row-lock the balance rows in ascending account id, and read which of `months` are
    closed, in one statement. The caller's first statement took the period lock."""
    dialect = dialect_name(session)
    ids, months = sorted(set(account_ids)), sorted(set(months))
    if not months:
        return {r[0]: Totals(*r[1:]) for r in run(session, _LOCK_BALANCES, {"ids": ids})}, []
    rows = run(session, _LOCK_BALANCES_AND_CLOSED[dialect], {"ids": ids, "months": months}
               ).all()
    closed = rows[0][-1] if rows else run(session, _CLOSED[dialect], {"months": months}
                                          ).scalar()
    return {r[0]: Totals(*r[1:-1]) for r in rows}, [
        m if isinstance(m, dt.date) else dt.date.fromisoformat(m)
        for m in _unpack(dialect, closed)]


# --- writes ----------------------------------------------------------------------------------


def insert_header(session: Session, values: dict) -> int | None:
    """Insert one transaction header; None if a unique constraint (idempotency key, reversal
    or resolution of the same original) already holds a committed row. A keyed header also
    claims its key in the shared idempotency records (`ecovalue.idempotency.claim`), so no
    other route takes it; if one did, the key is refused."""
    keyed = values.get("idempotency_key") is not None
    if keyed and _postgres(session):
        row = run(session, _INSERT_KEYED_HEADER_AND_CLAIM,
                  {k: values.get(k) for k in _HEADER_PARAMS}).first()
        if row is None:
            return None
        if row[1] is None:
            raise IdempotencyKeyReused(idempotency.REUSED)
        return row[0]
    tx_id = run(session, _INSERT_HEADER[dialect_name(session)], values).scalar()
    if tx_id is not None and keyed and not idempotency.claim(
            session, values["idempotency_scope"], values["idempotency_key"],
            values["request_hash"], values["created_at"]):
        raise IdempotencyKeyReused(idempotency.REUSED)
    return tx_id


def writes(session: Session, *, reads_between: bool = False) -> Any:
    """A block of writes whose results are not read: on PostgreSQL queued and sent in one
    round trip with the audit append (`reads_between`: the block also reads, so the writes
    go one by one)."""
    return nullcontext() if reads_between else pipelined(session)


def insert_postings(session: Session, rows: list[dict]) -> None:
    if rows:
        run(session, _INSERT_POSTINGS, rows if len(rows) > 1 else rows[0])


def insert_hold(session: Session, tx_id: int, expires_at: dt.datetime | None) -> None:
    run(session, _INSERT_HOLD, {"transaction_id": tx_id, "expires_at": expires_at})


def delete_hold(session: Session, tx_id: int) -> Any:
    """Remove a pending's hold, returning its expiry (None if it had none: already resolved).
    Deleting the hold is what serialises racing resolutions of one pending."""
    return session.execute(HOLDS.delete().where(HOLDS.c.transaction_id == tx_id)
                           .returning(HOLDS.c.expires_at)).first()


def delete_expired_holds(session: Session, tx_ids: Iterable[int], now: dt.datetime
                         ) -> list[tuple[int, dt.datetime]]:
    """Remove the holds of those pendings that have expired (the DELETE serialises with a
    racing post/void); returns (pending id, expiry) of each removed, by id."""
    return sorted(session.execute(
        HOLDS.delete().where(HOLDS.c.transaction_id.in_(list(tx_ids)), HOLDS.c.expires_at <= now)
        .returning(HOLDS.c.transaction_id, HOLDS.c.expires_at)).all())


def write_balances(session: Session, totals: Mapping[int, Totals], now: dt.datetime) -> None:
    """Store the changed totals (one executemany)."""
    rows = [{"b_id": account_id, "posted_debits": t.posted_debits,
             "posted_credits": t.posted_credits, "pending_debits": t.pending_debits,
             "pending_credits": t.pending_credits,
             "last_effective_date": t.last_effective_date, "version": t.version + 1,
             "updated_at": now} for account_id, t in totals.items() if t.changed]
    if rows:
        run(session, _UPDATE_BALANCES, rows)


def daily_changes(session: Session, account_id: int, since: dt.date
                  ) -> tuple[int, list[tuple[dt.date, int]]]:
    """An account's posted balance before `since`, and its net change per day from then."""
    opening = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SIGNED), 0)).where(
        POSTINGS.c.account_id == account_id, POSTINGS.c.pending.is_(False),
        POSTINGS.c.effective_date < since)) or 0
    daily: Sequence[Sequence[Any]] = session.execute(
        sa.select(POSTINGS.c.effective_date, sa.func.sum(SIGNED)).where(
            POSTINGS.c.account_id == account_id, POSTINGS.c.pending.is_(False),
            POSTINGS.c.effective_date >= since)
        .group_by(POSTINGS.c.effective_date).order_by(POSTINGS.c.effective_date)).all()
    return int(opening), [(day, int(delta)) for day, delta in daily]


# --- batches ---------------------------------------------------------------------------------


def allocate_ids(session: Session, count: int) -> list[int]:
    """`count` transaction ids reserved up front, so postings can be built without a
    round trip per transaction. PostgreSQL: from the id sequence; SQLite: after the current
    maximum (safe: this writer holds the database write lock)."""
    if _postgres(session):
        return list(session.scalars(sa.text(
            "SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id')) "
            "FROM generate_series(1, :n)"), {"n": count}))
    start = session.scalar(sa.select(sa.func.coalesce(sa.func.max(TX.c.id), 0))) or 0
    return list(range(start + 1, start + 1 + count))


HEADER_COLUMNS = ("id", "type", "phase", "effective_date", "memo", "metadata", "author",
                  "created_at", "batch_id", "expires_at")
POSTING_COLUMNS = ("transaction_id", "account_id", "asset_id", "direction", "amount",
                   "effective_date", "pending")


class BatchRows:
    """The rows of a batch, built as tuples already in the driver's storage format (dates
    as ISO text and booleans as 0/1 on SQLite), converted once per transaction rather than
    once per value; `insert` writes them set-based (COPY or one executemany)."""

    def __init__(self, session: Session, *, author: str, now: dt.datetime,
                 batch_id: int) -> None:
        self.text_storage = not _postgres(session)
        self.author, self.batch_id, self.created = author, batch_id, self._stamp(now)
        self.headers: list[tuple] = []
        self.postings: list[tuple] = []
        self.holds: list[dict] = []

    def _stamp(self, value: dt.datetime | None) -> Any:
        if value is None or not self.text_storage:
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def add(self, tx_id: int, type_: str, phase: str, day: dt.date, memo: str | None,
            metadata: Mapping[str, Any] | None, expires_at: dt.datetime | None,
            legs: Sequence[tuple[AccountRow, str, int]]) -> None:
        stored_day = day.isoformat() if self.text_storage else day
        pending = phase == "pending"
        self.headers.append((tx_id, type_, phase, stored_day, memo,
                             json.dumps(dict(metadata)) if metadata is not None else None,
                             self.author, self.created, self.batch_id, self._stamp(expires_at)))
        if pending:
            self.holds.append({"transaction_id": tx_id, "expires_at": expires_at})
        flag = (1 if pending else 0) if self.text_storage else pending
        self.postings.extend((tx_id, acc.id, acc.asset_id, d, amount, stored_day, flag)
                             for acc, d, amount in legs)

    def insert(self, session: Session) -> None:
        bulk_insert(session, TX, HEADER_COLUMNS, self.headers)
        bulk_insert(session, POSTINGS, POSTING_COLUMNS, self.postings)
        if self.holds:
            session.execute(_INSERT_HOLD, self.holds)
