"""Money enters the ledger only through finance (issue: a trader could mint money by posting
from its own `external` account). A trader may request a deposit as a pending transfer that
finance posts when the bank has the money."""

from __future__ import annotations

import pytest

from ecovalue.auth import system_principal
from ledger.core import services
from tests.ledger.conftest import balance, posting_json, verify


@pytest.fixture()
def plant_bank(world, database):
    with database.unit_of_work() as s:
        services.create_account(s, system_principal("test"), party_id=world.plant, asset="CNY",
                                kind="external", code="PLANT-BANK")
    return world


def post(client, headers, postings, **body):
    return client.post("/ledger/transactions", headers=headers,
                       json={"type": "deposit", "postings": postings, **body})


def test_a_trader_cannot_post_money_in_from_its_own_external_account(plant_bank, client, tokens,
                                                                     problem, database):
    trader = tokens.trader(plant_bank.plant)
    body = problem(post(client, trader, posting_json("PLANT-BANK", "PLANT", 900_000_000_000_000)),
                   403, "value-entry-refused")
    assert "finance" in body["detail"]
    problem(client.post("/ledger/batches", headers=trader, json={"transactions": [
        {"type": "deposit", "postings": posting_json("PLANT-BANK", "PLANT", 5)}]}),
        403, "value-entry-refused")
    assert balance(database, "PLANT").balance == 0 and balance(database, "PLANT-BANK").balance == 0


def test_a_trader_requests_a_deposit_that_finance_posts(plant_bank, client, tokens, problem,
                                                        database):
    trader = tokens.trader(plant_bank.plant)
    requested = post(client, trader, posting_json("PLANT-BANK", "PLANT", 50_000), pending=True,
                     memo="bank receipt 2026-12-01 No. 0042")
    assert requested.status_code == 201, requested.get_json()
    tx_id = requested.get_json()["id"]
    assert balance(database, "PLANT").balance == 0  # nothing moved yet
    problem(client.post(f"/ledger/transactions/{tx_id}/post", json={}, headers=trader), 403)
    posted = client.post(f"/ledger/transactions/{tx_id}/post", json={}, headers=tokens.finance)
    assert posted.status_code == 201, posted.get_json()
    assert balance(database, "PLANT").balance == 50_000
    assert balance(database, "PLANT-BANK").balance == -50_000
    assert verify(database) == []


@pytest.mark.parametrize("role", ["finance", "admin"])
def test_finance_and_admin_bring_money_in(plant_bank, client, tokens, role, database):
    response = post(client, tokens.headers(role), posting_json("PLANT-BANK", "PLANT", 700))
    assert response.status_code == 201, response.get_json()
    assert balance(database, "PLANT").balance == 700


@pytest.mark.parametrize("role, status", [("registrar", 403), ("verifier", 403),
                                          ("auditor", 403)])
def test_other_roles_cannot_post_at_all(plant_bank, client, tokens, role, status, problem):
    headers = tokens.registrar() if role == "registrar" else tokens.headers(role)
    problem(post(client, headers, posting_json("PLANT-BANK", "PLANT", 1)), status)


def test_paying_out_to_an_external_account_stays_open_to_a_trader(plant_bank, client, tokens):
    assert post(client, tokens.finance, posting_json("PLANT-BANK", "PLANT", 900)).status_code \
        == 201
    withdrawal = post(client, tokens.trader(plant_bank.plant),
                      posting_json("PLANT", "PLANT-BANK", 400), type="withdrawal")
    assert withdrawal.status_code == 201, withdrawal.get_json()
