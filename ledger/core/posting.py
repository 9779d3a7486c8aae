"""The posting engine: validate, lock, write, in one database transaction.

Order of work for every write (single transaction, batch, resolution, reversal):

1. validate everything in Python and collect all errors (nothing touches the database yet
   except reading the accounts);
2. authorize: a trader may only debit accounts of its own party;
3. refuse dates in closed periods (on PostgreSQL under a shared advisory lock that closing a
   period takes exclusively, so a close cannot slip in between the check and the commit);
4. insert the transaction header(s); with an idempotency key the insert is
   `ON CONFLICT DO NOTHING`, so a racing duplicate waits for the first and then replays it;
5. lock the balance rows of every account touched, in ascending account id (one
   `SELECT ... FOR UPDATE ORDER BY account_id`), so concurrent writers never deadlock;
6. check the no-overdraft guard on the new totals, insert the postings, update the totals
   (set-based: one multi-row insert, one executemany update), audit.

The caller owns the unit of work and commits; any exception leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ecovalue import audit, idempotency
from ecovalue.auth.policy import Principal, Role, authorize
from ecovalue.db import pipelined
from ecovalue.errors import BadRequest, Forbidden, IdempotencyKeyReused
from ledger.core import errors as E
from ledger.core.amounts import MAX_AMOUNT, amount_problem
from ledger.core.calendar import format_month, local_date, month_of
from ledger.core.models import (
    LedgerAccount,
    LedgerAsset,
    LedgerBalance,
    LedgerBatch,
    LedgerPendingHold,
    LedgerPeriod,
    LedgerPosting,
    LedgerTransaction,
)

TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,39}$")
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_POSTINGS = 1000
MAX_BATCH = 100_000
PERIOD_LOCK_KEY = 0x6C656467  # "ledg"
#: transaction types the engine sets itself; clients cannot use them
RESERVED_TYPES = frozenset({"reversal", "pending_resolution"})

TX = LedgerTransaction.__table__
POSTINGS = LedgerPosting.__table__
BALANCES = LedgerBalance.__table__
HOLDS = LedgerPendingHold.__table__
ACCOUNTS = LedgerAccount.__table__
ASSETS = LedgerAsset.__table__
PERIODS = LedgerPeriod.__table__


# --- statements of the write path, built once ------------------------------------------------
# A single POST runs about ten statements; building each one per request (and computing its
# cache key) cost more CPU than executing it. These are Core statements with bind parameters
# (`expanding` for IN lists), so SQLAlchemy compiles each once per dialect and reuses it.

_IDS, _CODES = sa.bindparam("ids", expanding=True), sa.bindparam("codes", expanding=True)
_ACCOUNT_MATCH = sa.or_(ACCOUNTS.c.id.in_(_IDS), ACCOUNTS.c.code.in_(_CODES))
_ACCOUNT_COLUMNS = (ACCOUNTS.c.id, ACCOUNTS.c.code, ACCOUNTS.c.party_id, ACCOUNTS.c.kind,
                    ACCOUNTS.c.no_overdraft, ACCOUNTS.c.asset_id, ASSETS.c.code)
_SELECT_ACCOUNTS = sa.select(*_ACCOUNT_COLUMNS).join(
    ASSETS, ASSETS.c.id == ACCOUNTS.c.asset_id).where(_ACCOUNT_MATCH)
#: expired open holds that debit one of the matched accounts
_EXPIRED_HOLDS = sa.select(HOLDS.c.transaction_id).where(
    HOLDS.c.expires_at <= sa.bindparam("now"),
    sa.exists().where(POSTINGS.c.transaction_id == HOLDS.c.transaction_id,
                      POSTINGS.c.direction == "debit",
                      POSTINGS.c.account_id.in_(sa.bindparam("account_ids", expanding=True)))
).limit(100)
_CLOSED_MONTHS = sa.select(PERIODS.c.month).where(
    PERIODS.c.status == "closed", PERIODS.c.month.in_(sa.bindparam("months", expanding=True)))
_KEY_MATCH = (TX.c.idempotency_scope == sa.bindparam("scope"),
              TX.c.idempotency_key == sa.bindparam("key"))
#: the key is held in the shared idempotency records (by another route, or our own claim)
_KEY_CLAIMED = sa.exists().where(idempotency.RECORDS.c.scope == sa.bindparam("scope"),
                                 idempotency.RECORDS.c.key == sa.bindparam("key"))


#: the guarded accounts this write debits (whose expired holds it releases)
_GUARDED_DEBITED = sa.select(ACCOUNTS.c.id).where(
    sa.or_(ACCOUNTS.c.id.in_(sa.bindparam("debit_ids", expanding=True)),
           ACCOUNTS.c.code.in_(sa.bindparam("debit_codes", expanding=True))),
    ACCOUNTS.c.no_overdraft.is_(True))


def _hints(aggregate: Any) -> tuple[sa.ScalarSelect, sa.ScalarSelect]:
    """The closed months among `months` and the expired open holds that debit one of the
    guarded accounts the write debits (as `expired_holds_touching` finds them), each
    aggregated into one value."""
    closed = sa.select(aggregate(PERIODS.c.month)).where(
        PERIODS.c.status == "closed",
        PERIODS.c.month.in_(sa.bindparam("months", expanding=True))).scalar_subquery()
    expired = sa.select(aggregate(HOLDS.c.transaction_id)).where(
        HOLDS.c.expires_at <= sa.bindparam("now"),
        sa.exists().where(POSTINGS.c.transaction_id == HOLDS.c.transaction_id,
                          POSTINGS.c.direction == "debit",
                          POSTINGS.c.account_id.in_(_GUARDED_DEBITED))
    ).scalar_subquery()
    return closed, expired


#: PostgreSQL (after the period lock): accounts, closed months, expired holds
_SELECT_ACCOUNTS_WITH_HINTS = sa.select(*_ACCOUNT_COLUMNS, *_hints(sa.func.array_agg)).join(
    ASSETS, ASSETS.c.id == ACCOUNTS.c.asset_id).where(_ACCOUNT_MATCH)
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


#: SQLite (whose writer holds the database lock already): accounts, closed months, expired
#: holds and the key in one statement
_SELECT_ACCOUNTS_WITH_HINTS_AND_KEY = _accounts_with_key(
    *(c.label(n) for c, n in zip(_hints(sa.func.json_group_array), ("closed", "expired"),
                                 strict=True)))
#: PostgreSQL, one round trip: the shared period lock, the key, the accounts and the expired
#: holds. The closed months are NOT read here: this statement's snapshot predates the lock,
#: so they are read with the balance rows (`_LOCK_BALANCES_AND_CLOSED`), after it.
_LOCK_AND_LOOK_UP = _accounts_with_key(
    sa.func.pg_advisory_xact_lock_shared(PERIOD_LOCK_KEY).label("locked"),
    _hints(sa.func.array_agg)[1].label("expired"))
_LOCK_PERIODS_SHARED = sa.select(sa.func.pg_advisory_xact_lock_shared(PERIOD_LOCK_KEY))
_INSERT_HEADER = {
    "postgresql": postgresql.insert(TX).on_conflict_do_nothing().returning(TX.c.id),
    "sqlite": sqlite.insert(TX).on_conflict_do_nothing().returning(TX.c.id),
}
_HEADER_PARAMS = {c.key: sa.bindparam(c.key, type_=c.type) for c in TX.c if c.key != "id"}
_KEYED_HEADER = postgresql.insert(TX).values(_HEADER_PARAMS).on_conflict_do_nothing() \
    .returning(TX.c.id).cte("header")
_CLAIM = idempotency.claim_from(
    _KEYED_HEADER, scope=_HEADER_PARAMS["idempotency_scope"],
    key=_HEADER_PARAMS["idempotency_key"], request_hash=_HEADER_PARAMS["request_hash"],
    now=_HEADER_PARAMS["created_at"]).cte("claim")
#: PostgreSQL, one round trip: a keyed header and the key's claim in the shared records
#: (no row: the key is taken by a transaction; a NULL claim: by another route's request)
_INSERT_KEYED_HEADER_AND_CLAIM = sa.select(_KEYED_HEADER.c.id,
                                           sa.select(_CLAIM.c.id).scalar_subquery())
_LOCK_BALANCES = sa.select(
    BALANCES.c.account_id, BALANCES.c.posted_debits, BALANCES.c.posted_credits,
    BALANCES.c.pending_debits, BALANCES.c.pending_credits, BALANCES.c.last_effective_date,
    BALANCES.c.version,
).where(BALANCES.c.account_id.in_(_IDS)).order_by(BALANCES.c.account_id).with_for_update()
#: PostgreSQL: the balance rows locked, and the closed months among `months` read on a
#: snapshot taken after the period lock (see `_LOCK_AND_LOOK_UP`)
_LOCK_BALANCES_AND_CLOSED = _LOCK_BALANCES.add_columns(_hints(sa.func.array_agg)[0])
_BALANCE_FIELDS = ("posted_debits", "posted_credits", "pending_debits", "pending_credits",
                   "last_effective_date", "version", "updated_at")
_UPDATE_BALANCES = BALANCES.update().where(
    BALANCES.c.account_id == sa.bindparam("b_id")).values(
    {k: sa.bindparam(k) for k in _BALANCE_FIELDS})
_INSERT_POSTINGS = POSTINGS.insert()
_INSERT_HOLD = HOLDS.insert()


def run(session: Session, statement: sa.Executable, params: Any = None) -> sa.CursorResult:
    """Execute a Core statement on the session's connection, in its transaction (Core
    statements need none of the ORM's per-statement work)."""
    return session.connection().execute(statement, params)


