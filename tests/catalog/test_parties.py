"""Parties: kinds, identifiers validated, personal data protected and masked in every
response, the audit trail and the logs."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from catalog.models import Party
from ecovalue import protect
from tests.catalog.conftest import (
    ALIBABA_USCC,
    HUAWEI_USCC,
    MOUTAI_USCC,
    WANGMO,
    XINGYI,
    id_number,
    make_product,
)

HOUSEHOLD_ID = id_number(birth="19750615", seq="041")
BANK = "6228480012345678912"


def text_of(response) -> str:
    """The body as text, JSON with unescaped Chinese (Flask escapes non-ASCII)."""
    if response.is_json:
        return json.dumps(response.get_json(), ensure_ascii=False)
    return response.get_data().decode("utf-8-sig", errors="replace")


def household_body(**overrides):
    body = {"kind": "household", "name_zh": "韦小芳", "region_code": WANGMO,
            "id_number": HOUSEHOLD_ID, "bank_account": BANK, "bank_name": "农业银行"}
    body.update(overrides)
    return body


def test_register_each_kind(client, tokens):
    h = tokens.registrar()
    bodies = [
        {"kind": "government", "name_zh": "望谟县自然资源局", "region_code": WANGMO},
        {"kind": "village_collective", "name_zh": "打狼村股份经济合作社", "region_code": WANGMO},
        {"kind": "cooperative", "name_zh": "油茶合作社", "region_code": WANGMO,
         "credit_code": ALIBABA_USCC},
        {"kind": "enterprise", "name_zh": "某电厂", "region_code": WANGMO,
         "credit_code": HUAWEI_USCC.lower(), "sector": "thermal_power"},
        household_body(),
    ]
    for body in bodies:
        response = client.post("/catalog/parties", json=body, headers=h)
        assert response.status_code == 201, response.get_json()
    enterprise = client.get("/catalog/parties?kind=enterprise", headers=h).get_json()["items"][0]
    assert enterprise["credit_code"] == HUAWEI_USCC  # normalised to upper case


@pytest.mark.parametrize("body, field, fragment", [
    ({"kind": "enterprise", "name_zh": "x", "region_code": WANGMO}, "credit_code", "must carry"),
    ({"kind": "enterprise", "name_zh": "x", "region_code": WANGMO,
      "credit_code": "91520000214434146X"}, "credit_code", "check character"),
    (household_body(id_number="110105194912310021"), "id_number", "check digit"),
    (household_body(id_number=None), "id_number", "must carry"),
    (household_body(bank_account="12ab"), "bank_account", "digits"),
    (household_body(credit_code=MOUTAI_USCC), "credit_code", "household"),
    ({"kind": "village_collective", "name_zh": "x", "region_code": WANGMO,
      "id_number": HOUSEHOLD_ID}, "id_number", "only households"),
    ({"kind": "government", "name_zh": "x", "region_code": "522326999"}, "region_code",
     "unknown region"),
])
def test_invalid_parties_are_422(body, field, fragment, client, tokens, problem):
    response = client.post("/catalog/parties", json=body, headers=tokens.admin)
    errors = problem(response, 422)["errors"]
    assert any(e["field"] == field and fragment in e["message"] for e in errors), errors
    # the refused ID number is not echoed back
    assert HOUSEHOLD_ID not in response.get_data(as_text=True)


def test_duplicates_are_409_without_echoing_the_id_number(client, tokens, problem):
    h = tokens.admin
    assert client.post("/catalog/parties", json=household_body(), headers=h).status_code == 201
    response = client.post("/catalog/parties",
                           json=household_body(name_zh="别人", id_number=HOUSEHOLD_ID.lower()),
                           headers=h)
    problem(response, 409, "party-exists")
    assert HOUSEHOLD_ID not in response.get_data(as_text=True)
    client.post("/catalog/parties", json={"kind": "enterprise", "name_zh": "a", "region_code":
                                          WANGMO, "credit_code": MOUTAI_USCC}, headers=h)
    problem(client.post("/catalog/parties", json={
        "kind": "enterprise", "name_zh": "b", "region_code": WANGMO,
        "credit_code": MOUTAI_USCC}, headers=h), 409, "party-exists")


def test_personal_data_is_encrypted_at_rest(client, tokens, database):
    client.post("/catalog/parties", json=household_body(), headers=tokens.admin)
    with database.session(write=False) as s:
        party = s.scalars(sa.select(Party)).one()
        assert HOUSEHOLD_ID.encode() not in bytes(party.id_number_encrypted)
        assert protect.protector().decrypt(party.id_number_encrypted) == HOUSEHOLD_ID
        assert protect.protector().decrypt(party.bank_account_encrypted) == BANK
        assert party.id_number_index == protect.protector().blind_index(HOUSEHOLD_ID)
        assert party.id_number_masked == HOUSEHOLD_ID[:3] + "*" * 11 + HOUSEHOLD_ID[-4:]
        assert party.bank_account_masked == "*" * 15 + BANK[-4:]


def test_masking_in_every_response_audit_and_logs(client, tokens, database, capfd, world):
    """Every response that can carry a household: party endpoints show masked identifiers;
    product endpoints show a masked name; public ones no name; audit and logs no plaintext."""
    h = tokens.admin
    created = client.post("/catalog/parties", json=household_body(), headers=h)
    party_id = created.get_json()["id"]
    product_id = make_product(database, world, "verified", holder_party_id=party_id,
                              rights_type="contract_management")
    responses = {
        "create": created,
        "get": client.get(f"/catalog/parties/{party_id}", headers=tokens.registrar()),
        "list": client.get("/catalog/parties?kind=household", headers=tokens.verifier),
        "patch": client.patch(f"/catalog/parties/{party_id}", json={
            "bank_account": "6228480000000000001", "name_zh": "韦小芳"}, headers=h),
        "lookup": client.post("/catalog/parties/lookup", json={"id_number": HOUSEHOLD_ID},
                              headers=tokens.finance),
        "product": client.get(f"/catalog/products/{product_id}", headers=tokens.auditor),
        "products": client.get("/catalog/products", headers=tokens.trader(world.plant)),
        "history": client.get(f"/catalog/products/{product_id}/history", headers=h),
        "export": client.get("/catalog/products/export", headers=h),
        "public": client.get("/catalog/public/products"),
        "public_one": client.get(f"/catalog/public/products/{product_id}"),
        "audit": client.get("/audit?page_size=500", headers=tokens.auditor),
    }
    for name, response in responses.items():
        assert response.status_code in (200, 201), (name, response.get_data(as_text=True))
        text = text_of(response)
        for secret in (HOUSEHOLD_ID, BANK, "6228480000000000001"):
            assert secret not in text, (name, secret)
    assert responses["get"].get_json()["id_number_masked"] == HOUSEHOLD_ID[:3] + "*" * 11 \
        + HOUSEHOLD_ID[-4:]
    assert responses["patch"].get_json()["bank_account_masked"].endswith("0001")
    assert responses["lookup"].get_json()["id"] == party_id
    for name in ("product", "products", "export"):
        text = text_of(responses[name])
        assert "韦小芳" not in text and "韦*芳" in text, name
    for name in ("public", "public_one"):
        assert "韦" not in text_of(responses[name]), name
    for key in ("id_number", "bank_account", "id_number_encrypted", "id_number_index",
                "bank_account_encrypted"):
        assert key not in responses["get"].get_json()
    events = responses["audit"].get_json()["items"]
    party_events = [e for e in events if e["entity_type"] == "party"
                    and e["entity_id"] == str(party_id)]
    assert [e["action"] for e in party_events] == ["catalog.party.update", "catalog.party.create"]
    for event in party_events:
        payload = json.dumps([event["before"], event["after"]], ensure_ascii=False)
        assert "id_number_index" not in payload and "encrypted" not in payload
    captured = capfd.readouterr()
    for secret in (HOUSEHOLD_ID, BANK, "6228480000000000001"):
        assert secret not in captured.err + captured.out


def test_a_trader_reads_only_its_own_party(client, tokens, world, problem):
    h = tokens.trader(world.plant)
    listing = client.get("/catalog/parties", headers=h).get_json()
    assert [p["id"] for p in listing["items"]] == [world.plant]
    assert client.get(f"/catalog/parties/{world.plant}", headers=h).status_code == 200
    problem(client.get(f"/catalog/parties/{world.household}", headers=h), 403)
    problem(client.get("/catalog/parties/99999", headers=h), 403)


def test_update_party_with_version_and_county_move(client, tokens, world, problem):
    h = tokens.registrar()
    response = client.patch(f"/catalog/parties/{world.collective}",
                            json={"name_en": "Dalang"}, headers={**h, "If-Match": '"1"'})
    assert response.status_code == 200 and response.headers["ETag"] == '"2"'
    problem(client.patch(f"/catalog/parties/{world.collective}", json={"name_en": "x"},
                         headers={**h, "If-Match": '"1"'}), 412)
    # moving to another county needs write rights in both
    problem(client.patch(f"/catalog/parties/{world.collective}",
                         json={"region_code": XINGYI}, headers=h), 403)
    assert client.patch(f"/catalog/parties/{world.collective}", json={"region_code": XINGYI},
                        headers=tokens.admin).status_code == 200
    problem(client.patch(f"/catalog/parties/{world.collective}", json={"kind": "household"},
                         headers=tokens.admin), 422)


def test_deactivate_only_without_products(client, tokens, world, database, problem):
    product_id = make_product(database, world, "draft")
    problem(client.post(f"/catalog/parties/{world.collective}/deactivate",
                        headers=tokens.registrar()), 409, "party-in-use")
    client.post(f"/catalog/products/{product_id}/retire", json={"reason": "error"},
                headers=tokens.registrar())
    response = client.post(f"/catalog/parties/{world.collective}/deactivate",
                           headers=tokens.registrar())
    assert response.status_code == 200 and response.get_json()["active"] is False
    # a deactivated party cannot hold a new product
    body = problem(client.post("/catalog/products", json={
        "name_zh": "新", "type_code": "tea", "region_code": world.village,
        "holder_party_id": world.collective, "rights_type": "ownership"},
        headers=tokens.registrar()), 422)
    assert "deactivated" in body["errors"][0]["message"]
