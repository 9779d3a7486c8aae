"""Demo compensation data (every number DEMO): a Chishui-style horizontal agreement between
the three pilot counties on the Nanpan river (兴义市, 望谟县, 册亨县 standing for Guizhou,
Yunnan and Sichuan: contributions 5:1:4, allocations 4:3:3 of 2,000,000.00 yuan a year,
2024-2026), its two assessed sections, the 2024 water quality (both sections pass) and the
2024 settlement prepared and approved (Xingyi and Ceheng each pay 200,000.00 yuan into
Wangmo's compensation fund COMP-DEMO-NANPAN-2024-WANGMO). 2025 is left for the README
walkthrough.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party
from ecovalue.auth import Principal, system_principal
from ledger.compensation.models import CompensationAgreement
from ledger.compensation.services import agreements, assessments, sections, settlements

CODE = "DEMO-NANPAN-2024"
SOURCE = "DEMO: illustrative monitoring, not an official water-quality report"
SECTIONS = [
    {"code": "DEMO-WM-SECTION", "name_zh": "望谟出境断面 (DEMO)",
     "name_en": "Wangmo outflow section (DEMO)", "river": "南盘江", "region_code": "522326"},
    {"code": "DEMO-XY-SECTION", "name_zh": "兴义出境断面 (DEMO)",
     "name_en": "Xingyi outflow section (DEMO)", "river": "南盘江", "region_code": "522301"},
]


def _party(session: Session, key: str) -> int:
    found = session.scalar(sa.select(Party.id).where(Party.name_zh == PARTIES[key]["name_zh"]))
    if found is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return found


def terms(session: Session) -> dict[str, Any]:
    """The demo agreement's terms, as a user would write them."""
    return {
        "code": CODE, "name_zh": "南盘江流域横向生态保护补偿协议 (DEMO)",
        "name_en": "Nanpan river horizontal compensation agreement (DEMO)",
        "kind": "horizontal", "amount_fen": 3 * 2_000_000_00, "share_basis": 10,
        "periods": ["2024", "2025", "2026"], "schedule": {"type": "equal"},
        "note": "DEMO, modelled on the Chishui River agreement (1:5:4 / 3:4:3)",
        "parties": [
            {"key": "wangmo", "party_id": _party(session, "wangmo_bureau"),
             "region_code": "522326", "role_zh": "上游", "contribution_share": 1,
             "allocation_share": 3},
            {"key": "xingyi", "party_id": _party(session, "xingyi_bureau"),
             "region_code": "522301", "role_zh": "中游", "contribution_share": 5,
             "allocation_share": 4},
            {"key": "ceheng", "party_id": _party(session, "ceheng_forestry"),
             "region_code": "522327", "role_zh": "下游", "contribution_share": 4,
             "allocation_share": 3},
        ],
        "conditions": [
            {"key": "wangmo_outflow", "name_zh": "望谟出境断面水质达到III类",
             "section": "DEMO-WM-SECTION", "indicator": "water_quality_class", "target": "III",
             "on_failure": {"party": "wangmo", "action": "split",
                            "to": [{"party": "xingyi", "share": 5},
                                   {"party": "ceheng", "share": 5}]}},
            {"key": "xingyi_outflow", "name_zh": "兴义出境断面水质达到III类",
             "section": "DEMO-XY-SECTION", "indicator": "water_quality_class", "target": "III",
             "on_failure": {"party": "xingyi", "action": "redirect",
                            "to": [{"party": "ceheng"}]}},
        ],
    }


def load(session: Session, actor: Principal) -> list[str]:
    if session.scalar(sa.select(CompensationAgreement.id)
                      .where(CompensationAgreement.code == CODE)):
        return ["compensation: demo agreement already present"]
    for values in SECTIONS:
        sections.create_section(session, actor, values)
    agreements.create_agreement(session, actor, terms(session))
    agreements.put_in_force(session, actor, CODE, 1)
    assessments.record_values(session, actor, [
        {"section": "DEMO-WM-SECTION", "period": "2024", "indicator": "water_quality_class",
         "value": "II", "source": SOURCE},
        {"section": "DEMO-XY-SECTION", "period": "2024", "indicator": "water_quality_class",
         "value": "III", "source": SOURCE}])
    settlement, _ = settlements.prepare(session, actor, CODE, "2024")
    settlements.approve(session, system_principal("demo-finance"), settlement.id,
                        note="DEMO: approved by the finance bureau")
    return [f"compensation: agreement {CODE} in force, 2 sections, 2024 settled "
            f"(settlement #{settlement.id}: Xingyi and Ceheng each pay 200,000.00 yuan to "
            "Wangmo)"]
