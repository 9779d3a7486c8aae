"""Hypothesis stateful test of the market: random sell and buy listings, takes (some retired
on purchase), cancels, expiries (the clock moves on), auctions with bids and closes, driven
through the services on a clock of our own, next to the invariants:

- per batch, escrow + holdings = issued - retired - cancelled - buffer (the registry's
  blocks and the ledger's balances agree: `verify` of both);
- what the escrow accounts hold is exactly what the open listings, open auctions and sealed
  bids say they hold (credits and money);
- money is neither made nor lost: the parties' cash + the money escrow + the fees = what was
  paid in; a refused step changed nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from catalog.services import load_reference_regions
from ecovalue.errors import EcovalueError
from ledger import core as ledger
from ledger.carbon.models import CarbonBatch
from ledger.carbon.services import registry
from ledger.market.models import MarketAuction, MarketBid, MarketListing, MarketTrade
from ledger.market.services import auctions, common, listings, settlement
from tests.conftest import wipe
from tests.ledger.carbon.conftest import ADMIN, NOW
from tests.ledger.market.conftest import (
    FUNDS_FEN,
    cash,
    escrowed_cash,
    escrowed_credits,
    expected_escrow,
    make_market,
)

DATABASE = None  # set by the test function (Hypothesis machines take no fixtures)
#: what the examples did, over the whole run (so that the test shows it exercised the market)
SEEN: Counter = Counter()
PRICES = st.sampled_from([4_800, 5_000, 5_200])


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = DATABASE
        wipe(self.db)
        with self.db.unit_of_work() as s:
            load_reference_regions(s)
        self.market = make_market(self.db, extra_buyers=1)
        self.parties = [self.market.seller, *self.market.buyers]
        self.now = NOW
        with self.db.unit_of_work() as s:
            common.set_batch_rule(s, ADMIN, self.market.batch,
                                  {"reference_price_fen_per_tco2e": 5_000}, now=NOW)

    def call(self, fn):
        """One unit of work; a domain refusal rolls it back and must change nothing."""
        before = self.state()
        try:
            with self.db.unit_of_work() as s:
                return fn(s)
        except EcovalueError as exc:
            SEEN[f"refused:{exc.code}"] += 1
            assert self.state() == before, "a refused step changed something"
            return None

    def state(self):
        with self.db.session(write=False) as s:
            return (sorted((a.account_code, a.balance) for a in ledger.party_balances(
                s, ADMIN, self.market.seller)[0]),
                    escrowed_cash(s), escrowed_credits(s, self.market.batch),
                    s.scalar(sa.select(sa.func.count()).select_from(MarketListing)))

    def open_ids(self, model, **where):
        with self.db.session(write=False) as s:
            stmt = sa.select(model.id).where(model.status == "open")
            for key, value in where.items():
                stmt = stmt.where(getattr(model, key) == value)
            return list(s.scalars(stmt.order_by(model.id)))

    # --- rules ---------------------------------------------------------------------------

    @rule(party=st.sampled_from([0, 0, 0, 1, 2, 3]), quantity=st.integers(1, 200),
          price=PRICES, hours=st.integers(1, 48), lot=st.integers(1, 5))
    def sell(self, party, quantity, price, hours, lot):
        self.call(lambda s: listings.create_listing(
            s, ADMIN, side="sell", batch=self.market.batch, quantity_t=quantity,
            price_fen_per_tco2e=price, min_lot_t=min(lot, quantity),
            expires_at=self.now + dt.timedelta(hours=hours), party_id=self.parties[party],
            now=self.now))

    @rule(party=st.integers(0, 3), quantity=st.integers(1, 300), price=PRICES,
          hours=st.integers(1, 48))
    def buy_listing(self, party, quantity, price, hours):
        self.call(lambda s: listings.create_listing(
            s, ADMIN, side="buy", batch=self.market.batch, quantity_t=quantity,
            price_fen_per_tco2e=price, expires_at=self.now + dt.timedelta(hours=hours),
            party_id=self.parties[party], now=self.now))

    @rule(data=st.data(), retire=st.booleans())
    def take(self, data, retire):
        ids = self.open_ids(MarketListing)
        if not ids:
            return
        listing_id = data.draw(st.sampled_from(ids))
        with self.db.session(write=False) as s:
            found = listings.get_listing(s, listing_id)
            owner, remaining, side = found.party_id, found.remaining_t, found.side
        # mostly someone else (a self-trade is refused), the whole rest or a part, sometimes
        # more than is left
        party = data.draw(st.sampled_from([p for p in self.parties if p != owner] * 3
                                          + [owner]))
        quantity = data.draw(st.one_of(st.just(remaining), st.integers(1, remaining + 3)))
        retirement = settlement.Retirement("测试受益人", "voluntary") \
            if retire and side == "sell" else None
        self.call(lambda s: listings.take(s, ADMIN, listing_id, quantity_t=quantity,
                                          party_id=party, now=self.now,
                                          retirement=retirement))

    @rule(data=st.data())
    def cancel(self, data):
        ids = self.open_ids(MarketListing)
        if ids:
            listing = data.draw(st.sampled_from(ids))
            self.call(lambda s: listings.cancel(s, ADMIN, listing, now=self.now))

    @rule(hours=st.integers(1, 12))
    def time_passes_and_the_sweep_runs(self, hours):
        self.now += dt.timedelta(hours=hours)
        self.call(lambda s: auctions.sweep(s, ADMIN, now=self.now))

    @precondition(lambda self: len(self.open_ids(MarketAuction)) < 2)
    @rule(party=st.sampled_from([0, 0, 1]), quantity=st.integers(1, 200),
          hours=st.integers(1, 6))
    def auction(self, party, quantity, hours):
        self.call(lambda s: auctions.create_auction(
            s, ADMIN, batch=self.market.batch, quantity_t=quantity,
            reserve_price_fen_per_tco2e=4_800, closes_at=self.now + dt.timedelta(hours=hours),
            party_id=self.parties[party], now=self.now))

    @rule(data=st.data(), party=st.integers(0, 3), quantity=st.integers(1, 80), price=PRICES)
    def bid(self, data, party, quantity, price):
        ids = self.open_ids(MarketAuction)
        if ids:
            auction = data.draw(st.sampled_from(ids))
            self.call(lambda s: auctions.place_bid(
                s, ADMIN, auction, quantity_t=quantity, price_fen_per_tco2e=price,
                party_id=self.parties[party], now=self.now))

    def teardown(self):
        with self.db.session(write=False) as s:
            for trade in s.scalars(sa.select(MarketTrade)):
                SEEN[f"trade:{trade.mode}"] += 1
                SEEN["retired on purchase"] += trade.certificate_number is not None
            for status, in s.execute(sa.select(MarketListing.status)):
                SEEN[f"listing:{status}"] += 1
            for status, in s.execute(sa.select(MarketAuction.status)):
                SEEN[f"auction:{status}"] += 1

    @rule(quantity=st.integers(1, 150),
          bids=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 80), PRICES), max_size=4))
    def auction_round(self, quantity, bids):
        """An auction of the collective's, a few bids (ties likely: three prices), the close."""
        closes = self.now + dt.timedelta(minutes=30)
        auction = self.call(lambda s: auctions.create_auction(
            s, ADMIN, batch=self.market.batch, quantity_t=quantity,
            reserve_price_fen_per_tco2e=4_800, closes_at=closes, party_id=self.market.seller,
            now=self.now).id)
        if auction is None:
            return
        for party, asked, price in bids:
            self.call(lambda s, party=party, asked=asked, price=price: auctions.place_bid(
                s, ADMIN, auction, quantity_t=min(asked, quantity), price_fen_per_tco2e=price,
                party_id=self.parties[party], now=self.now))
        self.now = closes
        self.call(lambda s: auctions.close(s, ADMIN, auction, now=self.now))

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def registry_and_ledger_verify(self):
        with self.db.session(write=False) as s:
            assert registry.verify(s, ADMIN) == []
            assert ledger.verify(s, ADMIN) == []

    @invariant()
    def escrow_plus_holdings_is_issued_less_retired_cancelled_buffer(self):
        batch_code = self.market.batch
        with self.db.session(write=False) as s:
            batch = s.scalar(sa.select(CarbonBatch).where(CarbonBatch.asset_code == batch_code))
            holdings = registry.holdings(s, batch_code, public=False)
            by_role: dict[str, int] = {}
            for h in holdings:
                by_role[h["role"]] = by_role.get(h["role"], 0) + h["quantity_t"]
            escrow = escrowed_credits(s, batch_code)
            parties_hold = by_role.get("tradable", 0) - escrow
            assert escrow + parties_hold == batch.quantity_t - by_role.get("retired", 0) \
                - by_role.get("cancelled", 0) - by_role.get("buffer", 0)
            tonnes, fen = expected_escrow(s, batch_code)
            assert escrow == tonnes
            assert escrowed_cash(s) == fen
            sealed = s.scalar(sa.select(sa.func.count()).select_from(MarketBid).where(
                MarketBid.status == "sealed", MarketBid.auction_id.in_(
                    sa.select(MarketAuction.id).where(MarketAuction.status != "open"))))
            assert sealed == 0  # a closed auction leaves no sealed bid behind

    @invariant()
    def money_is_conserved(self):
        with self.db.session(write=False) as s:
            parties = sum(cash(s, p) for p in self.parties)
            try:
                fees = ledger.account_balance(s, ADMIN, common.FEES_CNY).balance
            except EcovalueError:
                fees = 0
            assert parties + escrowed_cash(s) + fees == FUNDS_FEN * len(self.parties)


def test_market_invariants_hold_under_random_sequences(database):
    global DATABASE
    DATABASE = database
    MarketMachine.TestCase.settings = settings(
        max_examples=10, stateful_step_count=20, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck))
    SEEN.clear()
    MarketMachine.TestCase().runTest()
    for what in ("trade:listed", "trade:auction", "listing:cancelled", "listing:expired",
                 "listing:filled", "auction:closed", "retired on purchase"):
        assert SEEN[what], (what, SEEN)
