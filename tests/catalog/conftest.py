"""Catalog test helpers: a small world of regions, parties and products built through the
services (so that the audit trail and the history are what the API would have produced)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from catalog.services import parties, products, regions
from ecovalue.auth import system_principal

WANGMO, XINGYI, CEHENG = "522326", "522301", "522327"
#: valid codes for tests: real enterprises' unified social credit codes (public registers)
MOUTAI_USCC = "91520000214434146R"  # 贵州茅台酒股份有限公司
HUAWEI_USCC = "914403001922038216"  # 华为技术有限公司
ALIBABA_USCC = "91330100716105852F"  # 阿里巴巴(中国)有限公司
#: ID-card numbers with a correct check digit (GB 11643's published example and made-up ones)
ID_STANDARD_EXAMPLE = "11010519491231002X"


def id_number(prefix: str = "522326", birth: str = "19800101", seq: str = "123") -> str:
    """A syntactically valid ID-card number (correct check digit) for tests."""
    from catalog.identifiers import id_check_character

    first17 = prefix + birth + seq
    return first17 + id_check_character(first17)


@dataclasses.dataclass
class World:
    township: str
    village: str
    xingyi_township: str
    collective: int  # village collective in Wangmo
    household: int  # household in Wangmo
    household_name: str
    household_id_number: str
    plant: int  # thermal-power enterprise in Xingyi
    xingyi_collective: int


@pytest.fixture()
def world(database) -> World:
    """Wangmo township + village, Xingyi township, a collective, a household, a plant."""
    admin = system_principal("test-world")
    household_id = id_number()
    with database.unit_of_work() as s:
        regions.create_region(s, admin, code="522326101", name_zh="石屯镇")
        regions.create_region(s, admin, code="522326101201", name_zh="打狼村")
        regions.create_region(s, admin, code="522301101", name_zh="乌沙镇")
        collective = parties.create_party(s, admin, {
            "kind": "village_collective", "name_zh": "打狼村股份经济合作社",
            "region_code": "522326101201"})
        household = parties.create_party(s, admin, {
            "kind": "household", "name_zh": "王小明", "region_code": "522326101201",
            "id_number": household_id, "bank_account": "6217000012345678901",
            "bank_name": "农村信用社"})
        plant = parties.create_party(s, admin, {
            "kind": "enterprise", "name_zh": "茅台(测试)电厂", "region_code": XINGYI,
            "credit_code": MOUTAI_USCC, "sector": "thermal_power"})
        xingyi_collective = parties.create_party(s, admin, {
            "kind": "village_collective", "name_zh": "乌沙村集体", "region_code": "522301101"})
        ids = (collective.id, household.id, plant.id, xingyi_collective.id)
    return World("522326101", "522326101201", "522301101", ids[0], ids[1], "王小明",
                 household_id, ids[2], ids[3])


def product_body(world: World, **overrides: Any) -> dict:
    body = {"name_zh": "打狼村古茶园", "type_code": "tea", "region_code": world.village,
            "holder_party_id": world.collective, "rights_type": "ownership", "area_ha": 12.5,
            "latitude": 25.17, "longitude": 106.09, "quantity": 3.2, "quantity_unit": "t"}
    body.update(overrides)
    return body


def make_product(database, world: World, status: str = "draft", **overrides: Any) -> int:
    """A product brought to `status` through the lifecycle, by the system principal."""
    admin = system_principal("test-maker")
    path = {"draft": [], "registered": ["submit"], "verified": ["submit", "verify"],
            "suspended": ["submit", "verify", "suspend"], "retired": ["retire"]}[status]
    with database.unit_of_work() as s:
        product = products.create_product(s, admin, product_body(world, **overrides))
        for name in path:
            products.transition_product(s, admin, product.id, name, reason="test")
        return product.id
