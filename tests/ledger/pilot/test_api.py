"""The pilot over HTTP: the issue's bad input for the pilot half answers problem+json and
writes nothing; uploads (CSV in GBK, XLSX); idempotent settlement; who may do what."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from ecovalue.spreadsheet import write_csv
from ledger.carbon.models import CarbonRetirement
from ledger.pilot.models import PilotEmissionReport, PilotFactorTable, PilotSettlement
from tests.ledger.pilot.conftest import FUND, NOW, make_pilot

pytestmark = pytest.mark.usefixtures("frozen")

REPORT = {"year": 2025, "method": "combustion",
          "lines": [{"fuel": "raw_coal", "consumption": 120000}]}


@pytest.fixture()
def pilot(database, frozen):
    return make_pilot(database)


def count(database, model) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def filed(client, tokens, pilot) -> dict:
    response = client.post("/pilot/reports", json=REPORT,
                           headers=tokens.trader(pilot.world.plant))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def verified(client, tokens, pilot) -> dict:
    report = filed(client, tokens, pilot)
    response = client.post(f"/pilot/reports/{report['id']}/verify", json={},
                           headers=tokens.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_public_reference_reads(client, pilot):
    fuels = client.get("/pilot/fuels").get_json()
    assert {f["code"] for f in fuels} == {"raw_coal", "natural_gas", "diesel"}
    rule = client.get("/pilot/rules/2025").get_json()
    assert (rule["share_bp"], rule["fee_fen_per_tco2"]) == (50, 5_000)
    assert client.get("/pilot/rules/2031").status_code == 404


def test_file_verify_obligation_settle_certificate(client, tokens, pilot):
    report = verified(client, tokens, pilot)
    assert (report["status"], report["emissions_tco2"]) == ("verified", 280_967)
    plant = tokens.trader(pilot.world.plant)
    obligation = client.get(f"/pilot/obligations/{report['obligation_id']}",
                            headers=plant).get_json()
    assert (obligation["obligation_t"], obligation["status"]) == (1_405, "open")
    body = {"retirements": [{"account": pilot.plant_credits, "quantity_t": 400}],
            "fee_t": 1_005}
    headers = {**plant, "Idempotency-Key": "settle-2025"}
    first = client.post(f"/pilot/obligations/{obligation['id']}/settlements", json=body,
                        headers=headers)
    assert first.status_code == 200, first.get_json()
    settled = first.get_json()
    assert (settled["status"], settled["shortfall_t"], settled["paid_fen"]) == \
        ("settled", 0, 5_025_000)
    again = client.post(f"/pilot/obligations/{obligation['id']}/settlements", json=body,
                        headers=headers)
    assert again.get_json() == settled and again.headers.get("Idempotent-Replayed") == "true"
    assert count(database_of(client), PilotSettlement) == 2
    certificate = client.get(settled["settlements"][0]["certificate_url"])
    assert certificate.status_code == 200
    text = certificate.get_data(as_text=True)
    assert settled["settlements"][0]["certificate_number"] in text
    # the certificate names the obligation it settles
    assert "履约义务" in text and f"<td>{obligation['code']}</td>" in text
    public = client.get("/carbon/public/retirements?purpose=thermal_power_pilot"
                        "&compliance_year=2025").get_json()["items"]
    assert [(r["reason"], r["quantity_t"]) for r in public] == \
        [(f"pilot obligation {obligation['code']}", 400)]
    status = client.get("/pilot/compliance?year=2025", headers=plant)
    assert status.status_code == 200, status.get_json()
    status = status.get_json()
    assert [p["status"] for p in status["plants"]] == ["settled"]


def database_of(client):
    return client.application.extensions["ecovalue.db"]


def test_bad_reports_are_refused_whole(client, tokens, pilot, problem, database):
    plant = tokens.trader(pilot.world.plant)
    found = problem(client.post("/pilot/reports", headers=plant, json={
        **REPORT, "lines": [{"fuel": "unobtainium", "consumption": "5"},
                            {"fuel": "raw_coal", "consumption": "-3"}]}),
        422, "pilot-invalid-report")
    assert {e["field"] for e in found["errors"]} == {"lines.0.fuel", "lines.1.consumption"}
    problem(client.post("/pilot/reports", headers=plant, json={
        **REPORT, "lines": [{"fuel": "raw_coal", "consumption": 1.5, "colour": "red"}]}), 422)
    problem(client.post("/pilot/reports", headers=plant, json={**REPORT, "year": 2025.5}), 422)
    problem(client.post("/pilot/reports", headers=plant, json={**REPORT, "lines": []}), 422)
    problem(client.post("/pilot/reports", json=REPORT), 401)
    problem(client.post("/pilot/reports", headers=tokens.verifier, json=REPORT), 403)
    problem(client.post("/pilot/reports", headers=plant,
                        json={**REPORT, "plant_party_id": pilot.world.buyer}), 403)
    problem(client.post("/pilot/reports", headers=plant,
                        json={**REPORT, "factor_table": "nope"}), 404)
    assert count(database, PilotEmissionReport) == 0


def test_the_filer_or_a_plant_cannot_verify(client, tokens, pilot, problem, database):
    admin_report = client.post("/pilot/reports", headers=tokens.admin,
                               json={**REPORT, "plant_party_id": pilot.world.plant})
    assert admin_report.status_code == 201
    report_id = admin_report.get_json()["id"]
    problem(client.post(f"/pilot/reports/{report_id}/verify", json={},
                        headers=tokens.admin), 403, "four-eyes")
    problem(client.post(f"/pilot/reports/{report_id}/verify", json={},
                        headers=tokens.trader(pilot.world.plant)), 403, "forbidden")
    assert client.post(f"/pilot/reports/{report_id}/verify", json={},
                       headers=tokens.verifier).status_code == 200
    problem(client.post(f"/pilot/reports/{report_id}/verify", json={},
                        headers=tokens.verifier), 409, "pilot-report-not-filed")
    problem(client.post("/pilot/reports/999999/verify", json={}, headers=tokens.verifier), 404)


def test_settlement_bad_input(client, tokens, pilot, problem, database):
    report = verified(client, tokens, pilot)
    url = f"/pilot/obligations/{report['obligation_id']}/settlements"
    plant = tokens.trader(pilot.world.plant)
    problem(client.post(url, headers=tokens.trader(pilot.world.buyer), json={"fee_t": 1}),
            403, "pilot-not-your-obligation")
    problem(client.post(url, headers=plant, json={"fee_t": 1_406}), 409,
            "pilot-over-settlement")
    problem(client.post(url, headers=plant, json={
        "retirements": [{"account": pilot.collective_credits, "quantity_t": 1}]}), 403,
        "pilot-not-your-obligation")
    problem(client.post(url, headers=plant, json={
        "retirements": [{"account": pilot.plant_credits, "quantity_t": 501}]}), 409)
    problem(client.post(url, headers=plant, json={}), 422)
    problem(client.post(url, headers=plant, json={"fee_t": 0}), 422)
    problem(client.post(url, headers=plant, json={"fee_t": 2.5}), 422)
    problem(client.post(url, headers=tokens.finance, json={"fee_t": 1}), 403)
    problem(client.post("/pilot/obligations/424242/settlements", headers=plant,
                        json={"fee_t": 1}), 404)
    assert count(database, PilotSettlement) == 0
    assert count(database, CarbonRetirement) == 0


def test_upload_csv_in_gbk_and_xlsx(client, tokens, pilot, problem, database):
    plant = tokens.trader(pilot.world.plant)
    text = "燃料,消耗量,低位发热量\r\nraw_coal,120000,\r\ndiesel,30,42.652\r\n"
    response = client.post("/pilot/reports/upload?year=2025&method=combustion", headers=plant,
                           data={"file": (io.BytesIO(text.encode("gbk")), "排放.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    # 280,967.14008 + 92.87728912 = 281,060.01736912 -> 281,060
    assert (body["source"], body["emissions_tco2"]) == ("csv", 281_060)
    # an XLSX with a bad row: the row and column are named, nothing stored
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["fuel", "consumption"])
    sheet.append(["raw_coal", 100])
    sheet.append(["coke", -4])
    data = io.BytesIO()
    book.save(data)
    found = problem(client.post(
        "/pilot/reports/upload?year=2024&method=combustion", headers=plant,
        data={"file": (io.BytesIO(data.getvalue()), "r.xlsx")},
        content_type="multipart/form-data"), 422, "pilot-invalid-report")
    assert {(e["row"], e["column"]) for e in found["errors"]} == {(3, "fuel"),
                                                                 (3, "consumption")}
    problem(client.post("/pilot/reports/upload?year=2024&method=generation", headers=plant,
                        data={"file": (io.BytesIO(text.encode("gbk")), "r.csv")},
                        content_type="multipart/form-data"), 422)
    problem(client.post("/pilot/reports/upload?year=2024&method=combustion", headers=plant,
                        data={"file": (io.BytesIO(b"\x00\x01\x02binary"), "r.bin")},
                        content_type="multipart/form-data"), 415)
    assert count(database, PilotEmissionReport) == 1


def test_factor_table_upload_by_an_admin(client, tokens, pilot, problem, database):
    rows = [["factor", "year", "value", "unit", "status", "source"],
            ["raw_coal_average_ncv", "", "21", "GJ/t", "published", "confirmed 2026"],
            ["coal_default_carbon_content", "2022", "0.03085", "tC/GJ", "published", "MEE"],
            ["coal_oxidation_rate", "2021", "0.99", "fraction", "published", "MEE"]]
    upload = {"file": (io.BytesIO(write_csv(rows)), "factors.csv")}
    problem(client.post("/pilot/factor-tables?version=2026-1&title=t", data=upload,
                        headers=tokens.trader(pilot.world.plant),
                        content_type="multipart/form-data"), 403)
    response = client.post("/pilot/factor-tables?version=2026-1&title=Confirmed%20NCV",
                           data={"file": (io.BytesIO(write_csv(rows)), "factors.csv")},
                           headers=tokens.admin, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["row_count"] == 3
    problem(client.post("/pilot/factor-tables?version=2026-1&title=again",
                        data={"file": (io.BytesIO(write_csv(rows)), "factors.csv")},
                        headers=tokens.admin, content_type="multipart/form-data"), 409)
    bad = [*rows, ["fossil power", "20x", "-1", "", "maybe", ""]]
    found = problem(client.post("/pilot/factor-tables?version=2026-2&title=bad",
                                data={"file": (io.BytesIO(write_csv(bad)), "f.csv")},
                                headers=tokens.admin, content_type="multipart/form-data"),
                    422, "pilot-invalid-factor-table")
    assert {e["column"] for e in found["errors"]} == {"factor", "year", "value", "unit",
                                                     "status"}
    # the newest version is a report's default, and the report records it
    report = filed(client, tokens, pilot)
    # 120,000 x 21 = 2,520,000 GJ; x 0.03085 = 77,742 tC; x 0.99 = 76,964.58 tC;
    # x 44/12 = 282,203.46 -> 282,203
    assert (report["factor_table_version"], report["emissions_tco2"]) == ("2026-1", 282_203)
    listed = client.get("/pilot/factor-tables").get_json()
    assert [t["version"] for t in listed] == ["reference", "2026-1"]
    assert count(database, PilotFactorTable) == 2


def test_compliance_report_and_fund_for_finance(client, tokens, pilot, problem):
    report = verified(client, tokens, pilot)
    plant = tokens.trader(pilot.world.plant)
    client.post(f"/pilot/obligations/{report['obligation_id']}/settlements", headers=plant,
                json={"fee_t": 10})
    xlsx = client.get("/pilot/compliance.xlsx?year=2025", headers=tokens.verifier)
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    fund = client.get("/pilot/fund?year=2025", headers=tokens.finance).get_json()
    assert fund["total_fen"] == 50_000 and fund["funds"][0]["account"] == FUND
    assert fund["by_plant"] == [{"plant_party_id": pilot.world.plant,
                                 "plant_name_zh": "兴义火电厂(测试)", "payments": 1,
                                 "tonnes": 10, "amount_fen": 50_000}]
    problem(client.get("/pilot/fund", headers=plant), 403)
    problem(client.get("/pilot/compliance?year=1999", headers=plant), 422)
    problem(client.get("/pilot/compliance", headers=plant), 422)
    other = client.get("/pilot/obligations", headers=tokens.trader(pilot.world.buyer))
    assert other.get_json()["total"] == 0
    problem(client.get(f"/pilot/obligations/{report['obligation_id']}",
                       headers=tokens.trader(pilot.world.buyer)), 403)
    assert NOW.year == 2026
