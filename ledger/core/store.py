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

The statement budget (issue 15, tests/ledger/test_statement_budget.py). A write is a look-up
and a write. PostgreSQL: the look-up is one call of `ledger_write_look_up` (migration l0002:
the period lock, the key's claim, the accounts, the expired holds, the balance rows locked,
the closed months, the new transaction's id) and the write one statement (a data-modifying
CTE: header, postings, hold, balances, and the audit append reading the header's row, so
the chain's lock is taken last): three round trips with the BEGIN. SQLite: the look-up is
one prebuilt statement on the driver's cursor (accounts, key, expired holds, balance rows,
closed months, the audit chain's head, which the writer's database lock keeps current), the
write a few more there, without SQLAlchemy's per-statement work. Reversals and resolutions
read their original with its legs and its reversal in one statement (`original`), then go
as a post does (resolution: after the hold's delete). Batches and the rare paths (expired
holds to release first, a back-dated debit) use the same look-up and the Core statements
below, built once at import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit, idempotency
from ecovalue.audit.models import AuditEvent
from ecovalue.auth.policy import Principal
from ecovalue.db import (
    bulk_insert,
    dialect_name,
    fetch_one,
    insert_ignoring_conflicts,
    pipelined,
    storage_rows,
)
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
AUDIT_TABLE = AuditEvent.__table__

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
_FOLLOWER = TX.alias("follower")
#: the reversal of the transaction `id`, if any
_REVERSED_BY = sa.select(_FOLLOWER.c.id).where(_FOLLOWER.c.reverses_id == TX.c.id) \
    .scalar_subquery()
_LEG_ROW = {"postgresql": sa.func.json_build_array, "sqlite": sa.func.json_array}
_JSON_AGGREGATE = {"postgresql": sa.func.json_agg, "sqlite": sa.func.json_group_array}


def _legs_of_original(dialect: str) -> sa.ScalarSelect:
    """The original's legs as one JSON array of [posting id, account id, direction, amount]
    (in no set order: `original` sorts them by posting id)."""
    return sa.select(_JSON_AGGREGATE[dialect](_LEG_ROW[dialect](
        POSTINGS.c.id, POSTINGS.c.account_id, POSTINGS.c.direction, POSTINGS.c.amount))) \
        .where(POSTINGS.c.transaction_id == TX.c.id).scalar_subquery()


