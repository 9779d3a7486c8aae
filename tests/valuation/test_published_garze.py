"""A published prefecture GEP account reproduced row by row through the CLI and spreadsheets.

Paper: 白玛卓嘎, 肖燚, 欧阳志云, 王莉雁. 甘孜藏族自治州生态系统生产总值核算研究. 生态学报,
2017, 37(19): 6302-6312. doi:10.5846/stxb201607011362 (Pema Dolkar, Xiao Yi, Ouyang Zhiyun,
Wang Liyan: Gross ecosystem product accounting for the Garze Tibetan Autonomous Prefecture),
Table 3 "2010年甘孜州生态系统服务功能量与价值量" (physical quantity, unit price and value of
every indicator and sub-item) and sections 3.1-3.3, read in the ChinaXiv copy 201711.00120.

Every number the test feeds in is in `valuation/examples/garze-2010/` (quantities.csv and
prices.csv in GBK, as a bureau's spreadsheets; pest-control.yaml, a custom indicator), each
with its table row; the published values are in published.csv and totals.csv. The commands are
those of the README's walkthrough (`ecovalue valuation example garze-2010 ...`); no Python
touches the account.

Published rounding: the paper prints its quantities rounded (321.49 亿m3, 0.31 亿t CO2 ...)
and computed its values (to 0.0001 亿元) from unrounded ones; its unit prices are the stated
prices (2.6 元/m3, 7.06 元/m3, 380 元/t ...). So a reproduced row agrees with the published
value within half a unit of the last printed digit of its quantity times its price, plus half
of the 0.0001 亿元 the value is printed to; an indicator or a total within the sum of its rows'
bounds plus the 0.005 亿元 of its printed rounding. Rows whose quantities are printed in full
(t of SO2, NOx, dust, COD, NH3-N; the output values) therefore agree to 0.0001 亿元.

Left out: 景观游憩 (C-REC, 70.67 亿元): the paper gives 358.68 万人次 but no travel cost per
visit, so the cultural total and the GEP are compared without it (7545.59 - 70.67).
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from ecovalue import units
from valuation import registry

EXAMPLE = Path(__file__).resolve().parents[2] / "valuation" / "examples" / "garze-2010"
YI = 1e8
GARZE = "513300"
ROW = re.compile(r"^([PRC]-[A-Z0-9]+)\s+(\S+)\s+(\d+)\s+(\S+)\s+([\d,.]+)\s+(\S+)\s+([\d,.]+|-)"
                 r"\s+([\d,.-]+)\s+([\d,.-]+)$")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _half_unit(text: str) -> Decimal:
    """Half a unit of the last printed digit of a number as written ('6.00' -> 0.005)."""
    exponent = Decimal(text.strip()).as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(5) * Decimal(10) ** (exponent - 1)


@pytest.fixture()
def garze(cli, tmp_path):
    """The README's commands: national regions, the example's files, the custom indicator,
    the paper's price book, the run; returns (run id, detail rows, folder)."""
    folder = tmp_path / "garze"

    def ok(*args: str) -> str:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return result.output

    ok("catalog", "regions", "load")
    ok("valuation", "example", "garze-2010", "--output", str(folder))
    ok("valuation", "indicator", "add", str(folder / "pest-control.yaml"))
    ok("valuation", "price-book", "create", "garze-2010", "--title",
       "甘孜州 2010 (白玛卓嘎等 2017 表3)")
    ok("valuation", "price-book", "fill", "garze-2010", str(folder / "prices.csv"))
    ok("valuation", "price-book", "publish", "garze-2010")
    run = ok("valuation", "run", "--region", GARZE, "--year", "2010", "--quantities",
             str(folder / "quantities.csv"), "--prices", "garze-2010", "--enable", "R-O2",
             "--allow-double-count", "R-CARB+R-O2", "--output-value-basis", "net",
             "--unit", "亿元")
    run_id = int(re.search(r"^run (\d+):", run, re.M).group(1))
    detail = ok("valuation", "detail", str(run_id))
    rows = {}
    for line in detail.splitlines():
        if match := ROW.match(line):
            code, item, region, eco, quantity, unit, price, current, constant = match.groups()
            rows[(code, "" if item == "-" else item)] = {
                "region": region, "ecosystem_type": eco, "quantity": _number(quantity),
                "unit": unit, "unit_price": None if price == "-" else _number(price),
                "value": _number(current), "constant": _number(constant)}
    return run_id, rows, folder, run


def _quantities(folder: Path) -> dict[tuple[str, str], tuple[str, str]]:
    text = (folder / "quantities.csv").read_bytes().decode("gbk")
    aliases = registry.SUB_ITEM_ALIASES
    return {(r["指标"], aliases.get(r["项目"], r["项目"])): (r["实物量"], r["单位"])
            for r in csv.DictReader(io.StringIO(text))}


