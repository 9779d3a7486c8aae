"""Products: registration and its bad input, edits with versions and history, queries, export,
summary, and the public catalog."""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.catalog.conftest import CEHENG, WANGMO, make_product, product_body


def test_register_a_product(client, tokens, world):
    response = client.post("/catalog/products", json=product_body(world, brand="望谟毛尖",
                                                                  certifications=["绿色食品"]),
                           headers=tokens.registrar())
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "draft" and body["version"] == 1
    assert body["category"] == "provisioning" and body["county_code"] == WANGMO
    assert body["region_name_zh"] == "打狼村"
    assert body["holder"] == {"id": world.collective, "kind": "village_collective",
                              "name_zh": "打狼村股份经济合作社"}
    assert response.headers["ETag"] == '"1"'


@pytest.mark.parametrize("overrides, field, fragment", [
    ({"area_ha": -3}, "area_ha", "positive"),
    ({"area_ha": 0}, "area_ha", "positive"),
    ({"region_code": "522326999999"}, "region_code", "unknown region"),
    ({"region_code": "522300"}, "region_code", "county, township or village"),
    ({"type_code": "opium"}, "type_code", "unknown product type"),
    ({"quantity_unit": "furlong"}, "quantity_unit", "unknown unit"),
    ({"quantity_unit": "m3"}, "quantity_unit", "does not measure"),
    ({"quantity": -1}, "quantity", "negative"),
    ({"quantity_unit": None}, "quantity_unit", "together"),
    ({"latitude": 106.09, "longitude": 25.17}, "latitude", "swapped"),
    ({"longitude": None}, "longitude", "both"),
    ({"holder_party_id": 9999}, "holder_party_id", "unknown party"),
    ({"grid_cell_id": "a b"}, "grid_cell_id", "letters"),
])
def test_bad_product_input_is_422_with_the_field(overrides, field, fragment, client, tokens,
                                                 world, problem):
    body = problem(client.post("/catalog/products", json=product_body(world, **overrides),
                               headers=tokens.admin), 422)
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert field in messages and fragment in messages[field], body
    assert client.get("/catalog/products", headers=tokens.auditor).get_json()["total"] == 0


@pytest.mark.parametrize("payload", [
    {"name_zh": "x"},  # required fields missing
    {**{"name_zh": "x", "type_code": "tea", "region_code": "5223", "holder_party_id": 1,
        "rights_type": "ownership"}},
    {"name_zh": "x", "type_code": "tea", "region_code": "522326", "holder_party_id": 1,
     "rights_type": "lease"},
    {"name_zh": "x", "type_code": "tea", "region_code": "522326", "holder_party_id": 1,
     "rights_type": "ownership", "unexpected": 1},
])
def test_malformed_bodies_are_422(payload, client, tokens, world, problem):
    problem(client.post("/catalog/products", json=payload, headers=tokens.admin), 422)


def test_all_field_errors_are_reported_at_once(client, tokens, world, problem):
    body = problem(client.post("/catalog/products", json=product_body(
        world, area_ha=-1, type_code="nope", region_code="522326999999"),
        headers=tokens.admin), 422)
    assert {"area_ha", "type_code", "region_code"} <= {e["field"] for e in body["errors"]}


def test_duplicate_natural_key_is_409(client, tokens, world, problem):
    assert client.post("/catalog/products", json=product_body(world),
                       headers=tokens.registrar()).status_code == 201
    body = problem(client.post("/catalog/products", json=product_body(world, area_ha=1.0),
                               headers=tokens.registrar()), 409, "product-exists")
    assert "product 1 " in body["detail"]
    # same name in another village, or as another type, is a different product
    assert client.post("/catalog/products", json=product_body(world, type_code="walnut"),
                       headers=tokens.registrar()).status_code == 201


def test_duplicate_external_code_in_a_county_is_409(client, tokens, world, problem):
    client.post("/catalog/products", json=product_body(world, external_code="WM-1"),
                headers=tokens.admin)
    problem(client.post("/catalog/products", json=product_body(
        world, name_zh="另一个", external_code="WM-1"), headers=tokens.admin), 409,
        "product-exists")