# --- inputs ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PostingSpec:
    """One leg as the client states it: account by id (int) or code (str)."""

    account: int | str
    asset: str
    direction: str
    amount: Any


@dataclasses.dataclass(frozen=True)
class TransactionSpec:
    type: str
    postings: Sequence[PostingSpec]
    effective_date: dt.date | None = None
    memo: str | None = None
    metadata: Mapping[str, Any] | None = None
    pending: bool = False
    expires_at: dt.datetime | None = None
    idempotency_key: str | None = None

    def request_hash(self) -> str:
        """Canonical SHA-256 of what the client asked for (before defaults are filled in), so
        a retry on another day with the same body is still recognised as the same request."""
        body = {
            "op": "create", "type": self.type, "memo": self.memo, "metadata": self.metadata,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "pending": self.pending,
            "expires_at": self.expires_at.astimezone(dt.UTC).isoformat()
            if self.expires_at else None,
            "postings": [[p.account, p.asset, p.direction, p.amount] for p in self.postings],
        }
        return _digest(body)


def account_ref(text: str) -> int | str:
    """An account as named in a URL or on the command line: up to 18 ASCII digits is an id,
    anything else a code (codes are never all digits, so a longer number finds nothing)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def _digest(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def scope_of(actor: Principal) -> str:
    """Idempotency scope of a caller, the same as the HTTP mechanism's (`token:<id>`)."""
    return f"token:{actor.token_id}" if actor.token_id else actor.label


# --- resolved rows ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountRow:
    id: int
    code: str
    party_id: int
    kind: str
    no_overdraft: bool
    asset_id: int
    asset_code: str


