"""Agreements, monitored values and settlements through the services, on the database:
the Chishui rules between three regions, payments through the ledger, four eyes, settling
twice, rejection, versions, bad input that writes nothing, verify."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.errors import Forbidden
from ledger import core as ledger
from ledger.compensation import errors
from ledger.compensation.models import (
    CompensationAgreement,
    CompensationAssessment,
    CompensationPayment,
    CompensationSettlement,
)
from ledger.compensation.services import agreements, assessments, sections, settlements
from tests.ledger.compensation.conftest import ADMIN, APPROVER, PREPARER, YUAN, in_force

M = 1_000_000 * YUAN  # a million yuan, in fen


def _water(database, period: str, qingshuipu: str, lianyuxi: str) -> None:
    with database.unit_of_work() as s:
        assessments.record_values(s, ADMIN, [
            {"section": "QINGSHUIPU", "period": period, "indicator": "water_quality_class",
             "value": qingshuipu, "source": "test report"},
            {"section": "LIANYUXI", "period": period, "indicator": "water_quality_class",
             "value": lianyuxi}])


def _balance(database, code: str) -> int:
    with database.unit_of_work() as s:
        return ledger.account_balance(s, ADMIN, code).balance


def _count(database, model) -> int:
    with database.unit_of_work() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_settlement_pays_the_published_amounts_after_approval(database, pilot):
    code = in_force(database, pilot)
    _water(database, "2019", "II", "III")
    with database.unit_of_work() as s:
        settlement, created = settlements.prepare(s, PREPARER, code, "2019")
        view = settlements.view(s, settlement)
    assert created and view["status"] == "prepared" and view["amount_fen"] == 200 * M
    nets = {p["party"]: p["net_fen"] for p in view["statement"]["positions"]}
    assert nets == {"wangmo": 40 * M, "xingyi": -20 * M, "ceheng": -20 * M}
    assert [(p["payer_key"], p["payee_key"], p["amount_fen"], p["status"])
            for p in view["payments"]] == [("xingyi", "wangmo", 20 * M, "pending"),
                                           ("ceheng", "wangmo", 20 * M, "pending")]
    fund = settlements.receive_account_code(code, "wangmo")
    assert fund == "COMP-CHISHUI-2018-WANGMO"
    assert _balance(database, fund) == 0  # reserved, not yet paid
    with database.unit_of_work() as s:
        approved = settlements.view(s, settlements.approve(s, APPROVER, settlement.id))
    assert approved["status"] == "approved" and approved["decided_by"] == APPROVER.label
    assert all(p["status"] == "posted" and p["resolution_tx_id"] for p in approved["payments"])
    assert _balance(database, fund) == 40 * M
    payer = settlements.pay_account_code(pilot.parties["xingyi"])
    assert _balance(database, payer) == -20 * M  # the treasury, outside the ledger
    with database.unit_of_work() as s:
        assert settlements.verify(s, ADMIN) == []
        assert ledger.verify(s, ADMIN) == []


@pytest.mark.parametrize(("qingshuipu", "lianyuxi", "payments"), [
    ("IV", "II", [("wangmo", "xingyi", 10 * M), ("wangmo", "ceheng", 10 * M)]),
    ("I", "劣V", [("xingyi", "wangmo", 40 * M), ("xingyi", "ceheng", 60 * M)]),
])
def test_failure_clearings_pay_as_published(database, pilot, qingshuipu, lianyuxi, payments):
    code = in_force(database, pilot)
    _water(database, "2018", qingshuipu, lianyuxi)
    with database.unit_of_work() as s:
        settlement, _ = settlements.prepare(s, PREPARER, code, "2018")
        settlements.approve(s, APPROVER, settlement.id)
        view = settlements.view(s, settlement)
    assert [(p["payer_key"], p["payee_key"], p["amount_fen"]) for p in view["payments"]] == \
        payments
    assert not view["statement"]["all_met"]


def test_the_preparer_may_not_approve_and_nothing_changes(database, pilot):
    code = in_force(database, pilot)
    _water(database, "2019", "II", "II")
    with database.unit_of_work() as s:
        settlement_id = settlements.prepare(s, PREPARER, code, "2019")[0].id
    with pytest.raises(errors.OwnSettlement) as refused, database.unit_of_work() as s:
        settlements.approve(s, PREPARER, settlement_id)
    assert refused.value.status == 403
    with database.unit_of_work() as s:
        assert s.get(CompensationSettlement, settlement_id).status == "prepared"
    assert _balance(database, "COMP-CHISHUI-2018-WANGMO") == 0


def test_settling_twice_pays_once(database, pilot):
    code = in_force(database, pilot)
    _water(database, "2019", "II", "II")
    with database.unit_of_work() as s:
        first = settlements.prepare(s, PREPARER, code, "2019")[0].id
    with database.unit_of_work() as s:
        again, created = settlements.prepare(s, APPROVER, code, "2019")
    assert again.id == first and not created
    with database.unit_of_work() as s:
        settlements.approve(s, APPROVER, first)
    with pytest.raises(errors.SettlementNotPrepared), database.unit_of_work() as s:
        settlements.approve(s, ADMIN, first)
    with database.unit_of_work() as s:
        assert settlements.prepare(s, PREPARER, code, "2019") [0].id == first
    assert _count(database, CompensationPayment) == 2
    assert _balance(database, "COMP-CHISHUI-2018-WANGMO") == 40 * M


def test_rejection_voids_the_payments_and_frees_the_period(database, pilot):
    code = in_force(database, pilot)
    _water(database, "2020", "II", "II")
    with database.unit_of_work() as s:
        first = settlements.prepare(s, PREPARER, code, "2020")[0].id
    with database.unit_of_work() as s:
        rejected = settlements.view(s, settlements.reject(s, PREPARER, first,
                                                          reason="wrong report"))
    assert rejected["status"] == "rejected"
    assert all(p["status"] == "voided" for p in rejected["payments"])
    with database.unit_of_work() as s:
        pending = ledger.account_balance(s, ADMIN, "COMP-CHISHUI-2018-WANGMO")
    assert pending.balance == 0 and pending.pending_credits == 0
    _water(database, "2020", "IV", "II")  # the corrected report: Qingshuipu failed
    with database.unit_of_work() as s:
        second, created = settlements.prepare(s, PREPARER, code, "2020")
        assert created and second.id != first
        assert [p.payer_key for p in settlements.payments(s, second.id)] == ["wangmo",
                                                                              "wangmo"]
    with pytest.raises(errors.SettlementNotPrepared), database.unit_of_work() as s:
        settlements.approve(s, APPROVER, first)
    with database.unit_of_work() as s:
        assert settlements.verify(s, ADMIN) == []


def test_missing_monitored_values_refuse_the_settlement(database, pilot):
    code = in_force(database, pilot)
    with database.unit_of_work() as s:
        assessments.record_values(s, ADMIN, [{"section": "QINGSHUIPU", "period": "2019",
                                              "indicator": "water_quality_class",
                                              "value": 2}])
    with pytest.raises(errors.MissingAssessments) as refused, database.unit_of_work() as s:
        settlements.prepare(s, PREPARER, code, "2019")
    assert refused.value.errors == [{"field": "conditions.lianyuxi", "message":
                                     "no water_quality_class at section LIANYUXI for 2019"}]
    with pytest.raises(errors.PeriodNotInAgreement), database.unit_of_work() as s:
        settlements.prepare(s, PREPARER, code, "2021")
    assert _count(database, CompensationSettlement) == 0


def test_the_latest_value_counts_and_the_statement_keeps_the_one_it_used(database, pilot):
    code = in_force(database, pilot)
    _water(database, "2019", "IV", "II")
    _water(database, "2019", "II", "II")  # a corrected report
    with database.unit_of_work() as s:
        settlement = settlements.prepare(s, PREPARER, code, "2019")[0]
        used = [e["assessment_id"] for e in settlement.statement["evaluations"]]
        latest = s.scalars(sa.select(CompensationAssessment.id)
                           .order_by(CompensationAssessment.id.desc()).limit(2)).all()
    assert settlement.statement["all_met"] and sorted(used) == sorted(latest)


@pytest.mark.parametrize(("changes", "fields"), [
    ({"conditions": [{"key": "x", "section": "NOWHERE", "indicator": "water_quality_class",
                      "target": "III", "on_failure": {"party": "wangmo",
                                                      "action": "withhold"}}]},
     ["conditions.0.section"]),
    ({"amount_fen": -5}, ["amount_fen", "schedule.amounts_fen"]),
    ({"share_basis": 12}, ["parties.contribution_share", "parties.allocation_share",
                           "conditions.0.on_failure.to"]),
])
def test_bad_terms_are_refused_with_every_problem_and_nothing_written(database, pilot, changes,
                                                                      fields):
    terms = pilot.terms(**changes)
    if "amount_fen" in changes:  # a negative amount, with instalments that cannot match it
        terms["schedule"] = {"type": "instalments", "amounts_fen": [1, 2, 3]}
    with pytest.raises(errors.InvalidTerms) as refused, database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, terms)
    assert [e["field"] for e in refused.value.errors] == fields, refused.value.errors
    assert _count(database, CompensationAgreement) == 0


def test_shares_that_do_not_sum_to_the_whole(database, pilot):
    terms = pilot.terms()
    terms["parties"][0]["allocation_share"] = 4  # 4:4:3 of 10
    with pytest.raises(errors.InvalidTerms) as refused, database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, terms)
    assert refused.value.errors == [{"field": "parties.allocation_share", "message":
                                     "the allocation shares sum to 11, not to the whole "
                                     "(share_basis 10)"}]


def test_a_version_in_force_is_immutable_and_a_new_version_supersedes_it(database, pilot):
    code = in_force(database, pilot)
    with pytest.raises(errors.AgreementInForce), database.unit_of_work() as s:
        agreements.replace_draft(s, ADMIN, code, 1, pilot.terms(name_zh="改"))
    amended = pilot.terms(share_basis=100)
    for party, (c, a) in zip(amended["parties"], [(10, 30), (50, 40), (40, 30)], strict=True):
        party["contribution_share"], party["allocation_share"] = c, a
    amended["conditions"][0]["on_failure"]["to"] = [{"party": "xingyi", "share": 60},
                                                    {"party": "ceheng", "share": 40}]
    with database.unit_of_work() as s:
        draft = agreements.add_version(s, ADMIN, code, amended)
        assert (draft.version, draft.status) == (2, "draft")
    with pytest.raises(errors.DraftExists), database.unit_of_work() as s:
        agreements.add_version(s, ADMIN, code, amended)
    _water(database, "2018", "IV", "II")
    with database.unit_of_work() as s:
        assert agreements.in_force(s, ADMIN, code).version == 1
        agreements.put_in_force(s, ADMIN, code, 2)
    with database.unit_of_work() as s:
        assert [v.status for v in agreements.versions(s, ADMIN, code)] == ["superseded",
                                                                           "in_force"]
        settlement = settlements.prepare(s, PREPARER, code, "2018")[0]
        assert settlement.statement["agreement"]["version"] == 2
        assert [(p.payee_key, p.amount_fen) for p in settlements.payments(s, settlement.id)] \
            == [("xingyi", 16 * M), ("ceheng", 4 * M)]  # 60 M split 60/40 = 36/24 M


def test_verify_names_terms_changed_behind_the_service(database, pilot):
    code = in_force(database, pilot)
    with database.unit_of_work() as s:
        s.execute(sa.update(CompensationAgreement).where(CompensationAgreement.code == code)
                  .values(terms={**pilot.terms(), "amount_fen": 1}))
    with database.unit_of_work() as s:
        assert settlements.verify(s, ADMIN) == [
            "agreement CHISHUI-2018 v1: its terms changed after it entered into force"]


def test_an_annuity_agreement_settles_each_period_s_payment_from_a_named_account(database,
                                                                                 pilot):
    with database.unit_of_work() as s:
        holding = ledger.create_account(s, ADMIN, party_id=pilot.parties["xingyi"], asset="CNY",
                                        kind="holding", code="XINGYI-CNY").code
    terms = pilot.terms(code="ANNUITY-2021", kind="market", amount_fen=100_000 * YUAN,
                        periods=["2021", "2022", "2023"],
                        schedule={"type": "annuity", "rate": "0.05"}, conditions=[])
    terms["parties"] = [
        {"key": "xingyi", "party_id": pilot.parties["xingyi"], "contribution_share": 10,
         "allocation_share": 0, "pay_from": holding},
        {"key": "wangmo", "party_id": pilot.parties["wangmo"], "contribution_share": 0,
         "allocation_share": 10}]
    with database.unit_of_work() as s:
        agreement = agreements.create_agreement(s, ADMIN, terms)
        assert [r["payment_fen"] for r in agreements.view(agreement)["schedule"]] == \
            [3_672_086, 3_672_086, 3_672_085]
        agreements.put_in_force(s, ADMIN, "ANNUITY-2021", 1)
    with pytest.raises(ledger.InsufficientBalance), database.unit_of_work() as s:
        settlements.prepare(s, PREPARER, "ANNUITY-2021", "2022")  # the holding is empty
    assert _count(database, CompensationSettlement) == 0
    with database.unit_of_work() as s:
        bank = ledger.create_account(s, ADMIN, party_id=pilot.parties["xingyi"], asset="CNY",
                                     kind="external", code="XINGYI-BANK").code
        ledger.post(s, ADMIN, ledger.TransactionSpec(type="deposit", postings=[
            ledger.PostingSpec(bank, "CNY", "debit", 5_000_000),
            ledger.PostingSpec(holding, "CNY", "credit", 5_000_000)]))
    with database.unit_of_work() as s:
        settlement = settlements.prepare(s, PREPARER, "ANNUITY-2021", "2022")[0]
        settlements.approve(s, APPROVER, settlement.id)
    assert _balance(database, holding) == 5_000_000 - 3_672_086
    assert _balance(database, "COMP-ANNUITY-2021-WANGMO") == 3_672_086


def test_a_named_account_must_be_the_party_s_cny_account(database, pilot):
    terms = pilot.terms()
    terms["parties"][1]["pay_from"] = "NO-SUCH-ACCOUNT"
    with pytest.raises(errors.InvalidTerms) as refused, database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, terms)
    assert refused.value.errors[0]["field"] == "parties.1.pay_from"


def test_only_finance_and_admin_prepare_and_approve(database, pilot):
    from ecovalue.auth import Principal, Role
    trader = Principal(role=Role.TRADER, label="token:99:plant", token_id=99,
                       party_id=pilot.parties["xingyi"])
    code = in_force(database, pilot)
    with pytest.raises(Forbidden), database.unit_of_work() as s:
        settlements.prepare(s, trader, code, "2019")
    with pytest.raises(Forbidden), database.unit_of_work() as s:
        sections.create_section(s, trader, {"code": "X1", "name_zh": "x",
                                            "region_code": "522326"})
