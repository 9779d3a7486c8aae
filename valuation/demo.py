"""Demo valuation data for Wangmo (望谟县, 522326): a DEMO price book (the default book plus
local parameters), DEMO quantities for 2023 and 2024, and two published runs; and a quantity set
of Qianxinan (522300) from the SAMPLE rasters of `valuation/sample_rasters.py` (GeoTIFF factors,
GB/T 21010 land cover, the Wangmo and Ceheng polygons), so that the raster route is seen working.

Every number here is made up for demonstration (order of magnitude only) and labelled DEMO;
none of it is an official statistic or an approved price.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ecovalue.auth import Principal
from valuation.models import PriceBook, ValuationRun
from valuation.services import prices, quantities, runs

WANGMO = "522326"
PREFECTURE = "522300"  #: Qianxinan, holding Wangmo and Ceheng (the SAMPLE rasters' counties)
#: cells per side of the demo's SAMPLE rasters (60 x 60 cells of 30 m: 3.24 km2, well under 1 s)
DEMO_RASTER_SIZE = 60
DEMO_RASTER_NOTE = ("DEMO raster route: SAMPLE rasters written by valuation/sample_rasters.py "
                    "(synthetic factors, not survey data)")
DEMO_BOOK = "demo-2024"
DEMO_NOTE = "DEMO quantities: illustrative orders of magnitude, not official statistics"
DEMO_SOURCE = "DEMO value for the demonstration dataset, not for use"

#: local parameters the reference file does not give (DEMO values, 2024 prices)
DEMO_ENTRIES: list[dict[str, Any]] = [
    {"parameter": "soil_bulk_density", "value": 1.32, "unit": "t/m3"},
    {"parameter": "soil_n_content", "value": 0.0012, "unit": "1"},
    {"parameter": "soil_p_content", "value": 0.0005, "unit": "1"},
    {"parameter": "nitrogen_price", "value": 5000.0, "unit": "yuan/t", "price_year": 2024},
    {"parameter": "phosphorus_price", "value": 4000.0, "unit": "yuan/t", "price_year": 2024},
    {"parameter": "water_tariff.domestic", "value": 2.15, "unit": "yuan/m3", "price_year": 2024},
    {"parameter": "water_tariff.industrial", "value": 2.90, "unit": "yuan/m3",
     "price_year": 2024},
    {"parameter": "water_tariff.agricultural", "value": 0.12, "unit": "yuan/m3",
     "price_year": 2024},
    {"parameter": "grid_electricity_price", "value": 0.2977, "unit": "yuan/kWh",
     "price_year": 2024},
    {"parameter": "electricity_price", "value": 0.4556, "unit": "yuan/kWh", "price_year": 2024},
    {"parameter": "travel_cost", "value": 310.0, "unit": "yuan/visit", "price_year": 2024},
]

#: (indicator, item, ecosystem type, quantity, unit, origin) for 2024 (DEMO)
DEMO_ROWS_2024: list[tuple[str, str, str, float, str, str]] = [
    ("P-AGR", "", "farmland", 31.8, "亿元", "local"),
    ("P-FOR", "", "forest", 6.4, "亿元", "local"),
    ("P-LIV", "", "grassland", 18.2, "亿元", "local"),
    ("P-FIS", "", "wetland", 1.1, "亿元", "local"),
    ("P-WAT", "domestic", "wetland", 0.21, "亿m³", "local"),
    ("P-WAT", "industrial", "wetland", 0.12, "亿m³", "local"),
    ("P-WAT", "agricultural", "wetland", 0.72, "亿m³", "local"),
    ("P-ENE", "", "wetland", 16.3, "亿kWh", "local"),
    ("P-ENE", "", "wetland", 2.1, "亿kWh", "outside"),
    ("R-WCON", "", "forest", 9.8, "亿m³", "local"),
    ("R-WCON", "", "shrubland", 2.1, "亿m³", "local"),
    ("R-WCON", "", "grassland", 0.9, "亿m³", "local"),
    ("R-WCON", "", "farmland", 0.6, "亿m³", "local"),
    ("R-SOIL", "", "forest", 2850, "万t", "local"),
    ("R-SOIL", "", "shrubland", 620, "万t", "local"),
    ("R-SOIL", "", "grassland", 240, "万t", "local"),
    ("R-SOIL", "", "farmland", 110, "万t", "local"),
    ("R-FLOOD", "", "wetland", 1.6, "亿m³", "local"),
    ("R-AIR", "SO2", "forest", 1850, "t", "local"),
    ("R-AIR", "NOx", "forest", 620, "t", "local"),
    ("R-AIR", "dust", "forest", 2.4, "万t", "local"),
    ("R-WQ", "COD", "wetland", 3100, "t", "local"),
    ("R-WQ", "NH3-N", "wetland", 260, "t", "local"),
    ("R-WQ", "TN", "wetland", 410, "t", "local"),
    ("R-CARB", "", "forest", 182, "万tCO2", "local"),
    ("R-CARB", "", "shrubland", 31, "万tCO2", "local"),
    ("R-CARB", "", "grassland", 9, "万tCO2", "local"),
    ("R-CARB", "", "farmland", 6, "万tCO2", "local"),
    ("R-O2", "", "forest", 133, "万t", "local"),
    ("R-CLIM", "", "forest", 96, "亿kWh", "local"),
    ("R-CLIM", "", "wetland", 24, "亿kWh", "local"),
    ("C-REC", "", "forest", 980, "万人次", "local"),
]
#: 2023 differs by these factors (DEMO), to show a comparison
DEMO_CHANGE_2023 = {"R-WCON": 0.94, "R-CARB": 0.97, "C-REC": 0.86, "P-AGR": 0.95,
                    "R-SOIL": 0.98, "R-CLIM": 0.96}
DEMO_CONTEXT = {
    2024: {"region_code": WANGMO, "gdp": {"value": 110.0, "unit": "亿元"},
           "area": {"value": 3006, "unit": "km2"}, "population": {"value": 32.5, "unit": "万人"}},
    2023: {"region_code": WANGMO, "gdp": {"value": 104.0, "unit": "亿元"},
           "area": {"value": 3006, "unit": "km2"}, "population": {"value": 32.6, "unit": "万人"}},
}


def demo_rows(year: int) -> list[dict[str, Any]]:
    """The DEMO quantity rows of Wangmo for 2024, or 2023 (scaled)."""
    rows = []
    for code, item, eco, quantity, unit, origin in DEMO_ROWS_2024:
        factor = DEMO_CHANGE_2023.get(code, 1.0) if year == 2023 else 1.0
        rows.append({"region_code": WANGMO, "year": year, "indicator": code,
                     "item": item or None, "ecosystem_type": eco,
                     "quantity": round(quantity * factor, 6), "unit": unit, "origin": origin,
                     "note": "DEMO"})
    return rows


#: the sub-items the upload template lists on its second sheet (read by nobody: a reference)
SUB_ITEM_TEMPLATE = (
    ("R-SOIL", "sediment", "减少泥沙淤积", "t (soil) or m3 (silt)",
     "t: Q x sediment_share / soil_bulk_density x dredging_cost; m3: Q x dredging_cost"),
    ("R-SOIL", "nitrogen", "减少氮面源污染", "t (N)", "Q x nitrogen_price"),
    ("R-SOIL", "phosphorus", "减少磷面源污染", "t (P)", "Q x phosphorus_price"),
    ("R-FLOOD", "lake", "湖泊", "m3", "Q x reservoir_cost"),
    ("R-FLOOD", "reservoir", "水库", "m3 (0.35 x capacity)", "Q x reservoir_cost"),
    ("R-FLOOD", "marsh", "沼泽", "m3 (0.3 m x area)", "Q x reservoir_cost"),
    ("R-CLIM", "transpiration", "植被蒸腾", "kWh", "Q x electricity_price"),
    ("R-CLIM", "evaporation", "水面蒸发", "kWh", "Q x electricity_price"),
    ("R-CARB", "", "", "tCO2 or tC (x 44/12 exactly)", "Q x carbon_price (per tCO2 or tC)"),
)


def demo_workbook(year: int = 2024) -> bytes:
    """The DEMO rows as the XLSX a county would upload (also a template for new users)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "quantities"
    columns = ["region_code", "year", "indicator", "item", "ecosystem_type", "quantity", "unit",
               "origin", "note"]
    sheet.append(columns)
    for row in demo_rows(year):
        sheet.append([row[c] for c in columns])
    # the national method's sub-items: each its own row (item), never beside the whole
    reference = workbook.create_sheet("sub-items (子项)")
    reference.append(["indicator", "item", "项目 (accepted too)", "unit", "valued as"])
    for sub_item in SUB_ITEM_TEMPLATE:
        reference.append(list(sub_item))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def load(session: Session, actor: Principal) -> list[str]:
    """Load the demo valuation dataset (idempotent: skipped if the DEMO book exists)."""
    lines = prices.ensure_reference_data(session)
    if session.scalar(sa.select(PriceBook.id).where(PriceBook.version == DEMO_BOOK)):
        return [*lines, "valuation demo already loaded"]
    prices.create_book(session, actor, version=DEMO_BOOK, based_on=prices.DEFAULT_VERSION,
                       title="DEMO price book: default book + DEMO local parameters (2024)",
                       note="DEMO: local parameters are invented for the demonstration")
    prices.upsert_entries(session, actor, DEMO_BOOK, [
        {"price_year": None, "index_series": None, **entry,
         **({"index_series": prices.DEFAULT_SERIES} if entry.get("price_year") else {}),
         "confirmation": "to-confirm", "source": DEMO_SOURCE} for entry in DEMO_ENTRIES])
    prices.publish_book(session, actor, DEMO_BOOK)
    lines.append(f"valuation: price book {DEMO_BOOK} (DEMO) published")
    run_ids = []
    for year in (2023, 2024):
        quantity_set = quantities.create_from_rows(session, actor, region_code=WANGMO,
                                                   year=year, rows=demo_rows(year),
                                                   note=DEMO_NOTE)
        run = runs.create_run(session, actor, region_code=WANGMO, year=year,
                              quantity_set_ids=[quantity_set.id], price_book_version=DEMO_BOOK,
                              base_year=2024, context=[DEMO_CONTEXT[year]],
                              title=f"Wangmo GEP {year} (DEMO)")
        runs.publish_run(session, actor, run.id)
        run_ids.append(run.id)
        lines.append(f"valuation: run {run.id} Wangmo GEP {year} (DEMO) = "
                     f"{run.gep_current / 1e8:,.2f} 亿元, published")
    lines.append(f"valuation: compare with GET /valuation/comparisons?base={run_ids[0]}&other="
                 f"{run_ids[1]}")
    lines.extend(load_raster_set(session, actor))
    return lines


