"""One-way auction (单向竞价) allocation: pure and vectorised (numpy), no I/O.

The seller offers `quantity_t` tonnes; bids are sealed until the close. At the close the
bids are ranked by price, highest first, ties by time (the earlier bid first); each bid in
that order gets what it asked for while the lot lasts, the marginal bid gets the rest (a
partial fill), and the bids after it get nothing. Every winner pays its own price
(discriminatory, "pay as bid"), as the one-way auction rules of the carbon exchanges do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def allocate(quantity_t: int, prices: npt.ArrayLike, quantities: npt.ArrayLike,
             sequence: npt.ArrayLike) -> IntArray:
    """Tonnes won by each bid, in the bids' order. `prices` (fen/tCO2e), `quantities`
    (tonnes, each at least 1) and `sequence` (when placed: smaller is earlier, unique) are
    equal-length integer arrays. The winners' tonnes sum to min(quantity_t, Σ quantities)."""
    price = np.asarray(prices, dtype=np.int64)
    asked = np.asarray(quantities, dtype=np.int64)
    seq = np.asarray(sequence, dtype=np.int64)
    if not price.shape == asked.shape == seq.shape or price.ndim != 1:
        raise ValueError("prices, quantities and sequence must be 1-d and of one length")
    if quantity_t < 0 or (asked.size and asked.min() < 1):
        raise ValueError("a lot of at least 0 t and bids of at least 1 t")
    order = np.lexsort((seq, -price))  # last key first: price descending, then time
    ranked = asked[order]
    before = np.cumsum(ranked) - ranked  # tonnes taken by the better bids
    won = np.clip(quantity_t - before, 0, ranked)
    filled = np.empty_like(won)
    filled[order] = won
    return filled
