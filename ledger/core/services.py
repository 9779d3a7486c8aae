"""Ledger operations. Each is one unit of work that the caller commits: `op(session, actor, ...)`,
authorize first, flush but never commit, audit every change.

Amounts are integers in the asset's unit (fen for CNY, tCO2e for carbon credits); balances
are credit-normal (credits - debits). See `ledger.core.models` for the conventions and
`ledger.core.posting` for the write path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth.policy import Principal, Role, authorize
from ecovalue.db import utcnow
from ecovalue.errors import Forbidden, ValidationFailed
from ledger.core import errors as E
from ledger.core import posting as P
from ledger.core.amounts import MAX_AMOUNT, signed_problem
from ledger.core.calendar import format_month, local_date, month_of
from ledger.core.models import (
    ACCOUNT_KINDS,
    ASSET_KINDS,
    LedgerAccount,
    LedgerAsset,
    LedgerBalance,
    LedgerBalanceAssertion,
    LedgerBatch,
    LedgerPendingHold,
    LedgerPeriod,
    LedgerPosting,
    LedgerTransaction,
)
from ledger.core.posting import PostingSpec, TransactionSpec  # noqa: F401 - public API

#: account codes: no '/', so that a code is a URL path segment; never all digits (an id)
CODE_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
ASSET_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{1,39}$")

TX = LedgerTransaction.__table__
POSTINGS = LedgerPosting.__table__
SIGNED = sa.case((LedgerPosting.direction == "credit", LedgerPosting.amount),
                 else_=-LedgerPosting.amount)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


# --- assets ----------------------------------------------------------------------------------


def create_asset(session: Session, actor: Principal, *, code: str, kind: str, name_zh: str,
                 name_en: str | None = None, vintage_year: int | None = None,
                 batch_reference: str | None = None, project_reference: str | None = None,
                 attributes: Mapping[str, Any] | None = None) -> LedgerAsset:
    """A currency (CNY, in fen) or the credits of one carbon issuance batch (tCO2e)."""
    authorize(actor, "ledger.asset.write")
    errors = []
    if not isinstance(code, str) or not ASSET_CODE_RE.match(code):
        errors.append({"field": "code", "message": "2-40 characters: A-Z, 0-9, '_', '.', '-'"})
    if kind not in ASSET_KINDS:
        errors.append({"field": "kind", "message": f"one of {sorted(ASSET_KINDS)}"})
    if not name_zh or not name_zh.strip():
        errors.append({"field": "name_zh", "message": "required"})
    if kind == "carbon_credit":
        if vintage_year is None or not 1990 <= vintage_year <= 2100:
            errors.append({"field": "vintage_year",
                           "message": "a carbon batch needs its vintage year (1990-2100)"})
        if not batch_reference or not batch_reference.strip():
            errors.append({"field": "batch_reference",
                           "message": "a carbon batch needs the registry's batch reference"})
    elif kind == "currency":
        for field, value in (("vintage_year", vintage_year), ("batch_reference", batch_reference),
                             ("project_reference", project_reference)):
            if value is not None:
                errors.append({"field": field, "message": "only for carbon credits"})
    if errors:
        raise ValidationFailed("invalid asset", errors=errors)
    for column, value in (("code", code), ("batch_reference", batch_reference)):
        if value is not None and session.scalar(
                sa.select(LedgerAsset.id).where(getattr(LedgerAsset, column) == value)):
            raise E.CodeTaken(f"an asset with {column} {value!r} exists", field=column)
    asset = LedgerAsset(code=code, kind=kind, unit=ASSET_KINDS[kind], name_zh=name_zh.strip(),
                        name_en=name_en, vintage_year=vintage_year,
                        batch_reference=batch_reference, project_reference=project_reference,
                        attributes=dict(attributes or {}), created_by=actor.label)
    session.add(asset)
    session.flush()
    audit.record(session, actor, "ledger.asset.create", "ledger_asset", asset.id,
                 after=audit.snapshot(asset))
    return asset


def get_asset(session: Session, actor: Principal, code: str) -> LedgerAsset:
    authorize(actor, "ledger.asset.read")
    asset = None if "\x00" in code else session.scalar(
        sa.select(LedgerAsset).where(LedgerAsset.code == code))
    if asset is None:
        raise E.AssetNotFound(f"no asset {code!r}")
    return asset


def list_assets(session: Session, actor: Principal, *, kind: str | None = None,
                vintage_year: int | None = None) -> sa.Select:
    authorize(actor, "ledger.asset.read")
    stmt = sa.select(LedgerAsset)
    if kind:
        stmt = stmt.where(LedgerAsset.kind == kind)
    if vintage_year is not None:
        stmt = stmt.where(LedgerAsset.vintage_year == vintage_year)
    return stmt.order_by(LedgerAsset.code)


# --- accounts --------------------------------------------------------------------------------


def create_account(session: Session, actor: Principal, *, party_id: int, asset: str, kind: str,
                   code: str | None = None, name: str | None = None,
                   no_overdraft: bool | None = None,
                   attributes: Mapping[str, Any] | None = None) -> LedgerAccount:
    """Open an account of `party_id` in `asset` (code). The guard defaults on for every kind
    but `external`; the code defaults to `P<party>-<KIND>-<ASSET>`."""
    authorize(actor, "ledger.account.write")
    errors = []
    if kind not in ACCOUNT_KINDS:
        errors.append({"field": "kind", "message": f"one of {list(ACCOUNT_KINDS)}"})
    if code is not None and (not isinstance(code, str) or not CODE_RE.match(code)):
        errors.append({"field": "code", "message": "1-100 characters: letters, digits, "
                                                   "'_', '.', ':', '-'; not only digits"})
    if name is not None and len(name) > 200:
        errors.append({"field": "name", "message": "at most 200 characters"})
    party = session.get(Party, party_id) if _valid_id(party_id) else None
    if party is None:
        errors.append({"field": "party_id", "message": f"no party {party_id}"})
    elif not getattr(party, "active", True):
        errors.append({"field": "party_id", "message": f"party {party_id} is inactive"})
    asset_row = session.scalar(sa.select(LedgerAsset).where(LedgerAsset.code == asset))
    if asset_row is None:
        errors.append({"field": "asset", "message": f"no asset {asset!r}"})
    if errors:
        raise ValidationFailed("invalid account", errors=errors)
    assert party is not None and asset_row is not None
    code = code or f"P{party.id}-{kind.upper()}-{asset_row.code}"[:100]
    if session.scalar(sa.select(LedgerAccount.id).where(LedgerAccount.code == code)):
        raise E.CodeTaken(f"an account with code {code!r} exists; choose another code",
                          field="code")
    account = LedgerAccount(
        code=code, name=(name or f"{party.name_zh} {kind} {asset_row.code}")[:200],
        party_id=party.id, asset_id=asset_row.id, kind=kind,
        no_overdraft=(kind != "external") if no_overdraft is None else bool(no_overdraft),
        attributes=dict(attributes or {}), created_by=actor.label)
    session.add(account)
    session.flush()
    session.add(LedgerBalance(account_id=account.id, posted_debits=0, posted_credits=0,
                              pending_debits=0, pending_credits=0, version=0))
    session.flush()
    audit.record(session, actor, "ledger.account.create", "ledger_account", account.id,
                 after=audit.snapshot(account))
    return account


def _valid_id(value: object) -> bool:
    """Ids outside the 64-bit range cannot exist (and must not reach the driver)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_AMOUNT


