"""Benchmark of a benefit-sharing distribution, with its baseline measured in the same run.

    .venv/bin/python bench/bench_distribution.py                 # 100,000 households, SQLite
    .venv/bin/python bench/bench_distribution.py --size 10000
    .venv/bin/python bench/bench_distribution.py --database-url postgresql+psycopg://...

(a) a distribution to N households of one village by the Sanming rule (collective 30 %,
    villagers 70 % by shares): `runs.prepare_run` (register as of the record date, the rule,
    the allocation, every line stored with its digest) then `runs.approve_run` (four eyes,
    fund check, attribution to the fund's inflows, one `ledger.core.post_batch` of
    ceil(N / 999) transactions with N + 1 credits and their debits, guard, balances, audit;
    at this size it takes the staged, set-based path, `ledger.core.staged`), each committed;
(b) the baseline: the same largest-remainder allocation (numpy) plus a raw DBAPI
    `executemany` of the same transaction header and posting rows into the ledger's tables (no
    register, rules, checks, balances, lines or audit), committed;
(c) the two traceability queries over that run: where a plant's payment went (every
    household) and where one household's receipt came from.

The setup (N household parties, their register entries and their ledger accounts) is written
set-based straight into the tables: it is not what is measured. With a PostgreSQL URL the
benchmark creates (and drops) its own database on that server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.models import Party  # noqa: E402
from catalog.services import load_reference_regions  # noqa: E402
from ecovalue import migrate, protect  # noqa: E402
from ecovalue.auth import system_principal  # noqa: E402
from ecovalue.auth.policy import Principal, Role  # noqa: E402
from ecovalue.clock import local_date, utcnow  # noqa: E402
from ecovalue.db import Database, bulk_insert_records  # noqa: E402
from ledger import core  # noqa: E402
from ledger.core.models import LedgerAccount, LedgerBalance  # noqa: E402
from ledger.sharing import allocation  # noqa: E402
from ledger.sharing.models import SharingAccount, SharingRegisterEntry  # noqa: E402
from ledger.sharing.services import config, runs, trace  # noqa: E402

ACTOR = system_principal("bench")
PREPARER = Principal(role=Role.FINANCE, label="bench:preparer", token_id=1)
APPROVER = Principal(role=Role.FINANCE, label="bench:approver", token_id=2)
RULE = {"kind": "villages", "basis": "households", "parts": [
    {"kind": "collective", "label": "collective", "share_bp": 3000},
    {"kind": "households", "label": "villagers", "basis": "shares", "share_bp": 7000}]}
JOINED = dt.date(2025, 1, 1)


def make_database(url: str | None, tmp: Path) -> tuple[str, Any]:
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


def seed(db: Database, size: int) -> tuple[int, list[int], list[int]]:
    """A village with `size` households (register entries, accounts), a fund fed by two
    plants; returns (collective id, household ids, the plants' payment transaction ids)."""
    rng = np.random.default_rng(12)
    now = utcnow()
    with db.unit_of_work() as s:
        load_reference_regions(s)
        bureau = Party(kind="government", name_zh="州财政局", region_code="522300", attributes={})
        village = Party(kind="village_collective", name_zh="基准村", region_code="522326",
                        attributes={})
        plants = [Party(kind="enterprise", name_zh=f"电厂{i}", region_code="522301",
                        credit_code=f"91522301MA6H0000{i}X", attributes={}) for i in (1, 2)]
        s.add_all([bureau, village, *plants])
        s.flush()
        core.create_asset(s, ACTOR, code="CNY", kind="currency", name_zh="人民币")
        core.create_account(s, ACTOR, party_id=bureau.id, asset="CNY", kind="external",
                            code="BANK")
        core.create_account(s, ACTOR, party_id=bureau.id, asset="CNY", kind="fund", code="FUND")
        core.create_account(s, ACTOR, party_id=village.id, asset="CNY", kind="holding",
                            code="VILLAGE")
        s.add(SharingAccount(party_id=village.id, account_code="VILLAGE"))
        for i, plant in enumerate(plants):
            core.create_account(s, ACTOR, party_id=plant.id, asset="CNY", kind="holding",
                                code=f"PLANT{i}")
        protector = protect.protector()
        start = (s.scalar(sa.select(sa.func.max(Party.id))) or 0) + 1
        ids = list(range(start, start + size))
        bulk_insert_records(s, Party.__table__, [{
            "id": pid, "kind": "household", "name_zh": f"户{pid}", "region_code": "522326",
            "bank_account_encrypted": protector.encrypt(f"62179952{pid:011d}") if i < 1000
            else None, "bank_account_masked": f"***{pid % 10000:04d}", "attributes": {},
            "version": 1, "created_at": now, "updated_at": now, "active": True}
            for i, pid in enumerate(ids)])
        shares = rng.integers(1, 20, size)
        bulk_insert_records(s, SharingRegisterEntry.__table__, [{
            "collective_party_id": village.id, "household_party_id": pid,
            "effective_date": JOINED, "status": "member", "shares": int(sh), "members": 3,
            "trees": 0, "area_m2": 0, "reason": None, "created_by": "bench", "created_at": now}
            for pid, sh in zip(ids, shares, strict=True)])
        asset_id = core.get_asset(s, ACTOR, "CNY").id
        account_start = (s.scalar(sa.select(sa.func.max(LedgerAccount.id))) or 0) + 1
        bulk_insert_records(s, LedgerAccount.__table__, [{
            "id": account_start + i, "code": f"P{pid}-HOLDING-CNY", "name": f"户{pid}",
            "party_id": pid, "asset_id": asset_id, "kind": "holding", "no_overdraft": True,
            "attributes": {}, "created_by": "bench", "created_at": now}
            for i, pid in enumerate(ids)])
        bulk_insert_records(s, LedgerBalance.__table__, [{
            "account_id": account_start + i, "posted_debits": 0, "posted_credits": 0,
            "pending_debits": 0, "pending_credits": 0, "version": 0, "updated_at": now}
            for i in range(size)])
        bulk_insert_records(s, SharingAccount.__table__, [
            {"party_id": pid, "account_code": f"P{pid}-HOLDING-CNY"} for pid in ids])
        paid = []
        for i in range(2):
            code = f"PLANT{i}"
            core.post(s, ACTOR, _transfer("BANK", code, 10**12))
            paid.append(core.post(s, ACTOR, _transfer(code, "FUND", (6 - i) * 10**9)).id)
        config.register_fund(s, ACTOR, account_code="FUND", name_zh="基金")
        config.create_rule(s, ACTOR, code="SANMING", name_zh="三明", name_en=None,
                           source_kind="fund", source_ref="FUND", definition=RULE)
    return village.id, ids, paid


def _transfer(source: str, target: str, amount: int) -> core.TransactionSpec:
    return core.TransactionSpec(type="compensation", postings=[
        core.PostingSpec(source, "CNY", "debit", amount),
        core.PostingSpec(target, "CNY", "credit", amount)])


def service(db: Database, village: int, amount: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    with db.unit_of_work() as s:
        run = runs.prepare_run(s, PREPARER, reference="BENCH-1", fund_code="FUND",
                               rule_code="SANMING", amount_fen=amount,
                               collective_party_ids=[village],
                               record_date=local_date(utcnow())).run
        run_id = run.id
    prepared = time.perf_counter()
    with db.unit_of_work() as s:
        runs.approve_run(s, APPROVER, run_id)
    return prepared - started, time.perf_counter() - prepared, run_id


def baseline(db: Database, village: int, ids: list[int], amount: int) -> float:
    """The same allocation and ledger rows, raw: numpy + executemany, nothing else."""
    with db.session(write=True) as s:
        accounts = dict(s.execute(sa.text("SELECT party_id, id FROM ledger_accounts "
                                          "WHERE kind = 'holding'")).all())
        fund = s.execute(sa.text("SELECT id FROM ledger_accounts WHERE code = 'FUND'")).scalar()
        asset_id = s.execute(sa.text("SELECT id FROM ledger_assets WHERE code='CNY'")).scalar()
        shares = dict(s.execute(sa.text(
            "SELECT household_party_id, shares FROM sharing_register_entries")).all())
        start_id = s.execute(sa.text("SELECT coalesce(max(id), 0) FROM ledger_transactions")
                             ).scalar() + 1_000_000
        s.rollback()
    sqlite = db.dialect == "sqlite"
    now = utcnow()
    stamp = now.replace(tzinfo=None).isoformat(" ") if sqlite else now
    day = local_date(now).isoformat() if sqlite else local_date(now)
    started = time.perf_counter()
    collective, villagers = allocation.split_bp(amount, [3000, 7000]).tolist()
    weights = np.array([shares[h] for h in ids], dtype=np.int64)
    parts = [collective, *allocation.largest_remainder(villagers, weights).tolist()]
    targets = [accounts[village], *(accounts[h] for h in ids)]
    headers, postings = [], []
    for n, first in enumerate(range(0, len(parts), runs.CREDITS_PER_TRANSACTION)):
        tx_id = start_id + n
        chunk = range(first, min(first + runs.CREDITS_PER_TRANSACTION, len(parts)))
        headers.append((tx_id, "sharing.distribution", "posted", day, None, None,
                        "system:bench", stamp))
        postings.append((tx_id, fund, asset_id, "debit", sum(parts[i] for i in chunk), day,
                         False))
        postings.extend((tx_id, targets[i], asset_id, "credit", parts[i], day, False)
                        for i in chunk if parts[i] > 0)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        mark = "?" if sqlite else "%s"
        cursor.executemany("INSERT INTO ledger_transactions (id, type, phase, effective_date, "
                           "memo, metadata, author, created_at) VALUES "
                           f"({', '.join([mark] * 8)})", headers)
        cursor.executemany("INSERT INTO ledger_postings (transaction_id, account_id, asset_id, "
                           "direction, amount, effective_date, pending) VALUES "
                           f"({', '.join([mark] * 7)})", postings)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def traceability(db: Database, payment: int, household: int) -> tuple[float, float, int, int]:
    with db.session(write=False) as s:
        started = time.perf_counter()
        went = trace.trace_payment(s, ACTOR, payment, detail=True)
        payment_seconds = time.perf_counter() - started
        started = time.perf_counter()
        came = trace.trace_household(s, ACTOR, household)
        household_seconds = time.perf_counter() - started
    assert sum(r.amount_fen for r in went["recipients"]) + went["undistributed_fen"] == \
        went["amount_fen"]
    assert all(sum(x["amount_fen"] for x in r["sources"]) == r["amount_fen"]
               for r in came["receipts"])
    return payment_seconds, household_seconds, len(went["recipients"]), \
        len(came["receipts"][0]["sources"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="households")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    protect.configure(protect.new_key())
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = make_database(args.database_url, Path(tmp))
        try:
            migrate.upgrade(url)
            db = Database(url)
            started = time.perf_counter()
            village, ids, payments = seed(db, args.size)
            print(f"setup: {args.size:,} households in {time.perf_counter() - started:.1f} s "
                  f"({db.dialect})")
            amount = 9_876_543_21  # 9,876,543.21 yuan of the fund's 11,000,000.00
            raw_seconds = baseline(db, village, ids, amount)
            prepare_seconds, approve_seconds, run_id = service(db, village, amount)
            total = prepare_seconds + approve_seconds
            print(f"(a) distribution to {args.size:,} households: {total:.2f} s "
                  f"(prepare {prepare_seconds:.2f} s, approve and pay {approve_seconds:.2f} s)")
            print(f"(b) baseline, raw allocation + executemany of the same rows: "
                  f"{raw_seconds:.2f} s")
            print(f"    ratio baseline / service: {raw_seconds / total:.2f} (aim >= 0.5)")
            pay_s, hh_s, recipients, sources = traceability(db, payments[0], ids[len(ids) // 2])
            print(f"(c) where a plant's payment went ({recipients:,} recipients): "
                  f"{pay_s:.2f} s; where a household's receipt came from ({sources} sources): "
                  f"{hh_s:.2f} s")
            with db.session(write=False) as s:
                assert runs.get_run(s, run_id).status == "paid"
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