@dataclasses.dataclass
class Prepared:
    """A validated transaction ready to write."""

    spec: TransactionSpec
    effective_date: dt.date
    legs: list[tuple[AccountRow, str, int]]  # (account, direction, amount)
    phase: str = "posted"
    type: str = ""
    reverses_id: int | None = None
    pending_id: int | None = None
    request_hash: str | None = None
    #: ids of the expired holds debiting the guarded accounts this write debits, found with
    #: the accounts (None: not looked up yet)
    expired_holds: list[int] | None = None
    #: PostgreSQL: its month is checked against the closed periods by `write_one`, with the
    #: balance rows (the look-up's snapshot predates the period lock)
    period_unchecked: bool = False


class _Errors:
    """Collects field errors; each carries the exception class it belongs to. The first
    error decides the code of the problem, all of them are listed."""

    def __init__(self) -> None:
        self.items: list[tuple[type[Exception], dict]] = []

    def add(self, cls: type[Exception], field: str, message: str) -> None:
        self.items.append((cls, {"location": "json", "field": field, "message": message}))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        cls = self.items[0][0]
        errors = [item for _, item in self.items[:200]]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
        if len(self.items) > 3:
            detail += f" (and {len(self.items) - 3} more)"
        raise cls(detail, errors=errors)  # type: ignore[call-arg]


def resolve_accounts(session: Session, refs: Iterable[int | str]) -> dict[int | str, AccountRow]:
    """Accounts by id and by code, with their asset code; unknown refs are absent."""
    ids = {r for r in refs if isinstance(r, int) and not isinstance(r, bool)
           and 0 < r <= MAX_AMOUNT}
    codes = {r for r in refs if isinstance(r, str) and "\x00" not in r}
    if not ids and not codes:
        return {}
    rows = run(session, _SELECT_ACCOUNTS, {"ids": list(ids), "codes": list(codes)})
    out: dict[int | str, AccountRow] = {}
    for row in rows:
        account = AccountRow(*row)
        out[account.id] = account
        out[account.code] = account
    return out


def _validate_header(spec: TransactionSpec, where: str, errors: _Errors, today: dt.date,
                     now: dt.datetime, *, allow_reserved: bool = False) -> dt.date:
    if not isinstance(spec.type, str) or not TYPE_RE.match(spec.type):
        errors.add(E.InvalidTransaction, f"{where}type",
                   "1-40 characters: lowercase letters, digits, '_' or '.', starting with a letter")
    elif spec.type in RESERVED_TYPES and not allow_reserved:
        errors.add(E.InvalidTransaction, f"{where}type", f"{spec.type!r} is set by the ledger")
    if spec.memo is not None and (not isinstance(spec.memo, str) or len(spec.memo) > 500
                                  or "\x00" in spec.memo):
        errors.add(E.InvalidTransaction, f"{where}memo", "at most 500 characters, no NUL")
    if spec.metadata is not None:
        if not isinstance(spec.metadata, Mapping):
            errors.add(E.InvalidTransaction, f"{where}metadata", "must be an object")
        elif len(json.dumps(spec.metadata, default=str)) > 10_000:
            errors.add(E.InvalidTransaction, f"{where}metadata", "at most 10,000 characters")
    effective = spec.effective_date or today
    if effective > today:
        errors.add(E.EffectiveDateInFuture, f"{where}effective_date",
                   f"{effective} is after today ({today}, Asia/Shanghai)")
    if spec.expires_at is not None:
        if not spec.pending:
            errors.add(E.InvalidTransaction, f"{where}expires_at", "only a pending transfer expires")
        elif spec.expires_at.tzinfo is None:
            errors.add(E.InvalidTransaction, f"{where}expires_at", "needs a time zone")
        elif spec.expires_at <= now:
            errors.add(E.InvalidTransaction, f"{where}expires_at", "must be in the future")
    if spec.idempotency_key is not None and not (
            isinstance(spec.idempotency_key, str) and KEY_RE.match(spec.idempotency_key)):
        errors.add(BadRequest, f"{where}idempotency_key", "1-200 printable ASCII characters")
    return effective


def _validate_legs(spec: TransactionSpec, where: str, errors: _Errors,
                   accounts: Mapping[int | str, AccountRow]) -> list[tuple[AccountRow, str, int]]:
    legs: list[tuple[AccountRow, str, int]] = []
    postings = spec.postings
    if not isinstance(postings, Sequence) or not 2 <= len(postings) <= MAX_POSTINGS:
        errors.add(E.InvalidTransaction, f"{where}postings",
                   f"a transaction has 2 to {MAX_POSTINGS} postings")
        return legs
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ok = True
    for i, posting in enumerate(postings):
        at = f"{where}postings.{i}"
        problem = amount_problem(posting.amount)
        if problem:
            errors.add(E.InvalidAmount, f"{at}.amount", problem)
            ok = False
        if posting.direction not in ("debit", "credit"):
            errors.add(E.InvalidTransaction, f"{at}.direction", "debit or credit")
            ok = False
        account = accounts.get(posting.account) if isinstance(posting.account, (int, str)) \
            and not isinstance(posting.account, bool) else None
        if account is None:
            errors.add(E.UnknownAccount, f"{at}.account", f"no account {posting.account!r}")
            ok = False
            continue
        if posting.asset != account.asset_code:
            errors.add(E.AssetMismatch, f"{at}.asset",
                       f"account {account.code} holds {account.asset_code}, not {posting.asset!r}")
            ok = False
            continue
        if ok:
            totals[account.asset_code][posting.direction == "credit"] += posting.amount
            legs.append((account, posting.direction, posting.amount))
    if ok:
        for asset, (debits, credits) in totals.items():
            if debits != credits:
                errors.add(E.UnbalancedTransaction, f"{where}postings",
                           f"{asset}: debits {debits} != credits {credits}")
            elif debits > MAX_AMOUNT:
                errors.add(E.InvalidAmount, f"{where}postings",
                           f"{asset}: total {debits} exceeds the 64-bit range")
    return legs


