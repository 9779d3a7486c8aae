"""Monitoring records: per product and period, validated units, conflicts, corrections, time
series per product and per county with exact unit conversion."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from catalog.models import MonitoringRecord
from ecovalue.audit.models import AuditEvent
from tests.catalog.conftest import make_product


def record(client, headers, product_id, **values):
    body = {"period_year": 2023, "metric": "output", "value": 3.2, "unit": "t",
            "method": "field_survey"}
    body.update(values)
    return client.post(f"/catalog/products/{product_id}/monitoring", json=body, headers=headers)


def test_record_and_read_a_time_series(client, tokens, world, database):
    product_id = make_product(database, world, "verified")
    h = tokens.registrar()
    for year, value in ((2021, 2.8), (2022, 3.0), (2023, 3.2)):
        assert record(client, h, product_id, period_year=year, value=value).status_code == 201
    monthly = record(client, h, product_id, period_year=2023, period_month=2, metric="output",
                     value=0.3, unit="万斤")
    body = monthly.get_json()
    assert (body["period_start"], body["period_end"]) == ("2023-02-01", "2023-02-28")
    series = client.get(f"/catalog/products/{product_id}/monitoring?monthly=false",
                        headers=tokens.trader(world.plant)).get_json()
    assert [(r["period_year"], r["value"]) for r in series["items"]] == [
        (2021, 2.8), (2022, 3.0), (2023, 3.2)]
    assert client.get(f"/catalog/products/{product_id}/monitoring?year_from=2023",
                      headers=h).get_json()["total"] == 2
    county = client.get("/catalog/monitoring?county=522326&metric=output",
                        headers=tokens.auditor).get_json()
    assert county["total"] == 4


@pytest.mark.parametrize("values, field, fragment", [
    ({"unit": "m3"}, "unit", "cannot carry"),
    ({"unit": "parsec"}, "unit", "unknown unit"),
    ({"metric": "happiness"}, "metric", "unknown metric"),
    ({"value": -1}, "value", "negative"),
    ({"period_year": 2999}, "period_year", "future"),
])
def test_bad_records_are_422(values, field, fragment, client, tokens, world, database, problem):
    product_id = make_product(database, world, "registered")
    body = problem(record(client, tokens.registrar(), product_id, **values), 422)
    assert any(e["field"] == field and fragment in e["message"] for e in body["errors"]), body


def test_negative_carbon_sink_is_allowed(client, tokens, world, database):
    product_id = make_product(database, world, "registered", type_code="forest_carbon_sink",
                              quantity=10.0, quantity_unit="tCO2/a")
    response = record(client, tokens.registrar(), product_id, metric="carbon_sink", value=-12.0,
                      unit="tCO2/a")
    assert response.status_code == 201


def test_same_key_twice_is_409_then_corrected_and_deleted(client, tokens, world, database,
                                                         problem):
    product_id = make_product(database, world, "registered")
    h = tokens.registrar()
    first = record(client, h, product_id).get_json()
    problem(record(client, h, product_id, value=9.9), 409, "monitoring-record-exists")
    # the same metric and year by another method is another record
    assert record(client, h, product_id, method="statistical_yearbook").status_code == 201
    corrected = client.patch(f"/catalog/monitoring/{first['id']}",
                             json={"value": 3.4, "source": "复核 2024"}, headers=h)
    assert corrected.get_json()["value"] == 3.4 and corrected.get_json()["version"] == 2
    problem(client.patch(f"/catalog/monitoring/{first['id']}", json={"unit": "m3"}, headers=h),
            422)
    assert client.delete(f"/catalog/monitoring/{first['id']}", headers=h).status_code == 204
    problem(client.get(f"/catalog/monitoring/{first['id']}", headers=h), 404)
    with database.session(write=False) as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(
            AuditEvent.entity_type == "monitoring_record").order_by(AuditEvent.seq)).all()
        deleted = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "catalog.monitoring.delete")).one()
    assert actions == ["catalog.monitoring.create", "catalog.monitoring.create",
                       "catalog.monitoring.update", "catalog.monitoring.delete"]
    assert deleted.before["value"] == 3.4  # the trail keeps what was deleted


def test_retired_products_take_no_more_records(client, tokens, world, database, problem):
    product_id = make_product(database, world, "retired")
    problem(record(client, tokens.registrar(), product_id), 409, "product-locked")


def test_county_series_converts_units_and_prefers_direct_observation(client, tokens, world,
                                                                    database):
    a = make_product(database, world, "verified", name_zh="a")
    b = make_product(database, world, "verified", name_zh="b")
    retired = make_product(database, world, "retired", name_zh="c")
    h = tokens.admin
    record(client, h, a, period_year=2022, value=2.0, unit="t")
    record(client, h, a, period_year=2023, value=3.0, unit="t")
    # 1.5 万斤 = 15,000 jin = 7.5 t exactly (1 jin = 0.5 kg)
    record(client, h, b, period_year=2023, value=1.5, unit="万斤")
    # a yearbook figure for the same product and year does not double count
    record(client, h, b, period_year=2023, value=99.0, unit="t", method="statistical_yearbook")
    # only the yearbook has 2022 for b: it counts
    record(client, h, b, period_year=2022, value=4.0, unit="t", method="statistical_yearbook")
    with database.unit_of_work() as s:  # a record on a product retired afterwards
        s.add(MonitoringRecord(product_id=retired, county_code="522326", period_year=2023,
                               period_start=dt.date(2023, 1, 1),
                               period_end=dt.date(2023, 12, 31),
                               metric="output", value=1000.0, unit="t", method="field_survey",
                               recorded_by="test"))
    series = client.get("/catalog/monitoring/series?county=522326&metric=output&type=tea",
                        headers=tokens.verifier).get_json()
    assert series["unit"] == "t"
    points = {p["period_year"]: p for p in series["points"]}
    assert points[2022]["value"] == pytest.approx(6.0)
    assert points[2022]["methods"] == ["field_survey", "statistical_yearbook"]
    assert points[2023]["value"] == pytest.approx(10.5) and points[2023]["products"] == 2


def test_series_needs_a_type_for_output_and_known_metric(client, tokens, problem):
    problem(client.get("/catalog/monitoring/series?county=522326&metric=output",
                       headers=tokens.admin), 422)
    problem(client.get("/catalog/monitoring/series?county=522326&metric=nope",
                       headers=tokens.admin), 422)
    empty = client.get("/catalog/monitoring/series?county=522326&metric=visits",
                       headers=tokens.admin).get_json()
    assert empty["points"] == [] and empty["unit"] == "person-time/a"
