"""Benchmark of the carbon registry against plain ledger postings, measured in the same run.

    .venv/bin/python bench/bench_registry.py                       # SQLite (temporary file)
    .venv/bin/python bench/bench_registry.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/bench_registry.py --operations 20000

One batch is issued to an owner and spread over 1,000 accounts; then N movements of random
sizes (80 % transfers between random accounts, 20 % retirements) run through the registry
(`ledger.carbon.services.credits`: ledger posting + serial-block bookkeeping + event, one unit
of work each), and the SAME movements run as plain `ledger.core.post` transactions between
1,000 plain accounts of a second asset (one unit of work each). Blocks fragment as credits
move. Prints operations per second of both, their ratio (the cost of serial-block tracking),
and the time of a holdings-by-batch query after the run. With a PostgreSQL URL the benchmark
creates (and drops) its own database on that server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.models import Party  # noqa: E402
from catalog.services import load_reference_regions, monitoring, products  # noqa: E402
from ecovalue import migrate, protect  # noqa: E402
from ecovalue.auth import system_principal  # noqa: E402
from ecovalue.db import Database  # noqa: E402
from ledger import core as ledger  # noqa: E402
from ledger.carbon.models import CarbonBlock  # noqa: E402
from ledger.carbon.services import credits, parameters, projects, registry, reports  # noqa: E402

ACTOR = system_principal("bench")
ACCOUNTS = 1000
NOW = dt.datetime(2025, 3, 20, 4, 0, tzinfo=dt.UTC)


def make_database(url: str | None, tmp: Path) -> tuple[str, Callable[[], None]]:
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


def seed(db: Database, issued_t: int) -> tuple[str, list[int]]:
    """Operator, owner and 999 more parties, a project on one parcel, a batch of about
    `issued_t` tonnes spread over the 1,000 parties' accounts. Returns (batch, party ids)."""
    with db.unit_of_work() as s:
        load_reference_regions(s)
        operator = Party(kind="government", name_zh="黔西南州自然资源局", region_code="522300",
                         attributes={})
        s.add(operator)
        parties = [Party(kind="village_collective", name_zh=f"村集体 {i}",
                         region_code="522326", attributes={}) for i in range(ACCOUNTS)]
        s.add_all(parties)
        s.flush()
        parameters.set_operator(s, ACTOR, operator.id)
        product = products.create_product(s, ACTOR, {
            "name_zh": "基准地块", "type_code": "forest_carbon_sink", "region_code": "522326",
            "holder_party_id": parties[0].id, "rights_type": "ownership", "area_ha": 1000.0})
        products.transition_product(s, ACTOR, product.id, "submit")
        products.transition_product(s, ACTOR, product.id, "verify")
        # Chinese fir: 1.1917 tCO2e per m3 of stem volume
        for year, volume in ((2020, 1000.0), (2021, 1000.0 + issued_t / 1.19174 / 0.8)):
            monitoring.create_record(s, ACTOR, product.id, {
                "period_year": year, "metric": "stock_volume", "value": volume, "unit": "m3",
                "method": "field_survey", "source": "bench"})
        project = projects.create_project(s, ACTOR, {
            "code": "BENCH-1", "name_zh": "基准项目", "methodology": "afforestation",
            "region_codes": ["522326"], "developer_party_id": parties[0].id,
            "owner_party_id": parties[0].id, "parcel_ids": [product.id],
            "species_composition": {"cunninghamia": 1.0},
            "crediting_start": dt.date(2021, 1, 1), "crediting_end": dt.date(2050, 12, 31)},
            now=NOW)
        for name in ("validate", "register", "activate"):
            projects.transition_project(s, ACTOR, project.id, name, now=NOW)
        report = reports.file_report(s, ACTOR, project.id, period_start=dt.date(2021, 1, 1),
                                     period_end=dt.date(2021, 12, 31), source="catalog",
                                     now=NOW)
        reports.verify_report(s, ACTOR, report.id, now=NOW)
        batch = credits.issue(s, ACTOR, report.id, now=NOW)
        ids = [p.id for p in parties]
        share = batch.owner_t // ACCOUNTS
        owner = f"P{ids[0]}-HOLDING-{batch.asset_code}"
        for party in ids[1:]:
            credits.transfer(s, ACTOR, account=owner, to_party_id=party, quantity_t=share,
                             now=NOW)
        return batch.asset_code, ids


