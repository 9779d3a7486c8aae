"""Conditions on a GEP change read from published valuation runs (the composition root hands
compensation valuation's reader; compensation never imports valuation).

Hand-worked numbers (Wangmo, constant prices of 2018, yuan): GEP 2018 = 1,000,000,000;
2019 = 1,025,000,000; 2020 = 1,030,000,000. Year on year, 2019 changed by
(1,025,000,000 - 1,000,000,000) / 1,000,000,000 x 100 = 2.5 % and 2020 by
(1,030,000,000 - 1,025,000,000) / 1,025,000,000 x 100 = 0.487804878... %; 2020 against 2018
changed by 3 %. The condition asks for at least 2 %.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from ledger import core as ledger
from ledger.compensation import clearing, errors
from ledger.compensation.models import CompensationAgreement, CompensationSettlement
from ledger.compensation.services import agreements, gep, settlements
from tests.conftest import load_demo
from tests.ledger.compensation.conftest import ADMIN, PREPARER, YUAN, in_force

M = 1_000_000 * YUAN
PUBLISHED = dt.datetime(2021, 3, 1, tzinfo=dt.UTC)


def _run(run_id, year, gep_yuan, *, status="published", base_year=2018, published=PUBLISHED):
    return {"region": "522326", "year": year, "run_id": run_id, "status": status,
            "base_year": base_year, "gep_constant_yuan": gep_yuan,
            "gep_current_yuan": gep_yuan * 1.1,
            "published_at": published if status == "published" else None}


RUNS = [_run(11, 2018, 1_000_000_000.0), _run(12, 2019, 1_025_000_000.0),
        _run(13, 2019, 500_000_000.0, status="finished"),  # not published: never read
        _run(14, 2020, 1_030_000_000.0)]


@pytest.fixture()
def runs(monkeypatch):
    """A stand-in for valuation's reader over `RUNS` (the test changes the list)."""
    rows = list(RUNS)

    def reader(session, *, region_code, year):
        return [r for r in rows if r["region"] == region_code and r["year"] == year]

    monkeypatch.setitem(gep.READERS, gep.NAME, reader)
    return rows


def _gep_terms(pilot, **gep_spec):
    return {"conditions": [{
        "key": "gep_wangmo", "name_zh": "望谟县GEP增长不低于2%", "indicator": "gep_change_percent",
        "target": 2, "gep": {"region_code": "522326", **gep_spec},
        "on_failure": {"party": "wangmo", "action": "redirect", "to": [{"party": "xingyi"}]}}]}


def _settle(database, code, period):
    with database.unit_of_work() as s:
        settlement, _ = settlements.prepare(s, PREPARER, code, period)
        return settlements.view(s, settlement)


def test_the_change_in_percent_by_hand():
    assert clearing.gep_change_percent(1_000_000_000.0, 1_025_000_000.0) == pytest.approx(2.5)
    assert clearing.gep_change_percent(1_025_000_000.0, 1_030_000_000.0) == \
        pytest.approx(0.4878048780487805)
    assert clearing.gep_change_percent(1_000_000_000.0, 970_000_000.0) == pytest.approx(-3.0)
    for base in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            clearing.gep_change_percent(base, 1.0)