def _account(session: Session, ref: int | str) -> LedgerAccount:
    if (isinstance(ref, int) and not _valid_id(ref)) or (isinstance(ref, str) and "\x00" in ref):
        raise E.AccountNotFound(f"no account {ref!r}")
    column = LedgerAccount.id if isinstance(ref, int) else LedgerAccount.code
    account = session.scalar(sa.select(LedgerAccount).where(column == ref))
    if account is None:
        raise E.AccountNotFound(f"no account {ref!r}")
    return account


def get_account(session: Session, actor: Principal, ref: int | str) -> LedgerAccount:
    """An account by id or code; a trader sees only its own party's."""
    account = _account(session, ref)
    _authorize_read(actor, account.party_id)
    return account


def _authorize_read(actor: Principal, party_id: int) -> None:
    try:
        authorize(actor, "ledger.read", party=party_id)
    except Forbidden as exc:
        if actor.role == Role.TRADER:
            raise E.AccountNotOwned(f"party {party_id}'s ledger is not yours to read",
                                    action="ledger.read") from exc
        raise


def list_accounts(session: Session, actor: Principal, *, party_id: int | None = None,
                  asset: str | None = None, kind: str | None = None,
                  code_prefix: str | None = None) -> sa.Select:
    if actor.role == Role.TRADER:
        party_id = party_id if party_id is not None else actor.party_id
    if party_id is not None:
        _authorize_read(actor, party_id)
    else:
        authorize(actor, "ledger.read")
    stmt = sa.select(LedgerAccount)
    if party_id is not None:
        stmt = stmt.where(LedgerAccount.party_id == party_id)
    if asset:
        stmt = stmt.join(LedgerAsset, LedgerAsset.id == LedgerAccount.asset_id).where(
            LedgerAsset.code == asset)
    if kind:
        stmt = stmt.where(LedgerAccount.kind == kind)
    if code_prefix:
        stmt = stmt.where(LedgerAccount.code.startswith(code_prefix, autoescape=True))
    return stmt.order_by(LedgerAccount.id)


# --- transactions ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PostingView:
    id: int | None
    account_id: int
    account_code: str
    asset: str
    direction: str
    amount: int


@dataclasses.dataclass(frozen=True)
class TransactionView:
    """A transaction as the API shows it, with the derived state of pendings and reversals."""

    id: int
    type: str
    phase: str
    status: str
    effective_date: dt.date
    memo: str | None
    metadata: dict | None
    author: str
    created_at: dt.datetime
    reverses_id: int | None
    reversed_by_id: int | None
    pending_id: int | None
    resolved_by_id: int | None
    expires_at: dt.datetime | None
    batch_id: int | None
    idempotency_key: str | None
    postings: list[PostingView]
    replayed: bool = False


_RESOLUTION_STATUS = {"post_pending": "posted", "void_pending": "voided",
                      "expire_pending": "expired"}


