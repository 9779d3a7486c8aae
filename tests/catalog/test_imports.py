"""Bulk import: every error at once, GBK, XLSX, all-or-nothing, idempotent re-import, wrong
columns, non-spreadsheets, size limits, county scope, and the trail it leaves."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from catalog.models import ImportBatch, MonitoringRecord, Product, ProductVersion
from ecovalue.audit.models import AuditEvent
from tests.catalog.conftest import MOUTAI_USCC, XINGYI, make_product

HEADER = ("产品编号,产品名称,产品类型,行政区划代码,权利人,权利类型,面积(公顷),数量,单位,"
          "纬度,经度,认证")


def product_csv(world, rows: list[str] | None = None, header: str = HEADER) -> str:
    rows = rows if rows is not None else [
        f"WM-001,打狼村古茶园,茶叶,{world.village},#{world.collective},所有权,12.5,3.2,t,25.17,"
        f"106.09,绿色食品;地理标志",
        f"WM-002,打狼村油茶林,油茶,{world.village},打狼村股份经济合作社,所有权,40,2.4,万斤,,,",
        f"WM-003,王家林下菌,林下菌类,{world.village},{world.household_id_number},承包经营权,0.8,"
        f"1.2,t,,,",
        f"WM-004,石屯碳汇林,森林碳汇地块,{world.township},#{world.collective},承包经营权,17.07,"
        f"310,tCO2/a,,,",
    ]
    return "\n".join([header, *rows]) + "\n"


def upload(client, headers, data: bytes | str, *, kind="products", name="products.csv",
           **query):
    if isinstance(data, str):
        data = data.encode("utf-8")
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/catalog/imports/{kind}?{params}",
                       data={"file": (io.BytesIO(data), name)}, headers=headers,
                       content_type="multipart/form-data")


def counts(database) -> tuple[int, int, int, int]:
    with database.session(write=False) as s:
        return tuple(s.scalar(sa.select(sa.func.count()).select_from(t)) for t in (
            Product, ProductVersion, ImportBatch, AuditEvent))


def test_dry_run_then_commit_a_gbk_file(client, tokens, world, database):
    data = product_csv(world).encode("gbk")
    h = tokens.registrar()
    before = counts(database)
    dry = upload(client, h, data, dry_run="true")
    assert dry.status_code == 200, dry.get_json()
    report = dry.get_json()
    assert (report["encoding"], report["rows"], report["created"], report["dry_run"],
            report["batch_id"]) == ("gbk", 4, 4, True, None)
    assert counts(database) == before  # a dry run writes nothing
    done = upload(client, tokens.registrar(), data).get_json()
    assert (done["created"], done["updated"], done["unchanged"]) == (4, 0, 0)
    assert done["batch_id"] is not None
    listing = client.get("/catalog/products", headers=tokens.auditor).get_json()
    by_code = {p["external_code"]: p for p in listing["items"]}
    assert by_code["WM-001"]["status"] == "registered"
    assert by_code["WM-001"]["certifications"] == ["绿色食品", "地理标志"]
    assert by_code["WM-002"]["holder_party_id"] == world.collective  # resolved by name
    assert by_code["WM-003"]["holder"]["name_zh"] == "王*明"  # resolved by ID number
    assert by_code["WM-004"]["category"] == "regulating"
    with database.session(write=False) as s:
        events = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "catalog.product.import")).all()
        versions = s.scalars(sa.select(ProductVersion)).all()
    assert len(events) == 1  # one audit event per import batch
    assert events[0].after["sha256"] == done["sha256"] and events[0].after["created"] == 4
    assert world.household_id_number not in str(events[0].after)
    assert {v.change for v in versions} == {"import"}
    assert all(v.import_batch_id == done["batch_id"] for v in versions)


def test_reimporting_the_same_file_changes_nothing(client, tokens, world, database):
    data = product_csv(world).encode("utf-8-sig")
    first = upload(client, tokens.registrar(), data).get_json()
    assert first["encoding"] == "utf-8" and first["created"] == 4
    before = counts(database)
    again = upload(client, tokens.registrar(), data).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert again["batch_id"] is None
    assert counts(database) == before


def test_reimport_with_changes_updates_and_sends_verified_back(client, tokens, world, database):
    upload(client, tokens.registrar(), product_csv(world))
    with database.unit_of_work() as s:  # a verifier verified WM-001 meanwhile
        from catalog.services import products
        from ecovalue.auth import system_principal

        product_id = s.scalar(sa.select(Product.id).where(Product.external_code == "WM-001"))
        products.transition_product(s, system_principal("v"), product_id, "verify")
    changed = product_csv(world).replace(",12.5,3.2,t,", ",13.5,3.2,t,")
    report = upload(client, tokens.registrar(), changed).get_json()
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 3)
    assert report["sent_back_for_verification"] == 1
    product = client.get(f"/catalog/products/{product_id}", headers=tokens.auditor).get_json()
    assert product["area_ha"] == 13.5 and product["status"] == "registered"
    history = client.get(f"/catalog/products/{product_id}/history",
                         headers=tokens.auditor).get_json()["items"]
    assert [v["change"] for v in history] == ["import", "verify", "import"]
    assert history[-1]["changed_fields"] == ["area_ha"]


def test_import_history_matches_what_an_api_edit_would_record(client, tokens, world, database):
    """The bulk path writes the same history entry the ORM path (audit.snapshot) would."""
    from catalog.services.products import product_data

    upload(client, tokens.registrar(), product_csv(world))
    upload(client, tokens.registrar(), product_csv(world).replace(",40,2.4,", ",41,2.4,"))
    with database.session(write=False) as s:
        for product in s.scalars(sa.select(Product)):
            latest = s.scalars(sa.select(ProductVersion).where(
                ProductVersion.product_id == product.id)
                .order_by(ProductVersion.version.desc())).first()
            assert latest.version == product.version
            assert latest.data == product_data(product), product.name_zh


def test_dry_run_lists_every_error_at_once_and_commit_writes_nothing(client, tokens, world,
                                                                    database, problem):
    rows = [
        f"A1,好茶园,茶叶,{world.village},#{world.collective},所有权,12.5,3.2,t,,,",  # fine
        f"A2,坏面积,茶叶,{world.village},#{world.collective},所有权,-3,3.2,t,,,",
        f"A3,坏单位,茶叶,{world.village},#{world.collective},所有权,1,3.2,m3,,,",
        f"A4,坏类型,鸦片,{world.village},#{world.collective},所有权,1,,,,,",
        f"A5,坏区划,茶叶,522326999999,#{world.collective},所有权,1,,,,,",
        f"A6,无主,茶叶,{world.village},查无此人,所有权,1,,,,,",
        f"A7,坏权利,茶叶,{world.village},#{world.collective},租赁,1,,,,,",
        f"A8,坐标反,茶叶,{world.village},#{world.collective},所有权,1,,,106.1,25.1,",
        f"A9,好茶园,茶叶,{world.village},#{world.collective},所有权,2,,,,,",  # dup of row 2
        f"A10,坏身份证,茶叶,{world.village},110105194912310021,所有权,1,,,,,",
    ]
    data = product_csv(world, rows).encode("gbk")
    h = tokens.registrar()
    before = counts(database)
    for query in ({"dry_run": "true"}, {}):
        body = problem(upload(client, h, data, **query), 422, "import-rejected")
        found = {(e["row"], e["column"]) for e in body["errors"]}
        assert {(3, "面积(公顷)"), (4, "单位"), (5, "产品类型"), (6, "行政区划代码"),
                (7, "权利人"), (8, "权利类型"), (9, "纬度"), (10, "产品名称"),
                (11, "权利人")} <= found, body["errors"]
        assert not any(e["row"] == 2 for e in body["errors"])
        assert body["detail"].startswith(f"{len(body['errors'])} errors in 9 of 10 rows")
        assert "110105194912310021" not in str(body)  # an ID number is never echoed
        assert counts(database) == before


def test_xlsx_with_a_title_row(client, tokens, world):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["望谟县生态产品目录清单 (测试)"])
    sheet.append(HEADER.split(","))
    sheet.append(["X-1", "茶园甲", "茶叶", int(world.village), f"#{world.collective}", "所有权",
                  12.5, 3, "t", 25.17, 106.09, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = upload(client, tokens.registrar(), buffer.getvalue(), name="清单.xlsx").get_json()
    assert report["encoding"] == "xlsx" and report["created"] == 1, report


def test_registrar_cannot_import_another_county_s_rows(client, tokens, world, database,
                                                       problem):
    rows = [f"W1,茶园,茶叶,{world.village},#{world.collective},所有权,1,,,,,",
            f"X1,兴义茶园,茶叶,{world.xingyi_township},#{world.xingyi_collective},所有权,1,,,,,"]
    h = tokens.registrar()
    before = counts(database)
    for query in ({"dry_run": "true"}, {}):
        body = problem(upload(client, h, product_csv(world, rows), **query),
                       403, "forbidden")
        assert [(e["row"], e["column"]) for e in body["errors"]] == [(3, "行政区划代码")]
    assert counts(database) == before
    assert upload(client, tokens.registrar(XINGYI), product_csv(world, rows[1:])) \
        .status_code == 200


@pytest.mark.parametrize("role", ["verifier", "trader", "finance", "auditor"])
def test_roles_that_do_not_write_cannot_import(role, client, tokens, world, problem):
    headers = tokens.trader(world.plant) if role == "trader" else tokens.headers(role)
    problem(upload(client, headers, product_csv(world), dry_run="true"), 403)
    problem(upload(client, headers, "product_id,year,metric,value,unit,method\n",
                   kind="monitoring"), 403)


def test_missing_columns(client, tokens, world, problem):
    body = problem(upload(client, tokens.admin, "产品名称,面积\n茶园,1\n"), 422, "missing-columns")
    assert {e["column"] for e in body["errors"]} == {"type", "region_code", "holder",
                                                      "rights_type"}
    problem(upload(client, tokens.admin, "产品名称,名称,产品类型,行政区划代码,权利人,权利类型\n"),
            422, "missing-columns")  # two headers for the same column


@pytest.mark.parametrize("data, name", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "photo.csv"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "old.xls"),
    (b"PK\x03\x04 this is not really a zip", "broken.xlsx"),
    (b"", "empty.csv"),
    (b"\xff\xfe\xfd" * 100, "garbage.csv"),
])
def test_not_a_spreadsheet_is_415(data, name, client, tokens, problem):
    problem(upload(client, tokens.admin, data, name=name), 415, "not-a-spreadsheet")


def test_header_without_rows_and_malformed_csv_are_422(client, tokens, world, problem):
    problem(upload(client, tokens.admin, HEADER + "\n"), 422, "import-rejected")
    ragged = product_csv(world) + "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n"  # too many fields
    body = problem(upload(client, tokens.admin, ragged), 422, "import-rejected")
    assert "cannot be read" in body["detail"]


def test_too_large(app, client, tokens, world, monkeypatch, problem):
    monkeypatch.setitem(app.config, "CATALOG_IMPORT_MAX_BYTES", 100)
    problem(upload(client, tokens.admin, product_csv(world)), 413, "file-too-large")
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 200)
    problem(upload(client, tokens.admin, product_csv(world)), 413)


def test_missing_file_field_is_422(client, tokens, problem):
    problem(client.post("/catalog/imports/products", data={}, headers=tokens.admin,
                        content_type="multipart/form-data"), 422)


def test_holder_name_ambiguity_and_unknown_id_number(client, tokens, world, database, problem):
    from catalog.services import parties
    from ecovalue.auth import system_principal

    with database.unit_of_work() as s:
        parties.create_party(s, system_principal("t"), {
            "kind": "cooperative", "name_zh": "打狼村股份经济合作社",
            "region_code": world.township})
    unknown_id = "522326199001011235"  # valid check digit? computed below
    from catalog.identifiers import id_check_character

    unknown_id = unknown_id[:17] + id_check_character(unknown_id[:17])
    rows = [f"B1,茶园,茶叶,{world.village},打狼村股份经济合作社,所有权,1,,,,,",
            f"B2,茶园二,茶叶,{world.village},{unknown_id},所有权,1,,,,,",
            f"B3,茶园三,茶叶,{world.village},{MOUTAI_USCC},所有权,1,,,,,"]
    body = problem(upload(client, tokens.admin, product_csv(world, rows)), 422)
    messages = {e["row"]: e["message"] for e in body["errors"]}
    assert "2 parties named" in messages[2]
    assert "522***********" in messages[3] and unknown_id not in str(body)
    assert 4 not in messages  # the plant's credit code resolves


def test_export_can_be_imported_again_unchanged(client, tokens, world, database):
    upload(client, tokens.registrar(), product_csv(world))
    exported = client.get("/catalog/products/export?format=xlsx", headers=tokens.registrar())
    report = upload(client, tokens.registrar(), exported.data, name="export.xlsx").get_json()
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 4)
    assert set(report["ignored_columns"]) == {"id", "status", "holder_name", "version"}


def test_templates_are_public_and_importable_headers(client):
    for kind in ("products", "monitoring"):
        csv_template = client.get(f"/catalog/imports/templates/{kind}")
        assert csv_template.status_code == 200 and csv_template.mimetype == "text/csv"
        xlsx = client.get(f"/catalog/imports/templates/{kind}?format=xlsx")
        assert openpyxl.load_workbook(io.BytesIO(xlsx.data)).active["A1"].value


def test_initial_status_draft(client, tokens, world):
    report = upload(client, tokens.registrar(), product_csv(world), status="draft").get_json()
    assert report["created"] == 4
    assert client.get("/catalog/products?status=draft",
                      headers=tokens.auditor).get_json()["total"] == 4


# --- monitoring ------------------------------------------------------------------------------


def test_monitoring_import_by_id_natural_key_and_code(client, tokens, world, database, problem):
    upload(client, tokens.registrar(), product_csv(world))
    with database.session(write=False) as s:
        tea = s.scalar(sa.select(Product.id).where(Product.external_code == "WM-001"))
    text = "\n".join([
        "产品ID,产品编号,行政区划代码,产品类型,产品名称,年份,月份,指标,数值,单位,监测方法,数据来源",
        f"{tea},,,,,2022,,产量,3.0,t,实地调查,村报表",
        f",WM-001,{world.village},,,2023,,产量,3.2,t,实地调查,村报表",
        f",,{world.village},油茶,打狼村油茶林,2023,,产量,2.4,万斤,统计年鉴,2023年鉴",
        f",,{world.township},森林碳汇地块,石屯碳汇林,2023,,碳汇量,310,tCO2/a,遥感监测,",
        f"{tea},,,,,2023,5,产量,0.4,t,网格化监测,",
    ]) + "\n"
    data = text.encode("gbk")
    dry = upload(client, tokens.registrar(), data, kind="monitoring", dry_run="true").get_json()
    assert (dry["created"], dry["batch_id"]) == (5, None)
    done = upload(client, tokens.registrar(), data, kind="monitoring").get_json()
    assert done["created"] == 5 and done["encoding"] == "gbk"
    again = upload(client, tokens.registrar(), data, kind="monitoring").get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 5)
    changed = upload(client, tokens.registrar(), text.replace(",3.2,t,", ",3.3,t,").encode("gbk"),
                     kind="monitoring").get_json()
    assert (changed["created"], changed["updated"], changed["unchanged"]) == (0, 1, 4)
    with database.session(write=False) as s:
        values = s.scalars(sa.select(MonitoringRecord.value).where(
            MonitoringRecord.product_id == tea, MonitoringRecord.period_year == 2023,
            MonitoringRecord.period_month.is_(None))).all()
        event = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "catalog.monitoring.import").order_by(AuditEvent.seq.desc())
        ).first()
    assert values == [3.3]
    assert event.after["updated_previous_values"][0]["value"] == 3.2


def test_monitoring_import_errors_all_at_once(client, tokens, world, database, problem):
    tea = make_product(database, world, "registered")
    text = "\n".join([
        "product_id,year,month,metric,value,unit,method",
        f"{tea},2022,,output,3.0,m3,field_survey",  # wrong dimension for tea
        f"{tea},2022,13,output,3.0,t,field_survey",  # bad month
        f"{tea},2999,,output,3.0,t,field_survey",  # future
        f"{tea},2021,,happiness,3.0,t,field_survey",  # unknown metric
        f"{tea},2021,,output,,t,field_survey",  # missing value
        f"{tea},2021,,output,-1,t,field_survey",  # negative output
        f"{tea},2021,,output,1,t,guesswork",  # unknown method
        "99999,2021,,output,1,t,field_survey",  # unknown product
        f"{tea},2020,,output,1,t,field_survey",
        f"{tea},2020,,output,2,t,field_survey",  # duplicate of the row above
    ]) + "\n"
    body = problem(upload(client, tokens.registrar(), text, kind="monitoring", dry_run="true"),
                   422, "import-rejected")
    rows = sorted({e["row"] for e in body["errors"]})
    assert rows == [2, 3, 4, 5, 6, 7, 8, 9, 11], body["errors"]


def test_monitoring_import_outside_county_is_403(client, tokens, world, database, problem):
    xingyi = make_product(database, world, "registered", region_code=world.xingyi_township,
                          holder_party_id=world.xingyi_collective)
    text = f"product_id,year,metric,value,unit,method\n{xingyi},2022,output,1,t,field_survey\n"
    problem(upload(client, tokens.registrar(), text, kind="monitoring"), 403)
    assert upload(client, tokens.registrar(XINGYI), text, kind="monitoring").status_code == 200


def test_monitoring_file_must_name_products(client, tokens, problem):
    problem(upload(client, tokens.admin, "year,metric,value,unit,method\n2022,output,1,t,x\n",
                   kind="monitoring"), 422, "missing-columns")


def test_cli_import_dry_run_and_commit(cli, world, tmp_path, database):
    path = tmp_path / "products.csv"
    path.write_bytes(product_csv(world).encode("gbk"))
    result = cli("catalog", "import", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "4 would be created" in result.output and "nothing was written" in result.output
    assert counts(database)[0] == 0
    result = cli("catalog", "import", str(path))
    assert result.exit_code == 0 and "4 were created" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"\nZ,坏,茶叶,{world.village},#{world.collective},所有权,-1,,,,,\n")
    result = cli("catalog", "import", str(bad))
    assert result.exit_code == 1 and "row=2" in result.output


@pytest.mark.parametrize("holder", [
    "522326900101123",  # a first-generation 15-digit number
    "52232619900101123",  # a digit short
    "5223261990010112345",  # a digit too many
    "522326-19900101-1234",  # with separators
    "52232619900101123Y",
])
def test_a_malformed_id_number_in_a_holder_cell_is_masked_not_echoed(client, tokens, world,
                                                                     problem, holder):
    rows = [f"WM-009,王家林下菌,林下菌类,{world.village},{holder},承包经营权,0.8,1.2,t,,,"]
    response = upload(client, tokens.admin, product_csv(world, rows))
    body = problem(response, 422)
    text = response.get_data(as_text=True)
    assert holder not in text and holder.replace("-", "") not in text
    assert any(e.get("column") == "holder" or e.get("field") == "holder" for e in body["errors"])
    assert any(holder[:3] + "*" in e["message"] for e in body["errors"]), body["errors"]


def test_an_upload_with_the_same_key_and_another_file_is_a_conflict(client, tokens, world,
                                                                     problem):
    """The declared-parameter check reads the form before the view; it once consumed the
    body, so every upload digested as empty and another file under the same key replayed the
    first file's answer."""
    def dry_run(data: str):
        return client.post("/catalog/imports/products?dry_run=true",
                           headers={**tokens.admin, "Idempotency-Key": "same-key"},
                           data={"file": (io.BytesIO(data.encode()), "products.csv")},
                           content_type="multipart/form-data")

    first = dry_run(product_csv(world))
    assert first.status_code == 200, first.get_json()
    problem(dry_run(product_csv(world, [product_csv(world).splitlines()[1]])), 409,
            "idempotency-key-reused")
