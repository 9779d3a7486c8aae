"""The national method's sub-items, entirely through the CLI and spreadsheets (issue 9):
soil retention as reduced sedimentation (soil t with sediment share and bulk density, or silt
volume m3), reduced N and reduced P each with its own quantity and price; flood regulation by
lakes, reservoirs and marshes; climate regulation by transpiration and evaporation; carbon in
tC with a price per tC (44/12 exactly). Every number below is worked by hand."""

from __future__ import annotations

import json

import pytest

from valuation import registry

PRICES = """参数,数值,单位,价格年份,价格指数,确认,来源
sediment_share,0.24,1,,,confirmed,hand-worked test
soil_bulk_density,1.25,t/m3,,,confirmed,hand-worked test
dredging_cost,12.6,元/m3,2024,,confirmed,hand-worked test
nitrogen_price,2549,元/t,2024,,confirmed,hand-worked test
phosphorus_price,2549,元/t,2024,,confirmed,hand-worked test
reservoir_cost,6.1107,元/m3,2024,,confirmed,hand-worked test
electricity_price,0.5,元/kWh,2024,,confirmed,hand-worked test
carbon_price,1200,元/tC,2024,,confirmed,hand-worked test
"""

QUANTITIES = """地区代码,年份,指标,项目,生态系统类型,实物量,单位
522326,2024,R-SOIL,减少泥沙淤积,森林,100,万t
522326,2024,R-SOIL,sediment,灌丛,50000,m3
522326,2024,R-SOIL,减少氮面源污染,森林,1200,t
522326,2024,R-SOIL,减少磷面源污染,森林,300,t
522326,2024,R-FLOOD,湖泊,湿地,2,亿m3
522326,2024,R-FLOOD,水库,湿地,1.5,亿m3
522326,2024,R-FLOOD,沼泽,湿地,0.1,亿m3
522326,2024,R-CLIM,植被蒸腾,森林,30,亿kWh
522326,2024,R-CLIM,水面蒸发,湿地,5,亿kWh
522326,2024,R-CARB,,森林,10,万tC
"""

#: by hand: sediment 1,000,000 t x 0.24 / 1.25 t/m3 = 192,000 m3 x 12.6 = 2,419,200; silt
#: 50,000 m3 x 12.6 = 630,000; N 1,200 x 2,549 = 3,058,800; P 300 x 2,549 = 764,700
EXPECTED = {
    ("R-SOIL", "sediment", "forest"): 2_419_200.0,
    ("R-SOIL", "sediment", "shrubland"): 630_000.0,
    ("R-SOIL", "nitrogen", "forest"): 3_058_800.0,
    ("R-SOIL", "phosphorus", "forest"): 764_700.0,
    ("R-FLOOD", "lake", "wetland"): 200_000_000 * 6.1107,
    ("R-FLOOD", "reservoir", "wetland"): 150_000_000 * 6.1107,
    ("R-FLOOD", "marsh", "wetland"): 10_000_000 * 6.1107,
    ("R-CLIM", "transpiration", "forest"): 1_500_000_000.0,
    ("R-CLIM", "evaporation", "wetland"): 250_000_000.0,
    # 100,000 tC = 366,666.67 tCO2 at 1,200 x 12/44 yuan/tCO2 = 120,000,000 yuan
    ("R-CARB", "", "forest"): 120_000_000.0,
}


