"""The ledger over HTTP: problem+json for every bad input, permissions, exports, idempotency."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from ecovalue.audit.models import AuditEvent
from ecovalue.clock import local_today, utcnow
from ecovalue.idempotency import IdempotencyRecord
from ledger.core.models import LedgerPosting, LedgerTransaction
from tests.ledger.conftest import balance, count, posting_json, verify

TODAY = local_today()


def post_tx(client, headers, postings, **body):
    return client.post("/ledger/transactions", headers=headers,
                       json={"type": "transfer", "postings": postings, **body})


@pytest.fixture()
def funded(world, client, tokens):
    response = post_tx(client, tokens.finance, posting_json("BANK", "PLANT", 10_000),
                       type="deposit")
    assert response.status_code == 201, response.get_json()
    return world


def test_create_get_list_reverse(funded, client, tokens):
    created = post_tx(client, tokens.finance, posting_json("PLANT", "ALICE", 2_500),
                      memo="compensation", metadata={"agreement": "H-2024-01"})
    assert created.status_code == 201
    body = created.get_json()
    assert created.headers["Location"] == f"/ledger/transactions/{body['id']}"
    assert body["status"] == "posted" and body["effective_date"] == TODAY.isoformat()
    assert body["metadata"] == {"agreement": "H-2024-01"}
    got = client.get(f"/ledger/transactions/{body['id']}", headers=tokens.auditor).get_json()
    assert [(p["account_code"], p["amount"]) for p in got["postings"]] == [
        ("PLANT", 2_500), ("ALICE", 2_500)]
    listed = client.get("/ledger/transactions?account=ALICE", headers=tokens.auditor).get_json()
    assert [t["id"] for t in listed["items"]] == [body["id"]]
    assert client.get("/ledger/transactions?type=deposit",
                      headers=tokens.auditor).get_json()["total"] == 1
    reversed_ = client.post(f"/ledger/transactions/{body['id']}/reverse", json={"memo": "error"},
                            headers=tokens.finance)
    assert reversed_.status_code == 201 and reversed_.get_json()["reverses_id"] == body["id"]
    assert client.get("/ledger/accounts/ALICE/balance",
                      headers=tokens.auditor).get_json()["balance"] == 0


def test_balances_statement_and_exports(funded, client, tokens):
    post_tx(client, tokens.finance, posting_json("PLANT", "ALICE", 1_234))
    b = client.get(f"/ledger/accounts/{funded.accounts['PLANT']}/balance",
                   headers=tokens.auditor).get_json()
    assert (b["balance"], b["available"], b["asset"], b["unit"]) == (8_766, 8_766, "CNY", "fen")
    as_of = client.get(f"/ledger/accounts/PLANT/balance?as_of={TODAY - dt.timedelta(days=1)}",
                       headers=tokens.auditor).get_json()
    assert as_of["balance"] == 0 and as_of["available"] is None
    st = client.get("/ledger/accounts/PLANT/statement", headers=tokens.auditor).get_json()
    assert [line["balance"] for line in st["lines"]] == [10_000, 8_766]
    csv = client.get("/ledger/accounts/PLANT/statement.csv", headers=tokens.auditor)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "attachment" in csv.headers["Content-Disposition"]
    assert ",12.34,0.00,87.66" in csv.get_data().decode("utf-8-sig")
    xlsx = client.get("/ledger/accounts/PLANT/statement.xlsx", headers=tokens.auditor)
    rows = list(load_workbook(io.BytesIO(xlsx.get_data())).active.iter_rows(values_only=True))
    assert rows[-1][4:7] == (1_234, 0, 8_766)
    party = client.get(f"/ledger/parties/{funded.plant}/balances",
                       headers=tokens.auditor).get_json()
    assert party["totals"] == {"CNY": 8_766, "FCC-WM-2023-001": 0}


def _unbalanced():
    return [{"account": "PLANT", "asset": "CNY", "direction": "debit", "amount": 5},
            {"account": "ALICE", "asset": "CNY", "direction": "credit", "amount": 4}]


BAD_BODIES = [
    ("unbalanced", lambda: {"postings": _unbalanced()}, 422, "unbalanced-transaction"),
    ("unknown account", lambda: {"postings": posting_json("PLANT", "NOBODY", 5)}, 422,
     "unknown-account"),
    ("asset mismatch", lambda: {"postings": posting_json("PLANT", "ALICE", 5,
                                                         asset="FCC-WM-2023-001")}, 422,
     "asset-mismatch"),
    ("zero", lambda: {"postings": posting_json("PLANT", "ALICE", 0)}, 422, "invalid-amount"),
    ("negative", lambda: {"postings": posting_json("PLANT", "ALICE", -5)}, 422,
     "invalid-amount"),
    ("fractional", lambda: {"postings": posting_json("PLANT", "ALICE", 1.5)}, 422,
     "invalid-amount"),
    ("integral float", lambda: {"postings": posting_json("PLANT", "ALICE", 1.0)}, 422,
     "invalid-amount"),
    ("string", lambda: {"postings": posting_json("PLANT", "ALICE", "1.0")}, 422,
     "invalid-amount"),
    ("beyond 64 bits", lambda: {"postings": posting_json("PLANT", "ALICE", 2**63)}, 422,
     "invalid-amount"),
    ("overdraft", lambda: {"postings": posting_json("PLANT", "ALICE", 10_001)}, 409,
     "insufficient-balance"),
    ("future date", lambda: {"postings": posting_json("PLANT", "ALICE", 5),
                             "effective_date": (TODAY + dt.timedelta(days=2)).isoformat()}, 422,
     "effective-date-in-future"),
    ("one posting", lambda: {"postings": posting_json("PLANT", "ALICE", 5)[:1]}, 422,
     "validation-error"),
    ("no type", lambda: {"type": None, "postings": posting_json("PLANT", "ALICE", 5)}, 422,
     "validation-error"),
    ("bad direction", lambda: {"postings": [
        {"account": "PLANT", "asset": "CNY", "direction": "up", "amount": 5},
        {"account": "ALICE", "asset": "CNY", "direction": "credit", "amount": 5}]}, 422,
     "validation-error"),
]


@pytest.mark.parametrize("name, body, status, code", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_problem_json_and_writes_nothing(funded, client, tokens, problem, database,
                                                      name, body, status, code):
    before = (count(database, LedgerPosting), count(database, AuditEvent))
    response = client.post("/ledger/transactions", headers=tokens.finance,
                           json={"type": "transfer", **body()})
    payload = problem(response, status, code)
    assert payload["detail"]
    assert (count(database, LedgerPosting), count(database, AuditEvent)) == before


def test_fractional_json_text_is_refused_not_truncated(funded, client, tokens, problem):
    raw = ('{"type": "transfer", "postings": [{"account": "PLANT", "asset": "CNY", '
           '"direction": "debit", "amount": 1.0}, {"account": "ALICE", "asset": "CNY", '
           '"direction": "credit", "amount": 1.0}]}')
    response = client.post("/ledger/transactions", data=raw, headers={
        **tokens.finance, "Content-Type": "application/json"})
    body = problem(response, 422, "invalid-amount")
    assert body["errors"][0]["field"] == "postings.0.amount"


def test_closed_period_is_409(funded, client, tokens, problem):
    month = TODAY.replace(day=1)
    closed = client.post(f"/ledger/periods/{month:%Y-%m}/close", json={"note": "signed off"},
                         headers=tokens.finance)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    problem(post_tx(client, tokens.finance, posting_json("PLANT", "ALICE", 5)), 409,
            "period-closed")
    problem(client.post(f"/ledger/periods/{month:%Y-%m}/close", json={}, headers=tokens.finance),
            409, "period-already-closed")
    problem(client.post("/ledger/periods/2024-13/close", json={}, headers=tokens.finance), 422)
    problem(client.post(f"/ledger/periods/{month:%Y-%m}/close", json={}, headers=tokens.trader(
        funded.plant)), 403)
    listed = client.get("/ledger/periods", headers=tokens.auditor).get_json()
    assert listed[0]["month"] == f"{month:%Y-%m}"
    assert client.post(f"/ledger/periods/{month:%Y-%m}/reopen", json={},
                       headers=tokens.finance).status_code == 200
    assert post_tx(client, tokens.finance, posting_json("PLANT", "ALICE", 5)).status_code == 201


def test_trader_permissions(funded, client, tokens, problem):
    trader = tokens.trader(funded.plant)
    assert post_tx(client, trader, posting_json("PLANT", "ALICE", 5)).status_code == 201
    body = problem(post_tx(client, trader, posting_json("ALICE", "PLANT", 5)), 403,
                   "account-not-owned")
    assert "own party" in body["detail"]
    problem(client.get("/ledger/accounts/ALICE/balance", headers=trader), 403,
            "account-not-owned")
    assert client.get("/ledger/accounts/PLANT/balance", headers=trader).status_code == 200
    mine = client.get("/ledger/accounts", headers=trader).get_json()
    assert {a["code"] for a in mine["items"]} == {"PLANT", "PLANT-C"}
    assert client.get("/ledger/transactions", headers=trader).get_json()["total"] == 2
    problem(client.post("/ledger/accounts", headers=trader, json={
        "party_id": funded.plant, "asset": "CNY", "kind": "holding"}), 403)
    problem(client.post("/ledger/transactions/1/reverse", json={}, headers=trader), 403)
    problem(client.get("/ledger/transactions", headers=tokens.registrar()), 403)


def test_pending_over_http(funded, client, tokens, problem):
    expires = (utcnow() + dt.timedelta(hours=1)).isoformat()
    pending = post_tx(client, tokens.finance, posting_json("PLANT", "ESCROW", 4_000),
                      pending=True, expires_at=expires).get_json()
    assert pending["status"] == "pending" and pending["expires_at"]
    b = client.get("/ledger/accounts/PLANT/balance", headers=tokens.auditor).get_json()
    assert (b["pending_debits"], b["available"]) == (4_000, 6_000)
    posted = client.post(f"/ledger/transactions/{pending['id']}/post", json={},
                         headers=tokens.finance)
    assert posted.status_code == 201 and posted.get_json()["pending_id"] == pending["id"]
    problem(client.post(f"/ledger/transactions/{pending['id']}/void", json={},
                        headers=tokens.finance), 409, "pending-already-resolved")
    problem(client.post(f"/ledger/transactions/{posted.get_json()['id']}/post", json={},
                        headers=tokens.finance), 409, "not-pending")
    problem(client.post("/ledger/transactions/999999/post", json={}, headers=tokens.finance),
            404, "transaction-not-found")
    assert client.post("/ledger/pending/expire", headers=tokens.finance).get_json() == {
        "expired": []}


def test_batch_over_http(funded, client, tokens, problem, database):
    transactions = [{"type": "transfer", "postings": posting_json("PLANT", "ALICE", 100)}
                    for _ in range(3)]
    response = client.post("/ledger/batches", json={"memo": "dividends", "transactions":
                                                     transactions}, headers=tokens.finance)
    assert response.status_code == 201
    batch = response.get_json()
    assert batch["transaction_count"] == 3 and len(batch["transaction_ids"]) == 3
    assert client.get(f"/ledger/batches/{batch['id']}",
                      headers=tokens.auditor).get_json() == batch
    transactions.append({"type": "transfer", "postings": posting_json("PLANT", "ALICE", 1.5)})
    body = problem(client.post("/ledger/batches", json={"transactions": transactions},
                               headers=tokens.finance), 422, "invalid-amount")
    assert body["errors"][0]["field"] == "transactions.3.postings.0.amount"
    assert balance(database, "ALICE").balance == 300


def test_accounts_and_assets_over_http(world, client, tokens, problem):
    asset = client.post("/ledger/assets", headers=tokens.finance, json={
        "code": "FCC-CH-2022-007", "kind": "carbon_credit", "name_zh": "册亨县碳汇 2022 第7批",
        "vintage_year": 2022, "batch_reference": "QXN-CH-2022-007"})
    assert asset.status_code == 201 and asset.get_json()["unit"] == "tCO2e"
    problem(client.post("/ledger/assets", headers=tokens.finance, json={
        "code": "FCC-X", "kind": "carbon_credit", "name_zh": "x"}), 422, "validation-error")
    problem(client.post("/ledger/assets", headers=tokens.finance, json={
        "code": "CNY", "kind": "currency", "name_zh": "人民币"}), 409, "code-taken")
    account = client.post("/ledger/accounts", headers=tokens.finance, json={
        "party_id": world.alice, "asset": "FCC-CH-2022-007", "kind": "retirement"})
    assert account.status_code == 201
    assert account.get_json()["code"] == f"P{world.alice}-RETIREMENT-FCC-CH-2022-007"
    assert account.get_json()["no_overdraft"] is True
    problem(client.post("/ledger/accounts", headers=tokens.finance, json={
        "party_id": 99999, "asset": "CNY", "kind": "holding"}), 422, "validation-error")
    problem(client.get("/ledger/accounts/NOPE", headers=tokens.auditor), 404, "account-not-found")
    assert client.get("/ledger/assets?kind=carbon_credit",
                      headers=tokens.trader(world.plant)).get_json()["total"] == 2


def test_assertions_over_http(funded, client, tokens):
    ok = client.post("/ledger/assertions", headers=tokens.finance, json={
        "account": "PLANT", "as_of": TODAY.isoformat(), "expected_balance": 10_000})
    assert ok.status_code == 201 and ok.get_json()["passed"] is True
    bad = client.post("/ledger/assertions", headers=tokens.finance, json={
        "account": "PLANT", "as_of": TODAY.isoformat(), "expected_balance": 9_000}).get_json()
    assert bad["passed"] is False and bad["difference"] == 1_000
    listed = client.get("/ledger/assertions?passed=false", headers=tokens.auditor).get_json()
    assert [a["id"] for a in listed["items"]] == [bad["id"]]
    recheck = client.post("/ledger/assertions/recheck", json={}, headers=tokens.finance)
    assert recheck.get_json()["checked"] == 2 and len(recheck.get_json()["failed"]) == 1


# --- the shared Idempotency-Key mechanism on the ledger's endpoints --------------------------


def _state(database):
    with database.session(write=False) as s:
        return (s.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction)),
                s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
                s.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)))


def test_replay_returns_identical_response_and_changes_nothing(funded, client, tokens, database):
    headers = {**tokens.finance, "Idempotency-Key": "pay-2024-0001"}
    body = {"type": "transfer", "postings": posting_json("PLANT", "ALICE", 700)}
    first = client.post("/ledger/transactions", json=body, headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    state = _state(database)
    again = client.post("/ledger/transactions", json=body, headers=headers)
    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert _state(database) == state
    assert balance(database, "ALICE").balance == 700
    assert first.get_json()["idempotency_key"] == "pay-2024-0001"


def test_same_key_different_body_is_409(funded, client, tokens, problem, database):
    headers = {**tokens.finance, "Idempotency-Key": "k-1"}
    client.post("/ledger/transactions", json={"type": "transfer", "postings": posting_json(
        "PLANT", "ALICE", 700)}, headers=headers)
    state = _state(database)
    problem(client.post("/ledger/transactions", json={"type": "transfer", "postings":
                                                      posting_json("PLANT", "ALICE", 701)},
                        headers=headers), 409, "idempotency-key-reused")
    problem(client.post("/ledger/batches", json={"transactions": [{"type": "transfer",
            "postings": posting_json("PLANT", "ALICE", 700)}]}, headers=headers), 409,
            "idempotency-key-reused")
    assert _state(database) == state


def test_same_key_from_another_token_is_independent(funded, client, tokens, database):
    body = {"type": "transfer", "postings": posting_json("PLANT", "ALICE", 100)}
    for headers in (tokens.finance, tokens.admin, tokens.trader(funded.plant)):
        response = client.post("/ledger/transactions", json=body,
                               headers={**headers, "Idempotency-Key": "shared"})
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert balance(database, "ALICE").balance == 300


def test_failed_request_is_not_stored_and_can_be_retried(funded, client, tokens, problem):
    headers = {**tokens.finance, "Idempotency-Key": "retry-me"}
    body = {"type": "transfer", "postings": posting_json("PLANT", "ALICE", 20_000)}
    problem(client.post("/ledger/transactions", json=body, headers=headers), 409,
            "insufficient-balance")
    post_tx(client, tokens.finance, posting_json("BANK", "PLANT", 10_000), type="deposit")
    assert client.post("/ledger/transactions", json=body, headers=headers).status_code == 201


@pytest.mark.parametrize("path, body", [
    ("/reverse", {}), ("/reverse", {"memo": "again"})])
def test_reverse_replay_and_reuse(funded, client, tokens, problem, path, body):
    tx = post_tx(client, tokens.finance, posting_json("PLANT", "ALICE", 5)).get_json()
    headers = {**tokens.finance, "Idempotency-Key": f"rev-{tx['id']}"}
    first = client.post(f"/ledger/transactions/{tx['id']}{path}", json=body, headers=headers)
    again = client.post(f"/ledger/transactions/{tx['id']}{path}", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"]
    # without the key, a second reversal is refused by the ledger itself
    problem(client.post(f"/ledger/transactions/{tx['id']}{path}", json=body,
                        headers=tokens.finance), 409, "already-reversed")


def test_bad_idempotency_key_is_400(funded, client, tokens, problem):
    problem(client.post("/ledger/transactions", json={"type": "transfer", "postings":
                                                      posting_json("PLANT", "ALICE", 5)},
                        headers={**tokens.finance, "Idempotency-Key": "has space"}), 400)


def test_concurrent_requests_with_the_same_key_make_one_transaction(funded, app, tokens,
                                                                    database):
    """Eight clients send the same request with the same key at once: exactly one
    transaction; every answer is the first one's (replayed or not). On SQLite the writers
    queue at BEGIN IMMEDIATE, so the seven late ones meet the committed key."""
    import threading

    headers = {**tokens.finance, "Idempotency-Key": "race-1"}
    body = {"type": "transfer", "postings": posting_json("PLANT", "ALICE", 10)}
    barrier = threading.Barrier(8)
    results = []

    def worker():
        client = app.test_client()
        barrier.wait()
        response = client.post("/ledger/transactions", json=body, headers=headers)
        results.append((response.status_code, response.get_data()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {status for status, _ in results} == {201}, results
    assert len({json.loads(data)["id"] for _, data in results}) == 1
    with database.session(write=False) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(LedgerTransaction).where(
            LedgerTransaction.type == "transfer")) == 1
    assert balance(database, "ALICE").balance == 10
    assert verify(database) == []
