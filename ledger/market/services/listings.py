"""Listed trades (挂牌): sell and buy listings, taken in full or in part at the listing's
price; escrow while open; cancel and expiry return what is left of it.

Lock order of a take (so that concurrent takes, cancels and expiries queue and never
deadlock): the Idempotency-Key (route), the listing row, the registry rows of the two
carbon accounts (ascending), the ledger balance rows (ascending). On SQLite every writer
holds the database's write lock from BEGIN. A take locks the listing's row with the UPDATE
that takes the tonnes, its guards in the WHERE clause (`_TAKE`): two buyers racing for the
last tonne, the second's UPDATE waits for the first and then finds the row no longer matching
(PostgreSQL re-checks the guards on the committed row); reading the listing then tells it why,
a clean 409 listing-closed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.auth.policy import row_filter
from ledger import core as ledger
from ledger.carbon.models import CarbonAccount, CarbonBlock
from ledger.carbon.services import credits
from ledger.market import errors
from ledger.market.models import SIDES, MarketListing
from ledger.market.services import common, settlement

#: the longest a listing may stay open
MAX_OPEN = dt.timedelta(days=366)


def _checked_expiry(expires_at: Any, now: dt.datetime) -> dt.datetime:
    if not isinstance(expires_at, dt.datetime) or expires_at.tzinfo is None:
        raise common.invalid("expires_at must be a date-time with its offset", "expires_at",
                             "an ISO 8601 date-time with offset, e.g. 2026-12-31T17:00:00+08:00")
    try:
        in_range = now < expires_at <= now + MAX_OPEN
    except OverflowError:  # an offset that pushes year 9999 past the calendar
        in_range = False
    if not in_range:
        raise common.invalid("expires_at must be in the future, at most 366 days ahead",
                             "expires_at", "after now, within 366 days")
    return expires_at.astimezone(dt.UTC)


def get_listing(session: Session, listing_id: int, *, lock: bool = False) -> MarketListing:
    listing = None
    if not isinstance(listing_id, bool) and isinstance(listing_id, int) \
            and 0 < listing_id <= common.MAX_ID:
        stmt = sa.select(MarketListing).where(MarketListing.id == listing_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        listing = session.scalar(stmt)
    if listing is None:
        raise errors.ListingNotFound(f"no listing {listing_id}")
    return listing


def create_listing(session: Session, actor: Principal, *, side: str, batch: str,
                   quantity_t: int, price_fen_per_tco2e: int, min_lot_t: int | None = None,
                   expires_at: dt.datetime, party_id: int | None = None,
                   now: dt.datetime | None = None) -> MarketListing:
    """List credits for sale (escrowing them) or a wish to buy (escrowing the money)."""
    now, today = common.now_and_today(now)
    party = common.acting_party(actor, "market.listing.create", party_id)
    if side not in SIDES:
        raise common.invalid("side is sell or buy", "side", "sell or buy")
    quantity = common.positive(quantity_t, "quantity_t", common.MAX_QUANTITY_T)
    price = common.positive(price_fen_per_tco2e, "price_fen_per_tco2e", common.MAX_PRICE_FEN)
    lot = common.positive(min_lot_t if min_lot_t is not None else 1, "min_lot_t", quantity)
    expiry = _checked_expiry(expires_at, now)
    found = common.get_batch(session, batch)
    common.check_band(session, found.asset_code, price, today)
    cash = common.cash_account(session, actor, party)
    escrow_fen = 0
    if side == "sell":
        own = common.holding(session, actor, found, party)
        common.check_sellable(session, actor, own, quantity, today)
        escrow = common.escrow_credits(session, actor, found)
        plan = credits.plan_movement(session, source=own, target=escrow, quantity_t=quantity,
                                     kind="transfer", escrow=True)
        view = ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow", memo=f"escrow of a sell listing: {quantity} t {batch}",
            metadata={**plan.metadata(), "market": "listing"}, postings=plan.postings()),
            action=common.SETTLE, now=now)
        credits.apply_movement(session, actor, plan, ledger_transaction_id=view.id,
                               reason="market listing escrow", now=now)
    else:
        escrow_fen = quantity * price
        ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow", memo=f"escrow of a buy listing: {quantity} t {batch}",
            metadata={"market": "listing", "value_fen": escrow_fen}, postings=[
                ledger.PostingSpec(cash, common.CNY, "debit", escrow_fen),
                ledger.PostingSpec(common.escrow_cash(session, actor), common.CNY, "credit",
                                   escrow_fen)]), action=common.SETTLE, now=now)
    listing = MarketListing(side=side, party_id=party, batch_id=found.id,
                            asset_code=found.asset_code, quantity_t=quantity,
                            remaining_t=quantity, price_fen_per_tco2e=price, min_lot_t=lot,
                            escrow_fen=escrow_fen, cash_account_id=cash, expires_at=expiry,
                            status="open", created_at=now, created_by=actor.label)
    session.add(listing)
    session.flush()
    audit.record(session, actor, "market.listing.create", "market_listing", listing.id,
                 after=audit.snapshot(listing))
    common.emit(session, [("listing.opened", listing.asset_code, [party],
                           listing_data(listing))], now)
    return listing


_LISTINGS = MarketListing.__table__
_CARBON_ACCOUNTS = CarbonAccount.__table__
_BLOCKS = CarbonBlock.__table__
_Q = sa.bindparam("q", type_=sa.BigInteger)
_PARTY = sa.bindparam("party", type_=sa.BigInteger)
_NOW = sa.bindparam("now", type_=_LISTINGS.c.expires_at.type)
_TODAY = sa.bindparam("today", type_=sa.Date)
_L = _LISTINGS.c
#: the updated listing's columns as the subqueries of the take's RETURNING name them: written
#: out, table and all (see `_Qualified`), and cast to their type: SQLite gives a RETURNING's
#: value no type affinity, and a comparison without it uses no index
_ASSET, _BATCH, _OWNER, _SIDE = (
    sa.cast(sa.literal_column(f"{_LISTINGS.name}.{column.name}"), column.type)
    for column in (_L.asset_code, _L.batch_id, _L.party_id, _L.side))


class _Qualified(ColumnElement):
    """A subquery in a RETURNING clause, its columns named with their tables: SQLAlchemy's
    SQLite compiler renders a RETURNING's columns bare, and inside a subquery that joins two
    tables a bare `id` is ambiguous."""

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(_Qualified)
def _compile_qualified(element: _Qualified, compiler: Any, **kw: Any) -> str:
    kw.pop("include_table", None)
    return str(compiler.process(element.inner, **kw))


#: the listing's columns a take returns (after the update)
_TAKEN_COLUMNS = (_L.id, _L.side, _L.party_id, _L.batch_id, _L.asset_code, _L.quantity_t,
                  _L.remaining_t, _L.price_fen_per_tco2e, _L.min_lot_t, _L.escrow_fen,
                  _L.cash_account_id, _L.expires_at, _L.status)


def _tradable(party: Any, column: sa.Column) -> Any:
    """`column` of the party's tradable registry account in the listing's batch (as
    `credits.tradable_account` finds it)."""
    return sa.select(column).where(
        _CARBON_ACCOUNTS.c.batch_id == _BATCH, _CARBON_ACCOUNTS.c.party_id == party,
        _CARBON_ACCOUNTS.c.role == "tradable").order_by(
        _CARBON_ACCOUNTS.c.ledger_account_id).limit(1).scalar_subquery()


def _escrow(column: sa.Column) -> Any:
    """`column` of the batch's escrow account in the registry (`credits.escrow_account`)."""
    return sa.select(column).where(
        _CARBON_ACCOUNTS.c.code == _ASSET + credits.ESCROW_SUFFIX).scalar_subquery()


