"""What every market operation needs: the rules, the operator's accounts, the batch, the
reference price of the band, the T+1 check, and the event feed's append.

A settlement reads the rules, the operator, the batch's overrides and its previous close
once, in one statement (`context`), and passes that `Context` on: the band check, the
operator's escrow and fee accounts and the fee all come from it (a take used to read the
rules four times and the registry's operator twice)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.auth.policy import row_filter
from ecovalue.clock import local_date, utcnow
from ecovalue.errors import Forbidden, ValidationFailed
from ledger import core as ledger
from ledger.carbon import errors as carbon_errors
from ledger.carbon.models import CarbonBatch, CarbonRegistry
from ledger.carbon.services import credits
from ledger.carbon.services.common import operator_party
from ledger.market import errors, pricing
from ledger.market.models import MarketBatchRule, MarketEvent, MarketSettings, MarketTrade

CNY = "CNY"
ESCROW_CNY = "MARKET-ESCROW-CNY"
FEES_CNY = "MARKET-FEES-CNY"
#: the policy action under which the market opens the accounts a trade needs
OPEN = "market.account.open"
#: the policy action of the settlement postings: the market (clearing house) debits escrow
#: and the parties' accounts once the service has checked who acts for whom
SETTLE = "market.settlement.post"
MAX_ID = 2**63 - 1
#: the largest quantity or price the market accepts (so that quantity x price fits 64 bits)
MAX_QUANTITY_T = 10**9
MAX_PRICE_FEN = 10**9

DEFAULT_RULES = {"price_band_bp": 1000, "block_band_bp": 3000, "block_min_t": 100_000,
                 "fee_bp": 50, "fee_min_fen": 0}


def now_and_today(now: dt.datetime | None) -> tuple[dt.datetime, dt.date]:
    now = now or utcnow()
    return now, local_date(now)


def invalid(detail: str, field: str, message: str,
            cls: type[ValidationFailed] = ValidationFailed) -> ValidationFailed:
    return cls(detail, errors=[{"location": "json", "field": field, "message": message}])


def positive(value: Any, field: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise invalid(f"{field} must be a whole number from 1 to {limit}", field,
                      f"an integer 1-{limit}")
    return value


# --- rules -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rules:
    price_band_bp: int
    block_band_bp: int
    block_min_t: int
    fee_bp: int
    fee_min_fen: int
    operator_party_id: int | None


def rules(session: Session) -> Rules:
    """The market's rules (the defaults until an admin sets them)."""
    return context(session).rules


@dataclasses.dataclass(frozen=True)
class Context:
    """What one market operation reads once: the rules, the registry's operator, the
    batch's overrides (reference price, bands) and its previous trading day's close."""

    rules: Rules
    registry_operator_party_id: int | None
    asset_code: str | None = None
    reference_price_fen_per_tco2e: int | None = None
    price_band_bp: int | None = None
    block_band_bp: int | None = None
    previous_close_fen_per_tco2e: int | None = None


_SETTINGS = MarketSettings.__table__
_BATCH_RULES = MarketBatchRule.__table__
_TRADES = MarketTrade.__table__
_REGISTRY = CarbonRegistry.__table__


def _setting(column: sa.Column) -> Any:
    return sa.select(column).where(_SETTINGS.c.id == 1).scalar_subquery()


def _batch_rule(column: sa.Column, asset: Any) -> Any:
    return sa.select(column).where(_BATCH_RULES.c.asset_code == asset).scalar_subquery()


def _previous_day_sum(column: sa.Column, asset: Any, today: Any) -> Any:
    previous_day = sa.select(sa.func.max(_TRADES.c.trade_date)).where(
        _TRADES.c.asset_code == asset, _TRADES.c.trade_date < today).scalar_subquery()
    return sa.select(sa.func.sum(column)).where(
        _TRADES.c.asset_code == asset, _TRADES.c.trade_date == previous_day).scalar_subquery()


_RULE_FIELDS = ("price_band_bp", "block_band_bp", "block_min_t", "fee_bp", "fee_min_fen",
                "operator_party_id")
_OPERATOR_OF_REGISTRY = sa.select(_REGISTRY.c.operator_party_id).where(
    _REGISTRY.c.id == 1).scalar_subquery()
#: the party of the market's escrow and fee accounts as SQL: the market's operator, else the
#: registry's (`operator`)
OPERATOR = sa.func.coalesce(_setting(_SETTINGS.c.operator_party_id), _OPERATOR_OF_REGISTRY)
#: how many columns `context_columns` gives
CONTEXT_WIDTH = 12