def test_a_condition_met_and_failed_by_published_runs(database, pilot, runs):
    code = in_force(database, pilot, **_gep_terms(pilot))
    met = _settle(database, code, "2019")  # 2.5 % >= 2 %
    [evaluation] = met["statement"]["evaluations"]
    assert evaluation["met"] and evaluation["value"] == pytest.approx(2.5)
    assert evaluation["assessment_id"] is None
    assert {k: evaluation["valuation"][k] for k in ("base_run_id", "run_id", "base_year",
                                                    "year", "price_base_year")} == \
        {"base_run_id": 11, "run_id": 12, "base_year": 2018, "year": 2019,
         "price_base_year": 2018}
    assert [(p["payer_key"], p["payee_key"], p["amount_fen"]) for p in met["payments"]] == \
        [("xingyi", "wangmo", 20 * M), ("ceheng", "wangmo", 20 * M)]
    failed = _settle(database, code, "2020")  # 0.49 % < 2 %: Wangmo's 60 M go to Xingyi
    [evaluation] = failed["statement"]["evaluations"]
    assert not evaluation["met"] and evaluation["value"] == pytest.approx(0.4878048780487805)
    assert (evaluation["valuation"]["base_run_id"], evaluation["valuation"]["run_id"]) == (12, 14)
    assert failed["statement"]["adjustments"] == [
        {"condition": "gep_wangmo", "action": "redirect", "source": "wangmo", "party": "xingyi",
         "amount_fen": 60 * M}]
    assert [(p["payer_key"], p["payee_key"], p["amount_fen"]) for p in failed["payments"]] == \
        [("wangmo", "xingyi", 20 * M), ("ceheng", "xingyi", 20 * M)]
    with database.unit_of_work() as s:
        tables = settlements.statement_tables(
            s, s.get(CompensationSettlement, failed["id"]))
    assert tables["条件 Conditions"][1][-1] == \
        "GEP 核算 valuation runs 12 (2019) -> 14 (2020)"


def test_a_fixed_base_year(database, pilot, runs):
    code = in_force(database, pilot, **_gep_terms(pilot, base_year=2018),
                    periods=["2019", "2020"], amount_fen=2 * 200 * M)
    view = _settle(database, code, "2020")  # 3 % against 2018
    [evaluation] = view["statement"]["evaluations"]
    assert evaluation["met"] and evaluation["value"] == pytest.approx(3.0)
    assert (evaluation["valuation"]["base_run_id"], evaluation["valuation"]["run_id"]) == (11, 14)


def test_the_run_published_last_counts(database, pilot, runs):
    runs.append(_run(15, 2019, 1_010_000_000.0, published=PUBLISHED + dt.timedelta(days=1)))
    code = in_force(database, pilot, **_gep_terms(pilot))
    [evaluation] = _settle(database, code, "2019")["statement"]["evaluations"]
    assert evaluation["valuation"]["run_id"] == 15 and not evaluation["met"]  # 1 % < 2 %
    assert evaluation["value"] == pytest.approx(1.0)


@pytest.mark.parametrize(("change", "detail"), [
    (lambda rows: rows.remove(RUNS[1]), "valuation run(s) 13 of region 522326 for 2019 are "
                                        "not published"),
    (lambda rows: rows.clear(), "no valuation run of region 522326 for 2018"),
    (lambda rows: rows.__setitem__(1, _run(12, 2019, 1.0e9, base_year=2019)),
     "constant prices of different years (2018 and 2019)"),
    (lambda rows: rows.__setitem__(0, _run(11, 2018, 0.0)), "gives no positive GEP for 2018"),
])
def test_a_missing_unpublished_or_incomparable_run_refuses_and_writes_nothing(
        database, pilot, runs, change, detail):
    code = in_force(database, pilot, **_gep_terms(pilot))
    change(runs)
    with pytest.raises(errors.GepRunUnavailable, match=re.escape(detail)) as refused, \
            database.unit_of_work() as s:
        settlements.prepare(s, PREPARER, code, "2019")
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "conditions.gep_wangmo.gep"
    with database.unit_of_work() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CompensationSettlement)) == 0
        assert s.scalars(ledger.list_transactions(s, ADMIN)).all() == []


def test_no_valuation_reader_refuses(database, pilot, monkeypatch):
    monkeypatch.delitem(gep.READERS, gep.NAME, raising=False)
    code = in_force(database, pilot, **_gep_terms(pilot))
    with pytest.raises(errors.GepRunUnavailable, match="reads no valuation runs"), \
            database.unit_of_work() as s:
        settlements.prepare(s, PREPARER, code, "2019")


