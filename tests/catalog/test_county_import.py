"""A county bureau's own product spreadsheet, as it is (issue 9): GBK, a title row, Chinese
headers, places by name in 县(市)/乡镇/村 columns (with full-width spaces), the standard GEP
wording (物质产品) and everyday type names (林下食用菌, 森林碳汇, 水源涵养, 喀斯特景观), rights
holders not registered yet (cooperatives, collectives, a bureau, a tea company without its
credit code, a household), and three bad rows.

The dry run names exactly the three bad cells; once they are fixed the commit brings in every
product and creates the holders; a re-import writes nothing; a re-import with blank cells
changes nothing (a blank never erases); a change shows old -> new and its lifecycle
consequence in the dry run; [清空] clears a field explicitly."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from catalog.identifiers import uscc_check_character
from catalog.models import ImportBatch, Party, Product, ProductVersion
from catalog.services import regions
from ecovalue.audit.models import AuditEvent
from ecovalue.auth import system_principal
from tests.catalog.conftest import id_number

TITLE = "望谟县生态产品目录清单（2024年）,,,,,,,,,,,,,"
HEADER = ("序号,产品名称,产品大类,产品类型,县（市）,乡镇,村,权利人,统一社会信用代码,身份证号,"
          "权利类型,面积（公顷）,数量,单位")
#: an enterprise not registered yet, with a valid code (made up: 91 522326 MA6H0000 9 + check)
NEW_COMPANY_USCC = "91522326MA6H00009" + uscc_check_character("91522326MA6H00009")
HOUSEHOLD_ID = id_number("522326", "19720315", "041")


def county_rows(*, bad: bool) -> list[str]:
    """13 rows; with `bad`, rows 3, 7 and 11 of the file (data rows 1, 5, 9) carry one mistake
    each: an unknown village (打浪村 for 打狼村), an unknown product type, and a village name
    that two townships have (新合村, township left blank)."""
    village_1 = "打浪村" if bad else "打狼村"
    type_5 = "林下养蜂" if bad else "林下食用菌"
    township_9 = "" if bad else "石屯镇"
    return [
        f"1,打狼村古茶园,物质产品,茶叶,望谟县,石屯镇,{village_1},打狼村股份经济合作社,,,"
        f"所有权,12.5,3.2,t",
        "2,打狼村林下菌基地,物质产品,林下食用菌,望谟县　,石屯镇,打狼村,"
        "望谟县石屯镇食用菌专业合作社,,,承包经营权,5,2.1,t",
        "3,新合村碳汇林,调节服务,森林碳汇,望谟县,石屯镇,新合村,新合村股份经济合作社,,,"
        "承包经营权,18.27,331,tCO2/a",
        "4,麻山水源涵养区,调节服务,水源涵养,望谟县,麻山镇,,望谟县自然资源局,,,所有权,5320,"
        "2180,万m3/a",
        f"5,卡法村林下菌,物质产品,{type_5},望谟县,麻山镇,卡法村,卡法村股份经济合作社,,,"
        f"所有权,3,0.6,t",
        "6,卡法村喀斯特景观,文化服务,喀斯特景观,望谟县,麻山镇,卡法村,卡法村股份经济合作社,,,"
        "所有权,30,5,万人次/a",
        "7,石屯茶业茶园,物质产品,茶叶,望谟县,石屯镇,打狼村,望谟县石屯茶业有限公司,,,使用权,"
        "20,8,t",
        f"8,黔茗茶园,物质产品,茶叶,望谟县,石 屯 镇,新合村,望谟县黔茗茶业有限公司,"
        f"{NEW_COMPANY_USCC},,使用权,15,6,t",
        f"9,新合村林下菌,物质产品,林下食用菌,望谟县,{township_9},新合村,新合村股份经济合作社,"
        f",,承包经营权,2,0.9,t",
        f"10,韦家承包茶园,物质产品,茶叶,望谟县,石屯镇,打狼村,韦某戊,,{HOUSEHOLD_ID},"
        f"承包经营权,0.6,0.3,t",
        "11,麻山碳汇林,调节服务,森林碳汇,望谟县,麻山镇,卡法村,卡法村股份经济合作社,,,"
        "承包经营权,40,620,tCO2/a",
        "12,打狼村水源涵养林,调节服务,水源涵养,望谟县,石屯镇,打狼村,打狼村股份经济合作社,,,"
        "所有权,80,35,万m3/a",
        "13,新合村乡村旅游点,文化服务,乡村旅游,望谟县,石屯镇,新合村,新合村股份经济合作社,,,"
        "所有权,4,1.2,万人次/a",
    ]


def county_file(rows: list[str]) -> bytes:
    return ("\n".join([TITLE, HEADER, *rows]) + "\n").encode("gbk")


def upload(client, headers, data: bytes, **query):
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/catalog/imports/products?{params}",
                       data={"file": (io.BytesIO(data), "望谟县目录.csv")}, headers=headers,
                       content_type="multipart/form-data")


def counts(database) -> tuple[int, ...]:
    with database.session(write=False) as s:
        return tuple(s.scalar(sa.select(sa.func.count()).select_from(t)) for t in (
            Product, ProductVersion, ImportBatch, AuditEvent, Party))


@pytest.fixture()
def county(world, database):
    """Wangmo's townships and villages as the county registered them: 新合村 under both 石屯镇
    and 麻山镇 (two villages of one name, as happens)."""
    admin = system_principal("test-county")
    with database.unit_of_work() as s:
        regions.create_region(s, admin, code="522326101202", name_zh="新合村")
        regions.create_region(s, admin, code="522326110", name_zh="麻山镇")
        regions.create_region(s, admin, code="522326110201", name_zh="卡法村")
        regions.create_region(s, admin, code="522326110202", name_zh="新合村")
    return world


def test_a_county_spreadsheet_as_it_is(client, tokens, county, database):
    h = tokens.registrar()
    before = counts(database)
    dry = upload(client, h, county_file(county_rows(bad=True)), dry_run="true")
    assert dry.status_code == 422, dry.get_json()
    errors = dry.get_json()["errors"]
    # exactly the three bad cells, named by the file's row and header
    assert [(e["row"], e["column"]) for e in errors] == [(3, "村"), (7, "产品类型"), (11, "村")]
    assert "打浪村" in errors[0]["message"] and "打狼村" in errors[0]["message"]  # candidates
    assert "林下养蜂" in errors[1]["message"]
    assert "2 village (村)s are named '新合村'" in errors[2]["message"]
    assert "522326101202" in errors[2]["message"] and "522326110202" in errors[2]["message"]
    assert counts(database) == before

    data = county_file(county_rows(bad=False))
    dry = upload(client, h, data, dry_run="true").get_json()
    assert (dry["rows"], dry["created"], dry["updated"], dry["encoding"]) == (13, 13, 0, "gbk")
    assert dry["ignored_columns"] == ["序号"]
    holders = {h["name_zh"]: h for h in dry["holders_to_create"]}
    assert set(holders) == {"望谟县石屯镇食用菌专业合作社", "新合村股份经济合作社",
                            "望谟县自然资源局", "卡法村股份经济合作社", "望谟县石屯茶业有限公司",
                            "望谟县黔茗茶业有限公司", "韦某戊"}
    assert {n: h["kind"] for n, h in holders.items()} == {
        "望谟县石屯镇食用菌专业合作社": "cooperative", "新合村股份经济合作社": "village_collective",
        "望谟县自然资源局": "government", "卡法村股份经济合作社": "village_collective",
        "望谟县石屯茶业有限公司": "enterprise", "望谟县黔茗茶业有限公司": "enterprise",
        "韦某戊": "household"}
    assert holders["望谟县黔茗茶业有限公司"]["credit_code"] == NEW_COMPANY_USCC
    assert holders["望谟县石屯茶业有限公司"]["identified"] is False
    assert holders["韦某戊"]["id_number_masked"].startswith("522") and HOUSEHOLD_ID not in str(dry)
    assert holders["卡法村股份经济合作社"]["rows"] == [7, 8, 13]
    assert holders["卡法村股份经济合作社"]["region_code"] == "522326110201"
    assert counts(database) == before  # the dry run wrote nothing

    done = upload(client, h, data)
    assert done.status_code == 200, done.get_json()
    report = done.get_json()
    assert (report["created"], report["parties_created"]) == (13, 7)
    with database.session(write=False) as s:
        stored = {p.name_zh: p for p in s.scalars(sa.select(Product))}
        assert len(stored) == 13
        assert stored["打狼村林下菌基地"].type_code == "understory_fungi"
        assert stored["新合村碳汇林"].type_code == "forest_carbon_sink"
        assert stored["新合村碳汇林"].region_code == "522326101202"
        assert stored["麻山水源涵养区"].region_code == "522326110"  # township: no village
        assert stored["卡法村喀斯特景观"].category == "cultural"
        assert stored["黔茗茶园"].region_code == "522326101202"  # "石 屯 镇" normalised
        company = s.scalar(sa.select(Party).where(Party.name_zh == "望谟县石屯茶业有限公司"))
        assert company.kind == "enterprise" and company.credit_code is None
        assert not company.identified
        household = s.scalar(sa.select(Party).where(Party.name_zh == "韦某戊"))
        assert household.id_number_masked and household.id_number_index
        assert stored["韦家承包茶园"].holder_party_id == household.id
        # the existing collective was found, not created again
        assert s.scalar(sa.select(sa.func.count()).select_from(Party).where(
            Party.name_zh == "打狼村股份经济合作社")) == 1
    after_commit = counts(database)

    again = upload(client, h, data).get_json()
    assert (again["created"], again["updated"], again["unchanged"], again["batch_id"]) == (
        0, 0, 13, None)
    assert again["holders_to_create"] == [] and counts(database) == after_commit

    # a verifier verifies the tea garden; then the county sends the file with blank cells
    tea = stored["打狼村古茶园"].id
    assert client.post(f"/catalog/products/{tea}/verify", json={},
                       headers=tokens.headers("verifier")).status_code == 200
    after_verification = counts(database)
    blanked = county_rows(bad=False)
    blanked[0] = "1,打狼村古茶园,物质产品,茶叶,望谟县,石屯镇,打狼村,,,,,,,t"  # holder, right,
    blanked[1] = ("2,打狼村林下菌基地,物质产品,林下食用菌,望谟县,石屯镇,打狼村,,,,承包经营权,"
                  ",,")  # area, quantity and unit
    quiet = upload(client, h, county_file(blanked)).get_json()
    assert (quiet["created"], quiet["updated"], quiet["unchanged"]) == (0, 0, 13)
    with database.session(write=False) as s:
        garden = s.get(Product, tea)
        assert (garden.status, garden.quantity, garden.area_ha, garden.rights_type) == (
            "verified", 3.2, 12.5, "ownership")
    assert counts(database) == after_verification


def test_the_dry_run_shows_each_change_and_its_consequence(client, tokens, county, database):
    h = tokens.registrar()
    upload(client, h, county_file(county_rows(bad=False)))
    with database.session(write=False) as s:
        tea = s.scalar(sa.select(Product.id).where(Product.name_zh == "打狼村古茶园"))
    client.post(f"/catalog/products/{tea}/verify", json={}, headers=tokens.headers("verifier"))
    rows = county_rows(bad=False)
    rows[0] = rows[0].replace(",12.5,3.2,t", ",12.5,3.6,t")
    dry = upload(client, h, county_file(rows), dry_run="true").get_json()
    assert dry["updated"] == 1 and dry["sent_back_for_verification"] == 1
    assert dry["changes"] == [{
        "row": 3, "product_id": tea, "name_zh": "打狼村古茶园", "status": "verified",
        "fields": [{"field": "quantity", "old": 3.2, "new": 3.6}],
        "lifecycle": "verified → registered: attested fields change (quantity)"}]
    with database.session(write=False) as s:
        assert s.get(Product, tea).quantity == 3.2  # a dry run


def test_clearing_takes_an_explicit_marker(client, tokens, county, database, problem):
    h = tokens.registrar()
    upload(client, h, county_file(county_rows(bad=False)))
    rows = county_rows(bad=False)
    rows[1] = rows[1].replace(",5,2.1,t", ",［清空］,[清空],")  # full-width brackets too
    report = upload(client, h, county_file(rows)).get_json()
    assert report["updated"] == 1
    assert {c["field"] for c in report["changes"][0]["fields"]} == {
        "area_ha", "quantity", "quantity_unit"}
    with database.session(write=False) as s:
        fungi = s.scalar(sa.select(Product).where(Product.name_zh == "打狼村林下菌基地"))
        assert (fungi.area_ha, fungi.quantity, fungi.quantity_unit) == (None, None, None)
    # a clearing marker in a required column is a row error; nothing is written
    before = counts(database)
    rows = county_rows(bad=False)
    rows[2] = rows[2].replace("新合村股份经济合作社", "[清空]")
    body = problem(upload(client, h, county_file(rows)), 422, "import-rejected")
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(5, "权利人")]
    assert "cannot be cleared" in body["errors"][0]["message"]
    assert counts(database) == before


def test_places_in_one_cell_and_bad_place_names(client, tokens, county, problem):
    header = "产品名称,产品类型,所在地,权利人,权利类型"
    rows = ["古茶园甲,茶叶,望谟县石屯镇打狼村,打狼村股份经济合作社,所有权",
            "古茶园乙,茶叶,石屯镇　新合村,打狼村股份经济合作社,所有权",
            "古茶园丙,茶叶,麻山镇新合村,打狼村股份经济合作社,所有权",
            "古茶园丁,茶叶,新合村,打狼村股份经济合作社,所有权",       # two 新合村
            "古茶园戊,茶叶,望谟县石屯镇打浪村,打狼村股份经济合作社,所有权"]  # unknown
    body = problem(upload(client, tokens.registrar(), "\n".join([header, *rows]).encode()),
                   422)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(5, "所在地"), (6, "所在地")]
    assert "2 places match '新合村'" in body["errors"][0]["message"]
    assert "石屯镇" in body["errors"][1]["message"]  # the names it does contain
    good = "\n".join([header, *rows[:3]]).encode()
    report = upload(client, tokens.registrar(), good).get_json()
    assert report["created"] == 3


def test_holders_that_match_two_parties_and_synonyms_that_contradict(client, tokens, county,
                                                                     database, problem):
    from catalog.services import parties

    with database.unit_of_work() as s:
        parties.create_party(s, system_principal("t"), {
            "kind": "cooperative", "name_zh": "打狼村股份经济合作社",
            "region_code": county.township})
    body = problem(upload(client, tokens.registrar(), county_file(county_rows(bad=False)[:1])),
                   422)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(3, "权利人")]
    assert "2 parties named" in body["errors"][0]["message"]
    # synonyms are data: an admin adds a county's word; one meaning two types is refused
    added = client.post("/catalog/synonyms", json={
        "vocabulary": "type", "term": "林下养蜂", "code": "understory_medicinal",
        "note": "test"}, headers=tokens.admin)
    assert added.status_code == 201 and added.get_json()["source"] == "registered"
    problem(client.post("/catalog/synonyms", json={
        "vocabulary": "type", "term": "林下 养蜂", "code": "tea"}, headers=tokens.admin), 409,
        "synonym-conflict")
    problem(client.post("/catalog/synonyms", json={
        "vocabulary": "type", "term": "森林碳汇", "code": "timber_forest"},
        headers=tokens.admin), 409, "synonym-conflict")
    problem(client.post("/catalog/synonyms", json={
        "vocabulary": "type", "term": "x", "code": "tea"}, headers=tokens.registrar()), 403)
    listed = client.get("/catalog/synonyms?vocabulary=type").get_json()
    assert {"vocabulary": "type", "term": "林下养蜂", "code": "understory_medicinal",
            "note": "test", "source": "registered"} in listed
    assert any(r["term"] == "森林碳汇" and r["source"] == "reference" for r in listed)
    rows = county_rows(bad=True)[4:5]  # 林下养蜂 is understood now
    report = upload(client, tokens.registrar(), county_file(rows), dry_run="true").get_json()
    assert report["created"] == 1


def test_an_unidentified_enterprise_cannot_hold_an_account_until_its_code_is_added(
        client, tokens, county, database):
    from catalog.services import parties
    from ecovalue.errors import ValidationFailed
    from ledger.core import create_account

    upload(client, tokens.registrar(), county_file(county_rows(bad=False)))
    with database.session(write=False) as s:
        company = s.scalar(sa.select(Party.id).where(Party.name_zh == "望谟县石屯茶业有限公司"))
    shown = client.get(f"/catalog/parties/{company}", headers=tokens.admin).get_json()
    assert shown["identified"] is False
    admin = system_principal("t")
    with database.unit_of_work() as s, pytest.raises(ValidationFailed) as refused:
        create_account(s, admin, party_id=company, asset="CNY", kind="holding")
    assert "unidentified" in str(refused.value.errors)
    code = "91522326MA6H00010" + uscc_check_character("91522326MA6H00010")
    with database.unit_of_work() as s:
        parties.update_party(s, admin, company, {"credit_code": code})
    assert client.get(f"/catalog/parties/{company}",
                      headers=tokens.admin).get_json()["identified"] is True


def test_the_cli_prints_holders_and_changes(app, county, tmp_path):
    path = tmp_path / "county.csv"
    path.write_bytes(county_file(county_rows(bad=False)))
    result = app.test_cli_runner().invoke(args=["catalog", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "13 would be created" in result.output
    assert ("holder to create: enterprise 望谟县石屯茶业有限公司 in 522326101201 (unidentified: "
            "no credit code, cannot trade or receive money) (rows 9)") in result.output


def test_a_villager_register_is_imported_with_personal_data_protected(client, tokens, county,
                                                                      database, problem):
    household = id_number("522326", "19850707", "052")
    register = ("姓名,主体类型,县(市),乡镇,村,身份证号,银行账号,开户行\n"
                f"韦某己,农户,望谟县,石屯镇,打狼村,{household},6217995230000000099,贵州农信\n"
                "新合村股份经济合作社,村集体,望谟县,石屯镇,新合村,,,\n"
                "石屯镇茶叶专业合作社,合作社,望谟县,石屯镇,,,,\n")
    h = tokens.registrar()
    dry = upload_parties(client, h, register.encode("gbk"), dry_run="true").get_json()
    assert (dry["created"], dry["unchanged"], dry["encoding"]) == (3, 0, "gbk")
    assert household not in str(dry) and "6217995230000000099" not in str(dry)
    done = upload_parties(client, h, register.encode("gbk")).get_json()
    assert (done["created"], done["parties_created"]) == (3, 3)
    with database.session(write=False) as s:
        person = s.scalar(sa.select(Party).where(Party.name_zh == "韦某己"))
        assert (person.kind, person.region_code, person.bank_account_masked) == (
            "household", county.village, "***************0099")
        assert person.id_number_encrypted and household not in str(person.attributes)
    again = upload_parties(client, h, register.encode("gbk")).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    moved = register.replace("6217995230000000099", "6217995230000000107")
    changed = upload_parties(client, h, moved.encode("gbk")).get_json()
    assert changed["updated"] == 1
    assert changed["changes"][0]["fields"] == [{"field": "bank_account",
                                                "old": "***************0099",
                                                "new": "***************0107"}]
    wrong = "1" if household[-1] != "1" else "2"  # a wrong check digit
    bad = ("姓名,主体类型,县(市),乡镇,村,身份证号\n"
           "韦某庚,农户,望谟县,石屯镇,打狼村,\n"
           f"韦某辛,农户,望谟县,石屯镇,打狼村,{household[:-1]}{wrong}\n")
    body = problem(upload_parties(client, h, bad.encode()), 422)
    assert [(e["row"], e["column"]) for e in body["errors"]] == [(2, "身份证号"), (3, "身份证号")]
    assert household[:-1] not in str(body)


def upload_parties(client, headers, data: bytes, **query):
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/catalog/imports/parties?{params}",
                       data={"file": (io.BytesIO(data), "register.csv")}, headers=headers,
                       content_type="multipart/form-data")
