"""The raster route from the console and the service: GeoTIFFs + county polygons +
reclassification -> a stored quantity set whose aggregates are printed; identical inputs give the
set already stored; bad inputs store nothing."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import sqlalchemy as sa
from affine import Affine

from tests.valuation.rasters import write_gpkg, write_tif
from valuation import grid, raster, sample_rasters, zones
from valuation.models import QuantitySet
from valuation.services import rasters

PREFECTURE = "522300"
SAMPLE = Affine(30, 0, 600_000, 0, -30, 2_790_000)  # the grid of valuation/sample_rasters.py


@pytest.fixture()
def sample(tmp_path):
    sample_rasters.write_sample(tmp_path, size=24)
    return tmp_path


def _factor_args(folder):
    names = ["rainfall_erosivity", "soil_erodibility", "slope_length_steepness",
             "cover_management", "support_practice", "precipitation_mm", "runoff_mm",
             "evapotranspiration_mm", "npp"]
    args = []
    for name in names:
        args += ["--factor", f"{name}={folder / (name + '.tif')}"]
    return args


def _sets(session) -> int:
    count = session.scalar(sa.select(sa.func.count()).select_from(QuantitySet))
    session.rollback()
    return count


def test_grid_from_geotiffs_and_county_polygons_prints_and_stores_the_aggregates(
        cli, sample, session):
    cells = sample / "cells.tif"
    result = cli("valuation", "grid", "--region", PREFECTURE, "--year", "2024",
                 *_factor_args(sample), "--land-cover", str(sample / "land_cover.tif"),
                 "--reclass", "gbt21010", "--zones", str(sample / "counties.geojson"),
                 "--write-cells", str(cells))
    assert result.exit_code == 0, result.output
    set_id = int(re.search(r"^quantity set (\d+): (\d+) aggregates from 576 cells of "
                           r"EPSG:32648 \(0\.518 km2\)", result.output, re.M).group(1))
    assert re.search(r"^R-SOIL\s+522326\s+forest\s+[\d,]+\.\d{4} t\s*$", result.output, re.M)
    assert re.search(r"^R-WCON\s+522327\s+farmland\s+[\d,]+\.\d{4} m3\s*$", result.output, re.M)
    assert re.search(r"^R-CARB\s+522327\s+forest\s+[\d,]+\.\d{4} tCO2\s*$", result.output, re.M)
    assert "missing is not zero" in result.output  # the nodata corner of R and NPP
    stored = session.get(QuantitySet, set_id)
    assert stored.source == "grid" and stored.grid["route"] == "raster"
    assert stored.grid["edge_rule"] == "cell centre"
    assert stored.grid["zone_polygons"] == {"file": "counties.geojson", "field": "region_code",
                                            "features": 2}
    soil = sum(r.quantity for r in stored.rows if r.indicator_code == "R-SOIL")
    session.rollback()  # end the read, so the commands below can write (SQLite)
    # the printed aggregates are the stored rows; `rows` lists them again
    listed = cli("valuation", "rows", str(set_id))
    assert listed.exit_code == 0
    assert f"quantity set {set_id}: grid | region 522300 | year 2024" in listed.output
    mapped = cli("valuation", "raster-map", str(cells), "--indicator", "R-SOIL", "--output",
                 str(sample / "soil.png"))
    assert mapped.exit_code == 0, mapped.output
    assert (sample / "soil.png").read_bytes()[:4] == b"\x89PNG"
    county_totals = [float(v.replace(",", "")) for v in
                     re.findall(r"^\s+52232[67]\s+([\d,.]+) t$", mapped.output, re.M)]
    assert sum(county_totals) == pytest.approx(soil, abs=1e-4)  # printed to 4 decimals
    from valuation.raster_maps import county_totals as totals_of

    assert sum(totals_of(str(cells), "R-SOIL")[0].values()) == pytest.approx(soil, rel=1e-12)
    # the same rasters again: the stored set, not a copy
    again = cli("valuation", "grid", "--region", PREFECTURE, "--year", "2024",
                *_factor_args(sample), "--land-cover", str(sample / "land_cover.tif"),
                "--reclass", "gbt21010", "--zones", str(sample / "counties.geojson"))
    assert again.exit_code == 0, again.output
    assert f"quantity set {set_id} already holds these rasters" in again.output
    assert _sets(session) == 1


def test_a_folder_of_rasters_named_by_role(cli, sample, session):
    (sample / "counties.geojson").rename(sample / "zones.geojson")
    result = cli("valuation", "grid", "--region", PREFECTURE, "--year", "2024", "--dir",
                 str(sample), "--indicator", "R-SOIL")
    assert result.exit_code == 0, result.output
    assert re.search(r"^R-SOIL\s+522326\s+shrubland\s+", result.output, re.M)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: (s / "cover_management.tif").write_text("not a raster"),
     "cover_management.tif is not a GeoTIFF raster"),
    (lambda s: write_tif(s / "rainfall_erosivity.tif", np.full((24, 24), -3.0), transform=SAMPLE),
     "rainfall_erosivity.tif (rainfall_erosivity): 576 cell(s) out of range, must be >= 0"),
    (lambda s: write_tif(s / "land_cover.tif", np.full((24, 24), 77, dtype="int16"), nodata=0,
                         transform=SAMPLE),
     "land-cover codes missing from the reclassification table: 77 (576 cells)"),
    (lambda s: write_tif(s / "npp.tif", np.full((12, 12), 500.0), nodata=-1,
                         transform=Affine(60, 0, 600_000, 0, -60, 2_790_000)),
     "npp.tif: EPSG:32648 12x12 cells of 60 x 60 from (600000, 2.79e+06), the grid: "
     "EPSG:32648 24x24 of 30 x 30"),
])
def test_bad_rasters_are_named_and_nothing_is_stored(cli, sample, session, change, message):
    change(sample)
    result = cli("valuation", "grid", "--region", PREFECTURE, "--year", "2024",
                 *_factor_args(sample), "--land-cover", str(sample / "land_cover.tif"),
                 "--reclass", "gbt21010", "--zones", str(sample / "counties.geojson"))
    assert result.exit_code == 1
    assert message in result.output
    assert _sets(session) == 0


def test_a_polygon_file_without_the_code_attribute_is_refused(cli, sample, session):
    result = cli("valuation", "grid", "--region", PREFECTURE, "--year", "2024",
                 *_factor_args(sample), "--land-cover", str(sample / "land_cover.tif"),
                 "--reclass", "gbt21010", "--zones", str(sample / "counties.geojson"),
                 "--zone-field", "PAC")
    assert result.exit_code == 1
    assert ("counties.geojson has no attribute 'PAC' holding the region code; its attributes: "
            "region_code, name_zh, name_en") in result.output
    assert _sets(session) == 0


def test_the_service_refuses_a_zone_outside_the_scope(session, system, sample):
    inputs = raster.RasterInputs(
        factors={"npp": str(sample / "npp.tif")}, ecosystem_type="forest",
        zone_polygons=zones.read_polygons(sample / "counties.geojson", "region_code"))
    from valuation.errors import GridInvalid

    with pytest.raises(GridInvalid, match="522327 unknown or outside the scope"):
        rasters.create_from_rasters(session, system, region_code="522326", year=2024,
                                    inputs=inputs, indicators=["R-CARB"],
                                    options=grid.GridOptions())
    assert _sets(session) == 0
    outcome = rasters.create_from_rasters(
        session, system, region_code=PREFECTURE, year=2024, inputs=inputs,
        indicators=["R-CARB"], engine="dask", options=grid.GridOptions())
    assert not outcome.existing and outcome.quantity_set.grid["engine"] == "dask"


def test_a_geopackage_of_several_layers_needs_the_layer_named(cli, sample, session):
    features = [(f["properties"], f["geometry"]) for f in
                json.loads((sample / "counties.geojson").read_text("utf-8"))["features"]]
    whole = {"type": "Polygon", "coordinates": [[[600_000, 2_789_280], [600_720, 2_789_280],
                                                 [600_720, 2_790_000], [600_000, 2_790_000],
                                                 [600_000, 2_789_280]]]}
    regions = write_gpkg(sample / "regions.gpkg", {
        "counties": features,
        "prefecture": [({"region_code": PREFECTURE, "name_zh": "黔西南州",
                         "name_en": "Qianxinan"}, whole)]})
    args = ["valuation", "grid", "--region", PREFECTURE, "--year", "2024", "--factor",
            f"NPP={sample / 'npp.tif'}", "--land-cover", str(sample / "land_cover.tif"),
            "--reclass", "gbt21010", "--zones", str(regions)]
    unnamed = cli(*args)
    assert unnamed.exit_code != 0
    assert "regions.gpkg holds 2 layers: name the one of the regions (counties, prefecture)" \
        in unnamed.output
    assert _sets(session) == 0
    named = cli(*args, "--layer", "counties")
    assert named.exit_code == 0, named.output
    assert re.search(r"^R-CARB\s+522327\s+forest\s+[\d,]+\.\d{4} tCO2\s*$", named.output, re.M)
    whole_set = cli(*args, "--zone-layer", "prefecture")
    assert whole_set.exit_code == 0, whole_set.output
    assert re.search(r"^R-CARB\s+522300\s+forest\s+[\d,]+\.\d{4} tCO2\s*$", whole_set.output,
                     re.M)
    assert not re.search(r"^R-CARB\s+52232[67]", whole_set.output, re.M)
    assert _sets(session) == 2
