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