@pytest.fixture()
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str) -> str:
        result = runner.invoke(args=list(args))
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def test_sub_items_through_the_cli_and_spreadsheets(cli, app, tmp_path, database):
    (tmp_path / "prices.csv").write_bytes(PRICES.encode("gbk"))
    (tmp_path / "quantities.csv").write_text(QUANTITIES, encoding="utf-8")
    assert "draft, 0 entries" in cli("valuation", "price-book", "create", "county-2024",
                                     "--title", "望谟县 2024 (test)")
    assert "8 entries from prices.csv" in cli("valuation", "price-book", "fill", "county-2024",
                                               str(tmp_path / "prices.csv"))
    assert "published" in cli("valuation", "price-book", "publish", "county-2024")
    shown = cli("valuation", "price-book", "show", "county-2024")
    assert "carbon_price" in shown and "yuan/tC" in shown.replace("元", "yuan")
    out = cli("valuation", "run", "--region", "522326", "--year", "2024", "--quantities",
              str(tmp_path / "quantities.csv"), "--prices", "county-2024", "--unit", "元",
              "--output-value-basis", "net")
    run_id = int(out.split("run ")[1].split(":")[0])
    # the price book uses no index: no warning about index values to confirm
    assert "price-index values still to be confirmed" not in out
    detail = cli("valuation", "detail", str(run_id))
    assert "output values net" in detail
    from ecovalue.auth import system_principal
    from valuation.models import ValuationRun
    from valuation.services import reporting, runs

    with database.session(write=False) as s:
        view = reporting.run_view(s, system_principal("t"), run_id)
        rows = {(r.indicator_code, r.item, r.ecosystem_type): r.value_current
                for r in view.results.itertuples(index=False)}
        run = s.get(ValuationRun, run_id)
        gep = run.gep_current
        assert run.options["output_value_basis"] == "net"
        unvalued = runs.get_run(s, system_principal("t"), run_id).unvalued
        assert not [u for u in unvalued if u["kind"] != "no-quantity"], unvalued
    assert set(rows) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert rows[key] == pytest.approx(value, rel=1e-12), key
    # sub-items sum to their indicator, and the indicators to GEP
    assert sum(v for k, v in rows.items() if k[0] == "R-SOIL") == pytest.approx(6_872_700.0)
    assert gep == pytest.approx(sum(EXPECTED.values()), rel=1e-12)
    # each sub-item its own row in the run detail
    for item in ("sediment", "nitrogen", "phosphorus", "lake", "reservoir", "marsh",
                 "transpiration", "evaporation"):
        assert f" {item} " in detail
    assert "366,666.6667" in detail  # 10 万tC as tCO2, exactly 44/12


def test_sub_items_and_their_indicator_together_count_twice(cli, app, tmp_path):
    (tmp_path / "prices.csv").write_bytes(PRICES.encode("gbk"))
    cli("valuation", "price-book", "create", "b", "--title", "t")
    cli("valuation", "price-book", "fill", "b", str(tmp_path / "prices.csv"))
    (tmp_path / "double.csv").write_text(
        "region_code,year,indicator,item,ecosystem_type,quantity,unit\n"
        "522326,2024,R-SOIL,,forest,100,万t\n"
        "522326,2024,R-SOIL,sediment,forest,100,万t\n"
        "522326,2024,R-SOIL,nitrogen,shrubland,5,t\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=[
        "valuation", "run", "--region", "522326", "--year", "2024", "--quantities",
        str(tmp_path / "double.csv"), "--prices", "b"])
    assert result.exit_code != 0
    assert "row 2: R-SOIL is given as a whole and by its sub-items (rows 3)" in result.output
    assert "counts it twice" in result.output
    _assert_nothing_stored(app)


def _assert_nothing_stored(app):
    import sqlalchemy as sa

    from valuation.models import QuantitySet, ValuationRun

    with app.extensions["ecovalue.db"].session(write=False) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(QuantitySet)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(ValuationRun)) == 0


def test_the_double_count_over_http_is_a_problem_naming_the_rows(client, tokens, problem, app):
    import io

    data = ("地区代码,年份,指标,项目,生态系统类型,实物量,单位\n"
            "522326,2024,洪水调蓄,,湿地,2,亿m3\n"
            "522326,2024,洪水调蓄,湖泊,湿地,1,亿m3\n").encode("gbk")
    response = client.post("/valuation/quantity-sets/upload?region_code=522326&year=2024",
                           data={"file": (io.BytesIO(data), "double.csv")},
                           headers=tokens.registrar("522326"),
                           content_type="multipart/form-data")
    body = problem(response, 422)
    assert "R-FLOOD is given as a whole and by its sub-items" in json.dumps(
        body, ensure_ascii=False)
    _assert_nothing_stored(app)


