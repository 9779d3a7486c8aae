"""The ledger's rules as pure functions: what a transaction is, when it is valid, how it
changes the totals of the accounts it touches. No database, no Flask: every function here
takes plain values (specs, account rows, totals) and is tested without a database.

Validation collects every error (`Errors`) instead of stopping at the first; the first error
decides the problem's code, all are listed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ecovalue.errors import BadRequest, EcovalueError
from ledger.core import errors
from ledger.core.amounts import MAX_AMOUNT, amount_problem
from ledger.core.calendar import format_month, month_of

TYPE_RE = re.compile(r"^[a-z][a-z0-9_.]{0,39}$")
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_POSTINGS = 1000
MAX_BATCH = 100_000
MAX_MEMO = 500
MAX_METADATA_CHARS = 10_000
#: transaction types the engine sets itself; clients cannot use them
RESERVED_TYPES = frozenset({"reversal", "pending_resolution"})
#: phases of a transaction: an ordinary posting, a two-phase transfer, its resolutions
PHASES = ("posted", "pending", "post_pending", "void_pending", "expire_pending")

#: a leg as written: (account, direction, amount)
Leg = tuple["AccountRow", str, int]
#: a leg as stored: (account id, direction, amount)
StoredLeg = tuple[int, str, int]


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
    """A transaction as the client states it. Amounts are integers in the asset's unit
    (fen for CNY, tCO2e for carbon credits); `effective_date` defaults to today
    (Asia/Shanghai); `pending` reserves a two-phase transfer until `expires_at`."""

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
        return digest(body)


def account_ref(text: str) -> int | str:
    """An account as named in a URL or on the command line: up to 18 ASCII digits is an id,
    anything else a code (codes are never all digits, so a longer number finds nothing)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def digest(body: Any) -> str:
    """SHA-256 of the canonical JSON of `body` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def digest_line(row: Sequence[Any]) -> str:
    """One row as a digest line: its fields as text joined by '|', None as empty."""
    if None in row:
        return "|".join(["" if v is None else str(v) for v in row])
    return "|".join(map(str, row))


def batch_digest(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 over one line per row, fields joined by '|' (None as empty)."""
    return lines_digest(list(map(digest_line, rows)))


def lines_digest(lines: Sequence[str]) -> str:
    """SHA-256 over digest lines already formatted (`digest_line`), each ended by a newline."""
    text = "\n".join(lines) + "\n" if lines else ""
    return hashlib.sha256(text.encode()).hexdigest()