def test_edit_with_if_match_and_history(client, tokens, world, database, problem):
    product_id = make_product(database, world, "draft")
    h = tokens.registrar()
    response = client.patch(f"/catalog/products/{product_id}", json={"area_ha": 13.0},
                            headers={**h, "If-Match": '"1"'})
    assert response.status_code == 200 and response.get_json()["version"] == 2
    problem(client.patch(f"/catalog/products/{product_id}", json={"area_ha": 14.0},
                         headers={**h, "If-Match": '"1"'}), 412, "version-mismatch")
    problem(client.patch(f"/catalog/products/{product_id}", json={"area_ha": 14.0},
                         headers={**h, "If-Match": "garbage"}), 400)
    # a no-op edit creates no version
    assert client.patch(f"/catalog/products/{product_id}", json={"area_ha": 13.0},
                        headers=h).get_json()["version"] == 2
    history = client.get(f"/catalog/products/{product_id}/history",
                         headers=tokens.auditor).get_json()
    assert [v["change"] for v in history["items"]] == ["create", "update"]
    assert history["items"][1]["changed_fields"] == ["area_ha"]
    assert history["items"][0]["data"]["area_ha"] == 12.5
    assert history["items"][1]["data"]["area_ha"] == 13.0


def test_editing_attested_fields_sends_a_verified_product_back(client, tokens, world, database):
    product_id = make_product(database, world, "verified")
    h = tokens.registrar()
    kept = client.patch(f"/catalog/products/{product_id}", json={"brand": "望谟毛尖"}, headers=h)
    assert kept.get_json()["status"] == "verified"
    sent_back = client.patch(f"/catalog/products/{product_id}", json={"area_ha": 20.0},
                             headers=h)
    assert sent_back.get_json()["status"] == "registered"
    history = client.get(f"/catalog/products/{product_id}/history", headers=h).get_json()
    assert "verification" in history["items"][-1]["reason"]


@pytest.mark.parametrize("state", ["suspended", "retired"])
def test_locked_products_cannot_be_edited(state, client, tokens, world, database, problem):
    product_id = make_product(database, world, state)
    problem(client.patch(f"/catalog/products/{product_id}", json={"brand": "x"},
                         headers=tokens.admin), 409, "product-locked")


def test_a_product_cannot_move_to_another_county(client, tokens, world, database, problem):
    product_id = make_product(database, world, "draft")
    # the admin may write everywhere, but the rule holds for everyone
    body = problem(client.patch(f"/catalog/products/{product_id}",
                                json={"region_code": "522301101"}, headers=tokens.admin), 422)
    assert body["errors"][0]["field"] == "region_code"


def test_filters_sorting_and_pagination(client, tokens, world, database):
    make_product(database, world, "verified", name_zh="A 茶园", area_ha=5.0)
    make_product(database, world, "draft", name_zh="B 核桃", type_code="walnut", area_ha=50.0)
    make_product(database, world, "registered", name_zh="C 碳汇", type_code="forest_carbon_sink",
                 quantity=10.0, quantity_unit="tCO2/a", area_ha=None)
    make_product(database, world, "draft", name_zh="D 乌沙茶", region_code=world.xingyi_township,
                 holder_party_id=world.xingyi_collective, latitude=None, longitude=None)
    h = tokens.auditor

    def names(query):
        return [p["name_zh"] for p in client.get(f"/catalog/products?{query}",
                                                 headers=h).get_json()["items"]]

    assert names("county=522326") == ["A 茶园", "B 核桃", "C 碳汇"]
    assert names("county=522301") == ["D 乌沙茶"]
    assert names("category=regulating") == ["C 碳汇"]
    assert names("type=tea&type=walnut&county=522326") == ["A 茶园", "B 核桃"]
    assert names("status=draft") == ["B 核桃", "D 乌沙茶"]
    assert names(f"holder={world.xingyi_collective}") == ["D 乌沙茶"]
    assert names("q=核桃") == ["B 核桃"]
    assert names("region=522326101") == ["A 茶园", "B 核桃", "C 碳汇"]
    assert names("sort=-area_ha")[:2] == ["B 核桃", "D 乌沙茶"]  # D has 12.5 ha by default
    assert names("sort=-area_ha")[-1] == "C 碳汇"  # unknown area sorts last
    page = client.get("/catalog/products?page=2&page_size=3", headers=h).get_json()
    assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 1)


def test_bad_query_parameters_are_422(client, tokens, problem):
    for query in ("sort=password", "county=52", "status=lost", "page_size=0", "category=x"):
        problem(client.get(f"/catalog/products?{query}", headers=tokens.auditor), 422)


