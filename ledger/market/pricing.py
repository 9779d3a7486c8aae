"""Prices, bands, fees and daily bars: integers in, integers out (pure, no I/O).

Prices are integer fen per tCO2e (the tick of 0.01 yuan), quantities integer tonnes, values
integer fen. Every rounding is stated where it happens.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

BP = 10_000  #: basis points in a whole


def price_band(reference_fen: int, band_bp: int) -> tuple[int, int]:
    """The inclusive range of prices (fen/tCO2e) within `band_bp` basis points of
    `reference_fen`: the low end rounded up, the high end rounded down, so that every price
    inside is at most the band away (the national rules' ±10 % around the previous close is
    `band_bp=1000`). The low end is at least 1 fen."""
    if reference_fen <= 0 or not 0 <= band_bp <= BP:
        raise ValueError("a positive reference price and a band of 0-10000 basis points")
    low = -((-reference_fen * (BP - band_bp)) // BP)  # ceiling division
    high = (reference_fen * (BP + band_bp)) // BP
    return max(low, 1), high


def fee_fen(value_fen: int, fee_bp: int, minimum_fen: int = 0) -> int:
    """The fee on a trade worth `value_fen`: `fee_bp` basis points of it rounded half up to
    the fen, at least `minimum_fen`, never more than the value itself."""
    if value_fen <= 0 or fee_bp < 0 or minimum_fen < 0:
        raise ValueError("a positive value, a fee rate and a minimum of at least 0")
    fee = (value_fen * fee_bp * 2 + BP) // (2 * BP)
    return min(max(fee, minimum_fen), value_fen)


def vwap_fen(prices: Sequence[int], quantities: Sequence[int]) -> int:
    """The volume-weighted average price (fen/tCO2e) of trades: Σ price x quantity / Σ
    quantity, rounded half up to the fen (exact integer arithmetic)."""
    value = sum(p * q for p, q in zip(prices, quantities, strict=True))
    volume = sum(quantities)
    if volume <= 0:
        raise ValueError("no volume")
    return (2 * value + volume) // (2 * volume)


@dataclasses.dataclass(frozen=True)
class DailyBar:
    """One batch's trading day: open (the first trade's price), high, low, close (the day's
    volume-weighted price), volume and value."""

    trade_date: dt.date
    open_fen_per_tco2e: int
    high_fen_per_tco2e: int
    low_fen_per_tco2e: int
    close_fen_per_tco2e: int
    volume_t: int
    value_fen: int
    trades: int


def daily_bars(trades: Iterable[tuple[dt.date, int, int, int]]) -> list[DailyBar]:
    """Bars per trading day from trades `(trade_date, sequence, price_fen, quantity_t)`
    (`sequence` orders the trades of a day: the open is the first one's price), oldest day
    first. Vectorised with pandas on int64 (exact below 9.2e18 fen a day)."""
    frame = pd.DataFrame(list(trades), columns=["day", "seq", "price", "qty"])
    if frame.empty:
        return []
    frame = frame.astype({"seq": np.int64, "price": np.int64, "qty": np.int64})
    frame["value"] = frame["price"] * frame["qty"]
    frame = frame.sort_values(["day", "seq"], kind="stable")
    grouped = frame.groupby("day", sort=True)
    table = grouped.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"),
                        volume=("qty", "sum"), value=("value", "sum"), trades=("seq", "size"))
    # close = round half up of value / volume, in integers
    table["close"] = (2 * table["value"] + table["volume"]) // (2 * table["volume"])
    return [DailyBar(day, int(r.open), int(r.high), int(r.low), int(r.close), int(r.volume),
                     int(r.value), int(r.trades)) for day, r in table.iterrows()]
