"""Delivery versus payment: one trade settles in ONE ledger transaction.

The legs: the credits from the seller's side (the batch's escrow account for a listing or an
auction, the seller's own account for a block trade) to the buyer's account, the value from
the buyer's side (the buyer's CNY account, or the CNY escrow of a buy listing or a bid) to
the seller, less the fee, and the fee to the market's fee account. The registry plans the
credit legs (`plan_movement`), the ledger posts every leg at once, then the registry writes
the serial blocks and its event; the trade row, an optional retirement (through the
registry's own retirement, so a certificate exists) and the feed's events follow in the same
unit of work. Anything that fails leaves nothing: the caller rolls the unit back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from ecovalue.auth import Principal
from ecovalue.errors import ValidationFailed
from ledger import core as ledger
from ledger.carbon.models import RETIREMENT_PURPOSES, CarbonBatch
from ledger.carbon.services import credits
from ledger.market import pricing
from ledger.market.models import MarketTrade
from ledger.market.services import common


@dataclasses.dataclass(frozen=True)
class Retirement:
    """Retire the credits on purchase: for whom and why (the registry's fields)."""

    beneficiary_name: str
    purpose: str
    compliance_year: int | None = None
    jurisdiction: str | None = None
    reason: str | None = None


def checked_retirement(retirement: Retirement | None) -> Retirement | None:
    """Refuse a retirement the registry would refuse later (422 now, not at settlement: an
    auction's close must not fail on one bid's retirement): its beneficiary (1-200
    characters), purpose and compliance year, as `credits.retire` checks them."""
    if retirement is None:
        return None
    problems = []
    name = retirement.beneficiary_name
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 200:
        problems.append({"field": "retire.beneficiary_name", "message": "1-200 characters"})
    if retirement.purpose not in RETIREMENT_PURPOSES:
        problems.append({"field": "retire.purpose",
                         "message": f"one of {', '.join(RETIREMENT_PURPOSES)}"})
    year = retirement.compliance_year
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)
                             or not 2000 <= year <= 2100):
        problems.append({"field": "retire.compliance_year", "message": "a year 2000-2100"})
    for field, limit in (("jurisdiction", 100), ("reason", 500)):
        value = getattr(retirement, field)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append({"field": f"retire.{field}", "message": f"at most {limit} characters"})
    if problems:
        raise ValidationFailed("invalid retirement", errors=[
            {"location": "json", **p} for p in problems])
    return retirement


@dataclasses.dataclass(frozen=True)
class Deal:
    """What is being settled."""

    mode: str
    batch: CarbonBatch | credits.BatchFacts  #: its id and asset code are what settling needs
    seller_party_id: int
    buyer_party_id: int
    quantity_t: int
    price_fen_per_tco2e: int
    credits_from: credits.Account  #: escrow, or the seller's own account
    money_from: int  #: ledger account id: the buyer's CNY account or the CNY escrow
    seller_cash: int  #: ledger account id receiving the proceeds
    listing_id: int | None = None
    block_trade_id: int | None = None
    auction_id: int | None = None
    bid_id: int | None = None
    retirement: Retirement | None = None
    #: who retires on the buyer's behalf when not the settling actor: an auction's winner
    #: asked for the retirement with its bid (authorized then), the close is someone else's
    retire_as: Principal | None = None
    #: the buyer's tradable account and the fee account when the caller has read them
    #: already (a take reads them with the listing); looked up (or opened) when None
    buyer_holding: credits.Account | None = None
    fee_account_id: int | None = None


_TRADES = MarketTrade.__table__
_INSERT_TRADE = _TRADES.insert().returning(_TRADES.c.id)


@dataclasses.dataclass(frozen=True)
class Trade:
    """A trade as settled (the row written, without an ORM object: a trade never changes)."""

    id: int
    mode: str
    listing_id: int | None
    block_trade_id: int | None
    auction_id: int | None
    bid_id: int | None
    batch_id: int
    asset_code: str
    seller_party_id: int
    buyer_party_id: int
    quantity_t: int
    price_fen_per_tco2e: int
    value_fen: int
    fee_fen: int
    trade_date: dt.date
    executed_at: dt.datetime
    ledger_transaction_id: int
    carbon_event_id: int
    blocks: list[str]
    actor: str
    certificate_number: str | None