def _when_buy(value: Any) -> Any:
    return sa.case((_SIDE == "buy", value), else_=None)


#: A take in ONE statement, the listing's row lock included: the guards (open, not expired,
#: not the taker's own, enough left, the minimum lot) are in the WHERE clause, so that the
#: database decides the race for the last tonne (PostgreSQL re-checks them on the row a
#: concurrent take has just committed); it returns the listing as updated and what the take
#: reads besides: the context (`common.context_columns`), the batch's escrow account, the
#: taker's and the listing party's tradable accounts, the taker's held and bought-today
#: tonnes (the T+1 check of selling into a buy listing), the taker's CNY account and the
#: operator's fee and money-escrow accounts. An account not opened yet reads NULL.
_TAKE = _LISTINGS.update().where(
    _L.id == sa.bindparam("listing_id", type_=sa.BigInteger), _L.status == "open",
    _L.expires_at > _NOW, _L.party_id != _PARTY, _L.remaining_t >= _Q,
    sa.or_(_L.min_lot_t <= _Q, _L.remaining_t == _Q),
).values(
    remaining_t=_L.remaining_t - _Q,
    escrow_fen=_L.escrow_fen - sa.case((_L.side == "buy", _Q * _L.price_fen_per_tco2e),
                                       else_=0),
    status=sa.case((_L.remaining_t == _Q, "filled"), else_=_L.status),
    closed_at=sa.case((_L.remaining_t == _Q, _NOW), else_=_L.closed_at),
).returning(*_TAKEN_COLUMNS, *(_Qualified(column) for column in (
    *common.context_columns(_ASSET, _TODAY),
    _escrow(_CARBON_ACCOUNTS.c.ledger_account_id), _escrow(_CARBON_ACCOUNTS.c.party_id),
    _escrow(_CARBON_ACCOUNTS.c.role),
    _tradable(_PARTY, _CARBON_ACCOUNTS.c.ledger_account_id),
    _tradable(_PARTY, _CARBON_ACCOUNTS.c.code),
    _tradable(_OWNER, _CARBON_ACCOUNTS.c.ledger_account_id),
    _tradable(_OWNER, _CARBON_ACCOUNTS.c.code),
    _when_buy(sa.select(sa.func.coalesce(sa.func.sum(
        _BLOCKS.c.end_serial - _BLOCKS.c.start_serial + 1), 0)).where(
        _BLOCKS.c.account_id == _tradable(_PARTY, _CARBON_ACCOUNTS.c.ledger_account_id)
    ).scalar_subquery()),
    _when_buy(common.bought_today_column(_PARTY, _ASSET, _TODAY)),
    ledger.account_id_sql(_PARTY, common.CNY, "holding"),
    ledger.account_id_sql(common.OPERATOR, common.CNY, "fee", common.FEES_CNY),
    ledger.account_id_sql(common.OPERATOR, common.CNY, "escrow", common.ESCROW_CNY))))