def valid_id(value: object) -> bool:
    """Ids outside the 64-bit range cannot exist (and must not reach the driver)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_AMOUNT


def split_refs(refs: Iterable[object]) -> tuple[list[int], list[str]]:
    """Account references split into ids and codes; those that cannot name an account (ids
    beyond 64 bits, text with NUL, other types) are dropped, so they stay unknown."""
    ids = [r for r in refs if isinstance(r, int) and valid_id(r)]
    codes = [r for r in refs if isinstance(r, str) and "\x00" not in r]
    return ids, codes


def refs_of(specs: Sequence[TransactionSpec]) -> tuple[set[int | str], set[int | str]]:
    """Accounts named by the specs, and those of them named in a debit."""
    refs: set[int | str] = set()
    debited: set[int | str] = set()
    for spec in specs:
        for p in spec.postings or ():
            if isinstance(p.account, (int, str)) and not isinstance(p.account, bool):
                refs.add(p.account)
                if p.direction == "debit":
                    debited.add(p.account)
    return refs, debited


# --- resolved rows ---------------------------------------------------------------------------


class AccountRow(NamedTuple):
    """What the write path needs to know of an account (a named tuple: a batch builds
    100,000 of them)."""

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
    legs: list[Leg]
    phase: str = "posted"
    type: str = ""
    reverses_id: int | None = None
    pending_id: int | None = None
    request_hash: str | None = None
    #: legs of the pending this transaction resolves, whose reservation ends
    release: Sequence[StoredLeg] = ()

    @property
    def debited(self) -> dict[int, AccountRow]:
        return {acc.id: acc for acc, d, _ in self.legs if d == "debit"}

    @property
    def checks_guard(self) -> bool:
        """Posting a pending spends what it reserved: no new guard check."""
        return self.phase != "post_pending"

    @property
    def may_expire_holds(self) -> bool:
        """A new posting or reservation releases the expired holds on what it debits."""
        return self.phase in ("posted", "pending")


class Errors:
    """Collects field errors; each carries the exception class it belongs to. The first
    error decides the code of the problem, all of them are listed (up to 200)."""

    def __init__(self) -> None:
        self.items: list[tuple[type[EcovalueError], dict]] = []

    def add(self, cls: type[EcovalueError], field: str, message: str) -> None:
        self.items.append((cls, {"location": "json", "field": field, "message": message}))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        cls = self.items[0][0]
        found = [item for _, item in self.items[:200]]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in found[:3])
        if len(self.items) > 3:
            detail += f" (and {len(self.items) - 3} more)"
        raise cls(detail, errors=found)


# --- validation ------------------------------------------------------------------------------


def validate_header(spec: TransactionSpec, where: str, found: Errors, today: dt.date,
                    now: dt.datetime, *, allow_reserved: bool = False) -> dt.date:
    """Check type, memo, metadata, dates and key of `spec`; returns its effective date."""
    if not isinstance(spec.type, str) or not TYPE_RE.match(spec.type):
        found.add(errors.InvalidTransaction, f"{where}type",
                  "1-40 characters: lowercase letters, digits, '_' or '.', starting with a letter")
    elif spec.type in RESERVED_TYPES and not allow_reserved:
        found.add(errors.InvalidTransaction, f"{where}type", f"{spec.type!r} is set by the ledger")
    if spec.memo is not None and (not isinstance(spec.memo, str) or len(spec.memo) > MAX_MEMO
                                  or "\x00" in spec.memo):
        found.add(errors.InvalidTransaction, f"{where}memo",
                  f"at most {MAX_MEMO} characters, no NUL")
    if spec.metadata is not None:
        if not isinstance(spec.metadata, Mapping):
            found.add(errors.InvalidTransaction, f"{where}metadata", "must be an object")
        elif len(json.dumps(spec.metadata, default=str)) > MAX_METADATA_CHARS:
            found.add(errors.InvalidTransaction, f"{where}metadata",
                      f"at most {MAX_METADATA_CHARS:,} characters")
    effective = spec.effective_date or today
    if effective > today:
        found.add(errors.EffectiveDateInFuture, f"{where}effective_date",
                  f"{effective} is after today ({today}, Asia/Shanghai)")
    if spec.expires_at is not None:
        if not spec.pending:
            found.add(errors.InvalidTransaction, f"{where}expires_at",
                      "only a pending transfer expires")
        elif spec.expires_at.tzinfo is None:
            found.add(errors.InvalidTransaction, f"{where}expires_at", "needs a time zone")
        elif spec.expires_at <= now:
            found.add(errors.InvalidTransaction, f"{where}expires_at", "must be in the future")
    if spec.idempotency_key is not None and not (
            isinstance(spec.idempotency_key, str) and KEY_RE.match(spec.idempotency_key)):
        found.add(BadRequest, f"{where}idempotency_key", "1-200 printable ASCII characters")
    return effective


def validate_legs(spec: TransactionSpec, where: str, found: Errors,
                  accounts: Mapping[int | str, AccountRow]) -> list[Leg]:
    """Check every posting (amount, direction, account, asset) and that debits equal credits
    per asset; returns the legs (complete only when nothing was wrong)."""
    legs: list[Leg] = []
    postings = spec.postings
    if not isinstance(postings, Sequence) or not 2 <= len(postings) <= MAX_POSTINGS:
        found.add(errors.InvalidTransaction, f"{where}postings",
                  f"a transaction has 2 to {MAX_POSTINGS} postings")
        return legs
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    ok = True
    for i, posting in enumerate(postings):
        amount, direction, ref = posting.amount, posting.direction, posting.account
        # the common case first, without building field names (a batch has 100,000 legs)
        account = accounts.get(ref) if type(ref) is str or type(ref) is int else None
        if ok and type(amount) is int and 0 < amount <= MAX_AMOUNT and account is not None \
                and (direction == "debit" or direction == "credit") \
                and posting.asset == account.asset_code:
            totals[account.asset_code][direction == "credit"] += amount
            legs.append((account, direction, amount))
            continue
        at = f"{where}postings.{i}"
        problem = amount_problem(amount)
        if problem:
            found.add(errors.InvalidAmount, f"{at}.amount", problem)
            ok = False
        if direction not in ("debit", "credit"):
            found.add(errors.InvalidTransaction, f"{at}.direction", "debit or credit")
            ok = False
        account = accounts.get(ref) if isinstance(ref, (int, str)) \
            and not isinstance(ref, bool) else None
        if account is None:
            found.add(errors.UnknownAccount, f"{at}.account", f"no account {ref!r}")
            ok = False
            continue
        if posting.asset != account.asset_code:
            found.add(errors.AssetMismatch, f"{at}.asset",
                      f"account {account.code} holds {account.asset_code}, "
                      f"not {posting.asset!r}")
            ok = False
            continue
        if ok:
            totals[account.asset_code][direction == "credit"] += amount
            legs.append((account, direction, amount))
    if ok:
        for asset, (debits, credits) in totals.items():
            if debits != credits:
                found.add(errors.UnbalancedTransaction, f"{where}postings",
                          f"{asset}: debits {debits} != credits {credits}")
            elif debits > MAX_AMOUNT:
                found.add(errors.InvalidAmount, f"{where}postings",
                          f"{asset}: total {debits} exceeds the 64-bit range")
    return legs


def validate(specs: Sequence[TransactionSpec], accounts: Mapping[int | str, AccountRow], *,
             today: dt.date, now: dt.datetime, batch: bool = False) -> list[Prepared]:
    """Every spec checked against the accounts, all errors at once (in a batch, fields are
    named `transactions.<i>.`)."""
    found = Errors()
    prepared = []
    for i, spec in enumerate(specs):
        where = f"transactions.{i}." if batch else ""
        effective = validate_header(spec, where, found, today, now)
        legs = validate_legs(spec, where, found, accounts)
        prepared.append(Prepared(spec=spec, effective_date=effective, legs=legs,
                                 phase="pending" if spec.pending else "posted", type=spec.type))
    found.raise_if_any()
    return prepared


def validate_follow_up(spec: TransactionSpec, *, today: dt.date, now: dt.datetime,
                       not_before: dt.date) -> dt.date:
    """The header of a reversal or a resolution (the ledger sets its type and legs); its
    date may not precede the original's. Returns the effective date."""
    found = Errors()
    effective = validate_header(spec, "", found, today, now, allow_reserved=True)
    found.raise_if_any()
    if effective < not_before:
        raise errors.EffectiveDateTooEarly(
            f"effective date {effective} is before the original's {not_before}",
            errors=[{"location": "json", "field": "effective_date",
                     "message": f"on or after {not_before}"}])
    return effective