def test_export_csv_and_xlsx_mask_household_names(client, tokens, world, database):
    make_product(database, world, "verified")
    make_product(database, world, "draft", name_zh="王家林下菌", type_code="understory_fungi",
                 holder_party_id=world.household, rights_type="contract_management")
    csv_response = client.get("/catalog/products/export?format=csv&sort=name_zh",
                              headers=tokens.registrar())
    assert csv_response.status_code == 200 and csv_response.mimetype == "text/csv"
    text = csv_response.data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("external_code,name_zh,name_en,category,type,")
    assert "王*明" in text and "王小明" not in text and world.household_id_number not in text
    assert f"#{world.household}" in text
    xlsx = client.get("/catalog/products/export?format=xlsx&status=verified",
                      headers=tokens.registrar())
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    rows = list(sheet.values)
    assert rows[0][1] == "name_zh" and len(rows) == 2 and rows[1][1] == "打狼村古茶园"


def test_summary_counts_and_areas_by_county_and_type(client, tokens, world, database):
    make_product(database, world, "verified", name_zh="a", area_ha=10.0)
    make_product(database, world, "registered", name_zh="b", area_ha=2.5)
    make_product(database, world, "retired", name_zh="c", area_ha=100.0)  # not counted
    make_product(database, world, "draft", name_zh="d", type_code="walnut", area_ha=None)
    rows = client.get("/catalog/products/summary?county=522326",
                      headers=tokens.verifier).get_json()
    by_type = {r["type_code"]: r for r in rows}
    assert by_type["tea"]["products"] == 2 and by_type["tea"]["verified"] == 1
    assert by_type["tea"]["area_ha"] == pytest.approx(12.5)
    assert by_type["tea"]["county_name_zh"] == "望谟县"
    assert by_type["walnut"]["area_ha"] is None and by_type["walnut"]["products_with_area"] == 0
    public = client.get("/catalog/public/summary").get_json()
    assert [(r["type_code"], r["products"]) for r in public] == [("tea", 1)]


def test_public_catalog_shows_verified_products_without_personal_data(client, world, database,
                                                                      problem):
    verified = make_product(database, world, "verified", name_zh="王家林下菌",
                            type_code="understory_fungi", holder_party_id=world.household,
                            rights_type="contract_management")
    draft = make_product(database, world, "draft", name_zh="草稿")
    listing = client.get("/catalog/public/products")
    assert listing.status_code == 200
    body = listing.get_json()
    assert [p["id"] for p in body["items"]] == [verified]
    item = body["items"][0]
    assert item["holder"] == {"kind": "household", "name_zh": None}
    assert "holder_party_id" not in item and "created_by" not in item
    text = listing.get_data(as_text=True)
    assert "王" not in text.replace("王家林下菌", "") and world.household_id_number not in text
    assert client.get(f"/catalog/public/products/{verified}").status_code == 200
    problem(client.get(f"/catalog/public/products/{draft}"), 404, "product-not-found")
    # filters work without a token too
    assert client.get("/catalog/public/products?county=522327").get_json()["total"] == 0
    assert CEHENG


def test_reading_needs_a_token(client, problem):
    problem(client.get("/catalog/products"), 401)
    problem(client.get("/catalog/products/1"), 401)


def test_ids_beyond_bigint_and_nul_characters_are_bad_input_not_errors(client, tokens, world,
                                                                        problem):
    huge = 2**70  # the router or the service answers; either way a problem, never a 500
    for response in (client.get(f"/catalog/products/{huge}", headers=tokens.admin),
                     client.post(f"/catalog/products/{huge}/verify", headers=tokens.admin),
                     client.get(f"/catalog/parties/{huge}", headers=tokens.admin),
                     client.patch(f"/catalog/monitoring/{huge}", json={"value": 1.0},
                                  headers=tokens.admin)):
        assert response.status_code in (404, 405)
        problem(response, response.status_code)
    problem(client.get(f"/catalog/products?holder={huge}", headers=tokens.admin), 422)
    # NUL characters are screened before any view (PostgreSQL text cannot hold them)
    problem(client.get("/catalog/products?q=a%00b", headers=tokens.admin), 400, "bad-request")
    problem(client.get("/catalog/regions/52%0026"), 400, "bad-request")
    problem(client.post("/catalog/products", json=product_body(world, name_zh="a\x00b"),
                        headers=tokens.admin), 400, "bad-request")