@pytest.mark.parametrize(("condition", "field", "message"), [
    ({"section": "QINGSHUIPU"}, "conditions.0.section", "leave section out"),
    ({"indicator": "forest_coverage_percent"}, "conditions.0.indicator",
     "a condition on gep is a gep_change_percent"),
    ({"gep": {"region_code": "999999"}}, "conditions.0.gep.region_code", "unknown region"),
    ({"gep": {"region_code": "522326", "base_year": 2018}}, "conditions.0.gep.base_year",
     "2018 is not before the year of period 2018"),
    ({"gep": None}, "conditions.0.section", "required: a registered section, or gep"),
])
def test_bad_gep_conditions_are_refused_and_nothing_saved(database, pilot, condition, field,
                                                          message):
    terms = _gep_terms(pilot)
    terms["conditions"][0].update(condition)
    if terms["conditions"][0]["gep"] is None:
        del terms["conditions"][0]["gep"]
    with pytest.raises(errors.InvalidTerms) as refused, database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, pilot.terms(**terms))
    assert any(e["field"] == field and message in e["message"]
               for e in refused.value.errors), refused.value.errors
    with database.unit_of_work() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CompensationAgreement)) == 0


def test_over_http_bad_input_is_problem_json(client, tokens, pilot, runs, problem):
    terms = pilot.terms(**_gep_terms(pilot))
    bad = {**terms, "conditions": [{**terms["conditions"][0],
                                    "gep": {"region_code": "522326", "base_year": "x"}}]}
    problem(client.post("/compensation/agreements", json=bad, headers=tokens.finance), 422)
    extra = {**terms, "conditions": [{**terms["conditions"][0],
                                      "gep": {"region_code": "522326", "run": 1}}]}
    problem(client.post("/compensation/agreements", json=extra, headers=tokens.finance), 422)
    assert client.post("/compensation/agreements", json=terms,
                       headers=tokens.finance).status_code == 201
    assert client.post("/compensation/agreements/CHISHUI-2018/versions/1/activate",
                       headers=tokens.admin).status_code == 200
    runs.clear()
    body = problem(client.post("/compensation/agreements/CHISHUI-2018/settlements",
                               json={"period": "2019"}, headers=tokens.finance), 422,
                   "compensation-gep-run-unavailable")
    assert "no valuation run of region 522326 for 2018" in body["detail"]
    assert client.get("/compensation/settlements", headers=tokens.finance).get_json()[
        "items"] == []


def test_the_composition_root_hands_over_valuations_reader(app, database):
    """On the demo's published Wangmo runs (2023 and 2024, constant prices of 2024), through
    the reader `ecovalue.app` provides (valuation.services.runs.gep_totals), with the demo
    agreement's parties."""
    import copy

    from valuation.models import ValuationRun

    load_demo(app)
    with database.unit_of_work() as s:
        demo = {r.year: r for r in s.scalars(sa.select(ValuationRun).where(
            ValuationRun.region_code == "522326", ValuationRun.status == "published"))}
        expected = (demo[2024].gep_constant - demo[2023].gep_constant) / \
            demo[2023].gep_constant * 100
        ids = (demo[2023].id, demo[2024].id)
        terms = copy.deepcopy(agreements.in_force(s, ADMIN, "DEMO-NANPAN-2024").terms)
        first, second = (p["key"] for p in terms["parties"][:2])
        terms.update(code="GEP-DEMO", periods=["2024"], conditions=[{
            "key": "gep", "indicator": "gep_change_percent", "target": 0,
            "gep": {"region_code": "522326", "base_year": 2023},
            "on_failure": {"party": first, "action": "redirect", "to": [{"party": second}]}}])
        agreement = agreements.create_agreement(s, ADMIN, terms)
        agreements.put_in_force(s, ADMIN, agreement.code, agreement.version)
    [evaluation] = _settle(database, "GEP-DEMO", "2024")["statement"]["evaluations"]
    assert evaluation["value"] == pytest.approx(expected)
    assert (evaluation["valuation"]["base_run_id"], evaluation["valuation"]["run_id"]) == ids
