"""Regions: reference prefecture and counties, townships and villages added by admins and the
county's registrar, public reads."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.audit.models import AuditEvent
from tests.catalog.conftest import XINGYI


def test_reference_regions_are_public(client):
    body = client.get("/catalog/regions?level=county&page_size=20").get_json()
    assert body["total"] == 8
    codes = {r["code"]: r for r in body["items"]}
    assert codes["522326"]["name_zh"] == "望谟县" and codes["522326"]["source"] == "reference"
    assert client.get("/catalog/regions/522300").get_json()["level"] == "prefecture"


def test_registrar_adds_township_and_village_in_own_county(client, tokens, database):
    h = tokens.registrar()
    township = client.post("/catalog/regions", json={"code": "522326104", "name_zh": "石屯镇"},
                           headers=h)
    assert township.status_code == 201
    assert township.get_json() == {"code": "522326104", "level": "township",
                                   "name_zh": "石屯镇", "name_en": None,
                                   "parent_code": "522326", "pilot": None,
                                   "source": "registered"}
    village = client.post("/catalog/regions", json={"code": "522326104201", "name_zh": "打狼村",
                                                    "name_en": "Dalang"}, headers=h)
    assert village.get_json()["parent_code"] == "522326104"
    tree = client.get("/catalog/regions/tree?root=522326").get_json()
    assert tree["region"]["code"] == "522326"
    assert tree["children"][0]["region"]["code"] == "522326104"
    assert tree["children"][0]["children"][0]["region"]["name_zh"] == "打狼村"
    whole = client.get("/catalog/regions/tree").get_json()
    assert len(whole["children"]) == 8
    assert client.get("/catalog/regions?parent=522326104").get_json()["total"] == 1
    assert client.get("/catalog/regions?county=522326&level=village").get_json()["total"] == 1
    assert client.get("/catalog/regions?q=打狼").get_json()["items"][0]["code"] == "522326104201"
    with database.session(write=False) as s:
        actions = s.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions.count("catalog.region.create") == 2


@pytest.mark.parametrize("code, status, fragment", [
    ("522301104", 403, "outside that county"),  # Xingyi township by a Wangmo registrar
    ("522326", 403, "may not perform"),  # 6 digits: admins only
    ("5223261", 422, "9 digits"),
    ("522326999201", 422, "existing township"),  # the township does not exist
])
def test_bad_regions(code, status, fragment, client, tokens, problem):
    body = problem(client.post("/catalog/regions", json={"code": code, "name_zh": "x"},
                               headers=tokens.registrar()), status)
    assert fragment in body["detail"] + str(body.get("errors"))


def test_duplicate_region_is_409(client, tokens, problem):
    client.post("/catalog/regions", json={"code": "522326104", "name_zh": "石屯镇"},
                headers=tokens.admin)
    problem(client.post("/catalog/regions", json={"code": "522326104", "name_zh": "x"},
                        headers=tokens.admin), 409, "region-exists")


def test_rename_and_reference_regions_are_read_only(client, tokens, problem):
    client.post("/catalog/regions", json={"code": "522326104", "name_zh": "石屯"},
                headers=tokens.admin)
    renamed = client.patch("/catalog/regions/522326104", json={"name_zh": "石屯镇"},
                           headers=tokens.registrar())
    assert renamed.status_code == 200 and renamed.get_json()["name_zh"] == "石屯镇"
    problem(client.patch("/catalog/regions/522326", json={"name_zh": "x"},
                         headers=tokens.admin), 403)
    problem(client.patch("/catalog/regions/522326104", json={"name_zh": "x"},
                         headers=tokens.registrar(XINGYI)), 403)
    problem(client.get("/catalog/regions/522326999"), 404, "region-not-found")
    problem(client.get("/catalog/regions/tree?root=522326999"), 404)


def test_region_hierarchy_places_codes_by_their_registered_parents(world, database):
    from catalog.services.regions import region_display_name, region_hierarchy, region_names

    with database.session(write=False) as s:
        tree = region_hierarchy(s)
        names = region_names(s)
        display = {code: region_display_name(s, code) for code in ("522326", world.village,
                                                                   "522326999999")}
    assert (tree.level("522300"), tree.level("522326"), tree.level(world.township),
            tree.level(world.village)) == ("prefecture", "county", "township", "village")
    assert world.village in tree and "522326999999" not in tree
    with pytest.raises(KeyError):
        tree.level("522326999999")
    inside = [(world.village, world.village), (world.village, world.township),
              (world.village, "522326"), (world.village, "522300"), ("522326", "522300")]
    outside = [(world.village, "522301"), (world.township, world.village),
               ("522300", "522326"), ("522326999999", "522326"), (world.xingyi_township,
                                                                  "522326")]
    assert all(tree.is_within(code, scope) for code, scope in inside)
    assert not any(tree.is_within(code, scope) for code, scope in outside)
    assert [tree.county_of(c) for c in (world.village, world.township, "522326", "522300",
                                         "520000", "522326999999")] == [
        "522326", "522326", "522326", "522300", "520000", "522326999999"]
    assert names[world.village] == "打狼村" and names["522326"] == "望谟县"
    assert display == {"522326": "Wangmo", world.village: "打狼村",
                       "522326999999": None}


def test_the_tree_does_not_collide_with_a_region_code(client, tokens, problem):
    """/regions/tree is the tree only: OPTIONS offers GET alone, PATCH is not routed to a
    region called "tree", and a code is digits."""
    options = client.open("/catalog/regions/tree", method="OPTIONS")
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    problem(client.patch("/catalog/regions/tree", json={"name_zh": "x"}, headers=tokens.admin),
            405)
    problem(client.get("/catalog/regions/abc"), 404)
    spec = client.get("/openapi.json").get_json()
    parameters = spec["paths"]["/catalog/regions/{code}"]["parameters"]
    assert parameters[0]["schema"]["pattern"] == r"^\d{1,12}$"


# --- the national table (GB/T 2260) --------------------------------------------------------


def test_national_table_loads_once_and_places_every_unit(client, database):
    from catalog.models import Region
    from catalog.services.regions import load_national_regions

    with database.unit_of_work() as s:
        added = load_national_regions(s)
    with database.unit_of_work() as s:
        assert load_national_regions(s) == 0  # idempotent
    with database.session(write=False) as s:
        count = dict(s.execute(sa.select(Region.level, sa.func.count())
                               .group_by(Region.level)).all())
        orphans = s.scalar(sa.select(sa.func.count()).select_from(Region).where(
            Region.level != "province", Region.parent_code.is_(None)))
    # 3,222 rows in the file; the prefecture's 10 reference rows were there already
    assert added == 3222 - 10
    assert count == {"province": 34, "prefecture": 339, "county": 2849}
    assert orphans == 0
    # the Chishui agreement's provinces (compensation), and the prefecture's own rows kept
    for code, name in (("530000", "云南省"), ("520000", "贵州省"), ("510000", "四川省")):
        body = client.get(f"/catalog/regions/{code}").get_json()
        assert (body["level"], body["name_zh"], body["parent_code"]) == ("province", name, None)
    assert client.get("/catalog/regions/522326").get_json()["name_en"] == "Wangmo"
    assert client.get("/catalog/regions/522300").get_json()["parent_code"] == "520000"
    # a county-level city without a prefecture lies under its province; Beijing's districts
    # under 市辖区
    assert client.get("/catalog/regions/419001").get_json()["parent_code"] == "410000"
    assert client.get("/catalog/regions/110100").get_json()["name_zh"] == "市辖区"
    chishui = client.get("/catalog/regions/520381").get_json()
    assert (chishui["name_zh"], chishui["parent_code"]) == ("赤水市", "520300")
    # trees: the province holds its prefectures, the prefecture only its own counties
    guizhou = client.get("/catalog/regions/tree?root=520000").get_json()
    assert len(guizhou["children"]) == 9
    assert len(client.get("/catalog/regions/tree").get_json()["children"]) == 8
    assert client.get("/catalog/regions?level=county&parent=522300").get_json()["total"] == 8


def test_admins_add_regions_below_the_national_table(client, tokens, database, problem):
    from catalog.services.regions import load_national_regions

    with database.unit_of_work() as s:
        load_national_regions(s)
    # a township of Yunnan's Weixin county (Chishui river), then a village under it
    township = client.post("/catalog/regions", json={"code": "530629104", "name_zh": "旧府乡"},
                           headers=tokens.admin)
    assert township.status_code == 201 and township.get_json()["parent_code"] == "530629"
    village = client.post("/catalog/regions", json={"code": "530629104201", "name_zh": "某村"},
                          headers=tokens.admin)
    assert village.get_json()["level"] == "village"
    # a county-level unit newer than the table, under its prefecture; a prefecture under its
    # province; a county-level unit without a prefecture under the province
    county = client.post("/catalog/regions", json={"code": "522329", "name_zh": "新县"},
                         headers=tokens.admin).get_json()
    assert (county["level"], county["parent_code"], county["source"]) == (
        "county", "522300", "registered")
    prefecture = client.post("/catalog/regions", json={"code": "529900", "name_zh": "新州"},
                             headers=tokens.admin).get_json()
    assert (prefecture["level"], prefecture["parent_code"]) == ("prefecture", "520000")
    direct = client.post("/catalog/regions", json={"code": "419099", "name_zh": "新市"},
                         headers=tokens.admin).get_json()
    assert direct["parent_code"] == "410000"
    renamed = client.patch("/catalog/regions/522329", json={"name_zh": "新县二"},
                           headers=tokens.admin)
    assert renamed.get_json()["name_zh"] == "新县二"
    # refused: a province, a code already there, a registrar, a county under nothing, and
    # renaming the national table's rows
    assert "national table" in problem(client.post("/catalog/regions", json={
        "code": "540000", "name_zh": "x"}, headers=tokens.admin), 422)["detail"]
    problem(client.post("/catalog/regions", json={"code": "530629", "name_zh": "x"},
                        headers=tokens.admin), 409, "region-exists")
    problem(client.post("/catalog/regions", json={"code": "522330", "name_zh": "x"},
                        headers=tokens.registrar()), 403)
    assert "existing" in problem(client.post("/catalog/regions", json={
        "code": "980101", "name_zh": "x"}, headers=tokens.admin), 422)["detail"]
    problem(client.patch("/catalog/regions/530000", json={"name_zh": "x"},
                         headers=tokens.admin), 403)
    problem(client.patch("/catalog/regions/530629", json={"name_zh": "x"},
                         headers=tokens.admin), 403)


def test_a_product_never_lies_in_a_province(client, tokens, world, problem):
    from tests.catalog.conftest import product_body

    body = problem(client.post("/catalog/products", json=product_body(
        world, region_code="520000"), headers=tokens.admin), 422)
    assert "county, township or village" in str(body["errors"])


def test_cli_loads_lists_and_adds_regions(app):
    runner = app.test_cli_runner()
    loaded = runner.invoke(args=["catalog", "regions", "load"])
    assert loaded.exit_code == 0 and "3212 added" in loaded.output, loaded.output
    again = runner.invoke(args=["catalog", "regions", "load"])
    assert "0 added" in again.output
    listed = runner.invoke(args=["catalog", "regions", "list", "--level", "province"])
    assert "530000       province   云南省" in listed.output
    assert len(listed.output.splitlines()) == 34
    added = runner.invoke(args=["catalog", "regions", "add", "510524101", "某镇"])
    assert added.exit_code == 0 and "510524101 township 某镇 (under 510524)" in added.output