def load_views(session: Session, ids: Sequence[int], *,
               now: dt.datetime | None = None) -> list[TransactionView]:
    """Transactions by id (in the given order) with postings and derived state."""
    ids = [i for i in ids if _valid_id(i)]
    if not ids:
        return []
    now = _now(now)
    rows = {r.id: r for r in session.execute(sa.select(TX).where(TX.c.id.in_(ids)))}
    postings: dict[int, list[PostingView]] = defaultdict(list)
    a, s = LedgerAccount.__table__, LedgerAsset.__table__
    for row in session.execute(
            sa.select(POSTINGS.c.id, POSTINGS.c.transaction_id, POSTINGS.c.account_id, a.c.code,
                      s.c.code, POSTINGS.c.direction, POSTINGS.c.amount)
            .join(a, a.c.id == POSTINGS.c.account_id).join(s, s.c.id == POSTINGS.c.asset_id)
            .where(POSTINGS.c.transaction_id.in_(ids)).order_by(POSTINGS.c.id)):
        postings[row[1]].append(PostingView(row[0], row[2], row[3], row[4], row[5], row[6]))
    followers = session.execute(sa.select(TX.c.id, TX.c.phase, TX.c.pending_id, TX.c.reverses_id)
                                .where(sa.or_(TX.c.pending_id.in_(ids),
                                              TX.c.reverses_id.in_(ids)))).all()
    resolved = {f.pending_id: f for f in followers if f.pending_id is not None}
    reversed_by = {f.reverses_id: f.id for f in followers if f.reverses_id is not None}
    # a pending's own legs: the resolution has none (void/expire) or copies them (post)
    holds = dict(session.execute(sa.select(LedgerPendingHold.transaction_id,
                                           LedgerPendingHold.expires_at)
                                 .where(LedgerPendingHold.transaction_id.in_(ids))).all())
    views = []
    for tx_id in ids:
        r = rows.get(tx_id)
        if r is None:
            continue
        resolution = resolved.get(tx_id)
        if r.phase == "pending":
            if resolution is not None:
                status = _RESOLUTION_STATUS[resolution.phase]
            elif tx_id in holds and holds[tx_id] is not None and holds[tx_id] <= now:
                status = "expired"
            else:
                status = "pending"
        else:
            status = _RESOLUTION_STATUS.get(r.phase, "posted")
        views.append(TransactionView(
            id=r.id, type=r.type, phase=r.phase, status=status, effective_date=r.effective_date,
            memo=r.memo, metadata=r.metadata, author=r.author, created_at=r.created_at,
            reverses_id=r.reverses_id, reversed_by_id=reversed_by.get(tx_id),
            pending_id=r.pending_id, resolved_by_id=resolution.id if resolution else None,
            expires_at=r.expires_at, batch_id=r.batch_id, idempotency_key=r.idempotency_key,
            postings=postings.get(tx_id, [])))
    return views


def _view(session: Session, tx_id: int, now: dt.datetime) -> TransactionView:
    return load_views(session, [tx_id], now=now)[0]


def _created_status(phase: str) -> str:
    return "pending" if phase == "pending" else _RESOLUTION_STATUS.get(phase, "posted")


def _replayed(session: Session, tx_id: int, now: dt.datetime) -> TransactionView:
    """The answer to a replay: the first answer again, i.e. the transaction as it was
    created (as `_fresh_view` showed it), whatever happened to it since (a later reversal,
    the resolution of a pending); the current state is one GET away."""
    view = _view(session, tx_id, now)
    return dataclasses.replace(
        view, status=_created_status(view.phase), reversed_by_id=None, resolved_by_id=None,
        postings=[dataclasses.replace(p, id=None) for p in view.postings], replayed=True)


def _authorize_tx_read(session: Session, actor: Principal, view: TransactionView) -> None:
    if actor.role != Role.TRADER:
        authorize(actor, "ledger.read")
        return
    ids = {p.account_id for p in view.postings}
    if view.pending_id is not None and not ids:
        ids = {p.account_id for p in _view(session, view.pending_id, utcnow()).postings}
    parties = set(session.scalars(sa.select(LedgerAccount.party_id)
                                  .where(LedgerAccount.id.in_(ids)))) if ids else set()
    if actor.party_id not in parties:
        raise E.AccountNotOwned("this transaction touches none of your party's accounts",
                                action="ledger.read")


def get_transaction(session: Session, actor: Principal, tx_id: int, *,
                    now: dt.datetime | None = None) -> TransactionView:
    views = load_views(session, [tx_id], now=now)
    if not views:
        raise E.TransactionNotFound(f"no transaction {tx_id}")
    _authorize_tx_read(session, actor, views[0])
    return views[0]


def create_transaction(session: Session, actor: Principal, spec: TransactionSpec, *,
                       now: dt.datetime | None = None) -> TransactionView:
    """Post a transaction (or, with `spec.pending`, reserve a two-phase transfer).

    With `spec.idempotency_key`: a replay (same key, same request, same caller scope)
    returns the first transaction with `replayed=True` and changes nothing; the same key
    with a different request raises IdempotencyKeyReused (409)."""
    now = _now(now)
    key = spec.idempotency_key
    request_hash = spec.request_hash() if key is not None else None
    lookup = P.look_up(session, [spec], now=now, scope=P.scope_of(actor),
                       key=key if isinstance(key, str) else None)
    if lookup.found is not None:
        authorize(actor, "ledger.transaction.create", party=_any_party(actor))
        return _replayed(session, P.replay_or_refuse(lookup.found, request_hash),  # type: ignore
                         now)
    prepared = P.prepare(session, actor, [spec], now=now, lookup=lookup)[0]
    prepared.request_hash = request_hash
    action = "ledger.pending.create" if spec.pending else "ledger.transaction.create"
    tx_id = P.write_one(session, actor, prepared, now=now, action=action)
    if tx_id is None:  # a racing request with the same key committed first
        found = P.find_by_key(session, P.scope_of(actor), key)  # type: ignore[arg-type]
        assert found is not None
        return _replayed(session, P.replay_or_refuse(found, request_hash), now)  # type: ignore
    return _fresh_view(prepared, tx_id, actor, now)


def _any_party(actor: Principal) -> int | None:
    return actor.party_id


def _fresh_view(p: P.Prepared, tx_id: int, actor: Principal, now: dt.datetime
                ) -> TransactionView:
    """The view of a transaction just written, without reading it back: what a read-back
    would show at this instant (timestamps in UTC, as stored), which is also what a replay
    answers (`_replayed`)."""
    expires_at = p.spec.expires_at if p.phase == "pending" else None
    return TransactionView(
        id=tx_id, type=p.type, phase=p.phase, status=_created_status(p.phase),
        effective_date=p.effective_date, memo=p.spec.memo,
        metadata=dict(p.spec.metadata) if p.spec.metadata is not None else None,
        author=actor.label, created_at=now.astimezone(dt.UTC), reverses_id=p.reverses_id,
        reversed_by_id=None, pending_id=p.pending_id, resolved_by_id=None,
        expires_at=expires_at.astimezone(dt.UTC) if expires_at is not None else None,
        batch_id=None,
        idempotency_key=p.spec.idempotency_key,
        postings=[PostingView(None, acc.id, acc.code, acc.asset_code, d, amount)
                  for acc, d, amount in p.legs])


