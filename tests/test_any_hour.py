"""The main flows at the hours when UTC and Shanghai disagree on the date.

At 23:30 UTC on the last day of a month it is already the 1st of the next month in Shanghai
(07:30), and at 23:30 UTC on 31 December already the next year. The clock is frozen there (and,
as a control, at 15:30 UTC, when both calendars still agree) and the flows run over HTTP as a
client would: a ledger post, a batch, an account statement, a period close, a valuation run.
What the service records must be the Shanghai date: the effective date of a posting, today for
a statement, the month that may be closed. Runs on SQLite and, with
ECOVALUE_TEST_DATABASE_URL, on PostgreSQL (see tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine

from ecovalue.clock import local_today
from valuation.demo import demo_workbook
from valuation.services import prices

UTC = dt.UTC
#: (frozen instant, the accounting date the service must use)
HOURS = {
    "last-of-month-23:30Z": (dt.datetime(2026, 11, 30, 23, 30, tzinfo=UTC), dt.date(2026, 12, 1)),
    "new-year-eve-23:30Z": (dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), dt.date(2027, 1, 1)),
    "control-15:30Z": (dt.datetime(2026, 11, 30, 15, 30, tzinfo=UTC), dt.date(2026, 11, 30)),
}


@pytest.fixture(params=list(HOURS), ids=list(HOURS))
def clock(request):  # type: ignore[no-untyped-def]
    """The frozen instant and the Shanghai date it falls on."""
    instant, day = HOURS[request.param]
    with time_machine.travel(instant, tick=False):
        assert local_today() == day
        yield instant, day


@pytest.fixture()
def accounts(clock, client, tokens):  # type: ignore[no-untyped-def]
    """A village collective and a fund holder, a CNY holding each, and the bank (external),
    made over HTTP; the holding VILLAGE starts with 10,000 fen."""
    parties = []
    for name in ("望谟县某村股份经济合作社", "望谟县森林生态补偿基金"):
        response = client.post("/catalog/parties", headers=tokens.admin, json={
            "kind": "village_collective", "name_zh": name, "region_code": "522326"})
        assert response.status_code == 201, response.get_json()
        parties.append(response.get_json()["id"])
    asset = client.post("/ledger/assets", headers=tokens.finance, json={
        "code": "CNY", "kind": "currency", "name_zh": "人民币"})
    assert asset.status_code == 201, asset.get_json()
    for code, party, kind in (("BANK", parties[1], "external"), ("VILLAGE", parties[0], "holding"),
                              ("FUND", parties[1], "fund")):
        response = client.post("/ledger/accounts", headers=tokens.finance, json={
            "party_id": party, "asset": "CNY", "kind": kind, "code": code})
        assert response.status_code == 201, response.get_json()
    deposit = post(client, tokens, "BANK", "VILLAGE", 10_000, type="deposit")
    assert deposit.status_code == 201, deposit.get_json()
    return parties


def post(client, tokens, debit: str, credit: str, amount: int, **body):  # type: ignore
    return client.post("/ledger/transactions", headers=tokens.finance, json={
        "type": "transfer", **body, "postings": [
            {"account": debit, "asset": "CNY", "direction": "debit", "amount": amount},
            {"account": credit, "asset": "CNY", "direction": "credit", "amount": amount}]})


def previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def test_a_posting_is_dated_today_in_shanghai(clock, accounts, client, tokens, problem):
    instant, today = clock
    posted = post(client, tokens, "VILLAGE", "FUND", 1_234)
    assert posted.status_code == 201, posted.get_json()
    body = posted.get_json()
    assert body["effective_date"] == today.isoformat()
    assert dt.datetime.fromisoformat(body["created_at"]) == instant  # timestamps stay UTC
    explicit = post(client, tokens, "VILLAGE", "FUND", 1, effective_date=today.isoformat())
    assert explicit.status_code == 201, explicit.get_json()  # today is not "in the future"
    problem(post(client, tokens, "VILLAGE", "FUND", 1,
                 effective_date=(today + dt.timedelta(days=1)).isoformat()),
            422, "effective-date-in-future")


def test_a_batch_is_dated_today_in_shanghai(clock, accounts, client, tokens):
    _, today = clock
    transfers = [{"type": "dividend", "postings": [
        {"account": "VILLAGE", "asset": "CNY", "direction": "debit", "amount": amount},
        {"account": "FUND", "asset": "CNY", "direction": "credit", "amount": amount}]}
        for amount in (100, 250)]
    response = client.post("/ledger/batches", headers=tokens.finance,
                           json={"memo": "any hour", "transactions": transfers})
    assert response.status_code == 201, response.get_json()
    for tx_id in response.get_json()["transaction_ids"]:
        tx = client.get(f"/ledger/transactions/{tx_id}", headers=tokens.auditor).get_json()
        assert tx["effective_date"] == today.isoformat()
    balance = client.get(f"/ledger/accounts/FUND/balance?as_of={today}",
                         headers=tokens.auditor).get_json()
    assert balance["balance"] == 350


def test_a_statement_ends_today_in_shanghai(clock, accounts, client, tokens):
    _, today = clock
    assert post(client, tokens, "VILLAGE", "FUND", 700).status_code == 201
    statement = client.get("/ledger/accounts/VILLAGE/statement",
                           headers=tokens.auditor).get_json()
    assert statement["date_to"] == today.isoformat()
    assert statement["date_from"] == today.replace(day=1).isoformat()
    assert [line["effective_date"] for line in statement["lines"]] == [today.isoformat()] * 2
    assert [line["balance"] for line in statement["lines"]] == [10_000, 9_300]
    yesterday = client.get(f"/ledger/accounts/VILLAGE/balance?as_of={today - dt.timedelta(1)}",
                           headers=tokens.auditor).get_json()
    assert yesterday["balance"] == 0  # everything happened today, Shanghai time


def test_the_month_that_ended_in_shanghai_can_be_closed(clock, accounts, client, tokens,
                                                         problem):
    _, today = clock
    ended = previous_month(today)
    closed = client.post(f"/ledger/periods/{ended:%Y-%m}/close", headers=tokens.finance,
                         json={"note": "signed off"})
    assert closed.status_code == 200, closed.get_json()
    assert closed.get_json()["month"] == f"{ended:%Y-%m}"
    assert closed.get_json()["status"] == "closed"
    last_day = today.replace(day=1) - dt.timedelta(days=1)
    problem(post(client, tokens, "VILLAGE", "FUND", 5, effective_date=last_day.isoformat()),
            409, "period-closed")
    assert post(client, tokens, "VILLAGE", "FUND", 5).status_code == 201  # today: still open
    following = today.replace(day=28) + dt.timedelta(days=4)
    problem(client.post(f"/ledger/periods/{following:%Y-%m}/close", headers=tokens.finance,
                        json={}), 422)
    # the current Shanghai month is not in the future (at 23:30 UTC it is not yet, in UTC)
    current = client.post(f"/ledger/periods/{today:%Y-%m}/close", headers=tokens.finance,
                          json={})
    assert current.status_code == 200, current.get_json()
    problem(post(client, tokens, "VILLAGE", "FUND", 5), 409, "period-closed")
    listed = client.get("/ledger/periods", headers=tokens.auditor).get_json()
    assert {p["month"] for p in listed} == {f"{ended:%Y-%m}", f"{today:%Y-%m}"}


def test_a_valuation_run_records_the_instant(clock, client, tokens, session):
    instant, _ = clock
    prices.ensure_reference_data(session)  # the default price book and CPI series
    session.commit()
    registrar = tokens.registrar("522326")
    upload = client.post("/valuation/quantity-sets/upload?region_code=522326&year=2024",
                         data={"file": (io.BytesIO(demo_workbook(2024)), "wangmo.xlsx")},
                         headers=registrar, content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_json()
    created = client.post("/valuation/runs", headers=registrar, json={
        "region_code": "522326", "year": 2024, "quantity_set_ids": [upload.get_json()["id"]]})
    assert created.status_code == 201, created.get_json()
    run = created.get_json()
    assert run["status"] == "finished" and run["gep_current"] > 0
    assert dt.datetime.fromisoformat(run["created_at"]) == instant
    published = client.post(f"/valuation/runs/{run['id']}/publish", headers=tokens.verifier)
    assert published.status_code == 200, published.get_json()
    assert dt.datetime.fromisoformat(published.get_json()["published_at"]) == instant
    report = client.get(f"/valuation/runs/{run['id']}/report?by=category&unit=yi")
    assert report.status_code == 200  # published: public
