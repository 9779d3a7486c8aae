"""`ecovalue compensation ...`: a terms file, values, a settlement the same operator may not
approve."""

from __future__ import annotations

import json


def test_agreement_from_a_file_settled_and_shown(cli, pilot, tmp_path):
    path = tmp_path / "chishui.json"
    path.write_text(json.dumps(pilot.terms(), ensure_ascii=False), "utf-8")
    created = cli("compensation", "agreement", "create", str(path))
    assert created.exit_code == 0, created.output
    assert "CHISHUI-2018 v1 [draft]" in created.output
    assert "200,000,000.00 yuan" in created.output
    assert cli("compensation", "agreement", "activate", "CHISHUI-2018", "1").exit_code == 0
    for section, value in (("QINGSHUIPU", "IV"), ("LIANYUXI", "II")):
        result = cli("compensation", "assess", section, "2018", "water_quality_class", value)
        assert result.exit_code == 0, result.output
    settled = cli("compensation", "settle", "CHISHUI-2018", "2018")
    assert settled.exit_code == 0, settled.output
    assert "FAILED qingshuipu" in settled.output
    assert "pay wangmo -> xingyi: 10,000,000.00 yuan" in settled.output
    again = cli("compensation", "settle", "CHISHUI-2018", "2018")
    assert "already settled (settling twice pays once)" in again.output
    own = cli("compensation", "settlement", "approve", "1")
    assert own.exit_code == 1 and "another member of the finance bureau" in own.output
    listed = cli("compensation", "agreement", "list")
    assert "CHISHUI-2018" in listed.output and "in_force" in listed.output
    assert cli("compensation", "verify").exit_code == 0


def test_a_bad_terms_file_lists_its_problems(cli, pilot, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(pilot.terms(amount_fen=-100)), "utf-8")
    result = cli("compensation", "agreement", "create", str(path))
    assert result.exit_code == 1
    assert "amount_fen" in result.output and "negative" in result.output
    path.write_text("{", "utf-8")
    assert cli("compensation", "agreement", "create", str(path)).exit_code == 1


def test_a_settlement_exported_as_a_printable_page_and_a_workbook(cli, pilot, tmp_path):
    """Qingshuipu fails in 2018: Wangmo's allocation (3/10 of 200,000,000 = 60,000,000 yuan)
    is split 5:5 to Xingyi and Ceheng (30,000,000 each); Wangmo contributes 1/10
    (20,000,000) and receives nothing, so it pays 10,000,000 to each."""
    import io

    import openpyxl

    path = tmp_path / "chishui.json"
    path.write_text(json.dumps(pilot.terms(), ensure_ascii=False), "utf-8")
    assert cli("compensation", "agreement", "create", str(path)).exit_code == 0
    assert cli("compensation", "agreement", "activate", "CHISHUI-2018", "1").exit_code == 0
    for section, value in (("QINGSHUIPU", "IV"), ("LIANYUXI", "II")):
        assert cli("compensation", "assess", section, "2018", "water_quality_class",
                   value).exit_code == 0
    assert cli("compensation", "settle", "CHISHUI-2018", "2018").exit_code == 0
    page = tmp_path / "settlement.html"
    exported = cli("compensation", "settlement", "export", "1", "-o", str(page))
    assert exported.exit_code == 0, exported.output
    text = page.read_text("utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in text
    assert "生态保护补偿结算单 Compensation settlement statement — CHISHUI-2018 2018" in text
    assert "<h2>清算 Clearing</h2>" in text and "按份额分给指定方 split among named parties" in text
    assert text.count("<td>30000000.00</td>") == 2  # the two halves of Wangmo's allocation
    assert "<td>-20000000.00</td>" in text  # Wangmo's net position
    assert "待审批 prepared, waiting for approval" in text
    workbook = tmp_path / "settlement.xlsx"
    assert cli("compensation", "settlement", "export", "1", "-o", str(workbook)).exit_code == 0
    book = openpyxl.load_workbook(io.BytesIO(workbook.read_bytes()))
    rows = list(book["清算 Clearing"].iter_rows(values_only=True))
    assert [r[2:5] for r in rows[1:]] == [("wangmo", "xingyi", 3_000_000_000),
                                          ("wangmo", "ceheng", 3_000_000_000)]
    missing = cli("compensation", "settlement", "export", "99", "-o", str(tmp_path / "x.html"))
    assert missing.exit_code != 0 and not (tmp_path / "x.html").exists()
