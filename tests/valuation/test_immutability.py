"""What is written once never changes: services refuse, and on PostgreSQL so does the database
(triggers of migration v0001), whoever connects."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests.valuation.conftest import WANGMO, row
from valuation.services import prices, quantities, runs

POSTGRES = bool(os.environ.get("ECOVALUE_TEST_DATABASE_URL"))


def _published_run(database, system):
    with database.unit_of_work() as session:
        quantity_set = quantities.create_from_rows(session, system, region_code=WANGMO,
                                                   year=2024, rows=[row("R-WCON", 1, "亿m³")])
        run = runs.create_run(session, system, region_code=WANGMO, year=2024,
                              quantity_set_ids=[quantity_set.id])
        return run.id, quantity_set.id


@pytest.mark.skipif(not POSTGRES, reason="the triggers exist on PostgreSQL only (SQLite relies "
                                         "on the services, tested elsewhere)")
@pytest.mark.parametrize("statement", [
    "UPDATE valuation_results SET value_current = 0",
    "DELETE FROM valuation_results",
    "UPDATE valuation_runs SET gep_current = 0",
    "UPDATE valuation_runs SET summary = '{}'",
    "DELETE FROM valuation_runs",
    "UPDATE valuation_quantities SET quantity = 0",
    "DELETE FROM valuation_quantities",
    "UPDATE valuation_quantity_sets SET note = 'changed'",
    "DELETE FROM valuation_run_quantity_sets",
    "UPDATE valuation_price_book_entries SET value = 1",
    "DELETE FROM valuation_price_book_entries",
    "UPDATE valuation_price_books SET title = 'changed'",
    "INSERT INTO valuation_price_book_entries (book_id, parameter, value, unit, confirmation) "
    "SELECT id, 'oxygen_price2', 1, 'yuan/t', 'to-confirm' FROM valuation_price_books",
])
def test_the_database_refuses_changes_to_written_results(database, system, statement):
    _published_run(database, system)
    with pytest.raises(IntegrityError, match="never change"), database.engine.begin() as conn:
        conn.exec_driver_sql(statement)


@pytest.mark.skipif(not POSTGRES, reason="the triggers exist on PostgreSQL only")
def test_the_database_lets_a_run_be_published_once(database, system):
    run_id, _ = _published_run(database, system)
    with database.unit_of_work() as session:
        runs.publish_run(session, system, run_id)
    with pytest.raises(IntegrityError, match="never changes"), database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE valuation_runs SET published_by = 'someone else'")


def test_a_published_book_refuses_changes_through_the_service(reference, system):
    from valuation.errors import PriceBookPublished

    with pytest.raises(PriceBookPublished):
        prices.upsert_entries(reference, system, "default", [
            {"parameter": "reservoir_cost", "value": 7.0, "unit": "yuan/m3",
             "price_year": 2005, "index_series": "CPI-CN-1978"}])
    assert reference.scalar(sa.text(
        "SELECT value FROM valuation_price_book_entries WHERE parameter = 'reservoir_cost'")
    ) == 6.1107
