"""One-way auctions (单向竞价): a seller (the forest fund, a village collective) auctions a
lot; its credits are escrowed; bids are sealed (nobody, the operator included, sees another's
bid before the close) and their money is escrowed; at the close the highest bids win at their
own prices, ties by time (`ledger.market.matching`), each winner settles in its own
delivery-versus-payment transaction, unspent bid money and unsold tonnes go back."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue import audit
from ecovalue.auth import Principal, authorize, system_principal
from ledger import core as ledger
from ledger.carbon.services import credits
from ledger.market import errors, matching
from ledger.market.models import MarketAuction, MarketBid, MarketTrade
from ledger.market.services import blocks, common, listings, settlement


def get_auction(session: Session, auction_id: int, *, lock: bool = False) -> MarketAuction:
    auction = None
    if not isinstance(auction_id, bool) and isinstance(auction_id, int) \
            and 0 < auction_id <= common.MAX_ID:
        stmt = sa.select(MarketAuction).where(MarketAuction.id == auction_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        auction = session.scalar(stmt)
    if auction is None:
        raise errors.AuctionNotFound(f"no auction {auction_id}")
    return auction


def create_auction(session: Session, actor: Principal, *, batch: str, quantity_t: int,
                   reserve_price_fen_per_tco2e: int, closes_at: dt.datetime,
                   min_lot_t: int | None = None, party_id: int | None = None,
                   now: dt.datetime | None = None) -> MarketAuction:
    """Open an auction of `quantity_t` tonnes; the credits are escrowed until the close."""
    now, today = common.now_and_today(now)
    party = common.acting_party(actor, "market.auction.create", party_id)
    quantity = common.positive(quantity_t, "quantity_t", common.MAX_QUANTITY_T)
    reserve = common.positive(reserve_price_fen_per_tco2e, "reserve_price_fen_per_tco2e",
                              common.MAX_PRICE_FEN)
    lot = common.positive(min_lot_t if min_lot_t is not None else 1, "min_lot_t", quantity)
    closing = listings._checked_expiry(closes_at, now)
    found = common.get_batch(session, batch)
    common.check_band(session, found.asset_code, reserve, today)
    own = common.holding(session, actor, found, party)
    common.check_sellable(session, actor, own, quantity, today)
    escrow = common.escrow_credits(session, actor, found)
    plan = credits.plan_movement(session, source=own, target=escrow, quantity_t=quantity,
                                 kind="transfer", escrow=True)
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type="market.escrow", memo=f"escrow of an auction: {quantity} t {batch}",
        metadata={**plan.metadata(), "market": "auction"}, postings=plan.postings()),
        action=common.SETTLE, now=now)
    credits.apply_movement(session, actor, plan, ledger_transaction_id=view.id,
                           reason="market auction escrow", now=now)
    auction = MarketAuction(seller_party_id=party,
                            cash_account_id=common.cash_account(session, actor, party),
                            batch_id=found.id, asset_code=found.asset_code, quantity_t=quantity,
                            reserve_price_fen_per_tco2e=reserve, min_lot_t=lot,
                            closes_at=closing, status="open", created_at=now,
                            created_by=actor.label)
    session.add(auction)
    session.flush()
    audit.record(session, actor, "market.auction.create", "market_auction", auction.id,
                 after=audit.snapshot(auction))
    common.emit(session, [("auction.opened", found.asset_code, [party],
                           auction_data(auction))], now)
    return auction


def place_bid(session: Session, actor: Principal, auction_id: int, *, quantity_t: int,
              price_fen_per_tco2e: int, party_id: int | None = None,
              retirement: settlement.Retirement | None = None,
              now: dt.datetime | None = None) -> MarketBid:
    """A sealed bid; its money (quantity x price) is escrowed until the close. With
    `retirement`, what the bid wins is retired at the close on the bidder's behalf (a
    certificate per winning bid), as a take's retire-on-purchase: the bidder's right to
    retire its own credits is checked now, when it asks."""
    now, _ = common.now_and_today(now)
    party = common.acting_party(actor, "market.auction.bid", party_id)
    if settlement.checked_retirement(retirement) is not None:
        authorize(actor, "carbon.retirement.create", party=party)
    auction = get_auction(session, auction_id, lock=True)
    if auction.status != "open" or auction.closes_at <= now:
        raise errors.AuctionClosed(f"auction {auction.id} closed at "
                                   f"{auction.closes_at.isoformat()}; no more bids")
    if party == auction.seller_party_id:
        raise errors.SelfTrade("the seller cannot bid in its own auction")
    quantity = common.positive(quantity_t, "quantity_t", auction.quantity_t)
    if quantity < auction.min_lot_t:
        raise common.invalid(f"bids are for at least {auction.min_lot_t} t", "quantity_t",
                             f"at least {auction.min_lot_t}", errors.BelowMinimumLot)
    price = common.positive(price_fen_per_tco2e, "price_fen_per_tco2e", common.MAX_PRICE_FEN)
    if price < auction.reserve_price_fen_per_tco2e:
        raise common.invalid(f"the reserve price is {auction.reserve_price_fen_per_tco2e} "
                             "fen/tCO2e", "price_fen_per_tco2e",
                             f"at least {auction.reserve_price_fen_per_tco2e}")
    cash = common.cash_account(session, actor, party)
    escrow_fen = quantity * price
    ledger.post(session, actor, ledger.TransactionSpec(
        type="market.escrow", memo=f"escrow of a bid in auction {auction.id}",
        metadata={"market": "auction", "auction_id": auction.id, "value_fen": escrow_fen},
        postings=[ledger.PostingSpec(cash, common.CNY, "debit", escrow_fen),
                  ledger.PostingSpec(common.escrow_cash(session, actor), common.CNY, "credit",
                                     escrow_fen)]), action=common.SETTLE, now=now)
    bid = MarketBid(auction_id=auction.id, bidder_party_id=party, cash_account_id=cash,
                    quantity_t=quantity, price_fen_per_tco2e=price, escrow_fen=escrow_fen,
                    status="sealed", filled_t=0, placed_at=now, placed_by=actor.label,
                    retirement=dataclasses.asdict(retirement) if retirement else None)
    session.add(bid)
    session.flush()
    audit.record(session, actor, "market.auction.bid", "market_bid", bid.id,
                 after=audit.snapshot(bid))
    common.emit(session, [("auction.bid", auction.asset_code, [party],
                           {"auction_id": auction.id, "bid_id": bid.id})], now)
    return bid


def _clearing(bid: MarketBid) -> Principal:
    """Who retires a winning bid's tonnes at the close: the market's clearing (as admin),
    named after the bid and who placed it, which the retirement's record keeps."""
    return system_principal(f"market clearing of bid {bid.id} placed by {bid.placed_by}"[:230])


