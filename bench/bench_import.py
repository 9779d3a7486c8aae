"""Benchmark: bulk import of product rows through the catalog service, against a baseline of
`pandas.read_csv` plus a raw DBAPI `executemany` of the same rows into the same table, measured
in the same run.

    .venv/bin/python bench/bench_import.py                  # 100,000 rows, SQLite
    .venv/bin/python bench/bench_import.py --rows 20000
    .venv/bin/python bench/bench_import.py --database-url \
        postgresql+psycopg://postgres@127.0.0.1:55432/postgres

The service does everything a real import does: decode (UTF-8/GBK), map headers, validate every
cell, check units against each type's dimension, look regions and holders up set-based, match
natural keys, insert products and their version history in bulk, and append one audit event for
the batch. The baseline only parses and inserts. Each path gets a freshly migrated database.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog import vocabulary
from catalog.models import Product
from catalog.services import importing, parties, regions
from catalog.services.regions import load_reference_regions
from ecovalue import migrate, protect
from ecovalue.auth import system_principal
from ecovalue.db import Database, utcnow

VILLAGES = 100
HOLDERS = 20
#: (type, unit) pairs cycled through the rows; units have the type's dimension
TYPES = [("tea", "t"), ("oil_tea", "万斤"), ("walnut", "kg"), ("timber_forest", "m3"),
         ("forest_carbon_sink", "tCO2/a"), ("water_conservation_area", "万m3/a"),
         ("karst_landscape", "万人次"), ("understory_fungi", "t")]


def make_csv(rows: int, holder_ids: list[int]) -> bytes:
    lines = ["external_code,name_zh,type,region_code,holder,rights_type,area_ha,latitude,"
             "longitude,quantity,quantity_unit,development_status,certifications"]
    for i in range(rows):
        type_code, unit = TYPES[i % len(TYPES)]
        village = f"522326101{201 + i % VILLAGES:03d}"
        lines.append(
            f"B-{i:07d},产品{i:07d},{type_code},{village},#{holder_ids[i % len(holder_ids)]},"
            f"{'ownership' if i % 3 else 'contract_management'},{1 + (i % 997) / 10:.1f},"
            f"{25.0 + (i % 100) / 100:.4f},{106.0 + (i % 50) / 100:.4f},{(i % 431) + 0.5},"
            f"{unit},developed,绿色食品")
    return ("\n".join(lines) + "\n").encode("utf-8")


class Server:
    """Fresh databases: SQLite files in a temp dir, or databases on a PostgreSQL server."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.created: list[str] = []
        self.tmp = tempfile.mkdtemp(prefix="bench-import-")

    def fresh(self, label: str) -> str:
        if not self.url:
            return f"sqlite:///{self.tmp}/{label}.sqlite3"
        name = f"bench_import_{label}_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self.created.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if not self.url:
            return
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def prepare(url: str) -> tuple[Database, list[int]]:
    migrate.upgrade(url)
    database = Database(url)
    actor = system_principal("bench")
    with database.unit_of_work() as s:
        load_reference_regions(s)
        regions.create_region(s, actor, code="522326101", name_zh="基准镇")
        for v in range(VILLAGES):
            regions.create_region(s, actor, code=f"522326101{201 + v:03d}", name_zh=f"基准村{v}")
        holder_ids = [parties.create_party(s, actor, {
            "kind": "village_collective", "name_zh": f"基准村集体{h}",
            "region_code": f"522326101{201 + h:03d}"}).id for h in range(HOLDERS)]
    return database, holder_ids


def run_service(database: Database, data: bytes) -> tuple[float, object]:
    actor = system_principal("bench")
    started = time.perf_counter()
    with database.unit_of_work() as s:
        report = importing.import_products(s, actor, data, "bench.csv")
    return time.perf_counter() - started, report


def run_dry(database: Database, data: bytes) -> float:
    started = time.perf_counter()
    with database.unit_of_work() as s:
        importing.import_products(s, system_principal("bench"), data, "bench.csv", dry_run=True)
    return time.perf_counter() - started


def run_baseline(database: Database, data: bytes) -> float:
    """pandas.read_csv + one raw executemany of the same rows (no checks, no history, no audit)."""
    categories = {c: t.category for c, t in vocabulary.product_types().items()}
    columns = [c.name for c in Product.__table__.columns if c.name != "id"]
    placeholders = ", ".join(["?" if database.dialect == "sqlite" else "%s"] * len(columns))
    sql = f"INSERT INTO products ({', '.join(columns)}) VALUES ({placeholders})"
    started = time.perf_counter()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    now = utcnow()
    stamp = now.replace(tzinfo=None) if database.dialect == "sqlite" else now
    records = []
    for r in frame.itertuples(index=False):
        values = {
            "external_code": r.external_code, "name_zh": r.name_zh, "name_en": None,
            "category": categories[r.type], "type_code": r.type, "region_code": r.region_code,
            "county_code": r.region_code[:6], "holder_party_id": int(r.holder[1:]),
            "rights_type": r.rights_type, "area_ha": float(r.area_ha),
            "latitude": float(r.latitude), "longitude": float(r.longitude),
            "grid_cell_id": None, "quantity": float(r.quantity),
            "quantity_unit": r.quantity_unit, "quality_grade": None,
            "development_status": r.development_status, "brand": None,
            "certifications": '["绿色食品"]', "attributes": "{}", "status": "registered",
            "version": 1, "verified_at": None, "verified_by": None, "created_at": stamp,
            "created_by": "bench", "updated_at": stamp, "updated_by": "bench",
        }
        records.append(tuple(values[c] for c in columns))
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if database.dialect == "sqlite":
            cursor.execute("BEGIN")
        cursor.executemany(sql, records)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def count_products(database: Database) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Product))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="PostgreSQL server URL (default: SQLite files in a temp dir)")
    args = parser.parse_args()
    protect.configure(protect.new_key())
    server = Server(args.database_url)
    try:
        service_db, holders = prepare(server.fresh("service"))
        baseline_db, baseline_holders = prepare(server.fresh("baseline"))
        assert holders == baseline_holders
        data = make_csv(args.rows, holders)
        dialect = service_db.dialect
        print(f"bench_import: {args.rows:,} product rows ({len(data) / 1e6:.1f} MB CSV) "
              f"on {dialect}")

        baseline_s = run_baseline(baseline_db, data)
        assert count_products(baseline_db) == args.rows
        dry_s = run_dry(service_db, data)
        service_s, report = run_service(service_db, data)
        assert count_products(service_db) == args.rows and report.created == args.rows
        again_s, again = run_service(service_db, data)
        assert again.unchanged == args.rows and count_products(service_db) == args.rows

        def line(label: str, seconds: float) -> str:
            return (f"  {label:<44} {seconds:7.2f} s  {args.rows / seconds:>10,.0f} rows/s  "
                    f"{seconds / baseline_s:5.2f}x baseline")

        print(line("baseline: pandas.read_csv + raw executemany", baseline_s))
        print(line("service: dry run (all checks, no writes)", dry_s))
        print(line("service: import (checks, history, audit)", service_s))
        print(line("service: re-import of the same file", again_s))
        print(f"ratio service import / baseline = {service_s / baseline_s:.2f} "
              f"(service {args.rows / service_s:,.0f} rows/s)")
        service_db.dispose()
        baseline_db.dispose()
    finally:
        server.close()


if __name__ == "__main__":
    main()
