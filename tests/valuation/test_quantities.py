"""Quantity sets: exact units, every bad row reported, files as counties send them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.auth import Principal, Role
from ecovalue.errors import Forbidden
from tests.valuation.conftest import HEADER, WANGMO, XINGYI, row, xlsx
from valuation.errors import QuantitiesInvalid, UnsupportedFile
from valuation.models import QuantityRow
from valuation.services import quantities

REGISTRAR = Principal(Role.REGISTRAR, "token:registrar", token_id=3, county_code=WANGMO)


def _stored(session, quantity_set):
    return session.scalars(sa.select(QuantityRow).where(QuantityRow.set_id == quantity_set.id)
                           .order_by(QuantityRow.id)).all()


@pytest.mark.parametrize(("indicator", "quantity", "unit", "canonical", "expected"), [
    ("R-WCON", 3.2, "亿m³", "m3", 320_000_000.0),
    ("R-SOIL", 1500, "万t", "t", 15_000_000.0),
    ("P-ENE", 16.3, "亿kWh", "kWh", 1_630_000_000.0),
    ("C-REC", 980, "万人次", "visit", 9_800_000.0),
    ("P-AGR", 31.8, "亿元", "yuan", 3_180_000_000.0),
    ("P-FOR", 6400, "万元", "yuan", 64_000_000.0),
    ("C-LAND", 1.5, "万hm²", "m2", 150_000_000.0),
    ("C-LAND", 35, "万m²", "m2", 350_000.0),
    ("R-CARB", 182, "万tCO2", "tCO2", 1_820_000.0),
    ("R-AIR", 1850000, "kg", "t", 1850.0),
    ("P-WAT", 0.21, "亿m3/a", "m3", 21_000_000.0),
])
def test_units_with_chinese_magnitudes_convert_exactly(session, system, indicator, quantity,
                                                       unit, canonical, expected):
    item = {"R-AIR": "SO2", "P-WAT": "domestic"}.get(indicator)
    created = quantities.create_from_rows(session, system, region_code=WANGMO, year=2024,
                                          rows=[row(indicator, quantity, unit, item=item)])
    stored = _stored(session, created)[0]
    assert (stored.quantity, stored.quantity_unit) == (expected, canonical)
    assert (stored.reported_quantity, stored.reported_unit) == (quantity, unit)
    assert stored.money is (canonical == "yuan")


BAD_ROWS = [
    (row("R-NOPE", 1, "t"), "indicator", "unknown indicator 'R-NOPE'"),
    (row("R-WCON", 1, "万t"), "unit", "unit 万t (mass) does not fit R-WCON, which expects m3"),
    (row("R-WCON", 1, "亿元"), "unit", "R-WCON is valued from its physical quantity"),
    (row("R-WCON", 1, "furlongs"), "unit", "unknown unit 'furlongs'"),
    (row("R-WCON", -5, "m3"), "quantity", "a negative quantity is impossible for R-WCON"),
    (row("R-WCON", "lots", "m3"), "quantity", "'lots' is not a number"),
    (row("R-WCON", 1, None), "unit", "unit is missing"),
    (row("R-WCON", 1, "m3", region="522999"), "region_code", "unknown region '522999'"),
    (row("R-WCON", 1, "m3", region=XINGYI), "region_code", "lies outside 522326"),
    (row("R-WCON", 1, "m3", year=2023), "year", "differs from the accounting year 2024"),
    (row("R-WCON", 1, "m3", eco="jungle"), "ecosystem_type", "unknown ecosystem type"),
    (row("R-WCON", 1, "m3", item="x"), "item", "R-WCON has no items"),
    (row("R-AIR", 1, "t", item="CO2"), "item", "item 'CO2' is not one of SO2, NOx, dust"),
    (row("R-WCON", 1, "m3", origin="abroad"), "origin", "must be local or outside"),
    (row("R-CARB", -5, "万tCO2", origin="outside"), "quantity", "(outside origin)"),
]


@pytest.mark.parametrize(("bad", "column", "message"), BAD_ROWS)
def test_bad_rows_are_refused_with_row_and_column(session, system, bad, column, message):
    good = row("R-SOIL", 1500, "万t")
    with pytest.raises(QuantitiesInvalid) as caught:
        quantities.create_from_rows(session, system, region_code=WANGMO, year=2024,
                                    rows=[good, bad])
    errors = caught.value.errors
    assert len(errors) == 1
    assert errors[0]["field"] == f"rows.1.{column}"
    assert message in errors[0]["message"]


def test_every_bad_row_of_a_file_is_reported_at_once_and_nothing_is_stored(session, system):
    data = xlsx([HEADER,
                 [WANGMO, 2024, "R-WCON", None, "forest", 3.2, "亿m³", None, None],
                 [WANGMO, 2024, "R-NOPE", None, "forest", 1, "t", None, None],
                 [WANGMO, 2024, "R-WCON", None, "forest", 1, "万t", None, None],
                 [WANGMO, 2024, "R-WCON", None, "forest", 2.0, "亿m³", None, None]])
    with pytest.raises(QuantitiesInvalid) as caught:
        quantities.create_from_file(session, system, region_code=WANGMO, year=2024,
                                    filename="q.xlsx", data=data)
    found = {(e["row"], e["column"]) for e in caught.value.errors}
    assert found == {(3, "indicator"), (4, "unit"), (5, "")}
    assert "duplicate of row 2" in caught.value.errors[-1]["message"]
    assert session.scalar(sa.select(sa.func.count()).select_from(QuantityRow)) == 0


def test_a_gbk_csv_with_chinese_headers_and_names_is_read(session, system):
    text = ("地区代码,年份,指标,项目,生态系统类型,实物量,单位,来源,备注\n"
            f"{WANGMO},2024,水源涵养,,森林,3.2,亿立方米,区域内,县统计\n"
            f"{WANGMO},2024,生态能源,,湿地,\"16.3\",亿kWh,,\n"
            f"{WANGMO},2024,生态能源,,湿地,2.1,亿kWh,区域外,外县水库\n")
    created = quantities.create_from_file(session, system, region_code=WANGMO, year=2024,
                                          filename="望谟.csv", data=text.encode("gbk"))
    assert created.source == "csv" and created.row_count == 3
    rows = _stored(session, created)
    assert [(r.indicator_code, r.ecosystem_type, r.origin) for r in rows] == [
        ("R-WCON", "forest", "local"), ("P-ENE", "wetland", "local"),
        ("P-ENE", "wetland", "outside")]
    assert rows[0].note == "县统计"
    assert (rows[0].quantity, rows[0].quantity_unit) == (320_000_000.0, "m3")


def test_an_empty_quantity_is_kept_as_not_available_not_zero(session, system):
    created = quantities.create_from_rows(session, system, region_code=WANGMO, year=2024,
                                          rows=[row("R-FLOOD", None, None, eco="wetland")])
    stored = _stored(session, created)[0]
    assert stored.quantity is None and stored.quantity_unit is None


@pytest.mark.parametrize(("data", "error", "message"), [
    (b"", QuantitiesInvalid, "empty"),
    (b"PK\x03\x04garbage", UnsupportedFile, "zip archive but not an XLSX"),
    (b"\x00\x01\x02binary", UnsupportedFile, "neither CSV"),
    (b"region_code,indicator,quantity\n", QuantitiesInvalid, "missing column unit"),
    (b"region_code,indicator,qty,unit\n", QuantitiesInvalid, "unknown column 'qty'"),
    (b"region_code,indicator,quantity,unit\n", QuantitiesInvalid, "no data rows"),
    (f"region_code,indicator,quantity,unit\n{WANGMO},R-WCON,1,m3,extra\n".encode(),
     QuantitiesInvalid, "beyond the last named column"),
])
def test_unreadable_files_are_refused_clearly(session, system, data, error, message):
    with pytest.raises(error) as caught:
        quantities.create_from_file(session, system, region_code=WANGMO, year=2024,
                                    filename="q.csv", data=data)
    text = caught.value.detail + " ".join(e["message"] for e in caught.value.errors)
    assert message in text


def test_registrars_write_quantities_for_their_own_county_only(session):
    quantities.create_from_rows(session, REGISTRAR, region_code=WANGMO, year=2024,
                                rows=[row("R-WCON", 1, "亿m³")])
    with pytest.raises(Forbidden):
        quantities.create_from_rows(session, REGISTRAR, region_code=XINGYI, year=2024,
                                    rows=[row("R-WCON", 1, "亿m³", region=XINGYI)])
    with pytest.raises(Forbidden):
        quantities.create_from_rows(session, REGISTRAR, region_code="522300", year=2024,
                                    rows=[row("R-WCON", 1, "亿m³")])


def test_a_title_row_above_the_header_is_skipped_as_the_catalog_skips_it(session, system):
    """The shell's reader finds the header below a county's title rows (CSV or XLSX)."""
    text = ("望谟县2024年生态系统实物量,,,,,\n"
            "地区代码,年份,指标,实物量,单位,备注\n"
            f"{WANGMO},2024,水源涵养,3.2,亿立方米,䶮村\n")  # U+4DAE: GB18030, not GBK
    csv_set = quantities.create_from_file(session, system, region_code=WANGMO, year=2024,
                                          filename="望谟.csv", data=text.encode("gb18030"))
    data = xlsx([["望谟县2024年生态系统实物量"], ["地区代码", "年份", "指标", "实物量", "单位"],
                 [int(WANGMO), 2024, "水源涵养", 3.2, "亿立方米"]])
    xlsx_set = quantities.create_from_file(session, system, region_code=WANGMO, year=2024,
                                           filename="望谟.xlsx", data=data)
    for created in (csv_set, xlsx_set):
        (stored,) = _stored(session, created)
        assert (stored.source_row, stored.indicator_code, stored.quantity) == (
            3, "R-WCON", 320_000_000.0)
    assert (csv_set.source, xlsx_set.source) == ("csv", "xlsx")
    assert _stored(session, csv_set)[0].note == "䶮村"