@dataclasses.dataclass
class Lookup:
    """What validating a write needs from the database, read in as few statements as
    possible: the accounts, the closed months among the dates, the expired holds on the
    accounts (None: not read, the writer reads them itself) and, with a key, the transaction
    already stored under it."""

    accounts: dict[int | str, AccountRow]
    closed: list[dt.date] | None
    expired: list[int] | None
    found: Found | None = None
    #: the closed months are read later, with the balance rows (`write_one`)
    periods_later: bool = False


def _refs_and_months(specs: Sequence[TransactionSpec], today: dt.date
                     ) -> tuple[set[int | str], set[int | str], set[dt.date]]:
    """Accounts named by the specs, those of them named in a debit, and the months."""
    refs, debited = set(), set()
    for spec in specs:
        for p in spec.postings or ():
            if isinstance(p.account, (int, str)) and not isinstance(p.account, bool):
                refs.add(p.account)
                if p.direction == "debit":
                    debited.add(p.account)
    months = {month_of(s.effective_date or today) for s in specs
              if isinstance(s.effective_date, dt.date) or s.effective_date is None}
    return refs, debited, months


def look_up(session: Session, specs: Sequence[TransactionSpec], *, now: dt.datetime,
            scope: str | None = None, key: str | None = None) -> Lookup:
    """Read what `prepare` needs, and the idempotency key first if one is given (a found
    key means a replay or a reuse: the caller answers before validating anything).

    PostgreSQL: one statement takes the shared period lock and reads the key, the accounts
    and the expired holds; the closed months come with the balance rows in `write_one`
    (a statement taken after the lock, so a close committed before it is seen). SQLite (the
    writer holds the database lock since BEGIN IMMEDIATE): all of it in one statement."""
    refs, debited, months = _refs_and_months(specs, local_date(now))
    ids, codes = _split_refs(refs)
    debit_ids, debit_codes = _split_refs(debited)
    params = {"ids": ids, "codes": codes, "debit_ids": debit_ids, "debit_codes": debit_codes,
              "now": now, "scope": scope, "key": key}
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        rows = run(session, _LOCK_AND_LOOK_UP, params).all()
    else:
        rows = run(session, _SELECT_ACCOUNTS_WITH_HINTS_AND_KEY,
                   {**params, "months": list(months)}).all()
    head = rows[0]
    if key is not None and (head.key_id is not None or head.key_claimed):
        return Lookup({}, None, None, (head.key_id, head.key_hash))
    accounts: dict[int | str, AccountRow] = {}
    for row in rows:
        if row[0] is not None:
            account = AccountRow(*row[:7])
            accounts[account.id] = account
            accounts[account.code] = account
    if postgres:
        return Lookup(accounts, None, sorted(set(head.expired or []))[:100],
                      periods_later=True)
    closed = [dt.date.fromisoformat(m) for m in json.loads(head.closed)]
    return Lookup(accounts, closed, sorted(set(json.loads(head.expired)))[:100])


def _split_refs(refs: Iterable[int | str]) -> tuple[list[int], list[str]]:
    ids = [r for r in refs if isinstance(r, int) and not isinstance(r, bool) and 0 < r <= MAX_AMOUNT]
    codes = [r for r in refs if isinstance(r, str) and "\x00" not in r]
    return ids, codes


def prepare(session: Session, actor: Principal, specs: Sequence[TransactionSpec], *,
            now: dt.datetime, batch: bool = False,
            lookup: Lookup | None = None) -> list[Prepared]:
    """Validate `specs` (all errors at once), authorize, check periods.

    `lookup`: what `look_up` read already. Otherwise, on PostgreSQL the accounts, the closed
    months and the expired holds on those accounts come back in ONE statement (taken after
    the shared period lock, so a close committed before it is seen)."""
    today = local_date(now)
    periods_later = lookup is not None and lookup.periods_later
    if lookup is not None:
        accounts, closed, expired = lookup.accounts, lookup.closed, lookup.expired
    else:
        refs, debited, months = _refs_and_months(specs, today)
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            lock_periods_shared(session)
            accounts, closed, expired = _resolve_with_hints(session, refs, debited, months,
                                                            now)
        else:
            accounts, closed, expired = resolve_accounts(session, refs), None, None
    errors = _Errors()
    prepared = []
    for i, spec in enumerate(specs):
        where = f"transactions.{i}." if batch else ""
        effective = _validate_header(spec, where, errors, today, now)
        legs = _validate_legs(spec, where, errors, accounts)
        prepared.append(Prepared(spec=spec, effective_date=effective, legs=legs,
                                 phase="pending" if spec.pending else "posted", type=spec.type,
                                 expired_holds=expired, period_unchecked=periods_later))
    errors.raise_if_any()
    authorize_debits(actor, prepared)
    dates = {p.effective_date for p in prepared}
    if periods_later:
        pass  # write_one refuses a closed month with the balance rows it locks
    elif closed is None:
        check_periods(session, dates)
    else:
        refuse_closed({m for m in closed if m in {month_of(d) for d in dates}})
    return prepared