def close(session: Session, actor: Principal, auction_id: int, *,
          now: dt.datetime | None = None) -> MarketAuction:
    """Close an auction whose time is up: allocate, settle each winner, return the rest."""
    now, _ = common.now_and_today(now)
    auction = get_auction(session, auction_id, lock=True)
    authorize(actor, "market.auction.close", party=auction.seller_party_id)
    if auction.status != "open":
        raise errors.AuctionClosed(f"auction {auction.id} is {auction.status} already")
    if auction.closes_at > now:
        raise errors.AuctionStillOpen(f"auction {auction.id} closes at "
                                      f"{auction.closes_at.isoformat()}")
    bids = list(session.scalars(sa.select(MarketBid).where(
        MarketBid.auction_id == auction.id, MarketBid.status == "sealed").order_by(
        MarketBid.id)))
    won = matching.allocate(auction.quantity_t,
                            np.array([b.price_fen_per_tco2e for b in bids], dtype=np.int64),
                            np.array([b.quantity_t for b in bids], dtype=np.int64),
                            np.array([b.id for b in bids], dtype=np.int64))
    ctx = common.context(session)  # the rules and operator, read once for every winner
    batch = credits.BatchFacts(auction.batch_id, auction.asset_code)
    escrow = common.escrow_credits(session, actor, batch, ctx)
    escrow_cash = common.escrow_cash(session, actor, ctx)
    refunds: dict[int, int] = defaultdict(int)
    # settle in the ranking order (highest price first), so the best bids get the lowest serials
    for index in np.lexsort((np.array([b.id for b in bids]),
                             -np.array([b.price_fen_per_tco2e for b in bids]))):
        bid, filled = bids[int(index)], int(won[int(index)])
        if filled:
            settlement.settle(session, actor, settlement.Deal(
                mode="auction", batch=batch, seller_party_id=auction.seller_party_id,
                buyer_party_id=bid.bidder_party_id, quantity_t=filled,
                price_fen_per_tco2e=bid.price_fen_per_tco2e, credits_from=escrow,
                money_from=escrow_cash, seller_cash=auction.cash_account_id,
                auction_id=auction.id, bid_id=bid.id,
                retirement=settlement.Retirement(**bid.retirement) if bid.retirement else None,
                retire_as=_clearing(bid)), now=now, ctx=ctx)
        bid.filled_t = filled
        bid.status = "won" if filled == bid.quantity_t else "partly_won" if filled else "lost"
        unspent = bid.escrow_fen - filled * bid.price_fen_per_tco2e
        if unspent:
            refunds[bid.cash_account_id] += unspent
        session.flush()  # before the next posting (never inside the ledger's pipeline)
    if refunds:
        ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow.return", memo=f"unspent bid money of auction {auction.id}",
            metadata={"market": "auction", "auction_id": auction.id},
            postings=[ledger.PostingSpec(escrow_cash, common.CNY, "debit",
                                         sum(refunds.values())),
                      *(ledger.PostingSpec(account, common.CNY, "credit", amount)
                        for account, amount in sorted(refunds.items()))]),
            action=common.SETTLE, now=now)
    sold = int(won.sum())
    unsold = auction.quantity_t - sold
    if unsold:
        plan = credits.plan_movement(
            session, source=escrow,
            target=common.holding(session, actor, batch, auction.seller_party_id),
            quantity_t=unsold, kind="transfer", escrow=True)
        view = ledger.post(session, actor, ledger.TransactionSpec(
            type="market.escrow.return", memo=f"unsold tonnes of auction {auction.id}",
            metadata={**plan.metadata(), "market": "auction", "auction_id": auction.id},
            postings=plan.postings()), action=common.SETTLE, now=now)
        credits.apply_movement(session, actor, plan, ledger_transaction_id=view.id,
                               reason=f"market auction {auction.id} unsold", now=now)
    before = audit.snapshot(auction)
    auction.status, auction.sold_t, auction.closed_at = "closed", sold, now
    session.flush()
    audit.record(session, actor, "market.auction.close", "market_auction", auction.id,
                 before=before, after=audit.snapshot(auction))
    common.emit(session, [("auction.closed", auction.asset_code, [auction.seller_party_id],
                           {**auction_data(auction), "bids": len(bids),
                            "winning_bids": int((won > 0).sum()), "unsold_t": unsold})], now)
    return auction


