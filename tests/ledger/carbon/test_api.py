"""The registry over HTTP: bad input from the issue's list gives clear problem+json errors and
writes nothing; idempotent POSTs; public reads without personal data; uploads in GBK."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from ledger.carbon.models import CarbonBlock, CarbonEvent, CarbonRetirement
from tests.ledger.carbon.conftest import issued_batch, project_values, registered_project


def count(database, model) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def _json(values: dict) -> dict:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}


@pytest.fixture()
def batch(database, world) -> str:
    return issued_batch(database, world)


def test_project_on_ineligible_parcels_is_refused_with_every_reason(client, tokens, world,
                                                                    problem):
    body = _json(project_values(world, parcel_ids=[world.unverified, world.other_county,
                                                   999_999]))
    found = problem(client.post("/carbon/projects", json=body, headers=tokens.registrar()),
                    422, "validation-error")
    messages = " ".join(e["message"] for e in found["errors"])
    assert "not verified" in messages and "lies in county 522301" in messages
    assert "no catalog product 999999" in messages


def test_parcel_of_another_project_and_species_without_parameters(client, tokens, world,
                                                                  database, problem):
    registered_project(database, world)
    body = _json(project_values(world, code="WM-AR-009"))
    found = problem(client.post("/carbon/projects", json=body, headers=tokens.registrar()),
                    422)
    assert "belongs to project WM-AR-001" in found["errors"][0]["message"]
    body = _json(project_values(world, code="WM-AR-009", parcel_ids=[world.unverified],
                                species_composition={"oak": 1.0}))
    assert problem(client.post("/carbon/projects", json=body, headers=tokens.registrar()),
                   422)["code"] == "validation-error"


def test_issuing_an_unverified_report_writes_nothing(client, tokens, world, database, problem):
    project_id = registered_project(database, world)
    report = client.post(f"/carbon/projects/{project_id}/reports", headers=tokens.registrar(),
                         json={"period_start": "2021-01-01", "period_end": "2023-12-31",
                               "source": "catalog"})
    assert report.status_code == 201, report.get_json()
    verifier = tokens.verifier  # created (and audited) before counting
    events = count(database, AuditEvent)
    problem(client.post("/carbon/issuances", json={"report_id": report.get_json()["id"]},
                        headers=verifier), 409, "report-not-verified")
    assert count(database, AuditEvent) == events
    # the filer may not verify it, an overlapping period is refused
    same = client.post(f"/carbon/reports/{report.get_json()['id']}/verify",
                       headers=tokens.registrar())
    problem(same, 403)
    problem(client.post(f"/carbon/projects/{project_id}/reports", headers=tokens.registrar(),
                        json={"period_start": "2023-01-01", "period_end": "2024-12-31",
                              "source": "catalog"}), 409, "period-overlap")


def test_movements_refused_for_bad_input(client, tokens, world, batch, database, problem):
    owner = f"P{world.collective}-HOLDING-{batch}"
    tokens.admin, tokens.trader(world.plant)  # created (and audited) before counting
    before = (count(database, CarbonBlock), count(database, CarbonEvent),
              count(database, AuditEvent))
    retire = {"account": owner, "beneficiary_name": "x", "purpose": "voluntary"}
    problem(client.post("/carbon/retirements", json={**retire, "quantity_t": 10**9},
                        headers=tokens.admin), 409, "insufficient-credits")
    problem(client.post("/carbon/retirements", json={**retire, "quantity_t": 1},
                        headers=tokens.trader(world.plant)), 403, "account-not-owned")
    problem(client.post("/carbon/retirements", json={**retire, "account": f"{batch}-BUFFER",
                                                     "quantity_t": 1},
                        headers=tokens.admin), 409, "not-tradable")
    problem(client.post("/carbon/retirements", json={**retire, "serial_block": "QXN-1-2"},
                        headers=tokens.admin), 422, "invalid-serial")
    problem(client.post("/carbon/retirements", json={**retire, "quantity_t": 1.5},
                        headers=tokens.admin), 422, "validation-error")
    problem(client.post("/carbon/transfers", json={"account": owner, "to_party_id": world.plant},
                        headers=tokens.admin), 422, "validation-error")
    assert (count(database, CarbonBlock), count(database, CarbonEvent),
            count(database, AuditEvent)) == before


def test_retirement_is_idempotent_and_public(client, tokens, world, batch, database, problem):
    owner = f"P{world.collective}-HOLDING-{batch}"
    body = {"account": owner, "quantity_t": 25, "beneficiary_name": "兴义火电厂",
            "purpose": "thermal_power_pilot", "compliance_year": 2024}
    key = {**tokens.admin, "Idempotency-Key": "retire-1"}
    first = client.post("/carbon/retirements", json=body, headers=key)
    again = client.post("/carbon/retirements", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(database, CarbonRetirement) == 1
    problem(client.post("/carbon/retirements", json={**body, "quantity_t": 26}, headers=key),
            409, "idempotency-key-reused")
    number = first.get_json()["certificate_number"]
    listed = client.get("/carbon/public/retirements", query_string={"beneficiary": "火电",
                                                                    "vintage_year": 2023})
    assert [r["certificate_number"] for r in listed.get_json()["items"]] == [number]
    assert client.get("/carbon/public/retirements",
                      query_string={"purpose": "voluntary"}).get_json()["total"] == 0
    csv = client.get("/carbon/public/retirements/export?format=csv")
    assert csv.status_code == 200 and number in csv.get_data(as_text=True)
    xlsx = client.get("/carbon/public/retirements/export?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert number in [c.value for c in sheet[2]]


def test_public_reads_never_name_households(client, world, batch):
    trace = client.get(f"/carbon/public/issuances/{batch}/trace").get_json()
    holders = {p["holder"]["kind"]: p["holder"]["name_zh"] for p in trace["parcels"]}
    assert holders == {"village_collective": "打狼村股份经济合作社", "household": None}
    assert world.household_name not in str(trace)
    for path in ("/carbon/public/projects", f"/carbon/public/issuances/{batch}/holdings",
                 "/carbon/public/issuances/export?format=csv",
                 f"/carbon/public/issuances/{batch}/holdings/export?format=csv",
                 "/carbon/public/projects/export?format=xlsx",
                 f"/carbon/public/parcels/{world.parcels['south']}/batches"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert world.household_name.encode() not in response.data, path
    parcel = client.get(f"/carbon/public/parcels/{world.parcels['north']}/batches").get_json()
    assert [b["asset_code"] for b in parcel] == [batch]


def test_authenticated_trace_masks_household_names(client, tokens, batch):
    trace = client.get(f"/carbon/issuances/{batch}/trace", headers=tokens.auditor).get_json()
    assert {p["holder"]["name_zh"] for p in trace["parcels"]} == {"打狼村股份经济合作社", "韦*明"}


PLOTS_GBK = ("样地号,地块编号,树种,样地面积(公顷),期初蓄积(立方米),期末蓄积(立方米)\n"
             "P1,{north},杉木,0.06,9.0,10.8\nP2,{north},杉木,0.04,5.0,6.2\n"
             "P3,{south},马尾松,0.05,4.0,4.9\n")


def test_inventory_plots_in_gbk(client, tokens, world, database, problem):
    project_id = registered_project(database, world)
    text = PLOTS_GBK.format(**world.parcels).encode("gbk")
    url = (f"/carbon/projects/{project_id}/reports/inventory?period_start=2021-01-01"
           "&period_end=2023-12-31")
    response = client.post(url, headers=tokens.registrar(), content_type="multipart/form-data",
                           data={"file": (io.BytesIO(text), "plots.csv")})
    assert response.status_code == 201, response.get_json()
    report = response.get_json()
    fir = 0.307 * 1.634 * 1.246 * 0.520 * 44 / 12
    pine = 0.380 * 1.472 * 1.187 * 0.460 * 44 / 12
    # north: 50 ha / 0.10 ha of plots x (17.0 - 14.0) m3 = 1,500 m3 of fir;
    # south: 20 ha / 0.05 ha x 0.9 m3 = 360 m3 of pine
    assert report["actual_removals_tco2e"] == pytest.approx(1500 * fir + 360 * pine)
    bad = ("样地号,地块编号,树种,样地面积,期初蓄积,期末蓄积\n"
           f"P1,{world.parcels['north']},杉木,0,9.0,abc\nP2,424242,杉木,0.04,5.0,6.2\n")
    response = client.post(url.replace("2021-01-01", "2024-01-01").replace(
        "2023-12-31", "2024-12-31"), headers=tokens.registrar(),
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(bad.encode("gbk")), "plots.csv")})
    found = problem(response, 422, "inventory-rejected")
    assert {(e["row"], e["column"]) for e in found["errors"]} == {
        (2, "plot_area_ha"), (2, "volume_end_m3"), (3, "parcel_id")}


def test_single_tree_project_caps_and_issues(client, tokens, world, database, problem):
    admin = tokens.admin
    assert client.post("/carbon/parameter-sets", headers=admin, json={
        "version": "wm-single-tree", "title": "单株碳汇 (test)"}).status_code == 201
    assert client.post("/carbon/parameter-sets/wm-single-tree/species", headers=admin, json={
        "species_code": "cunninghamia", "name_zh": "杉木", "wood_density_t_per_m3": 0.307,
        "biomass_expansion_factor": 1.634, "root_shoot_ratio": 0.246, "carbon_fraction": 0.52,
        "tree_tco2e_per_year": 0.02}).status_code == 200
    assert client.post("/carbon/parameter-sets/wm-single-tree/publish",
                       headers=admin).status_code == 200
    problem(client.post("/carbon/parameter-sets/wm-single-tree/species", headers=admin, json={
        "species_code": "x", "name_zh": "x", "wood_density_t_per_m3": 0.3,
        "biomass_expansion_factor": 1.5, "root_shoot_ratio": 0.2, "carbon_fraction": 0.5}),
        409, "carbon-parameter-set-published")
    body = _json(project_values(world, code="WM-ST-001", methodology="single_tree",
                                parameter_set_version="wm-single-tree",
                                species_composition={}, parcel_ids=[world.parcels["south"]],
                                crediting_start=dt.date(2021, 1, 1),
                                crediting_end=dt.date(2025, 12, 31)))
    created = client.post("/carbon/projects", json=body, headers=tokens.registrar())
    assert created.status_code == 201, created.get_json()
    for step, who in (("validate", tokens.verifier), ("register", admin), ("activate", admin)):
        assert client.post(f"/carbon/projects/WM-ST-001/{step}", json={},
                           headers=who).status_code == 200
    trees = [{"tree_code": f"T{i:04d}", "species_code": "cunninghamia", "planting_year": 2020}
             for i in range(451)]
    enrol = {"party_id": world.household, "product_id": world.parcels["south"],
             "area_mu": 2.5}
    problem(client.post("/carbon/projects/WM-ST-001/households", headers=tokens.registrar(),
                        json={**enrol, "trees": trees}), 422, "tree-cap-exceeded")
    problem(client.post("/carbon/projects/WM-ST-001/households", headers=tokens.registrar(),
                        json={**enrol, "trees": [{**trees[0], "species_code": "oak"}]}), 422,
            "species-without-parameters")
    assert client.post("/carbon/projects/WM-ST-001/households", headers=tokens.registrar(),
                       json={**enrol, "trees": trees[:450]}).status_code == 201
    listed = client.get("/carbon/projects/WM-ST-001/households", headers=admin).get_json()
    assert listed[0]["trees"] == 450 and listed[0]["tree_cap"] == 450
    assert listed[0]["holder"]["name_zh"] == "韦*明"
    report = client.post("/carbon/projects/WM-ST-001/reports", headers=tokens.registrar(),
                         json={"period_start": "2021-01-01", "period_end": "2023-12-31",
                               "source": "tree_registry"}).get_json()
    # 450 trees x 0.02 t x 3 years (1,095 days / 365.2425) = 26.98 t -> 26 credits
    assert report["quantity_t"] == 26
    assert client.post(f"/carbon/reports/{report['id']}/verify",
                       headers=tokens.verifier).status_code == 200
    issued = client.post("/carbon/issuances", json={"report_id": report["id"]},
                         headers=tokens.verifier).get_json()
    assert (issued["owner_t"], issued["buffer_t"]) == (21, 5)
