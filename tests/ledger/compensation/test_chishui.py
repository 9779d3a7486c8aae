"""The Chishui River agreement (shared/reference/published_cases.md, case 4) between the real
provinces, Yunnan (530000), Guizhou (520000) and Sichuan (510000), from the catalog's national
region table: the terms document of ledger/compensation/README.md, as written there, settles
2018-2020 with the published numbers, passing and with each failure clearing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from catalog.services import regions
from ledger import core as ledger
from ledger.compensation import errors
from ledger.compensation.services import agreements, assessments, settlements
from tests.ledger.compensation.conftest import ADMIN, APPROVER, PREPARER, YUAN, make_world

M = 1_000_000 * YUAN
README = Path(__file__).resolve().parents[3] / "ledger" / "compensation" / "README.md"


@pytest.fixture()
def provinces(database):
    with database.unit_of_work() as s:
        regions.load_national_regions(s)
    return make_world(database, {"yunnan": ("530000", "云南省人民政府"),
                             "guizhou": ("520000", "贵州省人民政府"),
                             "sichuan": ("510000", "四川省人民政府")})


def _readme_terms(parties: dict[str, int]) -> dict:
    """The JSON block of the README's "An agreement's terms", with the parties' ids."""
    block = re.search(r"```json\n(.*?)```", README.read_text("utf-8"), re.S)
    assert block is not None
    terms = json.loads(block.group(1))
    for party in terms["parties"]:
        party["party_id"] = parties[party["key"]]
    return terms


def test_the_published_settlements_pass_and_both_failure_clearings(database, provinces):
    terms = _readme_terms(provinces.parties)
    with database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, terms)
        agreements.put_in_force(s, ADMIN, "CHISHUI-2018", 1)
        for period, qingshuipu, lianyuxi in (("2018", "IV", "II"), ("2019", "II", "II"),
                                             ("2020", "II", "劣V")):
            assessments.record_values(s, ADMIN, [
                {"section": "QINGSHUIPU", "period": period,
                 "indicator": "water_quality_class", "value": qingshuipu},
                {"section": "LIANYUXI", "period": period, "indicator": "water_quality_class",
                 "value": lianyuxi}])
    paid = {}
    for period in ("2018", "2019", "2020"):
        with database.unit_of_work() as s:
            settlement = settlements.prepare(s, PREPARER, "CHISHUI-2018", period)[0]
            settlements.approve(s, APPROVER, settlement.id)
            paid[period] = [(p.payer_key, p.payee_key, p.amount_fen)
                            for p in settlements.payments(s, settlement.id)]
            nets = {p["party"]: p["net_fen"] for p in settlement.statement["positions"]}
            if period == "2019":
                # published: Yunnan +40 M, Guizhou -20 M, Sichuan -20 M
                assert nets == {"yunnan": 40 * M, "guizhou": -20 * M, "sichuan": -20 * M}
    assert paid == {
        # Qingshuipu fails: Yunnan's allocation is withheld and paid 50/50 to Guizhou, Sichuan
        "2018": [("yunnan", "guizhou", 10 * M), ("yunnan", "sichuan", 10 * M)],
        # every section passes: Guizhou and Sichuan each pay 20 M to Yunnan (the 2019 payments)
        "2019": [("guizhou", "yunnan", 20 * M), ("sichuan", "yunnan", 20 * M)],
        # Lianyuxi fails: Guizhou's allocation is withheld and paid to Sichuan
        "2020": [("guizhou", "yunnan", 40 * M), ("guizhou", "sichuan", 60 * M)],
    }
    with database.unit_of_work() as s:
        funds = {key: ledger.account_balance(
            s, ADMIN, settlements.receive_account_code("CHISHUI-2018", key)).balance
            for key in ("yunnan", "guizhou", "sichuan")}
        assert settlements.verify(s, ADMIN) == [] and ledger.verify(s, ADMIN) == []
    assert funds == {"yunnan": 80 * M, "guizhou": 10 * M, "sichuan": 70 * M}


def test_a_party_must_name_a_region_the_catalog_knows(database, provinces):
    terms = _readme_terms(provinces.parties)
    terms["parties"][0]["region_code"] = "539999"
    with pytest.raises(errors.InvalidTerms) as refused, database.unit_of_work() as s:
        agreements.create_agreement(s, ADMIN, terms)
    assert refused.value.errors == [{"field": "parties.0.region_code",
                                     "message": "no region 539999 in the catalog"}]
