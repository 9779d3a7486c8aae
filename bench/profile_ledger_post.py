"""Where one ledger POST spends its time: cProfile of N in-process POSTs (the method of issue
15), through the Flask test client, so HTTP parsing and gunicorn are left out and the
database, the ledger's Python and the shell's per-request work are what is measured.

    .venv/bin/python bench/profile_ledger_post.py                     # SQLite (temporary file)
    .venv/bin/python bench/profile_ledger_post.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/profile_ledger_post.py --requests 500 --top 25 --hot

Prints the wall time per POST without the profiler (best of three rounds), then the
profile's cumulative costs of the named parts (authentication, the ledger service, the audit
append, argument parsing, the commit) and the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ledger import DATA_KEY, HOLDINGS, make_database, seed  # noqa: E402
from ledger_app import add_bare  # noqa: E402
from profiling import driver_calls, print_top  # noqa: E402

from ecovalue import migrate  # noqa: E402
from ecovalue.app import create_app  # noqa: E402

#: the parts of a POST named in the report: (label, file fragment, function name)
PARTS = [
    ("whole request (full_dispatch_request)", "flask/app.py", "full_dispatch_request"),
    ("input screening (app._screen_request)", "ecovalue/app.py", "_screen_request"),
    ("  of which json_depth (numpy)", "ecovalue/app.py", "json_depth"),
    ("authentication (auth.services.authenticate)", "ecovalue/auth/services.py",
     "authenticate"),
    ("body parsing (marshmallow Schema.load)", "marshmallow/schema.py", "load"),
    ("the ledger service (create_transaction)", "ledger/core/services/transactions.py",
     "create_transaction"),
    ("  look-up (posting.look_up)", "ledger/core/posting.py", "look_up"),
    ("  validation (posting.prepare)", "ledger/core/posting.py", "prepare"),
    ("  write (posting.write)", "ledger/core/posting.py", "write"),
    ("    audit event content (before: record_many)", "ecovalue/audit/services.py",
     "record_many"),
    ("    audit event content (after: _events)", "ecovalue/audit/services.py", "_events"),
    ("response serialisation (marshmallow Schema.dump)", "marshmallow/schema.py", "dump"),
    ("commit (Session.commit)", "sqlalchemy/orm/session.py", "commit"),
    ("SQLAlchemy statement execution (Connection.execute)", "sqlalchemy/engine/base.py",
     "execute"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite file)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--hot", action="store_true", help="every transfer via one account")
    parser.add_argument("--no-key", action="store_true", help="without an Idempotency-Key")
    parser.add_argument("--bare", action="store_true",
                        help="profile the bare endpoint of bench/ledger_app.py instead")
    args = parser.parse_args()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, drop = make_database(args.database_url, tmp)
        try:
            migrate.upgrade(url)
            app = create_app({"DATABASE_URL": url, "DATA_KEY": DATA_KEY,
                              "INSTANCE_DIR": str(tmp), "LOG_LEVEL": "WARNING"})
            add_bare(app)
            db = app.extensions["ecovalue.db"]
            codes, token = seed(db)
            holdings = codes[:HOLDINGS]
            client = app.test_client()
            run = uuid.uuid4().hex[:8]
            counter = iter(range(10**9))

            def bare() -> None:
                headers = {"Authorization": f"Bearer {token}"}
                if not args.no_key:
                    headers["Idempotency-Key"] = f"{run}-{next(counter)}"
                response = client.post("/bench/bare", headers=headers,
                                       json={"n": next(counter), "memo": "x" * 40})
                assert response.status_code == 201, response.get_data(as_text=True)

            def ledger_post() -> None:
                a, b = ("HOT", rng.choice(holdings)) if args.hot else rng.sample(holdings, 2)
                amount = rng.randint(1, 1000)
                headers = {"Authorization": f"Bearer {token}"}
                if not args.no_key:
                    headers["Idempotency-Key"] = f"{run}-{next(counter)}"
                response = client.post("/ledger/transactions", headers=headers, json={
                    "type": "transfer", "postings": [
                        {"account": a, "asset": "CNY", "direction": "debit", "amount": amount},
                        {"account": b, "asset": "CNY", "direction": "credit",
                         "amount": amount}]})
                assert response.status_code == 201, response.get_data(as_text=True)

            def best_of_three(request: Callable[[], None]) -> list[float]:
                for _ in range(50):
                    request()
                rounds = []
                for _ in range(3):
                    started, cpu = time.perf_counter(), time.process_time()
                    for _ in range(args.requests):
                        request()
                    rounds.append((time.perf_counter() - started) / args.requests)
                    cpu_rounds.setdefault(request.__name__, []).append(
                        (time.process_time() - cpu) / args.requests)
                return rounds

            cpu_rounds: dict[str, list[float]] = {}

            bare_rounds = best_of_three(bare)
            post = bare if args.bare else ledger_post
            rounds = best_of_three(ledger_post) if not args.bare else bare_rounds
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.requests):
                post()
            profile.disable()
            print(f"database: {db.dialect}; {args.requests} in-process POSTs "
                  f"{'to the bare endpoint ' if args.bare else ''}"
                  f"{'(one hot account) ' if args.hot else ''}"
                  f"{'without' if args.no_key else 'with'} an Idempotency-Key")
            print(f"wall time per POST, no profiler: best {min(rounds) * 1000:.2f} ms "
                  f"(rounds {', '.join(f'{r * 1000:.2f}' for r in rounds)} ms)")
            if not args.bare:
                print(f"bare endpoint, same client and app: best {min(bare_rounds) * 1000:.2f} ms "
                      f"(rounds {', '.join(f'{r * 1000:.2f}' for r in bare_rounds)} ms); "
                      f"in-process ratio bare / POST = {min(bare_rounds) / min(rounds):.2f}")
            cpu = {name: min(values) * 1000 for name, values in cpu_rounds.items()}
            print("this process's CPU time per POST (best of three; the database server's "
                  "not counted): " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu.items())
                  + (f"; ratio bare / POST = {cpu['bare'] / cpu['ledger_post']:.2f}"
                     if len(cpu) == 2 else ""))
            stats = pstats.Stats(profile)
            total = stats.total_tt  # type: ignore[attr-defined]
            print(f"profiled: {total / args.requests * 1000:.2f} ms per POST")
            raw = stats.stats  # type: ignore[attr-defined]
            for label, fragment, function in PARTS:
                found = [(nc, ct) for (file, _line, name), (_cc, nc, _tt, ct, _callers)
                         in raw.items() if name == function and fragment in file]
                cumulative = sum(ct for _, ct in found)
                calls = sum(nc for nc, _ in found)
                print(f"  {label:<52} {cumulative / args.requests * 1000:6.2f} ms   "
                      f"({calls / args.requests:.1f} calls per POST)")
            sqlite_calls, waits = driver_calls(profile)
            print(f"  sqlite3 execute/executemany calls per POST: "
                  f"{sqlite_calls / args.requests:.1f}; psycopg waits for the server per "
                  f"POST: {waits / args.requests:.1f}")
            print_top(profile, args.top)
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
