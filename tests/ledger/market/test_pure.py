"""The pure modules with hand-worked numbers: price band, fee, volume-weighted close, daily
bars, and the auction's allocation (ties by time, a partial marginal fill, 100,000 bids)."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

from ledger.market import matching, pricing


def test_price_band_rounds_inwards():
    assert pricing.price_band(5_000, 1_000) == (4_500, 5_500)  # ±10 % of 50.00 yuan
    # 10 % of 4,999 is 499.9: the band is 4,499.1-5,498.9, so whole fen 4,500-5,498
    assert pricing.price_band(4_999, 1_000) == (4_500, 5_498)
    assert pricing.price_band(5_000, 3_000) == (3_500, 6_500)  # block trades, ±30 %
    assert pricing.price_band(1, 1_000) == (1, 1)
    assert pricing.price_band(7, 0) == (7, 7)
    with pytest.raises(ValueError):
        pricing.price_band(0, 1_000)


def test_fee_half_up_with_a_minimum_and_never_above_the_value():
    assert pricing.fee_fen(600_000, 50) == 3_000  # 0.5 % of 6,000.00 yuan
    assert pricing.fee_fen(999, 50) == 5  # 4.995 fen -> 5
    assert pricing.fee_fen(899, 50) == 4  # 4.495 fen -> 4
    assert pricing.fee_fen(100, 50, minimum_fen=20) == 20
    assert pricing.fee_fen(10, 50, minimum_fen=20) == 10
    assert pricing.fee_fen(10, 0) == 0


def test_vwap_is_exact_and_rounds_half_up():
    assert pricing.vwap_fen([5_500, 4_500], [30, 10]) == 5_250
    # (3 x 100 + 1 x 101) / 4 = 100.25 -> 100; (1 x 100 + 1 x 101) / 2 = 100.5 -> 101
    assert pricing.vwap_fen([100, 101], [3, 1]) == 100
    assert pricing.vwap_fen([100, 101], [1, 1]) == 101
    with pytest.raises(ValueError):
        pricing.vwap_fen([], [])


def test_daily_bars():
    d1, d2 = dt.date(2025, 3, 20), dt.date(2025, 3, 21)
    bars = pricing.daily_bars([(d2, 5, 5_100, 10), (d1, 2, 4_800, 20), (d1, 1, 5_000, 10),
                               (d1, 3, 5_200, 10)])
    assert [b.trade_date for b in bars] == [d1, d2]
    first = bars[0]
    # 10 x 5,000 + 20 x 4,800 + 10 x 5,200 = 198,000 fen over 40 t = 4,950
    assert (first.open_fen_per_tco2e, first.high_fen_per_tco2e, first.low_fen_per_tco2e,
            first.close_fen_per_tco2e, first.volume_t, first.value_fen, first.trades) == (
        5_000, 5_200, 4_800, 4_950, 40, 198_000, 3)
    assert bars[1].close_fen_per_tco2e == 5_100
    assert pricing.daily_bars([]) == []


def test_allocation_highest_first_ties_by_time_marginal_partial():
    # lot 100 t; bids (price, tonnes, placed): A 45.00x40 @1, B 50.00x50 @2, C 45.00x40 @3,
    # D 40.00x30 @4 -> B 50, A 40 (earlier of the tie), C the last 10, D nothing
    won = matching.allocate(100, [4_500, 5_000, 4_500, 4_000], [40, 50, 40, 30], [1, 2, 3, 4])
    assert won.tolist() == [40, 50, 10, 0]
    # the same tie decided the other way when C was placed first
    won = matching.allocate(100, [4_500, 5_000, 4_500, 4_000], [40, 50, 40, 30], [3, 2, 1, 4])
    assert won.tolist() == [10, 50, 40, 0]
    assert matching.allocate(500, [1, 2], [10, 20], [1, 2]).tolist() == [10, 20]  # undersubscribed
    assert matching.allocate(0, [1], [5], [1]).tolist() == [0]
    assert matching.allocate(10, [], [], []).tolist() == []
    with pytest.raises(ValueError):
        matching.allocate(10, [1, 2], [1], [1, 2])
    with pytest.raises(ValueError):
        matching.allocate(10, [1], [0], [1])


def test_allocation_of_100000_bids_is_fast_and_exact():
    rng = np.random.default_rng(11)
    n = 100_000
    prices = rng.integers(4_000, 6_000, n)
    quantities = rng.integers(1, 500, n)
    sequence = rng.permutation(n)
    lot = int(quantities.sum() // 3)
    started = time.perf_counter()
    won = matching.allocate(lot, prices, quantities, sequence)
    elapsed = time.perf_counter() - started
    assert int(won.sum()) == lot
    assert ((won == 0) | (won == quantities) | (won < quantities)).all()
    assert (won <= quantities).all() and (won >= 0).all()
    assert int((won % quantities != 0).sum() - (won == 0).sum() * 0) <= 1  # one partial fill
    # every winner bid at least what every loser bid; at the cut, earlier wins
    worst_winner = prices[won > 0].min()
    assert (prices[won == 0] <= worst_winner).all()
    assert elapsed < 1.0, elapsed  # ~10 ms here; the budget leaves room for a busy machine