def _original_for_update(session: Session, tx_id: int) -> Any:
    if not _valid_id(tx_id):
        raise E.TransactionNotFound(f"no transaction {tx_id}")
    row = session.execute(sa.select(TX).where(TX.c.id == tx_id)).first()
    if row is None:
        raise E.TransactionNotFound(f"no transaction {tx_id}")
    return row


def _legs_of(session: Session, tx_id: int) -> list[tuple[P.AccountRow, str, int]]:
    legs = P.pending_legs(session, [tx_id]).get(tx_id, [])
    accounts = P.resolve_accounts(session, {a for a, _, _ in legs})
    return [(accounts[a], d, amount) for a, d, amount in legs]


def _follow_up(session: Session, actor: Principal, *, op: str, original_id: int,
               key: str | None, body: Mapping[str, Any], now: dt.datetime
               ) -> tuple[str | None, TransactionView | None]:
    """Idempotent replay for reverse/post/void: the request hash and, if the key was used
    already, the view to return."""
    if key is None:
        return None, None
    request_hash = P._digest({"op": op, "original": original_id, **body})
    found = P.find_by_key(session, P.scope_of(actor), key)
    if found is None:
        return request_hash, None
    return request_hash, _replayed(session, P.replay_or_refuse(found, request_hash), now)


def reverse_transaction(session: Session, actor: Principal, tx_id: int, *,
                        memo: str | None = None, effective_date: dt.date | None = None,
                        idempotency_key: str | None = None,
                        now: dt.datetime | None = None) -> TransactionView:
    """Append a transaction with every posting of `tx_id` mirrored (debit <-> credit), dated
    `effective_date` (default today) in an open period. A reversal cannot be reversed, an
    original is reversed at most once; pendings are voided, not reversed."""
    now = _now(now)
    authorize(actor, "ledger.transaction.reverse")
    body = {"memo": memo, "effective_date": effective_date.isoformat() if effective_date else None}
    request_hash, replay = _follow_up(session, actor, op="reverse", original_id=tx_id,
                                      key=idempotency_key, body=body, now=now)
    if replay is not None:
        return replay
    original = _original_for_update(session, tx_id)
    if original.reverses_id is not None:
        raise E.NotReversible(f"transaction {tx_id} is itself a reversal; post a new transaction "
                              "instead of reversing a reversal")
    if original.phase == "pending":
        raise E.NotReversible(f"transaction {tx_id} is a pending transfer: void it instead")
    if original.phase in ("void_pending", "expire_pending"):
        raise E.NotReversible(f"transaction {tx_id} moved nothing (it resolves pending "
                              f"{original.pending_id}); there is nothing to reverse")
    existing = session.scalar(sa.select(TX.c.id).where(TX.c.reverses_id == tx_id))
    if existing is not None:
        raise E.AlreadyReversed(f"transaction {tx_id} was already reversed by {existing}",
                                reversed_by_id=existing)
    legs = [(acc, "credit" if d == "debit" else "debit", amount)
            for acc, d, amount in _legs_of(session, tx_id)]
    spec = TransactionSpec(type="reversal", postings=[], effective_date=effective_date,
                           memo=memo if memo is not None else f"reversal of {tx_id}",
                           metadata={"reverses": tx_id}, idempotency_key=idempotency_key)
    prepared = _prepare_follow_up(session, actor, spec, legs, now=now,
                                  not_before=original.effective_date,
                                  action="ledger.transaction.reverse")
    prepared.reverses_id = tx_id
    prepared.request_hash = request_hash
    new_id = P.write_one(session, actor, prepared, now=now, action="ledger.transaction.reverse")
    if new_id is None:
        return _lost_race(session, actor, idempotency_key, request_hash, now,
                          E.AlreadyReversed(f"transaction {tx_id} was already reversed"))
    return _fresh_view(prepared, new_id, actor, now)


def _lost_race(session: Session, actor: Principal, key: str | None, request_hash: str | None,
               now: dt.datetime, error: Exception) -> TransactionView:
    if key is not None:
        found = P.find_by_key(session, P.scope_of(actor), key)
        if found is not None:
            return _replayed(session, P.replay_or_refuse(found, request_hash or ""), now)
    raise error


def _prepare_follow_up(session: Session, actor: Principal, spec: TransactionSpec,
                       legs: list[tuple[P.AccountRow, str, int]], *, now: dt.datetime,
                       not_before: dt.date, action: str, phase: str = "posted") -> P.Prepared:
    today = local_date(now)
    errors = P._Errors()
    effective = P._validate_header(spec, "", errors, today, now, allow_reserved=True)
    errors.raise_if_any()
    if effective < not_before:
        raise E.EffectiveDateTooEarly(
            f"effective date {effective} is before the original's {not_before}",
            errors=[{"location": "json", "field": "effective_date",
                     "message": f"on or after {not_before}"}])
    if legs:
        P.check_periods(session, [effective])
    return P.Prepared(spec=spec, effective_date=effective, legs=legs, phase=phase,
                      type=spec.type)


