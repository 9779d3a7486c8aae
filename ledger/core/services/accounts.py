"""Assets and accounts: what can be held, and who holds it where.

An asset is a currency (CNY, counted in fen) or the credits of one carbon issuance batch
(tCO2e); an account belongs to one party and holds one asset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth.policy import Principal, authorize, row_filter
from ecovalue.errors import Forbidden, ValidationFailed
from ledger.core import errors
from ledger.core.models import (
    ACCOUNT_KINDS,
    ASSET_KINDS,
    LedgerAccount,
    LedgerAsset,
    LedgerBalance,
)
from ledger.core.rules import valid_id

#: account codes: no '/', so that a code is a URL path segment; never all digits (an id)
CODE_RE = re.compile(r"^(?![0-9]+$)[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
ASSET_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{1,39}$")


def create_asset(session: Session, actor: Principal, *, code: str, kind: str, name_zh: str,
                 name_en: str | None = None, vintage_year: int | None = None,
                 batch_reference: str | None = None, project_reference: str | None = None,
                 attributes: Mapping[str, Any] | None = None,
                 action: str = "ledger.asset.write") -> LedgerAsset:
    """A currency (CNY, in fen) or the credits of one carbon issuance batch (tCO2e).
    `action`: the policy action the caller is authorized under (a sibling package, such as
    the carbon registry issuing a batch, names its own)."""
    authorize(actor, action)
    problems = []
    if not isinstance(code, str) or not ASSET_CODE_RE.match(code):
        problems.append({"field": "code", "message": "2-40 characters: A-Z, 0-9, '_', '.', '-'"})
    if kind not in ASSET_KINDS:
        problems.append({"field": "kind", "message": f"one of {sorted(ASSET_KINDS)}"})
    if not name_zh or not name_zh.strip():
        problems.append({"field": "name_zh", "message": "required"})
    if kind == "carbon_credit":
        if vintage_year is None or not 1990 <= vintage_year <= 2100:
            problems.append({"field": "vintage_year",
                           "message": "a carbon batch needs its vintage year (1990-2100)"})
        if not batch_reference or not batch_reference.strip():
            problems.append({"field": "batch_reference",
                           "message": "a carbon batch needs the registry's batch reference"})
    elif kind == "currency":
        for field, value in (("vintage_year", vintage_year), ("batch_reference", batch_reference),
                             ("project_reference", project_reference)):
            if value is not None:
                problems.append({"field": field, "message": "only for carbon credits"})
    if problems:
        raise ValidationFailed("invalid asset", errors=problems)
    for column, value in (("code", code), ("batch_reference", batch_reference)):
        if value is not None and session.scalar(
                sa.select(LedgerAsset.id).where(getattr(LedgerAsset, column) == value)):
            raise errors.CodeTaken(f"an asset with {column} {value!r} exists", field=column)
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
        raise errors.AssetNotFound(f"no asset {code!r}")
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
                   attributes: Mapping[str, Any] | None = None,
                   action: str = "ledger.account.write") -> LedgerAccount:
    """Open an account of `party_id` in `asset` (code). The guard defaults on for every kind
    but `external`; the code defaults to `P<party>-<KIND>-<ASSET>`. `action`: the policy
    action the caller is authorized under (a sibling package names its own)."""
    authorize(actor, action)
    problems = []
    if kind not in ACCOUNT_KINDS:
        problems.append({"field": "kind", "message": f"one of {list(ACCOUNT_KINDS)}"})
    if code is not None and (not isinstance(code, str) or not CODE_RE.match(code)):
        problems.append({"field": "code", "message": "1-100 characters: letters, digits, "
                                                   "'_', '.', ':', '-'; not only digits"})
    if name is not None and len(name) > 200:
        problems.append({"field": "name", "message": "at most 200 characters"})
    party = session.get(Party, party_id) if valid_id(party_id) else None
    if party is None:
        problems.append({"field": "party_id", "message": f"no party {party_id}"})
    elif not getattr(party, "active", True):
        problems.append({"field": "party_id", "message": f"party {party_id} is inactive"})
    elif not party.identified:  # an enterprise an import registered without its credit code
        problems.append({"field": "party_id", "message": (
            f"party {party_id} is an enterprise without its unified social credit code "
            f"(unidentified): it can hold no account, trade or receive money until the code "
            f"is added")})
    asset_row = session.scalar(sa.select(LedgerAsset).where(LedgerAsset.code == asset))
    if asset_row is None:
        problems.append({"field": "asset", "message": f"no asset {asset!r}"})
    if problems:
        raise ValidationFailed("invalid account", errors=problems)
    assert party is not None and asset_row is not None
    code = code or f"P{party.id}-{kind.upper()}-{asset_row.code}"[:100]
    if session.scalar(sa.select(LedgerAccount.id).where(LedgerAccount.code == code)):
        raise errors.CodeTaken(f"an account with code {code!r} exists; choose another code",
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


def ensure_account(session: Session, actor: Principal, *, party_id: int, asset: str,
                   kind: str, code: str | None = None, name: str | None = None,
                   action: str = "ledger.account.write") -> LedgerAccount:
    """The account of `party_id` in `asset` of `kind` (with `code`, if given), opened if it
    does not exist yet: what a sibling package calls before posting to a party."""
    authorize(actor, action)
    stmt = sa.select(LedgerAccount).join(LedgerAsset, LedgerAsset.id == LedgerAccount.asset_id) \
        .where(LedgerAccount.party_id == party_id, LedgerAsset.code == asset,
               LedgerAccount.kind == kind)
    if code is not None:
        stmt = stmt.where(LedgerAccount.code == code)
    existing = session.scalars(stmt.order_by(LedgerAccount.id).limit(1)).first() \
        if valid_id(party_id) else None
    if existing is not None:
        return existing
    return create_account(session, actor, party_id=party_id, asset=asset, kind=kind, code=code,
                          name=name, action=action)


def account_id_sql(party_id: Any, asset: str, kind: str, code: str | None = None) -> Any:
    """The id of the account `ensure_account` finds (NULL while there is none), as a scalar
    subquery that a sibling puts into a statement of its own, so that reading the accounts
    of an operation costs no statement each; `party_id` may be a value or a SQL expression
    (a column of that statement). A NULL is opened with `ensure_account`."""
    stmt = sa.select(LedgerAccount.id).join(LedgerAsset, LedgerAsset.id == LedgerAccount.asset_id) \
        .where(LedgerAccount.party_id == party_id, LedgerAsset.code == asset,
               LedgerAccount.kind == kind)
    if code is not None:
        stmt = stmt.where(LedgerAccount.code == code)
    return stmt.order_by(LedgerAccount.id).limit(1).scalar_subquery()


def find_account(session: Session, ref: int | str) -> LedgerAccount:
    """An account by id or code, whoever asks (callers authorize); AccountNotFound if none."""
    if (isinstance(ref, int) and not valid_id(ref)) or (isinstance(ref, str) and "\x00" in ref):
        raise errors.AccountNotFound(f"no account {ref!r}")
    column = LedgerAccount.id if isinstance(ref, int) else LedgerAccount.code
    account = session.scalar(sa.select(LedgerAccount).where(column == ref))
    if account is None:
        raise errors.AccountNotFound(f"no account {ref!r}")
    return account


def get_account(session: Session, actor: Principal, ref: int | str) -> LedgerAccount:
    """An account by id or code; a trader sees only its own party's."""
    account = find_account(session, ref)
    authorize_read(actor, account.party_id)
    return account


def authorize_read(actor: Principal, party_id: int) -> None:
    """May `actor` read the ledger of `party_id`? A trader reads only its own party's."""
    try:
        authorize(actor, "ledger.read", party=party_id)
    except Forbidden as exc:
        if row_filter(actor, "ledger.read").party is not None:
            raise errors.AccountNotOwned(f"party {party_id}'s ledger is not yours to read",
                                    action="ledger.read") from exc
        raise


def list_accounts(session: Session, actor: Principal, *, party_id: int | None = None,
                  asset: str | None = None, kind: str | None = None,
                  code_prefix: str | None = None) -> sa.Select:
    """Accounts matching the filters, by id; a trader lists only its own party's."""
    own = row_filter(actor, "ledger.read").party
    if own is not None and party_id is None:
        party_id = own
    if party_id is not None:
        authorize_read(actor, party_id)
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