def months_asked(specs: Iterable[TransactionSpec], today: dt.date) -> set[dt.date]:
    """The periods `specs` would post into, before validation (a date that is no date is
    refused by validation): what a look-up reads the closed months of."""
    return {month_of(spec.effective_date or today) for spec in specs
            if spec.effective_date is None or isinstance(spec.effective_date, dt.date)}


def months_posted(prepared: Iterable[Prepared]) -> set[dt.date]:
    """The periods a write posts into (a resolution without legs moves nothing)."""
    return {month_of(p.effective_date) for p in prepared if p.legs}


def refuse_closed(closed: Iterable[dt.date]) -> None:
    """The one rule on periods: nothing is posted into a closed month."""
    closed = sorted(set(closed))
    if closed:
        names = [format_month(m) for m in closed]
        raise errors.PeriodClosed(f"the accounting period {', '.join(names)} is closed; post "
                                  "into an open period (a finance officer may reopen it)",
                                  periods=names)


# --- balances --------------------------------------------------------------------------------


@dataclasses.dataclass
class Totals:
    """The materialised totals of one account, as locked for a write."""

    posted_debits: int
    posted_credits: int
    pending_debits: int
    pending_credits: int
    last_effective_date: dt.date | None
    version: int
    changed: bool = False

    @property
    def available(self) -> int:
        """Posted balance minus reserved debits: what the no-overdraft guard protects."""
        return self.posted_credits - self.posted_debits - self.pending_debits


def apply_legs(totals: Mapping[int, Totals], legs: Iterable[Leg], *, pending: bool,
               effective_date: dt.date) -> None:
    """Add legs to the in-memory totals (as reservations when `pending`)."""
    for account, direction, amount in legs:
        t = totals[account.id]
        t.changed = True
        if pending:
            if direction == "debit":
                t.pending_debits += amount
            else:
                t.pending_credits += amount
        else:
            if direction == "debit":
                t.posted_debits += amount
            else:
                t.posted_credits += amount
            if t.last_effective_date is None or effective_date > t.last_effective_date:
                t.last_effective_date = effective_date


def release_legs(totals: Mapping[int, Totals], legs: Iterable[StoredLeg]) -> None:
    """End the reservations of a pending's legs (posted, voided or expired)."""
    for account_id, direction, amount in legs:
        t = totals[account_id]
        t.changed = True
        if direction == "debit":
            t.pending_debits -= amount
        else:
            t.pending_credits -= amount


