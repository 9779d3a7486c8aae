"""Carbon registry fixtures: a Wangmo world of regions, parties and verified forest parcels
with stem-volume records, built through the catalog's services; the registry's operator set."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from catalog.services import monitoring, parties, products, regions
from ecovalue.auth import system_principal
from ledger.carbon.services import credits, parameters, projects, reports

ADMIN = system_principal("carbon-test")
#: the clock of service-level tests: 12:00 in Shanghai on 20 March 2025
NOW = dt.datetime(2025, 3, 20, 4, 0, tzinfo=dt.UTC)
#: stem volume (m3) of the two parcels at the end of 2020 ... 2024
VOLUMES = {"north": [3000.0, 3300.0, 3600.0, 3900.0, 4200.0],
           "south": [1200.0, 1300.0, 1420.0, 1500.0, 1610.0]}
YEARS = (2020, 2021, 2022, 2023, 2024)


@dataclasses.dataclass
class World:
    bureau: int  # registry operator (government)
    collective: int  # project owner and developer
    household: int
    household_name: str
    plant: int  # thermal-power plant (a trader's party)
    buyer: int  # another enterprise
    parcels: dict[str, int]
    unverified: int
    other_county: int


def make_world(database) -> World:
    with database.unit_of_work() as s:
        regions.create_region(s, ADMIN, code="522326104", name_zh="石屯镇")
        regions.create_region(s, ADMIN, code="522326104201", name_zh="打狼村")
        regions.create_region(s, ADMIN, code="522301106", name_zh="乌沙镇")
        bureau = parties.create_party(s, ADMIN, {"kind": "government",
                                                 "name_zh": "黔西南州自然资源局",
                                                 "region_code": "522300"})
        collective = parties.create_party(s, ADMIN, {
            "kind": "village_collective", "name_zh": "打狼村股份经济合作社",
            "region_code": "522326104201"})
        household = parties.create_party(s, ADMIN, {
            "kind": "household", "name_zh": "韦小明", "region_code": "522326104201",
            "id_number": "522326197803120424"})
        plant = parties.create_party(s, ADMIN, {
            "kind": "enterprise", "name_zh": "兴义火电厂(测试)", "region_code": "522301",
            "credit_code": "91520000214434146R", "sector": "thermal_power"})
        buyer = parties.create_party(s, ADMIN, {
            "kind": "enterprise", "name_zh": "碳汇买家(测试)", "region_code": "522301",
            "credit_code": "914403001922038216"})
        ids = {}
        for key, holder in (("north", collective.id), ("south", household.id)):
            product = products.create_product(s, ADMIN, {
                "name_zh": f"打狼村造林地块{key}", "type_code": "forest_carbon_sink",
                "region_code": "522326104201", "holder_party_id": holder,
                "rights_type": "contract_management", "area_ha": 50.0 if key == "north"
                else 20.0})
            products.transition_product(s, ADMIN, product.id, "submit")
            products.transition_product(s, ADMIN, product.id, "verify")
            for year, volume in zip(YEARS, VOLUMES[key], strict=True):
                monitoring.create_record(s, ADMIN, product.id, {
                    "period_year": year, "metric": "stock_volume", "value": volume,
                    "unit": "m3", "method": "field_survey", "source": "test survey"})
            ids[key] = product.id
        draft = products.create_product(s, ADMIN, {
            "name_zh": "未核实地块", "type_code": "forest_carbon_sink",
            "region_code": "522326104201", "holder_party_id": collective.id,
            "rights_type": "ownership", "area_ha": 5.0})
        other = products.create_product(s, ADMIN, {
            "name_zh": "乌沙地块", "type_code": "forest_carbon_sink", "region_code": "522301106",
            "holder_party_id": plant.id, "rights_type": "ownership", "area_ha": 5.0})
        products.transition_product(s, ADMIN, other.id, "submit")
        products.transition_product(s, ADMIN, other.id, "verify")
        parameters.set_operator(s, ADMIN, bureau.id)
        return World(bureau.id, collective.id, household.id, "韦小明", plant.id, buyer.id, ids,
                     draft.id, other.id)


@pytest.fixture()
def world(database) -> World:
    return make_world(database)


def project_values(world: World, **overrides) -> dict:
    values = {
        "code": "WM-AR-001", "name_zh": "打狼村碳汇造林项目", "name_en": "Dalang afforestation",
        "methodology": "afforestation", "region_codes": ["522326104201"],
        "developer_party_id": world.collective, "owner_party_id": world.collective,
        "parcel_ids": [world.parcels["north"], world.parcels["south"]],
        "species_composition": {"cunninghamia": 0.6, "pinus_massoniana": 0.4},
        "crediting_start": dt.date(2021, 1, 1), "crediting_end": dt.date(2050, 12, 31),
        "documents": [{"title": "项目设计文件 PDD", "reference": "PDD-2021-001"}]}
    values.update(overrides)
    return values


def registered_project(database, world: World, **overrides) -> int:
    with database.unit_of_work() as s:
        project = projects.create_project(s, ADMIN, project_values(world, **overrides), now=NOW)
        for name in ("validate", "register", "activate"):
            projects.transition_project(s, ADMIN, project.id, name, now=NOW)
        return project.id


def issued_batch(database, world: World, *, start=dt.date(2021, 1, 1),
                 end=dt.date(2023, 12, 31), **overrides) -> str:
    """A registered project, a verified report over `start`..`end`, and its issued batch;
    returns the batch's asset code."""
    project_id = registered_project(database, world, **overrides)
    with database.unit_of_work() as s:
        report = reports.file_report(s, ADMIN, project_id, period_start=start, period_end=end,
                                     source="catalog", now=NOW)
        reports.verify_report(s, ADMIN, report.id, now=NOW)
        return credits.issue(s, ADMIN, report.id, now=NOW).asset_code
