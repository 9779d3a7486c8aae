"""The /compensation routes: agreements, values (entered and imported), settlements with
four eyes, problem+json for every refusal."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.ledger.compensation.conftest import YUAN

M = 1_000_000 * YUAN


@pytest.fixture()
def agreement(client, tokens, pilot):
    created = client.post("/compensation/agreements", json=pilot.terms(), headers=tokens.finance)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["status"], body["version"]) == ("draft", 1)
    assert [r["payment_fen"] for r in body["schedule"]] == [200 * M] * 3
    activated = client.post("/compensation/agreements/CHISHUI-2018/versions/1/activate",
                            headers=tokens.admin)
    assert activated.status_code == 200 and activated.get_json()["status"] == "in_force"
    return body["code"]


def _values(client, tokens, period, qingshuipu, lianyuxi):
    response = client.post("/compensation/assessments", headers=tokens.verifier, json={
        "values": [{"section": "QINGSHUIPU", "period": period,
                    "indicator": "water_quality_class", "value": qingshuipu},
                   {"section": "LIANYUXI", "period": period,
                    "indicator": "water_quality_class", "value": lianyuxi}]})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_settle_approve_and_the_four_eyes(client, tokens, agreement, problem):
    _values(client, tokens, "2019", "II", "III")
    prepared = client.post(f"/compensation/agreements/{agreement}/settlements",
                           json={"period": "2019"}, headers=tokens.finance)
    assert prepared.status_code == 201, prepared.get_json()
    settlement = prepared.get_json()
    assert [(p["payer_key"], p["payee_key"], p["amount_fen"]) for p in settlement["payments"]] \
        == [("xingyi", "wangmo", 20 * M), ("ceheng", "wangmo", 20 * M)]
    again = client.post(f"/compensation/agreements/{agreement}/settlements",
                        json={"period": "2019"}, headers=tokens.admin)
    assert again.status_code == 200 and again.get_json()["id"] == settlement["id"]
    url = f"/compensation/settlements/{settlement['id']}"
    problem(client.post(f"{url}/approve", headers=tokens.finance), 403,
            "compensation-own-settlement")
    problem(client.post(f"{url}/approve", headers=tokens.auditor), 403, "forbidden")
    approved = client.post(f"{url}/approve", json={"note": "checked against the bank"},
                           headers=tokens.admin)
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "approved"
    problem(client.post(f"{url}/approve", headers=tokens.admin), 409,
            "compensation-settlement-not-prepared")
    problem(client.post(f"{url}/reject", json={"reason": "late"}, headers=tokens.admin), 409)
    balance = client.get("/ledger/accounts/COMP-CHISHUI-2018-WANGMO/balance",
                         headers=tokens.finance).get_json()
    assert balance["balance"] == 40 * M
    listed = client.get("/compensation/settlements?agreement=CHISHUI-2018&status=approved",
                        headers=tokens.auditor).get_json()
    assert [s["id"] for s in listed["items"]] == [settlement["id"]]


def test_reject_needs_a_reason_and_voids(client, tokens, agreement, problem):
    _values(client, tokens, "2018", "IV", "II")
    settlement = client.post(f"/compensation/agreements/{agreement}/settlements",
                             json={"period": "2018"}, headers=tokens.finance).get_json()
    url = f"/compensation/settlements/{settlement['id']}/reject"
    problem(client.post(url, json={}, headers=tokens.admin), 422)
    rejected = client.post(url, json={"reason": "report under review"}, headers=tokens.finance)
    assert rejected.status_code == 200
    assert {p["status"] for p in rejected.get_json()["payments"]} == {"voided"}


def test_idempotency_key_replays_the_preparation(client, tokens, agreement):
    _values(client, tokens, "2020", "II", "II")
    headers = {**tokens.finance, "Idempotency-Key": "settle-2020"}
    first = client.post(f"/compensation/agreements/{agreement}/settlements",
                        json={"period": "2020"}, headers=headers)
    replay = client.post(f"/compensation/agreements/{agreement}/settlements",
                         json={"period": "2020"}, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["id"] == first.get_json()["id"]


def test_bad_terms_are_problem_json_with_every_field(client, tokens, pilot, problem):
    terms = pilot.terms(amount_fen=-1)
    terms["parties"][0]["contribution_share"] = 2
    terms["conditions"][1]["section"] = "NOWHERE"
    body = problem(client.post("/compensation/agreements", json=terms, headers=tokens.finance),
                   422, "compensation-invalid-terms")
    fields = {e["field"] for e in body["errors"]}
    assert {"amount_fen", "parties.contribution_share", "conditions.1.section"} <= fields
    assert client.get("/compensation/agreements", headers=tokens.finance).get_json() == []
    problem(client.post("/compensation/agreements", json={**pilot.terms(), "extra": 1},
                        headers=tokens.finance), 422)
    problem(client.post("/compensation/agreements", json={**pilot.terms(), "amount_fen": 1.5},
                        headers=tokens.finance), 422)


def test_roles(client, tokens, pilot, problem):
    problem(client.post("/compensation/agreements", json=pilot.terms()), 401)
    problem(client.post("/compensation/agreements", json=pilot.terms(),
                        headers=tokens.trader(pilot.parties["xingyi"])), 403)
    problem(client.post("/compensation/agreements", json=pilot.terms(),
                        headers=tokens.verifier), 403)
    assert client.get("/compensation/sections", headers=tokens.auditor).status_code == 200


def test_a_version_in_force_cannot_be_replaced(client, tokens, agreement, pilot, problem):
    problem(client.put(f"/compensation/agreements/{agreement}/versions/1",
                       json=pilot.terms(name_zh="改"), headers=tokens.finance), 409,
            "compensation-agreement-in-force")
    draft = client.post(f"/compensation/agreements/{agreement}/versions",
                        json=pilot.terms(note="amendment"), headers=tokens.finance)
    assert draft.status_code == 201 and draft.get_json()["version"] == 2
    replaced = client.put(f"/compensation/agreements/{agreement}/versions/2",
                          json=pilot.terms(note="amendment, corrected"), headers=tokens.finance)
    assert replaced.status_code == 200
    assert replaced.get_json()["terms"]["note"] == "amendment, corrected"
    current = client.get(f"/compensation/agreements/{agreement}", headers=tokens.auditor)
    assert current.get_json()["version"] == 1  # still the one in force
    versions = client.get(f"/compensation/agreements/{agreement}/versions",
                          headers=tokens.auditor).get_json()
    assert [(v["version"], v["status"]) for v in versions] == [(1, "in_force"), (2, "draft")]
    problem(client.get(f"/compensation/agreements/{agreement}/versions/9",
                       headers=tokens.auditor), 404)


def _xlsx(rows) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_import_gbk_csv_and_xlsx(client, tokens, agreement, problem):
    csv = ("赤水河考核断面水质\n断面,年度,指标,监测值,来源\n"
           "QINGSHUIPU,2019,water_quality_class,Ⅱ类,省生态环境厅月报\n"
           "LIANYUXI,2019,water_quality_class,劣V,省生态环境厅月报\n").encode("gbk")
    dry = client.post("/compensation/assessments/import?dry_run=true", headers=tokens.finance,
                      data={"file": (io.BytesIO(csv), "values.csv")})
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["recorded"] == 2 and dry.get_json()["dry_run"]
    page = client.get("/compensation/assessments", headers=tokens.finance).get_json()
    assert page["total"] == 0
    done = client.post("/compensation/assessments/import", headers=tokens.finance,
                       data={"file": (io.BytesIO(csv), "values.csv")})
    assert [v["value"] for v in done.get_json()["values"]] == [2.0, 6.0]
    bad = _xlsx([["section", "period", "indicator", "value"],
                 ["QINGSHUIPU", 2020, "water_quality_class", "III"],
                 ["NOWHERE", 2020, "water_quality_class", "VII"],
                 ["LIANYUXI", "2020年", "forest_coverage_percent", 140]])
    body = problem(client.post("/compensation/assessments/import", headers=tokens.finance,
                               data={"file": (io.BytesIO(bad), "v.xlsx")}), 422)
    assert {(e["row"], e["column"]) for e in body["errors"]} == {
        (3, "section"), (3, "value"), (4, "period"), (4, "value")}
    good = _xlsx([["section", "period", "indicator", "value"],
                  ["QINGSHUIPU", 2020, "water_quality_class", 3],
                  ["LIANYUXI", 2020, "water_quality_class", "II"]])
    assert client.post("/compensation/assessments/import", headers=tokens.finance,
                       data={"file": (io.BytesIO(good), "v.xlsx")}).status_code == 200
    problem(client.post("/compensation/assessments/import", headers=tokens.finance,
                        data={"file": (io.BytesIO(b"\x00\x01binary"), "x.bin")}), 415)
    settled = client.post(f"/compensation/agreements/{agreement}/settlements",
                          json={"period": "2019"}, headers=tokens.finance).get_json()
    assert [(p["payer_key"], p["payee_key"]) for p in settled["payments"]] == [
        ("xingyi", "wangmo"), ("xingyi", "ceheng")]  # Lianyuxi failed (劣V)
    page = client.get("/compensation/assessments?section=LIANYUXI&period=2019",
                      headers=tokens.finance).get_json()
    assert [v["source"] for v in page["items"]] == ["省生态环境厅月报"]


def test_statement_exports_as_xlsx_and_csv(client, tokens, agreement, problem):
    _values(client, tokens, "2019", "II", "II")
    settlement = client.post(f"/compensation/agreements/{agreement}/settlements",
                             json={"period": "2019"}, headers=tokens.finance).get_json()
    url = f"/compensation/settlements/{settlement['id']}/statement"
    xlsx = client.get(url, headers=tokens.auditor)
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert workbook.sheetnames == ["结算 Settlement", "条件 Conditions", "清算 Clearing",
                                   "各方 Positions", "支付 Payments"]
    assert list(workbook["清算 Clearing"].iter_rows(values_only=True))[1:] == []  # all met
    paid = list(workbook["支付 Payments"].iter_rows(values_only=True))
    assert paid[1][1:3] == ("xingyi", "wangmo") and paid[1][5] == 20 * M
    assert paid[1][6] == "20000000.00"
    csv = client.get(f"{url}?format=csv", headers=tokens.auditor)
    assert csv.mimetype == "text/csv"
    text = csv.data.decode("utf-8-sig")
    assert "净额(分) Net (fen)" in text and "COMP-CHISHUI-2018-WANGMO" in text
    problem(client.get(f"{url}?format=pdf", headers=tokens.auditor), 422)
    problem(client.get("/compensation/settlements/99/statement", headers=tokens.auditor), 404)
    problem(client.get("/compensation/settlements/99/statement?format=html",
                       headers=tokens.auditor), 404)


def test_statement_as_a_printable_page(client, tokens, agreement, problem):
    """Lianyuxi fails (劣V) in 2019: Xingyi's allocation (4/10 of 200,000,000 = 80,000,000
    yuan) is redirected to Ceheng; Xingyi contributes 100,000,000 and receives nothing, so it
    pays 40,000,000 to Wangmo (net 60,000,000 - 20,000,000) and 60,000,000 to Ceheng
    (net 60,000,000 + 80,000,000 - 80,000,000)."""
    _values(client, tokens, "2019", "II", "劣V")
    settlement = client.post(f"/compensation/agreements/{agreement}/settlements",
                             json={"period": "2019"}, headers=tokens.finance).get_json()
    url = f"/compensation/settlements/{settlement['id']}/statement?format=html"
    page = client.get(url, headers=tokens.auditor)
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "赤水河流域横向生态保护补偿协议" in text and "<h2>清算 Clearing</h2>" in text
    assert "转付指定方 redirected to a named party" in text
    assert "<td>xingyi</td><td>ceheng</td><td class=\"n\">8000000000</td>" \
        "<td>80000000.00</td>" in text
    assert "<td>-100000000.00</td>" in text  # Xingyi's net position
    assert "<td>40000000.00</td>" in text and "<td>60000000.00</td>" in text  # its payments
    problem(client.get(url), 401)


def test_a_terminated_agreement_settles_no_more(client, tokens, agreement, problem):
    ended = client.post(f"/compensation/agreements/{agreement}/terminate", headers=tokens.admin)
    assert ended.status_code == 200 and ended.get_json()["status"] == "terminated"
    _values(client, tokens, "2020", "II", "II")
    problem(client.post(f"/compensation/agreements/{agreement}/settlements",
                        json={"period": "2020"}, headers=tokens.finance), 409,
            "compensation-no-agreement-in-force")
    problem(client.post(f"/compensation/agreements/{agreement}/terminate",
                        headers=tokens.admin), 409)


def test_a_party_name_that_looks_like_a_formula_is_exported_as_text(client, tokens, database,
                                                                    agreement, pilot):
    import sqlalchemy as sa

    from catalog.models import Party

    with database.unit_of_work() as s:
        s.execute(sa.update(Party).where(Party.id == pilot.parties["wangmo"])
                  .values(name_zh='=HYPERLINK("http://evil.example","x")'))
    _values(client, tokens, "2019", "II", "II")
    settlement = client.post(f"/compensation/agreements/{agreement}/settlements",
                             json={"period": "2019"}, headers=tokens.finance).get_json()
    url = f"/compensation/settlements/{settlement['id']}/statement"
    text = client.get(f"{url}?format=csv", headers=tokens.auditor).data.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    workbook = openpyxl.load_workbook(io.BytesIO(client.get(url, headers=tokens.auditor).data))
    names = [row[2] for row in workbook["各方 Positions"].iter_rows(values_only=True)]
    assert names[1] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert all(c.data_type != "f" for row in workbook["各方 Positions"].iter_rows() for c in row)


def test_a_version_beyond_the_columns_range_is_not_found(client, tokens, problem):
    """Found by schemathesis on PostgreSQL: version 9223372036854775806 overflowed the int4
    column (a 500)."""
    for version in (2**31, 9223372036854775806):
        problem(client.get(f"/compensation/agreements/X/versions/{version}",
                           headers=tokens.admin), 404)
        problem(client.post(f"/compensation/agreements/X/versions/{version}/activate",
                            headers=tokens.admin), 404)