def _resolve_with_hints(session: Session, refs: set, debited: set, months: set[dt.date],
                        now: dt.datetime
                        ) -> tuple[dict[int | str, AccountRow], list[dt.date], list[int]]:
    """PostgreSQL: accounts by id/code, plus (as two scalar subqueries) the closed months among
    `months` and the expired open holds that debit one of the guarded `debited` accounts."""
    ids, codes = _split_refs(refs)
    if not ids and not codes:
        return {}, [], []
    debit_ids, debit_codes = _split_refs(debited)
    rows = run(session, _SELECT_ACCOUNTS_WITH_HINTS, {
        "ids": ids, "codes": codes, "debit_ids": debit_ids, "debit_codes": debit_codes,
        "months": list(months), "now": now}).all()
    out: dict[int | str, AccountRow] = {}
    for row in rows:
        account = AccountRow(*row[:7])
        out[account.id] = account
        out[account.code] = account
    if not rows:
        return out, [], []
    return out, list(rows[0][7] or []), sorted(set(rows[0][8] or []))[:100]


def authorize_debits(actor: Principal, prepared: Sequence[Prepared],
                     action: str = "ledger.transaction.create") -> None:
    """Anyone allowed to create may credit any account; a trader may debit only accounts of
    its own party (it can pay others, never take from them)."""
    debtors = {acc.party_id for p in prepared for acc, d, _ in p.legs if d == "debit"}
    try:
        authorize(actor, action, party=debtors)
    except Forbidden as exc:
        if actor.role == Role.TRADER:
            others = sorted(debtors - {actor.party_id})
            raise E.AccountNotOwned(
                f"a trader may only debit accounts of its own party {actor.party_id}; "
                f"this would debit accounts of parties {others}", action=action) from exc
        raise