class _Taken(NamedTuple):
    """A listing as a take left it."""

    id: int
    side: str
    party_id: int
    batch_id: int
    asset_code: str
    quantity_t: int
    remaining_t: int
    price_fen_per_tco2e: int
    min_lot_t: int
    escrow_fen: int
    cash_account_id: int
    expires_at: dt.datetime
    status: str


def _refuse_take(listing: MarketListing, party: int, quantity: int, now: dt.datetime) -> None:
    """Why a listing cannot be taken (the take's guards, in this order)."""
    if listing.status != "open":
        raise errors.ListingClosed(f"listing {listing.id} is {listing.status}; nothing is left "
                                   "to take", status_of_listing=listing.status)
    if listing.expires_at <= now:
        raise errors.ListingExpired(f"listing {listing.id} expired at "
                                    f"{listing.expires_at.isoformat()}")
    if party == listing.party_id:
        raise errors.SelfTrade(f"listing {listing.id} is party {party}'s own")
    if quantity > listing.remaining_t:
        raise errors.ExceedsListing(
            f"listing {listing.id} offers {listing.remaining_t} t, fewer than {quantity}",
            errors=[{"location": "json", "field": "quantity_t",
                     "message": f"at most {listing.remaining_t}"}],
            remaining_t=listing.remaining_t)
    if quantity < listing.min_lot_t and quantity != listing.remaining_t:
        raise common.invalid(
            f"listing {listing.id} sells in lots of at least {listing.min_lot_t} t (or its "
            f"whole rest of {listing.remaining_t} t)", "quantity_t",
            f"at least {listing.min_lot_t}", errors.BelowMinimumLot)


def _claim(session: Session, listing_id: int, party: int, quantity: int, now: dt.datetime,
           today: dt.date) -> Any:
    """The take's statement (`_TAKE`); when its guards leave the listing untouched, the
    listing read (locked) tells which refusal it is."""
    if isinstance(listing_id, bool) or not isinstance(listing_id, int) \
            or not 0 < listing_id <= common.MAX_ID:
        raise errors.ListingNotFound(f"no listing {listing_id}")
    params = {"listing_id": listing_id, "party": party, "q": quantity, "now": now,
              "today": today}
    for _ in range(2):
        row = session.connection().execute(_TAKE, params).first()
        if row is not None:
            break
        _refuse_take(get_listing(session, listing_id, lock=True), party, quantity, now)
    else:  # pragma: no cover - a listing only ever gets less takeable
        raise errors.ListingClosed(f"listing {listing_id} changed while being taken")
    # a listing this session holds as an object is stale now
    if session.identity_map:
        loaded = session.identity_map.get(Session.identity_key(MarketListing, listing_id))
        if loaded is not None:
            session.expire(loaded)
    return row