def context_columns(asset: Any, today: Any) -> list[Any]:
    """What `context` reads, as CONTEXT_WIDTH scalar subqueries of the batch `asset` and the
    day `today` (bound parameters, or columns of a statement these go into, such as the
    listing a take updates): the settings row (or NULLs), the registry's operator, the batch's
    rule (or NULLs) and the previous trading day's value and volume of the batch."""
    return [*(_setting(_SETTINGS.c[name]) for name in _RULE_FIELDS), _OPERATOR_OF_REGISTRY,
            _batch_rule(_BATCH_RULES.c.reference_price_fen_per_tco2e, asset),
            _batch_rule(_BATCH_RULES.c.price_band_bp, asset),
            _batch_rule(_BATCH_RULES.c.block_band_bp, asset),
            _previous_day_sum(_TRADES.c.value_fen, asset, today),
            _previous_day_sum(_TRADES.c.quantity_t, asset, today)]


#: one statement: `context_columns` of the bound batch and day
_CONTEXT = sa.select(*context_columns(sa.bindparam("asset", type_=sa.String),
                                      sa.bindparam("today", type_=sa.Date)))


def close_of(value_fen: int | None, volume_t: int | None) -> int | None:
    """The volume-weighted price of a day (rounded half up), None without volume."""
    if not volume_t:
        return None
    value, volume = int(value_fen or 0), int(volume_t)
    return (2 * value + volume) // (2 * volume)


def context_of(row: Sequence[Any], asset_code: str | None = None,
               today: dt.date | None = None) -> Context:
    """The `Context` of the CONTEXT_WIDTH values `context_columns` read."""
    settings, registry_operator = row[:6], row[6]
    if settings[0] is None:  # no settings row: the defaults
        market = Rules(**DEFAULT_RULES, operator_party_id=None)
    else:
        market = Rules(*(int(v) if v is not None else None for v in settings))  # type: ignore[arg-type]
    if asset_code is None:
        return Context(market, registry_operator)
    reference, band, block_band, value, volume = row[7:CONTEXT_WIDTH]
    return Context(market, registry_operator, asset_code, reference, band, block_band,
                   close_of(value, volume) if today is not None else None)


def context(session: Session, asset_code: str | None = None,
            today: dt.date | None = None) -> Context:
    """The rules, the operator and (with `asset_code` and `today`) the batch's overrides
    and previous close, in one statement."""
    row = session.execute(_CONTEXT, {
        "asset": asset_code or "", "today": today or dt.date.min}).one()
    return context_of(row, asset_code, today)


def rules_view(session: Session) -> dict:
    r = rules(session)
    row = session.get(MarketSettings, 1)
    return {**dataclasses.asdict(r), "updated_at": row.updated_at if row else None,
            "updated_by": row.updated_by if row else None}


def set_rules(session: Session, actor: Principal, values: dict, *,
              now: dt.datetime | None = None) -> dict:
    """Change the rules (admin); every change is audited."""
    authorize(actor, "market.settings.write")
    now, _ = now_and_today(now)
    row = session.get(MarketSettings, 1)
    before = audit.snapshot(row) if row else None
    if row is None:
        row = MarketSettings(id=1, **DEFAULT_RULES, updated_by=actor.label, updated_at=now)
        session.add(row)
    problems = []
    limits = {"price_band_bp": (0, 10_000), "block_band_bp": (0, 10_000),
              "block_min_t": (1, MAX_QUANTITY_T), "fee_bp": (0, 10_000),
              "fee_min_fen": (0, 10**12)}
    for name, (low, high) in limits.items():
        if name in values and values[name] is not None:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append({"field": name, "message": f"an integer {low}-{high}"})
            else:
                setattr(row, name, value)
    if values.get("operator_party_id") is not None:
        party = values["operator_party_id"]
        if isinstance(party, bool) or not isinstance(party, int) or not 0 < party <= MAX_ID \
                or session.get(Party, party) is None:
            problems.append({"field": "operator_party_id", "message": "an existing party"})
        else:
            row.operator_party_id = party
    if problems:
        raise ValidationFailed("invalid market rules", errors=problems)
    row.updated_at, row.updated_by = now, actor.label
    session.flush()
    audit.record(session, actor, "market.settings.write", "market_settings", 1,
                 before=before, after=audit.snapshot(row))
    return rules_view(session)


