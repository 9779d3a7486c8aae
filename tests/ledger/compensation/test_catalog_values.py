"""Monitored values read from the catalog's monitoring records: a vertical transfer on a
county's forest coverage, and a GEP change given as a published number."""

from __future__ import annotations

import pytest

from catalog.services import monitoring, products
from ledger.compensation import errors
from ledger.compensation.services import agreements, assessments, sections, settlements
from tests.ledger.compensation.conftest import ADMIN, APPROVER, PREPARER


def _vertical(pilot, product_section: str) -> dict:
    return {
        "code": "WANGMO-FOREST-2024", "name_zh": "望谟县森林生态效益补偿 (纵向)",
        "kind": "vertical", "amount_fen": 2 * 1_000_000_00, "share_basis": 100,
        "periods": ["2024", "2025"], "schedule": {"type": "equal"},
        "parties": [
            {"key": "prefecture", "party_id": pilot.parties["xingyi"], "region_code": "522300",
             "contribution_share": 100, "allocation_share": 0},
            {"key": "wangmo", "party_id": pilot.parties["wangmo"], "region_code": "522326",
             "contribution_share": 0, "allocation_share": 100}],
        "conditions": [
            {"key": "coverage", "section": product_section,
             "indicator": "forest_coverage_percent", "target": 70,
             "on_failure": {"party": "wangmo", "action": "withhold", "portion_bp": 5_000}},
            {"key": "gep", "section": product_section, "indicator": "gep_change_percent",
             "target": 0, "on_failure": {"party": "wangmo", "action": "withhold",
                                         "portion_bp": 2_000}}]}


def test_forest_coverage_from_the_catalog_and_gep_as_a_number(database, pilot):
    with database.unit_of_work() as s:
        forest = products.create_product(s, ADMIN, {
            "name_zh": "望谟县公益林", "type_code": "forest_carbon_sink", "region_code": "522326",
            "holder_party_id": pilot.parties["wangmo"], "rights_type": "ownership",
            "area_ha": 1000.0})
        for method, value in (("remote_sensing", 68.5), ("field_survey", 71.2)):
            monitoring.create_record(s, ADMIN, forest.id, {
                "period_year": 2024, "metric": "forest_coverage", "value": value, "unit": "%",
                "method": method, "source": "2024 forest survey"})
        sections.create_section(s, ADMIN, {"code": "WANGMO-FOREST", "name_zh": "望谟县域",
                                           "region_code": "522326",
                                           "catalog_product_id": forest.id})
        agreements.create_agreement(s, ADMIN, _vertical(pilot, "WANGMO-FOREST"))
        agreements.put_in_force(s, ADMIN, "WANGMO-FOREST-2024", 1)
    with database.unit_of_work() as s:
        read = assessments.read_catalog(s, ADMIN, "WANGMO-FOREST", "2024")
        assert (read.value, read.origin) == (71.2, "catalog")  # field survey before remote
        assert read.source.startswith("catalog monitoring record")
        assessments.record_values(s, ADMIN, [{
            "section": "WANGMO-FOREST", "period": "2024", "indicator": "gep_change_percent",
            "value": -1.5, "source": "published valuation run 7 (2024 vs 2023)"}])
    with database.unit_of_work() as s:
        settlement = settlements.prepare(s, PREPARER, "WANGMO-FOREST-2024", "2024")[0]
        settlements.approve(s, APPROVER, settlement.id)
        met = {e["condition"]: e["met"] for e in settlement.statement["evaluations"]}
        paid = [(p.payer_key, p.payee_key, p.amount_fen)
                for p in settlements.payments(s, settlement.id)]
    assert met == {"coverage": True, "gep": False}
    assert paid == [("prefecture", "wangmo", 800_000_00)]  # 20 % withheld for the GEP fall
    with pytest.raises(errors.InvalidAssessment), database.unit_of_work() as s:
        assessments.read_catalog(s, ADMIN, "WANGMO-FOREST", "2025")  # no record: not zero
    with pytest.raises(errors.InvalidAssessment), database.unit_of_work() as s:
        assessments.read_catalog(s, ADMIN, "QINGSHUIPU", "2024")  # names no product


def test_from_catalog_over_http(client, tokens, pilot, problem):
    problem(client.post("/compensation/assessments/from-catalog", headers=tokens.finance,
                        json={"section": "QINGSHUIPU", "period": "2024"}), 422,
            "compensation-invalid-assessment")
    problem(client.post("/compensation/assessments/from-catalog", headers=tokens.finance,
                        json={"section": "NOWHERE", "period": "2024"}), 404)
