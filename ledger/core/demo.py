"""Demo ledger for the pilot (every amount DEMO): a thermal-power plant's compensation to the
forest compensation fund, a pending payout from the fund to Dalang village for its single-tree
carbon sink (128 households x 450 trees x 3 yuan = 172,800 yuan, the published Wangmo rule),
and a DEMO carbon batch issued with the Gold Standard's flat 20 % buffer (1,000 t -> 800 + 200).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party
from ecovalue.auth import Principal
from ledger import core
from ledger.core.models import LedgerAsset

CNY = "CNY"
CARBON_BATCH = "DEMO-WM-FC-2023-001"
DEMO = {"demo": True, "note": "DEMO data for trying the service; not real payments"}
DALANG_PAYMENT_FEN = 128 * 450 * 3 * 100  # 172,800.00 yuan


def _party(session: Session, key: str) -> int:
    values = PARTIES[key]
    column, value = (Party.credit_code, values["credit_code"]) if values.get("credit_code") \
        else (Party.name_zh, values["name_zh"])
    party_id = session.scalar(sa.select(Party.id).where(column == value))
    if party_id is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return party_id


def _transfer(type_: str, source: str, target: str, asset: str, amount: int,
              memo: str, *, pending: bool = False) -> core.TransactionSpec:
    return core.TransactionSpec(
        type=type_, memo=memo, metadata=DEMO, pending=pending,
        postings=[core.PostingSpec(source, asset, "debit", amount),
                  core.PostingSpec(target, asset, "credit", amount)])


def load(session: Session, actor: Principal) -> list[str]:
    if session.scalar(sa.select(LedgerAsset.id).where(LedgerAsset.code == CNY)):
        return ["ledger: demo ledger already present"]
    plant, trader = _party(session, "plant"), _party(session, "trader")
    bureau, dalang = _party(session, "wangmo_bureau"), _party(session, "dalang")
    core.create_asset(session, actor, code=CNY, kind="currency", name_zh="人民币",
                          name_en="Chinese yuan (fen)")
    core.create_asset(session, actor, code=CARBON_BATCH, kind="carbon_credit",
                          name_zh="望谟县林业碳汇 2023 批次 (DEMO)",
                          name_en="Wangmo forest carbon, vintage 2023 (DEMO)",
                          vintage_year=2023, batch_reference=CARBON_BATCH, attributes=DEMO)
    accounts = [
        (plant, CNY, "external", "DEMO-PLANT-BANK", "兴义火电厂银行账户 (DEMO)"),
        (plant, CNY, "holding", "DEMO-PLANT-CNY", "兴义火电厂 (DEMO)"),
        (trader, CNY, "holding", "DEMO-TRADER-CNY", "林业碳汇服务公司 (DEMO)"),
        (bureau, CNY, "fund", "DEMO-FOREST-FUND", "森林生态补偿基金 (DEMO)"),
        (dalang, CNY, "holding", "DEMO-DALANG-CNY", "打狼村股份经济合作社 (DEMO)"),
        (bureau, CARBON_BATCH, "external", "DEMO-CARBON-ISSUANCE", "碳汇签发 (DEMO)"),
        (bureau, CARBON_BATCH, "buffer", "DEMO-CARBON-BUFFER", "缓冲池 (DEMO)"),
        (dalang, CARBON_BATCH, "holding", "DEMO-DALANG-CARBON", "打狼村碳汇 (DEMO)"),
    ]
    for party_id, asset, kind, code, name in accounts:
        core.create_account(session, actor, party_id=party_id, asset=asset, kind=kind,
                                code=code, name=name, attributes=DEMO)
    for spec in (
        _transfer("deposit", "DEMO-PLANT-BANK", "DEMO-PLANT-CNY", CNY, 50_000_000,
                  "DEMO: plant deposits 500,000.00 yuan"),
        _transfer("compensation", "DEMO-PLANT-CNY", "DEMO-FOREST-FUND", CNY, DALANG_PAYMENT_FEN,
                  "DEMO: CO2 compensation of the thermal-power pilot"),
        _transfer("payout", "DEMO-FOREST-FUND", "DEMO-DALANG-CNY", CNY, DALANG_PAYMENT_FEN,
                  "DEMO: single-tree carbon payment to Dalang, awaiting finance approval",
                  pending=True),
        core.TransactionSpec(type="issuance", memo="DEMO: 1,000 t issued, 20 % to the buffer pool",
                        metadata=DEMO, postings=[
                            core.PostingSpec("DEMO-CARBON-ISSUANCE", CARBON_BATCH, "debit", 1000),
                            core.PostingSpec("DEMO-DALANG-CARBON", CARBON_BATCH, "credit", 800),
                            core.PostingSpec("DEMO-CARBON-BUFFER", CARBON_BATCH, "credit", 200)]),
    ):
        core.create_transaction(session, actor, spec)
    return ["ledger: 2 demo assets, 8 demo accounts, 4 demo transactions (one pending payout "
            "of 172,800.00 yuan to Dalang awaiting finance)"]
