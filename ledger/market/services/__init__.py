"""The market's operations, one transaction each (the caller commits): rules, listings,
block trades, auctions, settlement (delivery versus payment) and the reads (order book,
trades, daily prices, event feed). Every operation takes `(session, actor, ...)`, authorizes
first (`market.*` actions), flushes but never commits."""

from ledger.market.services import auctions, blocks, common, feed, listings, settlement

__all__ = ["auctions", "blocks", "common", "feed", "listings", "settlement"]