def _bound(row: dict, quantity: tuple[str, str]) -> float:
    """The published rounding of a row, in yuan (see the module docstring)."""
    text, unit = quantity
    if row["unit"] == "yuan":  # an output value: the paper's own value, printed to 0.0001 亿元
        return 0.00005 * YI
    half = float(_half_unit(text)) * float(units.conversion_factor(unit, row["unit"]))
    return half * row["unit_price"] + 0.00005 * YI


def test_the_spreadsheets_are_what_a_bureau_holds(garze):
    _run_id, _rows, folder, _output = garze
    for name in ("quantities.csv", "prices.csv"):
        raw = (folder / name).read_bytes()
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # GBK, as the bureau's Excel saves it
        assert "白玛卓嘎" in raw.decode("gbk") or "表3" in raw.decode("gbk")
    # Chinese row names of the paper, no codes of ecosystems in disguise
    text = (folder / "quantities.csv").read_bytes().decode("gbk")
    for name in ("减少泥沙淤积", "减少氮面源污染", "湖泊", "水库", "沼泽", "植被蒸腾", "水面蒸发",
                 "生活", "工业", "农业", "氮氧化物", "工业粉尘", "氨氮"):
        assert f",{name}," in text


def test_every_row_of_table_3_within_its_published_rounding(garze):
    _run_id, rows, folder, _output = garze
    quantities = _quantities(folder)
    published = list(csv.DictReader(io.StringIO(
        (folder / "published.csv").read_text(encoding="utf-8"))))
    assert len(published) == 27 and set(rows) == {(p["indicator"], p["item"])
                                                  for p in published}
    deviations = {}
    for paper in published:
        key = (paper["indicator"], paper["item"])
        row = rows[key]
        value = float(paper["value_4dp_yi_yuan"]) * YI
        bound = _bound(row, quantities[key])
        assert abs(row["value"] - value) <= bound, (key, row["value"] / YI, value / YI,
                                                    bound / YI)
        assert row["constant"] == row["value"]  # prices of 2010, accounted in 2010
        if row["unit"] != "yuan":  # value = quantity x the unit price (printed to 0.0001)
            assert abs(row["value"] - row["quantity"] * row["unit_price"]) <= (
                row["quantity"] * 0.00005 + 0.01), key
        deviations[key] = abs(row["value"] - value) / YI
    # rows whose inputs the paper prints in full agree to its 0.0001 亿元
    for key in [("R-AIR", "SO2"), ("R-AIR", "NOx"), ("R-AIR", "dust"), ("R-WQ", "COD"),
                ("R-WQ", "NH3-N"), ("P-AGR", ""), ("P-FOR", ""), ("P-LIV", ""),
                ("P-FIS", ""), ("P-ENE", ""), ("P-WAT", "agricultural"), ("R-PEST", "森林")]:
        assert deviations[key] <= 0.00005, key
    # the largest deviation: oxygen, 2.51 亿t printed to 0.01 亿t (x 727 元/t = 3.6 亿元)
    worst = max(deviations, key=deviations.__getitem__)
    assert worst == ("R-O2", "") and 2.84 < deviations[worst] < 2.86


def test_indicators_categories_and_gep_within_their_published_rounding(garze):
    _run_id, rows, folder, output = garze
    quantities = _quantities(folder)
    published = list(csv.DictReader(io.StringIO(
        (folder / "published.csv").read_text(encoding="utf-8"))))
    bounds = {(p["indicator"], p["item"]): _bound(rows[(p["indicator"], p["item"])],
                                                  quantities[(p["indicator"], p["item"])])
              for p in published}
    indicators: dict[str, dict] = {}
    for paper in published:
        entry = indicators.setdefault(paper["indicator"], {
            "published": float(paper["indicator_value_2dp_yi_yuan"]) * YI, "value": 0.0,
            "bound": 0.005 * YI})
        entry["value"] += rows[(paper["indicator"], paper["item"])]["value"]
        entry["bound"] += bounds[(paper["indicator"], paper["item"])]
    # 固碳释氧 is one row of the paper (1939.27): R-CARB + R-O2 here
    carbon, oxygen = indicators.pop("R-CARB"), indicators.pop("R-O2")
    indicators["R-CARB+R-O2"] = {"published": carbon["published"],
                                 "value": carbon["value"] + oxygen["value"],
                                 "bound": carbon["bound"] + oxygen["bound"] - 0.005 * YI}
    for code, entry in indicators.items():
        assert abs(entry["value"] - entry["published"]) <= entry["bound"], (
            code, entry["value"] / YI, entry["published"] / YI, entry["bound"] / YI)
    # the run's own indicator table (printed by `run`) carries the sub-item sums
    for code in ("R-SOIL", "R-FLOOD", "R-CLIM", "P-WAT"):
        shown = re.search(rf"^{code}\s.*?([\d,]+\.\d\d)\s+([\d,]+\.\d\d)$", output, re.M)
        assert shown and _number(shown.group(1)) == pytest.approx(
            indicators[code]["value"] / YI, abs=0.005), code
    totals = {r["total"]: float(r["value_2dp_yi_yuan"]) * YI for r in csv.DictReader(
        io.StringIO((folder / "totals.csv").read_text(encoding="utf-8")))}
    categories = {"provisioning": [k for k in bounds if k[0].startswith("P-")],
                  "regulating": [k for k in bounds if k[0].startswith("R-")]}
    for category, keys in categories.items():
        value = sum(rows[k]["value"] for k in keys)
        bound = sum(bounds[k] for k in keys) + 0.005 * YI
        assert abs(value - totals[category]) <= bound, (category, value / YI)
        shown = re.search(rf"^{category}\s+([\d,]+\.\d\d)", output, re.M)
        assert shown and _number(shown.group(1)) == pytest.approx(value / YI, abs=0.005)
    gep = sum(row["value"] for row in rows.values())
    assert abs(gep - (totals["GEP"] - totals["cultural"])) <= sum(bounds.values()) + 0.01 * YI
    assert re.search(r"C-REC: no quantity reported for 513300", output)  # left out, not zero
    assert re.search(rf"^GEP\s+{gep / YI:,.2f}\s", output, re.M)


