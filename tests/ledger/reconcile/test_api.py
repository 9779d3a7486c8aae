"""The /reconcile routes: problem+json on bad input, the whole flow over HTTP, the demo and
the CLI."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from ecovalue.auth import system_principal
from ecovalue.auth.services import create_token
from tests.conftest import load_demo
from tests.ledger.reconcile.conftest import csv_bytes, day, pay

MONTH_OVER = pytest.mark.usefixtures("after_the_month")


def second_finance(database) -> dict[str, str]:
    with database.unit_of_work() as s:
        issued = create_token(s, system_principal("test"), name="second finance officer",
                              role="finance")
    return {"Authorization": f"Bearer {issued.secret}"}


def upload(client, headers, data, **query):
    query.setdefault("account", "FUND")
    query.setdefault("period", "2024-03")
    return client.post("/reconcile/statements", query_string=query, headers=headers,
                       data={"file": (io.BytesIO(data), "march.csv")},
                       content_type="multipart/form-data")


ROWS = [(day(3).isoformat(), "S1", "500.00", None, "500.00", "州财政局", "R-1", None),
        (day(9).isoformat(), "S2", "3.21", None, "503.21", "银行", None, "利息")]


@MONTH_OVER
def test_the_flow_over_http(client, tokens, database, world, problem):
    with database.unit_of_work() as s:
        tx = pay(s, "BANK", "FUND", 500_00, day(2), reference="R-1")
    finance, other = tokens.finance, second_finance(database)
    created = upload(client, finance, csv_bytes(ROWS))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["lines_added"] == 2
    replay = upload(client, finance, csv_bytes(ROWS))
    assert replay.get_json()["lines_already_present"] == 2
    run = client.post("/reconcile/runs", json={"account": "FUND", "period": "2024-03"},
                      headers=finance)
    assert run.status_code == 201, run.get_json()
    body = run.get_json()
    assert body["summary"]["balanced"] and body["summary"]["unresolved"] == 1
    run_id = body["id"]
    items = client.get(f"/reconcile/runs/{run_id}/items", headers=finance).get_json()["items"]
    open_item = next(i for i in items if i["status"] == "open")
    matched = next(i for i in items if i["category"] == "matched")
    assert matched["transaction_ids"] == [tx] and matched["status"] == "confirmed"
    problem(client.post(f"/reconcile/runs/{run_id}/signoff", json={}, headers=other), 409,
            "unresolved-items")
    problem(client.post(f"/reconcile/runs/{run_id}/items/{open_item['id']}/explain",
                        json={}, headers=finance), 422)
    assert client.post(f"/reconcile/runs/{run_id}/items/{open_item['id']}/explain",
                       json={"reason": "interest"}, headers=finance).status_code == 200
    problem(client.post(f"/reconcile/runs/{run_id}/signoff", json={}, headers=finance), 403,
            "four-eyes")
    problem(client.post(f"/reconcile/runs/{run_id}/signoff", json={}, headers=tokens.admin),
            403, "forbidden")
    signed = client.post(f"/reconcile/runs/{run_id}/signoff", json={"note": "ok"},
                         headers=other)
    assert signed.status_code == 200 and signed.get_json()["status"] == "signed_off"
    problem(client.post(f"/reconcile/runs/{run_id}/items/{matched['id']}/unmatch",
                        json={"reason": "x"}, headers=finance), 409, "run-signed-off")
    closed = client.post("/reconcile/periods/2024-03/close", json={}, headers=other)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    xlsx = client.get("/reconcile/reports/2024-03/xlsx", headers=tokens.auditor)
    assert xlsx.status_code == 200
    assert len(load_workbook(io.BytesIO(xlsx.data)).sheetnames) == 7
    html = client.get("/reconcile/reports/2024-03/html", headers=tokens.auditor)
    assert "资金余额" in html.get_data(as_text=True)
    data = client.get("/reconcile/reports/2024-03", headers=finance).get_json()
    assert [s["key"] for s in data["sections"]] == [
        "funds", "compensation", "sharing", "distributions", "carbon", "market",
        "reconciliations"]


@MONTH_OVER
def test_bad_input_is_problem_json(client, tokens, world, problem):
    finance = tokens.finance
    body = problem(upload(client, finance, b"\xff\xfe\x00\x01binary\x00" * 10), 422,
                   "statement-rejected")
    assert body["errors"][0]["code"] == "encoding"
    problem(upload(client, finance, csv_bytes(ROWS), period="2024-13"), 422)
    problem(upload(client, finance, csv_bytes(ROWS), period="2999-01"), 422)  # not begun
    problem(upload(client, finance, csv_bytes(ROWS), period="0001-01"), 422)
    assert client.get("/reconcile/reports/9999-12", headers=finance).status_code == 200
    problem(upload(client, finance, csv_bytes(ROWS), account="NOPE"), 404)
    problem(upload(client, finance, csv_bytes(ROWS), bank_code="NOBANK"), 404)
    problem(upload(client, tokens.auditor, csv_bytes(ROWS)), 403)
    problem(client.post("/reconcile/runs", json={"account": "FUND", "period": "2024-03"},
                        headers=finance), 404, "reconcile-statement-not-found")
    problem(client.put("/reconcile/rules", json={"rules": [{"kind": "magic"}]},
                       headers=finance), 422)
    problem(client.put("/reconcile/banks/ABC", json={"name_zh": "农行", "columns": {
        "nonsense": ["x"]}}, headers=finance), 422)
    problem(client.get("/reconcile/runs/99", headers=finance), 404)
    problem(client.get("/reconcile/reports/2024-3", headers=finance), 422)


@MONTH_OVER
def test_rules_can_be_reordered_and_tuned(client, tokens):
    rules = client.get("/reconcile/rules", headers=tokens.finance).get_json()
    assert rules["version"] == 0 and rules["rules"][0]["kind"] == "reference"
    tuned = list(reversed(rules["rules"]))
    tuned[0]["window_days"] = 1
    saved = client.put("/reconcile/rules", json={"rules": tuned, "note": "test"},
                       headers=tokens.finance)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["version"] == 1
    assert client.get("/reconcile/rules", headers=tokens.auditor).get_json()["rules"][0][
        "window_days"] == 1


def test_demo_has_a_statement_and_a_run(app, client, tokens, cli):
    """On today's clock, as `make run` loads it: last month's statement of the demo fund."""
    load_demo(app)
    runs = client.get("/reconcile/runs", headers=tokens.finance).get_json()["items"]
    assert len(runs) == 1
    summary = runs[0]["summary"]
    assert summary["counts"]["matched"] == 3 and summary["counts"]["only_in_statement"] == 1
    assert summary["balanced"] and summary["unresolved"] == 2
    shown = cli("reconcile", "show", str(runs[0]["id"]))
    assert shown.exit_code == 0 and "balanced" in shown.output, shown.output
    replay = cli("reconcile", "simulate", "5")
    assert "precision 1.000 recall 1.000" in replay.output
