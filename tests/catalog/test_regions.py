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
    ("522326", 422, "reference list"),
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
                                         "522326999999")] == [
        "522326", "522326", "522326", "522300", "522326999999"]
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
