"""The pilot's services: filing and verifying reports (four eyes), obligations from verified
emissions, settlement by retirement and fee (eligibility, another plant's obligation, over-
settlement, all or nothing), compliance and the fund's inflows."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from ecovalue.auth import Principal, Role
from ecovalue.errors import Forbidden, ValidationFailed
from ledger import core
from ledger.carbon.models import CarbonRetirement
from ledger.pilot import errors
from ledger.pilot.models import PilotEmissionReport, PilotObligation, PilotSettlement
from ledger.pilot.services import compliance, obligations, reports, rules
from tests.ledger.pilot.conftest import ADMIN, FUND, NOW, PLANT_CNY, PLANT_MONEY_FEN, RULE_2025

COAL_120K = [{"fuel": "raw_coal", "consumption": "120000"}]  # 280,967 tCO2 -> 1,405 t owed


def file_and_verify(database, pilot, lines=COAL_120K, year=2025) -> int:
    """A verified report of the plant; returns its obligation's id."""
    with database.unit_of_work() as s:
        report = reports.file_report(s, pilot.plant, plant_party_id=None, year=year,
                                     method="combustion", lines=lines, now=NOW)
        reports.verify_report(s, pilot.verifier, report.id, now=NOW)
        return s.scalar(sa.select(PilotObligation.id).where(
            PilotObligation.report_id == report.id))


def count(database, model) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def balance(database, code: str) -> int:
    with database.session(write=False) as s:
        return core.account_balance(s, ADMIN, code).balance


