"""Benchmark of the ledger core, each figure with a baseline measured in the same run.

    .venv/bin/python bench/bench_ledger.py                        # SQLite (temporary file)
    .venv/bin/python bench/bench_ledger.py --database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python bench/bench_ledger.py --transactions 20000 --requests 500 --skip-http

(a) batch posting of N two-posting transactions through `services.post_batch` (validation,
    authorization, period check, id allocation, one lock pass, set-based inserts of headers and
    postings, balance update, audit) against a raw DBAPI `executemany` of the same header and
    posting rows into the same tables (no rules, no balances, no audit);
(b) single-transaction POSTs through the real HTTP stack (gunicorn, concurrent clients) against
    a bare endpoint of the benchmark's own WSGI module (bench/ledger_app.py) that authenticates
    and does one INSERT on the same server;
(c) the same, every transfer touching one hot account.

With a PostgreSQL URL the benchmark creates (and drops) its own database on that server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.models import Party  # noqa: E402
from catalog.services import load_reference_regions  # noqa: E402
from ecovalue import migrate, protect  # noqa: E402
from ecovalue.auth import system_principal  # noqa: E402
from ecovalue.auth.services import create_token  # noqa: E402
from ecovalue.clock import local_date, utcnow  # noqa: E402
from ecovalue.db import Database  # noqa: E402
from ledger.core import services  # noqa: E402
from ledger.core.posting import PostingSpec, TransactionSpec  # noqa: E402

ACTOR = system_principal("bench")
HOLDINGS = 100
DATA_KEY = protect.new_key()


# --- database -------------------------------------------------------------------------------


def make_database(url: str | None, tmp: Path) -> tuple[str, callable]:
    if not url:
        return f"sqlite:///{tmp / 'bench.sqlite3'}", lambda: None
    name = f"ecovalue_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def seed(db: Database) -> tuple[list[str], str]:
    """Party, CNY, the bank, 100 funded holdings and the hot fund; returns (codes, token)."""
    with db.unit_of_work() as s:
        load_reference_regions(s)
        party = Party(kind="government", name_zh="州财政局", region_code="522300", attributes={})
        s.add(party)
        s.flush()
        services.create_asset(s, ACTOR, code="CNY", kind="currency", name_zh="人民币")
        services.create_account(s, ACTOR, party_id=party.id, asset="CNY", kind="external",
                                code="BANK")
        codes = [f"H{i:03d}" for i in range(HOLDINGS)] + ["HOT"]
        for code in codes:
            services.create_account(s, ACTOR, party_id=party.id, asset="CNY",
                                    kind="fund" if code == "HOT" else "holding", code=code)
        services.post_batch(s, ACTOR, [TransactionSpec("deposit", [
            PostingSpec("BANK", "CNY", "debit", 10**12), PostingSpec(c, "CNY", "credit", 10**12)])
            for c in codes])
        token = create_token(s, ACTOR, name="bench", role="finance").secret
        s.execute(sa.text("CREATE TABLE bench_bare (id INTEGER PRIMARY KEY, payload TEXT)"
                          if db.dialect == "sqlite" else
                          "CREATE TABLE bench_bare (id BIGSERIAL PRIMARY KEY, payload TEXT)"))
    return codes, token


# --- (a) batch posting ------------------------------------------------------------------------


def batch_specs(n: int, codes: list[str], rng: random.Random) -> list[TransactionSpec]:
    holdings = codes[:HOLDINGS]
    specs = []
    for _ in range(n):
        a, b = rng.sample(holdings, 2)
        amount = rng.randint(1, 10_000)
        specs.append(TransactionSpec("transfer", [PostingSpec(a, "CNY", "debit", amount),
                                                  PostingSpec(b, "CNY", "credit", amount)]))
    return specs


def raw_executemany(db: Database, specs: list[TransactionSpec], *, copy: bool = False) -> float:
    """The same header and posting rows, inserted with the driver's executemany (or COPY)."""
    with db.session(write=True) as s:
        accounts = dict(s.execute(sa.text("SELECT code, id FROM ledger_accounts")).all())
        asset_id = s.execute(sa.text("SELECT id FROM ledger_assets WHERE code='CNY'")).scalar()
        start_id = s.execute(sa.text("SELECT coalesce(max(id), 0) FROM ledger_transactions")
                             ).scalar() + 1_000_000
        s.rollback()
    now = utcnow()
    today = local_date(now)
    sqlite = db.dialect == "sqlite"
    stamp = now.replace(tzinfo=None).isoformat(" ") if sqlite else now
    day = today.isoformat() if sqlite else today
    headers, postings = [], []
    for i, spec in enumerate(specs):
        tx_id = start_id + i
        headers.append((tx_id, spec.type, "posted", day, None, None, "system:bench", stamp))
        for p in spec.postings:
            postings.append((tx_id, accounts[p.account], asset_id, p.direction, p.amount, day,
                             False))
    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        header_sql = ("INSERT INTO ledger_transactions (id, type, phase, effective_date, memo, "
                      "metadata, author, created_at) VALUES ({})")
        posting_sql = ("INSERT INTO ledger_postings (transaction_id, account_id, asset_id, "
                       "direction, amount, effective_date, pending) VALUES ({})")
        if copy:
            with cursor.copy("COPY ledger_transactions (id, type, phase, effective_date, memo, "
                             "metadata, author, created_at) FROM STDIN") as c:
                for row in headers:
                    c.write_row(row)
            with cursor.copy("COPY ledger_postings (transaction_id, account_id, asset_id, "
                             "direction, amount, effective_date, pending) FROM STDIN") as c:
                for row in postings:
                    c.write_row(row)
        else:
            mark = "?" if sqlite else "%s"
            cursor.executemany(header_sql.format(", ".join([mark] * 8)), headers)
            cursor.executemany(posting_sql.format(", ".join([mark] * 7)), postings)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def service_batch(db: Database, specs: list[TransactionSpec]) -> float:
    started = time.perf_counter()
    with db.unit_of_work() as s:
        services.post_batch(s, ACTOR, specs, memo="bench")
    return time.perf_counter() - started


