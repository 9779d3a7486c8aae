"""Demo pilot (every number DEMO): the reference factor table, the rules of 2024 and 2025
(0.5 % of verified emissions, 50.00 yuan per tonne, forest credits of Qianxinan, the demo
forest compensation fund), and the demo thermal-power plant's 2024 report (100,000 t of raw
coal at the table's defaults: 234,139 tCO2), verified by a verifier, giving an obligation of
1,171 t that the plant partly settled: 100 t of the demo afforestation credits retired against
it and the fee for 500 t paid into the fund, 571 t still open. The plant also receives 600 t
more of the demo batch, through the registry's transfer service, for its 2025 obligation
(ledger/pilot/README.md walks through that one).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party
from ecovalue.auth import Principal, Role
from ledger import core
from ledger.carbon.models import CarbonBatch, CarbonProject
from ledger.carbon.services import credits
from ledger.pilot.models import PilotRule
from ledger.pilot.services import factors, obligations, reports, rules

DEMO_NOTE = "DEMO rule for trying the service; not the prefecture's adopted figures"
FUND = "DEMO-FOREST-FUND"
PROJECT_CODE = "WM-AR-001"
RULE = {"share_bp": 50, "fee_fen_per_tco2": 5_000, "eligible_region_code": "522300",
        "eligible_methodologies": ["afforestation", "forest_management", "single_tree"],
        "fund_account_code": FUND, "note": DEMO_NOTE}
#: raw coal burnt by the demo plant in 2024 (t, DEMO)
COAL_2024_T = "100000"
#: credits of the demo batch transferred to the plant for the README's 2025 walkthrough
CREDITS_FOR_2025_T = 600


def _plant(session: Session) -> int:
    found = session.scalar(sa.select(Party.id).where(
        Party.credit_code == PARTIES["plant"]["credit_code"]))
    if found is None:
        raise LookupError("demo plant missing: load the catalog demo first")
    return found


def load(session: Session, actor: Principal) -> list[str]:
    if session.scalar(sa.select(PilotRule.id).limit(1)) is not None:
        return ["pilot: demo pilot already present"]
    plant_id = _plant(session)
    plant = Principal(role=Role.TRADER, label="demo:plant", party_id=plant_id)
    verifier = Principal(role=Role.VERIFIER, label="demo:verifier")
    factors.reference_table(session, actor)
    for year in (2024, 2025):
        rules.put_rule(session, actor, year, {
            **RULE, "vintage_from": year - 4, "vintage_to": year,
            "report_deadline": dt.date(year + 1, 3, 31),
            "settlement_deadline": dt.date(year + 1, 12, 31)})
    report = reports.file_report(session, plant, plant_party_id=plant_id, year=2024,
                                 method="combustion", lines=[
                                     {"fuel": "raw_coal", "consumption": COAL_2024_T}],
                                 note="DEMO: 2024 coal consumption")
    reports.verify_report(session, verifier, report.id, note="DEMO verification")
    obligation = session.scalars(obligations.list_obligations(
        session, actor, year=2024, plant_party_id=plant_id)).one()
    batch = session.scalar(sa.select(CarbonBatch).join(
        CarbonProject, CarbonProject.id == CarbonBatch.project_id).where(
        CarbonProject.code == PROJECT_CODE).order_by(CarbonBatch.id).limit(1))
    if batch is None:
        raise LookupError("demo carbon batch missing: load the carbon demo first")
    held = credits.tradable_account(session, actor, batch, plant_id)
    owner = credits.tradable_account(session, actor, batch,
                                     session.get_one(CarbonProject, batch.project_id)
                                     .owner_party_id)
    # as many as the owner still holds, should another demo loader have sold some already
    available = core.account_balance(session, actor, owner.code).balance
    moved = min(CREDITS_FOR_2025_T, available)
    if moved:
        credits.transfer(session, actor, account=owner.code, to_party_id=plant_id,
                         quantity_t=moved,
                         memo="DEMO: sale to the thermal-power plant for its 2025 obligation")
    obligations.settle(session, plant, obligation.id, retirements=[
        obligations.RetirementPart(account=held.code, quantity_t=100)], fee_t=500)
    return [f"pilot: reference factor table, rules 2024 and 2025 (0.5 %, 50.00 yuan/t), "
            f"the demo plant's 2024 report ({report.emissions_tco2} tCO2, verified), "
            f"obligation {obligation.code} of {obligation.obligation_t} t: 100 t retired, "
            f"fee for 500 t paid, {obligation.obligation_t - 600} t open; "
            f"{moved} t of {batch.asset_code} transferred to the plant"]
