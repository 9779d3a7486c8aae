"""Demo benefit sharing in Wangmo (every amount and person DEMO): the villager registers of
Dalang (打狼村) and Xinhe (新合村) with DEMO households (the catalog's demo households plus more
made here), a DEMO forest compensation fund for benefit sharing fed by two DEMO thermal-power
plants (simple postings through `ledger.core`; the pilot's real fund is its own account), a
Sanming-style rule (collective 30 %, villagers 70 % by shares), one distribution prepared by
the county and paid by finance, and a single-tree purchase by the DEMO trader (Wangmo
programme: 3 yuan per tree and year, at most 450 trees per household, 225 per mu).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.identifiers import id_check_character, uscc_check_character
from catalog.models import Party
from catalog.services import parties
from ecovalue.auth import Principal, system_principal
from ecovalue.clock import local_today
from ledger import core
from ledger.sharing.models import SharingFund
from ledger.sharing.services import config, register, runs

DEMO = {"demo": True, "note": "DEMO data for trying the service; not real payments"}
FUND = "DEMO-WM-SHARING-FUND"
RULE = "DEMO-WM-30-70"
PROGRAMME = "WANGMO-SINGLE-TREE"
JOINED = dt.date(2025, 1, 1)
#: (name, village key, shares, members, trees, area_m2); names "某" mark placeholders
HOUSEHOLDS = [
    ("韦某戊", "dalang", 3, 4, 450, 1334), ("王某己", "dalang", 2, 3, 380, 1200),
    ("罗某庚", "dalang", 1, 2, 450, 667), ("黄某辛", "xinhe", 2, 5, 450, 2000),
    ("岑某壬", "xinhe", 1, 3, 200, 0), ("杨某癸", "xinhe", 4, 6, 450, 1500),
]
#: the catalog's demo households in these villages: (key, village, shares, members, trees, m2)
CATALOG_HOUSEHOLDS = [("household_1", "dalang", 2, 4, 450, 1334),
                      ("household_2", "dalang", 1, 3, 300, 1000),
                      ("household_3", "xinhe", 3, 5, 450, 1400)]
PLANT2 = {"kind": "enterprise", "name_zh": "望谟火电厂 (DEMO)",
          "name_en": "Wangmo thermal power plant (DEMO)", "region_code": "522326",
          "sector": "thermal_power"}


def _party_id(session: Session, key: str) -> int:
    values = PARTIES[key]
    column, value = (Party.credit_code, values["credit_code"]) if values.get("credit_code") \
        else (Party.name_zh, values["name_zh"])
    party_id = session.scalar(sa.select(Party.id).where(column == value))
    if party_id is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return party_id


def _id_number(seq: int) -> str:
    body = f"52232619{70 + seq:02d}0315{seq:03d}"
    return body + id_check_character(body)


def _uscc(body: str) -> str:
    return body + uscc_check_character(body)


def load(session: Session, actor: Principal) -> list[str]:
    if session.scalar(sa.select(SharingFund.id).where(SharingFund.account_code == FUND)):
        return ["sharing: demo benefit sharing already present"]
    villages = {"dalang": _party_id(session, "dalang"), "xinhe": _party_id(session, "xinhe")}
    bureau = _party_id(session, "wangmo_bureau")
    plant2 = parties.create_party(session, actor, {
        **PLANT2, "credit_code": _uscc("91522326MA6H00005"), "attributes": DEMO})
    members: list[tuple[int, str, int, int, int, int]] = [
        (_party_id(session, key), v, shares, people, trees, area)
        for key, v, shares, people, trees, area in CATALOG_HOUSEHOLDS]
    for seq, (name, village, shares, people, trees, area) in enumerate(HOUSEHOLDS, start=1):
        region = "522326104201" if village == "dalang" else "522326104202"
        household = parties.create_party(session, actor, {
            "kind": "household", "name_zh": name, "name_en": f"DEMO sharing household {seq}",
            "region_code": region, "id_number": _id_number(seq),
            "bank_account": f"62179952301{seq:08d}", "bank_name": "贵州农信 (DEMO)",
            "attributes": DEMO})
        members.append((household.id, village, shares, people, trees, area))
    for party_id, village, shares, people, trees, area in members:
        register.record_entry(session, actor, collective_party_id=villages[village],
                              household_party_id=party_id, effective_date=JOINED,
                              shares=shares, members=people, trees=trees, area_m2=area,
                              reason="DEMO: joined the village's shareholding cooperative")
    accounts = [(plant2.id, "external", "DEMO-PLANT2-BANK", "望谟火电厂银行账户 (DEMO)"),
                (plant2.id, "holding", "DEMO-PLANT2-CNY", "望谟火电厂 (DEMO)"),
                (bureau, "fund", FUND, "森林生态补偿基金·利益分配 (DEMO)"),
                (_party_id(session, "trader"), "external", "DEMO-TRADER-BANK",
                 "林业碳汇服务公司银行账户 (DEMO)")]
    for party_id, kind, code, name in accounts:
        core.create_account(session, actor, party_id=party_id, asset="CNY", kind=kind,
                            code=code, name=name, attributes=DEMO)
    for source, target, amount, memo in (
            ("DEMO-PLANT2-BANK", "DEMO-PLANT2-CNY", 500_000_00,
             "DEMO: Wangmo plant deposits 500,000.00 yuan"),
            ("DEMO-TRADER-BANK", "DEMO-TRADER-CNY", 100_000_00,
             "DEMO: the trader deposits 100,000.00 yuan")):
        core.post(session, actor, _transfer("deposit", source, target, amount, memo))
    config.register_fund(session, actor, account_code=FUND, name_zh="森林生态补偿基金 (DEMO)",
                         name_en="Forest compensation fund for benefit sharing (DEMO)")
    for source, amount, memo in (
            ("DEMO-PLANT-CNY", 120_000_00, "DEMO: Xingyi plant's CO2 compensation fee"),
            ("DEMO-PLANT2-CNY", 80_000_00, "DEMO: Wangmo plant's CO2 compensation fee")):
        core.post(session, actor, _transfer("compensation", source, FUND, amount, memo))
    config.create_rule(session, actor, code=RULE,
                       name_zh="望谟林业补偿分配 集体30%/村民70%按股 (DEMO)",
                       name_en="Wangmo forest compensation: collective 30 %, villagers 70 % by "
                               "shares (DEMO, after Sanming's forest ticket)",
                       source_kind="fund", source_ref=FUND, definition={
                           "kind": "villages", "basis": "households", "label": "村 villages",
                           "parts": [
                               {"kind": "collective", "label": "村集体 collective",
                                "share_bp": 3000},
                               {"kind": "households", "label": "村民按股 villagers by shares",
                                "basis": "shares", "share_bp": 7000}]})
    today = local_today()
    prepared = runs.prepare_run(
        session, system_principal("demo:wangmo-county"), reference="DEMO-WM-2025-1",
        fund_code=FUND, rule_code=RULE, amount_fen=150_000_00,
        collective_party_ids=[villages["dalang"], villages["xinhe"]], record_date=today,
        memo="DEMO: first distribution of the forest compensation fund").run
    runs.approve_run(session, system_principal("demo:prefecture-finance"), prepared.id)
    config.create_programme(session, actor, code=PROGRAMME, name_zh="望谟县单株碳汇",
                            name_en="Wangmo single-tree carbon sink (published terms)",
                            price_fen_per_tree_year=300, max_trees_per_household=450,
                            max_trees_per_mu=225, term_years=5)
    purchase = runs.create_purchase(
        session, actor, reference="DEMO-WM-TREES-2025", programme_code=PROGRAMME,
        buyer_account_code="DEMO-TRADER-CNY", collective_party_ids=[villages["dalang"]],
        record_date=today, years=1, memo="DEMO: one year of Dalang's single-tree carbon").run
    return [f"sharing: registers of Dalang and Xinhe ({len(members)} DEMO households), fund "
            f"{FUND} fed by two DEMO plants (200,000.00 yuan), run {prepared.id} paid "
            f"(150,000.00 yuan), single-tree purchase {purchase.id} "
            f"({purchase.amount_fen // 100:,} yuan)"]


def _transfer(type_: str, source: str, target: str, amount: int, memo: str
              ) -> core.TransactionSpec:
    return core.TransactionSpec(type=type_, memo=memo, metadata=DEMO, postings=[
        core.PostingSpec(source, "CNY", "debit", amount),
        core.PostingSpec(target, "CNY", "credit", amount)])
