"""HTTP routes of the offset market (thin: parse, call one service, return).

Public market data needs no token: the order book, trade history and daily prices of a
batch (no parties in them). Everything else needs a bearer token; roles and scopes are
decided by the services (`market.*` actions of `ecovalue/auth/policy.py`): a trader acts for
its own party only. Every write accepts `Idempotency-Key`. Every route is rate-limited per
token (`ecovalue.ratelimit`): 429 problem+json with `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecovalue.api import Blueprint, current_actor, current_principal, page_of, paginate
from ecovalue.db import current_session
from ecovalue.ratelimit import limit_blueprint
from ledger.market import schemas
from ledger.market.services import auctions, blocks, common, feed, listings, settlement

blp = limit_blueprint(Blueprint(
    "market", __name__, url_prefix="/market",
    description="Offset market (碳汇交易): listed trades (挂牌), block trades (大宗协议), "
                "one-way auctions (单向竞价), delivery-versus-payment settlement, order book, "
                "trades, daily prices, the event feed for traders' systems. Quantities in "
                "whole tCO2e, prices in fen per tCO2e, money in fen."))

_NAMES = {400: "BAD_REQUEST", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUESTS"}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in (*statuses, 429):
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def _retirement(body: dict | None) -> settlement.Retirement | None:
    return settlement.Retirement(**body) if body else None


# --- rules ----------------------------------------------------------------------------------


@blp.route("/rules")
@blp.response(200, schemas.MarketRulesSchema)
@errors()
def get_rules() -> Any:
    """The market's rules (public): price bands, block-trade minimum, fee."""
    return common.rules_view(current_session())


@blp.route("/rules", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.MarketRulesIn())
@blp.response(200, schemas.MarketRulesSchema)
@errors(422)
def put_rules(body: dict) -> Any:
    """Change the market's rules (admin; audited)."""
    return common.set_rules(current_session(), current_actor(), body)


@blp.route("/batches/<string:asset_code>/rules", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.MarketBatchRuleIn())
@blp.response(200, schemas.MarketBatchRuleSchema)
@errors(404, 422)
def put_batch_rule(body: dict, asset_code: str) -> Any:
    """A batch's reference price (used until its first trading day closes) and bands."""
    return common.set_batch_rule(current_session(), current_actor(), asset_code, body)


# --- listings -------------------------------------------------------------------------------


@blp.route("/listings", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MarketListingIn())
@blp.response(201, schemas.MarketListingSchema)
@errors(404, 409, 422)
def create_listing(body: dict) -> Any:
    """List credits for sale (escrowed) or a wish to buy (money escrowed)."""
    actor = current_actor()
    return listings.listing_view(listings.create_listing(current_session(), actor, **body),
                                 actor)


@blp.route("/listings")
@blp.authenticated
@blp.arguments(schemas.MarketListingQuery(), location="query")
@blp.response(200, page_of(schemas.MarketListingSchema))
@errors()
def list_listings(query: dict) -> Any:
    """Listings, newest first (parties shown to themselves only)."""
    actor = current_actor()
    page = paginate(current_session(), listings.list_listings(
        actor, batch=query.get("batch"), side=query.get("side"), status=query.get("status"),
        mine=query["mine"]), query["page"], query["page_size"])
    page["items"] = [listings.listing_view(item, actor) for item in page["items"]]
    return page


@blp.route("/listings/<int:listing_id>")
@blp.authenticated
@blp.response(200, schemas.MarketListingSchema)
@errors(404)
def get_listing(listing_id: int) -> Any:
    """One listing."""
    return listings.read_listing(current_session(), current_actor(), listing_id)


@blp.route("/listings/<int:listing_id>/take", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MarketTakeIn())
@blp.response(201, schemas.MarketTradeSchema)
@errors(404, 409, 422)
def take_listing(body: dict, listing_id: int) -> Any:
    """Buy from a sell listing or sell into a buy listing, in full or in part, at the
    listing's price; settled at once (credits, money and fee in one ledger transaction)."""
    actor = current_actor()
    trade = listings.take(current_session(), actor, listing_id, quantity_t=body["quantity_t"],
                          party_id=body["party_id"], retirement=_retirement(body["retire"]))
    return feed.trade_view(trade, actor)


@blp.route("/listings/<int:listing_id>/cancel", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.MarketListingSchema)
@errors(404, 409)
def cancel_listing(listing_id: int) -> Any:
    """Withdraw an open listing; what is left of its escrow goes back."""
    actor = current_actor()
    return listings.listing_view(listings.cancel(current_session(), actor, listing_id), actor)


@blp.route("/expire", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.MarketExpiredSchema)
@errors()
def expire() -> Any:
    """End the listings and block-trade proposals whose time is up and close the auctions
    due (admin, finance): escrow goes back, winners settle, each change an event in the
    feed. `ecovalue market expire` does the same from cron."""
    swept = auctions.sweep(current_session(), current_actor())
    return {"expired_listing_ids": swept.listings, "expired_block_trade_ids": swept.blocks,
            "closed_auction_ids": swept.auctions}


