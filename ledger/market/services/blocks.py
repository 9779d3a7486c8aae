"""Block trades (大宗协议): a negotiated trade of at least the market's minimum size
(100,000 t by default, as in the national rules), proposed by one party and confirmed by the
counterparty it names, at a price inside the wider block band (±30 % by default). Nothing is
escrowed while a proposal waits: it settles at confirmation from the seller's own credits
and the buyer's own money, so either may find the other short then (a clean 409)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize, can
from ledger.carbon.services import credits
from ledger.market import errors
from ledger.market.models import SIDES, MarketBlockTrade
from ledger.market.services import common, listings, settlement

DEFAULT_WINDOW = dt.timedelta(days=1)


def get_block(session: Session, block_id: int, *, lock: bool = False) -> MarketBlockTrade:
    block = None
    if not isinstance(block_id, bool) and isinstance(block_id, int) \
            and 0 < block_id <= common.MAX_ID:
        stmt = sa.select(MarketBlockTrade).where(MarketBlockTrade.id == block_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        block = session.scalar(stmt)
    if block is None:
        raise errors.BlockTradeNotFound(f"no block trade {block_id}")
    return block


def propose(session: Session, actor: Principal, *, side: str, counterparty_party_id: int,
            batch: str, quantity_t: int, price_fen_per_tco2e: int,
            expires_at: dt.datetime | None = None, party_id: int | None = None,
            now: dt.datetime | None = None) -> MarketBlockTrade:
    """Propose a block trade: `side` is the proposer's (sell or buy)."""
    now, today = common.now_and_today(now)
    party = common.acting_party(actor, "market.block.propose", party_id)
    if side not in SIDES:
        raise common.invalid("side is sell or buy", "side", "sell or buy")
    counterparty = common.positive(counterparty_party_id, "counterparty_party_id",
                                   common.MAX_ID)
    if session.get(Party, counterparty) is None:
        raise common.invalid(f"no party {counterparty}", "counterparty_party_id",
                             "an existing party")
    if counterparty == party:
        raise errors.SelfTrade("a block trade needs another party")
    quantity = common.positive(quantity_t, "quantity_t", common.MAX_QUANTITY_T)
    price = common.positive(price_fen_per_tco2e, "price_fen_per_tco2e", common.MAX_PRICE_FEN)
    minimum = common.rules(session).block_min_t
    if quantity < minimum:
        raise common.invalid(f"a block trade is at least {minimum:,} t; {quantity:,} t is a "
                             "listed trade", "quantity_t", f"at least {minimum}",
                             errors.BlockTooSmall)
    expiry = now + DEFAULT_WINDOW if expires_at is None else \
        listings._checked_expiry(expires_at, now)
    found = common.get_batch(session, batch)
    common.check_band(session, found.asset_code, price, today, block=True)
    seller, buyer = (party, counterparty) if side == "sell" else (counterparty, party)
    if side == "sell":
        common.check_sellable(session, actor, common.holding(session, actor, found, party),
                              quantity, today)
    block = MarketBlockTrade(proposer_party_id=party, counterparty_party_id=counterparty,
                             seller_party_id=seller, buyer_party_id=buyer, batch_id=found.id,
                             asset_code=found.asset_code, quantity_t=quantity,
                             price_fen_per_tco2e=price, status="proposed", expires_at=expiry,
                             created_at=now, created_by=actor.label)
    session.add(block)
    session.flush()
    audit.record(session, actor, "market.block.propose", "market_block_trade", block.id,
                 after=audit.snapshot(block))
    common.emit(session, [("block.proposed", found.asset_code, [seller, buyer],
                           block_data(block))], now)
    return block


