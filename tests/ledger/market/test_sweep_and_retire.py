"""Expired block-trade proposals closed by the sweep (status, audit, feed event), and an
auction's winners retiring on purchase (a certificate per winning bid, on the bidder's
behalf, whoever closes the auction)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from ecovalue.auth import Principal
from ecovalue.auth.policy import Role
from ecovalue.errors import ValidationFailed
from ledger.carbon.models import CarbonRetirement
from ledger.market import errors
from ledger.market.models import MarketEvent
from ledger.market.services import auctions, blocks, common, settlement
from tests.ledger.carbon.conftest import ADMIN, NOW
from tests.ledger.market.conftest import FUNDS_FEN, cash, held
from tests.ledger.market.test_services import verified


@pytest.fixture()
def s(session, market):
    session.info["batch"] = market.batch
    return session


def trader(party: int, token: int) -> Principal:
    return Principal(role=Role.TRADER, label=f"trader {party}", token_id=token, party_id=party)


def _propose(s, market, hours=24):
    common.set_rules(s, ADMIN, {"block_min_t": 500}, now=NOW)
    return blocks.propose(s, ADMIN, side="sell", counterparty_party_id=market.plant,
                          batch=market.batch, quantity_t=600, price_fen_per_tco2e=5_000,
                          expires_at=NOW + dt.timedelta(hours=hours), party_id=market.seller,
                          now=NOW)


def test_the_sweep_closes_expired_block_proposals_with_an_event(s, market):
    late = _propose(s, market, hours=2)
    fresh = _propose(s, market, hours=48)
    assert blocks.expire(s, ADMIN, now=NOW + dt.timedelta(hours=1)) == []  # not yet
    swept = auctions.sweep(s, ADMIN, now=NOW + dt.timedelta(hours=3))
    assert (swept.listings, swept.blocks, swept.auctions) == ([], [late.id], [])
    assert (late.status, late.closed_at) == ("expired", NOW + dt.timedelta(hours=3))
    assert fresh.status == "proposed"
    event = s.scalars(sa.select(MarketEvent).where(MarketEvent.kind == "block.expired")).one()
    assert event.data["block_trade_id"] == late.id and event.data["status"] == "expired"
    assert sorted(event.party_ids) == sorted([market.seller, market.plant])
    audited = s.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "market.block.expire")).one()
    assert audited.entity_id == str(late.id) and audited.after["status"] == "expired"
    # the counterparty can no longer confirm; a second sweep finds nothing
    with pytest.raises(errors.BlockTradeClosed):
        blocks.confirm(s, trader(market.plant, 97), late.id, now=NOW + dt.timedelta(hours=4))
    assert auctions.sweep(s, ADMIN, now=NOW + dt.timedelta(hours=4)).blocks == []
    # nothing was escrowed for a proposal: nothing moved
    assert held(s, market.batch, market.seller) == 1116
    verified(s)


def test_a_trader_may_not_sweep(s, market):
    _propose(s, market, hours=2)
    with pytest.raises(Exception) as caught:
        blocks.expire(s, trader(market.plant, 97), now=NOW + dt.timedelta(hours=3))
    assert getattr(caught.value, "status", None) == 403


RETIRE = settlement.Retirement(beneficiary_name="华能贵州某电厂", purpose="thermal_power_pilot",
                               compliance_year=2025, jurisdiction="522300",
                               reason="pilot obligation PO-2025-7")


def test_auction_winners_retire_on_purchase_whoever_closes(s, market):
    auction = auctions.create_auction(s, ADMIN, batch=market.batch, quantity_t=100,
                                      reserve_price_fen_per_tco2e=4_000,
                                      closes_at=NOW + dt.timedelta(hours=1),
                                      party_id=market.seller, now=NOW)
    plant = trader(market.plant, 97)
    retiring = auctions.place_bid(s, plant, auction.id, quantity_t=60,
                                  price_fen_per_tco2e=5_000, retirement=RETIRE, now=NOW)
    holding = auctions.place_bid(s, ADMIN, auction.id, quantity_t=60,
                                 price_fen_per_tco2e=4_500, party_id=market.buyer, now=NOW)
    assert auctions.bid_view(retiring, plant)["retire"]["beneficiary_name"] == "华能贵州某电厂"
    assert auctions.bid_view(retiring, trader(market.buyer, 96))["retire"] is None
    # the seller closes: it may not retire the plant's credits itself, the clearing does
    auctions.close(s, trader(market.seller, 95), auction.id, now=NOW + dt.timedelta(hours=2))
    assert (retiring.status, retiring.filled_t) == ("won", 60)
    assert (holding.status, holding.filled_t) == ("partly_won", 40)
    trades = {t.bid_id: t for t in auctions.trades_of(s, auction.id)}
    certificate = trades[retiring.id].certificate_number
    assert certificate and trades[holding.id].certificate_number is None
    retirement = s.scalars(sa.select(CarbonRetirement).where(
        CarbonRetirement.certificate_number == certificate)).one()
    assert (retirement.quantity_t, retirement.party_id, retirement.purpose,
            retirement.compliance_year, retirement.reason) == (
        60, market.plant, "thermal_power_pilot", 2025, "pilot obligation PO-2025-7")
    assert retirement.retired_by.startswith("system:market clearing of bid")
    assert held(s, market.batch, market.plant) == 0  # retired, not held
    assert held(s, market.batch, market.buyer) == 40
    assert cash(s, market.plant) == FUNDS_FEN - 60 * 5_000
    kinds = [e.kind for e in s.scalars(sa.select(MarketEvent).order_by(MarketEvent.id))]
    assert kinds.count("retirement") == 1
    verified(s)


def test_a_bad_retirement_is_refused_when_bidding_and_escrows_nothing(s, market):
    auction = auctions.create_auction(s, ADMIN, batch=market.batch, quantity_t=100,
                                      reserve_price_fen_per_tco2e=4_000,
                                      closes_at=NOW + dt.timedelta(hours=1),
                                      party_id=market.seller, now=NOW)
    bad = settlement.Retirement(beneficiary_name=" ", purpose="speculation")
    with pytest.raises(ValidationFailed) as caught:
        auctions.place_bid(s, ADMIN, auction.id, quantity_t=10, price_fen_per_tco2e=5_000,
                           party_id=market.plant, retirement=bad, now=NOW)
    assert {e["field"] for e in caught.value.errors} == {"retire.beneficiary_name",
                                                         "retire.purpose"}
    assert cash(s, market.plant) == FUNDS_FEN