def lock_periods_shared(session: Session) -> None:
    """PostgreSQL: the shared side of the period lock (closing takes it exclusively), held
    until the end of the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        run(session, _LOCK_PERIODS_SHARED)


def check_periods(session: Session, dates: Iterable[dt.date]) -> None:
    """Refuse dates in closed months; on PostgreSQL the shared advisory lock keeps a
    concurrent close out until this transaction ends."""
    months = {month_of(d) for d in dates}
    if not months:
        return
    lock_periods_shared(session)
    refuse_closed(set(run(session, _CLOSED_MONTHS, {"months": list(months)}).scalars()))


def refuse_closed(closed: set[dt.date]) -> None:
    if closed:
        names = ", ".join(format_month(m) for m in sorted(closed))
        raise E.PeriodClosed(f"the accounting period {names} is closed; post into an open "
                             "period (a finance officer may reopen it)", periods=names.split(", "))


# --- idempotency -----------------------------------------------------------------------------


#: a key found: (transaction id, its request hash), or (None, None) when the key is held in
#: the shared idempotency records by another route's request
Found = tuple[int | None, str | None]


def _found(row: Any, key: str | None) -> Found | None:
    tx_id, request_hash, claimed = row[:3]
    if key is None or (tx_id is None and not claimed):
        return None
    return tx_id, request_hash


def find_by_key(session: Session, scope: str, key: str) -> Found | None:
    return _found(run(session, _FIND_BY_KEY, {"scope": scope, "key": key}).one(), key)


def replay_or_refuse(found: Found, request_hash: str) -> int:
    tx_id, stored_hash = found
    if tx_id is None or stored_hash != request_hash:
        raise IdempotencyKeyReused(idempotency.REUSED)
    return tx_id


def _insert_header(session: Session, values: dict) -> int | None:
    """Insert one transaction header; None if a unique constraint (idempotency key, reversal
    or resolution of the same original) already holds a committed row. A keyed header also
    claims its key in the shared idempotency records (`ecovalue.idempotency.claim`), so no
    other route takes it; if one did, the key is refused."""
    dialect = session.get_bind().dialect.name
    keyed = values.get("idempotency_key") is not None
    if keyed and dialect == "postgresql":
        row = run(session, _INSERT_KEYED_HEADER_AND_CLAIM,
                  {k: values.get(k) for k in _HEADER_PARAMS}).first()
        if row is None:
            return None
        if row[1] is None:
            raise IdempotencyKeyReused(idempotency.REUSED)
        return row[0]
    stmt = _INSERT_HEADER.get(dialect)
    if stmt is None:  # pragma: no cover - only the two supported databases
        tx_id = session.execute(sa.insert(TX).values(**values).returning(TX.c.id)).scalar_one()
    else:
        tx_id = run(session, stmt, values).scalar()
    if tx_id is not None and keyed and not idempotency.claim(
            session, values["idempotency_scope"], values["idempotency_key"],
            values["request_hash"], values["created_at"]):
        raise IdempotencyKeyReused(idempotency.REUSED)
    return tx_id


# --- balances --------------------------------------------------------------------------------


@dataclasses.dataclass
class Totals:
    posted_debits: int
    posted_credits: int
    pending_debits: int
    pending_credits: int
    last_effective_date: dt.date | None
    version: int
    changed: bool = False

    @property
    def available(self) -> int:
        return self.posted_credits - self.posted_debits - self.pending_debits


def lock_balances(session: Session, account_ids: Iterable[int], *,
                  refuse_closed_months: Iterable[dt.date] = ()) -> dict[int, Totals]:
    """Row-lock the balance rows in ascending account id (FOR UPDATE is a no-op on SQLite,
    whose writers already hold the database write lock from BEGIN IMMEDIATE).
    PostgreSQL, `refuse_closed_months`: in the same statement, refuse those that are closed
    (the caller holds the shared period lock)."""
    ids, months = sorted(set(account_ids)), list(refuse_closed_months)
    if not months:
        return {r[0]: Totals(*r[1:]) for r in run(session, _LOCK_BALANCES, {"ids": ids})}
    rows = run(session, _LOCK_BALANCES_AND_CLOSED, {"ids": ids, "months": months}).all()
    if rows:
        refuse_closed(set(rows[0][-1] or []))
    else:  # pragma: no cover - every account has its balance row
        check_periods(session, months)
    return {r[0]: Totals(*r[1:-1]) for r in rows}


def write_balances(session: Session, totals: Mapping[int, Totals], now: dt.datetime) -> None:
    rows = []
    for account_id, t in totals.items():
        if not t.changed:
            continue
        for value in (t.posted_debits, t.posted_credits, t.pending_debits, t.pending_credits):
            if value > MAX_AMOUNT:
                raise E.AmountOutOfRange(
                    f"account {account_id}: a running total would exceed {MAX_AMOUNT}")
        rows.append({"b_id": account_id, "posted_debits": t.posted_debits,
                     "posted_credits": t.posted_credits, "pending_debits": t.pending_debits,
                     "pending_credits": t.pending_credits,
                     "last_effective_date": t.last_effective_date, "version": t.version + 1,
                     "updated_at": now})
    if rows:
        run(session, _UPDATE_BALANCES, rows)


def apply_legs(totals: Mapping[int, Totals], legs: Iterable[tuple[AccountRow, str, int]], *,
               pending: bool, effective_date: dt.date, sign: int = 1) -> None:
    """Add (sign=1) or remove (sign=-1, pending only) legs to the in-memory totals."""
    for account, direction, amount in legs:
        t = totals[account.id]
        t.changed = True
        if pending:
            if direction == "debit":
                t.pending_debits += sign * amount
            else:
                t.pending_credits += sign * amount
        else:
            if direction == "debit":
                t.posted_debits += amount
            else:
                t.posted_credits += amount
            if t.last_effective_date is None or effective_date > t.last_effective_date:
                t.last_effective_date = effective_date


def check_guards(totals: Mapping[int, Totals], debited: Mapping[int, AccountRow]) -> None:
    """The no-overdraft guard on every guarded account this write debits: posted balance
    minus pending debits must stay >= 0."""
    short = []
    for account_id, account in debited.items():
        t = totals[account_id]
        if account.no_overdraft and t.available < 0:
            short.append((account, t))
    if short:
        errors = [{"location": "json", "field": "postings",
                   "message": f"account {a.code} would be short by {-t.available} {a.asset_code}"}
                  for a, t in short]
        first, t = short[0]
        raise E.InsufficientBalance(
            f"account {first.code} would be short by {-t.available} {first.asset_code} "
            "(available = posted balance - pending debits); nothing was written",
            errors=errors, account=first.code)


def check_history(session: Session, totals: Mapping[int, Totals],
                  earliest: Mapping[int, tuple[AccountRow, dt.date, dt.date | None]]) -> None:
    """A debit dated before later postings of a guarded account must not make its posted
    balance negative on any date from then on (as-of balances stay >= 0, not only today's).
    `earliest`: account id -> (account, earliest new posted debit date, previous latest
    effective date). Runs only for back-dated debits, which are rare."""
    signed = sa.case((POSTINGS.c.direction == "credit", POSTINGS.c.amount),
                     else_=-POSTINGS.c.amount)
    for account_id, (account, since, _previous) in earliest.items():
        opening = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(
            POSTINGS.c.account_id == account_id, POSTINGS.c.pending.is_(False),
            POSTINGS.c.effective_date < since)) or 0
        running = int(opening)
        for day, delta in session.execute(
                sa.select(POSTINGS.c.effective_date, sa.func.sum(signed)).where(
                    POSTINGS.c.account_id == account_id, POSTINGS.c.pending.is_(False),
                    POSTINGS.c.effective_date >= since)
                .group_by(POSTINGS.c.effective_date).order_by(POSTINGS.c.effective_date)):
            running += int(delta)
            if running < 0:
                raise E.InsufficientBalance(
                    f"account {account.code} would have been overdrawn by {-running} "
                    f"{account.asset_code} on {day}: a back-dated debit may not overdraw a "
                    "guarded account on any date", account=account.code,
                    errors=[{"location": "json", "field": "effective_date",
                             "message": f"{account.code} negative on {day}"}])


# --- pending expiry --------------------------------------------------------------------------


def expired_holds_touching(session: Session, account_ids: Iterable[int],
                           now: dt.datetime) -> dict[int, list[tuple[int, str, int]]]:
    """Expired, unresolved pendings that debit one of `account_ids`, with all their legs
    (account id, direction, amount). Cheap: the holds table has only open pendings."""
    ids = list(set(account_ids))
    if not ids:
        return {}
    found = run(session, _EXPIRED_HOLDS, {"now": now, "account_ids": ids}
                ).scalars().all()
    return pending_legs(session, found)


def pending_legs(session: Session, tx_ids: Iterable[int]) -> dict[int, list[tuple[int, str, int]]]:
    out: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    ids = list(tx_ids)
    if ids:
        for tx_id, account_id, direction, amount in session.execute(
                sa.select(POSTINGS.c.transaction_id, POSTINGS.c.account_id,
                          POSTINGS.c.direction, POSTINGS.c.amount)
                .where(POSTINGS.c.transaction_id.in_(ids)).order_by(POSTINGS.c.id)):
            out[tx_id].append((account_id, direction, amount))
    return dict(out)


def expire_locked(session: Session, actor: Principal, totals: Mapping[int, Totals],
                  expiring: Mapping[int, list[tuple[int, str, int]]], now: dt.datetime) -> list[int]:
    """Record the expiry of pendings whose accounts are already locked: delete their holds
    (the DELETE serialises with a racing post/void), release the reservations, append an
    `expire_pending` transaction each. Returns the ids of the pendings expired here."""
    if not expiring:
        return []
    deleted = session.execute(
        HOLDS.delete().where(HOLDS.c.transaction_id.in_(list(expiring)),
                             HOLDS.c.expires_at <= now)
        .returning(HOLDS.c.transaction_id, HOLDS.c.expires_at)).all()
    done = []
    for tx_id, expires_at in sorted(deleted):
        for account_id, direction, amount in expiring[tx_id]:
            t = totals[account_id]
            t.changed = True
            if direction == "debit":
                t.pending_debits -= amount
            else:
                t.pending_credits -= amount
        header = {"type": "pending_resolution", "phase": "expire_pending",
                  "effective_date": local_date(expires_at), "memo": "expired",
                  "metadata": None, "author": actor.label, "created_at": now,
                  "pending_id": tx_id}
        new_id = _insert_header(session, header)
        audit.record(session, actor, "ledger.pending.expire", "ledger_transaction", tx_id,
                     after={"resolution_id": new_id, "expired_at": expires_at})
        done.append(tx_id)
    return done


# --- writing ---------------------------------------------------------------------------------


def _header_values(p: Prepared, actor: Principal, now: dt.datetime, *,
                   batch_id: int | None = None) -> dict:
    values = {
        "type": p.type, "phase": p.phase, "effective_date": p.effective_date,
        "memo": p.spec.memo, "metadata": dict(p.spec.metadata)
        if p.spec.metadata is not None else None,
        "author": actor.label, "created_at": now, "reverses_id": p.reverses_id,
        "pending_id": p.pending_id, "expires_at": p.spec.expires_at if p.phase == "pending"
        else None, "batch_id": batch_id,
    }
    if p.spec.idempotency_key is not None:
        values.update(idempotency_scope=scope_of(actor), idempotency_key=p.spec.idempotency_key,
                      request_hash=p.request_hash)
    return values


def posting_rows(tx_id: int, p: Prepared) -> list[dict]:
    pending = p.phase == "pending"
    return [{"transaction_id": tx_id, "account_id": acc.id, "asset_id": acc.asset_id,
             "direction": d, "amount": amount, "effective_date": p.effective_date,
             "pending": pending} for acc, d, amount in p.legs]


def audit_snapshot(tx_id: int, p: Prepared, values: Mapping[str, Any]) -> dict:
    return {
        "id": tx_id, "type": p.type, "phase": p.phase,
        "effective_date": p.effective_date.isoformat(), "memo": p.spec.memo,
        "metadata": values.get("metadata"), "reverses_id": p.reverses_id,
        "pending_id": p.pending_id, "expires_at": values.get("expires_at"),
        "batch_id": values.get("batch_id"), "idempotency_key": p.spec.idempotency_key,
        "postings": [[acc.code, acc.asset_code, d, amount] for acc, d, amount in p.legs],
    }


def write_one(session: Session, actor: Principal, p: Prepared, *, now: dt.datetime,
              action: str, release: Sequence[tuple[int, str, int]] = ()) -> int | None:
    """Insert one prepared transaction with its postings and balance changes; returns its id,
    or None when a unique constraint says an equal row exists (idempotent replay, already
    reversed, already resolved: the caller finds out which). `release`: legs of the pending
    this transaction resolves, whose reservation ends."""
    values = _header_values(p, actor, now)
    tx_id = _insert_header(session, values)
    if tx_id is None:
        return None
    debited = {acc.id: acc for acc, d, _ in p.legs if d == "debit"}
    guarded = [a for a, acc in debited.items() if acc.no_overdraft]
    if not guarded or p.phase not in ("posted", "pending"):
        expiring = {}
    elif p.expired_holds is not None:
        expiring = pending_legs(session, p.expired_holds)
    else:
        expiring = expired_holds_touching(session, guarded, now)
    touched = {acc.id for acc, _, _ in p.legs} | {a for legs in expiring.values()
                                                  for a, _, _ in legs}
    touched |= {a for a, _, _ in release}
    totals = lock_balances(session, touched, refuse_closed_months=[
        month_of(p.effective_date)] if p.period_unchecked else ())
    expire_locked(session, actor, totals, expiring, now)
    previous_dates = {a: totals[a].last_effective_date for a in debited}
    if release:
        for account_id, direction, amount in release:
            t = totals[account_id]
            t.changed = True
            if direction == "debit":
                t.pending_debits -= amount
            else:
                t.pending_credits -= amount
    apply_legs(totals, p.legs, pending=p.phase == "pending", effective_date=p.effective_date)
    if p.phase != "post_pending":  # posting a pending spends what it reserved: no new check
        check_guards(totals, debited)
    backdated = {} if p.phase == "pending" else {
        a: (acc, p.effective_date, previous_dates[a]) for a, acc in debited.items()
        if acc.no_overdraft and previous_dates[a] is not None
        and p.effective_date < previous_dates[a]}
    # PostgreSQL: the writes go in one round trip with the audit append (a backdated debit
    # reads history in between, so its writes go one by one)
    with contextlib.nullcontext() if backdated else pipelined(session):
        if p.legs:
            rows = posting_rows(tx_id, p)
            run(session, _INSERT_POSTINGS, rows if len(rows) > 1 else rows[0])
        if p.phase == "pending":
            run(session, _INSERT_HOLD, {"transaction_id": tx_id,
                                        "expires_at": p.spec.expires_at})
        write_balances(session, totals, now)
        if backdated:
            check_history(session, totals, backdated)
        audit.record(session, actor, action, "ledger_transaction", tx_id,
                     after=audit_snapshot(tx_id, p, values))
    return tx_id


# --- batches ---------------------------------------------------------------------------------


def allocate_ids(session: Session, count: int) -> list[int]:
    """`count` transaction ids reserved up front, so postings can be built without a
    round trip per transaction. PostgreSQL: from the id sequence; SQLite: after the current
    maximum (safe: this writer holds the database write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(sa.text(
            "SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id')) "
            "FROM generate_series(1, :n)"), {"n": count}))
    start = session.scalar(sa.select(sa.func.coalesce(sa.func.max(TX.c.id), 0))) or 0
    return list(range(start + 1, start + 1 + count))


def batch_digest(rows: Iterable[tuple]) -> str:
    """SHA-256 over one line per row, fields joined by '|' (None as empty)."""
    text = "".join("|".join("" if v is None else str(v) for v in row) + "\n" for row in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def write_batch(session: Session, actor: Principal, prepared: Sequence[Prepared], *,
                memo: str | None, now: dt.datetime) -> tuple[int, list[int]]:
    """All-or-nothing: one id allocation, one lock pass over every account touched, one
    multi-row insert per table, one balance update; one audit event for the whole batch
    whose content digest covers every transaction and posting."""
    if not prepared:
        raise E.InvalidTransaction("a batch needs at least one transaction",
                                   errors=[{"location": "json", "field": "transactions",
                                            "message": "empty"}])
    ids = allocate_ids(session, len(prepared))
    batch = LedgerBatch(transaction_count=len(prepared), content_sha256="", memo=memo,
                        author=actor.label, created_at=now)
    session.add(batch)
    session.flush()
    debited: dict[int, AccountRow] = {}
    touched: set[int] = set()
    # Rows are built as tuples already in the driver's storage format (dates as ISO text and
    # booleans as 0/1 on SQLite), converted once per transaction rather than once per value.
    sqlite_ = session.get_bind().dialect.name == "sqlite"
    stamp = now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds") \
        if sqlite_ else now
    yes, no = (1, 0) if sqlite_ else (True, False)
    headers, postings, holds, digest_rows = [], [], [], []
    for tx_id, p in zip(ids, prepared, strict=True):
        day = p.effective_date.isoformat() if sqlite_ else p.effective_date
        metadata = json.dumps(dict(p.spec.metadata)) if p.spec.metadata is not None else None
        pending = p.phase == "pending"
        expires_at = p.spec.expires_at if pending else None
        if expires_at is not None and sqlite_:
            expires_at = expires_at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(
                " ", "microseconds")
        headers.append((tx_id, p.type, p.phase, day, p.spec.memo, metadata, actor.label, stamp,
                        batch.id, expires_at))
        if pending:
            holds.append({"transaction_id": tx_id, "expires_at": p.spec.expires_at})
        digest_rows.append((tx_id, p.type, p.phase, p.effective_date, p.spec.memo))
        flag = yes if pending else no
        for acc, d, amount in p.legs:
            touched.add(acc.id)
            if d == "debit":
                debited[acc.id] = acc
            postings.append((tx_id, acc.id, acc.asset_id, d, amount, day, flag))
            digest_rows.append((tx_id, acc.code, acc.asset_code, d, amount))
    guarded = [a for a, acc in debited.items() if acc.no_overdraft]
    hint = prepared[0].expired_holds
    expiring = pending_legs(session, hint) if hint is not None else expired_holds_touching(
        session, guarded, now)
    touched |= {a for legs in expiring.values() for a, _, _ in legs}
    totals = lock_balances(session, touched)
    expire_locked(session, actor, totals, expiring, now)
    previous_dates = {a: totals[a].last_effective_date for a in debited}
    earliest_debit: dict[int, dt.date] = {}
    latest_any: dict[int, dt.date] = {}
    for p in prepared:
        pending = p.phase == "pending"
        apply_legs(totals, p.legs, pending=pending, effective_date=p.effective_date)
        if pending:
            continue
        for acc, d, _ in p.legs:
            if d == "debit" and (acc.id not in earliest_debit
                                 or p.effective_date < earliest_debit[acc.id]):
                earliest_debit[acc.id] = p.effective_date
            if acc.id not in latest_any or p.effective_date > latest_any[acc.id]:
                latest_any[acc.id] = p.effective_date
    check_guards(totals, debited)
    batch.content_sha256 = batch_digest(digest_rows)
    bulk_insert(session, TX, ("id", "type", "phase", "effective_date", "memo", "metadata",
                              "author", "created_at", "batch_id", "expires_at"), headers)
    bulk_insert(session, POSTINGS, ("transaction_id", "account_id", "asset_id", "direction",
                                    "amount", "effective_date", "pending"), postings)
    if holds:
        session.execute(HOLDS.insert(), holds)
    write_balances(session, totals, now)
    backdated = {}
    for account_id, since in earliest_debit.items():
        acc = debited[account_id]
        horizon = max(d for d in (previous_dates.get(account_id), latest_any.get(account_id))
                      if d is not None)
        if acc.no_overdraft and since < horizon:
            backdated[account_id] = (acc, since, previous_dates.get(account_id))
    if backdated:
        check_history(session, totals, backdated)
    session.flush()
    audit.record(session, actor, "ledger.batch.post", "ledger_batch", batch.id, after={
        "id": batch.id, "transaction_count": len(prepared), "first_transaction_id": ids[0],
        "last_transaction_id": ids[-1], "content_sha256": batch.content_sha256, "memo": memo})
    return batch.id, ids


def bulk_insert(session: Session, table: sa.Table, columns: Sequence[str],
                rows: list[tuple]) -> None:
    """Set-based insert of tuples already in storage format, through the driver and in the
    session's transaction: COPY on PostgreSQL (psycopg), one `executemany` on SQLite."""
    if not rows:
        return
    connection = session.connection()
    raw = connection.connection.driver_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    if connection.dialect.name == "sqlite":
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {table.name} ({names}) "
                               f"VALUES ({', '.join('?' * len(columns))})", rows)
        finally:
            cursor.close()
        return
    session.execute(table.insert(), [dict(zip(columns, row, strict=True))  # pragma: no cover
                                     for row in rows])
