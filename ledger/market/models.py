"""Tables of the offset market: its rules (data, not code), listings (挂牌), block trades
(大宗协议), one-way auctions (单向竞价) and their sealed bids, trades, and the event feed.

Balances stay in the ledger core and serial blocks in the registry: a listing's escrowed
credits sit in the batch's escrow account (`<batch>-ESCROW`, `ledger.carbon`), its escrowed
money in the market operator's CNY escrow account; these tables say whose they are.
Prices are integer fen per tCO2e (the tick of 0.01 yuan), quantities integer tonnes.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ecovalue.db import Base, BigInt, BigIntPK, JSONDocument, UTCDateTime, utcnow

SIDES = ("sell", "buy")
LISTING_STATUSES = ("open", "filled", "cancelled", "expired")
BLOCK_STATUSES = ("proposed", "confirmed", "withdrawn", "expired")
AUCTION_STATUSES = ("open", "closed", "cancelled")
BID_STATUSES = ("sealed", "won", "partly_won", "lost", "withdrawn")
TRADE_MODES = ("listed", "block", "auction")
EVENT_KINDS = ("listing.opened", "listing.changed", "listing.filled", "listing.cancelled",
               "listing.expired", "block.proposed", "block.withdrawn", "block.expired",
               "auction.opened", "auction.bid", "auction.closed", "trade", "settlement",
               "retirement")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({','.join(repr(v) for v in values)})"


def _party() -> sa.ForeignKey:
    return sa.ForeignKey("parties.id")


class MarketSettings(Base):
    """The market's rules, one row (id 1), changed by an admin and audited: price bands in
    basis points of the previous close, the block-trade minimum, the fee rule, the operator."""

    __tablename__ = "market_settings"

    #: always 1
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    #: listed trades: a price may differ from the reference (previous close) by this many
    #: basis points either way (1000 = ±10 %)
    price_band_bp: Mapped[int] = mapped_column(sa.Integer, default=1000)
    #: block trades: the wider band, basis points (3000 = ±30 %)
    block_band_bp: Mapped[int] = mapped_column(sa.Integer, default=3000)
    #: the smallest block trade, tCO2e (100,000 t in the national rules)
    block_min_t: Mapped[int] = mapped_column(sa.BigInteger, default=100_000)
    #: fee on a trade's value, basis points, charged to the seller (50 = 0.5 %)
    fee_bp: Mapped[int] = mapped_column(sa.Integer, default=50)
    #: the least fee of a trade, fen (never more than the trade's value)
    fee_min_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: the party holding the escrow and fee accounts (default: the registry's operator)
    operator_party_id: Mapped[int | None] = mapped_column(BigInt, _party())
    #: when the rules last changed (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who changed them (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint("id = 1", name="single"),
        sa.CheckConstraint("price_band_bp >= 0 AND price_band_bp <= 10000", name="price_band"),
        sa.CheckConstraint("block_band_bp >= 0 AND block_band_bp <= 10000", name="block_band"),
        sa.CheckConstraint("block_min_t >= 1", name="block_min"),
        sa.CheckConstraint("fee_bp >= 0 AND fee_bp <= 10000 AND fee_min_fen >= 0", name="fee"),
    )


class MarketBatchRule(Base):
    """Per-batch overrides of the rules: the reference price used before the batch's first
    trading day closes, and other bands."""

    __tablename__ = "market_batch_rules"

    #: the batch's ledger asset code
    asset_code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    #: the reference price (fen per tCO2e) until a previous day's close exists
    reference_price_fen_per_tco2e: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: this batch's listed-trade band, basis points (NULL: the market's)
    price_band_bp: Mapped[int | None] = mapped_column(sa.Integer)
    #: this batch's block-trade band, basis points (NULL: the market's)
    block_band_bp: Mapped[int | None] = mapped_column(sa.Integer)
    #: when set (UTC)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who set it (actor label)
    updated_by: Mapped[str] = mapped_column(sa.String(250))


class MarketListing(Base):
    """A sell or buy listing (挂牌): its remaining quantity is escrowed (a sell listing's
    credits in the batch's escrow account, a buy listing's money in the CNY escrow)."""

    __tablename__ = "market_listings"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: sell or buy
    side: Mapped[str] = mapped_column(sa.String(4))
    #: the listing party
    party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the batch (carbon_batches.id)
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"))
    #: the batch's ledger asset code
    asset_code: Mapped[str] = mapped_column(sa.String(40))
    #: tonnes listed
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: tonnes still offered (and escrowed)
    remaining_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: price, fen per tCO2e
    price_fen_per_tco2e: Mapped[int] = mapped_column(sa.BigInteger)
    #: the least a take may be, tonnes (a smaller rest may be taken whole)
    min_lot_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: money still escrowed for a buy listing, fen (remaining_t x price); 0 for a sell one
    escrow_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: the listing party's CNY account (receives a sale's proceeds; pays a purchase)
    cash_account_id: Mapped[int] = mapped_column(BigInt)
    #: after this instant nobody can take it (UTC)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: open, filled, cancelled or expired
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    #: when listed (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who listed (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when it was filled, cancelled or expired (UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(_in("side", SIDES), name="side"),
        sa.CheckConstraint(_in("status", LISTING_STATUSES), name="status"),
        sa.CheckConstraint("quantity_t > 0 AND remaining_t >= 0 AND remaining_t <= quantity_t",
                           name="quantity"),
        sa.CheckConstraint("price_fen_per_tco2e > 0 AND min_lot_t > 0 AND escrow_fen >= 0",
                           name="positive"),
        sa.Index("ix_market_listings_book", "asset_code", "status", "side",
                 "price_fen_per_tco2e"),
        sa.Index("ix_market_listings_expiry", "status", "expires_at"),
    )


class MarketBlockTrade(Base):
    """A block trade (大宗协议): proposed by one party, confirmed by the named counterparty,
    settled at confirmation (nothing is escrowed while it waits)."""

    __tablename__ = "market_block_trades"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the proposing party
    proposer_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the party that must confirm
    counterparty_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the selling party (proposer or counterparty)
    seller_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the buying party
    buyer_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"))
    #: the batch's ledger asset code
    asset_code: Mapped[str] = mapped_column(sa.String(40))
    #: tonnes
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: negotiated price, fen per tCO2e
    price_fen_per_tco2e: Mapped[int] = mapped_column(sa.BigInteger)
    #: proposed, confirmed, withdrawn or expired
    status: Mapped[str] = mapped_column(sa.String(10), default="proposed")
    #: the counterparty must confirm before this instant (UTC)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: the trade, once confirmed
    trade_id: Mapped[int | None] = mapped_column(BigInt)
    #: when proposed (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who proposed (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when confirmed, withdrawn or expired (UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(_in("status", BLOCK_STATUSES), name="status"),
        sa.CheckConstraint("quantity_t > 0 AND price_fen_per_tco2e > 0", name="positive"),
    )


class MarketAuction(Base):
    """A one-way auction (单向竞价) of a lot: the seller's credits are escrowed; bids are
    sealed until the close; the highest bids win at their own prices, ties by time."""

    __tablename__ = "market_auctions"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the selling party
    seller_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the seller's CNY account (receives the proceeds)
    cash_account_id: Mapped[int] = mapped_column(BigInt)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"))
    #: the batch's ledger asset code
    asset_code: Mapped[str] = mapped_column(sa.String(40))
    #: tonnes auctioned (escrowed until the close)
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: the lowest acceptable bid, fen per tCO2e
    reserve_price_fen_per_tco2e: Mapped[int] = mapped_column(sa.BigInteger)
    #: the least a bid may ask for, tonnes
    min_lot_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: bids are accepted until this instant (UTC)
    closes_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: open, closed or cancelled
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    #: tonnes sold at the close
    sold_t: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: when opened (UTC)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who opened it (actor label)
    created_by: Mapped[str] = mapped_column(sa.String(250))
    #: when it was closed or cancelled (UTC)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(_in("status", AUCTION_STATUSES), name="status"),
        sa.CheckConstraint("quantity_t > 0 AND reserve_price_fen_per_tco2e > 0 AND "
                           "min_lot_t > 0 AND sold_t >= 0 AND sold_t <= quantity_t",
                           name="positive"),
    )


class MarketBid(Base):
    """A sealed bid in an auction: its money (quantity x price) is escrowed until the close."""

    __tablename__ = "market_bids"

    #: surrogate key (ascending in the order bids were placed: the tie-break)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: the auction
    auction_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("market_auctions.id"),
                                            index=True)
    #: the bidding party
    bidder_party_id: Mapped[int] = mapped_column(BigInt, _party(), index=True)
    #: the bidder's CNY account (pays, and gets back what is not spent)
    cash_account_id: Mapped[int] = mapped_column(BigInt)
    #: tonnes asked for
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: price offered, fen per tCO2e
    price_fen_per_tco2e: Mapped[int] = mapped_column(sa.BigInteger)
    #: money escrowed, fen (quantity x price)
    escrow_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: sealed, won, partly_won, lost or withdrawn
    status: Mapped[str] = mapped_column(sa.String(10), default="sealed")
    #: tonnes won at the close
    filled_t: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: retire what is won (for whom, why) instead of holding it
    retirement: Mapped[dict | None] = mapped_column(JSONDocument)
    #: when placed (UTC)
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who placed it (actor label)
    placed_by: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("status", BID_STATUSES), name="status"),
        sa.CheckConstraint("quantity_t > 0 AND price_fen_per_tco2e > 0 AND escrow_fen >= 0 "
                           "AND filled_t >= 0 AND filled_t <= quantity_t", name="positive"),
    )


class MarketTrade(Base):
    """A settled trade: credits to the buyer, money to the seller, the fee to the fee
    account, in ONE ledger transaction (`ledger_transaction_id`)."""

    __tablename__ = "market_trades"

    #: surrogate key
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: listed, block or auction
    mode: Mapped[str] = mapped_column(sa.String(8))
    #: the listing taken (listed trades)
    listing_id: Mapped[int | None] = mapped_column(BigInt, sa.ForeignKey("market_listings.id"),
                                                   index=True)
    #: the block trade confirmed
    block_trade_id: Mapped[int | None] = mapped_column(BigInt)
    #: the auction (auction trades)
    auction_id: Mapped[int | None] = mapped_column(BigInt)
    #: the winning bid (auction trades)
    bid_id: Mapped[int | None] = mapped_column(BigInt)
    #: the batch
    batch_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("carbon_batches.id"))
    #: the batch's ledger asset code
    asset_code: Mapped[str] = mapped_column(sa.String(40))
    #: the selling party
    seller_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: the buying party
    buyer_party_id: Mapped[int] = mapped_column(BigInt, _party())
    #: tonnes
    quantity_t: Mapped[int] = mapped_column(sa.BigInteger)
    #: price, fen per tCO2e
    price_fen_per_tco2e: Mapped[int] = mapped_column(sa.BigInteger)
    #: quantity x price, fen (what the buyer pays)
    value_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: the fee, fen (taken from the seller's proceeds)
    fee_fen: Mapped[int] = mapped_column(sa.BigInteger)
    #: the trading day (Asia/Shanghai): T+1 and the daily prices count by it
    trade_date: Mapped[dt.date] = mapped_column(sa.Date)
    #: when it settled (UTC)
    executed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the one ledger transaction that settled it
    ledger_transaction_id: Mapped[int] = mapped_column(BigInt)
    #: the registry event that moved the credits
    carbon_event_id: Mapped[int] = mapped_column(BigInt)
    #: the serial blocks delivered
    blocks: Mapped[list] = mapped_column(JSONDocument)
    #: the retirement certificate, when retired on purchase
    certificate_number: Mapped[str | None] = mapped_column(sa.String(40))
    #: who executed it (actor label)
    actor: Mapped[str] = mapped_column(sa.String(250))

    __table_args__ = (
        sa.CheckConstraint(_in("mode", TRADE_MODES), name="mode"),
        sa.CheckConstraint("quantity_t > 0 AND price_fen_per_tco2e > 0 AND value_fen > 0 AND "
                           "fee_fen >= 0 AND fee_fen <= value_fen", name="positive"),
        sa.Index("ix_market_trades_day", "asset_code", "trade_date"),
        sa.Index("ix_market_trades_bought", "buyer_party_id", "asset_code", "trade_date"),
    )


class MarketEvent(Base):
    """The feed for traders' systems (append-only): trades, settlements, retirements and
    listing changes, read with a cursor (`id`). Ids follow commit order: every market write
    records its audit event (which holds the audit chain's lock until commit) before it
    appends here."""

    __tablename__ = "market_events"

    #: the cursor
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    #: what happened (listing.opened, trade, settlement, retirement ...)
    kind: Mapped[str] = mapped_column(sa.String(20))
    #: the batch, if any
    asset_code: Mapped[str | None] = mapped_column(sa.String(40))
    #: the parties concerned (only they and unscoped readers see the party fields)
    party_ids: Mapped[list] = mapped_column(JSONDocument)
    #: the event's data (amounts with their units in the names)
    data: Mapped[dict] = mapped_column(JSONDocument)
    #: when (UTC)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),)
