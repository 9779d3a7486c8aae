"""The market's named failures, each a stable problem+json code (mapped to HTTP once, by
`ecovalue.errors`)."""

from __future__ import annotations

from ecovalue.errors import Conflict, NotFound, ValidationFailed


class ListingNotFound(NotFound):
    code, title = "listing-not-found", "No such listing"


class BlockTradeNotFound(NotFound):
    code, title = "block-trade-not-found", "No such block trade"


class AuctionNotFound(NotFound):
    code, title = "auction-not-found", "No such auction"


class TradeNotFound(NotFound):
    code, title = "trade-not-found", "No such trade"


class MarketNotConfigured(Conflict):
    code, title = "market-not-configured", "The market has no operator party"


class ListingClosed(Conflict):
    """A take of a listing that is filled, cancelled or expired (the last tonne's race: the
    loser gets this)."""

    code, title = "listing-closed", "The listing is no longer open"


class ListingExpired(Conflict):
    code, title = "listing-expired", "The listing has expired"


class ExceedsListing(Conflict):
    code, title = "exceeds-listing", "More than the listing offers"


class BelowMinimumLot(ValidationFailed):
    code, title = "below-minimum-lot", "Below the listing's minimum lot"


class PriceOutsideBand(ValidationFailed):
    code, title = "price-outside-band", "Price outside the day's price band"


class SameDayResale(Conflict):
    """T+1: credits bought today (Asia/Shanghai) cannot be sold again before tomorrow."""

    code, title = "same-day-resale", "Credits bought today cannot be resold today (T+1)"


class BlockTooSmall(ValidationFailed):
    code, title = "block-trade-too-small", "Below the block-trade minimum"


class NotCounterparty(Conflict):
    code, title = "not-counterparty", "Only the named counterparty confirms a block trade"


class BlockTradeClosed(Conflict):
    code, title = "block-trade-closed", "The block trade is no longer proposed"


class AuctionClosed(Conflict):
    code, title = "auction-closed", "The auction is closed"


class AuctionStillOpen(Conflict):
    code, title = "auction-still-open", "The auction has not reached its closing time"


class SelfTrade(Conflict):
    code, title = "self-trade", "A party cannot trade with itself"


class NotOwnListing(Conflict):
    code, title = "not-own-listing", "Only the listing party may do this"