def test_the_export_has_a_row_per_sub_item_summing_to_its_indicator(garze, cli, tmp_path):
    run_id, rows, _folder, _output = garze
    target = tmp_path / "garze.xlsx"
    result = cli("valuation", "export", str(run_id), "--format", "xlsx", "--unit", "元",
                 "--output", str(target))
    assert result.exit_code == 0, result.output
    sheet = load_workbook(io.BytesIO(target.read_bytes()))["By indicator"]
    records = list(sheet.iter_rows(values_only=True))
    header = list(records[0])
    table = [dict(zip(header, record, strict=True)) for record in records[1:]]
    value = "value_current_元"
    for code, items in (("R-SOIL", {"sediment", "nitrogen", "phosphorus"}),
                        ("R-FLOOD", {"lake", "reservoir", "marsh"}),
                        ("R-CLIM", {"transpiration", "evaporation"}),
                        ("P-WAT", {"domestic", "industrial", "agricultural"})):
        whole = [r for r in table if r["indicator_code"] == code and not r["item"]]
        parts = [r for r in table if r["indicator_code"] == code and r["item"]]
        assert len(whole) == 1 and {r["item"] for r in parts} == items, code
        assert sum(r[value] for r in parts) == pytest.approx(whole[0][value], rel=1e-12)
        for part in parts:
            assert part[value] == pytest.approx(rows[(code, part["item"])]["value"], abs=0.01)


def test_a_comparison_splits_each_sub_item_and_the_items_sum_to_their_indicator(
        garze, cli, tmp_path, database):
    """The same account with 1 亿m3 more marsh storage: the change is the marsh's alone."""
    run_id, _rows, folder, _output = garze
    text = (folder / "quantities.csv").read_bytes().decode("gbk")
    changed = tmp_path / "quantities-more-marsh.csv"
    changed.write_bytes(text.replace(",R-FLOOD,沼泽,湿地,6.00,", ",R-FLOOD,沼泽,湿地,7.00,")
                        .encode("gbk"))
    other = cli("valuation", "run", "--region", GARZE, "--year", "2010", "--quantities",
                str(changed), "--prices", "garze-2010", "--enable", "R-O2",
                "--allow-double-count", "R-CARB+R-O2", "--output-value-basis", "net")
    assert other.exit_code == 0, other.output
    other_id = int(re.search(r"^run (\d+):", other.output, re.M).group(1))
    compared = cli("valuation", "compare", str(run_id), str(other_id), "--unit", "元")
    assert compared.exit_code == 0, compared.output
    lines = {line.split()[0] if not line.startswith("  - ") else line.split()[1]: line
             for line in compared.output.splitlines() if line.strip()}
    assert "706,000,000.00" in lines["R-FLOOD"] and "706,000,000.00" in lines["marsh"]
    assert lines["lake"].split()[2] == "0.00"
    from ecovalue.auth import system_principal
    from valuation.services import runs

    with database.session(write=False) as s:
        result = runs.compare_runs(s, system_principal("t"), run_id, other_id)
    by_item = [r for r in result["by_item"] if r["indicator_code"] == "R-FLOOD"]
    assert {r["item"] for r in by_item} == {"lake", "reservoir", "marsh"}
    flood = next(r for r in result["by_indicator"] if r["indicator_code"] == "R-FLOOD")
    for part in ("value_0", "value_1", "change", "quantity_effect", "price_effect"):
        assert sum(r[part] for r in by_item) == pytest.approx(flood[part], rel=1e-12)
    soil = [r for r in result["by_item"] if r["indicator_code"] == "R-SOIL"]
    assert {r["item"] for r in soil} == {"sediment", "nitrogen", "phosphorus"}
    assert not [r for r in result["by_item"] if r["indicator_code"] == "R-WCON"]  # no items
