"""Request and response shapes of the market API. Units are in the field names and in every
description: `quantity_t` / `*_t` whole tonnes of CO2e, `price_fen_per_tco2e` fen (0.01
yuan, the price tick) per tonne, `*_fen` fen, `*_bp` basis points (1/10,000). Integers are
strict: 1.5, "1" or true are refused, never rounded."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from catalog.schemas import StrictSchema
from ecovalue.api import Integer, PageQuerySchema
from ledger.carbon.models import RETIREMENT_PURPOSES
from ledger.market.models import (
    AUCTION_STATUSES,
    BID_STATUSES,
    BLOCK_STATUSES,
    EVENT_KINDS,
    LISTING_STATUSES,
    SIDES,
    TRADE_MODES,
)
from ledger.market.services.common import MAX_PRICE_FEN, MAX_QUANTITY_T

_ID: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=2**63 - 1)}


def tonnes(description: str = "whole tonnes of CO2e (tCO2e)", **kwargs: Any) -> Integer:
    kwargs.setdefault("validate", validate.Range(min=1, max=MAX_QUANTITY_T))
    return Integer(strict=True, metadata={"description": description}, **kwargs)


def price(description: str = "price in fen (0.01 yuan) per tCO2e; the tick is 1 fen",
          **kwargs: Any) -> Integer:
    kwargs.setdefault("validate", validate.Range(min=1, max=MAX_PRICE_FEN))
    return Integer(strict=True, metadata={"description": description}, **kwargs)


def fen(description: str, **kwargs: Any) -> Integer:
    return Integer(strict=True, metadata={"description": f"{description}, fen (0.01 yuan)"},
                   **kwargs)


def basis_points(description: str, **kwargs: Any) -> Integer:
    return Integer(strict=True, validate=validate.Range(min=0, max=10_000), metadata={
        "description": f"{description}, basis points (1000 = 10 %)"}, **kwargs)


_PARTY: dict[str, Any] = {"metadata": {
    "description": "the party acted for: a trader's own (it may leave it out); an admin names one"}}
_BATCH = fields.String(required=True, validate=validate.Length(min=1, max=40), metadata={
    "description": "the batch's ledger asset code, e.g. QXN-522326-WM-AR-001-2023-01"})


# --- rules ----------------------------------------------------------------------------------


class MarketRulesIn(StrictSchema):
    price_band_bp = basis_points("listed trades: how far a price may be from the reference "
                                 "(previous day's close)", load_default=None)
    block_band_bp = basis_points("block trades: the wider band", load_default=None)
    block_min_t = tonnes("the smallest block trade, tCO2e", load_default=None)
    fee_bp = basis_points("the fee on a trade's value, charged to the seller",
                          load_default=None)
    fee_min_fen = fen("the least fee of a trade", load_default=None,
                      validate=validate.Range(min=0, max=10**12))
    operator_party_id = Integer(load_default=None, **_ID, metadata={
        "description": "the party holding the market's escrow and fee accounts (default: "
                       "the registry's operator)"})


class MarketRulesSchema(ma.Schema):
    price_band_bp = basis_points("listed-trade band around the previous close")
    block_band_bp = basis_points("block-trade band around the previous close")
    block_min_t = tonnes("the smallest block trade, tCO2e")
    fee_bp = basis_points("fee on a trade's value, charged to the seller (rounded half up "
                          "to the fen)")
    fee_min_fen = fen("the least fee of a trade")
    operator_party_id = Integer(allow_none=True)
    updated_at = fields.AwareDateTime(allow_none=True)
    updated_by = fields.String(allow_none=True)


class MarketBatchRuleIn(StrictSchema):
    reference_price_fen_per_tco2e = price("the reference price before the batch's first "
                                          "close, fen per tCO2e", allow_none=True,
                                          load_default=None)
    price_band_bp = basis_points("this batch's listed-trade band (null: the market's)",
                                 allow_none=True, load_default=None)
    block_band_bp = basis_points("this batch's block-trade band (null: the market's)",
                                 allow_none=True, load_default=None)


class MarketBatchRuleSchema(ma.Schema):
    asset_code = fields.String()
    reference_price_fen_per_tco2e = price(allow_none=True)
    price_band_bp = basis_points("listed-trade band", allow_none=True)
    block_band_bp = basis_points("block-trade band", allow_none=True)
    updated_at = fields.AwareDateTime()
    updated_by = fields.String()


# --- listings and trades ---------------------------------------------------------------------


class MarketListingIn(StrictSchema):
    side = fields.String(required=True, validate=validate.OneOf(SIDES), metadata={
        "description": "sell (the credits are escrowed) or buy (the money is escrowed)"})
    batch = _BATCH
    quantity_t = tonnes(required=True)
    price_fen_per_tco2e = price(required=True)
    min_lot_t = tonnes("the least a take may be, tCO2e (the whole rest may always be taken)",
                       load_default=None)
    expires_at = fields.AwareDateTime(required=True, metadata={
        "description": "after this instant nobody can take it (ISO 8601 with offset); its "
                       "escrow comes back at the next expiry sweep"})
    party_id = Integer(load_default=None, **_ID, **_PARTY)


class MarketRetireIn(StrictSchema):
    beneficiary_name = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                     metadata={"description": "on whose behalf (public)"})
    purpose = fields.String(required=True, validate=validate.OneOf(RETIREMENT_PURPOSES))
    compliance_year = Integer(load_default=None, strict=True,
                              validate=validate.Range(min=2000, max=2100))
    jurisdiction = fields.String(load_default=None, validate=validate.Length(max=100))
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class MarketTakeIn(StrictSchema):
    quantity_t = tonnes(required=True)
    party_id = Integer(load_default=None, **_ID, **_PARTY)
    retire = fields.Nested(MarketRetireIn, load_default=None, allow_none=True, metadata={
        "description": "retire the credits bought at once, through the registry (a "
                       "certificate is issued); only when buying from a sell listing"})


class MarketListingSchema(ma.Schema):
    id = Integer(required=True)
    listing_id = Integer(required=True)
    side = fields.String(validate=validate.OneOf(SIDES))
    batch = fields.String()
    quantity_t = tonnes("tonnes listed, tCO2e")
    remaining_t = tonnes("tonnes still offered (and escrowed), tCO2e",
                         validate=validate.Range(min=0))
    price_fen_per_tco2e = price()
    min_lot_t = tonnes("the least a take may be, tCO2e")
    escrow_fen = fen("money still escrowed by a buy listing (remaining_t x price)")
    expires_at = fields.AwareDateTime()
    status = fields.String(validate=validate.OneOf(LISTING_STATUSES))
    party_id = Integer(allow_none=True, metadata={
        "description": "shown to the listing party and unscoped readers only"})
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)


class MarketListingQuery(PageQuerySchema):
    batch = fields.String(validate=validate.Length(max=40))
    side = fields.String(validate=validate.OneOf(SIDES))
    status = fields.String(validate=validate.OneOf(LISTING_STATUSES))
    mine = fields.Boolean(load_default=False, metadata={
        "description": "only the caller's party's listings"})


class MarketTradeSchema(ma.Schema):
    id = Integer(required=True)
    trade_id = Integer(required=True)
    mode = fields.String(validate=validate.OneOf(TRADE_MODES))
    batch = fields.String()
    listing_id = Integer(allow_none=True)
    block_trade_id = Integer(allow_none=True)
    auction_id = Integer(allow_none=True)
    bid_id = Integer(allow_none=True)
    quantity_t = tonnes("tonnes delivered, tCO2e")
    price_fen_per_tco2e = price()
    value_fen = fen("quantity_t x price, paid by the buyer")
    fee_fen = fen("the fee, taken from the seller's proceeds")
    trade_date = fields.Date(metadata={"description": "trading day (Asia/Shanghai)"})
    executed_at = fields.AwareDateTime()
    ledger_transaction_id = Integer(metadata={
        "description": "the ONE ledger transaction that settled it"})
    serial_blocks = fields.List(fields.String())
    certificate_number = fields.String(allow_none=True, metadata={
        "description": "the retirement certificate, when retired on purchase"})
    seller_party_id = Integer(allow_none=True, metadata={
        "description": "shown to the parties and unscoped readers only"})
    buyer_party_id = Integer(allow_none=True)


class MarketTradeQuery(PageQuerySchema):
    batch = fields.String(validate=validate.Length(max=40))
    trade_date = fields.Date(metadata={"description": "trading day (Asia/Shanghai)"})
    mode = fields.String(validate=validate.OneOf(TRADE_MODES))


class MarketExpiredSchema(ma.Schema):
    expired_listing_ids = fields.List(Integer())
    expired_block_trade_ids = fields.List(Integer(), metadata={
        "description": "block-trade proposals whose confirmation window had passed"})
    closed_auction_ids = fields.List(Integer())


# --- block trades ----------------------------------------------------------------------------


class MarketBlockIn(StrictSchema):
    side = fields.String(required=True, validate=validate.OneOf(SIDES), metadata={
        "description": "the proposer's side"})
    counterparty_party_id = Integer(required=True, **_ID, metadata={
        "description": "the party that must confirm"})
    batch = _BATCH
    quantity_t = tonnes("tonnes, tCO2e (at least the block-trade minimum)", required=True)
    price_fen_per_tco2e = price(required=True)
    expires_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "the counterparty must confirm before it (default: in 24 hours)"})
    party_id = Integer(load_default=None, **_ID, **_PARTY)


class MarketBlockSchema(ma.Schema):
    id = Integer(required=True)
    block_trade_id = Integer()
    batch = fields.String()
    quantity_t = tonnes()
    price_fen_per_tco2e = price()
    status = fields.String(validate=validate.OneOf(BLOCK_STATUSES))
    expires_at = fields.AwareDateTime()
    proposer_party_id = Integer()
    counterparty_party_id = Integer()
    seller_party_id = Integer()
    buyer_party_id = Integer()
    trade_id = Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)


# --- auctions --------------------------------------------------------------------------------


class MarketAuctionIn(StrictSchema):
    batch = _BATCH
    quantity_t = tonnes("tonnes auctioned, tCO2e (escrowed until the close)", required=True)
    reserve_price_fen_per_tco2e = price("the lowest acceptable bid, fen per tCO2e",
                                        required=True)
    min_lot_t = tonnes("the least a bid may ask for, tCO2e", load_default=None)
    closes_at = fields.AwareDateTime(required=True, metadata={
        "description": "bids are accepted until this instant (ISO 8601 with offset)"})
    party_id = Integer(load_default=None, **_ID, **_PARTY)


class MarketBidIn(StrictSchema):
    quantity_t = tonnes(required=True)
    price_fen_per_tco2e = price(required=True)
    party_id = Integer(load_default=None, **_ID, **_PARTY)
    retire = fields.Nested(MarketRetireIn, load_default=None, allow_none=True, metadata={
        "description": "retire what the bid wins at the close, through the registry (a "
                       "certificate per winning bid, on the bidder's behalf)"})


class MarketBidSchema(ma.Schema):
    id = Integer(required=True)
    auction_id = Integer()
    bidder_party_id = Integer(allow_none=True)
    quantity_t = tonnes("tonnes asked for, tCO2e")
    price_fen_per_tco2e = price()
    escrow_fen = fen("money escrowed (quantity_t x price)")
    status = fields.String(validate=validate.OneOf(BID_STATUSES))
    filled_t = tonnes("tonnes won, tCO2e", validate=validate.Range(min=0))
    retire = fields.Dict(allow_none=True, metadata={
        "description": "the retirement asked for with the bid (its bidder and readers who see "
                       "parties only)"})
    placed_at = fields.AwareDateTime()


class MarketAuctionSchema(ma.Schema):
    id = Integer(required=True)
    auction_id = Integer()
    batch = fields.String()
    quantity_t = tonnes("tonnes auctioned, tCO2e")
    reserve_price_fen_per_tco2e = price("the lowest acceptable bid, fen per tCO2e")
    min_lot_t = tonnes("the least a bid may ask for, tCO2e")
    closes_at = fields.AwareDateTime()
    status = fields.String(validate=validate.OneOf(AUCTION_STATUSES))
    sold_t = tonnes("tonnes sold at the close, tCO2e", validate=validate.Range(min=0))
    seller_party_id = Integer(allow_none=True)
    created_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    bids_count = Integer()
    bids = fields.List(fields.Nested(MarketBidSchema), metadata={
        "description": "sealed while open: only the caller's own bids; every bid once closed"})


# --- market data and the feed ------------------------------------------------------------------


class MarketLevelSchema(ma.Schema):
    price_fen_per_tco2e = price()
    quantity_t = tonnes("tonnes offered at this price, tCO2e")
    listings = Integer()


class MarketBookSchema(ma.Schema):
    batch = fields.String()
    as_of = fields.AwareDateTime()
    asks = fields.List(fields.Nested(MarketLevelSchema), metadata={
        "description": "sell listings, lowest price first"})
    bids = fields.List(fields.Nested(MarketLevelSchema), metadata={
        "description": "buy listings, highest price first"})
    previous_close_fen_per_tco2e = price("the previous trading day's close (volume-weighted), "
                                         "fen per tCO2e", allow_none=True)


class MarketBookQuery(ma.Schema):
    batch = fields.String(required=True, validate=validate.Length(min=1, max=40))
    depth = Integer(load_default=20, validate=validate.Range(min=1, max=200))


class MarketDayQuery(ma.Schema):
    batch = fields.String(required=True, validate=validate.Length(min=1, max=40))
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)


class MarketBarSchema(ma.Schema):
    trade_date = fields.Date(metadata={"description": "trading day (Asia/Shanghai)"})
    open_fen_per_tco2e = price("the day's first trade price, fen per tCO2e")
    high_fen_per_tco2e = price("the day's highest price, fen per tCO2e")
    low_fen_per_tco2e = price("the day's lowest price, fen per tCO2e")
    close_fen_per_tco2e = price("the day's volume-weighted price (Σ value / Σ volume, rounded "
                                "half up to the fen), fen per tCO2e")
    volume_t = tonnes("tonnes traded, tCO2e")
    value_fen = fen("value traded")
    trades = Integer()


class MarketDailySchema(ma.Schema):
    batch = fields.String()
    days = fields.List(fields.Nested(MarketBarSchema))


class MarketEventQuery(ma.Schema):
    after = Integer(load_default=0, validate=validate.Range(min=0, max=2**63 - 1), metadata={
        "description": "the cursor: events after this id (0: from the start)"})
    limit = Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    batch = fields.String(load_default=None, validate=validate.Length(max=40))


class MarketEventSchema(ma.Schema):
    id = Integer(required=True, metadata={"description": "the event's cursor"})
    kind = fields.String(validate=validate.OneOf(EVENT_KINDS))
    batch = fields.String(allow_none=True)
    occurred_at = fields.AwareDateTime()
    data = fields.Dict(metadata={
        "description": "what happened; units in the names: *_t tCO2e, *_fen fen, "
                       "price_fen_per_tco2e fen per tCO2e; *_party_id null unless the reader "
                       "is that party or unscoped"})


class MarketEventPageSchema(ma.Schema):
    items = fields.List(fields.Nested(MarketEventSchema), metadata={"description": "newest last"})
    next = Integer(metadata={"description": "pass as `after` for the next call"})
    has_more = fields.Boolean()
