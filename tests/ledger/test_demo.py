"""The demo ledger loaded by `ecovalue demo load`: balanced, with the published Wangmo rule."""

from __future__ import annotations

from ledger.core import services
from tests.conftest import load_demo


def test_demo_ledger_balances(app, session, system):
    load_demo(app)
    balance = {code: services.account_balance(session, system, code) for code in (
        "DEMO-PLANT-BANK", "DEMO-PLANT-CNY", "DEMO-FOREST-FUND", "DEMO-DALANG-CNY",
        "DEMO-DALANG-CARBON", "DEMO-CARBON-BUFFER", "DEMO-CARBON-ISSUANCE")}
    # 128 households x 450 trees x 3 yuan = 172,800 yuan = 17,280,000 fen; and the pilot
    # demo's fee for 500 t of the plant's 2024 obligation at 50.00 yuan: 2,500,000 fen
    pilot_fee = 500 * 5_000
    # the market demo: the plant bought 50 t at 60.00 yuan and escrows 100 t x 58.00 yuan for
    # its buy listing
    market = 50 * 6_000 + 100 * 5_800
    sharing = 120_000_00  # the sharing demo's compensation fee of the Xingyi plant
    assert balance["DEMO-PLANT-CNY"].balance == \
        50_000_000 - 17_280_000 - pilot_fee - market - sharing
    assert balance["DEMO-PLANT-BANK"].balance == -50_000_000
    fund = balance["DEMO-FOREST-FUND"]
    assert (fund.balance, fund.pending_debits, fund.available) == \
        (17_280_000 + pilot_fee, 17_280_000, pilot_fee)
    assert balance["DEMO-DALANG-CNY"].pending_credits == 17_280_000
    # the sharing demo's run 1: 150,000.00 yuan, 30 % to the collectives, split between the two
    # villages by households (Dalang 5 of the 9): 45,000.00 x 5/9 = 25,000.00 yuan
    assert balance["DEMO-DALANG-CNY"].balance == 150_000_00 * 30 // 100 * 5 // 9 == 25_000_00
    # Gold Standard flat 20 % buffer: 1,000 requested -> 800 to the project, 200 to the buffer
    assert balance["DEMO-DALANG-CARBON"].balance == 800
    assert balance["DEMO-CARBON-BUFFER"].balance == 200
    assert balance["DEMO-CARBON-ISSUANCE"].balance == -1000
    assert services.verify(session, system) == []


def test_demo_trader_token_sees_the_plant_accounts(app, cli, client):
    load_demo(app)
    out = cli("demo", "tokens").output
    trader = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("trader"))
    body = client.get("/ledger/accounts", headers={"Authorization": f"Bearer {trader}"}).get_json()
    codes = {a["code"] for a in body["items"]}
    # the plant's CNY accounts, and (from the carbon demo) its holding of the demo batch
    assert {"DEMO-PLANT-BANK", "DEMO-PLANT-CNY"} <= codes
    assert len({a["party_id"] for a in body["items"]}) == 1