def confirm(session: Session, actor: Principal, block_id: int, *,
            now: dt.datetime | None = None) -> Any:
    """The named counterparty confirms: the trade settles at once. Returns the trade."""
    now, today = common.now_and_today(now)
    block = get_block(session, block_id, lock=True)
    if not can(actor, "market.block.confirm", party=block.counterparty_party_id):
        if actor.party_id is None:  # a role that may not confirm at all: 403
            authorize(actor, "market.block.confirm", party=block.counterparty_party_id)
        raise errors.NotCounterparty(
            f"block trade {block.id} names party {block.counterparty_party_id} as the "
            "counterparty: only it confirms")
    if block.status != "proposed":
        raise errors.BlockTradeClosed(f"block trade {block.id} is {block.status}")
    if block.expires_at <= now:
        raise errors.BlockTradeClosed(f"block trade {block.id} expired at "
                                      f"{block.expires_at.isoformat()}")
    ctx = common.context(session, block.asset_code, today)
    common.check_band(session, block.asset_code, block.price_fen_per_tco2e, today, block=True,
                      ctx=ctx)
    batch = credits.BatchFacts(block.batch_id, block.asset_code)
    own = common.holding(session, actor, batch, block.seller_party_id)
    common.check_sellable(session, actor, own, block.quantity_t, today)
    before = audit.snapshot(block)
    trade = settlement.settle(session, actor, settlement.Deal(
        mode="block", batch=batch, seller_party_id=block.seller_party_id,
        buyer_party_id=block.buyer_party_id, quantity_t=block.quantity_t,
        price_fen_per_tco2e=block.price_fen_per_tco2e, credits_from=own,
        money_from=common.cash_account(session, actor, block.buyer_party_id),
        seller_cash=common.cash_account(session, actor, block.seller_party_id),
        block_trade_id=block.id), now=now, ctx=ctx)
    block.status, block.closed_at, block.trade_id = "confirmed", now, trade.id
    session.flush()
    audit.record(session, actor, "market.block.confirm", "market_block_trade", block.id,
                 before=before, after=audit.snapshot(block))
    return trade


def withdraw(session: Session, actor: Principal, block_id: int, *,
             now: dt.datetime | None = None) -> MarketBlockTrade:
    """The proposer withdraws, or the counterparty declines, a proposal."""
    now, _ = common.now_and_today(now)
    block = get_block(session, block_id, lock=True)
    side = block.counterparty_party_id if actor.party_id == block.counterparty_party_id \
        else block.proposer_party_id
    authorize(actor, "market.block.propose", party=side)
    if block.status != "proposed":
        raise errors.BlockTradeClosed(f"block trade {block.id} is {block.status}")
    return _close(session, actor, block, "withdrawn", "market.block.withdraw", now)


def _close(session: Session, actor: Principal, block: MarketBlockTrade, status: str,
           action: str, now: dt.datetime) -> MarketBlockTrade:
    """End a proposal (`withdrawn` or `expired`): audited, a `block.<status>` event in the
    feed for both parties; nothing was escrowed, so nothing moves."""
    before = audit.snapshot(block)
    block.status, block.closed_at = status, now
    session.flush()
    audit.record(session, actor, action, "market_block_trade", block.id,
                 before=before, after=audit.snapshot(block))
    common.emit(session, [(f"block.{status}", block.asset_code,
                           [block.seller_party_id, block.buyer_party_id], block_data(block))],
                now)
    return block


def expire(session: Session, actor: Principal, *, now: dt.datetime | None = None,
           limit: int = 1000) -> list[int]:
    """Close the proposals whose confirmation window has passed (oldest first, at most
    `limit`): status `expired`, audited, a `block.expired` event in the feed for both
    parties. Nothing was escrowed for a proposal, so nothing moves. Run with the listings'
    expiry by `ecovalue market expire` (cron) or POST /market/expire; a confirmation after
    the window is refused (409 block-trade-closed) whether or not the sweep has run."""
    authorize(actor, "market.listing.expire")
    now, _ = common.now_and_today(now)
    ids = list(session.scalars(sa.select(MarketBlockTrade.id).where(
        MarketBlockTrade.status == "proposed", MarketBlockTrade.expires_at <= now).order_by(
        MarketBlockTrade.expires_at, MarketBlockTrade.id).limit(limit)))
    done = []
    for block_id in ids:
        block = get_block(session, block_id, lock=True)
        if block.status != "proposed" or block.expires_at > now:
            continue  # confirmed or withdrawn meanwhile
        done.append(_close(session, actor, block, "expired", "market.block.expire", now).id)
    return done


def block_data(block: MarketBlockTrade) -> dict:
    return {"block_trade_id": block.id, "batch": block.asset_code,
            "quantity_t": block.quantity_t, "price_fen_per_tco2e": block.price_fen_per_tco2e,
            "status": block.status, "expires_at": block.expires_at,
            "proposer_party_id": block.proposer_party_id,
            "counterparty_party_id": block.counterparty_party_id,
            "seller_party_id": block.seller_party_id, "buyer_party_id": block.buyer_party_id,
            "trade_id": block.trade_id}


def read_block(session: Session, actor: Principal, block_id: int) -> dict:
    authorize(actor, "market.read")
    block = get_block(session, block_id)
    if not listings.sees_party(actor, "market.party.read", [block.seller_party_id,
                                                      block.buyer_party_id]):
        raise errors.BlockTradeNotFound(f"no block trade {block_id}")
    return {**block_data(block), "id": block.id, "created_at": block.created_at,
            "closed_at": block.closed_at}