def set_batch_rule(session: Session, actor: Principal, asset_code: str, values: dict, *,
                   now: dt.datetime | None = None) -> MarketBatchRule:
    """A batch's reference price (before its first close) and its own bands (admin)."""
    authorize(actor, "market.settings.write")
    now, _ = now_and_today(now)
    batch = get_batch(session, asset_code)
    row = session.get(MarketBatchRule, batch.asset_code)
    before = audit.snapshot(row) if row else None
    if row is None:
        row = MarketBatchRule(asset_code=batch.asset_code, updated_by=actor.label)
        session.add(row)
    for name, limit in (("reference_price_fen_per_tco2e", MAX_PRICE_FEN),
                        ("price_band_bp", 10_000), ("block_band_bp", 10_000)):
        if name in values:
            value = values[name]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not (0 if name.endswith("bp") else 1) <= value <= limit):
                raise invalid(f"{name} out of range", name, f"an integer up to {limit} or null")
            setattr(row, name, value)
    row.updated_at, row.updated_by = now, actor.label
    session.flush()
    audit.record(session, actor, "market.settings.write", "market_batch_rule", batch.asset_code,
                 before=before, after=audit.snapshot(row))
    return row


# --- parties, batches and accounts ---------------------------------------------------------------


def acting_party(actor: Principal, action: str, party_id: int | None) -> int:
    """The party the caller acts for: a trader's own (a different `party_id` is refused), or
    the `party_id` an unscoped caller (admin) names."""
    own = row_filter(actor, action).party
    if own is not None:
        if party_id is not None and party_id != own:
            raise Forbidden(f"a trader acts for its own party {own} only", action=action)
        party_id = own
    if party_id is None:
        raise invalid("name the party this is done for", "party_id", "required for this role")
    authorize(actor, action, party=party_id)
    return party_id


def get_batch(session: Session, ref: str) -> CarbonBatch:
    batch = None if not isinstance(ref, str) or "\x00" in ref else session.scalar(
        sa.select(CarbonBatch).where(CarbonBatch.asset_code == ref))
    if batch is None:
        raise carbon_errors.BatchNotFound(f"no carbon batch {ref!r}", errors=[
            {"location": "json", "field": "batch", "message": "a batch's asset code"}])
    return batch


def operator(session: Session, ctx: Context | None = None) -> int:
    """The party of the market's escrow and fee accounts: the market's operator, else the
    registry's (409 registry-not-configured when neither is set); from `ctx` when given."""
    ctx = ctx or context(session)
    if ctx.rules.operator_party_id is not None:
        return ctx.rules.operator_party_id
    if ctx.registry_operator_party_id is not None:
        return ctx.registry_operator_party_id
    return operator_party(session)  # raises registry-not-configured


def cash_account(session: Session, actor: Principal, party_id: int) -> int:
    """The party's CNY holding account (opened if missing): it pays for purchases and
    receives the proceeds of sales."""
    return ledger.ensure_account(session, actor, party_id=party_id, asset=CNY, kind="holding",
                                 action=OPEN).id


def escrow_cash(session: Session, actor: Principal, ctx: Context | None = None) -> int:
    return ledger.ensure_account(session, actor, party_id=operator(session, ctx), asset=CNY,
                                 kind="escrow", code=ESCROW_CNY, name="碳市场资金托管 market "
                                 "money escrow", action=OPEN).id


def fee_account(session: Session, actor: Principal, ctx: Context | None = None) -> int:
    return ledger.ensure_account(session, actor, party_id=operator(session, ctx), asset=CNY,
                                 kind="fee", code=FEES_CNY, name="碳市场手续费 market fees",
                                 action=OPEN).id


def escrow_credits(session: Session, actor: Principal, batch: Any,
                   ctx: Context | None = None) -> credits.Account:
    return credits.escrow_account(session, actor, batch, operator(session, ctx), action=OPEN)


def holding(session: Session, actor: Principal, batch: Any, party_id: int) -> credits.Account:
    return credits.tradable_account(session, actor, batch, party_id, action=OPEN)


# --- the price band ------------------------------------------------------------------------------


def previous_close(session: Session, asset_code: str, today: dt.date) -> int | None:
    """The close (volume-weighted price) of the batch's last trading day before `today`."""
    return context(session, asset_code, today).previous_close_fen_per_tco2e


