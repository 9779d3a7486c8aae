"""The market over HTTP, as traders' systems use it: listings, takes, cancels, expiry,
block trades, auctions, public market data, the event feed, Idempotency-Key, rate limits;
every refusal a problem+json with its code, nothing half-settled."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine

from ecovalue.clock import utcnow
from ledger.carbon.models import CarbonRetirement
from tests.ledger.market.conftest import FUNDS_FEN, cash


def cash_of(database, party_id: int) -> int:
    with database.unit_of_work() as s:  # a short unit: SQLite has one writer at a time
        return cash(s, party_id)

LATER = (utcnow() + dt.timedelta(days=3)).isoformat()


@pytest.fixture()
def traders(market, tokens):
    return {"seller": tokens.trader(market.seller), "plant": tokens.trader(market.plant),
            "buyer": tokens.trader(market.buyer)}


def listing(client, headers, market, **body):
    values = {"side": "sell", "batch": market.batch, "quantity_t": 100,
              "price_fen_per_tco2e": 5_000, "expires_at": LATER, **body}
    response = client.post("/market/listings", headers=headers, json=values)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_list_buy_and_follow_the_feed(client, market, traders, database):
    sold = listing(client, traders["seller"], market, quantity_t=300, min_lot_t=10)
    assert sold["party_id"] == market.seller and sold["remaining_t"] == 300
    seen = client.get(f"/market/listings/{sold['id']}", headers=traders["plant"]).get_json()
    assert seen["party_id"] is None  # another trader does not learn who lists
    book = client.get(f"/market/book?batch={market.batch}").get_json()  # public, no token
    assert book["asks"] == [{"price_fen_per_tco2e": 5_000, "quantity_t": 300, "listings": 1}]
    taken = client.post(f"/market/listings/{sold['id']}/take", headers={
        **traders["plant"], "Idempotency-Key": "buy-1"}, json={"quantity_t": 50})
    assert taken.status_code == 201, taken.get_json()
    trade = taken.get_json()
    assert (trade["quantity_t"], trade["value_fen"], trade["fee_fen"]) == (50, 250_000, 1_250)
    assert trade["buyer_party_id"] == market.plant
    replay = client.post(f"/market/listings/{sold['id']}/take", headers={
        **traders["plant"], "Idempotency-Key": "buy-1"}, json={"quantity_t": 50})
    assert replay.get_json() == trade and replay.headers["Idempotent-Replayed"] == "true"
    assert cash_of(database, market.plant) == FUNDS_FEN - 250_000  # paid once
    public = client.get(f"/market/trades?batch={market.batch}").get_json()
    assert public["total"] == 1 and public["items"][0]["buyer_party_id"] is None
    feed = client.get("/market/events?after=0", headers=traders["plant"]).get_json()
    kinds = [e["kind"] for e in feed["items"]]
    assert kinds == ["listing.opened", "trade", "settlement", "listing.changed"]
    assert feed["items"][1]["data"]["buyer_party_id"] == market.plant
    assert feed["items"][0]["data"]["party_id"] is None  # the seller is not the plant
    after = client.get(f"/market/events?after={feed['next']}",
                       headers=traders["plant"]).get_json()
    assert after["items"] == [] and after["next"] == feed["next"]
    retired = client.post(f"/market/listings/{sold['id']}/take", headers=traders["plant"],
                          json={"quantity_t": 20, "retire": {
                              "beneficiary_name": "兴义火电厂", "purpose": "thermal_power_pilot",
                              "compliance_year": 2025}}).get_json()
    assert "certificate_number" in retired, retired
    certificate = client.get(f"/carbon/public/certificates/{retired['certificate_number']}")
    assert certificate.status_code == 200
    more = client.get(f"/market/events?after={feed['next']}",
                      headers=traders["plant"]).get_json()
    assert [e["kind"] for e in more["items"]] == ["trade", "settlement", "retirement",
                                                   "listing.changed"]
    daily = client.get(f"/market/daily?batch={market.batch}").get_json()
    assert daily["days"][0]["volume_t"] == 70 and daily["days"][0]["close_fen_per_tco2e"] == 5_000


def test_bad_input_is_a_clear_problem_and_writes_nothing(client, market, traders, problem,
                                                         database):
    sold = listing(client, traders["seller"], market, quantity_t=100, min_lot_t=20)
    take = f"/market/listings/{sold['id']}/take"
    problem(client.post(take, headers=traders["plant"], json={"quantity_t": 101}), 409,
            "exceeds-listing")
    problem(client.post(take, headers=traders["plant"], json={"quantity_t": 19}), 422,
            "below-minimum-lot")
    problem(client.post(take, headers=traders["plant"], json={"quantity_t": 1.5}), 422,
            "validation-error")
    problem(client.post(take, headers=traders["plant"], json={"quantity_t": 20,
                                                              "party_id": market.buyer}),
            403, "forbidden")  # a trader acts for its own party only
    problem(client.post(take, headers=traders["seller"], json={"quantity_t": 20}), 409,
            "self-trade")
    dear = listing(client, traders["seller"], market, quantity_t=100,
                   price_fen_per_tco2e=10**9 // 10)  # 1,000,000 yuan/t: more than the plant has
    problem(client.post(f"/market/listings/{dear['id']}/take", headers=traders["plant"],
                        json={"quantity_t": 2}), 409, "insufficient-balance")
    problem(client.post("/market/listings", headers=traders["seller"], json={
        "side": "sell", "batch": market.batch, "quantity_t": 10_000,
        "price_fen_per_tco2e": 5_000, "expires_at": LATER}), 409, "insufficient-credits")
    problem(client.post("/market/listings", headers=traders["seller"], json={
        "side": "sell", "batch": "NO-SUCH", "quantity_t": 1, "price_fen_per_tco2e": 5_000,
        "expires_at": LATER}), 404)
    problem(client.post("/market/listings", headers=traders["seller"], json={
        "side": "sell", "batch": market.batch, "quantity_t": 1, "price_fen_per_tco2e": 5_000,
        "expires_at": "2020-01-01T00:00:00+08:00"}), 422, "validation-error")
    client.post(f"/market/listings/{sold['id']}/cancel", headers=traders["seller"])
    problem(client.post(take, headers=traders["plant"], json={"quantity_t": 20}), 409,
            "listing-closed")
    problem(client.post(f"/market/listings/{sold['id']}/cancel", headers=traders["plant"]),
            403)
    assert cash_of(database, market.plant) == FUNDS_FEN  # nothing bought, nothing half-paid


def test_price_band_and_t_plus_one_over_http(client, market, traders, tokens, problem):
    admin = tokens.admin
    assert client.put(f"/market/batches/{market.batch}/rules", headers=admin, json={
        "reference_price_fen_per_tco2e": 5_000}).status_code == 200
    problem(client.post("/market/listings", headers=traders["seller"], json={
        "side": "sell", "batch": market.batch, "quantity_t": 10, "price_fen_per_tco2e": 5_501,
        "expires_at": LATER}), 422, "price-outside-band")
    sold = listing(client, traders["seller"], market, price_fen_per_tco2e=5_500)
    client.post(f"/market/listings/{sold['id']}/take", headers=traders["plant"],
                json={"quantity_t": 40})
    body = problem(client.post("/market/listings", headers=traders["plant"], json={
        "side": "sell", "batch": market.batch, "quantity_t": 1, "price_fen_per_tco2e": 5_500,
        "expires_at": LATER}), 409, "same-day-resale")
    assert body["sellable_t"] == 0
    with time_machine.travel(utcnow() + dt.timedelta(days=1), tick=True):
        again = client.post("/market/listings", headers=traders["plant"], json={
            "side": "sell", "batch": market.batch, "quantity_t": 40,
            "price_fen_per_tco2e": 5_500,
            "expires_at": (utcnow() + dt.timedelta(days=1)).isoformat()})
        assert again.status_code == 201, again.get_json()


def test_expiry_over_http(client, market, traders, tokens, problem):
    soon = (utcnow() + dt.timedelta(minutes=5)).isoformat()
    sold = listing(client, traders["seller"], market, expires_at=soon)
    with time_machine.travel(utcnow() + dt.timedelta(minutes=10), tick=True):
        problem(client.post(f"/market/listings/{sold['id']}/take", headers=traders["plant"],
                            json={"quantity_t": 10}), 409, "listing-expired")
        problem(client.post("/market/expire", headers=traders["plant"]), 403)
        swept = client.post("/market/expire", headers=tokens.finance).get_json()
        assert swept == {"expired_listing_ids": [sold["id"]], "expired_block_trade_ids": [],
                         "closed_auction_ids": []}
    back = client.get(f"/market/listings/{sold['id']}", headers=traders["seller"]).get_json()
    assert back["status"] == "expired"


def test_block_trades_over_http(client, market, traders, tokens, problem):
    client.put("/market/rules", headers=tokens.admin, json={"block_min_t": 500})
    problem(client.put("/market/rules", headers=traders["seller"], json={"block_min_t": 1}),
            403)
    body = {"side": "sell", "counterparty_party_id": market.plant, "batch": market.batch,
            "quantity_t": 499, "price_fen_per_tco2e": 5_000}
    problem(client.post("/market/block-trades", headers=traders["seller"], json=body), 422,
            "block-trade-too-small")
    proposed = client.post("/market/block-trades", headers=traders["seller"],
                           json={**body, "quantity_t": 500}).get_json()
    problem(client.post(f"/market/block-trades/{proposed['id']}/confirm",
                        headers=traders["buyer"]), 409, "not-counterparty")
    problem(client.get(f"/market/block-trades/{proposed['id']}", headers=traders["buyer"]),
            404)
    confirmed = client.post(f"/market/block-trades/{proposed['id']}/confirm",
                            headers=traders["plant"])
    assert confirmed.status_code == 201 and confirmed.get_json()["mode"] == "block"


def test_auction_over_http(client, market, traders, problem, database):
    closes = (utcnow() + dt.timedelta(minutes=30)).isoformat()
    auction = client.post("/market/auctions", headers=traders["seller"], json={
        "batch": market.batch, "quantity_t": 100, "reserve_price_fen_per_tco2e": 4_000,
        "closes_at": closes}).get_json()
    url = f"/market/auctions/{auction['id']}"
    problem(client.post(f"{url}/bids", headers=traders["plant"], json={
        "quantity_t": 60, "price_fen_per_tco2e": 4_500,
        "retire": {"purpose": "thermal_power_pilot"}}),
        422, "validation-error")
    bid = client.post(f"{url}/bids", headers=traders["plant"], json={
        "quantity_t": 60, "price_fen_per_tco2e": 4_500, "retire": {
            "beneficiary_name": "电厂", "purpose": "thermal_power_pilot",
            "compliance_year": 2025}})
    assert bid.status_code == 201 and bid.get_json()["retire"]["beneficiary_name"] == "电厂"
    client.post(f"{url}/bids", headers=traders["buyer"], json={"quantity_t": 60,
                                                               "price_fen_per_tco2e": 4_600})
    sealed = client.get(url, headers=traders["plant"]).get_json()
    assert sealed["bids_count"] == 2 and len(sealed["bids"]) == 1  # only its own
    problem(client.post(f"{url}/close", headers=traders["seller"]), 409, "auction-still-open")
    with time_machine.travel(utcnow() + dt.timedelta(hours=1), tick=True):
        problem(client.post(f"{url}/bids", headers=traders["plant"], json={
            "quantity_t": 10, "price_fen_per_tco2e": 9_000}), 409, "auction-closed")
        closed = client.post(f"{url}/close", headers=traders["seller"]).get_json()
    assert closed["status"] == "closed" and closed["sold_t"] == 100
    assert sorted((b["filled_t"], b["price_fen_per_tco2e"]) for b in closed["bids"]) == [
        (40, 4_500), (60, 4_600)]
    # the plant's 40 t won were retired at the close, on its behalf (the seller closed)
    with database.unit_of_work() as s:
        retired = s.scalars(sa.select(CarbonRetirement)).all()
    assert [(r.party_id, r.quantity_t, r.beneficiary_name) for r in retired] == [
        (market.plant, 40, "电厂")]


def test_rate_limit_is_a_429_problem_with_retry_after(app, client, market, traders, problem):
    app.config["MARKET_RATE_LIMIT"] = "3 per hour"
    try:
        for _ in range(3):
            assert client.get("/market/events", headers=traders["plant"]).status_code == 200
        body = problem(client.get("/market/events", headers=traders["plant"]), 429,
                       "rate-limited")
        refused = client.get("/market/events", headers=traders["plant"])
        assert 1 <= int(refused.headers["Retry-After"]) <= 3601
        assert body["retry_after_seconds"] >= 1
        # per token: another trader is not slowed down by the plant
        assert client.get("/market/events", headers=traders["buyer"]).status_code == 200
    finally:
        app.config["MARKET_RATE_LIMIT"] = "1200 per minute"


def test_every_amount_in_the_openapi_document_names_its_unit(client):
    spec = client.get("/openapi.json").get_json()
    units = ("tCO2e", "fen", "basis points")
    market_schemas = {name: schema for name, schema in spec["components"]["schemas"].items()
                      if name.startswith("Market")}
    assert market_schemas
    checked = 0
    for name, schema in market_schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if field.endswith(("_t", "_fen", "_fen_per_tco2e", "_bp")):
                assert any(u in prop.get("description", "") for u in units), (name, field)
                checked += 1
    assert checked > 40
    for path, operations in spec["paths"].items():
        if path.startswith("/market"):
            for method, operation in operations.items():
                if method in ("get", "post", "put"):
                    assert "429" in operation["responses"], path
