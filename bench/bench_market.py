"""Benchmark of the offset market, each figure with a baseline measured in the same run.

    .venv/bin/python bench/bench_market.py                         # SQLite (temporary file)
    .venv/bin/python bench/bench_market.py --database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python bench/bench_market.py --size 200 --bids 10000   # a quick run

(a) settled purchases through the real HTTP stack (gunicorn, sync workers, the product app):
    8 buyers, each with its own trader token and connection, take 1 t at a time from one sell
    listing (the hot path: the listing's row lock, the escrow account, the seller's cash
    account), every take a delivery-versus-payment ledger transaction with Idempotency-Key;
    against the baseline of single ledger transaction POSTs (`POST /ledger/transactions`, each
    buyer paying the seller 1 fen, so the same hot credit account) on the same server in the
    same run. Throughput, p50/p99 and the ratio (aim >= 0.6).
(b) the one-way auction's allocation (`ledger.market.matching.allocate`) of 100,000 bids.

After (a) the registry's and the ledger's invariants are checked. With a PostgreSQL URL the
benchmark creates (and drops) its own database on that server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ledger import DATA_KEY, free_port, make_database, pct, start_gunicorn  # noqa: E402

from catalog.services import load_reference_regions, parties  # noqa: E402
from ecovalue import migrate, protect  # noqa: E402
from ecovalue.auth.services import create_token  # noqa: E402
from ecovalue.clock import utcnow  # noqa: E402
from ecovalue.db import Database  # noqa: E402
from ledger import core as ledger  # noqa: E402
from ledger.carbon.services import registry  # noqa: E402
from ledger.market import matching  # noqa: E402
from ledger.market.services import common, listings  # noqa: E402
from tests.ledger.carbon.conftest import ADMIN, issued_batch, make_world  # noqa: E402

BUYERS = 8
FUNDS_FEN = 10**12


def seed(db: Database, size: int) -> dict:
    """The registry's test world (a batch of 1,395 t, 1,116 t for the collective), 8 funded
    buyers with trader tokens, a finance token, and one sell listing of `size` t."""
    with db.unit_of_work() as s:
        load_reference_regions(s)
    world = make_world(db)
    batch = issued_batch(db, world)
    with db.unit_of_work() as s:
        ledger.create_asset(s, ADMIN, code="CNY", kind="currency", name_zh="人民币")
        ledger.create_account(s, ADMIN, party_id=world.bureau, asset="CNY", kind="external",
                              code="BANK-CNY")
        buyers = [parties.create_party(s, ADMIN, {
            "kind": "village_collective", "name_zh": f"买家村{n}",
            "region_code": "522326104201"}).id for n in range(BUYERS)]
        cash = {}
        for party in [world.collective, *buyers]:
            account = ledger.ensure_account(s, ADMIN, party_id=party, asset="CNY",
                                            kind="holding")
            cash[party] = account.code
            ledger.post(s, ADMIN, ledger.TransactionSpec(type="deposit", postings=[
                ledger.PostingSpec("BANK-CNY", "CNY", "debit", FUNDS_FEN),
                ledger.PostingSpec(account.id, "CNY", "credit", FUNDS_FEN)]))
        listing = listings.create_listing(
            s, ADMIN, side="sell", batch=batch, quantity_t=size, price_fen_per_tco2e=5_000,
            min_lot_t=1, expires_at=utcnow() + dt.timedelta(days=1), party_id=world.collective)
        tokens = [create_token(s, ADMIN, name=f"bench buyer {i}", role="trader",
                               party_id=b).secret for i, b in enumerate(buyers)]
        finance = create_token(s, ADMIN, name="bench finance", role="finance").secret
    return {"batch": batch, "listing": listing.id, "buyers": buyers, "tokens": tokens,
            "finance": finance, "seller_cash": cash[world.collective],
            "buyer_cash": [cash[b] for b in buyers]}


def load(port: int, jobs: list[list[tuple[str, dict, str]]]) -> tuple[float, list[float], dict]:
    """Client i POSTs its jobs (path, body, token) in order over one keep-alive connection;
    returns (seconds, latencies, status counts)."""
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs))

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        for n, (path, body, token) in enumerate(jobs[index]):
            started = time.perf_counter()
            conn.request("POST", path, body=json.dumps(body), headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "Idempotency-Key": f"{run}-{index}-{n}"})
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(jobs))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, statuses


def report(name: str, seconds: float, latencies: list[float], statuses: dict) -> float:
    ok = sum(v for k, v in statuses.items() if k < 300)
    rate = ok / seconds
    print(f"  {name:<44} {rate:8.1f} /s   p50 {pct(latencies, 0.50):7.1f} ms   "
          f"p99 {pct(latencies, 0.99):7.1f} ms   statuses {statuses}")
    return rate


def http_benchmark(url: str, seeded: dict, size: int, workers: int, tmp: Path) -> None:
    port = free_port()
    os.environ["ECOVALUE_MARKET_RATE_LIMIT"] = "1000000 per minute"  # measure, not throttle
    proc = start_gunicorn(url, port, workers, tmp)
    try:
        per_client = size // BUYERS // 2  # half for warming up and the ledger's baseline
        take = f"/market/listings/{seeded['listing']}/take"

        def purchases(n: int) -> list[list[tuple[str, dict, str]]]:
            return [[(take, {"quantity_t": 1}, seeded["tokens"][i])] * n
                    for i in range(BUYERS)]

        def payments(n: int) -> list[list[tuple[str, dict, str]]]:
            return [[("/ledger/transactions", {"type": "transfer", "postings": [
                {"account": seeded["buyer_cash"][i], "asset": "CNY", "direction": "debit",
                 "amount": 1},
                {"account": seeded["seller_cash"], "asset": "CNY", "direction": "credit",
                 "amount": 1}]}, seeded["finance"])] * n for i in range(BUYERS)]

        warm = max(2, per_client // 5)
        load(port, purchases(warm))
        load(port, payments(warm))
        n = per_client - warm
        print(f"(a) HTTP: gunicorn {workers} sync workers, {BUYERS} buyers (own token and "
              f"connection each), {n} POSTs per buyer, Idempotency-Key on every request")
        base1 = report("POST /ledger/transactions (baseline)", *load(port, payments(n)))
        market = report("settled purchases (take 1 t, DvP)", *load(port, purchases(n)))
        base2 = report("POST /ledger/transactions (baseline again)", *load(port, payments(n)))
        base = (base1 + base2) / 2
        print(f"  ratio purchases / ledger POST = {market / base:.2f}   (aim >= 0.6)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def matching_benchmark(bids: int) -> None:
    rng = np.random.default_rng(20250320)
    prices = rng.integers(4_000, 6_000, bids)
    quantities = rng.integers(1, 500, bids)
    sequence = rng.permutation(bids)
    lot = int(quantities.sum() // 2)
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        won = matching.allocate(lot, prices, quantities, sequence)
        timings.append(time.perf_counter() - started)
    assert int(won.sum()) == lot
    best, median = min(timings), statistics.median(timings)
    # the baseline: the same allocation as a plain Python loop over the sorted bids
    started = time.perf_counter()
    order = sorted(range(bids), key=lambda i: (-int(prices[i]), int(sequence[i])))
    left, loop = lot, [0] * bids
    for i in order:
        loop[i] = min(left, int(quantities[i]))
        left -= loop[i]
    python = time.perf_counter() - started
    assert loop == won.tolist()
    print(f"(b) auction allocation of {bids:,} bids: median {median * 1000:.1f} ms, best "
          f"{best * 1000:.1f} ms ({bids / median:,.0f} bids/s); a Python loop over the same "
          f"bids {python * 1000:.0f} ms, ratio {python / median:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite file)")
    parser.add_argument("--size", type=int, default=1_000,
                        help="tonnes listed = purchases of 1 t (at most 1,116)")
    parser.add_argument("--bids", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    size = min(args.size, 1_116)
    matching_benchmark(args.bids)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, drop = make_database(args.database_url, tmp)
        try:
            migrate.upgrade(url)
            db = Database(url)
            protect.configure(DATA_KEY)  # the same key as the server's
            seeded = seed(db, size)
            print(f"database: {db.dialect}")
            http_benchmark(url, seeded, size, args.workers, tmp)
            with db.unit_of_work() as s:
                problems = registry.verify(s, ADMIN) + ledger.verify(s, ADMIN)
                escrow = ledger.account_balance(s, ADMIN, f"{seeded['batch']}-ESCROW").balance
                left = listings.get_listing(s, seeded["listing"]).remaining_t
            assert not problems, problems
            assert escrow == left, (escrow, left)
            print(f"  after: registry and ledger verify clean; escrow {escrow} t = the "
                  f"listing's remaining {left} t; fee account "
                  f"{common.FEES_CNY}")
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