def test_verified_report_fixes_the_obligation(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.session() as s:
        obligation = s.get_one(PilotObligation, obligation_id)
        assert (obligation.emissions_tco2, obligation.share_bp, obligation.obligation_t) == \
            (280_967, 50, 1_405)
        assert obligation.code == f"PO-2025-{pilot.world.plant}"
        view = obligations.obligation_view(s, obligation, today=NOW.date())
        assert (view["status"], view["shortfall_t"], view["shortfall_fen"]) == \
            ("open", 1_405, 1_405 * 5_000)
        report = s.get_one(PilotEmissionReport, obligation.report_id)
        assert report.factor_table_version == "reference"
        assert report.emissions_exact_tco2 == "280967.140080"


def test_the_filer_may_not_verify_and_a_plant_may_not_verify(database, pilot):
    both = Principal(role=Role.ADMIN, label="token:both", token_id=7)
    with database.unit_of_work() as s:
        report = reports.file_report(s, both, plant_party_id=pilot.world.plant, year=2025,
                                     method="combustion", lines=COAL_120K, now=NOW)
        report_id = report.id
    with database.session() as s, pytest.raises(errors.FourEyesViolation):
        reports.verify_report(s, both, report_id, now=NOW)
    with database.session() as s, pytest.raises(Forbidden):
        reports.verify_report(s, pilot.plant, report_id, now=NOW)
    assert count(database, PilotObligation) == 0


def test_a_plant_files_only_for_itself_and_once_a_year(database, pilot):
    with database.session() as s, pytest.raises(Forbidden):
        reports.file_report(s, pilot.plant, plant_party_id=pilot.world.buyer, year=2025,
                            method="combustion", lines=COAL_120K, now=NOW)
    file_and_verify(database, pilot)
    with database.session() as s, pytest.raises(errors.ReportExists):
        reports.file_report(s, pilot.plant, plant_party_id=None, year=2025,
                            method="combustion", lines=COAL_120K, now=NOW)
    with database.session() as s, pytest.raises(errors.InvalidReport) as refused:
        reports.file_report(s, pilot.plant, plant_party_id=None, year=2026,
                            method="combustion", lines=COAL_120K, now=NOW)
    assert "a past year" in refused.value.errors[0]["message"]


def test_unknown_fuel_or_negative_consumption_stores_nothing(database, pilot):
    with database.session() as s, pytest.raises(errors.InvalidReport) as refused:
        reports.file_report(s, pilot.plant, plant_party_id=None, year=2025,
                            method="combustion", now=NOW, lines=[
                                {"fuel": "raw_coal", "consumption": "100"},
                                {"fuel": "peat", "consumption": "5"},
                                {"fuel": "raw_coal", "consumption": "-1"}])
    fields = {e["field"] for e in refused.value.errors}
    assert fields == {"lines.1.fuel", "lines.2.consumption"}
    assert count(database, PilotEmissionReport) == 0


def test_rejection_then_a_corrected_report(database, pilot):
    with database.unit_of_work() as s:
        first = reports.file_report(s, pilot.plant, plant_party_id=None, year=2025,
                                    method="combustion", lines=COAL_120K, now=NOW).id
        with pytest.raises(errors.InvalidReport):
            reports.reject_report(s, pilot.verifier, first, note=" ", now=NOW)
        reports.reject_report(s, pilot.verifier, first, note="meter readings missing", now=NOW)
        with pytest.raises(errors.ReportNotFiled):
            reports.verify_report(s, pilot.verifier, first, now=NOW)
        second = reports.file_report(s, pilot.plant, plant_party_id=None, year=2025,
                                     method="generation", now=NOW,
                                     lines=[{"generation_mwh": "100000",
                                             "factor": "fossil_power"}])
        reports.verify_report(s, pilot.verifier, second.id, now=NOW)
        # 100,000 MWh x 0.8273 = 82,730 tCO2; x 50 bp = 413.65 -> 414 t
        owed = s.scalar(sa.select(PilotObligation).where(PilotObligation.report_id == second.id))
        assert owed is not None and owed.obligation_t == 414


def test_settle_by_retiring_and_paying(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.unit_of_work() as s:
        settled = obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.plant_credits, quantity_t=400)],
            fee_t=600, now=NOW)
        view = obligations.obligation_view(s, settled, today=NOW.date())
    assert (view["retired_t"], view["fee_t"], view["paid_fen"], view["shortfall_t"]) == \
        (400, 600, 3_000_000, 405)
    assert view["status"] == "partially_settled"
    certificate = view["settlements"][0]["certificate_number"]
    with database.session() as s:
        retirement = s.scalar(sa.select(CarbonRetirement).where(
            CarbonRetirement.certificate_number == certificate))
        assert retirement is not None
        assert retirement.reason == f"pilot obligation PO-2025-{pilot.world.plant}"
        assert (retirement.purpose, retirement.compliance_year, retirement.quantity_t) == \
            ("thermal_power_pilot", 2025, 400)
    assert balance(database, FUND) == 3_000_000
    assert balance(database, PLANT_CNY) == PLANT_MONEY_FEN - 3_000_000
    # the rest as a fee: settled, on time
    with database.unit_of_work() as s:
        done = obligations.settle(s, pilot.plant, obligation_id, fee_t=405, now=NOW)
        view = obligations.obligation_view(s, done, today=NOW.date())
    assert (view["status"], view["shortfall_t"], view["paid_fen"], view["late"]) == \
        ("settled", 0, 5_025_000, False)
    with database.session() as s:
        assert core.verify(s, ADMIN) == []


def test_over_settling_is_refused_whole(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.session() as s, pytest.raises(errors.OverSettlement):
        obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.plant_credits, quantity_t=400)],
            fee_t=1_006, now=NOW)
    assert count(database, CarbonRetirement) == 0
    assert count(database, PilotSettlement) == 0
    assert balance(database, FUND) == 0


def test_another_plants_obligation_or_credits(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.session() as s, pytest.raises(errors.NotYourObligation):
        obligations.settle(s, pilot.other_plant, obligation_id, fee_t=1, now=NOW)
    with database.session() as s, pytest.raises(errors.NotYourObligation) as refused:
        obligations.settle(s, ADMIN, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.collective_credits, quantity_t=1)],
            now=NOW)
    assert "not the plant's account" in refused.value.errors[0]["message"]
    with database.session() as s, pytest.raises(errors.NotYourObligation):
        obligations.settle(s, ADMIN, obligation_id, fee_t=1, from_account="TEST-BUYER-CNY",
                           now=NOW)
    assert count(database, PilotSettlement) == 0


