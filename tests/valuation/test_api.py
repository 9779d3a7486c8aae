"""The valuation API as a county would use it, permissions, and problem+json on bad input."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.valuation.conftest import HEADER, WANGMO, XINGYI, xlsx
from valuation.demo import demo_workbook

V = "/valuation"


def _party(client) -> int:
    """A party for a trader token (a village collective: no credit code needed)."""
    from catalog.models import Party

    with client.application.extensions["ecovalue.db"].unit_of_work() as session:
        party = Party(kind="village_collective", name_zh="测试村集体", region_code=WANGMO)
        session.add(party)
        session.flush()
        return party.id


def _upload(client, headers, data, *, region=WANGMO, year=2024, filename="wangmo.xlsx"):
    return client.post(f"{V}/quantity-sets/upload?region_code={region}&year={year}",
                       data={"file": (io.BytesIO(data), filename)}, headers=headers,
                       content_type="multipart/form-data")


def test_county_gep_from_an_xlsx_through_the_api_exported_with_a_chart(client, tokens):
    """The 'done when' path: upload the county's XLSX, run, read, export XLSX, chart."""
    registrar = tokens.registrar(WANGMO)
    upload = _upload(client, registrar, demo_workbook(2024))
    assert upload.status_code == 201, upload.get_json()
    quantity_set = upload.get_json()
    assert quantity_set["source"] == "xlsx" and quantity_set["row_count"] == 32
    created = client.post(f"{V}/runs", headers=registrar, json={
        "region_code": WANGMO, "year": 2024, "quantity_set_ids": [quantity_set["id"]],
        "context": [{"region_code": WANGMO, "gdp": {"value": 110, "unit": "亿元"}}]})
    assert created.status_code == 201, created.get_json()
    run = created.get_json()
    assert run["price_book_version"] == "default" and run["status"] == "finished"
    assert run["gep_current"] > 0 and len(run["input_hash"]) == 64
    assert any(u["indicator_code"] == "R-O2" and u["kind"] == "disabled"
               for u in run["unvalued"])
    assert run["ratios"][WANGMO]["gep_to_gdp"] == pytest.approx(run["gep_current"] / 110e8)
    # the report by category adds up to GEP in 万元
    report = client.get(f"{V}/runs/{run['id']}/report?by=category&unit=万元",
                        headers=registrar).get_json()
    gep_row = next(r for r in report["rows"] if r["category"] == "GEP")
    assert gep_row["value_current_万元"] == pytest.approx(run["gep_current"] / 1e4)
    ascii_unit = client.get(f"{V}/runs/{run['id']}/report?by=category&unit=yi",
                            headers=registrar).get_json()
    assert ascii_unit["unit"] == "亿元" and ascii_unit["gep_current"] == pytest.approx(
        run["gep_current"] / 1e8)
    export = client.get(f"{V}/runs/{run['id']}/export?format=xlsx&unit=亿元",
                        headers=registrar)
    assert export.status_code == 200
    assert export.mimetype.endswith("spreadsheetml.sheet")
    workbook = load_workbook(io.BytesIO(export.data))
    assert {"Summary", "By category", "By indicator", "By ecosystem type", "Unvalued",
            "Prices", "Chart"} <= set(workbook.sheetnames)
    assert len(workbook["Chart"]._images) == 1
    summary = {r[0]: r[1] for r in workbook["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["GEP 现价 current prices (亿元)"] == pytest.approx(run["gep_current"] / 1e8)
    chart = client.get(f"{V}/runs/{run['id']}/chart.png", headers=registrar)
    assert chart.status_code == 200 and chart.mimetype == "image/png"
    assert chart.data[:8] == b"\x89PNG\r\n\x1a\n"
    csv = client.get(f"{V}/runs/{run['id']}/export?format=csv&table=indicator",
                     headers=registrar)
    assert csv.mimetype == "text/csv"
    assert csv.data.decode("utf-8-sig").splitlines()[0].startswith("indicator_code,category")
    reproduced = client.get(f"{V}/runs/{run['id']}/reproduction", headers=registrar).get_json()
    assert reproduced["identical"] is True


def test_unpublished_runs_are_private_and_published_runs_public(client, tokens, problem):
    registrar = tokens.registrar(WANGMO)
    set_id = _upload(client, registrar, demo_workbook(2024)).get_json()["id"]
    run_id = client.post(f"{V}/runs", headers=registrar, json={
        "region_code": WANGMO, "year": 2024, "quantity_set_ids": [set_id]}).get_json()["id"]
    problem(client.get(f"{V}/runs/{run_id}"), 404, "run-not-found")
    problem(client.get(f"{V}/runs/{run_id}/chart.png"), 404, "run-not-found")
    problem(client.get(f"{V}/runs/{run_id}", headers=tokens.registrar(XINGYI)), 404)
    assert client.get(f"{V}/runs").get_json()["total"] == 0
    problem(client.post(f"{V}/runs/{run_id}/publish", headers=registrar), 403, "forbidden")
    published = client.post(f"{V}/runs/{run_id}/publish", headers=tokens.verifier)
    assert published.get_json()["status"] == "published"
    assert client.get(f"{V}/runs/{run_id}").status_code == 200
    assert client.get(f"{V}/runs").get_json()["total"] == 1
    assert client.get(f"{V}/runs/{run_id}/results?page_size=5").get_json()["total"] > 5
    assert client.get(f"{V}/runs/{run_id}/export?format=xlsx").status_code == 200
    problem(client.post(f"{V}/runs/{run_id}/publish", headers=tokens.verifier), 409,
            "run-already-published")


@pytest.mark.parametrize(("method", "path", "role", "status"), [
    ("post", "/indicators", "registrar", 403),
    ("post", "/indicators", "verifier", 403),
    ("post", "/price-books", "registrar", 403),
    ("post", "/price-books", "verifier", 201),
    ("put", "/price-indices/CPI-X", "registrar", 403),
    ("put", "/price-indices/CPI-X", "verifier", 200),
    ("post", "/quantity-sets", "trader", 403),
    ("post", "/quantity-sets", "auditor", 403),
    ("post", "/quantity-sets", "registrar", 201),
    ("post", "/quantity-sets", "registrar-xingyi", 403),
    ("get", "/quantity-sets", "auditor", 200),
    ("get", "/quantity-sets", "trader", 403),
])
def test_role_by_endpoint(client, tokens, method, path, role, status):
    if role == "registrar":
        headers = tokens.registrar(WANGMO)
    elif role == "registrar-xingyi":
        headers = tokens.registrar(XINGYI)
    elif role == "trader":
        headers = tokens.trader(_party(client))
    else:
        headers = tokens.headers(role)
    bodies = {
        "/indicators": {"code": "R-NOISE", "category": "regulating", "name_zh": "降噪",
                        "name_en": "Noise", "quantity_units": ["m2"],
                        "formula": "Q * noise_price",
                        "parameters": {"noise_price": {"unit": "yuan/m2"}}},
        "/price-books": {"version": "v1", "title": "t"},
        "/price-indices/CPI-X": {"name_zh": "x", "name_en": "x", "base": "2020=100"},
        "/quantity-sets": {"region_code": WANGMO, "year": 2024, "rows": [
            {"region_code": WANGMO, "indicator": "R-WCON", "quantity": 1, "unit": "亿m³"}]},
    }
    response = getattr(client, method)(f"{V}{path}", headers=headers,
                                       json=bodies.get(path) if method != "get" else None)
    assert response.status_code == status, response.get_json()


def test_bad_input_answers_problem_json_with_fields(client, tokens, problem):
    admin = tokens.admin
    body = problem(_upload(client, admin, xlsx([HEADER, [WANGMO, 2024, "R-WCON", None, "forest",
                                                         1, "万t", None, None]])),
                   422, "quantities-invalid")
    assert body["errors"][0]["row"] == 2 and body["errors"][0]["column"] == "unit"
    problem(_upload(client, admin, b"\x00\x01binary", filename="x.bin"), 415, "unsupported-file")
    body = problem(client.post(f"{V}/quantity-sets", headers=admin, json={
        "region_code": WANGMO, "year": 2024, "rows": [
            {"region_code": WANGMO, "indicator": "R-WCON", "quantity": -1, "unit": "m3"}]}),
        422, "quantities-invalid")
    assert body["errors"][0]["field"] == "rows.0.quantity"
    problem(client.post(f"{V}/runs", headers=admin, json={
        "region_code": WANGMO, "year": 2024, "quantity_set_ids": [999]}), 404,
        "quantity-set-not-found")
    problem(client.post(f"{V}/runs", headers=admin, json={
        "region_code": WANGMO, "year": 2024, "quantity_set_ids": []}), 422)
    problem(client.get(f"{V}/runs/1/report?unit=美元"), 422, "validation-error")
    problem(client.get(f"{V}/price-books/nope"), 404, "price-book-not-found")
    problem(client.post(f"{V}/indicators", headers=admin, json={
        "code": "R-EVIL", "category": "regulating", "name_zh": "x", "name_en": "x",
        "quantity_units": ["m2"], "formula": "__import__('os').system('id')"}), 422,
        "indicator-definition-invalid")


def test_grid_upload_computes_quantities(client, tokens):
    text = ("region_code,ecosystem_type,area_m2,precipitation_mm,runoff_mm,"
            "evapotranspiration_mm,npp\n"
            f"{WANGMO},forest,900,1200,300,600,800\n{WANGMO},森林,900,1200,300,600,800\n")
    response = client.post(f"{V}/quantity-sets/grid?region_code={WANGMO}&year=2024",
                           data={"file": (io.BytesIO(text.encode()), "cells.csv")},
                           headers=tokens.admin, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["source"] == "grid" and body["grid"]["cells"] == 2
    assert body["grid"]["indicators"] == ["R-WCON", "R-CARB", "R-O2"]
    rows = client.get(f"{V}/quantity-sets/{body['id']}/rows", headers=tokens.admin).get_json()
    quantities = {r["indicator_code"]: r["quantity"] for r in rows["items"]}
    assert quantities["R-WCON"] == pytest.approx(540.0)
    assert quantities["R-CARB"] == pytest.approx(2 * 1.1736)
    bad = client.post(f"{V}/quantity-sets/grid?region_code={WANGMO}&year=2024",
                      data={"file": (io.BytesIO(b"region_code,ecosystem_type,area_m2,npp\n"
                                                b"522326,forest,900,\n"), "c.csv")},
                      headers=tokens.admin, content_type="multipart/form-data")
    assert bad.status_code == 422
    assert "npp: 1 cell(s) without a finite value" in bad.get_json()["detail"]


def test_price_books_and_indices_through_the_api(client, tokens, problem):
    verifier = tokens.verifier
    created = client.post(f"{V}/price-books", headers=verifier,
                          json={"version": "2024-qxn", "title": "QXN", "based_on": "default"})
    assert created.status_code == 201 and created.get_json()["entry_count"] == 11
    assert [b["version"] for b in client.get(f"{V}/price-books").get_json()] == ["default"]
    put = client.put(f"{V}/price-books/2024-qxn/entries", headers=verifier, json={"entries": [
        {"parameter": "soil_bulk_density", "value": 1.32, "unit": "t/m3"}]})
    assert put.status_code == 200
    bad = problem(client.put(f"{V}/price-books/2024-qxn/entries", headers=verifier, json={
        "entries": [{"parameter": "reservoir_cost", "value": 6, "unit": "yuan/kWh",
                     "price_year": 2005}]}), 422, "price-entry-invalid")
    assert bad["errors"][0]["field"] == "entries.0.unit"
    assert client.post(f"{V}/price-books/2024-qxn/publish", headers=verifier).status_code == 200
    problem(client.put(f"{V}/price-books/2024-qxn/entries", headers=verifier, json={
        "entries": [{"parameter": "soil_bulk_density", "value": 1.4, "unit": "t/m3"}]}), 409,
        "price-book-published")
    series = client.get(f"{V}/price-indices/CPI-CN-1978").get_json()
    assert {v["year"]: v["value"] for v in series["values"]}[2014] == 606.7


def test_post_run_is_idempotent(client, tokens):
    admin = tokens.admin
    set_id = _upload(client, admin, demo_workbook(2024)).get_json()["id"]
    body = {"region_code": WANGMO, "year": 2024, "quantity_set_ids": [set_id]}
    key = {"Idempotency-Key": "run-2024-wangmo", **admin}
    first = client.post(f"{V}/runs", headers=key, json=body)
    again = client.post(f"{V}/runs", headers=key, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.get_json()["id"] == again.get_json()["id"]
    assert client.get(f"{V}/runs", headers=admin).get_json()["total"] == 1


def test_comparison_and_its_chart(client, tokens):
    admin = tokens.admin
    ids = []
    for year in (2023, 2024):
        set_id = _upload(client, admin, demo_workbook(year), year=year).get_json()["id"]
        ids.append(client.post(f"{V}/runs", headers=admin, json={
            "region_code": WANGMO, "year": year, "quantity_set_ids": [set_id],
            "base_year": 2024}).get_json()["id"])
    comparison = client.get(f"{V}/comparisons?base={ids[0]}&other={ids[1]}",
                            headers=admin).get_json()
    totals = comparison["totals"]
    assert totals["quantity_effect"] + totals["price_effect"] + totals["interaction"] + \
        totals["composition"] == pytest.approx(totals["change"])
    constant = client.get(f"{V}/comparisons?base={ids[0]}&other={ids[1]}&basis=constant",
                          headers=admin).get_json()
    assert abs(constant["totals"]["price_effect"]) < 1e-6 * abs(constant["totals"]["change"])
    chart = client.get(f"{V}/comparisons/chart.png?base={ids[0]}&other={ids[1]}",
                       headers=admin)
    assert chart.status_code == 200 and chart.data[:4] == b"\x89PNG"
    assets = client.get(f"{V}/runs/{ids[1]}/asset-value?rates=0&rates=0.05&horizon=10",
                        headers=admin).get_json()
    assert assets["sensitivity"][0]["npv"] == pytest.approx(10 * assets["annual_flow_yuan"])
