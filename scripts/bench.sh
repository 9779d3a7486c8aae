#!/usr/bin/env bash
# Every benchmark in bench/, on SQLite and on a throwaway PostgreSQL with default durability.
# Each prints its own throughput and its ratio against a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "== GEP grid valuation (1,000,000 cells) =="
$py bench/bench_valuation.py
echo; echo "== GEP from rasters (18.7 M cells of 30 m, every factor a GeoTIFF) =="
$py bench/bench_raster.py
echo; echo "== catalog import, SQLite =="
$py bench/bench_import.py
echo; echo "== ledger, SQLite =="
$py bench/bench_ledger.py
echo; echo "== carbon registry, SQLite =="
$py bench/bench_registry.py
echo; echo "== reconciliation matching (1,000,000 lines x 1,000,000 payments) =="
$py bench/bench_reconcile.py
echo; echo "== benefit-sharing distribution (100,000 households), SQLite =="
$py bench/bench_distribution.py
echo; echo "== offset market, SQLite =="
$py bench/bench_market.py
export ECOVALUE_PG_DURABLE=1
scripts/with-postgres.sh bash -c '
  echo; echo "== catalog import, PostgreSQL =="
  .venv/bin/python bench/bench_import.py --database-url "$ECOVALUE_TEST_DATABASE_URL"
  echo; echo "== ledger, PostgreSQL =="
  .venv/bin/python bench/bench_ledger.py --database-url "$ECOVALUE_TEST_DATABASE_URL"
  echo; echo "== carbon registry, PostgreSQL =="
  .venv/bin/python bench/bench_registry.py --database-url "$ECOVALUE_TEST_DATABASE_URL"
  echo; echo "== benefit-sharing distribution, PostgreSQL =="
  .venv/bin/python bench/bench_distribution.py --database-url "$ECOVALUE_TEST_DATABASE_URL"
  echo; echo "== offset market, PostgreSQL =="
  .venv/bin/python bench/bench_market.py --database-url "$ECOVALUE_TEST_DATABASE_URL"
'