# --- (b), (c) HTTP ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, port: int, workers: int, tmp: Path, *,
                   audit: bool = True) -> subprocess.Popen:
    env = {**os.environ, "ECOVALUE_DATABASE_URL": url, "ECOVALUE_DATA_KEY": DATA_KEY,
           "ECOVALUE_INSTANCE_DIR": str(tmp), "ECOVALUE_LOG_LEVEL": "WARNING",
           "ECOVALUE_BENCH_AUDIT": "on" if audit else "off"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--pythonpath", str(ROOT / "bench"),
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
         "ledger_app:create()"], env=env, cwd=str(ROOT))
    deadline = time.monotonic() + 180  # 4 workers boot slowly on a shared machine
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def load(port: int, path: str, bodies: list[dict], token: str, clients: int
         ) -> tuple[float, list[float], dict[int, int]]:
    run = uuid.uuid4().hex[:8]
    """POST every body with `clients` threads; returns (seconds, latencies, status counts)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(enumerate(bodies))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, body = queue.pop()
            data = json.dumps(body)
            started = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", path, body=data, headers={**headers,
                                                           "Idempotency-Key": f"{run}-{i}"})
            status = conn.getresponse()
            status.read()
            conn.close()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status.status] = statuses.get(status.status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, statuses


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report(name: str, seconds: float, latencies: list[float], statuses: dict) -> float:
    rate = len(latencies) / seconds
    print(f"  {name:<34} {rate:8.1f} req/s   p50 {pct(latencies, 0.50):7.1f} ms   "
          f"p99 {pct(latencies, 0.99):7.1f} ms   statuses {statuses}")
    return rate


#: PostgreSQL, --audit-probe only: an `audit_append` that appends nothing and takes no lock
AUDIT_APPEND_STUB = """
CREATE OR REPLACE FUNCTION audit_append(lock_key integer, p_occurred_at timestamptz,
                                        p_actor text, p_request_id text, events json)