def _resolve(session: Session, actor: Principal, tx_id: int, *, phase: str,
             memo: str | None, effective_date: dt.date | None, idempotency_key: str | None,
             now: dt.datetime) -> TransactionView:
    op = "post" if phase == "post_pending" else "void"
    authorize(actor, "ledger.pending.resolve")
    body = {"memo": memo, "effective_date": effective_date.isoformat() if effective_date else None}
    request_hash, replay = _follow_up(session, actor, op=op, original_id=tx_id,
                                      key=idempotency_key, body=body, now=now)
    if replay is not None:
        return replay
    original = _original_for_update(session, tx_id)
    if original.phase != "pending":
        raise E.NotPending(f"transaction {tx_id} is not a pending transfer")
    # Deleting the hold is what serialises racing post/void of the same pending.
    hold = session.execute(LedgerPendingHold.__table__.delete().where(
        LedgerPendingHold.transaction_id == tx_id)
        .returning(LedgerPendingHold.expires_at)).first()
    if hold is None:
        resolution = session.execute(sa.select(TX.c.id, TX.c.phase)
                                     .where(TX.c.pending_id == tx_id)).first()
        if idempotency_key is not None and resolution is not None:
            found = P.find_by_key(session, P.scope_of(actor), idempotency_key)
            if found is not None:
                return _replayed(session, P.replay_or_refuse(found, request_hash or ""), now)
        what = _RESOLUTION_STATUS.get(resolution.phase, "resolved") if resolution else "resolved"
        raise E.PendingAlreadyResolved(
            f"pending transfer {tx_id} was already {what}"
            + (f" by transaction {resolution.id}" if resolution else ""),
            resolved_by_id=resolution.id if resolution else None)
    expires_at = hold[0]
    if expires_at is not None and expires_at <= now:
        raise E.PendingExpired(f"pending transfer {tx_id} expired at {expires_at.isoformat()}; "
                               "its reservation is released and it can no longer be "
                               f"{'posted' if op == 'post' else 'voided'}")
    pending_legs = _legs_of(session, tx_id)
    authorize(actor, "ledger.pending.resolve",
              party={acc.party_id for acc, d, _ in pending_legs if d == "debit"})
    spec = TransactionSpec(type=original.type, postings=[], effective_date=effective_date,
                           memo=memo, idempotency_key=idempotency_key,
                           metadata={"pending": tx_id})
    prepared = _prepare_follow_up(
        session, actor, spec, pending_legs if phase == "post_pending" else [], now=now,
        not_before=original.effective_date, action="ledger.pending.resolve", phase=phase)
    prepared.pending_id = tx_id
    prepared.request_hash = request_hash
    release = [(acc.id, d, amount) for acc, d, amount in pending_legs]
    new_id = P.write_one(session, actor, prepared, now=now, action=f"ledger.pending.{op}",
                         release=release)
    if new_id is None:  # pragma: no cover - the hold delete above already serialised us
        raise E.PendingAlreadyResolved(f"pending transfer {tx_id} was already resolved")
    return _fresh_view(prepared, new_id, actor, now)


def post_pending(session: Session, actor: Principal, tx_id: int, *, memo: str | None = None,
                 effective_date: dt.date | None = None, idempotency_key: str | None = None,
                 now: dt.datetime | None = None) -> TransactionView:
    """Post a pending transfer in full: its reserved debits and credits become posted."""
    return _resolve(session, actor, tx_id, phase="post_pending", memo=memo,
                    effective_date=effective_date, idempotency_key=idempotency_key,
                    now=_now(now))


def void_pending(session: Session, actor: Principal, tx_id: int, *, memo: str | None = None,
                 idempotency_key: str | None = None,
                 now: dt.datetime | None = None) -> TransactionView:
    """Cancel a pending transfer: its reservations are released, nothing moves."""
    return _resolve(session, actor, tx_id, phase="void_pending", memo=memo, effective_date=None,
                    idempotency_key=idempotency_key, now=_now(now))


def expire_pendings(session: Session, actor: Principal, *, now: dt.datetime | None = None,
                    limit: int = 1000) -> list[int]:
    """Record the expiry of every pending past its `expires_at` (a sweep; posting into an
    account also expires the pendings that reserve its funds). Returns the expired ids."""
    now = _now(now)
    authorize(actor, "ledger.pending.resolve")
    ids = session.scalars(sa.select(LedgerPendingHold.transaction_id).where(
        LedgerPendingHold.expires_at <= now).order_by(LedgerPendingHold.transaction_id)
        .limit(limit)).all()
    expiring = P.pending_legs(session, ids)
    if not expiring:
        return []
    totals = P.lock_balances(session, {a for legs in expiring.values() for a, _, _ in legs})
    done = P.expire_locked(session, actor, totals, expiring, now)
    P.write_balances(session, totals, now)
    return done


def post_batch(session: Session, actor: Principal, specs: Sequence[TransactionSpec], *,
               memo: str | None = None, now: dt.datetime | None = None) -> tuple[int, list[int]]:
    """Post many transactions at once, all or nothing (errors name `transactions.<i>`).
    Guards are checked on the batch's end state. Returns (batch id, transaction ids)."""
    now = _now(now)
    authorize(actor, "ledger.transaction.create", party=_any_party(actor))
    if not specs:
        raise E.InvalidTransaction("a batch needs at least one transaction", errors=[
            {"location": "json", "field": "transactions", "message": "empty"}])
    if len(specs) > P.MAX_BATCH:
        raise E.InvalidTransaction(f"at most {P.MAX_BATCH} transactions per batch", errors=[
            {"location": "json", "field": "transactions", "message": "too many"}])
    if any(s.idempotency_key is not None for s in specs):
        raise E.InvalidTransaction(
            "transactions of a batch carry no idempotency key of their own: the batch request "
            "is idempotent as a whole", errors=[{"location": "json", "field": "transactions",
                                                 "message": "idempotency_key not allowed"}])
    if memo is not None and len(memo) > 500:
        raise E.InvalidTransaction("memo too long", errors=[
            {"location": "json", "field": "memo", "message": "at most 500 characters"}])
    prepared = P.prepare(session, actor, specs, now=now, batch=True)
    return P.write_batch(session, actor, prepared, memo=memo, now=now)


