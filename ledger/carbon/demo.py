"""Demo registry data (every number DEMO): the prefecture bureau as the registry's operator,
an afforestation parcel in Kafa village with stem-volume records, a registered and active
Wangmo afforestation project on it with a batch issued on its 2021-2023 report (20 % to the
buffer pool), a transfer to the demo thermal-power plant and a retirement for its 2024
pilot obligation; stem-volume records are added to the Dalang and Xinhe carbon parcels of the
catalog demo, so that a new user can register a project on them (ledger/carbon/README.md).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party, Product
from catalog.services import monitoring, parties, products
from ecovalue.auth import Principal
from ledger.carbon.models import CarbonRegistry
from ledger.carbon.services import credits, parameters, projects, reports

DEMO = {"demo": True, "note": "DEMO data for trying the service; not real credits"}
DEMO_SOURCE = "DEMO: illustrative stem volumes, not an official inventory"
PROJECT_CODE = "WM-AR-001"
YEARS = (2020, 2021, 2022, 2023, 2024)
#: stem volume (m3) at the end of each year in YEARS, per demo parcel key
VOLUMES = {"kafa_afforestation": [2400.0, 2760.0, 3150.0, 3560.0, 3990.0],
           "dalang_carbon": [1500.0, 1720.0, 1950.0, 2190.0, 2440.0],
           "xinhe_carbon": [1610.0, 1840.0, 2080.0, 2330.0, 2590.0]}


def _party_id(session: Session, key: str) -> int:
    values = PARTIES[key]
    column, value = (Party.credit_code, values["credit_code"]) if values.get("credit_code") \
        else (Party.name_zh, values["name_zh"])
    found = session.scalar(sa.select(Party.id).where(column == value))
    if found is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return found


def _product_id(session: Session, key: str) -> int:
    found = session.scalar(sa.select(Product.id).where(Product.external_code == f"DEMO-{key}"))
    if found is None:
        raise LookupError(f"demo product {key!r} missing: load the catalog demo first")
    return found


def load(session: Session, actor: Principal) -> list[str]:
    if session.get(CarbonRegistry, 1) is not None:
        return ["carbon: demo registry already present"]
    bureau = parties.create_party(session, actor, {
        "kind": "government", "name_zh": "黔西南州自然资源局",
        "name_en": "Qianxinan Prefecture Natural Resources Bureau (DEMO)",
        "region_code": "522300", "attributes": dict(DEMO)})
    parameters.set_operator(session, actor, bureau.id)
    kafa = products.create_product(session, actor, {
        "name_zh": "卡法村石漠化治理造林地块", "name_en": "Kafa afforestation parcel (DEMO)",
        "type_code": "forest_carbon_sink", "region_code": "522326110201",
        "holder_party_id": _party_id(session, "kafa"), "rights_type": "ownership",
        "area_ha": 60.0, "latitude": 25.34, "longitude": 106.22,
        "external_code": "DEMO-kafa_afforestation",
        "attributes": {**DEMO, "demo_key": "kafa_afforestation"}})
    products.transition_product(session, actor, kafa.id, "submit")
    products.transition_product(session, actor, kafa.id, "verify")
    for key, volumes in VOLUMES.items():
        product_id = _product_id(session, key)
        for year, volume in zip(YEARS, volumes, strict=True):
            monitoring.create_record(session, actor, product_id, {
                "period_year": year, "metric": "stock_volume", "value": volume, "unit": "m3",
                "method": "field_survey", "source": DEMO_SOURCE})
    owner = _party_id(session, "kafa")
    project = projects.create_project(session, actor, {
        "code": PROJECT_CODE, "name_zh": "望谟县卡法村碳汇造林项目 (DEMO)",
        "name_en": "Wangmo Kafa afforestation (DEMO)", "methodology": "afforestation",
        "region_codes": ["522326110201"], "developer_party_id": owner,
        "owner_party_id": owner, "parcel_ids": [kafa.id],
        "species_composition": {"cunninghamia": 0.7, "pinus_massoniana": 0.3},
        "crediting_start": dt.date(2021, 1, 1), "crediting_end": dt.date(2050, 12, 31),
        "documents": [{"title": "项目设计文件 (DEMO)", "reference": "DEMO-PDD-WM-AR-001"}],
        "description": "DEMO project: karst rocky-desertification afforestation"})
    for name in ("validate", "register", "activate"):
        projects.transition_project(session, actor, project.id, name)
    report = reports.file_report(session, actor, project.id, period_start=dt.date(2021, 1, 1),
                                 period_end=dt.date(2023, 12, 31), source="catalog",
                                 note="DEMO monitoring report 2021-2023")
    reports.verify_report(session, actor, report.id)
    batch = credits.issue(session, actor, report.id)
    plant = _party_id(session, "plant")
    owner_account = credits.tradable_account(session, actor, batch, owner)
    moved = credits.transfer(session, actor, account=owner_account.code, to_party_id=plant,
                             quantity_t=300, memo="DEMO: sale to the thermal-power plant")
    retired = credits.retire(session, actor, account=moved.target.code, quantity_t=200,
                             beneficiary_name="兴义火电厂 (DEMO)", purpose="thermal_power_pilot",
                             compliance_year=2024, jurisdiction="522300",
                             reason="DEMO: 2024 obligation of the thermal-power pilot")
    assert retired.retirement is not None
    return [(f"carbon: demo project {PROJECT_CODE}, batch {batch.asset_code} "
            f"({batch.quantity_t} t issued, {batch.buffer_t} t to the buffer pool), 300 t "
            f"sold to the plant, certificate {retired.retirement.certificate_number} for 200 t")]
