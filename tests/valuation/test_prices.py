"""Price books (versioned, published = immutable) and price indices."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from ecovalue.auth import Principal, Role
from ecovalue.errors import Forbidden
from valuation.errors import (
    PriceBookExists,
    PriceBookNotPublished,
    PriceBookPublished,
    PriceEntryInvalid,
    PriceIndexInvalid,
)
from valuation.models import PriceBook, PriceIndexValue
from valuation.services import prices

VERIFIER = Principal(Role.VERIFIER, "token:verifier", token_id=2)
REGISTRAR = Principal(Role.REGISTRAR, "token:registrar", token_id=3, county_code="522326")


def test_reference_data_loads_once_as_a_published_to_confirm_default_book(session):
    loaded = prices.ensure_reference_data(session)
    assert any("CPI-CN-1978" in line for line in loaded)
    assert prices.ensure_reference_data(session) == []
    book = prices.published_book(session, None)
    assert (book.version, book.status) == ("default", "published")
    assert {e.confirmation for e in book.entries} == {"to-confirm"}
    entries = {e.parameter: e for e in book.entries}
    assert (entries["carbon_price"].value, entries["carbon_price"].unit,
            entries["carbon_price"].price_year) == (1200.0, "yuan/tC", 2008)
    assert entries["reservoir_cost"].value == 6.1107
    assert "soil_bulk_density" not in entries  # local: the reference gives no value
    cpi = prices.index_table(session, ["CPI-CN-1978"])["CPI-CN-1978"]
    assert (cpi[2008], cpi[2014]) == (522.7, 606.7)
    assert book.content_hash == prices.content_hash(book)


def test_a_draft_is_edited_then_published_and_then_never_changes(reference):
    session = reference
    book = prices.create_book(session, VERIFIER, version="2024-qxn", title="QXN 2024",
                              based_on="default")
    assert book.status == "draft" and len(book.entries) == 11
    prices.upsert_entries(session, VERIFIER, "2024-qxn", [
        {"parameter": "soil_bulk_density", "value": 1.32, "unit": "t/m3"},
        {"parameter": "carbon_price", "value": 85.0, "unit": "yuan/tCO2", "price_year": 2024,
         "index_series": None, "confirmation": "confirmed", "source": "national ETS 2024"},
        {"parameter": "agri_price.水稻", "value": 2.8, "unit": "元/kg", "price_year": 2024},
    ])
    prices.delete_entry(session, VERIFIER, "2024-qxn", "oxygen_price")
    published = prices.publish_book(session, VERIFIER, "2024-qxn")
    assert published.status == "published" and published.published_by == "token:verifier"
    assert len(published.entries) == 12  # 11 + 2 new - 1 removed (carbon replaced)
    with pytest.raises(PriceBookPublished):
        prices.upsert_entries(session, VERIFIER, "2024-qxn", [
            {"parameter": "soil_bulk_density", "value": 1.4, "unit": "t/m3"}])
    with pytest.raises(PriceBookPublished):
        prices.delete_entry(session, VERIFIER, "2024-qxn", "carbon_price")
    with pytest.raises(PriceBookPublished):
        prices.publish_book(session, VERIFIER, "2024-qxn")
    with pytest.raises(PriceBookExists):
        prices.create_book(session, VERIFIER, version="2024-qxn", title="again")
    actions = set(session.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.action.startswith("valuation.pricebook"))))
    assert {"valuation.pricebook.create", "valuation.pricebook.entry",
            "valuation.pricebook.entry.delete", "valuation.pricebook.publish"} <= actions


def test_a_draft_cannot_be_used_by_a_run(reference):
    prices.create_book(reference, VERIFIER, version="draft-1", title="draft")
    with pytest.raises(PriceBookNotPublished):
        prices.published_book(reference, "draft-1")


@pytest.mark.parametrize(("entry", "message"), [
    ({"parameter": "reservoir_cots", "value": 6.1, "unit": "yuan/m3", "price_year": 2005},
     "no indicator formula uses this parameter"),
    ({"parameter": "reservoir_cost", "value": 6.1, "unit": "yuan/t", "price_year": 2005},
     "does not fit; expected yuan/m3"),
    ({"parameter": "reservoir_cost", "value": 6.1, "unit": "yuan/m3"},
     "needs the year its value is in"),
    ({"parameter": "soil_bulk_density", "value": 1.3, "unit": "t/m3",
      "index_series": "CPI-CN-1978"}, "never index-adjusted"),
    ({"parameter": "reservoir_cost", "value": 6.1, "unit": "yuan/m3", "price_year": 2005,
      "index_series": "PPI-NOPE"}, "unknown price-index series"),
    ({"parameter": "reservoir_cost", "value": -6.1, "unit": "yuan/m3", "price_year": 2005},
     "finite number >= 0"),
    ({"parameter": "agri_price.rice", "value": 3.0, "unit": "yuan/kWh", "price_year": 2024},
     "does not fit"),
    ({"parameter": "carbon_price", "value": 1200, "unit": "yuan/tC", "price_year": 2008},
     None),
])
def test_entries_are_checked_before_anything_is_written(reference, entry, message):
    prices.create_book(reference, VERIFIER, version="check", title="check")
    if message is None:
        prices.upsert_entries(reference, VERIFIER, "check", [entry])
        return
    with pytest.raises(PriceEntryInvalid) as caught:
        prices.upsert_entries(reference, VERIFIER, "check", [
            {"parameter": "dredging_cost", "value": 12.6, "unit": "yuan/m3",
             "price_year": 2005}, entry])
    assert any(message in e["message"] for e in caught.value.errors), caught.value.errors
    book = reference.scalar(sa.select(PriceBook).where(PriceBook.version == "check"))
    assert book.entries == []  # the good entry was not written either


def test_registrars_cannot_write_price_books_or_indices(reference):
    with pytest.raises(Forbidden):
        prices.create_book(reference, REGISTRAR, version="x", title="x")
    with pytest.raises(Forbidden):
        prices.upsert_values(reference, REGISTRAR, "CPI-CN-1978", [{"year": 2025,
                                                                      "value": 711.0}])


def test_index_values_are_set_and_checked(reference):
    prices.upsert_values(reference, VERIFIER, "CPI-CN-1978", [
        {"year": 2025, "value": 711.1, "confirmation": "to-confirm", "note": "estimate"},
        {"year": 2014, "value": 606.7, "confirmation": "confirmed"}])
    values = {v.year: v for v in prices.series_values(reference, "CPI-CN-1978")}
    assert values[2025].value == 711.1 and values[2014].confirmation == "confirmed"
    with pytest.raises(PriceIndexInvalid) as caught:
        prices.upsert_values(reference, VERIFIER, "CPI-CN-1978", [
            {"year": 2026, "value": 0.0}, {"year": 2027, "value": 1.0},
            {"year": 2027, "value": 2.0}])
    assert len(caught.value.errors) == 3
    assert reference.scalar(sa.select(sa.func.count()).select_from(PriceIndexValue).where(
        PriceIndexValue.year >= 2026)) == 0