def take(session: Session, actor: Principal, listing_id: int, *, quantity_t: int,
         party_id: int | None = None, retirement: settlement.Retirement | None = None,
         now: dt.datetime | None = None) -> Any:
    """Take `quantity_t` tonnes of a listing at its price: buy from a sell listing, sell
    into a buy listing; settled at once (delivery versus payment). Returns the trade.

    The listing is updated (and locked) first, in the statement that reads all the take
    needs (`_TAKE`); a refusal after it (band, T+1, money) rolls the unit of work back."""
    now, today = common.now_and_today(now)
    party = common.acting_party(actor, "market.listing.take", party_id)
    quantity = common.positive(quantity_t, "quantity_t", common.MAX_QUANTITY_T)
    row = _claim(session, listing_id, party, quantity, now, today)
    width = len(_TAKEN_COLUMNS)
    listing = _Taken(*row[:width])
    ctx = common.context_of(row[width:width + common.CONTEXT_WIDTH], listing.asset_code, today)
    (escrow_id, escrow_party, escrow_role, taker_id, taker_code, owner_id, owner_code,
     taker_held, taker_today, taker_cash, fee_id, money_escrow) = \
        row[width + common.CONTEXT_WIDTH:]
    common.check_band(session, listing.asset_code, listing.price_fen_per_tco2e, today, ctx=ctx)
    batch = credits.BatchFacts(listing.batch_id, listing.asset_code)

    def tradable(account_id: int | None, code: str | None, of: int) -> credits.Account:
        if account_id is None or code is None:  # opened now
            return common.holding(session, actor, batch, of)
        return credits.Account(account_id, batch.id, of, "tradable", code, batch.asset_code)

    if listing.side == "sell":
        escrow = credits.Account(
            escrow_id, batch.id, escrow_party, escrow_role,
            f"{batch.asset_code}{credits.ESCROW_SUFFIX}", batch.asset_code) \
            if escrow_id is not None else common.escrow_credits(session, actor, batch, ctx)
        deal = settlement.Deal(
            mode="listed", batch=batch, seller_party_id=listing.party_id, buyer_party_id=party,
            quantity_t=quantity, price_fen_per_tco2e=listing.price_fen_per_tco2e,
            credits_from=escrow,
            money_from=taker_cash or common.cash_account(session, actor, party),
            seller_cash=listing.cash_account_id, listing_id=listing.id, retirement=retirement,
            buyer_holding=tradable(taker_id, taker_code, party), fee_account_id=fee_id)
    else:
        if retirement is not None:
            raise common.invalid("the seller into a buy listing cannot retire the buyer's "
                                 "credits", "retire", "leave it out when selling")
        own = tradable(taker_id, taker_code, party)
        common.check_sellable_of(own, quantity, int(taker_held or 0), int(taker_today or 0),
                                 today)
        deal = settlement.Deal(
            mode="listed", batch=batch, seller_party_id=party, buyer_party_id=listing.party_id,
            quantity_t=quantity, price_fen_per_tco2e=listing.price_fen_per_tco2e,
            credits_from=own,
            money_from=money_escrow or common.escrow_cash(session, actor, ctx),
            seller_cash=taker_cash or common.cash_account(session, actor, party),
            listing_id=listing.id,
            buyer_holding=tradable(owner_id, owner_code, listing.party_id),
            fee_account_id=fee_id)
    changed: common.Event = (
        "listing.filled" if listing.status == "filled" else "listing.changed",
        listing.asset_code, [listing.party_id], listing_data(listing))
    # the listing's event goes into the feed with the trade's, in one statement
    return settlement.settle(session, actor, deal, now=now, ctx=ctx, events=[changed])


def _return_escrow(session: Session, actor: Principal, listing: MarketListing,
                   now: dt.datetime) -> None:
    if listing.remaining_t == 0:
        return
    if listing.side == "sell":
        batch = common.get_batch(session, listing.asset_code)
        plan = credits.plan_movement(
            session, source=common.escrow_credits(session, actor, batch),
            target=common.holding(session, actor, batch, listing.party_id),
            quantity_t=listing.remaining_t, kind="transfer", escrow=True)
        view = ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow.return", memo=f"escrow of listing {listing.id} returned",
            metadata={**plan.metadata(), "market": "listing", "listing_id": listing.id},
            postings=plan.postings()), action=common.SETTLE, now=now)
        credits.apply_movement(session, actor, plan, ledger_transaction_id=view.id,
                               reason=f"market listing {listing.id} ended", now=now)
    elif listing.escrow_fen:
        ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow.return", memo=f"escrow of listing {listing.id} returned",
            metadata={"market": "listing", "listing_id": listing.id}, postings=[
                ledger.PostingSpec(common.escrow_cash(session, actor), common.CNY, "debit",
                                   listing.escrow_fen),
                ledger.PostingSpec(listing.cash_account_id, common.CNY, "credit",
                                   listing.escrow_fen)]), action=common.SETTLE, now=now)
        listing.escrow_fen = 0


