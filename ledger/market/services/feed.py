"""The reads: order book, trade history, daily prices per batch, and the event feed that a
trader's system follows with a cursor instead of polling every resource."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth import Principal, authorize
from ledger.market import pricing
from ledger.market.models import MarketEvent, MarketListing, MarketTrade
from ledger.market.services import common, listings, settlement

#: the most events one page of the feed returns
MAX_EVENTS = 1000


def book(session: Session, asset_code: str, *, depth: int = 20,
         now: dt.datetime | None = None) -> dict:
    """The open listings of a batch by price level (public market data, no parties): asks
    (sell listings) from the lowest price, bids (buy listings) from the highest."""
    now, today = common.now_and_today(now)
    batch = common.get_batch(session, asset_code)

    def side(name: str, order: sa.ColumnElement) -> list[dict]:
        rows = session.execute(sa.select(
            MarketListing.price_fen_per_tco2e, sa.func.sum(MarketListing.remaining_t),
            sa.func.count()).where(
            MarketListing.asset_code == batch.asset_code, MarketListing.status == "open",
            MarketListing.side == name, MarketListing.expires_at > now).group_by(
            MarketListing.price_fen_per_tco2e).order_by(order).limit(depth))
        return [{"price_fen_per_tco2e": int(p), "quantity_t": int(q), "listings": int(n)}
                for p, q, n in rows]

    return {"batch": batch.asset_code, "as_of": now,
            "asks": side("sell", MarketListing.price_fen_per_tco2e.asc()),
            "bids": side("buy", MarketListing.price_fen_per_tco2e.desc()),
            "previous_close_fen_per_tco2e": common.previous_close(session, batch.asset_code,
                                                                   today)}


def trades(*, batch: str | None = None, trade_date: dt.date | None = None,
           mode: str | None = None) -> sa.Select:
    stmt = sa.select(MarketTrade)
    if batch:
        stmt = stmt.where(MarketTrade.asset_code == batch)
    if trade_date:
        stmt = stmt.where(MarketTrade.trade_date == trade_date)
    if mode:
        stmt = stmt.where(MarketTrade.mode == mode)
    return stmt.order_by(MarketTrade.id.desc())


def trade_view(trade: MarketTrade | settlement.Trade, actor: Principal | None) -> dict:
    """A trade; the parties only for them and unscoped readers (public data has none)."""
    data = settlement.trade_data(trade)
    data["id"] = trade.id
    data["serial_blocks"] = list(trade.blocks)
    if not listings.sees_party(actor, "market.party.read", [trade.seller_party_id,
                                                      trade.buyer_party_id]):
        data["seller_party_id"] = data["buyer_party_id"] = None
    return data


def daily(session: Session, asset_code: str, *, since: dt.date | None = None,
          until: dt.date | None = None) -> dict:
    """Open, high, low, close (the day's volume-weighted price), volume and value of every
    trading day of a batch."""
    batch = common.get_batch(session, asset_code)
    stmt = sa.select(MarketTrade.trade_date, MarketTrade.id, MarketTrade.price_fen_per_tco2e,
                     MarketTrade.quantity_t).where(MarketTrade.asset_code == batch.asset_code)
    if since:
        stmt = stmt.where(MarketTrade.trade_date >= since)
    if until:
        stmt = stmt.where(MarketTrade.trade_date <= until)
    bars = pricing.daily_bars((r[0], r[1], r[2], r[3]) for r in session.execute(stmt))
    return {"batch": batch.asset_code, "days": [bar.__dict__ for bar in bars]}


def events(session: Session, actor: Principal, *, after: int = 0, limit: int = 100,
           batch: str | None = None) -> dict:
    """Events after the cursor `after`, oldest first (newest last), at most `limit`; `next`
    is the cursor for the following call (the last id returned, or `after` when none). A
    trader sees every event, the parties' ids only in events about its own party."""
    authorize(actor, "market.read")
    stmt = sa.select(MarketEvent).where(MarketEvent.id > after)
    if batch:
        stmt = stmt.where(MarketEvent.asset_code == batch)
    rows = list(session.scalars(stmt.order_by(MarketEvent.id).limit(min(limit, MAX_EVENTS))))
    items = []
    for event in rows:
        data = dict(event.data)
        if not listings.sees_party(actor, "market.party.read", list(event.party_ids)):
            for key in list(data):
                if key.endswith("party_id"):
                    data[key] = None
        items.append({"id": event.id, "kind": event.kind, "batch": event.asset_code,
                      "occurred_at": event.occurred_at, "data": data})
    return {"items": items, "next": rows[-1].id if rows else after,
            "has_more": len(rows) == min(limit, MAX_EVENTS)}