def get_batch(session: Session, actor: Principal, batch_id: int) -> tuple[LedgerBatch, list[int]]:
    authorize(actor, "ledger.read")
    batch = session.get(LedgerBatch, batch_id) if _valid_id(batch_id) else None
    if batch is None:
        raise E.TransactionNotFound(f"no batch {batch_id}")
    ids = session.scalars(sa.select(TX.c.id).where(TX.c.batch_id == batch_id)
                          .order_by(TX.c.id)).all()
    return batch, list(ids)


def list_transactions(session: Session, actor: Principal, *, account: int | str | None = None,
                      party_id: int | None = None, type: str | None = None,
                      phase: str | None = None, date_from: dt.date | None = None,
                      date_to: dt.date | None = None, batch_id: int | None = None,
                      asset: str | None = None) -> sa.Select:
    """Transaction ids matching the filters, newest first (the caller paginates and loads
    the views). A trader sees only transactions touching its party's accounts."""
    if actor.role == Role.TRADER:
        party_id = actor.party_id if party_id is None else party_id
        _authorize_read(actor, party_id)  # type: ignore[arg-type]
    else:
        authorize(actor, "ledger.read")
    stmt = sa.select(TX.c.id)
    if account is not None:
        acc = _account(session, account)
        if actor.role == Role.TRADER:
            _authorize_read(actor, acc.party_id)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.account_id == acc.id))
    if party_id is not None:
        owned = sa.select(LedgerAccount.id).where(LedgerAccount.party_id == party_id)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.account_id.in_(owned)))
    if asset:
        assets = sa.select(LedgerAsset.id).where(LedgerAsset.code == asset)
        stmt = stmt.where(sa.exists().where(POSTINGS.c.transaction_id == TX.c.id,
                                            POSTINGS.c.asset_id.in_(assets)))
    if type:
        stmt = stmt.where(TX.c.type == type)
    if phase:
        stmt = stmt.where(TX.c.phase == phase)
    if date_from:
        stmt = stmt.where(TX.c.effective_date >= date_from)
    if date_to:
        stmt = stmt.where(TX.c.effective_date <= date_to)
    if batch_id is not None:
        stmt = stmt.where(TX.c.batch_id == batch_id)
    return stmt.order_by(TX.c.id.desc())


# --- balances and statements -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BalanceView:
    account_id: int
    account_code: str
    party_id: int
    kind: str
    asset: str
    unit: str
    as_of: dt.date | None
    balance: int  #: posted credits - posted debits
    pending_debits: int | None
    pending_credits: int | None
    available: int | None  #: balance - pending debits (what the guard protects)
    no_overdraft: bool


def _balance_rows(session: Session, accounts: Sequence[LedgerAccount],
                  as_of: dt.date | None) -> list[BalanceView]:
    if not accounts:
        return []
    ids = [a.id for a in accounts]
    assets = {s.id: s for s in session.scalars(
        sa.select(LedgerAsset).where(LedgerAsset.id.in_({a.asset_id for a in accounts})))}
    out = []
    if as_of is None:
        totals = {b.account_id: b for b in session.scalars(
            sa.select(LedgerBalance).where(LedgerBalance.account_id.in_(ids)))}
        for a in accounts:
            b = totals[a.id]
            balance = b.posted_credits - b.posted_debits
            out.append(BalanceView(a.id, a.code, a.party_id, a.kind, assets[a.asset_id].code,
                                   assets[a.asset_id].unit, None, balance, b.pending_debits,
                                   b.pending_credits, balance - b.pending_debits,
                                   a.no_overdraft))
        return out
    sums = dict(session.execute(
        sa.select(LedgerPosting.account_id, sa.func.sum(SIGNED))
        .where(LedgerPosting.account_id.in_(ids), LedgerPosting.pending.is_(False),
               LedgerPosting.effective_date <= as_of)
        .group_by(LedgerPosting.account_id)).all())
    for a in accounts:
        out.append(BalanceView(a.id, a.code, a.party_id, a.kind, assets[a.asset_id].code,
                               assets[a.asset_id].unit, as_of, int(sums.get(a.id) or 0), None,
                               None, None, a.no_overdraft))
    return out


def account_balance(session: Session, actor: Principal, ref: int | str, *,
                    as_of: dt.date | None = None) -> BalanceView:
    """Current balance (with pending reservations), or the posted balance at the end of
    `as_of` (sum of postings dated on or before it)."""
    account = get_account(session, actor, ref)
    return _balance_rows(session, [account], as_of)[0]


def party_balances(session: Session, actor: Principal, party_id: int, *,
                   as_of: dt.date | None = None) -> tuple[list[BalanceView], dict[str, int]]:
    """Every account of a party with its balance, and totals per asset."""
    _authorize_read(actor, party_id)
    if not _valid_id(party_id) or session.get(Party, party_id) is None:
        raise E.AccountNotFound(f"no party {party_id}")
    accounts = session.scalars(sa.select(LedgerAccount).where(LedgerAccount.party_id == party_id)
                               .order_by(LedgerAccount.id)).all()
    rows = _balance_rows(session, accounts, as_of)
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r.asset] += r.balance
    return rows, dict(totals)


@dataclasses.dataclass(frozen=True)
class StatementLine:
    effective_date: dt.date
    transaction_id: int
    type: str
    memo: str | None
    debit: int
    credit: int
    balance: int


@dataclasses.dataclass(frozen=True)
class Statement:
    account_id: int
    account_code: str
    account_name: str
    party_id: int
    asset: str
    unit: str
    date_from: dt.date
    date_to: dt.date
    opening_balance: int
    closing_balance: int
    total_debits: int
    total_credits: int
    lines: list[StatementLine]


