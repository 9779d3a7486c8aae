"""The market's services end to end, on a frozen clock (12:00 in Shanghai, 20 March 2025):
escrow and its return on cancel and expiry, delivery versus payment, the price band, T+1,
block trades, auctions; after each, the registry's and the ledger's invariants hold."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ledger import core as ledger
from ledger.carbon import errors as carbon_errors
from ledger.carbon.models import CarbonRetirement
from ledger.carbon.services import credits, registry
from ledger.market import errors
from ledger.market.models import MarketEvent, MarketTrade
from ledger.market.services import auctions, blocks, common, feed, listings, settlement
from tests.ledger.carbon.conftest import ADMIN, NOW
from tests.ledger.market.conftest import (
    FUNDS_FEN,
    LATER,
    cash,
    escrowed_cash,
    escrowed_credits,
    expected_escrow,
    held,
)

TOMORROW = NOW + dt.timedelta(days=1)


def sell(session, market, quantity=300, price=5_000, **kwargs):
    return listings.create_listing(session, ADMIN, side="sell", batch=market.batch,
                                   quantity_t=quantity, price_fen_per_tco2e=price,
                                   expires_at=kwargs.pop("expires_at", LATER),
                                   party_id=kwargs.pop("party_id", market.seller),
                                   now=kwargs.pop("now", NOW), **kwargs)


def verified(session):
    assert registry.verify(session, ADMIN) == []
    assert ledger.verify(session, ADMIN) == []
    tonnes, fen = expected_escrow(session, session.info["batch"])
    assert escrowed_credits(session, session.info["batch"]) == tonnes
    assert escrowed_cash(session) == fen


@pytest.fixture()
def s(session, market):
    session.info["batch"] = market.batch
    return session


def test_a_sell_listing_escrows_and_a_take_settles_in_one_transaction(s, market):
    listing = sell(s, market, quantity=300, price=5_000, min_lot_t=10)
    assert held(s, market.batch, market.seller) == 1116 - 300
    assert escrowed_credits(s, market.batch) == 300
    trade = listings.take(s, ADMIN, listing.id, quantity_t=120, party_id=market.plant, now=NOW)
    # 120 t x 50.00 yuan = 6,000.00 yuan; fee 0.5 % = 30.00 yuan from the seller's proceeds
    assert (trade.value_fen, trade.fee_fen) == (600_000, 3_000)
    assert cash(s, market.plant) == FUNDS_FEN - 600_000
    assert cash(s, market.seller) == FUNDS_FEN + 597_000
    assert ledger.account_balance(s, ADMIN, common.FEES_CNY).balance == 3_000
    assert held(s, market.batch, market.plant) == 120
    assert (listing.remaining_t, listing.status) == (180, "open")
    tx = ledger.get_transaction(s, ADMIN, trade.ledger_transaction_id)
    legs = {(p.account_code, p.direction, p.amount) for p in tx.postings}
    assert legs == {(f"{market.batch}-ESCROW", "debit", 120),
                    (f"P{market.plant}-HOLDING-{market.batch}", "credit", 120),
                    (f"P{market.plant}-HOLDING-CNY", "debit", 600_000),
                    (f"P{market.seller}-HOLDING-CNY", "credit", 597_000),
                    (common.FEES_CNY, "credit", 3_000)}
    assert trade.blocks == ["QXN-522326-WM-AR-001-2023-000001-000120"]
    verified(s)


def test_buy_listing_escrows_money_and_a_seller_takes_it(s, market):
    listing = listings.create_listing(s, ADMIN, side="buy", batch=market.batch, quantity_t=100,
                                      price_fen_per_tco2e=4_000, expires_at=LATER,
                                      party_id=market.plant, now=NOW)
    assert escrowed_cash(s) == 400_000 and listing.escrow_fen == 400_000
    assert cash(s, market.plant) == FUNDS_FEN - 400_000
    trade = listings.take(s, ADMIN, listing.id, quantity_t=100, party_id=market.seller, now=NOW)
    assert (trade.seller_party_id, trade.buyer_party_id) == (market.seller, market.plant)
    assert listing.status == "filled" and listing.escrow_fen == 0
    assert held(s, market.batch, market.plant) == 100
    assert cash(s, market.seller) == FUNDS_FEN + 400_000 - 2_000
    verified(s)


def test_cancel_returns_the_escrow(s, market):
    listing = sell(s, market, quantity=200)
    listings.take(s, ADMIN, listing.id, quantity_t=50, party_id=market.plant, now=NOW)
    listings.cancel(s, ADMIN, listing.id, now=NOW)
    assert listing.status == "cancelled"
    assert held(s, market.batch, market.seller) == 1116 - 50
    assert escrowed_credits(s, market.batch) == 0
    bid = listings.create_listing(s, ADMIN, side="buy", batch=market.batch, quantity_t=10,
                                  price_fen_per_tco2e=5_000, expires_at=LATER,
                                  party_id=market.buyer, now=NOW)
    listings.cancel(s, ADMIN, bid.id, now=NOW)
    assert cash(s, market.buyer) == FUNDS_FEN and escrowed_cash(s) == 0
    with pytest.raises(errors.ListingClosed):
        listings.cancel(s, ADMIN, bid.id, now=NOW)
    with pytest.raises(errors.ListingClosed):
        listings.take(s, ADMIN, listing.id, quantity_t=1, party_id=market.plant, now=NOW)
    kinds = [e.kind for e in s.scalars(sa.select(MarketEvent).order_by(MarketEvent.id))]
    assert kinds.count("listing.cancelled") == 2
    verified(s)


def test_expiry_returns_the_escrow_and_refuses_takes(s, market):
    short = sell(s, market, quantity=100, expires_at=NOW + dt.timedelta(hours=1))
    bid = listings.create_listing(s, ADMIN, side="buy", batch=market.batch, quantity_t=10,
                                  price_fen_per_tco2e=5_000,
                                  expires_at=NOW + dt.timedelta(hours=1),
                                  party_id=market.buyer, now=NOW)
    keep = sell(s, market, quantity=100)
    late = NOW + dt.timedelta(hours=2)
    with pytest.raises(errors.ListingExpired):
        listings.take(s, ADMIN, short.id, quantity_t=10, party_id=market.plant, now=late)
    assert listings.expire(s, ADMIN, now=late) == [short.id, bid.id]
    assert (short.status, bid.status, keep.status) == ("expired", "expired", "open")
    assert held(s, market.batch, market.seller) == 1116 - 100
    assert cash(s, market.buyer) == FUNDS_FEN
    assert listings.expire(s, ADMIN, now=late) == []
    verified(s)


def test_take_refusals(s, market):
    listing = sell(s, market, quantity=100, min_lot_t=20)
    with pytest.raises(errors.ExceedsListing):
        listings.take(s, ADMIN, listing.id, quantity_t=101, party_id=market.plant, now=NOW)
    with pytest.raises(errors.BelowMinimumLot):
        listings.take(s, ADMIN, listing.id, quantity_t=19, party_id=market.plant, now=NOW)
    with pytest.raises(errors.SelfTrade):
        listings.take(s, ADMIN, listing.id, quantity_t=20, party_id=market.seller, now=NOW)
    listings.take(s, ADMIN, listing.id, quantity_t=90, party_id=market.plant, now=NOW)
    # the rest (10 t) is below the minimum lot but may be taken whole
    listings.take(s, ADMIN, listing.id, quantity_t=10, party_id=market.buyer, now=NOW)
    assert listing.status == "filled"
    verified(s)


def test_without_enough_money_nothing_is_written(database, market):
    with database.unit_of_work() as s:
        listing = sell(s, market, quantity=500, price=1_000_000)  # 10,000 yuan/t
    with pytest.raises(ledger.InsufficientBalance), database.unit_of_work() as s:
        listings.take(s, ADMIN, listing.id, quantity_t=101, party_id=market.plant, now=NOW)
    with database.unit_of_work() as s:
        assert cash(s, market.plant) == FUNDS_FEN
        assert s.scalar(sa.select(sa.func.count()).select_from(MarketTrade)) == 0
        assert listings.get_listing(s, listing.id).remaining_t == 500
        assert held(s, market.batch, market.plant) == 0


def test_dvp_failure_after_the_credit_leg_leaves_nothing(database, market, monkeypatch):
    with database.unit_of_work() as s:
        listing = sell(s, market, quantity=100)
    moved = []
    real = credits.apply_movement

    def fail_after_credits(*args, **kwargs):
        moved.append(real(*args, **kwargs))  # blocks written, ledger posted
        raise RuntimeError("injected failure after the credit leg")

    monkeypatch.setattr(credits, "apply_movement", fail_after_credits)
    with pytest.raises(RuntimeError), database.unit_of_work() as s:
        listings.take(s, ADMIN, listing.id, quantity_t=40, party_id=market.plant, now=NOW)
    assert moved and moved[0].quantity_t == 40
    monkeypatch.undo()
    with database.unit_of_work() as s:
        s.info["batch"] = market.batch
        assert held(s, market.batch, market.plant) == 0
        assert cash(s, market.plant) == FUNDS_FEN and cash(s, market.seller) == FUNDS_FEN
        assert escrowed_credits(s, market.batch) == 100
        assert s.scalar(sa.select(sa.func.count()).select_from(MarketTrade)) == 0
        assert listings.get_listing(s, listing.id).remaining_t == 100
        verified(s)


def test_retire_on_purchase_goes_through_the_registry(s, market):
    listing = sell(s, market, quantity=100)
    trade = listings.take(s, ADMIN, listing.id, quantity_t=30, party_id=market.plant, now=NOW,
                          retirement=settlement.Retirement("兴义火电厂", "thermal_power_pilot",
                                                           2025, "522300"))
    assert trade.certificate_number == f"QXN-RET-2025-{trade.carbon_event_id + 1:06d}"
    retirement = s.scalar(sa.select(CarbonRetirement))
    assert (retirement.quantity_t, retirement.party_id) == (30, market.plant)
    assert held(s, market.batch, market.plant) == 0
    assert "retirement" in [e.kind for e in s.scalars(sa.select(MarketEvent))]
    # retired on purchase: nothing bought today is held, so T+1 leaves nothing locked
    assert common.bought_today(s, market.plant, market.batch, NOW.date()) == 0
    verified(s)


def test_price_band_around_the_previous_close(s, market):
    common.set_batch_rule(s, ADMIN, market.batch, {"reference_price_fen_per_tco2e": 5_000},
                          now=NOW)
    with pytest.raises(errors.PriceOutsideBand) as refused:
        sell(s, market, quantity=10, price=5_501)  # band 4,500-5,500 around 50.00 yuan
    assert refused.value.extensions["band_high_fen_per_tco2e"] == 5_500
    a = sell(s, market, quantity=100, price=5_500)
    b = sell(s, market, quantity=100, price=4_500)
    listings.take(s, ADMIN, a.id, quantity_t=30, party_id=market.plant, now=NOW)
    listings.take(s, ADMIN, b.id, quantity_t=10, party_id=market.plant, now=NOW)
    # today's close: (30 x 5,500 + 10 x 4,500) / 40 = 5,250 fen; tomorrow's band 4,725-5,775
    assert common.previous_close(s, market.batch, TOMORROW.date()) == 5_250
    bars = feed.daily(s, market.batch)["days"]
    assert bars == [{"trade_date": dt.date(2025, 3, 20), "open_fen_per_tco2e": 5_500,
                     "high_fen_per_tco2e": 5_500, "low_fen_per_tco2e": 4_500,
                     "close_fen_per_tco2e": 5_250, "volume_t": 40, "value_fen": 210_000,
                     "trades": 2}]
    with pytest.raises(errors.PriceOutsideBand):
        listings.take(s, ADMIN, b.id, quantity_t=10, party_id=market.plant, now=TOMORROW)
    sell(s, market, quantity=10, price=5_775, now=TOMORROW)
    with pytest.raises(errors.PriceOutsideBand):
        sell(s, market, quantity=10, price=4_724, now=TOMORROW)
    common.set_rules(s, ADMIN, {"price_band_bp": 2000}, now=NOW)  # the band is data
    common.set_batch_rule(s, ADMIN, market.batch, {"price_band_bp": None}, now=NOW)
    sell(s, market, quantity=10, price=4_200, now=TOMORROW)  # 4,200-6,300 at ±20 %


def test_t_plus_one(s, market):
    listing = sell(s, market, quantity=200)
    listings.take(s, ADMIN, listing.id, quantity_t=100, party_id=market.plant, now=NOW)
    with pytest.raises(errors.SameDayResale) as refused:
        sell(s, market, quantity=1, party_id=market.plant)
    assert refused.value.extensions["sellable_t"] == 0
    # bought late on the 20th in Shanghai (23:59 local = 15:59 UTC) is still the 20th
    late = dt.datetime(2025, 3, 20, 15, 59, tzinfo=dt.UTC)
    with pytest.raises(errors.SameDayResale):
        sell(s, market, quantity=1, party_id=market.plant, now=late)
    after_midnight = dt.datetime(2025, 3, 20, 16, 0, tzinfo=dt.UTC)  # 00:00 on the 21st
    again = sell(s, market, quantity=100, party_id=market.plant, now=after_midnight)
    assert again.remaining_t == 100
    with pytest.raises(carbon_errors.InsufficientCredits):
        sell(s, market, quantity=1, party_id=market.plant, now=after_midnight)
    verified(s)


def test_escrowed_credits_move_only_through_the_market(s, market):
    sell(s, market, quantity=100)
    with pytest.raises(carbon_errors.NotTradable):
        credits.transfer(s, ADMIN, account=f"{market.batch}-ESCROW", to_party_id=market.plant,
                         quantity_t=1, now=NOW)
    with pytest.raises(carbon_errors.NotTradable):
        credits.retire(s, ADMIN, account=f"{market.batch}-ESCROW", quantity_t=1,
                       beneficiary_name="x", purpose="voluntary", now=NOW)


def test_block_trade_propose_confirm(s, market):
    common.set_rules(s, ADMIN, {"block_min_t": 500}, now=NOW)
    with pytest.raises(errors.BlockTooSmall):
        blocks.propose(s, ADMIN, side="sell", counterparty_party_id=market.plant,
                       batch=market.batch, quantity_t=499, price_fen_per_tco2e=5_000,
                       party_id=market.seller, now=NOW)
    block = blocks.propose(s, ADMIN, side="sell", counterparty_party_id=market.plant,
                           batch=market.batch, quantity_t=600, price_fen_per_tco2e=5_000,
                           party_id=market.seller, now=NOW)
    third = ADMIN.__class__(role=ADMIN.role.TRADER, label="t", token_id=99,
                            party_id=market.buyer)
    with pytest.raises(errors.NotCounterparty):
        blocks.confirm(s, third, block.id, now=NOW)
    seller = ADMIN.__class__(role=ADMIN.role.TRADER, label="s", token_id=98,
                             party_id=market.seller)
    with pytest.raises(errors.NotCounterparty):
        blocks.confirm(s, seller, block.id, now=NOW)  # the proposer cannot confirm itself
    plant = ADMIN.__class__(role=ADMIN.role.TRADER, label="p", token_id=97,
                            party_id=market.plant)
    trade = blocks.confirm(s, plant, block.id, now=NOW)
    assert (trade.mode, trade.quantity_t, trade.value_fen) == ("block", 600, 3_000_000)
    assert block.status == "confirmed" and block.trade_id == trade.id
    assert held(s, market.batch, market.plant) == 600
    with pytest.raises(errors.BlockTradeClosed):
        blocks.confirm(s, plant, block.id, now=NOW)
    # the block band is ±30 % around today's close of 5,000 tomorrow
    with pytest.raises(errors.PriceOutsideBand):
        blocks.propose(s, ADMIN, side="buy", counterparty_party_id=market.seller,
                       batch=market.batch, quantity_t=500, price_fen_per_tco2e=6_501,
                       party_id=market.buyer, now=TOMORROW)
    blocks.propose(s, ADMIN, side="buy", counterparty_party_id=market.seller,
                   batch=market.batch, quantity_t=500, price_fen_per_tco2e=6_500,
                   party_id=market.buyer, now=TOMORROW)
    verified(s)


def test_auction_highest_bids_win_at_their_prices_ties_by_time(s, market):
    auction = auctions.create_auction(s, ADMIN, batch=market.batch, quantity_t=100,
                                      reserve_price_fen_per_tco2e=4_000, min_lot_t=10,
                                      closes_at=NOW + dt.timedelta(hours=1),
                                      party_id=market.seller, now=NOW)
    bidders = [market.plant, market.buyer]
    placed = [auctions.place_bid(s, ADMIN, auction.id, quantity_t=q, price_fen_per_tco2e=p,
                                 party_id=bidders[i % 2], now=NOW)
              for i, (q, p) in enumerate([(40, 4_500), (50, 5_000), (40, 4_500), (30, 4_000)])]
    with pytest.raises(common.ValidationFailed):
        auctions.place_bid(s, ADMIN, auction.id, quantity_t=10, price_fen_per_tco2e=3_999,
                           party_id=market.plant, now=NOW)
    with pytest.raises(errors.AuctionStillOpen):
        auctions.close(s, ADMIN, auction.id, now=NOW)
    closing = NOW + dt.timedelta(hours=1)
    with pytest.raises(errors.AuctionClosed):
        auctions.place_bid(s, ADMIN, auction.id, quantity_t=10, price_fen_per_tco2e=9_000,
                           party_id=market.plant, now=closing)
    auctions.close(s, ADMIN, auction.id, now=closing)
    # 50 @ 50.00 first, then the two 45.00 bids by time: 40 (earlier) in full, 10 of 40
    assert [(b.filled_t, b.status) for b in placed] == [
        (40, "won"), (50, "won"), (10, "partly_won"), (0, "lost")]
    assert auction.sold_t == 100 and auction.status == "closed"
    trades = auctions.trades_of(s, auction.id)
    assert sorted((t.quantity_t, t.price_fen_per_tco2e) for t in trades) == [
        (10, 4_500), (40, 4_500), (50, 5_000)]
    # plant: won 40 @ 45 + 10 @ 45 (its bids 1 and 3) = 225,000 fen; the rest came back
    assert cash(s, market.plant) == FUNDS_FEN - 50 * 4_500
    assert cash(s, market.buyer) == FUNDS_FEN - 50 * 5_000
    value = 50 * 5_000 + 50 * 4_500
    fees = sum(t.fee_fen for t in trades)
    assert cash(s, market.seller) == FUNDS_FEN + value - fees
    assert escrowed_cash(s) == 0 and escrowed_credits(s, market.batch) == 0
    verified(s)


def test_auction_unsold_tonnes_go_back(s, market):
    auction = auctions.create_auction(s, ADMIN, batch=market.batch, quantity_t=100,
                                      reserve_price_fen_per_tco2e=4_000,
                                      closes_at=NOW + dt.timedelta(hours=1),
                                      party_id=market.seller, now=NOW)
    auctions.place_bid(s, ADMIN, auction.id, quantity_t=30, price_fen_per_tco2e=4_000,
                       party_id=market.plant, now=NOW)
    swept = auctions.sweep(s, ADMIN, now=NOW + dt.timedelta(hours=2))
    assert (swept.listings, swept.blocks, swept.auctions) == ([], [], [auction.id])
    assert auction.sold_t == 30
    assert held(s, market.batch, market.seller) == 1116 - 30
    verified(s)