def load_raster_set(session: Session, actor: Principal) -> list[str]:
    """A quantity set of Qianxinan 2024 from the SAMPLE rasters: the raster route over
    GeoTIFFs written to a temporary folder (factors with a nodata corner, land cover, the two
    county polygons), as `ecovalue valuation grid --factor ...` stores it."""
    from valuation import raster, sample_rasters, zones
    from valuation.services import rasters

    with tempfile.TemporaryDirectory(prefix="ecovalue-demo-rasters-") as name:
        folder = Path(name)
        sample_rasters.write_sample(folder, size=DEMO_RASTER_SIZE)
        inputs = raster.RasterInputs(
            factors={factor: str(folder / f"{factor}.tif")
                     for factor in sample_rasters.factors(1)},
            land_cover=str(folder / "land_cover.tif"),
            reclassification=zones.read_reclassification(
                (folder / "reclassification.csv").read_bytes(), source="reclassification.csv"),
            zone_polygons=zones.read_polygons(folder / "counties.geojson", "region_code"))
        outcome = rasters.create_from_rasters(session, actor, region_code=PREFECTURE,
                                              year=2024, inputs=inputs, note=DEMO_RASTER_NOTE,
                                              filename="sample-rasters (DEMO)")
    created = outcome.quantity_set
    record = created.grid or {}
    return [f"valuation: quantity set {created.id} of Qianxinan 2024 from SAMPLE rasters "
            f"(raster route: {len(inputs.factors)} factor GeoTIFFs, land cover, 2 county "
            f"polygons; {record.get('cells', 0):,} cells of 30 m): {created.row_count} "
            f"aggregates; see `ecovalue valuation rows {created.id}`"]


def demo_run_ids(session: Session) -> list[int]:
    return list(session.scalars(sa.select(ValuationRun.id).where(
        ValuationRun.title.like("%(DEMO)%")).order_by(ValuationRun.id)))