# --- block trades ---------------------------------------------------------------------------


@blp.route("/block-trades", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MarketBlockIn())
@blp.response(201, schemas.MarketBlockSchema)
@errors(404, 409, 422)
def propose_block(body: dict) -> Any:
    """Propose a block trade (at least the block minimum, inside the block band) to a named
    counterparty."""
    block = blocks.propose(current_session(), current_actor(), **body)
    return {**blocks.block_data(block), "id": block.id, "created_at": block.created_at,
            "closed_at": block.closed_at}


@blp.route("/block-trades/<int:block_id>")
@blp.authenticated
@blp.response(200, schemas.MarketBlockSchema)
@errors(404)
def get_block(block_id: int) -> Any:
    """A block trade (its parties and unscoped readers only)."""
    return blocks.read_block(current_session(), current_actor(), block_id)


@blp.route("/block-trades/<int:block_id>/confirm", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(201, schemas.MarketTradeSchema)
@errors(404, 409, 422)
def confirm_block(block_id: int) -> Any:
    """The named counterparty confirms: the trade settles at once."""
    actor = current_actor()
    return feed.trade_view(blocks.confirm(current_session(), actor, block_id), actor)


@blp.route("/block-trades/<int:block_id>/withdraw", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.MarketBlockSchema)
@errors(404, 409)
def withdraw_block(block_id: int) -> Any:
    """The proposer withdraws, or the counterparty declines, a proposal."""
    session, actor = current_session(), current_actor()
    blocks.withdraw(session, actor, block_id)
    return blocks.read_block(session, actor, block_id)


# --- auctions -------------------------------------------------------------------------------


@blp.route("/auctions", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MarketAuctionIn())
@blp.response(201, schemas.MarketAuctionSchema)
@errors(404, 409, 422)
def create_auction(body: dict) -> Any:
    """Open a one-way auction of a lot (the credits are escrowed until the close)."""
    session, actor = current_session(), current_actor()
    auction = auctions.create_auction(session, actor, **body)
    return auctions.auction_view(session, actor, auction.id)


@blp.route("/auctions/<int:auction_id>")
@blp.authenticated
@blp.response(200, schemas.MarketAuctionSchema)
@errors(404)
def get_auction(auction_id: int) -> Any:
    """An auction: sealed bids stay hidden (but the caller's own) until the close."""
    return auctions.auction_view(current_session(), current_actor(), auction_id)


@blp.route("/auctions/<int:auction_id>/bids", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MarketBidIn())
@blp.response(201, schemas.MarketBidSchema)
@errors(404, 409, 422)
def place_bid(body: dict, auction_id: int) -> Any:
    """A sealed bid (its money is escrowed until the close)."""
    actor = current_actor()
    retirement = _retirement(body.pop("retire", None))
    return auctions.bid_view(auctions.place_bid(current_session(), actor, auction_id,
                                                retirement=retirement, **body), actor)


@blp.route("/auctions/<int:auction_id>/close", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.MarketAuctionSchema)
@errors(404, 409)
def close_auction(auction_id: int) -> Any:
    """Close an auction whose time has come: highest bids win at their own prices."""
    session, actor = current_session(), current_actor()
    auctions.close(session, actor, auction_id)
    return auctions.auction_view(session, actor, auction_id)


# --- market data and the feed ---------------------------------------------------------------


@blp.route("/book")
@blp.arguments(schemas.MarketBookQuery(), location="query")
@blp.response(200, schemas.MarketBookSchema)
@errors(404)
def order_book(query: dict) -> Any:
    """The order book of a batch by price level (public)."""
    return feed.book(current_session(), query["batch"], depth=query["depth"])


@blp.route("/trades")
@blp.arguments(schemas.MarketTradeQuery(), location="query")
@blp.response(200, page_of(schemas.MarketTradeSchema))
@errors()
def list_trades(query: dict) -> Any:
    """Trade history, newest first (public; parties shown to themselves only)."""
    actor = current_principal()
    page = paginate(current_session(), feed.trades(
        batch=query.get("batch"), trade_date=query.get("trade_date"), mode=query.get("mode")),
        query["page"], query["page_size"])
    page["items"] = [feed.trade_view(t, actor) for t in page["items"]]
    return page


@blp.route("/daily")
@blp.arguments(schemas.MarketDayQuery(), location="query")
@blp.response(200, schemas.MarketDailySchema)
@errors(404)
def daily(query: dict) -> Any:
    """Open, high, low, close (volume-weighted) per trading day of a batch (public)."""
    return feed.daily(current_session(), query["batch"], since=query["since"],
                      until=query["until"])


@blp.route("/events")
@blp.authenticated
@blp.arguments(schemas.MarketEventQuery(), location="query")
@blp.response(200, schemas.MarketEventPageSchema)
@errors()
def events(query: dict) -> Any:
    """The event feed (trades, settlements, retirements, listing changes), oldest first and
    newest last, after the cursor `after`; pass `next` back as `after` to follow it."""
    return feed.events(current_session(), current_actor(), after=query["after"],
                       limit=query["limit"], batch=query["batch"])
