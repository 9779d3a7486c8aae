"""Where one market take (a settled purchase) spends its time, against one ledger POST: cProfile
of N in-process POSTs through the Flask test client (the method of
`bench/profile_ledger_post.py`), so HTTP parsing and gunicorn are left out and the database,
the services' Python and the shell's per-request work are what is measured.

    .venv/bin/python bench/profile_market_take.py                     # SQLite (temporary file)
    .venv/bin/python bench/profile_market_take.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/profile_market_take.py --requests 300 --top 30

Prints the wall time per take and per ledger POST without the profiler (best of three rounds),
the driver calls per request, then the take's top functions by own and cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ledger import DATA_KEY, make_database  # noqa: E402
from bench_market import BUYERS, seed  # noqa: E402
from profiling import driver_calls, print_top  # noqa: E402

from ecovalue import migrate, protect  # noqa: E402
from ecovalue.app import create_app  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite file)")
    parser.add_argument("--requests", type=int, default=200, help="takes per round (<= 250)")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    requests = min(args.requests, 250)  # 50 warm-up + 3 rounds + the profiled one <= 1,116 t
    os.environ["ECOVALUE_MARKET_RATE_LIMIT"] = "1000000 per minute"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, drop = make_database(args.database_url, tmp)
        try:
            migrate.upgrade(url)
            app = create_app({"DATABASE_URL": url, "DATA_KEY": DATA_KEY,
                              "INSTANCE_DIR": str(tmp), "LOG_LEVEL": "WARNING"})
            protect.configure(DATA_KEY)
            db = app.extensions["ecovalue.db"]
            seeded = seed(db, 50 + 4 * requests)
            client = app.test_client()
            run = uuid.uuid4().hex[:8]
            counter = iter(range(10**9))
            take_path = f"/market/listings/{seeded['listing']}/take"

            def take() -> None:
                i = next(counter)
                response = client.post(take_path, json={"quantity_t": 1}, headers={
                    "Authorization": f"Bearer {seeded['tokens'][i % BUYERS]}",
                    "Idempotency-Key": f"{run}-{i}"})
                assert response.status_code == 201, response.get_data(as_text=True)

            def ledger_post() -> None:
                i = next(counter)
                response = client.post("/ledger/transactions", json={
                    "type": "transfer", "postings": [
                        {"account": seeded["buyer_cash"][i % BUYERS], "asset": "CNY",
                         "direction": "debit", "amount": 1},
                        {"account": seeded["seller_cash"], "asset": "CNY",
                         "direction": "credit", "amount": 1}]}, headers={
                    "Authorization": f"Bearer {seeded['finance']}",
                    "Idempotency-Key": f"{run}-{i}"})
                assert response.status_code == 201, response.get_data(as_text=True)

            def best_of_three(request: Callable[[], None], warm: int) -> list[float]:
                for _ in range(warm):
                    request()
                rounds = []
                for _ in range(3):
                    started = time.perf_counter()
                    for _ in range(requests):
                        request()
                    rounds.append((time.perf_counter() - started) / requests)
                return rounds

            posts = best_of_three(ledger_post, 50)
            takes = best_of_three(take, 50)
            profiles = {}
            for name, request in (("take", take), ("ledger POST", ledger_post)):
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(requests):
                    request()
                profile.disable()
                profiles[name] = profile
            print(f"database: {db.dialect}; {requests} in-process POSTs per round")
            for name, rounds in (("take", takes), ("ledger POST", posts)):
                sqlite, waits = driver_calls(profiles[name])
                print(f"  {name:<12} best {min(rounds) * 1000:6.2f} ms (rounds "
                      f"{', '.join(f'{r * 1000:.2f}' for r in rounds)} ms); sqlite3 "
                      f"execute calls {sqlite / requests:.1f}, psycopg waits "
                      f"{waits / requests:.1f} per request")
            print(f"  in-process ratio take / ledger POST (throughput) = "
                  f"{min(posts) / min(takes):.2f}")
            profile = profiles["take"]
            if os.environ.get("PROFILE_CALLERS"):
                pstats.Stats(profile).print_callers(os.environ["PROFILE_CALLERS"])
            print_top(profile, args.top)
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