def check_guards(totals: Mapping[int, Totals], debited: Mapping[int, AccountRow]) -> None:
    """The no-overdraft guard on every guarded account this write debits: posted balance
    minus pending debits must stay >= 0."""
    short = [(account, totals[account_id]) for account_id, account in debited.items()
             if account.no_overdraft and totals[account_id].available < 0]
    if short:
        found = [{"location": "json", "field": "postings",
                  "message": f"account {a.code} would be short by {-t.available} {a.asset_code}"}
                 for a, t in short]
        first, t = short[0]
        raise errors.InsufficientBalance(
            f"account {first.code} would be short by {-t.available} {first.asset_code} "
            "(available = posted balance - pending debits); nothing was written",
            errors=found, account=first.code)


def check_range(totals: Mapping[int, Totals]) -> None:
    """No running total may leave the 64-bit range of its column."""
    for account_id, t in totals.items():
        if t.changed and max(t.posted_debits, t.posted_credits, t.pending_debits,
                             t.pending_credits) > MAX_AMOUNT:
            raise errors.AmountOutOfRange(
                f"account {account_id}: a running total would exceed {MAX_AMOUNT}")


def backdated_debits(prepared: Iterable[Prepared], previous_dates: Mapping[int, dt.date | None]
                     ) -> dict[int, tuple[AccountRow, dt.date]]:
    """Guarded accounts debited by a posting dated before a later posting of the same
    account (stored before, or in the same write): account id -> (account, earliest such
    debit). Their balance must stay >= 0 on every date from then on, not only today."""
    earliest: dict[int, tuple[AccountRow, dt.date]] = {}
    latest: dict[int, dt.date] = {a: d for a, d in previous_dates.items() if d is not None}
    for p in prepared:
        if p.phase == "pending":
            continue
        for acc, d, _ in p.legs:
            if d == "debit" and acc.no_overdraft and (
                    acc.id not in earliest or p.effective_date < earliest[acc.id][1]):
                earliest[acc.id] = (acc, p.effective_date)
            if acc.id not in latest or p.effective_date > latest[acc.id]:
                latest[acc.id] = p.effective_date
    return {a: (acc, since) for a, (acc, since) in earliest.items() if since < latest[a]}


def first_negative(opening: int, daily: Iterable[tuple[dt.date, int]]
                   ) -> tuple[dt.date, int] | None:
    """The first day on which a running balance (from `opening`, by daily net changes in
    date order) is negative, with that balance; None if it never is."""
    running = opening
    for day, delta in daily:
        running += delta
        if running < 0:
            return day, running
    return None


def header_values(p: Prepared, author: str, now: dt.datetime, *, scope: str | None,
                  batch_id: int | None = None) -> dict:
    """The transaction row of `p` (the idempotency columns only when it has a key)."""
    values = {
        "type": p.type, "phase": p.phase, "effective_date": p.effective_date,
        "memo": p.spec.memo, "metadata": dict(p.spec.metadata)
        if p.spec.metadata is not None else None,
        "author": author, "created_at": now, "reverses_id": p.reverses_id,
        "pending_id": p.pending_id, "expires_at": p.spec.expires_at if p.phase == "pending"
        else None, "batch_id": batch_id,
    }
    if p.spec.idempotency_key is not None:
        values.update(idempotency_scope=scope, idempotency_key=p.spec.idempotency_key,
                      request_hash=p.request_hash)
    return values


def posting_rows(tx_id: int, p: Prepared) -> list[dict]:
    """The posting rows of `p` once its transaction has `tx_id`."""
    pending = p.phase == "pending"
    return [{"transaction_id": tx_id, "account_id": acc.id, "asset_id": acc.asset_id,
             "direction": d, "amount": amount, "effective_date": p.effective_date,
             "pending": pending} for acc, d, amount in p.legs]


def audit_snapshot(tx_id: int, p: Prepared, values: Mapping[str, Any]) -> dict:
    """What the audit trail records of a transaction."""
    return {
        "id": tx_id, "type": p.type, "phase": p.phase,
        "effective_date": p.effective_date.isoformat(), "memo": p.spec.memo,
        "metadata": values.get("metadata"), "reverses_id": p.reverses_id,
        "pending_id": p.pending_id, "expires_at": values.get("expires_at"),
        "batch_id": values.get("batch_id"), "idempotency_key": p.spec.idempotency_key,
        "postings": [[acc.code, acc.asset_code, d, amount] for acc, d, amount in p.legs],
    }
