"""Buyers racing through the whole HTTP stack, each a thread with its own test client and
database connection (as tests/ledger/test_concurrency.py does for the ledger).

Ten buyers race for the last tonne of a listing: exactly one gets it, every other gets a
clean 409 listing-closed, and the credits, money and escrow add up. Then ten buyers take
random lots of one listing at once: never more than listed is sold. On PostgreSQL this
exercises the listing's row lock and the registry's and ledger's locks in id order; on SQLite
the same test runs with writers queued by BEGIN IMMEDIATE.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

from ecovalue.clock import utcnow
from ledger import core as ledger
from ledger.carbon.services import registry
from ledger.market.models import MarketTrade
from tests.ledger.carbon.conftest import ADMIN
from tests.ledger.market.conftest import (
    FUNDS_FEN,
    cash,
    escrowed_credits,
    expected_escrow,
    held,
    make_market,
)

BUYERS = 10
LATER = (utcnow() + dt.timedelta(days=3)).isoformat()


def race(app, headers: list[dict], path: str, bodies: list[dict]) -> list[tuple[int, str | None]]:
    outcomes: list[tuple[int, str | None]] = [(0, None)] * len(headers)
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(headers))

    def buyer(index: int) -> None:
        try:
            client = app.test_client()
            barrier.wait()
            response = client.post(path, headers=headers[index], json=bodies[index])
            body = response.get_json() or {}
            with lock:
                outcomes[index] = (response.status_code,
                                   body.get("code") if response.status_code >= 400 else None)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(len(headers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return outcomes


def test_ten_buyers_race_for_the_last_tonne(app, database, tokens):
    market = make_market(database, extra_buyers=BUYERS - 2)
    seller = tokens.trader(market.seller)
    created = app.test_client().post("/market/listings", headers=seller, json={
        "side": "sell", "batch": market.batch, "quantity_t": 5, "price_fen_per_tco2e": 5_000,
        "expires_at": LATER})
    assert created.status_code == 201, created.get_json()
    listing = created.get_json()["id"]
    first = app.test_client().post(f"/market/listings/{listing}/take",
                                   headers=tokens.trader(market.buyers[0]),
                                   json={"quantity_t": 4})
    assert first.status_code == 201  # one tonne left
    headers = [tokens.trader(b) for b in market.buyers]
    outcomes = race(app, headers, f"/market/listings/{listing}/take",
                    [{"quantity_t": 1}] * BUYERS)
    counted = Counter(outcomes)
    assert counted[(201, None)] == 1, counted
    assert counted[(409, "listing-closed")] == BUYERS - 1, counted
    with database.unit_of_work() as s:
        assert sum(held(s, market.batch, b) for b in market.buyers) == 5
        assert sum(cash(s, b) for b in market.buyers) == len(market.buyers) * FUNDS_FEN - 25_000
        assert s.query(MarketTrade).count() == 2
        assert escrowed_credits(s, market.batch) == 0
        assert registry.verify(s, ADMIN) == [] and ledger.verify(s, ADMIN) == []


def test_random_concurrent_takes_never_oversell(app, database, tokens):
    market = make_market(database, extra_buyers=BUYERS - 2)
    seller = tokens.trader(market.seller)
    created = app.test_client().post("/market/listings", headers=seller, json={
        "side": "sell", "batch": market.batch, "quantity_t": 50, "price_fen_per_tco2e": 5_000,
        "expires_at": LATER}).get_json()
    rng = random.Random(11)
    bodies = [{"quantity_t": rng.randint(1, 12)} for _ in range(BUYERS)]
    outcomes = race(app, [tokens.trader(b) for b in market.buyers],
                    f"/market/listings/{created['id']}/take", bodies)
    assert {code for status, code in outcomes if status >= 400} <= {"exceeds-listing",
                                                                    "listing-closed"}
    won = sum(b["quantity_t"] for b, (status, _) in zip(bodies, outcomes, strict=True)
              if status == 201)
    assert sum(b["quantity_t"] for b in bodies) > 50  # more was asked for than listed
    with database.unit_of_work() as s:
        bought = sum(held(s, market.batch, b) for b in market.buyers)
        sold = sum(t.quantity_t for t in s.query(MarketTrade))
        assert bought == sold == won <= 50
        for buyer, body, (status, _) in zip(market.buyers, bodies, outcomes, strict=True):
            assert held(s, market.batch, buyer) == (body["quantity_t"] if status == 201 else 0)
            assert cash(s, buyer) == FUNDS_FEN - (body["quantity_t"] * 5_000
                                                  if status == 201 else 0)
        tonnes, _ = expected_escrow(s, market.batch)
        assert escrowed_credits(s, market.batch) == tonnes == 50 - sold
        assert registry.verify(s, ADMIN) == [] and ledger.verify(s, ADMIN) == []
