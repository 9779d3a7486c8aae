"""Benefit sharing over HTTP: the whole flow with real tokens, roles, problem codes, files."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from tests.ledger.sharing.conftest import SANMING, bank_account

RECORD = "2025-03-01"


@pytest.fixture()
def flow(database, world, client, tokens):
    """A rule, and a distribution prepared by the admin (the county) for both villages."""
    r = client.post("/sharing/rules", headers=tokens.finance, json={
        "code": "SANMING", "name_zh": "三明林票 30/70", "source_kind": "fund",
        "definition": SANMING})
    assert r.status_code == 201, r.get_json()
    r = client.post("/sharing/runs", headers={**tokens.admin, "Idempotency-Key": "run-1"},
                    json={"reference": "R1", "fund_account_code": "FUND", "rule_code": "SANMING",
                          "amount_fen": 100_000_01, "record_date": RECORD,
                          "collective_party_ids": [world.dalang, world.xinhe]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_the_whole_flow(client, tokens, world, flow, problem):
    lines = client.get(f"/sharing/runs/{flow}/lines?page_size=500", headers=tokens.finance)
    assert lines.status_code == 200
    items = lines.get_json()["items"]
    assert sum(i["amount_fen"] for i in items) == 100_000_01
    assert {i["kind"] for i in items} == {"collective", "household"}
    # the preparer may not approve; finance approves and pays
    problem(client.post(f"/sharing/runs/{flow}/approve", headers=tokens.admin), 403,
            "four-eyes")
    paid = client.post(f"/sharing/runs/{flow}/approve", headers=tokens.finance)
    assert paid.status_code == 200 and paid.get_json()["status"] == "paid"
    again = client.post(f"/sharing/runs/{flow}/approve", headers=tokens.finance)
    assert again.get_json()["ledger_batch_id"] == paid.get_json()["ledger_batch_id"]
    fund = client.get("/ledger/accounts/FUND/balance", headers=tokens.finance).get_json()
    assert fund["balance"] == 500_000_00 - 100_000_01
    # public aggregate: per village, no names
    public = client.get(f"/sharing/public/payments/{world.inflows[0]}/recipients")
    assert public.status_code == 200
    body = public.get_json()
    assert "recipients" not in body
    assert body["distributed_fen"] + body["undistributed_fen"] == body["amount_fen"]
    problem(client.get(f"/sharing/trace/payments/{world.inflows[0]}"), 401)
    detail = client.get(f"/sharing/trace/payments/{world.inflows[0]}", headers=tokens.auditor)
    assert sum(r["amount_fen"] for r in detail.get_json()["recipients"]) == \
        body["distributed_fen"]
    # the plant sees the detail of its own payment only
    own = client.get(f"/sharing/trace/payments/{world.inflows[0]}",
                     headers=tokens.trader(world.plant_a))
    assert own.status_code == 200
    problem(client.get(f"/sharing/trace/payments/{world.inflows[1]}",
                       headers=tokens.trader(world.plant_a)), 403)
    # a household's statement: where each fen came from, masked account
    wei = world.households["wei"]
    st = client.get(f"/sharing/households/{wei}/statement", headers=tokens.auditor).get_json()
    assert st["bank_account_masked"].startswith("*")
    for receipt in st["receipts"]:
        assert sum(s["amount_fen"] for s in receipt["sources"]) == receipt["amount_fen"]
    html = client.get(f"/sharing/households/{wei}/statement.html", headers=tokens.auditor)
    assert html.mimetype == "text/html" and "兴义火电厂(测试)" in html.get_data(as_text=True)
    xlsx = client.get(f"/sharing/households/{wei}/statement.xlsx", headers=tokens.auditor)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet.cell(1, 1).value == "日期 Date"
    village = client.get(f"/sharing/villages/{world.dalang}/statement.xlsx",
                         headers=tokens.finance)
    assert village.status_code == 200
    vhtml = client.get(f"/sharing/villages/{world.dalang}/statement.html",
                       headers=tokens.finance).get_data(as_text=True)
    for n in range(1, 10):
        assert bank_account(n) not in vhtml
    sources = client.get(f"/sharing/public/runs/{flow}/sources").get_json()
    assert sum(s["amount_fen"] for s in sources["sources"]) == 100_000_01


def test_the_payment_file_is_finance_only_and_audited(client, tokens, world, flow, problem,
                                                       database):
    client.post(f"/sharing/runs/{flow}/approve", headers=tokens.finance)
    for role in ("admin", "auditor", "registrar"):
        problem(client.get(f"/sharing/runs/{flow}/payment-file",
                           headers=tokens.headers(role, county="522326" if role == "registrar"
                                                  else None)), 403)
    csv = client.get(f"/sharing/runs/{flow}/payment-file?format=csv", headers=tokens.finance)
    assert csv.status_code == 200
    text = csv.get_data(as_text=True)
    assert any(bank_account(n) in text for n in range(1, 200))
    xlsx = client.get(f"/sharing/runs/{flow}/payment-file?format=xlsx", headers=tokens.finance)
    assert xlsx.mimetype.endswith("sheet")
    with database.unit_of_work() as s:
        downloads = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "sharing.payment_file.download").order_by(AuditEvent.seq)).all()
    assert [d.after["format"] for d in downloads] == ["csv", "xlsx"]
    # masked everywhere else
    lines = client.get(f"/sharing/register/{world.dalang}?as_of={RECORD}",
                       headers=tokens.finance).get_data(as_text=True)
    assert not any(bank_account(n) in lines for n in range(1, 200))


def test_bad_input_is_a_problem_and_writes_nothing(client, tokens, world, flow, problem):
    base = {"reference": "R2", "fund_account_code": "FUND", "rule_code": "SANMING",
            "amount_fen": 100, "record_date": RECORD, "collective_party_ids": [world.dalang]}
    for change, status, code in (
            ({"amount_fen": -5}, 422, "sharing-invalid-amount"),
            ({"amount_fen": 1.5}, 422, None),
            ({"amount_fen": 900_000_00}, 409, "sharing-fund-insufficient"),
            ({"record_date": "2024-12-01", "household_party_ids": [world.households["wei"]]},
             422, "sharing-record-date-before-joining"),
            ({"household_party_ids": [world.households["cen"]]}, 422,
             "sharing-unknown-household"),
            ({"rule_code": "NOPE"}, 404, "sharing-rule-not-found"),
            ({"collective_party_ids": [world.plant_a]}, 422, None)):
        body = {**base, **change}
        if code == "sharing-invalid-amount":
            code = None  # the schema refuses it first (strict integer >= ... in the service)
        problem(client.post("/sharing/runs", headers=tokens.admin, json=body), status, code)
    bad_rule = {"code": "BAD", "name_zh": "坏", "source_kind": "fund", "definition": {
        "kind": "villages", "basis": "equal", "parts": [
            {"kind": "collective", "share_bp": 3000},
            {"kind": "households", "basis": "shares", "share_bp": 6999}]}}
    body = problem(client.post("/sharing/rules", headers=tokens.finance, json=bad_rule), 422,
                   "sharing-invalid-rule")
    assert body["errors"][0]["field"] == "definition.parts"
    runs = client.get("/sharing/runs", headers=tokens.finance).get_json()
    assert runs["total"] == 1
    problem(client.put("/sharing/rules/SANMING/versions/1", headers=tokens.finance,
                       json={"definition": SANMING}), 409, "sharing-rule-version-used")


def test_a_trader_buys_single_tree_carbon(client, tokens, world, problem):
    r = client.post("/sharing/programmes", headers=tokens.finance, json={
        "code": "WANGMO", "name_zh": "望谟单株碳汇", "price_fen_per_tree_year": 300,
        "max_trees_per_household": 450, "max_trees_per_mu": 225, "term_years": 5})
    assert r.status_code == 201
    assert client.get("/sharing/programmes").get_json()[0]["price_fen_per_tree_year"] == 300
    buy = {"reference": "P1", "programme_code": "WANGMO", "buyer_account_code": "BUYER",
           "collective_party_ids": [world.xinhe], "record_date": RECORD, "years": 1}
    problem(client.post("/sharing/purchases", headers=tokens.trader(world.plant_a), json=buy),
            403)
    paid = client.post("/sharing/purchases", headers=tokens.trader(world.buyer), json=buy)
    assert paid.status_code == 201, paid.get_json()
    assert paid.get_json()["amount_fen"] == (450 + 100) * 300
    again = client.post("/sharing/purchases", headers=tokens.trader(world.buyer), json=buy)
    assert again.status_code == 200 and again.get_json()["id"] == paid.get_json()["id"]
    st = client.get(f"/sharing/households/{world.households['cen']}/statement",
                    headers=tokens.finance).get_json()
    assert st["receipts"][0]["buyer_name_zh"] == "碳汇买家(测试)"
    assert st["received_fen"] == 450 * 300


def test_register_over_http(client, tokens, world, problem):
    r = client.post("/sharing/register/entries", headers=tokens.registrar("522327"), json={
        "collective_party_id": world.dalang, "household_party_id": world.households["wei"],
        "effective_date": "2025-02-01", "shares": 3})
    problem(r, 403)
    r = client.post("/sharing/register/entries", headers=tokens.registrar(), json={
        "collective_party_id": world.dalang, "household_party_id": world.households["wei"],
        "effective_date": "2025-02-01", "shares": 3})
    assert r.status_code == 201, r.get_json()
    reg = client.get(f"/sharing/register/{world.dalang}?as_of=2025-02-01",
                     headers=tokens.registrar()).get_json()
    assert reg["total_shares"] == 3 + 1 + 1
    hist = client.get(f"/sharing/register/{world.dalang}/history?household_party_id="
                      f"{world.households['wei']}", headers=tokens.auditor)
    assert hist.status_code == 200, hist.get_json()
    hist = hist.get_json()
    assert [e["shares"] for e in hist["items"]] == [2, 3]
    problem(client.post("/sharing/register/entries", headers=tokens.admin, json={
        "collective_party_id": world.dalang, "household_party_id": world.plant_a,
        "effective_date": "2025-02-01"}), 422, "sharing-unknown-household")


def test_reversing_a_paid_run_over_http(client, tokens, world, flow, problem, database):
    """The admin prepared the run, finance paid it; finance reverses it (the admin may not:
    it prepared it). Every refusal is problem+json and writes nothing."""
    url = f"/sharing/runs/{flow}/reverse"
    problem(client.post(url, headers=tokens.finance, json={"reason": "x"}), 409,
            "sharing-run-not-reversible")  # prepared, not paid
    assert client.post(f"/sharing/runs/{flow}/approve", headers=tokens.finance).status_code \
        == 200
    problem(client.post(url, headers=tokens.finance), 400, "body-required")
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5},
                 {"reason": "x", "amount_fen": 1}):
        problem(client.post(url, headers=tokens.finance, json=body), 422)
    problem(client.post(url, headers=tokens.finance, json={"reason": "bad\u0000"}), 400)
    problem(client.post(url, headers=tokens.finance, json={"reason": "   "}), 422)
    problem(client.post(url, headers=tokens.finance, json=["x"]), 422)
    problem(client.post(url, json={"reason": "x"}), 401)
    problem(client.post(url, headers=tokens.auditor, json={"reason": "x"}), 403, "forbidden")
    problem(client.post(url, headers=tokens.admin, json={"reason": "x"}), 403, "four-eyes")
    problem(client.post("/sharing/runs/999/reverse", headers=tokens.finance,
                        json={"reason": "x"}), 404, "sharing-run-not-found")
    fund = client.get("/ledger/accounts/FUND/balance", headers=tokens.finance).get_json()
    assert fund["balance"] == 500_000_00 - 100_000_01
    with database.unit_of_work() as s:
        assert s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "sharing.run.reverse")).all() == []
    key = {**tokens.finance, "Idempotency-Key": "reverse-1"}
    done = client.post(url, headers=key, json={"reason": "记录日期有误 wrong record date"})
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body["status"] == "reversed" and body["reversal_reason"].startswith("记录日期")
    [[original, reversal_id]] = body["reversal_transaction_ids"]
    replay = client.post(url, headers=key, json={"reason": "记录日期有误 wrong record date"})
    assert replay.get_json() == body and replay.headers.get("Idempotent-Replayed") == "true"
    problem(client.post(url, headers=key, json={"reason": "another"}), 409)
    again = client.post(url, headers=tokens.finance, json={"reason": "again"})
    assert again.status_code == 200 and again.get_json() == body
    fund = client.get("/ledger/accounts/FUND/balance", headers=tokens.finance).get_json()
    assert fund["balance"] == 500_000_00  # paid back once
    tx = client.get(f"/ledger/transactions/{reversal_id}", headers=tokens.finance).get_json()
    assert tx["reverses_id"] == original
    with database.unit_of_work() as s:
        [event] = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "sharing.run.reverse")).all()
        assert event.entity_id == str(flow) and event.after["status"] == "reversed"
    listed = client.get("/sharing/runs?status=reversed", headers=tokens.auditor).get_json()
    assert [r["id"] for r in listed["items"]] == [flow]
    wei = world.households["wei"]
    st = client.get(f"/sharing/households/{wei}/statement", headers=tokens.auditor).get_json()
    assert st["received_fen"] == 0 and st["paid_fen"] == st["reversed_fen"] > 0
    assert [r["reversal_transaction_id"] for r in st["receipts"]] == [reversal_id]
    page = client.get(f"/sharing/households/{wei}/statement.html",
                      headers=tokens.auditor).get_data(as_text=True)
    assert "红字冲销 reversal" in page
    public = client.get(f"/sharing/public/payments/{world.inflows[0]}/recipients").get_json()
    assert public["distributed_fen"] == 0 and public["undistributed_fen"] == \
        public["amount_fen"]
    assert [r["run_id"] for r in public["reversed_runs"]] == [flow]
    assert "reason" not in public["reversed_runs"][0]
    problem(client.get(f"/sharing/runs/{flow}/payment-file?format=csv",
                       headers=tokens.finance), 409)