RETURNS bigint LANGUAGE sql VOLATILE AS $$ SELECT 0::bigint $$
"""


def http_benchmarks(url: str, codes: list[str], token: str, args: argparse.Namespace,
                    tmp: Path, rng: random.Random) -> None:
    port = free_port()
    proc = start_gunicorn(url, port, args.workers, tmp)
    try:
        holdings = codes[:HOLDINGS]

        def transfer(a: str, b: str) -> dict:
            amount = rng.randint(1, 1000)
            return {"type": "transfer", "postings": [
                {"account": a, "asset": "CNY", "direction": "debit", "amount": amount},
                {"account": b, "asset": "CNY", "direction": "credit", "amount": amount}]}

        n = args.requests
        warm = [transfer(*rng.sample(holdings, 2)) for _ in range(50)]
        load(port, "/ledger/transactions", warm, token, args.clients)
        load(port, "/bench/bare", [{"n": i} for i in range(50)], token, args.clients)
        spread = [transfer(*rng.sample(holdings, 2)) for _ in range(n)]
        hot = [transfer("HOT", rng.choice(holdings)) if i % 2 else
               transfer(rng.choice(holdings), "HOT") for i in range(n)]
        bare_bodies = [{"n": i, "memo": "x" * 40} for i in range(n)]
        print(f"(b)/(c) HTTP: gunicorn {args.workers} sync workers, {args.clients} client "
              f"threads, {n} POSTs each, Idempotency-Key on every request")
        bare1 = report("bare endpoint (1 INSERT)", *load(port, "/bench/bare", bare_bodies, token,
                                                          args.clients))
        spread_rate = report("(b) POST /ledger/transactions", *load(
            port, "/ledger/transactions", spread, token, args.clients))
        hot_rate = report("(c) same, all via one hot account", *load(
            port, "/ledger/transactions", hot, token, args.clients))
        bare2 = report("bare endpoint again", *load(port, "/bench/bare", bare_bodies[::-1][:n],
                                                     token, args.clients))
        bare = (bare1 + bare2) / 2
        print(f"  ratio (b) / bare = {spread_rate / bare:.2f}   (aim >= 0.6)")
        print(f"  ratio (c) / bare = {hot_rate / bare:.2f}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    if args.audit_probe:
        if make_url(url).get_backend_name() == "postgresql":
            # The ledger's write appends through `audit_append` inside its one statement (not
            # `audit.record`, which the bench app patches): for the probe, this throwaway
            # database's function appends nothing and takes no lock.
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(AUDIT_APPEND_STUB)
            engine.dispose()
        proc = start_gunicorn(url, port, args.workers, tmp, audit=False)
        try:
            hot = [transfer("HOT", rng.choice(holdings)) if i % 2 else
                   transfer(rng.choice(holdings), "HOT") for i in range(n)]
            spread = [transfer(*rng.sample(holdings, 2)) for _ in range(n)]
            print("  probe, audit.record disabled in the bench app (NOT the product):")
            probe_b = report("(b) without the audit append", *load(
                port, "/ledger/transactions", spread, token, args.clients))
            probe_c = report("(c) without the audit append", *load(
                port, "/ledger/transactions", hot, token, args.clients))
            print(f"  audit append costs (b) {1 - spread_rate / probe_b:.0%}, "
                  f"(c) {1 - hot_rate / probe_c:.0%} of the throughput; without it the "
                  f"ratios would be (b) {probe_b / bare:.2f}, (c) {probe_c / bare:.2f}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: SQLite file)")
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--audit-probe", action="store_true",
                        help="also measure (b)/(c) with the audit append disabled in the "
                             "bench app, to size the audit chain's share")
    args = parser.parse_args()
    rng = random.Random(20240320)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        url, drop = make_database(args.database_url, tmp)
        try:
            migrate.upgrade(url)
            db = Database(url)
            codes, token = seed(db)
            print(f"database: {db.dialect} ({make_url(url).render_as_string()})")
            if db.dialect == "postgresql":
                with db.engine.connect() as conn:
                    settings = {k: conn.exec_driver_sql(f"SHOW {k}").scalar()
                                for k in ("fsync", "synchronous_commit", "full_page_writes")}
                print(f"  server durability: {settings}")
            if not args.skip_batch:
                n = args.transactions
                specs = batch_specs(n, codes, rng)
                raw = raw_executemany(db, specs)
                service = service_batch(db, specs)
                print(f"(a) batch posting of {n:,} two-posting transactions")
                print(f"  raw executemany (no rules)         {n / raw:10,.0f} tx/s   {raw:6.2f} s")
                print(f"  services.post_batch                {n / service:10,.0f} tx/s   "
                      f"{service:6.2f} s")
                print(f"  ratio service / executemany = {raw / service:.2f}   (aim >= 0.5)")
                if db.dialect == "postgresql":
                    copy = raw_executemany(db, specs, copy=True)
                    print(f"  (for reference: raw COPY {n / copy:,.0f} tx/s; ratio service / "
                          f"COPY = {copy / service:.2f})")
                with db.session(write=False) as s:
                    problems = [p for p in services.verify(s, ACTOR)
                                if "stored totals" in p and "account" in p]
                print(f"  (the baseline's rows bypass the balances on purpose: "
                      f"{len(problems)} accounts out of step, as expected)")
            if not args.skip_http:
                http_benchmarks(url, codes, token, args, tmp, rng)
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
