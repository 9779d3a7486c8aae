"""Compensation fixtures: parties, sections and the CNY asset made through the catalog's and
the ledger core's services; agreements written as terms documents, as a user would."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from catalog.services import parties
from ecovalue.auth import system_principal
from ledger import core as ledger
from ledger.compensation.services import agreements, sections

ADMIN = system_principal("compensation-test")
#: the finance bureau: one member prepares, another approves
PREPARER = system_principal("finance-preparer")
APPROVER = system_principal("finance-approver")
YUAN = 100


@dataclasses.dataclass
class World:
    parties: dict[str, int]  # agreement key -> catalog party id
    regions: dict[str, str]  # agreement key -> region code

    def terms(self, **changes: Any) -> dict[str, Any]:
        """A Chishui-style horizontal agreement between the world's three regions: a fund of
        200,000,000 yuan a year 2018-2020, contributions 1:5:4, allocations 3:4:3; if the
        first party's section fails its allocation is split 50/50 between the others, if the
        second's fails its allocation goes to the third."""
        a, b, c = self.parties
        document: dict[str, Any] = {
            "code": "CHISHUI-2018", "name_zh": "赤水河流域横向生态保护补偿协议",
            "name_en": "Chishui River horizontal compensation agreement",
            "kind": "horizontal", "amount_fen": 3 * 200_000_000 * YUAN, "share_basis": 10,
            "periods": ["2018", "2019", "2020"], "schedule": {"type": "equal"},
            "parties": [
                {"key": a, "party_id": self.parties[a], "region_code": self.regions[a],
                 "contribution_share": 1, "allocation_share": 3},
                {"key": b, "party_id": self.parties[b], "region_code": self.regions[b],
                 "contribution_share": 5, "allocation_share": 4},
                {"key": c, "party_id": self.parties[c], "region_code": self.regions[c],
                 "contribution_share": 4, "allocation_share": 3},
            ],
            "conditions": [
                {"key": "qingshuipu", "name_zh": "清水铺断面水质达到III类",
                 "section": "QINGSHUIPU", "indicator": "water_quality_class", "target": "III",
                 "on_failure": {"party": a, "action": "split",
                                "to": [{"party": b, "share": 5}, {"party": c, "share": 5}]}},
                {"key": "lianyuxi", "name_zh": "鲢鱼溪断面水质达到III类",
                 "section": "LIANYUXI", "indicator": "water_quality_class", "target": "III",
                 "on_failure": {"party": b, "action": "redirect", "to": [{"party": c}]}},
            ],
        }
        document.update(copy.deepcopy(changes))
        return document


def make_world(database, regions: dict[str, tuple[str, str]]) -> World:
    """Government parties for `regions` (key -> (code, name)) and the two sections."""
    with database.unit_of_work() as s:
        ledger.create_asset(s, ADMIN, code="CNY", kind="currency", name_zh="人民币",
                            name_en="Chinese yuan (fen)")
        ids = {key: parties.create_party(s, ADMIN, {
            "kind": "government", "name_zh": name, "region_code": code}).id
            for key, (code, name) in regions.items()}
        codes = [code for code, _ in regions.values()]
        sections.create_section(s, ADMIN, {"code": "QINGSHUIPU", "name_zh": "清水铺断面",
                                           "river": "赤水河", "region_code": codes[0]})
        sections.create_section(s, ADMIN, {"code": "LIANYUXI", "name_zh": "鲢鱼溪断面",
                                           "river": "赤水河", "region_code": codes[1]})
    return World(ids, {key: code for key, (code, _) in regions.items()})


@pytest.fixture()
def pilot(database) -> World:
    """The agreement between three pilot counties standing for the provinces."""
    return make_world(database, {"wangmo": ("522326", "望谟县财政局"),
                             "xingyi": ("522301", "兴义市财政局"),
                             "ceheng": ("522327", "册亨县财政局")})


def in_force(database, world: World, **changes: Any) -> str:
    with database.unit_of_work() as s:
        agreement = agreements.create_agreement(s, ADMIN, world.terms(**changes))
        agreements.put_in_force(s, ADMIN, agreement.code, agreement.version)
        return agreement.code
