"""`ecovalue pilot ...` on the demo data."""

from __future__ import annotations

from tests.conftest import load_demo


def test_pilot_commands_on_the_demo(app, cli, tmp_path):
    load_demo(app)
    listed = cli("pilot", "factors", "list")
    assert listed.exit_code == 0 and "reference" in listed.output
    assert "coal_oxidation_rate" in listed.output
    shown = cli("pilot", "compliance", "2024", "-o", str(tmp_path / "p.xlsx"))
    assert shown.exit_code == 0, shown.output
    assert "owed     1171 t" in shown.output and "shortfall      571 t" in shown.output
    assert (tmp_path / "p.xlsx").read_bytes()[:2] == b"PK"
    fund = cli("pilot", "fund", "--year", "2024")
    assert "25,000.00 yuan" in fund.output
    upload = tmp_path / "factors.csv"
    upload.write_text("factor,year,value,unit,status,source\n"
                      "fossil_power,2024,0.8100,tCO2/MWh,published,DEMO\n", encoding="utf-8")
    stored = cli("pilot", "factors", "upload", str(upload), "--version", "2026-1",
                 "--title", "DEMO 2024 factor")
    assert stored.exit_code == 0 and "1 rows" in stored.output
    again = cli("pilot", "factors", "upload", str(upload), "--version", "2026-1",
                "--title", "DEMO")
    assert again.exit_code == 1 and "exists" in again.output
