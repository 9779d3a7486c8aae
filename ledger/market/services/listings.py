"""Listed trades (挂牌): sell and buy listings, taken in full or in part at the listing's
price; escrow while open; cancel and expiry return what is left of it.

Lock order of a take (so that concurrent takes, cancels and expiries queue and never
deadlock): the Idempotency-Key (route), the listing row, the registry rows of the two
carbon accounts (ascending), the ledger balance rows (ascending). On SQLite every writer
holds the database's write lock from BEGIN. Two buyers racing for the last tonne: the second
finds the listing filled and gets a clean 409 listing-closed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.auth.policy import row_filter
from ledger import core as ledger
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


def take(session: Session, actor: Principal, listing_id: int, *, quantity_t: int,
         party_id: int | None = None, retirement: settlement.Retirement | None = None,
         now: dt.datetime | None = None) -> Any:
    """Take `quantity_t` tonnes of a listing at its price: buy from a sell listing, sell
    into a buy listing; settled at once (delivery versus payment). Returns the trade."""
    now, today = common.now_and_today(now)
    party = common.acting_party(actor, "market.listing.take", party_id)
    quantity = common.positive(quantity_t, "quantity_t", common.MAX_QUANTITY_T)
    listing = get_listing(session, listing_id, lock=True)
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
    # the rules, operator, band and previous close in one read; the batch's id and code are
    # on the listing (no read of the batch)
    ctx = common.context(session, listing.asset_code, today)
    common.check_band(session, listing.asset_code, listing.price_fen_per_tco2e, today, ctx=ctx)
    batch = credits.BatchFacts(listing.batch_id, listing.asset_code)
    if listing.side == "sell":
        deal = settlement.Deal(
            mode="listed", batch=batch, seller_party_id=listing.party_id, buyer_party_id=party,
            quantity_t=quantity, price_fen_per_tco2e=listing.price_fen_per_tco2e,
            credits_from=common.escrow_credits(session, actor, batch, ctx),
            money_from=common.cash_account(session, actor, party),
            seller_cash=listing.cash_account_id, listing_id=listing.id, retirement=retirement)
    else:
        if retirement is not None:
            raise common.invalid("the seller into a buy listing cannot retire the buyer's "
                                 "credits", "retire", "leave it out when selling")
        own = common.holding(session, actor, batch, party)
        common.check_sellable(session, actor, own, quantity, today)
        deal = settlement.Deal(
            mode="listed", batch=batch, seller_party_id=party, buyer_party_id=listing.party_id,
            quantity_t=quantity, price_fen_per_tco2e=listing.price_fen_per_tco2e,
            credits_from=own, money_from=common.escrow_cash(session, actor, ctx),
            seller_cash=common.cash_account(session, actor, party), listing_id=listing.id)
    remaining = listing.remaining_t - quantity
    escrow_fen = listing.escrow_fen - (quantity * listing.price_fen_per_tco2e
                                       if listing.side == "buy" else 0)
    status = "filled" if remaining == 0 else "open"
    changed: common.Event = (
        "listing.filled" if status == "filled" else "listing.changed", listing.asset_code,
        [listing.party_id], {**listing_data(listing), "remaining_t": remaining,
                             "escrow_fen": escrow_fen, "status": status})
    # change the listing's row only after the ledger has posted: ORM changes pending while
    # the ledger pipelines its statements (PostgreSQL) would be flushed inside that pipeline.
    # The listing's event goes into the feed with the trade's, in one statement.
    trade = settlement.settle(session, actor, deal, now=now, ctx=ctx, events=[changed])
    listing.remaining_t, listing.escrow_fen = remaining, escrow_fen
    if status == "filled":
        listing.status, listing.closed_at = status, now
    session.flush()
    return trade


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


def listing_data(listing: MarketListing) -> dict:
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