def _end(session: Session, actor: Principal, listing: MarketListing, status: str, action: str,
         now: dt.datetime) -> MarketListing:
    before = audit.snapshot(listing)
    _return_escrow(session, actor, listing, now)
    listing.status, listing.closed_at = status, now
    session.flush()
    audit.record(session, actor, action, "market_listing", listing.id, before=before,
                 after=audit.snapshot(listing))
    common.emit(session, [(f"listing.{status}", listing.asset_code, [listing.party_id],
                           {**listing_data(listing), "returned_t": before["remaining_t"]
                            if listing.side == "sell" else 0,
                            "returned_fen": before["escrow_fen"]})], now)
    return listing


def cancel(session: Session, actor: Principal, listing_id: int, *,
           now: dt.datetime | None = None) -> MarketListing:
    """Withdraw an open listing; what is left of its escrow goes back."""
    now, _ = common.now_and_today(now)
    listing = get_listing(session, listing_id, lock=True)
    authorize(actor, "market.listing.cancel", party=listing.party_id)
    if listing.status != "open":
        raise errors.ListingClosed(f"listing {listing.id} is {listing.status} already")
    return _end(session, actor, listing, "cancelled", "market.listing.cancel", now)


def expire(session: Session, actor: Principal, *, now: dt.datetime | None = None,
           limit: int = 1000) -> list[int]:
    """End the open listings whose time is up (oldest expiry first, at most `limit`),
    returning their escrow; returns their ids. Run by `ecovalue market expire` (e.g. from
    cron) or POST /market/expire."""
    authorize(actor, "market.listing.expire")
    now, _ = common.now_and_today(now)
    ids = list(session.scalars(sa.select(MarketListing.id).where(
        MarketListing.status == "open", MarketListing.expires_at <= now).order_by(
        MarketListing.expires_at, MarketListing.id).limit(limit)))
    done = []
    for listing_id in ids:
        listing = get_listing(session, listing_id, lock=True)
        if listing.status == "open" and listing.expires_at <= now:
            _end(session, actor, listing, "expired", "market.listing.expire", now)
            done.append(listing.id)
    return done


# --- reads ---------------------------------------------------------------------------------------


def sees_party(actor: Principal | None, action: str, party_ids: list[int]) -> bool:
    """Whether `actor` sees who the parties are: unscoped readers always, a trader when it
    is one of them."""
    scope = row_filter(actor, action)
    return scope.everything or (scope.party is not None and scope.party in party_ids)


def listing_data(listing: MarketListing | _Taken) -> dict:
    return {"listing_id": listing.id, "side": listing.side, "batch": listing.asset_code,
            "quantity_t": listing.quantity_t, "remaining_t": listing.remaining_t,
            "price_fen_per_tco2e": listing.price_fen_per_tco2e, "min_lot_t": listing.min_lot_t,
            "escrow_fen": listing.escrow_fen, "expires_at": listing.expires_at,
            "status": listing.status, "party_id": listing.party_id}


def listing_view(listing: MarketListing, actor: Principal | None) -> dict:
    data = {**listing_data(listing), "id": listing.id, "created_at": listing.created_at,
            "closed_at": listing.closed_at}
    if not sees_party(actor, "market.party.read", [listing.party_id]):
        data["party_id"] = None
    return data


def read_listing(session: Session, actor: Principal, listing_id: int) -> dict:
    authorize(actor, "market.read")
    return listing_view(get_listing(session, listing_id), actor)


def list_listings(actor: Principal, *, batch: str | None = None, side: str | None = None,
                  status: str | None = None, mine: bool = False) -> sa.Select:
    authorize(actor, "market.read")
    stmt = sa.select(MarketListing)
    if batch:
        stmt = stmt.where(MarketListing.asset_code == batch)
    if side:
        stmt = stmt.where(MarketListing.side == side)
    if status:
        stmt = stmt.where(MarketListing.status == status)
    if mine:
        stmt = stmt.where(MarketListing.party_id == actor.party_id)
    return stmt.order_by(MarketListing.id.desc())