def due(session: Session, now: dt.datetime) -> list[int]:
    """Open auctions whose closing time has come."""
    return list(session.scalars(sa.select(MarketAuction.id).where(
        MarketAuction.status == "open", MarketAuction.closes_at <= now).order_by(
        MarketAuction.closes_at, MarketAuction.id)))


def auction_data(auction: MarketAuction) -> dict:
    return {"auction_id": auction.id, "batch": auction.asset_code,
            "quantity_t": auction.quantity_t,
            "reserve_price_fen_per_tco2e": auction.reserve_price_fen_per_tco2e,
            "min_lot_t": auction.min_lot_t, "closes_at": auction.closes_at,
            "status": auction.status, "sold_t": auction.sold_t,
            "seller_party_id": auction.seller_party_id}


def auction_view(session: Session, actor: Principal, auction_id: int) -> dict:
    """The auction; the bids' count while sealed, every bid's outcome once closed (a
    trader sees only its own bids' parties)."""
    authorize(actor, "market.read")
    auction = get_auction(session, auction_id)
    bids = list(session.scalars(sa.select(MarketBid).where(
        MarketBid.auction_id == auction.id).order_by(MarketBid.id)))
    data = {**auction_data(auction), "id": auction.id, "created_at": auction.created_at,
            "closed_at": auction.closed_at, "bids_count": len(bids)}
    if not listings.sees_party(actor, "market.party.read", [auction.seller_party_id]):
        data["seller_party_id"] = None
    visible = bids if auction.status != "open" else \
        [b for b in bids if actor.party_id is not None and b.bidder_party_id == actor.party_id]
    data["bids"] = [bid_view(b, actor) for b in visible]
    return data


def bid_view(bid: MarketBid, actor: Principal | None) -> dict:
    sees = listings.sees_party(actor, "market.party.read", [bid.bidder_party_id])
    return {"id": bid.id, "auction_id": bid.auction_id,
            "bidder_party_id": bid.bidder_party_id if sees else None,
            "retire": bid.retirement if sees else None,
            "quantity_t": bid.quantity_t, "price_fen_per_tco2e": bid.price_fen_per_tco2e,
            "escrow_fen": bid.escrow_fen, "status": bid.status, "filled_t": bid.filled_t,
            "placed_at": bid.placed_at}


def trades_of(session: Session, auction_id: int) -> list[MarketTrade]:
    return list(session.scalars(sa.select(MarketTrade).where(
        MarketTrade.auction_id == auction_id).order_by(MarketTrade.id)))


@dataclasses.dataclass(frozen=True)
class Swept:
    """What one sweep ended: listings expired, block-trade proposals expired, auctions
    closed (ids)."""

    listings: list[int]
    blocks: list[int]
    auctions: list[int]


def sweep(session: Session, actor: Principal, *, now: dt.datetime | None = None) -> Swept:
    """Expire the listings and block-trade proposals whose time is up and close the
    auctions due (admin, finance)."""
    now, _ = common.now_and_today(now)
    expired = listings.expire(session, actor, now=now)
    proposals = blocks.expire(session, actor, now=now)
    authorize(actor, "market.listing.expire")
    return Swept(expired, proposals, [close(session, actor, a, now=now).id
                                      for a in due(session, now)])