#: a transaction by id, for a reversal or a resolution, with its reversal and its legs; on
#: PostgreSQL with the period lock
_ORIGINAL = {
    "postgresql": sa.select(TX, _LOCK_PERIODS_SHARED.label("locked"),
                            _REVERSED_BY.label("reversed_by"),
                            _legs_of_original("postgresql").label("legs_json")).where(
        TX.c.id == sa.bindparam("id")),
    "sqlite": sa.select(TX, _REVERSED_BY.label("reversed_by"),
                        _legs_of_original("sqlite").label("legs_json")).where(
        TX.c.id == sa.bindparam("id")),
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
    with a key, what is already stored under it. The same statement also reads the balance
    rows (`locked`: on PostgreSQL locked FOR UPDATE by `ledger_write_look_up`, migration
    l0002, which also claims the key and reserves the transaction's id; on SQLite the
    writer's database lock covers them) and which of the months asked for are closed."""

    accounts: dict[int | str, AccountRow]
    expired: list[int]
    found: Found | None = None
    #: the balance rows of the accounts (PostgreSQL: and of the expired holds' legs), locked
    locked: dict[int, Totals] | None = None
    #: PostgreSQL: the legs of the expired holds (`expired`)
    expired_legs: dict[int, list[StoredLeg]] = dataclasses.field(default_factory=dict)
    #: which of the months asked for are closed
    closed: list[dt.date] = dataclasses.field(default_factory=list)
    #: PostgreSQL: the id reserved for the transaction
    tx_id: int | None = None
    #: PostgreSQL: the key is claimed in the shared records (the header must not claim it)
    claimed: bool = False
    #: SQLite: the audit chain's head (seq, hash) as the look-up read it (None: empty chain)
    audit_head: tuple[int, str] | None = None


def _account_rows(rows: Iterable[Any]) -> dict[int | str, AccountRow]:
    out: dict[int | str, AccountRow] = {}
    for row in rows:
        if row[0] is not None:
            account = AccountRow(*row[:7])
            out[account.id] = account
            out[account.code] = account
    return out


#: PostgreSQL: the look-up and locks of a write in one round trip (migration l0002, whose
#: docstring says what it does in which order); driver level, its arguments typed here
_WRITE_LOOK_UP = (
    "SELECT ledger_write_look_up(%s, %s::bigint[], %s::text[], %s::bigint[], %s::text[], "
    "%s::date[], %s::timestamptz, %s::text, %s::text, %s::text, %s::integer, %s::text, "
    "%s::integer)")


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _postgres_look_up(session: Session, ids: list[int], codes: list[str],
                      debit_ids: list[int], debit_codes: list[str], *, now: dt.datetime,
                      months: Iterable[dt.date], scope: str | None, key: str | None,
                      request_hash: str | None) -> Lookup:
    claim = idempotency.claim_values("", "", "", now)
    row = fetch_one(session, _WRITE_LOOK_UP, (
        PERIOD_LOCK_KEY, ids, codes, debit_ids, debit_codes, sorted(set(months)), now, scope,
        key, request_hash, claim["status_code"], claim["content_type"],
        EXPIRED_HOLDS_PER_WRITE))
    assert row is not None
    doc = row[0]
    if doc["found"] is not None:
        return Lookup({}, [], (doc["found"][0], doc["found"][1]))
    accounts: dict[int | str, AccountRow] = {}
    for values in doc["accounts"]:
        account = AccountRow(*values)
        accounts[account.id] = account
        accounts[account.code] = account
    legs: dict[int, list[StoredLeg]] = defaultdict(list)
    for tx_id, account_id, direction, amount in doc["legs"]:
        legs[tx_id].append((account_id, direction, amount))
    locked = {b[0]: Totals(b[1], b[2], b[3], b[4], _date(b[5]), b[6])
              for b in doc["balances"]}
    return Lookup(accounts, list(doc["expired"]), locked=locked, expired_legs=dict(legs),
                  closed=[dt.date.fromisoformat(m) for m in doc["closed"]], tx_id=doc["id"],
                  claimed=key is not None)


def look_up(session: Session, refs: Iterable[int | str], debited: Iterable[int | str], *,
            now: dt.datetime, scope: str | None = None, key: str | None = None,
            request_hash: str | None = None, months: Iterable[dt.date] = ()) -> Lookup:
    """The first statement of a write: takes the period lock (PostgreSQL), reads the
    idempotency key (a found key means a replay or a reuse: the caller answers before
    validating anything), the accounts named and the expired holds on those debited. On
    PostgreSQL also what `Lookup` says (the locks, `months` closed, the id, the key's claim
    with `request_hash`)."""
    dialect = dialect_name(session)
    ids, codes = split_refs(refs)
    debit_ids, debit_codes = split_refs(debited)
    if dialect == "postgresql":
        return _postgres_look_up(session, ids, codes, debit_ids, debit_codes, now=now,
                                 months=months, scope=scope, key=key,
                                 request_hash=request_hash)
    if dialect == "sqlite":
        return _sqlite_look_up(session, ids, codes, debit_ids, debit_codes, now=now,
                               months=months, scope=scope, key=key)
    rows = run(session, _LOOK_UP[dialect], {  # pragma: no cover - only the two databases
        "ids": ids, "codes": codes, "debit_ids": debit_ids, "debit_codes": debit_codes,
        "now": now, "scope": scope, "key": key}).all()
    head = rows[0]  # pragma: no cover
    if key is not None and (head.key_id is not None or head.key_claimed):  # pragma: no cover
        return Lookup({}, [], (head.key_id, head.key_hash))
    expired = sorted(set(_unpack(dialect, head.expired)))[:EXPIRED_HOLDS_PER_WRITE]
    return Lookup(_account_rows(rows), expired)  # pragma: no cover


# --- SQLite: the hot statements at the driver ---------------------------------------------------
#
# A SQLite writer holds the database lock from BEGIN IMMEDIATE to its commit, so what a write
# reads is what it writes on, and the lock's holder is every other writer's bottleneck: the
# hot path runs prebuilt SQL on the driver's own cursor (no statement compilation, no
# `expanding` IN lists: JSON arrays through json_each), values converted to the storage
# format SQLAlchemy's column types use (dates and timestamps as ISO text, booleans as 0/1).

_SQLITE_LOOK_UP = """
WITH head AS MATERIALIZED (
  SELECT
    (SELECT t.id FROM ledger_transactions AS t
      WHERE t.idempotency_scope = :scope AND t.idempotency_key = :key) AS key_id,
    (SELECT t.request_hash FROM ledger_transactions AS t
      WHERE t.idempotency_scope = :scope AND t.idempotency_key = :key) AS key_hash,
    EXISTS (SELECT 1 FROM idempotency_records AS r
             WHERE r.scope = :scope AND r."key" = :key) AS key_claimed,
    (SELECT json_group_array(h.transaction_id) FROM ledger_pending_holds AS h
      WHERE h.expires_at <= :now AND EXISTS (
            SELECT 1 FROM ledger_postings AS p JOIN ledger_accounts AS g ON g.id = p.account_id
             WHERE p.transaction_id = h.transaction_id AND p.direction = 'debit'
               AND g.no_overdraft = 1
               AND (g.id IN (SELECT value FROM json_each(:debit_ids))
                    OR g.code IN (SELECT value FROM json_each(:debit_codes))))) AS expired,
    (SELECT json_group_array(m.month) FROM ledger_periods AS m
      WHERE m.status = 'closed' AND m.month IN (SELECT value FROM json_each(:months)))
      AS closed,
    (SELECT e.seq FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1) AS audit_seq,
    (SELECT e.hash FROM audit_events AS e ORDER BY e.seq DESC LIMIT 1) AS audit_hash
), refs AS MATERIALIZED (
  SELECT a.id AS id FROM json_each(:codes) AS j JOIN ledger_accounts AS a ON a.code = j.value
  UNION SELECT j.value FROM json_each(:ids) AS j
)
SELECT head.key_id, head.key_hash, head.key_claimed, head.expired, head.closed,
       head.audit_seq, head.audit_hash, NULL, NULL, NULL, NULL, NULL, NULL
  FROM head
UNION ALL
SELECT a.id, a.code, a.party_id, a.kind, a.no_overdraft, a.asset_id, s.code,
       b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits,
       b.last_effective_date, b.version
  FROM refs
  JOIN ledger_accounts AS a ON a.id = refs.id
  JOIN ledger_assets AS s ON s.id = a.asset_id
  LEFT JOIN ledger_balances AS b ON b.account_id = a.id
"""


def stamp(value: dt.datetime | None) -> str | None:
    """SQLite: a UTC timestamp as SQLAlchemy's DateTime stores it (naive UTC ISO text)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _day(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


@contextlib.contextmanager
def _driver_cursor(session: Session) -> Iterator[Any]:
    """SQLite: a cursor of the driver's own, in the session's transaction; a driver error
    becomes the exception SQLAlchemy would raise (so the app maps it as usual)."""
    driver: Any = session.connection().connection.driver_connection  # sqlite3's Connection
    cursor = driver.cursor()
    try:
        yield cursor
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
    finally:
        cursor.close()


def _sqlite_look_up(session: Session, ids: list[int], codes: list[str],
                    debit_ids: list[int], debit_codes: list[str], *, now: dt.datetime,
                    months: Iterable[dt.date], scope: str | None, key: str | None) -> Lookup:
    with _driver_cursor(session) as cursor:
        rows = cursor.execute(_SQLITE_LOOK_UP, {
            "ids": json.dumps(ids), "codes": json.dumps(codes),
            "debit_ids": json.dumps(debit_ids), "debit_codes": json.dumps(debit_codes),
            "months": json.dumps([m.isoformat() for m in sorted(set(months))]),
            "now": stamp(now), "scope": scope, "key": key}).fetchall()
    # the first row is the head (key, expired holds, closed months, audit head), then one
    # row per account found, with its balance row
    head = rows[0]
    if key is not None and (head[0] is not None or head[2]):
        return Lookup({}, [], (head[0], head[1]))
    accounts: dict[int | str, AccountRow] = {}
    locked: dict[int, Totals] = {}
    dates: dict[str, dt.date] = {}
    for row in rows[1:]:
        account = AccountRow(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])
        accounts[row[0]] = accounts[row[1]] = account
        if row[7] is not None:
            day = row[11]  # a date shared by many rows is parsed once
            last = None if day is None else dates.get(day) or dates.setdefault(
                day, dt.date.fromisoformat(day))
            locked[row[0]] = Totals(row[7], row[8], row[9], row[10], last, row[12])
    expired = sorted(set(json.loads(head[3])))[:EXPIRED_HOLDS_PER_WRITE]
    return Lookup(accounts, expired, locked=locked,
                  closed=[dt.date.fromisoformat(m) for m in json.loads(head[4])],
                  claimed=False, audit_head=(head[5], head[6]) if head[5] else None)


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


@dataclasses.dataclass(frozen=True)
class Original:
    """The transaction a reversal or a resolution follows: its row, the id of its reversal
    (None if it has none) and its legs in posting order."""

    row: Any
    reversed_by: int | None
    legs: list[StoredLeg]


def original(session: Session, tx_id: int) -> Original | None:
    """The transaction a reversal or a resolution follows (None if there is none), with its
    reversal and its legs, read in one statement as the first of that write (on PostgreSQL
    with the period lock). A reversal found here is only the early, friendly answer: the
    unique reversal per original is what the header's insert enforces."""
    dialect = dialect_name(session)
    row = run(session, _ORIGINAL[dialect], {"id": tx_id}).first()
    if row is None:
        return None
    legs = row.legs_json
    if isinstance(legs, str):
        legs = json.loads(legs)
    return Original(row, row.reversed_by, [
        (account_id, direction, amount)
        for _, account_id, direction, amount in sorted(legs or [], key=lambda leg: leg[0])])


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
    if not months or dialect == "sqlite":
        # SQLite evaluates the closed-months subquery again for every row it returns (2 s
        # for 10,000 accounts); without round trips to save, it asks for them apart
        totals = {r[0]: Totals(*r[1:]) for r in run(session, _LOCK_BALANCES, {"ids": ids})}
        if not months:
            return totals, []
        closed = run(session, _CLOSED[dialect], {"months": months}).scalar()
        return totals, [dt.date.fromisoformat(m) if isinstance(m, str) else m
                        for m in _unpack(dialect, closed)]
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


#: PostgreSQL: the changed totals in one statement, whatever their number
_POSTGRES_BALANCES = """
UPDATE ledger_balances AS b
   SET posted_debits = v.posted_debits, posted_credits = v.posted_credits,
       pending_debits = v.pending_debits, pending_credits = v.pending_credits,
       last_effective_date = v.last_effective_date, version = v.version,
       updated_at = %s::timestamptz
  FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
              %s::date[], %s::bigint[])
       AS v(account_id, posted_debits, posted_credits, pending_debits, pending_credits,
            last_effective_date, version)
 WHERE b.account_id = v.account_id
"""


def write_balances(session: Session, totals: Mapping[int, Totals], now: dt.datetime) -> None:
    """Store the changed totals: one statement at the driver (PostgreSQL: arrays unnested;
    SQLite: one executemany on the driver's cursor), so that a batch over 100,000 accounts
    costs no per-row statement assembly."""
    changed = [(a, t) for a, t in totals.items() if t.changed]
    if not changed:
        return
    if _postgres(session):
        driver: Any = session.connection().connection.driver_connection
        params = (now, [a for a, _ in changed], [t.posted_debits for _, t in changed],
                  [t.posted_credits for _, t in changed], [t.pending_debits for _, t in changed],
                  [t.pending_credits for _, t in changed],
                  [t.last_effective_date for _, t in changed],
                  [t.version + 1 for _, t in changed])
        try:
            with driver.cursor() as cursor:
                cursor.execute(_POSTGRES_BALANCES, params)
        except driver.Error as exc:
            raise sa.exc.DBAPIError.instance(_POSTGRES_BALANCES, params, exc,
                                             driver.Error) from exc
        return
    updated = stamp(now)
    # the rows of a batch share a few dates: each is converted to text once
    days: dict[dt.date | None, str | None] = {None: None}
    with _driver_cursor(session) as cursor:
        cursor.executemany(_SQLITE_BALANCES, [
            (t.posted_debits, t.posted_credits, t.pending_debits, t.pending_credits,
             days[t.last_effective_date] if t.last_effective_date in days
             else days.setdefault(t.last_effective_date, _day(t.last_effective_date)),
             t.version + 1, updated, a) for a, t in changed])


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


# --- PostgreSQL: a write in one statement -----------------------------------------------------

_WRITE_HEAD = """
WITH header AS (
    INSERT INTO ledger_transactions (id, type, phase, effective_date, memo, metadata, author,
                                     created_at, reverses_id, pending_id, expires_at, batch_id,
                                     idempotency_scope, idempotency_key, request_hash)
    VALUES (%s, %s, %s, %s::date, %s, %s::json, %s, %s::timestamptz, %s::bigint, %s::bigint,
            %s::timestamptz, %s::bigint, %s, %s, %s)
    ON CONFLICT DO NOTHING RETURNING id
), postings AS (
    INSERT INTO ledger_postings (transaction_id, account_id, asset_id, direction, amount,
                                 effective_date, pending)
    SELECT header.id, leg.account_id, leg.asset_id, leg.direction, leg.amount, %s::date,
           %s::boolean
      FROM header, unnest(%s::bigint[], %s::bigint[], %s::text[], %s::bigint[])
           WITH ORDINALITY AS leg(account_id, asset_id, direction, amount, n)
     ORDER BY leg.n
), hold AS (
    INSERT INTO ledger_pending_holds (transaction_id, expires_at)
    SELECT header.id, %s::timestamptz FROM header WHERE %s::boolean
), balances AS (
    UPDATE ledger_balances AS b
       SET posted_debits = v.posted_debits, posted_credits = v.posted_credits,
           pending_debits = v.pending_debits, pending_credits = v.pending_credits,
           last_effective_date = v.last_effective_date, version = v.version,
           updated_at = %s::timestamptz
      FROM header, unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                          %s::bigint[], %s::date[], %s::bigint[])
           AS v(account_id, posted_debits, posted_credits, pending_debits, pending_credits,
                last_effective_date, version)
     WHERE b.account_id = v.account_id
)
"""
#: the write and the audit append in one round trip: the append reads the header's row, so
#: it runs (and takes the audit chain's lock) only once the row is in, after every row lock
_WRITE_AND_AUDIT = _WRITE_HEAD + f"SELECT header.id, {audit.APPEND_CALL} FROM header"
#: the same without the audit append, for a write that reads between (a back-dated debit)
_WRITE_ONLY = _WRITE_HEAD + "SELECT header.id, NULL FROM header"


def write_transaction(session: Session, actor: Principal, lookup: Lookup,
                      values: Mapping[str, Any], postings: Callable[[int], list[dict]],
                      hold: bool, totals: Mapping[int, Totals], now: dt.datetime,
                      change: Callable[[int], audit.Change] | None) -> int | None:
    """A write after a look-up that locked its balance rows (`Lookup.locked`): the header
    (its key claimed), its postings (`postings(tx_id)`), the pending's hold, the changed
    totals and, with `change`, the audit append of `change(tx_id)`. PostgreSQL: one
    statement, with the id the look-up reserved and the key it claimed; SQLite: the driver's
    cursor, the audit event linked to the head the look-up read. None if a unique constraint
    holds an equal committed row (nothing of the write is then done)."""
    changed = [(a, t) for a, t in totals.items() if t.changed]
    metadata = values.get("metadata")
    stored_metadata = json.dumps(metadata) if metadata is not None else None
    if dialect_name(session) == "sqlite":
        return _sqlite_write(session, actor, lookup, values, stored_metadata, postings, hold,
                             changed, now, change)
    assert lookup.tx_id is not None
    tx_id = lookup.tx_id
    rows = postings(tx_id)
    params: list[Any] = [
        tx_id, values["type"], values["phase"], values["effective_date"], values.get("memo"),
        stored_metadata, values["author"], values["created_at"], values.get("reverses_id"),
        values.get("pending_id"), values.get("expires_at"), values.get("batch_id"),
        values.get("idempotency_scope"), values.get("idempotency_key"),
        values.get("request_hash"),
        values["effective_date"], values["phase"] == "pending",
        [r["account_id"] for r in rows], [r["asset_id"] for r in rows],
        [r["direction"] for r in rows], [r["amount"] for r in rows],
        values.get("expires_at"), hold,
        now, [a for a, _ in changed], [t.posted_debits for _, t in changed],
        [t.posted_credits for _, t in changed], [t.pending_debits for _, t in changed],
        [t.pending_credits for _, t in changed], [t.last_effective_date for _, t in changed],
        [t.version + 1 for _, t in changed]]
    if change is not None:
        params.extend(audit.append_arguments(session, actor, [change(tx_id)]))
    row = fetch_one(session, _WRITE_AND_AUDIT if change is not None else _WRITE_ONLY,
                    tuple(params))
    return None if row is None else row[0]


_SQLITE_HEADER = (
    "INSERT INTO ledger_transactions (type, phase, effective_date, memo, metadata, author, "
    "created_at, reverses_id, pending_id, expires_at, batch_id, idempotency_scope, "
    "idempotency_key, request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING")
_SQLITE_CLAIM = (
    'INSERT INTO idempotency_records (scope, "key", request_hash, status_code, content_type, '
    "location, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
_SQLITE_POSTINGS = (
    "INSERT INTO ledger_postings (transaction_id, account_id, asset_id, direction, amount, "
    "effective_date, pending) VALUES (?, ?, ?, ?, ?, ?, ?)")
_SQLITE_HOLD = "INSERT INTO ledger_pending_holds (transaction_id, expires_at) VALUES (?, ?)"
_SQLITE_BALANCES = (
    "UPDATE ledger_balances SET posted_debits = ?, posted_credits = ?, pending_debits = ?, "
    "pending_credits = ?, last_effective_date = ?, version = ?, updated_at = ? "
    "WHERE account_id = ?")
AUDIT_COLUMNS = ("seq", "occurred_at", "actor", "action", "entity_type", "entity_id", "before",
                 "after", "request_id", "prev_hash", "hash")


def _sqlite_write(session: Session, actor: Principal, lookup: Lookup, values: Mapping[str, Any],
                  stored_metadata: str | None, postings: Callable[[int], list[dict]],
                  hold: bool, changed: list[tuple[int, Totals]], now: dt.datetime,
                  change: Callable[[int], audit.Change] | None) -> int | None:
    session.flush()  # pending ORM rows go first, as a Core statement would not wait for them
    with _driver_cursor(session) as cursor:
        expires_at = stamp(values.get("expires_at"))
        created = stamp(values["created_at"])
        cursor.execute(_SQLITE_HEADER, (
            values["type"], values["phase"], _day(values["effective_date"]),
            values.get("memo"), stored_metadata, values["author"], created,
            values.get("reverses_id"), values.get("pending_id"), expires_at,
            values.get("batch_id"), values.get("idempotency_scope"),
            values.get("idempotency_key"), values.get("request_hash")))
        if cursor.rowcount != 1:
            return None
        tx_id: int = cursor.lastrowid
        if values.get("idempotency_key") is not None:
            claim = idempotency.claim_values(values["idempotency_scope"],
                                             values["idempotency_key"], values["request_hash"],
                                             now)
            cursor.execute(_SQLITE_CLAIM, (
                claim["scope"], claim["key"], claim["request_hash"], claim["status_code"],
                claim["content_type"], claim["location"], claim["body"],
                stamp(claim["created_at"])))
            if cursor.rowcount != 1:
                raise IdempotencyKeyReused(idempotency.REUSED)
        pending = 1 if values["phase"] == "pending" else 0
        cursor.executemany(_SQLITE_POSTINGS, [
            (tx_id, r["account_id"], r["asset_id"], r["direction"], r["amount"],
             _day(r["effective_date"]), pending) for r in postings(tx_id)])
        if hold:
            cursor.execute(_SQLITE_HOLD, (tx_id, expires_at))
        if changed:
            updated = stamp(now)
            cursor.executemany(_SQLITE_BALANCES, [
                (t.posted_debits, t.posted_credits, t.pending_debits, t.pending_credits,
                 _day(t.last_effective_date), t.version + 1, updated, a) for a, t in changed])
    if change is not None:
        rows = audit.chain_rows(session, actor, [change(tx_id)], lookup.audit_head)
        bulk_insert(session, AUDIT_TABLE, AUDIT_COLUMNS,
                    storage_rows(session, AUDIT_TABLE, AUDIT_COLUMNS, rows))
    return tx_id