def check_band(session: Session, asset_code: str, price: int, today: dt.date, *,
               block: bool = False, ctx: Context | None = None) -> tuple[int, int] | None:
    """Refuse a price outside the batch's band around its reference: the previous trading
    day's close, else the batch's reference price; no reference yet means no band (the
    first trading day discovers the price). Returns the band, if any. `ctx` is the
    batch's `context` of `today`, read here when not given."""
    if ctx is None or ctx.asset_code != asset_code:
        ctx = context(session, asset_code, today)
    reference = ctx.previous_close_fen_per_tco2e
    if reference is None:
        reference = ctx.reference_price_fen_per_tco2e
    if reference is None:
        return None
    band_bp = ctx.block_band_bp if block else ctx.price_band_bp
    if band_bp is None:
        band_bp = ctx.rules.block_band_bp if block else ctx.rules.price_band_bp
    low, high = pricing.price_band(reference, band_bp)
    if not low <= price <= high:
        kind = "block-trade" if block else "listed-trade"
        raise errors.PriceOutsideBand(
            f"{price} fen/tCO2e is outside today's {kind} band of {asset_code}: {low}-{high} "
            f"fen/tCO2e (±{band_bp / 100:g} % of the reference {reference})",
            errors=[{"location": "json", "field": "price_fen_per_tco2e",
                     "message": f"{low}-{high}"}], band_low_fen_per_tco2e=low,
            band_high_fen_per_tco2e=high, reference_fen_per_tco2e=reference)
    return low, high


# --- T+1 -------------------------------------------------------------------------------------


_BOUGHT = MarketTrade.__table__


def bought_today_column(party: Any, asset: Any, today: Any) -> Any:
    """Tonnes of the batch `asset` the party bought on `today` and holds (not retired on
    purchase), as a scalar subquery (of bound parameters or a statement's columns)."""
    return sa.select(sa.func.coalesce(sa.func.sum(_BOUGHT.c.quantity_t), 0)).where(
        _BOUGHT.c.buyer_party_id == party, _BOUGHT.c.asset_code == asset,
        _BOUGHT.c.trade_date == today, _BOUGHT.c.certificate_number.is_(None)).scalar_subquery()


_BOUGHT_TODAY = sa.select(bought_today_column(
    sa.bindparam("party", type_=sa.BigInteger), sa.bindparam("asset", type_=sa.String),
    sa.bindparam("today", type_=sa.Date)))


def bought_today(session: Session, party_id: int, asset_code: str, today: dt.date) -> int:
    """Tonnes of the batch the party bought on `today` and holds (not retired on purchase)."""
    return int(session.execute(_BOUGHT_TODAY, {"party": party_id, "asset": asset_code,
                                               "today": today}).scalar_one() or 0)


def check_sellable(session: Session, actor: Principal, account: credits.Account,
                   quantity_t: int, today: dt.date) -> None:
    """T+1: of what the seller's account holds, the tonnes bought today are not for sale
    before tomorrow (conservatively: whatever left the account today counts as older
    credits). Too little held at all is the registry's insufficient-credits."""
    held = credits.held_t(session, account)
    if quantity_t > held:
        check_sellable_of(account, quantity_t, held, 0, today)
    check_sellable_of(account, quantity_t, held,
                      bought_today(session, account.party_id, account.asset_code, today), today)


def check_sellable_of(account: credits.Account, quantity_t: int, held: int, today_t: int,
                      today: dt.date) -> None:
    """`check_sellable` of what was read already: the account holds `held` t, `today_t` of
    them bought today."""
    if quantity_t > held:
        raise carbon_errors.InsufficientCredits(
            f"account {account.code} holds {held} t of {account.asset_code}, fewer than "
            f"{quantity_t}", errors=[{"location": "json", "field": "quantity_t",
                                      "message": "more than held"}])
    sellable = max(held - today_t, 0)
    if quantity_t > sellable:
        raise errors.SameDayResale(
            f"{today_t} t of {account.asset_code} were bought today ({today.isoformat()}, "
            f"Asia/Shanghai) and can be sold from tomorrow; {sellable} t can be sold today",
            errors=[{"location": "json", "field": "quantity_t",
                     "message": f"at most {sellable} today"}], sellable_t=sellable)


# --- the event feed ---------------------------------------------------------------------------


_EVENTS = MarketEvent.__table__
_INSERT_EVENTS = _EVENTS.insert()
#: a feed event: (kind, asset_code, party_ids, data)
Event = tuple[str, str | None, list[int], dict]


def emit(session: Session, events: Iterable[Event],
         now: dt.datetime) -> None:
    """Append events `(kind, asset_code, party_ids, data)` to the feed. Call it after the
    operation's audit record (or ledger posting), which holds the audit chain's lock until
    commit, so that event ids follow commit order and a cursor never skips one."""
    rows = [{"kind": kind, "asset_code": asset, "party_ids": sorted(set(parties)),
             "data": audit.to_jsonable(data), "occurred_at": now}
            for kind, asset, parties, data in events]
    if rows:
        session.connection().execute(_INSERT_EVENTS, rows)