MAX_STATEMENT_LINES = 100_000


def statement(session: Session, actor: Principal, ref: int | str, *,
              date_from: dt.date | None = None, date_to: dt.date | None = None,
              now: dt.datetime | None = None) -> Statement:
    """Posted movements of an account between two dates (inclusive, default: this month up
    to today) with the opening balance and the running balance after each line."""
    account = get_account(session, actor, ref)
    today = local_date(_now(now))
    date_to = date_to or today
    date_from = date_from or month_of(date_to)
    if date_from > date_to:
        raise ValidationFailed("date_from is after date_to", errors=[
            {"location": "query", "field": "date_from", "message": "must not be after date_to"}])
    asset = session.get(LedgerAsset, account.asset_id)
    assert asset is not None
    opening = int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SIGNED), 0)).where(
        LedgerPosting.account_id == account.id, LedgerPosting.pending.is_(False),
        LedgerPosting.effective_date < date_from)) or 0)
    rows = session.execute(
        sa.select(LedgerPosting.effective_date, LedgerPosting.transaction_id, TX.c.type,
                  TX.c.memo, LedgerPosting.direction, LedgerPosting.amount)
        .join(TX, TX.c.id == LedgerPosting.transaction_id)
        .where(LedgerPosting.account_id == account.id, LedgerPosting.pending.is_(False),
               LedgerPosting.effective_date >= date_from, LedgerPosting.effective_date <= date_to)
        .order_by(LedgerPosting.effective_date, LedgerPosting.transaction_id, LedgerPosting.id)
        .limit(MAX_STATEMENT_LINES + 1)).all()
    if len(rows) > MAX_STATEMENT_LINES:
        raise ValidationFailed(f"more than {MAX_STATEMENT_LINES} lines: ask for a shorter range",
                               errors=[{"location": "query", "field": "date_from",
                                        "message": "range too long"}])
    running, lines, debits, credits = opening, [], 0, 0
    for day, tx_id, tx_type, memo, direction, amount in rows:
        if direction == "debit":
            running -= amount
            debits += amount
        else:
            running += amount
            credits += amount
        lines.append(StatementLine(day, tx_id, tx_type, memo,
                                   amount if direction == "debit" else 0,
                                   amount if direction == "credit" else 0, running))
    return Statement(account.id, account.code, account.name, account.party_id, asset.code,
                     asset.unit, date_from, date_to, opening, running, debits, credits, lines)


# --- periods ---------------------------------------------------------------------------------


def _lock_periods(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(P.PERIOD_LOCK_KEY)))


def close_period(session: Session, actor: Principal, month: dt.date, *, note: str | None = None,
                 now: dt.datetime | None = None) -> LedgerPeriod:
    """Close a month: no posting may be dated in it until it is reopened."""
    now = _now(now)
    authorize(actor, "ledger.period.manage")
    month = month_of(month)
    if month > month_of(local_date(now)):
        raise ValidationFailed(f"{format_month(month)} has not begun", errors=[
            {"location": "path", "field": "month", "message": "a future month cannot be closed"}])
    _lock_periods(session)
    period = session.get(LedgerPeriod, month, populate_existing=True)
    before = audit.snapshot(period) if period else None
    if period is not None and period.status == "closed":
        raise E.PeriodAlreadyClosed(f"{format_month(month)} is already closed")
    if period is None:
        period = LedgerPeriod(month=month, status="closed")
        session.add(period)
    period.status, period.closed_at, period.closed_by, period.note = (
        "closed", now, actor.label, note)
    session.flush()
    audit.record(session, actor, "ledger.period.close", "ledger_period", format_month(month),
                 before=before, after=audit.snapshot(period))
    return period


def reopen_period(session: Session, actor: Principal, month: dt.date, *, note: str | None = None,
                  now: dt.datetime | None = None) -> LedgerPeriod:
    now = _now(now)
    authorize(actor, "ledger.period.manage")
    month = month_of(month)
    _lock_periods(session)
    period = session.get(LedgerPeriod, month, populate_existing=True)
    if period is None or period.status != "closed":
        raise E.PeriodNotClosed(f"{format_month(month)} is not closed")
    before = audit.snapshot(period)
    period.status, period.reopened_at, period.reopened_by, period.note = (
        "open", now, actor.label, note)
    session.flush()
    audit.record(session, actor, "ledger.period.reopen", "ledger_period", format_month(month),
                 before=before, after=audit.snapshot(period))
    return period


def list_periods(session: Session, actor: Principal) -> list[LedgerPeriod]:
    """Months that were ever closed (every other month is open)."""
    authorize(actor, "ledger.read")
    return list(session.scalars(sa.select(LedgerPeriod).order_by(LedgerPeriod.month.desc())))


def period_status(session: Session, month: dt.date) -> str:
    period = session.get(LedgerPeriod, month_of(month))
    return period.status if period else "open"


# --- balance assertions ----------------------------------------------------------------------


def _posted_as_of(session: Session, account_id: int, as_of: dt.date) -> int:
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(SIGNED), 0)).where(
        LedgerPosting.account_id == account_id, LedgerPosting.pending.is_(False),
        LedgerPosting.effective_date <= as_of)) or 0)