def test_ineligible_credits_name_every_reason(database, pilot):
    strict = {**RULE_2025, "eligible_region_code": "522301",
              "eligible_methodologies": ["forest_management"], "vintage_from": 2024,
              "vintage_to": 2024, "report_deadline": RULE_2025["report_deadline"].replace(
                  year=2025), "settlement_deadline": RULE_2025["settlement_deadline"].replace(
                  year=2025)}
    with database.unit_of_work() as s:
        rules.put_rule(s, ADMIN, 2024, strict, now=NOW)
    obligation_id = file_and_verify(database, pilot, year=2024)
    with database.session() as s, pytest.raises(errors.IneligibleCredits) as refused:
        obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.plant_credits, quantity_t=10)], now=NOW)
    text = " ".join(e["message"] for e in refused.value.errors)
    assert "outside the eligible region 522301" in text
    assert "is afforestation; eligible: forest_management" in text
    assert "vintage 2023, outside 2024-2024" in text
    with database.session() as s, pytest.raises(errors.IneligibleCredits):
        obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account="NO-SUCH-ACCOUNT", quantity_t=10)], now=NOW)
    assert count(database, CarbonRetirement) == 0


def test_a_failing_fee_leaves_the_retirement_undone(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.unit_of_work() as s:  # the plant's money leaves: nothing to pay the fee with
        core.post(s, ADMIN, core.TransactionSpec(type="transfer", postings=[
            core.PostingSpec(PLANT_CNY, "CNY", "debit", PLANT_MONEY_FEN),
            core.PostingSpec("TEST-PLANT-BANK", "CNY", "credit", PLANT_MONEY_FEN)]), now=NOW)
    s = database.session()
    try:
        with pytest.raises(core.InsufficientBalance):
            obligations.settle(s, pilot.plant, obligation_id, retirements=[
                obligations.RetirementPart(account=pilot.plant_credits, quantity_t=100)],
                fee_t=10, now=NOW)
    finally:
        s.rollback()
        s.close()
    assert count(database, CarbonRetirement) == 0
    assert count(database, PilotSettlement) == 0
    assert balance(database, pilot.plant_credits) == 500


def test_a_rule_set_after_verification_opens_the_obligation_and_then_freezes(database, pilot):
    with database.unit_of_work() as s:
        report = reports.file_report(s, pilot.plant, plant_party_id=None, year=2023,
                                     method="combustion", lines=COAL_120K, now=NOW)
        reports.verify_report(s, pilot.verifier, report.id, now=NOW)
        assert s.scalar(sa.select(PilotObligation.id)) is None  # 2023 has no rule
        data = compliance.compliance(s, ADMIN, 2023, now=NOW)
        assert data["plants"][0]["status"] == "no_rule"
        rule = {**RULE_2025, "report_deadline": RULE_2025["report_deadline"].replace(year=2024),
                "settlement_deadline": RULE_2025["settlement_deadline"].replace(year=2024)}
        rules.put_rule(s, ADMIN, 2023, rule, now=NOW)
        owed = s.scalar(sa.select(PilotObligation).where(PilotObligation.year == 2023))
        assert owed is not None and owed.obligation_t == 1_405
        # its deadline (31 December 2024) is past on 20 March 2026
        assert obligations.status_of(owed, NOW.date()) == "overdue"
        with pytest.raises(errors.RuleInUse):
            rules.put_rule(s, ADMIN, 2023, {**rule, "share_bp": 100}, now=NOW)


def test_rule_validation_names_every_field(database, pilot):
    with database.session() as s, pytest.raises(ValidationFailed) as refused:
        rules.put_rule(s, ADMIN, 2026, {
            **RULE_2025, "share_bp": 10_001, "eligible_region_code": "999999",
            "eligible_methodologies": ["magic"], "vintage_from": 2026, "vintage_to": 2020,
            "fund_account_code": PLANT_CNY}, now=NOW)
    fields = {e["field"] for e in refused.value.errors}
    assert fields >= {"share_bp", "eligible_region_code", "eligible_methodologies",
                      "vintage_to", "settlement_deadline", "fund_account_code"}
    with database.session() as s, pytest.raises(Forbidden):
        rules.put_rule(s, pilot.plant, 2026, RULE_2025, now=NOW)


def test_compliance_and_fund_statement(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.unit_of_work() as s:
        obligations.settle(s, pilot.plant, obligation_id, retirements=[
            obligations.RetirementPart(account=pilot.plant_credits, quantity_t=5)],
            fee_t=100, now=NOW)
    finance = Principal(role=Role.FINANCE, label="token:finance", token_id=904)
    with database.session() as s:
        data = compliance.compliance(s, ADMIN, 2025, now=NOW)
        row = next(r for r in data["plants"] if r["plant"]["id"] == pilot.world.plant)
        assert (row["emissions_tco2"], row["obligation_t"], row["retired_t"], row["fee_t"],
                row["paid_fen"], row["shortfall_t"], row["status"]) == \
            (280_967, 1_405, 5, 100, 500_000, 1_300, "partially_settled")
        assert data["totals"]["shortfall_fen"] == 1_300 * 5_000
        own = compliance.compliance(s, pilot.other_plant, 2025, now=NOW)
        assert own["plants"] == []  # another enterprise sees none of the plant's position
        fund = compliance.fund_statement(s, finance, year=2025, now=NOW)
        assert fund["total_fen"] == 500_000
        assert fund["funds"] == [{"account": FUND, "balance_fen": 500_000,
                                  "available_fen": 500_000}]
        assert fund["lines"][0]["plant_party_id"] == pilot.world.plant
        with pytest.raises(Forbidden):
            compliance.fund_statement(s, pilot.plant, now=NOW)
        xlsx = compliance.report_xlsx(s, ADMIN, 2025, now=NOW)
    import io

    import openpyxl
    book = openpyxl.load_workbook(io.BytesIO(xlsx))
    sheet = book["履约 compliance 2025"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "企业ID plant id"
    plant_row = next(r for r in rows if r[0] == pilot.world.plant)
    assert plant_row[4:10] == (280_967, 1_405, 5, 100, 500_000, 1_300)
    assert [r[2] for r in book["结算 settlements"].iter_rows(values_only=True)][1:] == \
        ["retirement", "fee"]


def test_concurrent_settlements_never_over_settle(database, pilot):
    """Two requests each paying the whole open amount: the second one, serialised behind the
    first by the obligation's row lock, finds nothing open."""
    obligation_id = file_and_verify(database, pilot)
    first, second = database.session(), database.session()
    try:
        obligations.settle(first, pilot.plant, obligation_id, fee_t=1_405, now=NOW)
        first.commit()
        with pytest.raises(errors.OverSettlement):
            obligations.settle(second, pilot.plant, obligation_id, fee_t=1_405, now=NOW)
    finally:
        second.rollback()
        first.close()
        second.close()
    assert balance(database, FUND) == 1_405 * 5_000


def test_settlement_view_is_plain_data(database, pilot):
    obligation_id = file_and_verify(database, pilot)
    with database.unit_of_work() as s:
        settled = obligations.settle(s, pilot.plant, obligation_id, fee_t=1, now=NOW)
        part = obligations.settlements_of(s, [settled.id])[0]
        assert obligations.settlement_view(part)["amount_fen"] == 5_000
        assert dataclasses.is_dataclass(obligations.RetirementPart("X", 1))
