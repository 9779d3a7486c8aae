"""No 500 on any input (issue 8, holes 4 and 5): JSON bodies nested deeper than the limit, free-form
JSON fields beyond their size cap, JSON routes without a body or with another media type are
refused as problem+json before any schema or service sees them."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from catalog.models import MonitoringRecord
from ecovalue.api import MAX_FREE_FORM_CHARS
from ecovalue.app import MAX_JSON_DEPTH, json_depth, json_too_deep
from tests.conftest import load_demo

WANGMO = "522326"


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def _party(attributes) -> dict:
    return {"kind": "village_collective", "name_zh": "测试村", "region_code": WANGMO,
            "attributes": attributes}


def _transfer(**body) -> dict:
    return {"type": "compensation", "postings": [
        {"account": "DEMO-PLANT-CNY", "asset": "CNY", "direction": "debit", "amount": 1},
        {"account": "DEMO-FOREST-FUND", "asset": "CNY", "direction": "credit", "amount": 1}],
        **body}


@pytest.fixture()
def demo(app, database):
    load_demo(app)


def test_json_depth_counts_brackets_outside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[{{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(b"[" * 5000) == 5000
    assert json_depth(b"") == 0


def test_json_too_deep_agrees_with_the_depth_whatever_the_bracket_count():
    limit = 3
    bodies = [b"", b"[]", b"[[[]]]", b"[[[[]]]]", b'{"a": "[[[[[[[["}', b"[" * 4 + b"]" * 4,
              b"[" + b"[],".join([b""] * 50) + b"[]]",  # many openers, depth 2
              b'[["[[[[", [[]]]]', b'[[[{"a": {}}]]]']
    for body in bodies:
        assert json_too_deep(body, limit) is (json_depth(body) > limit), body


def _nested_text(levels: int) -> str:
    """`_nested(levels)` as JSON text (json.dumps itself recurses too deeply for 2,000)."""
    return '{"a":' * levels + "{}" + "}" * levels


@pytest.mark.parametrize("path, body", [
    ("/catalog/parties", lambda n: json.dumps(_party("@")).replace('"@"', _nested_text(n))),
    ("/ledger/transactions",
     lambda n: json.dumps(_transfer(metadata="@")).replace('"@"', _nested_text(n))),
    ("/ledger/transactions", lambda n: "[" * n + "]" * n),
])
def test_deep_json_is_a_400_naming_the_limit(demo, client, tokens, problem, path, body):
    for levels in (400, 900, 2000):
        response = client.post(path, data=body(levels), content_type="application/json",
                               headers=tokens.admin)
        refused = problem(response, 400, "json-too-deep")
        assert str(MAX_JSON_DEPTH) in refused["detail"] and refused["limit"] == MAX_JSON_DEPTH


def test_json_at_the_depth_limit_is_read(demo, client, tokens):
    # the body object itself is one level, attributes another
    created = client.post("/catalog/parties", json=_party(_nested(MAX_JSON_DEPTH - 2)),
                          headers=tokens.admin)
    assert created.status_code == 201, created.get_json()
    posted = client.post("/ledger/transactions", json=_transfer(metadata=_nested(10)),
                         headers=tokens.finance)
    assert posted.status_code == 201, posted.get_json()


@pytest.mark.parametrize("size", [MAX_FREE_FORM_CHARS + 1, 15 * 1024 * 1024])
def test_free_form_attributes_have_a_size_cap(demo, client, tokens, problem, size):
    refused = problem(client.post("/catalog/parties", json=_party({"note": "x" * size}),
                                  headers=tokens.admin), 422)
    assert any(e["field"] == "attributes" and f"{MAX_FREE_FORM_CHARS:,}" in e["message"]
               for e in refused["errors"])
    products = client.get("/catalog/products?page_size=1", headers=tokens.admin).get_json()
    product = products["items"][0]
    refused = problem(client.patch(f"/catalog/products/{product['id']}",
                                   json={"attributes": {"note": "x" * size}},
                                   headers={**tokens.admin,
                                            "If-Match": str(product["version"])}), 422)
    assert any(e["field"] == "attributes" for e in refused["errors"])
    for path, body in (("/ledger/accounts", {"party_id": 1, "asset": "CNY", "kind": "holding",
                                             "attributes": {"note": "x" * size}}),
                       ("/ledger/assets", {"code": "X-TEST", "kind": "currency",
                                           "name_zh": "测试", "attributes": {"n": "x" * size}}),
                       ("/ledger/transactions", _transfer(metadata={"n": "x" * size}))):
        refused = problem(client.post(path, json=body, headers=tokens.admin), 422)
        assert any(e["field"].endswith(("attributes", "metadata")) for e in refused["errors"])


def test_a_json_route_needs_a_body(demo, client, tokens, database, problem):
    with database.session(write=False) as session:
        record_id = session.scalars(sa.select(MonitoringRecord.id)).first()
    problem(client.patch(f"/catalog/monitoring/{record_id}", headers=tokens.admin), 400,
            "body-required")
    problem(client.post("/ledger/assertions/recheck", headers=tokens.finance), 400,
            "body-required")
    # an empty object is a body: recheck has no required field
    assert client.post("/ledger/assertions/recheck", json={},
                       headers=tokens.finance).status_code == 200


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/json; charset=latin-1", "application/x-www-form-urlencoded",
    "application/xml", None])
def test_a_json_body_must_be_application_json_in_utf8(demo, client, tokens, problem,
                                                       content_type):
    body = json.dumps(_transfer())
    headers = {**tokens.finance, **({"Content-Type": content_type} if content_type else {})}
    problem(client.post("/ledger/transactions", data=body, headers=headers), 415,
            "unsupported-media-type")
    problem(client.post("/ledger/assertions/recheck", data="{}", headers=headers), 415)


def test_application_json_with_utf8_or_no_charset_is_read(demo, client, tokens):
    for content_type in ("application/json", "application/json; charset=utf-8",
                         "application/json; charset=UTF-8"):
        response = client.post("/ledger/transactions", data=json.dumps(_transfer()),
                               headers={**tokens.finance, "Content-Type": content_type})
        assert response.status_code == 201, (content_type, response.get_json())


def test_upload_routes_keep_their_media_types(demo, client, tokens):
    import io

    response = client.post(f"/catalog/imports/products?county={WANGMO}&dry_run=true",
                           data={"file": (io.BytesIO(b"external_code,name_zh\n"), "p.csv")},
                           content_type="multipart/form-data", headers=tokens.admin)
    assert response.status_code != 415


@pytest.mark.parametrize("value", [2.5, 2.589e-42, True])
def test_an_integer_field_refuses_fractions_and_booleans(demo, client, tokens, problem, value):
    """marshmallow would cut 2.5 to 2 (a quantity set id, a year, a checkpoint's seq)."""
    refused = problem(client.post("/audit/verify", json={"checkpoints": [
        {"seq": value, "hash": "0" * 64, "signature": "0" * 64,
         "signed_at": "2000-01-01T00:00:00Z"}]}, headers=tokens.auditor), 422)
    assert any(e["field"].endswith("seq") for e in refused["errors"]), refused
    refused = problem(client.post("/valuation/runs", json={
        "region_code": WANGMO, "year": 2024, "quantity_set_ids": [value]},
        headers=tokens.admin), 422)
    assert any("quantity_set_ids" in e["field"] for e in refused["errors"]), refused
