"""Benefit-sharing fixtures: a Wangmo world built through the catalog's and the ledger's
services — two village collectives with households, a fund fed by two plants, a buyer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from catalog.services import parties, regions
from ecovalue.auth import Principal, system_principal
from ledger import core
from ledger.sharing.services import config, register

ADMIN = system_principal("sharing-test")
#: the clock of service-level tests: 12:00 in Shanghai on 20 March 2025
NOW = dt.datetime(2025, 3, 20, 4, 0, tzinfo=dt.UTC)
JOINED = dt.date(2025, 1, 1)
#: valid ID-card check characters (ISO 7064 MOD 11-2) for made-up test numbers
_serial = itertools.count(1)


def id_number(birth: str, seq: int) -> str:
    body = f"522326{birth}{seq:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + check


def bank_account(n: int) -> str:
    return f"62179952300{n:08d}"


@dataclasses.dataclass
class World:
    dalang: int
    xinhe: int
    households: dict[str, int]  # key -> party id
    plant_a: int
    plant_b: int
    buyer: int
    inflows: list[int]  # the plants' payments into the fund (transaction ids)


def make_household(s, name: str, region: str = "522326104201") -> int:
    n = next(_serial)
    return parties.create_party(s, ADMIN, {
        "kind": "household", "name_zh": name, "region_code": region,
        "id_number": id_number(f"19{60 + n % 40:02d}0101", n),
        "bank_account": bank_account(n), "bank_name": "贵州农信 (测试)"}).id


def make_world(database, *, inflows=(300_000_00, 200_000_00)) -> World:
    with database.unit_of_work() as s:
        for code, name in (("522326104", "石屯镇"), ("522326104201", "打狼村"),
                           ("522326104202", "新合村")):
            regions.create_region(s, ADMIN, code=code, name_zh=name)
        bureau = parties.create_party(s, ADMIN, {"kind": "government",
                                                 "name_zh": "黔西南州财政局",
                                                 "region_code": "522300"}).id
        dalang = parties.create_party(s, ADMIN, {
            "kind": "village_collective", "name_zh": "打狼村股份经济合作社",
            "region_code": "522326104201"}).id
        xinhe = parties.create_party(s, ADMIN, {
            "kind": "village_collective", "name_zh": "新合村股份经济合作社",
            "region_code": "522326104202"}).id
        plant_a = parties.create_party(s, ADMIN, {
            "kind": "enterprise", "name_zh": "兴义火电厂(测试)", "region_code": "522301",
            "credit_code": "91520000214434146R", "sector": "thermal_power"}).id
        plant_b = parties.create_party(s, ADMIN, {
            "kind": "enterprise", "name_zh": "册亨火电厂(测试)", "region_code": "522327",
            "credit_code": "914403001922038216", "sector": "thermal_power"}).id
        buyer = parties.create_party(s, ADMIN, {
            "kind": "enterprise", "name_zh": "碳汇买家(测试)", "region_code": "522301",
            "credit_code": "91350100M000100Y43"}).id
        households = {}
        for key, region in (("wei", "522326104201"), ("luo", "522326104201"),
                            ("huang", "522326104201"), ("cen", "522326104202"),
                            ("li", "522326104202")):
            households[key] = make_household(s, f"{key}某", region)
        core.create_asset(s, ADMIN, code="CNY", kind="currency", name_zh="人民币")
        for party, code, kind in ((bureau, "BANK", "external"), (bureau, "FUND", "fund"),
                                  (plant_a, "PLANT-A", "holding"),
                                  (plant_b, "PLANT-B", "holding"),
                                  (buyer, "BUYER", "holding"),
                                  (bureau, "TOWNSHIP", "holding"), (bureau, "FEE", "fee")):
            core.create_account(s, ADMIN, party_id=party, asset="CNY", kind=kind, code=code)
        for code in ("PLANT-A", "PLANT-B", "BUYER"):
            core.post(s, ADMIN, transfer("BANK", code, 10_000_000_00, type="deposit"),
                      now=NOW, action="ledger.transaction.create")
        config.register_fund(s, ADMIN, account_code="FUND", name_zh="森林生态补偿基金")
        paid = []
        for code, amount in zip(itertools.cycle(["PLANT-A", "PLANT-B"]), inflows):
            paid.append(core.post(s, ADMIN, transfer(code, "FUND", amount, type="compensation",
                                                     memo=f"{code} fee"), now=NOW).id)
        # Dalang: wei 2 shares, luo 1, huang 1; Xinhe: cen 1, li 3
        for key, collective, shares, trees, area in (
                ("wei", dalang, 2, 450, 1334), ("luo", dalang, 1, 300, 0),
                ("huang", dalang, 1, 450, 667), ("cen", xinhe, 1, 450, 2000),
                ("li", xinhe, 3, 100, 0)):
            register.record_entry(s, ADMIN, collective_party_id=collective,
                                  household_party_id=households[key], effective_date=JOINED,
                                  shares=shares, members=2, trees=trees, area_m2=area,
                                  reason="join", now=NOW)
    return World(dalang, xinhe, households, plant_a, plant_b, buyer, paid)


def transfer(debit, credit, amount, **kwargs) -> core.TransactionSpec:
    return core.TransactionSpec(type=kwargs.pop("type", "transfer"), postings=[
        core.PostingSpec(debit, "CNY", "debit", amount),
        core.PostingSpec(credit, "CNY", "credit", amount)], **kwargs)


@pytest.fixture()
def world(database) -> World:
    return make_world(database)


def finance(label: str, token_id: int) -> Principal:
    from ecovalue.auth.policy import Role

    return Principal(role=Role.FINANCE, label=label, token_id=token_id)


PREPARER = finance("token:1 preparer", 1)
APPROVER = finance("token:2 approver", 2)

SANMING = {"kind": "villages", "basis": "households", "parts": [
    {"kind": "collective", "label": "村集体 collective", "share_bp": 3000},
    {"kind": "households", "label": "村民 villagers", "basis": "shares", "share_bp": 7000}]}