def assert_balance(session: Session, actor: Principal, ref: int | str, *, as_of: dt.date,
                   expected_balance: int, memo: str | None = None,
                   now: dt.datetime | None = None) -> LedgerBalanceAssertion:
    """Record that `ref` should hold `expected_balance` at the end of `as_of` and check it now;
    a failed assertion is recorded too (passed = false) for reconciliation to follow up."""
    now = _now(now)
    authorize(actor, "ledger.assertion.write")
    problem = signed_problem(expected_balance)
    if problem:
        raise E.InvalidAmount(f"expected_balance {problem}", errors=[
            {"location": "json", "field": "expected_balance", "message": problem}])
    if as_of > local_date(now):
        raise E.EffectiveDateInFuture("a balance can only be asserted for a past date", errors=[
            {"location": "json", "field": "as_of", "message": "must not be in the future"}])
    account = _account(session, ref)
    actual = _posted_as_of(session, account.id, as_of)
    assertion = LedgerBalanceAssertion(
        account_id=account.id, as_of=as_of, expected_balance=expected_balance,
        actual_balance=actual, passed=actual == expected_balance, memo=memo,
        created_by=actor.label, created_at=now, checked_at=now)
    session.add(assertion)
    session.flush()
    audit.record(session, actor, "ledger.assertion.create", "ledger_balance_assertion",
                 assertion.id, after=audit.snapshot(assertion))
    return assertion


def recheck_assertions(session: Session, actor: Principal, *, account: int | str | None = None,
                       now: dt.datetime | None = None) -> list[LedgerBalanceAssertion]:
    """Check recorded assertions again (e.g. after back-dated postings); those whose outcome
    changed are updated and audited. Returns every assertion checked."""
    now = _now(now)
    authorize(actor, "ledger.assertion.write")
    stmt = sa.select(LedgerBalanceAssertion).order_by(LedgerBalanceAssertion.id)
    if account is not None:
        stmt = stmt.where(LedgerBalanceAssertion.account_id == _account(session, account).id)
    checked = []
    for assertion in session.scalars(stmt):
        actual = _posted_as_of(session, assertion.account_id, assertion.as_of)
        before = audit.snapshot(assertion)
        changed = actual != assertion.actual_balance
        assertion.actual_balance = actual
        assertion.passed = actual == assertion.expected_balance
        assertion.checked_at = now
        if changed:
            session.flush()
            audit.record(session, actor, "ledger.assertion.check", "ledger_balance_assertion",
                         assertion.id, before=before, after=audit.snapshot(assertion))
        checked.append(assertion)
    session.flush()
    return checked


def list_assertions(session: Session, actor: Principal, *, account: int | str | None = None,
                    passed: bool | None = None) -> sa.Select:
    authorize(actor, "ledger.read")
    stmt = sa.select(LedgerBalanceAssertion)
    if account is not None:
        stmt = stmt.where(LedgerBalanceAssertion.account_id == _account(session, account).id)
    if passed is not None:
        stmt = stmt.where(LedgerBalanceAssertion.passed.is_(passed))
    return stmt.order_by(LedgerBalanceAssertion.id.desc())


# --- integrity check (tests, `ecovalue ledger verify`) ---------------------------------------


def verify(session: Session, actor: Principal) -> list[str]:
    """Recompute every materialised total from the postings and check the invariants: each
    asset sums to zero, every transaction balances per asset, guarded accounts are not
    negative, the holds are exactly the unresolved pendings. Returns the problems found."""
    authorize(actor, "ledger.read")
    problems: list[str] = []
    p = POSTINGS
    debit = sa.case((p.c.direction == "debit", p.c.amount), else_=0)
    credit = sa.case((p.c.direction == "credit", p.c.amount), else_=0)
    held = sa.select(LedgerPendingHold.transaction_id)
    computed = {r[0]: tuple(int(x or 0) for x in r[1:]) for r in session.execute(
        sa.select(p.c.account_id,
                  sa.func.sum(sa.case((p.c.pending.is_(False), debit), else_=0)),
                  sa.func.sum(sa.case((p.c.pending.is_(False), credit), else_=0)),
                  sa.func.sum(sa.case((p.c.transaction_id.in_(held), debit), else_=0)),
                  sa.func.sum(sa.case((p.c.transaction_id.in_(held), credit), else_=0)))
        .group_by(p.c.account_id))}
    accounts = {a.id: a for a in session.scalars(sa.select(LedgerAccount))}
    for b in session.scalars(sa.select(LedgerBalance)):
        stored = (b.posted_debits, b.posted_credits, b.pending_debits, b.pending_credits)
        expected = computed.get(b.account_id, (0, 0, 0, 0))
        if stored != expected:
            problems.append(f"account {b.account_id}: stored totals {stored} != postings "
                            f"{expected}")
        account = accounts[b.account_id]
        if account.no_overdraft and b.posted_credits - b.posted_debits - b.pending_debits < 0:
            problems.append(f"account {account.code}: guarded but available "
                            f"{b.posted_credits - b.posted_debits - b.pending_debits}")
    for asset_id, total in session.execute(
            sa.select(p.c.asset_id, sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                                        else_=-p.c.amount)))
            .where(p.c.pending.is_(False)).group_by(p.c.asset_id)):
        if int(total) != 0:
            problems.append(f"asset {asset_id}: posted balances sum to {total}, not 0")
    for tx_id, asset_id, total in session.execute(
            sa.select(p.c.transaction_id, p.c.asset_id,
                      sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                          else_=-p.c.amount)))
            .group_by(p.c.transaction_id, p.c.asset_id)
            .having(sa.func.sum(sa.case((p.c.direction == "credit", p.c.amount),
                                        else_=-p.c.amount)) != 0)):
        problems.append(f"transaction {tx_id}: asset {asset_id} unbalanced by {total}")
    resolution = TX.alias("resolution")
    open_pendings = set(session.scalars(sa.select(TX.c.id).where(
        TX.c.phase == "pending", ~sa.exists().where(resolution.c.pending_id == TX.c.id))))
    holds = set(session.scalars(held))
    if open_pendings != holds:
        problems.append(f"holds {sorted(holds ^ open_pendings)[:10]} disagree with the "
                        "unresolved pendings")
    return problems