def test_a_carbon_price_in_yuan_per_tonne_is_refused_with_a_hint(cli, app, tmp_path):
    cli("valuation", "price-book", "create", "c", "--title", "t")
    (tmp_path / "bad.csv").write_text("parameter,value,unit,price_year\n"
                                      "carbon_price,80,元/t,2024\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["valuation", "price-book", "fill", "c",
                                                str(tmp_path / "bad.csv")])
    assert result.exit_code != 0
    assert "write 元/tC or 元/tCO2" in result.output


def test_a_tc_quantity_with_a_per_tco2_price_is_converted(cli, app, tmp_path, database):
    cli("valuation", "price-book", "create", "d", "--title", "t")
    (tmp_path / "p.csv").write_text("parameter,value,unit,price_year\n"
                                    "carbon_price,60,元/tCO2,2024\n", encoding="utf-8")
    cli("valuation", "price-book", "fill", "d", str(tmp_path / "p.csv"))
    cli("valuation", "price-book", "publish", "d")
    (tmp_path / "q.csv").write_text("region_code,year,indicator,ecosystem_type,quantity,unit\n"
                                    "522326,2024,固碳,forest,12,tC\n", encoding="utf-8")
    out = cli("valuation", "run", "--region", "522326", "--year", "2024", "--quantities",
              str(tmp_path / "q.csv"), "--prices", "d", "--unit", "元")
    # 12 tC = 44 tCO2, x 60 = 2,640 yuan
    assert "2,640.00" in out


def test_a_custom_indicator_from_yaml_and_from_a_spreadsheet(cli, tmp_path):
    (tmp_path / "honey.yaml").write_text(
        "code: P-HONEY\ncategory: provisioning\nname_zh: 林下蜂蜜\nname_en: Under-forest honey\n"
        "quantity_units: [t]\nitems: null\nterms:\n  - name: output\n"
        "    formula: Q * honey_price[item]\nparameters:\n  honey_price[item]:\n"
        "    unit: yuan/t\n    kind: price\n", encoding="utf-8")
    assert "P-HONEY 林下蜂蜜: Q * honey_price[item]" in cli(
        "valuation", "indicator", "add", str(tmp_path / "honey.yaml"))
    (tmp_path / "water.csv").write_text(
        "代码,类别,指标名称,英文名称,实物量单位,公式,参数\n"
        "R-SPRING,regulating,泉水涵养,Spring recharge,m3,Q * spring_cost,spring_cost=yuan/m3\n",
        encoding="utf-8")
    assert "R-SPRING 泉水涵养" in cli("valuation", "indicator", "add",
                                     str(tmp_path / "water.csv"))
    (tmp_path / "x.json").write_text(json.dumps({
        "code": "R-BAD", "category": "regulating", "name_zh": "x", "name_en": "x",
        "quantity_units": ["t"], "terms": [{"name": "v", "formula": "Q * undeclared"}]}))
    assert "R-BAD" not in cli("valuation", "indicators")


def test_sub_items_are_declared_in_the_registry():
    definitions = registry.builtin_indicators()
    assert definitions["R-SOIL"].sub_items == ("sediment", "nitrogen", "phosphorus")
    assert definitions["R-FLOOD"].sub_items == ("lake", "reservoir", "marsh")
    assert definitions["R-CLIM"].sub_items == ("transpiration", "evaporation")
    assert definitions["P-AGR"].sub_items == ()
    assert [t.name for t in definitions["R-SOIL"].terms_for("", "t")] == [
        "sediment", "nitrogen", "phosphorus"]  # soil tonnes without a sub-item, as before
    assert definitions["R-SOIL"].terms_for("nitrogen", "m3") == ()
