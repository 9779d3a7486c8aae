"""Demo dataset of the three pilot counties: Xingyi (522301), Wangmo (522326), Ceheng (522327).

Everything is created through the services, so the demo has the same audit trail and history a
real registration would have. Place names are real where known (乌沙镇, 威舍镇发哈村, 石屯镇打狼村,
石屯镇新合村, 麻山镇卡法村, 册亨县丫他镇板万村); their codes below county level are MADE UP within
the county prefix (regions.source = "demo", name_en says "demo code"). Every number (areas,
quantities, monitoring values), every party's identifiers (credit codes, ID-card numbers and bank
accounts: valid check characters, not real registrations) and every household name (韦某甲 ...:
"某" marks a placeholder) is DEMO data: names carry "(DEMO)" in English, attributes carry
{"demo": true}, monitoring sources say "DEMO".
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import MonitoringRecord, Party, Product, Region
from catalog.services import monitoring, parties, products, regions
from catalog.services.regions import load_national_regions, load_reference_regions
from ecovalue.auth import Principal

DEMO = {"demo": True, "note": "DEMO data for trying the service; not official figures"}
DEMO_SOURCE = "DEMO: illustrative numbers, not official statistics"
YEARS = (2020, 2021, 2022, 2023, 2024)

#: (code, name_zh, name_en); codes below county level are made up (demo)
REGIONS = [
    ("522326104", "石屯镇", "Shitun (demo code)"),
    ("522326104201", "打狼村", "Dalang village (demo code)"),
    ("522326104202", "新合村", "Xinhe village (demo code)"),
    ("522326110", "麻山镇", "Mashan (demo code)"),
    ("522326110201", "卡法村", "Kafa village (demo code)"),
    ("522301106", "乌沙镇", "Wusha (demo code)"),
    ("522301104", "威舍镇", "Weishe (demo code)"),
    ("522301104201", "发哈村", "Faha village (demo code)"),
    ("522327102", "丫他镇", "Yata (demo code)"),
    ("522327102201", "板万村", "Banwan village (demo code)"),
    ("522327103", "巧马镇", "Qiaoma (demo code)"),
]

#: key -> party values (credit codes and ID-card numbers have valid check characters but are
#: DEMO values, not real registrations)
PARTIES: dict[str, dict[str, Any]] = {
    "wangmo_bureau": {"kind": "government", "name_zh": "望谟县自然资源局",
                      "name_en": "Wangmo County Natural Resources Bureau (DEMO)",
                      "region_code": "522326"},
    "xingyi_bureau": {"kind": "government", "name_zh": "兴义市自然资源局",
                      "name_en": "Xingyi Natural Resources Bureau (DEMO)",
                      "region_code": "522301"},
    "ceheng_forestry": {"kind": "government", "name_zh": "册亨县林业局",
                        "name_en": "Ceheng County Forestry Bureau (DEMO)",
                        "region_code": "522327"},
    "dalang": {"kind": "village_collective", "name_zh": "打狼村股份经济合作社",
               "name_en": "Dalang village collective (DEMO)", "region_code": "522326104201"},
    "xinhe": {"kind": "village_collective", "name_zh": "新合村股份经济合作社",
              "name_en": "Xinhe village collective (DEMO)", "region_code": "522326104202"},
    "kafa": {"kind": "village_collective", "name_zh": "卡法村股份经济合作社",
             "name_en": "Kafa village collective (DEMO)", "region_code": "522326110201"},
    "faha": {"kind": "village_collective", "name_zh": "发哈村股份经济合作社",
             "name_en": "Faha village collective (DEMO)", "region_code": "522301104201"},
    "banwan": {"kind": "village_collective", "name_zh": "板万村股份经济合作社",
               "name_en": "Banwan village collective (DEMO)", "region_code": "522327102201"},
    "coop": {"kind": "cooperative", "name_zh": "望谟县石屯镇油茶种植专业合作社",
             "name_en": "Shitun oil-tea growers' cooperative (DEMO)",
             "region_code": "522326104", "credit_code": "93522326MA6H00002F"},
    "ceheng_coop": {"kind": "cooperative", "name_zh": "册亨县丫他镇油茶专业合作社",
                    "name_en": "Yata oil-tea cooperative (DEMO)", "region_code": "522327102",
                    "credit_code": "93522327MA6H000044"},
    "household_1": {"kind": "household", "name_zh": "韦某甲", "name_en": "DEMO household 1",
                    "region_code": "522326104201", "id_number": "522326197803120424",
                    "bank_account": "6217995230000000017", "bank_name": "贵州农信 (DEMO)"},
    "household_2": {"kind": "household", "name_zh": "罗某乙", "name_en": "DEMO household 2",
                    "region_code": "522326104201", "id_number": "522326198511072832",
                    "bank_account": "6217995230000000025", "bank_name": "贵州农信 (DEMO)"},
    "household_3": {"kind": "household", "name_zh": "黄某丙", "name_en": "DEMO household 3",
                    "region_code": "522326104202", "id_number": "522326196209231610",
                    "bank_account": "6217995230000000033", "bank_name": "贵州农信 (DEMO)"},
    "household_4": {"kind": "household", "name_zh": "岑某丁", "name_en": "DEMO household 4",
                    "region_code": "522327102201", "id_number": "522327199002150522",
                    "bank_account": "6217995230000000041", "bank_name": "贵州农信 (DEMO)"},
    "plant": {"kind": "enterprise", "name_zh": "兴义火电厂 (DEMO)",
              "name_en": "Xingyi thermal power plant (DEMO)", "region_code": "522301",
              "credit_code": "91522301MA6H00001B", "sector": "thermal_power"},
    "trader": {"kind": "enterprise", "name_zh": "黔西南州林业碳汇服务有限公司 (DEMO)",
               "name_en": "Qianxinan forest-carbon services Ltd. (DEMO)",
               "region_code": "522300", "credit_code": "91522300MA6H000033",
               "sector": "trader"},
}

#: (key, holder, values, final status, {metric: (unit, [value per year in YEARS])})
#: (key, holder key, fields, status, monitoring series: metric -> (unit, values by year))
PRODUCTS: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = [
    ("dalang_carbon", "dalang", {
        "name_zh": "打狼村单株碳汇林", "name_en": "Dalang single-tree carbon forest (DEMO)",
        "type_code": "forest_carbon_sink", "region_code": "522326104201",
        "rights_type": "contract_management", "area_ha": 17.07, "latitude": 25.21,
        "longitude": 106.05, "quantity": 310.0, "quantity_unit": "tCO2/a",
        "quality_grade": "一级", "development_status": "traded"},
     "verified", {"carbon_sink": ("tCO2/a", [268.0, 281.5, 295.2, 302.8, 310.0]),
                  "tree_count": ("tree", [57600, 57600, 57600, 57600, 57600])}),
    ("xinhe_carbon", "xinhe", {
        "name_zh": "新合村单株碳汇林", "name_en": "Xinhe single-tree carbon forest (DEMO)",
        "type_code": "forest_carbon_sink", "region_code": "522326104202",
        "rights_type": "contract_management", "area_ha": 18.27, "latitude": 25.18,
        "longitude": 106.08, "quantity": 331.0, "quantity_unit": "tCO2/a",
        "development_status": "traded"},
     "verified", {"carbon_sink": ("tCO2/a", [290.4, 301.1, 312.9, 322.0, 331.0]),
                  "tree_count": ("tree", [61650, 61650, 61650, 61650, 61650])}),
    ("dalang_tea", "dalang", {
        "name_zh": "打狼村生态茶园", "name_en": "Dalang ecological tea garden (DEMO)",
        "type_code": "tea", "region_code": "522326104201", "rights_type": "ownership",
        "area_ha": 42.0, "latitude": 25.2, "longitude": 106.06, "quantity": 18.5,
        "quantity_unit": "t", "quality_grade": "一级", "development_status": "developed",
        "brand": "望谟毛尖 (DEMO)", "certifications": ["绿色食品 (DEMO)"]},
     "verified", {"output": ("t", [14.2, 15.0, 16.8, 17.9, 18.5]),
                  "area": ("ha", [40.0, 40.0, 42.0, 42.0, 42.0]),
                  "output_value": ("万元", [113.6, 126.0, 146.2, 161.1, 170.2])}),
    ("kafa_oil_tea", "kafa", {
        "name_zh": "卡法村油茶林", "name_en": "Kafa oil-tea camellia stand (DEMO)",
        "type_code": "oil_tea", "region_code": "522326110201", "rights_type": "ownership",
        "area_ha": 86.5, "latitude": 25.33, "longitude": 106.21, "quantity": 120.0,
        "quantity_unit": "t", "development_status": "developing"},
     "registered", {"output": ("t", [61.0, 78.0, 95.0, 108.0, 120.0])}),
    ("shitun_oil_tea", "coop", {
        "name_zh": "石屯镇油茶示范基地", "name_en": "Shitun oil-tea demonstration base (DEMO)",
        "type_code": "oil_tea", "region_code": "522326104", "rights_type": "contract_management",
        "area_ha": 133.3, "quantity": 2.4, "quantity_unit": "万斤",
        "development_status": "developed", "brand": "望谟油茶 (DEMO)"},
     "verified", {"output": ("万斤", [1.6, 1.9, 2.1, 2.2, 2.4])}),
    ("household_fungi", "household_1", {
        "name_zh": "韦某甲林下菌种植地", "name_en": "Demo household under-forest fungi plot (DEMO)",
        "type_code": "understory_fungi", "region_code": "522326104201",
        "rights_type": "contract_management", "area_ha": 0.8, "quantity": 1.2,
        "quantity_unit": "t", "development_status": "developed"},
     "verified", {"output": ("t", [0.7, 0.9, 1.0, 1.1, 1.2])}),
    ("mashan_water", "wangmo_bureau", {
        "name_zh": "麻山水源涵养区", "name_en": "Mashan water-conservation area (DEMO)",
        "type_code": "water_conservation_area", "region_code": "522326110",
        "rights_type": "ownership", "area_ha": 5320.0, "latitude": 25.35, "longitude": 106.25,
        "quantity": 2180.0, "quantity_unit": "万m3/a", "development_status": "not_developed"},
     "verified", {"water_conservation": ("万m3/a", [2050.0, 2110.0, 1985.0, 2240.0, 2180.0]),
                  "precipitation": ("mm", [1270.0, 1318.0, 1195.0, 1402.0, 1350.0])}),
    ("wusha_carbon", "xingyi_bureau", {
        "name_zh": "乌沙镇公益林碳汇地块", "name_en": "Wusha public-welfare forest carbon parcel "
        "(DEMO)", "type_code": "forest_carbon_sink", "region_code": "522301106",
        "rights_type": "ownership", "area_ha": 640.0, "grid_cell_id": "QXN-1km-0412",
        "quantity": 4100.0, "quantity_unit": "tCO2/a", "development_status": "developing"},
     "verified", {"carbon_sink": ("tCO2/a", [3720.0, 3850.0, 3930.0, 4020.0, 4100.0]),
                  "stock_volume": ("m3", [51200.0, 53100.0, 54900.0, 56800.0, 58600.0])}),
    ("faha_tea", "faha", {
        "name_zh": "发哈村茶园", "name_en": "Faha tea garden (DEMO)", "type_code": "tea",
        "region_code": "522301104201", "rights_type": "ownership", "area_ha": 25.0,
        "quantity": 9.6, "quantity_unit": "t", "development_status": "developed"},
     "suspended", {"output": ("t", [8.1, 8.7, 9.0, 9.3, 9.6])}),
    ("wanfenglin", "xingyi_bureau", {
        "name_zh": "万峰林喀斯特景观", "name_en": "Wanfenglin karst landscape (DEMO)",
        "type_code": "karst_landscape", "region_code": "522301", "rights_type": "ownership",
        "area_ha": 2000.0, "latitude": 25.03, "longitude": 104.87, "quantity": 320.0,
        "quantity_unit": "万人次/a", "development_status": "developed",
        "brand": "万峰林 (DEMO numbers)"},
     "verified", {"visits": ("万人次", [120.0, 165.0, 140.0, 290.0, 320.0]),
                  "tourism_revenue": ("亿元", [8.2, 11.5, 9.8, 21.6, 24.3])}),
    ("banwan_oil_tea", "banwan", {
        "name_zh": "板万村油茶林", "name_en": "Banwan oil-tea camellia stand (DEMO)",
        "type_code": "oil_tea", "region_code": "522327102201", "rights_type": "ownership",
        "area_ha": 210.0, "quantity": 260.0, "quantity_unit": "t",
        "development_status": "developed", "brand": "册亨油茶 (DEMO)"},
     "verified", {"output": ("t", [180.0, 205.0, 228.0, 247.0, 260.0])}),
    ("yata_oil_tea", "ceheng_coop", {
        "name_zh": "丫他镇油茶基地", "name_en": "Yata oil-tea base (DEMO)", "type_code": "oil_tea",
        "region_code": "522327102", "rights_type": "contract_management", "area_ha": 330.0,
        "development_status": "developing"},
     "registered", {}),
    ("banwan_household", "household_4", {
        "name_zh": "岑某丁承包林地", "name_en": "Demo household timber plot (DEMO)",
        "type_code": "timber_forest", "region_code": "522327102201",
        "rights_type": "contract_management", "area_ha": 3.4, "quantity": 410.0,
        "quantity_unit": "m3", "development_status": "not_developed"},
     "draft", {}),
    ("qiaoma_timber", "ceheng_forestry", {
        "name_zh": "巧马镇国有用材林", "name_en": "Qiaoma state timber forest (DEMO)",
        "type_code": "timber_forest", "region_code": "522327103", "rights_type": "ownership",
        "area_ha": 1250.0, "quantity": 98000.0, "quantity_unit": "m3",
        "development_status": "developing"},
     "verified", {"stock_volume": ("m3", [88000.0, 90500.0, 93100.0, 95600.0, 98000.0]),
                  "carbon_sink": ("tCO2/a", [6400.0, 6550.0, 6700.0, 6820.0, 6950.0])}),
]

#: monthly visits of the karst landscape in the last demo year (万人次, DEMO)
MONTHLY_VISITS = [18.0, 31.0, 22.0, 25.0, 33.0, 21.0, 30.0, 36.0, 24.0, 41.0, 22.0, 17.0]

_PATH = {"draft": [], "registered": ["submit"], "verified": ["submit", "verify"],
         "suspended": ["submit", "verify", "suspend"]}


def load(session: Session, actor: Principal) -> list[str]:
    """Create the demo dataset (once: a second call changes nothing); returns summary lines."""
    lines = [f"regions: {load_reference_regions(session)} reference regions added, "
             f"{load_national_regions(session)} of the national table (GB/T 2260)"]
    if session.get(Region, REGIONS[0][0]) is not None:
        return [*lines, "catalog demo data already present: nothing added"]
    for code, name_zh, name_en in REGIONS:
        regions.create_region(session, actor, code=code, name_zh=name_zh, name_en=name_en,
                              source="demo")
    party_ids = {}
    for key, values in PARTIES.items():
        party = parties.create_party(session, actor, {**values, "attributes": dict(DEMO)})
        party_ids[key] = party.id
    records = 0
    for key, holder, values, status, series in PRODUCTS:
        product = products.create_product(session, actor, {
            **values, "holder_party_id": party_ids[holder],
            "external_code": f"DEMO-{key}", "attributes": {**DEMO, "demo_key": key}})
        for transition in _PATH[status]:
            products.transition_product(
                session, actor, product.id, transition,
                reason="DEMO: ownership under review" if transition == "suspend" else None)
        for metric, (unit, values_by_year) in series.items():
            for year, value in zip(YEARS, values_by_year, strict=True):
                monitoring.create_record(session, actor, product.id, {
                    "period_year": year, "metric": metric, "value": value, "unit": unit,
                    "method": "statistical_yearbook" if metric in ("output_value",
                                                                   "tourism_revenue")
                    else "field_survey", "source": DEMO_SOURCE})
                records += 1
        if key == "wanfenglin":
            for month, value in enumerate(MONTHLY_VISITS, start=1):
                monitoring.create_record(session, actor, product.id, {
                    "period_year": YEARS[-1], "period_month": month, "metric": "visits",
                    "value": value, "unit": "万人次", "method": "grid_monitoring",
                    "source": DEMO_SOURCE})
                records += 1
    lines += [f"catalog: {len(REGIONS)} demo townships and villages (made-up codes)",
              f"catalog: {len(PARTIES)} demo parties, {len(PRODUCTS)} demo products, "
              f"{records} demo monitoring records ({YEARS[0]}-{YEARS[-1]})"]
    return lines


def trader_party_id(session: Session) -> int | None:
    """The party the demo trader token acts for: the demo thermal-power plant."""
    return session.scalar(sa.select(Party.id).where(
        Party.credit_code == PARTIES["plant"]["credit_code"]))


def demo_counts(session: Session) -> dict[str, int]:
    """How much demo data is stored (for tests and the README)."""
    return {
        "products": session.scalar(sa.select(sa.func.count()).select_from(Product)) or 0,
        "records": session.scalar(sa.select(sa.func.count()).select_from(MonitoringRecord))
        or 0,
    }
