"""The console route of a new user: XLSX of county quantities -> run -> XLSX export."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from tests.valuation.conftest import HEADER, WANGMO, xlsx
from valuation.demo import demo_workbook


def test_run_from_an_xlsx_prints_the_table_and_exports_xlsx_with_chart(cli, tmp_path):
    quantities = tmp_path / "wangmo-2024.xlsx"
    quantities.write_bytes(demo_workbook(2024))
    result = cli("valuation", "run", "--region", WANGMO, "--year", "2024", "--quantities",
                 str(quantities), "--gdp", "110 亿元", "--area", "3006 km2", "--population",
                 "32.5万人", "--unit", "亿元")
    assert result.exit_code == 0, result.output
    output = result.output
    assert "quantity set 1: 32 rows from wangmo-2024.xlsx" in output
    assert re.search(r"^R-WCON\s+Water conservation\s+1,340,000,000\.00 m3", output, re.M)
    assert re.search(r"^GEP\s+[\d,]+\.\d\d\s+[\d,]+\.\d\d$", output, re.M)
    assert "unvalued (missing is not zero):" in output
    assert "R-O2 522326 forest: R-O2 is switched off for this run" in output
    assert "GEP/GDP" in output
    run_id = int(re.search(r"^run (\d+):", output, re.M).group(1))
    target = tmp_path / "gep.xlsx"
    chart = tmp_path / "gep.png"
    exported = cli("valuation", "export", str(run_id), "--format", "xlsx", "--output",
                   str(target), "--chart", str(chart))
    assert exported.exit_code == 0, exported.output
    workbook = load_workbook(io.BytesIO(target.read_bytes()))
    assert "Chart" in workbook.sheetnames and len(workbook["Chart"]._images) == 1
    assert chart.read_bytes()[:4] == b"\x89PNG"
    csv_result = cli("valuation", "export", str(run_id), "--format", "csv", "--table",
                     "category", "--output", str(tmp_path / "gep.csv"))
    assert csv_result.exit_code == 0
    assert (tmp_path / "gep.csv").read_text("utf-8-sig").startswith("category,name_zh")
    reproduce = cli("valuation", "reproduce", str(run_id))
    assert reproduce.exit_code == 0 and '"identical": true' in reproduce.output


def test_template_is_an_uploadable_workbook(cli, tmp_path):
    target = tmp_path / "template.xlsx"
    assert cli("valuation", "template", "--output", str(target), "--year", "2023").exit_code == 0
    rows = list(load_workbook(io.BytesIO(target.read_bytes()))["quantities"].iter_rows(
        values_only=True))
    assert list(rows[0]) == HEADER and rows[1][1] == 2023 and len(rows) == 33


def test_bad_file_fails_with_row_and_column_and_stores_nothing(cli, tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(xlsx([HEADER, [WANGMO, 2024, "R-WCON", None, "forest", 1, "万t", None,
                                   None]]))
    result = cli("valuation", "run", "--region", WANGMO, "--year", "2024", "--quantities",
                 str(bad))
    assert result.exit_code == 1
    assert "row=2, column=unit" in result.output
    assert "does not fit R-WCON" in result.output
    assert "run " not in result.output.split("error")[0]


def test_compare_and_asset_value_commands(cli, tmp_path):
    ids = []
    for year in (2023, 2024):
        path = tmp_path / f"q{year}.xlsx"
        path.write_bytes(demo_workbook(year))
        result = cli("valuation", "run", "--region", WANGMO, "--year", str(year),
                     "--quantities", str(path), "--base-year", "2024")
        assert result.exit_code == 0, result.output
        ids.append(re.search(r"^run (\d+):", result.output, re.M).group(1))
    compared = cli("valuation", "compare", *ids, "--chart", str(tmp_path / "change.png"))
    assert compared.exit_code == 0, compared.output
    assert re.search(r"^GEP\s+[\d,.-]+", compared.output, re.M)
    assert (tmp_path / "change.png").read_bytes()[:4] == b"\x89PNG"
    assets = cli("valuation", "asset-value", ids[1], "--rate", "0", "--rate", "0.05")
    assert assets.exit_code == 0 and "never added" in assets.output