def plain_accounts(db: Database, ids: list[int], balances: list[int]) -> list[str]:
    """A second asset with 1,000 plain ledger accounts holding the same balances."""
    with db.unit_of_work() as s:
        ledger.create_asset(s, ACTOR, code="PLAIN-2021", kind="carbon_credit",
                            name_zh="基准", vintage_year=2021, batch_reference="PLAIN-2021")
        ledger.create_account(s, ACTOR, party_id=ids[0], asset="PLAIN-2021", kind="external",
                              code="PLAIN-ISSUER")
        ledger.create_account(s, ACTOR, party_id=ids[0], asset="PLAIN-2021",
                              kind="retirement", code="PLAIN-RETIRED")
        codes = []
        for i, party in enumerate(ids):
            code = f"PLAIN-{i}"
            ledger.create_account(s, ACTOR, party_id=party, asset="PLAIN-2021", kind="holding",
                                  code=code)
            codes.append(code)
        for first in range(0, len(codes), 500):  # at most 1,000 postings per transaction
            chunk = range(first, min(first + 500, len(codes)))
            legs = [ledger.PostingSpec("PLAIN-ISSUER", "PLAIN-2021", "debit",
                                       sum(balances[i] for i in chunk))]
            legs += [ledger.PostingSpec(codes[i], "PLAIN-2021", "credit", balances[i])
                     for i in chunk if balances[i]]
            ledger.post(s, ACTOR, ledger.TransactionSpec(type="issuance", postings=legs),
                        now=NOW)
    return codes


def movements(balances: list[int], n: int, seed: int) -> list[tuple[str, int, int, int]]:
    """N movements (kind, source index, target index, tonnes) that the balances allow."""
    rng = random.Random(seed)
    held = list(balances)
    out: list[tuple[str, int, int, int]] = []
    while len(out) < n:
        source = rng.randrange(ACCOUNTS)
        if held[source] == 0:
            continue
        amount = rng.randint(1, min(held[source], 50))
        if rng.random() < 0.8:
            target = rng.randrange(ACCOUNTS - 1)
            target += target >= source
            held[source] -= amount
            held[target] += amount
            out.append(("transfer", source, target, amount))
        else:
            held[source] -= amount
            out.append(("retire", source, -1, amount))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20250320)
    args = parser.parse_args()
    protect.configure(protect.new_key())
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = make_database(args.database_url, Path(tmp))
        try:
            migrate.upgrade(url)
            db = Database(url)
            issued = args.operations * 30
            batch, ids = seed(db, issued)
            with db.session(write=False) as s:
                balances = [ledger.account_balance(s, ACTOR, f"P{p}-HOLDING-{batch}").balance
                            for p in ids]
            codes = plain_accounts(db, ids, balances)
            plan = movements(balances, args.operations, args.seed)
            holders = [f"P{p}-HOLDING-{batch}" for p in ids]

            started = time.perf_counter()
            for kind, source, target, amount in plan:
                with db.unit_of_work() as s:
                    if kind == "transfer":
                        credits.transfer(s, ACTOR, account=holders[source],
                                         to_party_id=ids[target], quantity_t=amount, now=NOW)
                    else:
                        credits.retire(s, ACTOR, account=holders[source], quantity_t=amount,
                                       beneficiary_name="bench", purpose="voluntary", now=NOW)
            registry_s = time.perf_counter() - started

            started = time.perf_counter()
            for kind, source, target, amount in plan:
                to = codes[target] if kind == "transfer" else "PLAIN-RETIRED"
                with db.unit_of_work() as s:
                    ledger.post(s, ACTOR, ledger.TransactionSpec(type=kind, postings=[
                        ledger.PostingSpec(codes[source], "PLAIN-2021", "debit", amount),
                        ledger.PostingSpec(to, "PLAIN-2021", "credit", amount)]), now=NOW)
            plain_s = time.perf_counter() - started

            with db.session(write=False) as s:
                started = time.perf_counter()
                rows = registry.holdings(s, batch)
                holdings_ms = (time.perf_counter() - started) * 1000
                blocks = s.scalar(sa.select(sa.func.count()).select_from(CarbonBlock))
                started = time.perf_counter()
                problems = registry.verify(s, ACTOR)
                verify_s = time.perf_counter() - started
            n = len(plan)
            retirements = sum(k == "retire" for k, *_ in plan)
            print(f"database: {db.dialect}; {n:,} movements ({retirements:,} retirements) of "
                  f"1-50 t among {ACCOUNTS:,} accounts on one batch")
            print(f"registry (posting + serial blocks + event): {n / registry_s:,.0f} ops/s "
                  f"({registry_s:.1f} s)")
            print(f"plain ledger postings, same movements:     {n / plain_s:,.0f} ops/s "
                  f"({plain_s:.1f} s)")
            print(f"ratio registry / plain ledger: {plain_s / registry_s:.2f}")
            print(f"after the run: {blocks:,} serial blocks; holdings-by-batch query "
                  f"({len(rows):,} accounts): {holdings_ms:.1f} ms; registry verify "
                  f"{verify_s:.1f} s, {len(problems)} problems")
            db.dispose()
        finally:
            drop()


if __name__ == "__main__":
    main()