def settle(session: Session, actor: Principal, deal: Deal, *, now: dt.datetime | None = None,
           ctx: common.Context | None = None,
           events: list[common.Event] | None = None) -> Trade:
    """Settle `deal` (the caller has checked who may, the listing, band and T+1 rules).
    `ctx` is the operation's `common.context` (read here when not given); `events` are the
    caller's own feed events, appended after the trade's in the same statement."""
    now, today = common.now_and_today(now)
    ctx = ctx or common.context(session)
    market = ctx.rules
    value = deal.quantity_t * deal.price_fen_per_tco2e
    fee = pricing.fee_fen(value, market.fee_bp, market.fee_min_fen)
    buyer_holding = deal.buyer_holding or common.holding(session, actor, deal.batch,
                                                         deal.buyer_party_id)
    plan = credits.plan_movement(session, source=deal.credits_from, target=buyer_holding,
                                 quantity_t=deal.quantity_t, kind="transfer", escrow=True)
    asset = deal.batch.asset_code
    money = [ledger.PostingSpec(deal.money_from, common.CNY, "debit", value),
             ledger.PostingSpec(deal.seller_cash, common.CNY, "credit", value - fee)]
    if fee:
        money.append(ledger.PostingSpec(
            deal.fee_account_id or common.fee_account(session, actor, ctx), common.CNY,
            "credit", fee))
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type="market.settlement",
        memo=f"{deal.mode} trade: {deal.quantity_t} t {asset} at {deal.price_fen_per_tco2e} "
             f"fen/tCO2e",
        metadata={**plan.metadata(), "market": deal.mode, "listing_id": deal.listing_id,
                  "block_trade_id": deal.block_trade_id, "auction_id": deal.auction_id,
                  "bid_id": deal.bid_id, "value_fen": value, "fee_fen": fee},
        postings=[*plan.postings(), *money]), action=common.SETTLE, now=now)
    moved = credits.apply_movement(session, actor, plan, ledger_transaction_id=view.id,
                                   reason=f"market {deal.mode} trade", now=now)
    values: dict[str, Any] = {
        "mode": deal.mode, "listing_id": deal.listing_id, "block_trade_id": deal.block_trade_id,
        "auction_id": deal.auction_id, "bid_id": deal.bid_id, "batch_id": deal.batch.id,
        "asset_code": asset, "seller_party_id": deal.seller_party_id,
        "buyer_party_id": deal.buyer_party_id, "quantity_t": deal.quantity_t,
        "price_fen_per_tco2e": deal.price_fen_per_tco2e, "value_fen": value, "fee_fen": fee,
        "trade_date": today, "executed_at": now, "ledger_transaction_id": view.id,
        "carbon_event_id": moved.event_id, "blocks": moved.blocks, "actor": actor.label,
        "certificate_number": None}
    feed: list[common.Event] = []
    if deal.retirement is not None:
        r = deal.retirement
        retired = credits.retire(session, deal.retire_as or actor, account=buyer_holding.id,
                                 quantity_t=deal.quantity_t, beneficiary_name=r.beneficiary_name,
                                 purpose=r.purpose, compliance_year=r.compliance_year,
                                 jurisdiction=r.jurisdiction, reason=r.reason, now=now)
        assert retired.retirement is not None
        values["certificate_number"] = retired.retirement.certificate_number
    # a Core insert: the trade is written once and never changed, no unit-of-work flush
    trade_id: int = session.connection().execute(_INSERT_TRADE, values).scalar_one()
    trade = Trade(id=trade_id, **values)
    parties = [deal.seller_party_id, deal.buyer_party_id]
    feed.append(("trade", asset, parties, trade_data(trade)))
    feed.append(("settlement", asset, parties, {
        "trade_id": trade.id, "ledger_transaction_id": view.id, "value_fen": value,
        "fee_fen": fee, "seller_receives_fen": value - fee, "quantity_t": deal.quantity_t,
        "serial_blocks": moved.blocks}))
    if trade.certificate_number:
        feed.append(("retirement", asset, [deal.buyer_party_id], {
            "trade_id": trade.id, "certificate_number": trade.certificate_number,
            "quantity_t": deal.quantity_t,
            "certificate_url": f"/carbon/public/certificates/{trade.certificate_number}"}))
    common.emit(session, [*feed, *(events or [])], now)
    return trade


def trade_data(trade: MarketTrade | Trade) -> dict:
    """A trade as the feed and the API show it (parties kept apart: see `feed`)."""
    return {"trade_id": trade.id, "mode": trade.mode, "batch": trade.asset_code,
            "listing_id": trade.listing_id, "block_trade_id": trade.block_trade_id,
            "auction_id": trade.auction_id, "bid_id": trade.bid_id,
            "quantity_t": trade.quantity_t, "price_fen_per_tco2e": trade.price_fen_per_tco2e,
            "value_fen": trade.value_fen, "fee_fen": trade.fee_fen,
            "trade_date": trade.trade_date, "executed_at": trade.executed_at,
            "ledger_transaction_id": trade.ledger_transaction_id,
            "certificate_number": trade.certificate_number,
            "seller_party_id": trade.seller_party_id, "buyer_party_id": trade.buyer_party_id}
