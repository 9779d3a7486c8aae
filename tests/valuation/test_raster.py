"""The raster route on small GeoTIFFs the tests write: masking, cell areas (UTM, EPSG:4326),
zone rasterisation, reclassification, range checks, and the windowed and Dask routes against the
in-memory grid route (`grid.compute` on a DataFrame of every cell)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from tests.valuation.rasters import ORIGIN, box, soil_factors, write_geojson, write_gpkg, write_tif
from valuation import grid, raster, zones

SCOPE = ["522300", "522326", "522327", "522301"]
INDICATORS = ["R-SOIL", "R-WCON", "R-CARB", "R-O2"]


def _inputs(paths, **changes) -> raster.RasterInputs:
    values = {"factors": {k: str(v) for k, v in paths.items() if k != "land_cover"},
              "land_cover": str(paths["land_cover"]),
              "reclassification": zones.shipped_reclassification("gbt21010"),
              "zone_code": "522326"}
    values.update(changes)
    return raster.RasterInputs(**values)


def _in_memory(paths, indicators, *, region="522326", area=900.0, zone=None) -> pd.DataFrame:
    """The grid route on a DataFrame of the cells every indicator can use (no nodata)."""
    import rasterio

    columns = {}
    for name, path in paths.items():
        with rasterio.open(path) as dataset:
            values = dataset.read(1).astype("float64")
            if name != "land_cover":
                values[values == dataset.nodata] = np.nan
            columns[name] = values.ravel()
    frame = pd.DataFrame(columns)
    reclass = zones.shipped_reclassification("gbt21010").mapping
    frame["ecosystem_type"] = [reclass[int(c)] for c in frame.pop("land_cover")]
    frame["region_code"] = region if zone is None else zone.ravel()
    frame["area_m2"] = area
    results = []
    for code in indicators:
        needed = grid.REQUIRED_COLUMNS[code]
        usable = frame.dropna(subset=list(needed))
        results.append(grid.compute(usable, [code]).quantities)
    return pd.concat(results).sort_values(["region_code", "ecosystem_type", "indicator_code"]) \
        .reset_index(drop=True)


def _assert_same(result: pd.DataFrame, expected: pd.DataFrame, rel: float = 1e-12) -> None:
    merged = result.merge(expected, on=["region_code", "ecosystem_type", "indicator_code",
                                        "item", "unit"], suffixes=("", "_expected"),
                          how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged
    np.testing.assert_allclose(merged["quantity"], merged["quantity_expected"], rtol=rel,
                               atol=0)


# --- masking -----------------------------------------------------------------------------------


def test_nodata_from_metadata_is_masked_not_a_number(tmp_path):
    paths = soil_factors(tmp_path)
    plan = raster.plan(_inputs(paths), INDICATORS, grid.GridOptions(), known_regions=SCOPE)
    result = raster.aggregate(plan, raster.compute_windowed(plan))
    # -9999 in R (cell 0,0) and in C (cell 1,2): two cells left out of R-SOIL only
    _assert_same(result.quantities, _in_memory(paths, INDICATORS))
    soil_cells = raster.compute_windowed(plan)[plan.row("R-SOIL:cells")].sum()
    assert soil_cells == 6 * 8 - 2
    assert raster.compute_windowed(plan)[plan.row("R-WCON:cells")].sum() == 48
    assert any(w.startswith("R-SOIL: 2 cell(s)") and "rainfall_erosivity.tif 1" in w
               and "cover_management.tif 1" in w and "missing is not zero" in w
               for w in result.warnings)
    # a group whose every cell is masked gets no row at all (missing is not zero)
    r = np.full((2, 2), -9999.0)
    only = {"rainfall_erosivity": write_tif(tmp_path / "r.tif", r, nodata=-9999.0)}
    for name in ("soil_erodibility", "slope_length_steepness", "cover_management",
                 "support_practice"):
        only[name] = write_tif(tmp_path / f"{name}2.tif", np.full((2, 2), 0.5), nodata=-1)
    plan = raster.plan(raster.RasterInputs(factors={k: str(v) for k, v in only.items()},
                                           ecosystem_type="forest", zone_code="522326"),
                       ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    assert raster.aggregate(plan, raster.compute_windowed(plan)).quantities.empty


def test_a_nan_the_file_does_not_declare_is_an_error(tmp_path):
    paths = soil_factors(tmp_path)
    values = np.full((6, 8), 0.5)
    values[2, 3] = np.nan
    paths["support_practice"] = write_tif(tmp_path / "p_nan.tif", values, nodata=-9999.0)
    plan = raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    with pytest.raises(raster.RasterError, match=r"1 NaN cell\(s\) that the file does not "
                       r"declare as nodata"):
        raster.aggregate(plan, raster.compute_windowed(plan))


# --- cell areas --------------------------------------------------------------------------------


def test_cell_area_from_utm_is_the_transform_determinant():
    grid_ = raster.Grid(_wkt("EPSG:32648"), (30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1]), 4, 3)
    np.testing.assert_array_equal(raster.cell_area_m2(grid_, 0, 3), np.full((3, 1), 900.0))
    feet = raster.Grid(_wkt("EPSG:2227"), (10.0, 0.0, 6e6, 0.0, -10.0, 2e6), 2, 2)  # US ft
    assert raster.cell_area_m2(feet, 0, 1)[0, 0] == pytest.approx(100 * (1200 / 3937) ** 2,
                                                                  rel=1e-12)


def _wkt(code: str) -> str:
    from rasterio.crs import CRS

    return CRS.from_user_input(code).to_wkt()


def _ellipsoid_band_area(lat0: float, lat1: float, dlon: float) -> float:
    """Hand method, independent of the code: integrate the WGS 84 area element
    M(phi) N(phi) cos(phi) dphi dlambda (Simpson's rule, 200 intervals)."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phis = np.linspace(math.radians(lat0), math.radians(lat1), 201)
    s = np.sin(phis)
    m = a * (1 - e2) / (1 - e2 * s * s) ** 1.5
    n = a / np.sqrt(1 - e2 * s * s)
    integrand = m * n * np.cos(phis)
    h = phis[1] - phis[0]
    simpson = h / 3 * (integrand[0] + integrand[-1] + 4 * integrand[1:-1:2].sum()
                       + 2 * integrand[2:-1:2].sum())
    return simpson * math.radians(dlon)


def test_cell_area_from_epsg4326_is_geodesic_and_varies_with_latitude():
    # 0.01 degree cells; the top row spans 25.01-25.00 N (Wangmo), the next 25.00-24.99 N
    grid_ = raster.Grid(_wkt("EPSG:4326"), (0.01, 0.0, 106.0, 0.0, -0.01, 25.01), 3, 2)
    areas = raster.cell_area_m2(grid_, 0, 2)[:, 0]
    assert areas[0] == pytest.approx(_ellipsoid_band_area(25.00, 25.01, 0.01), rel=1e-9)
    assert areas[1] == pytest.approx(_ellipsoid_band_area(24.99, 25.00, 0.01), rel=1e-9)
    # by hand: ~ (0.01 deg x 110.77 km/deg) x (0.01 deg x 100.92 km/deg x cos) = 1.1179 km2
    assert areas[0] == pytest.approx(1.1179e6, rel=1e-3)
    assert areas[0] < areas[1]
    # pyproj.Geod on the densified cell (parallels drawn with 100 points) agrees
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    lons = np.concatenate([np.linspace(106.0, 106.01, 100), np.linspace(106.01, 106.0, 100)])
    lats = np.concatenate([np.full(100, 25.00), np.full(100, 25.01)])
    geodesic, _ = geod.polygon_area_perimeter(lons, lats)
    assert areas[0] == pytest.approx(abs(geodesic), rel=1e-7)
    # a 1 degree cell at the equator: a2 q / 2 x 1 deg, published 12,308.8 km2 (WGS 84)
    equator = raster.Grid(_wkt("EPSG:4326"), (1.0, 0.0, 0.0, 0.0, -1.0, 1.0), 1, 1)
    assert raster.cell_area_m2(equator, 0, 1)[0, 0] == pytest.approx(
        _ellipsoid_band_area(0.0, 1.0, 1.0), rel=1e-9)
    assert raster.cell_area_m2(equator, 0, 1)[0, 0] / 1e6 == pytest.approx(12308.8, rel=1e-4)


def test_a_geographic_grid_values_each_row_with_its_own_area(tmp_path):
    transform = Affine(0.01, 0.0, 106.0, 0.0, -0.01, 25.02)
    npp = write_tif(tmp_path / "npp.tif", np.full((2, 3), 500.0), crs="EPSG:4326",
                    transform=transform, nodata=-1)
    plan = raster.plan(raster.RasterInputs(factors={"npp": str(npp)}, ecosystem_type="forest",
                                           zone_code="522326"),
                       ["R-CARB"], grid.GridOptions(), known_regions=SCOPE)
    result = raster.aggregate(plan, raster.compute_windowed(plan))
    area = 3 * (_ellipsoid_band_area(25.01, 25.02, 0.01) + _ellipsoid_band_area(25.0, 25.01,
                                                                                  0.01))
    # 500 g/m2 x area x 1e-6 t/g x 1.63 tCO2/t
    assert result.quantities["quantity"].item() == pytest.approx(500 * area * 1e-6 * 1.63,
                                                                 rel=1e-9)


# --- zones -------------------------------------------------------------------------------------


def test_two_polygons_are_rasterised_by_cell_centre(tmp_path):
    # 4 x 6 cells of 30 m; the boundary at x0 + 80 m passes through column 2 (centre at 75 m)
    # so columns 0-2 go to Wangmo and 3-5 to Ceheng; Ceheng also misses the bottom row
    x0, y0 = ORIGIN
    polygons = write_geojson(tmp_path / "counties.geojson", [
        ({"code": "522326"}, box(x0, y0 - 120, x0 + 80, y0)),
        ({"code": 522327}, box(x0 + 80, y0 - 100, x0 + 180, y0)),
    ])
    npp = write_tif(tmp_path / "npp.tif", np.full((4, 6), 1000.0), nodata=-1)
    shapes = zones.read_polygons(polygons, "code")
    assert shapes.labels == ["522326", "522327"]
    plan = raster.plan(raster.RasterInputs(factors={"npp": str(npp)}, ecosystem_type="forest",
                                           zone_polygons=shapes),
                       ["R-CARB"], grid.GridOptions(), known_regions=SCOPE)
    total = raster.compute_windowed(plan, cells_per_block=6)
    assert list(total[plan.row("cells"), :2]) == [12.0, 9.0]  # row 3 of Ceheng: centre at -105
    result = raster.aggregate(plan, total)
    per_cell = 1000 * 900 * 1e-6 * 1.63
    assert result.quantities.set_index("region_code")["quantity"].to_dict() == pytest.approx(
        {"522326": 12 * per_cell, "522327": 9 * per_cell}, rel=1e-12)
    assert any("3 cell(s) lie outside every region" in w for w in result.warnings)
    # the same polygons in EPSG:4326 are reprojected onto the grid: same cells
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)

    def lonlat_box(*corners):
        x_min, y_min, x_max, y_max = corners
        ring = [to_lonlat.transform(x, y) for x, y in ((x_min, y_min), (x_max, y_min),
                                                        (x_max, y_max), (x_min, y_max),
                                                        (x_min, y_min))]
        return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}

    geographic = write_geojson(tmp_path / "lonlat.geojson", [
        ({"code": "522326"}, lonlat_box(x0, y0 - 120, x0 + 80, y0)),
        ({"code": "522327"}, lonlat_box(x0 + 80, y0 - 100, x0 + 180, y0))], crs="EPSG:4326")
    plan = raster.plan(raster.RasterInputs(
        factors={"npp": str(npp)}, ecosystem_type="forest",
        zone_polygons=zones.read_polygons(geographic, "code")), ["R-CARB"], grid.GridOptions(),
        known_regions=SCOPE)
    assert list(raster.compute_windowed(plan)[plan.row("cells"), :2]) == [12.0, 9.0]


def test_a_geopackage_layer_is_chosen_by_name(tmp_path):
    x0, y0 = ORIGIN
    counties = [({"code": "522326"}, box(x0, y0 - 120, x0 + 80, y0)),
                ({"code": "522327"}, box(x0 + 80, y0 - 120, x0 + 180, y0))]
    prefecture = [({"code": "522300"}, box(x0, y0 - 120, x0 + 180, y0))]
    path = write_gpkg(tmp_path / "regions.gpkg", {"xian": counties, "zhou": prefecture})
    with pytest.raises(zones.ZoneError, match=r"regions.gpkg holds 2 layers: name the one of "
                       r"the regions \(xian, zhou\)"):
        zones.read_polygons(path, "code")
    with pytest.raises(zones.ZoneError, match=r"has no layer 'xiang'; its layers: xian, zhou"):
        zones.read_polygons(path, "code", layer="xiang")
    county_layer = zones.read_polygons(path, "code", layer="xian")
    assert county_layer.labels == ["522326", "522327"] and county_layer.layer == "xian"
    assert zones.read_polygons(path, "code", layer="zhou").labels == ["522300"]
    npp = write_tif(tmp_path / "npp.tif", np.full((4, 6), 1000.0), nodata=-1)
    plans, digests = [], set()
    for layer in ("xian", "zhou"):
        inputs = raster.RasterInputs(factors={"npp": str(npp)}, ecosystem_type="forest",
                                     zone_polygons=zones.read_polygons(path, "code",
                                                                       layer=layer))
        plans.append(raster.plan(inputs, ["R-CARB"], grid.GridOptions(), known_regions=SCOPE))
        digests.add(raster.inputs_digest(inputs, ["R-CARB"], grid.GridOptions()))
        assert raster.describe_inputs(plans[-1], inputs)["zone_polygons"]["layer"] == layer
    assert len(digests) == 2  # the same file, another layer: other inputs
    assert [raster.aggregate(p, raster.compute_windowed(p)).quantities.region_code.tolist()
            for p in plans] == [["522326", "522327"], ["522300"]]
    # a file of one layer needs no name, and naming it changes nothing
    single = write_gpkg(tmp_path / "one.gpkg", {"xian": counties})
    assert zones.read_polygons(single, "code").labels == ["522326", "522327"]
    assert zones.read_polygons(single, "code", layer="xian").sha256 == \
        zones.read_polygons(single, "code").sha256


def test_overlapping_polygons_and_a_missing_code_attribute_are_refused(tmp_path):
    x0, y0 = ORIGIN
    npp = write_tif(tmp_path / "npp.tif", np.full((4, 6), 1000.0), nodata=-1)
    overlapping = write_geojson(tmp_path / "overlap.geojson", [
        ({"code": "522326"}, box(x0, y0 - 120, x0 + 100, y0)),
        ({"code": "522327"}, box(x0 + 50, y0 - 120, x0 + 180, y0))])
    plan = raster.plan(raster.RasterInputs(
        factors={"npp": str(npp)}, ecosystem_type="forest",
        zone_polygons=zones.read_polygons(overlapping, "code")), ["R-CARB"],
        grid.GridOptions(), known_regions=SCOPE)
    with pytest.raises(raster.RasterError, match=r"4 cell centre\(s\) lie in more than one"):
        raster.aggregate(plan, raster.compute_windowed(plan))
    with pytest.raises(zones.ZoneError, match=r"no attribute 'region_code' holding the region "
                       r"code; its attributes: code"):
        zones.read_polygons(overlapping, "region_code")
    with pytest.raises(zones.ZoneError, match="is not a polygon file"):
        zones.read_polygons(npp, "code")
    outside = write_geojson(tmp_path / "far.geojson", [({"code": "110101"},
                                                        box(x0, y0 - 60, x0 + 60, y0))])
    with pytest.raises(raster.RasterError, match="110101 unknown or outside the scope"):
        raster.plan(raster.RasterInputs(factors={"npp": str(npp)}, ecosystem_type="forest",
                                        zone_polygons=zones.read_polygons(outside, "code")),
                    ["R-CARB"], grid.GridOptions(), known_regions=SCOPE)


def test_a_zone_raster_of_region_codes_and_its_unknown_codes(tmp_path):
    codes = np.array([[522326, 522326, 522327], [522327, 0, 110101]], dtype="int32")
    zone = write_tif(tmp_path / "zones.tif", codes, nodata=0)
    npp = write_tif(tmp_path / "npp.tif", np.full((2, 3), 100.0), nodata=-1)
    inputs = raster.RasterInputs(factors={"npp": str(npp)}, ecosystem_type="forest",
                                 zone_raster=str(zone))
    plan = raster.plan(inputs, ["R-CARB"], grid.GridOptions(), known_regions=SCOPE)
    with pytest.raises(raster.RasterError, match=r"1 cell\(s\) with region codes unknown or "
                       r"outside the scope: 110101 \(1 cells\)"):
        raster.aggregate(plan, raster.compute_windowed(plan))
    codes[1, 2] = 522327
    plan = raster.plan(raster.RasterInputs(
        factors={"npp": str(npp)}, ecosystem_type="forest",
        zone_raster=str(write_tif(tmp_path / "zones2.tif", codes, nodata=0))),
        ["R-CARB"], grid.GridOptions(), known_regions=SCOPE)
    result = raster.aggregate(plan, raster.compute_windowed(plan))
    per_cell = 100 * 900 * 1e-6 * 1.63
    assert result.quantities.set_index("region_code")["quantity"].to_dict() == pytest.approx(
        {"522326": 2 * per_cell, "522327": 3 * per_cell}, rel=1e-12)


# --- reclassification --------------------------------------------------------------------------


def test_shipped_reclassification_tables():
    gbt = zones.shipped_reclassification("gbt21010")
    assert gbt.mapping[301] == "forest" and gbt.mapping[305] == "shrubland"
    assert gbt.mapping[101] == "farmland" and gbt.mapping[1101] == "wetland"
    assert gbt.mapping[701] == "urban" and gbt.mapping[1207] == "other"
    assert gbt.mapping[3] == "forest"  # first-level code 03
    cci = zones.shipped_reclassification("esa-cci")
    assert cci.mapping[50] == "forest" and cci.mapping[190] == "urban"
    assert cci.mapping[210] == "wetland" and cci.mapping[120] == "shrubland"
    with pytest.raises(zones.ZoneError, match="no shipped reclassification table 'corine'"):
        zones.shipped_reclassification("corine")


def test_an_invest_biophysical_table_reclassifies_with_its_lucode_column():
    table = ("lucode,description,usle_c,usle_p,ecosystem_type\n1,forest,0.003,1,forest\n"
             "2,built,0.9,1,城镇\n3,crop,0.2,0.5,cropland\n").encode()
    reclass = zones.read_reclassification(table, source="biophysical.csv")
    assert reclass.mapping == {1: "forest", 2: "urban", 3: "farmland"}
    assert reclass.ecosystems == ("forest", "farmland", "urban")


def test_bad_reclassification_tables_name_every_row():
    table = b"code,ecosystem_type\n1,forest\n1,urban\nx,forest\n4,moon\n"
    with pytest.raises(zones.ZoneError) as caught:
        zones.read_reclassification(table, source="t.csv")
    messages = [p["message"] for p in caught.value.problems]
    assert messages == ["t.csv row 3: code 1 is listed twice",
                        "t.csv row 4: code 'x' is not an integer land-cover code",
                        "t.csv row 5: unknown ecosystem type 'moon'; use one of forest, "
                        "shrubland, grassland, wetland, farmland, urban, desert, glacier, "
                        "marine, other, unspecified"]


def test_land_cover_codes_missing_from_the_table_are_listed_with_cell_counts(tmp_path):
    paths = soil_factors(tmp_path)
    land_cover = np.full((6, 8), 301, dtype="int16")
    land_cover[0, :3] = 9999
    land_cover[5, 7] = 42
    paths["land_cover"] = write_tif(tmp_path / "lc.tif", land_cover, nodata=0)
    plan = raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    with pytest.raises(raster.RasterError) as caught:
        raster.aggregate(plan, raster.compute_windowed(plan, cells_per_block=8))
    problem = caught.value.problems[0]
    assert problem["message"].endswith("land-cover codes missing from the reclassification "
                                       "table: 9999 (3 cells), 42 (1 cells)")
    assert problem["codes"] == [{"code": "9999", "cells": 3}, {"code": "42", "cells": 1}]


# --- range checks, alignment, files ------------------------------------------------------------


@pytest.mark.parametrize(("factor", "value", "message"), [
    ("rainfall_erosivity", -5.0, r"rainfall_erosivity\): 1 cell\(s\) out of range, must be >= 0 "
                                 r"outside nodata; first at row 3, column 4: -5"),
    ("cover_management", 1.5, r"cover_management\): 1 cell\(s\) out of range, must be in "
                              r"\[0, 1\] outside nodata; first at row 3, column 4: 1.5"),
])
def test_a_factor_out_of_its_physical_range_is_refused(tmp_path, factor, value, message):
    paths = soil_factors(tmp_path)
    import rasterio

    with rasterio.open(paths[factor]) as dataset:
        values = dataset.read(1)
    values[3, 4] = value
    paths[factor] = write_tif(tmp_path / "changed.tif", values, nodata=-9999.0)
    plan = raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    with pytest.raises(raster.RasterError, match=message):
        raster.aggregate(plan, raster.compute_windowed(plan))


def test_rasters_of_another_grid_need_a_named_resampling(tmp_path):
    paths = soil_factors(tmp_path)
    # K at 60 m over the same extent: 3 x 4 cells
    k = np.arange(12, dtype="float64").reshape(3, 4) * 0.001 + 0.01
    coarse = Affine(60.0, 0.0, ORIGIN[0], 0.0, -60.0, ORIGIN[1])
    paths["soil_erodibility"] = write_tif(tmp_path / "k60.tif", k, transform=coarse,
                                          nodata=-9999.0)
    with pytest.raises(raster.RasterError, match=r"k60.tif: EPSG:32648 4x3 cells of 60 x 60 "
                       r"from \(610000, 2.79e\+06\), the grid: EPSG:32648 8x6 of 30 x 30 from "
                       r"\(610000, 2.79e\+06\) \(CRS, transform or shape differ\): align it, "
                       r"or name a resampling method"):
        raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    plan = raster.plan(_inputs(paths, resampling="nearest"), ["R-SOIL"], grid.GridOptions(),
                       known_regions=SCOPE)
    assert plan.source("soil_erodibility").warp == "nearest"
    result = raster.aggregate(plan, raster.compute_windowed(plan, cells_per_block=16))
    # the same as K upsampled by hand (each 60 m cell -> 2 x 2 cells of 30 m)
    paths["soil_erodibility"] = write_tif(tmp_path / "k30.tif", np.kron(k, np.ones((2, 2))),
                                          nodata=-9999.0)
    _assert_same(result.quantities, _in_memory(paths, ["R-SOIL"]))


def test_a_file_that_is_not_a_raster_is_refused_as_such(tmp_path):
    paths = soil_factors(tmp_path)
    text = tmp_path / "erosivity.tif"
    text.write_text("region_code,rainfall_erosivity\n522326,4000\n", encoding="utf-8")
    paths["rainfall_erosivity"] = text
    with pytest.raises(raster.RasterError,
                       match=r"erosivity\.tif is not a GeoTIFF raster") as caught:
        raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)
    assert caught.value.not_a_raster
    with pytest.raises(raster.RasterError, match=r"R-SOIL need\(s\) a support_practice raster"):
        del paths["support_practice"]
        raster.plan(_inputs(paths), ["R-SOIL"], grid.GridOptions(), known_regions=SCOPE)


# --- InVEST outputs ----------------------------------------------------------------------------


def test_invest_outputs_are_summed_as_quantities_with_their_units(tmp_path):
    paths = soil_factors(tmp_path)
    avoided = np.arange(48, dtype="float64").reshape(6, 8)  # t per pixel, as SDR writes it
    avoided[0, 1] = -1.0  # nodata
    carbon = np.full((6, 8), 2.0)  # tC per ha
    inputs = raster.RasterInputs(
        land_cover=str(paths["land_cover"]),
        reclassification=zones.shipped_reclassification("gbt21010"), zone_code="522326",
        quantities=[raster.QuantityRaster(str(write_tif(tmp_path / "avoided_erosion.tif",
                                                        avoided, nodata=-1.0)), "R-SOIL", "t"),
                    raster.QuantityRaster(str(write_tif(tmp_path / "delta_c.tif", carbon,
                                                        nodata=-1.0)), "R-CARB", "tC",
                                          basis="per_ha")])
    plan = raster.plan(inputs, [], grid.GridOptions(), known_regions=SCOPE)
    frame = raster.aggregate(plan, raster.compute_windowed(plan)).quantities
    soil = frame[frame.indicator_code == "R-SOIL"]
    assert soil["quantity"].sum() == avoided[avoided != -1.0].sum() == 1127.0  # (0,1) masked
    assert set(soil["unit"]) == {"t"}
    # land cover column 0 and 6 are 301 (forest): 12 cells x 2 tC/ha x 0.09 ha
    carbon_rows = frame[frame.indicator_code == "R-CARB"].set_index("ecosystem_type")
    assert carbon_rows.loc["forest", "quantity"] == pytest.approx(12 * 2 * 0.09, rel=1e-12)
    assert set(carbon_rows["unit"]) == {"tC"}


# --- windowed, Dask, in memory -----------------------------------------------------------------


@pytest.mark.parametrize("cells_per_block", [1, 7, 16, 10_000])
def test_windowed_equals_the_in_memory_grid_route(tmp_path, cells_per_block):
    paths = soil_factors(tmp_path, shape=(13, 8), seed=cells_per_block)
    x0, y0 = ORIGIN
    polygons = zones.read_polygons(write_geojson(tmp_path / "c.geojson", [
        ({"code": "522326"}, box(x0, y0 - 390, x0 + 100, y0)),
        ({"code": "522327"}, box(x0 + 100, y0 - 390, x0 + 240, y0))]), "code")
    plan = raster.plan(_inputs(paths, zone_code=None, zone_polygons=polygons), INDICATORS,
                       grid.GridOptions(), known_regions=SCOPE)
    result = raster.aggregate(plan, raster.compute_windowed(plan, cells_per_block=cells_per_block))
    zone = np.where(np.arange(8) * 30 + 15 < 100, "522326", "522327")
    _assert_same(result.quantities, _in_memory(paths, INDICATORS, zone=np.tile(zone, (13, 1))))


def test_dask_threads_equal_windowed_and_in_memory(tmp_path):
    paths = soil_factors(tmp_path, shape=(20, 8), seed=3)
    plan = raster.plan(_inputs(paths), INDICATORS, grid.GridOptions(), known_regions=SCOPE)
    windowed = raster.compute_windowed(plan, cells_per_block=24)
    dask_total = raster.compute_dask(plan, cells_per_block=40, scheduler="threads")
    np.testing.assert_allclose(dask_total, windowed, rtol=1e-12, atol=0)
    _assert_same(raster.aggregate(plan, dask_total).quantities, _in_memory(paths, INDICATORS))


def test_dask_on_a_local_cluster_equals_windowed(tmp_path):
    paths = soil_factors(tmp_path, shape=(12, 8), seed=5)
    plan = raster.plan(_inputs(paths), ["R-SOIL", "R-CARB"], grid.GridOptions(),
                       known_regions=SCOPE)
    windowed = raster.compute_windowed(plan)
    clustered = raster.compute_dask(plan, cells_per_block=32, n_workers=1)
    np.testing.assert_allclose(clustered, windowed, rtol=1e-12, atol=0)


def test_per_cell_quantities_are_written_to_a_geotiff(tmp_path):
    import rasterio

    paths = soil_factors(tmp_path)
    plan = raster.plan(_inputs(paths), ["R-SOIL", "R-CARB"], grid.GridOptions(),
                       known_regions=SCOPE)
    target = tmp_path / "cells.tif"
    total = raster.compute_windowed(plan, cells_per_block=16, cells_path=str(target))
    with rasterio.open(target) as cells:
        assert cells.descriptions == ("R-SOIL", "R-CARB", "region_code")
        assert cells.tags(1)["unit"] == "t" and cells.crs.to_epsg() == 32648
        soil = cells.read(1)
        assert np.isnan(soil[0, 0]) and np.isnan(soil[1, 2])
        assert np.nansum(soil) == pytest.approx(total[plan.row("R-SOIL:quantity")].sum(),
                                                rel=1e-12)
        assert set(np.unique(cells.read(3))) == {522326.0}


# --- strips aligned to the files' tiles; the kernel's fast paths -------------------------------


def test_strips_align_to_the_tiles_and_equal_the_in_memory_route(tmp_path):
    rng = np.random.default_rng(11)
    shape = (40, 40)  # tiles of 16 x 16
    layers = {"npp": rng.uniform(300, 1200, shape),
              "precipitation_mm": rng.uniform(1100, 1500, shape),
              "runoff_mm": rng.uniform(200, 500, shape),
              "evapotranspiration_mm": rng.uniform(500, 800, shape)}
    # nodata in two strips: those take the masking path, the others the fast one
    layers["npp"][17, 3] = -9999.0
    layers["runoff_mm"][33, 5] = -9999.0
    paths = {name: write_tif(tmp_path / f"{name}.tif", values, nodata=-9999.0, dtype="float32",
                             tiled=True) for name, values in layers.items()}
    land_cover = np.array([301, 305, 101, 1101, 404])[rng.integers(0, 5, shape)]
    paths["land_cover"] = write_tif(tmp_path / "land_cover.tif", land_cover, nodata=0,
                                    dtype="int16", tiled=True)
    indicators = ["R-WCON", "R-CARB", "R-O2"]
    plan = raster.plan(_inputs(paths), indicators, grid.GridOptions(), known_regions=SCOPE)
    assert plan.tile_rows == 16
    expected = _in_memory(paths, indicators)
    for cells, rows in ((40, 1), (200, 4), (400, 8), (800, 16), (1400, 32), (10_000, 240)):
        assert raster.strip_rows(plan, cells) == rows
        result = raster.aggregate(plan, raster.compute_windowed(plan, cells_per_block=cells))
        _assert_same(result.quantities, expected)
    assert raster.gdal_cache_mib(plan) == raster.GDAL_CACHE_MIB + 1  # a row of tiles: 13 KB


def test_code_positions_by_table_and_by_search_agree():
    index = zones.CodeIndex.build([(522326, 0), (522327, 1), (301, 2)])
    wide = np.array([[522326, 301, 0], [522327, 9, 522326]], dtype="int32")  # 0 = nodata
    by_table = raster.positions(index, wide, 0.0)
    np.testing.assert_array_equal(by_table, [[0, 2, -1], [1, -2, 0]])
    narrow = np.array([522326, 522327, 522327, 0], dtype="int32")
    np.testing.assert_array_equal(raster.positions(index, narrow, 0.0), [0, 1, 1, -1])
    np.testing.assert_array_equal(raster.positions(index, narrow, None), [0, 1, 1, -2])
    beyond = np.array([522326, 2**30, -5], dtype="int64")  # a span too wide for a table
    np.testing.assert_array_equal(raster.positions(index, beyond, -5.0), [0, -2, -1])
    floats = np.array([522326.0, 301.5, np.nan, 301.0], dtype="float32")
    np.testing.assert_array_equal(raster.positions(index, floats, None), [0, -2, -1, 2])


def test_decode_masks_nodata_only_when_the_block_holds_it():
    raw = np.array([3.0, 1.0, 2.0], dtype="float32")
    values, masked, undeclared, low, high = raster.decode(raw, -9999.0)
    assert masked is None and undeclared is None and (low, high) == (1.0, 3.0)
    raw = np.array([3.0, -9999.0, np.nan], dtype="float32")
    out = np.empty(3)
    values, masked, undeclared, low, high = raster.decode(raw, -9999.0, out)
    assert values is out and np.isnan(values[1:]).all() and (low, high) == (3.0, 3.0)
    assert masked.tolist() == [False, True, False]
    assert undeclared.tolist() == [False, False, True]
    values, masked, undeclared, low, high = raster.decode(np.array([2, 0, 7], "int16"), 0)
    assert masked.tolist() == [False, True, False] and undeclared is None
    assert (low, high) == (2.0, 7.0)


# --- the Dask route's progress and per-cell GeoTIFF --------------------------------------------


def _assert_same_cells(path, expected_path) -> None:
    import rasterio

    with rasterio.open(path) as cells, rasterio.open(expected_path) as expected:
        assert cells.descriptions == expected.descriptions
        assert [cells.tags(b).get("unit") for b in cells.indexes] == \
            [expected.tags(b).get("unit") for b in expected.indexes]
        assert cells.crs == expected.crs and cells.transform == expected.transform
        np.testing.assert_allclose(cells.read(), expected.read(), rtol=1e-12, atol=0)


def test_dask_threads_write_the_per_cell_geotiff_and_report_progress(tmp_path):
    paths = soil_factors(tmp_path, shape=(20, 8), seed=7)
    plan = raster.plan(_inputs(paths), INDICATORS, grid.GridOptions(), known_regions=SCOPE)
    windowed = raster.compute_windowed(plan, cells_per_block=24,
                                       cells_path=str(tmp_path / "windowed.tif"))
    seen: list[int] = []
    total = raster.compute_dask(plan, cells_per_block=48, scheduler="threads",
                                progress=seen.append, cells_path=str(tmp_path / "dask.tif"))
    np.testing.assert_allclose(total, windowed, rtol=1e-12, atol=0)
    assert seen == [height * 8 for _row, height in raster.windows(plan, 48)]
    assert sum(seen) == 20 * 8 and len(seen) > 1
    _assert_same_cells(tmp_path / "dask.tif", tmp_path / "windowed.tif")


def test_dask_on_a_local_cluster_writes_the_per_cell_geotiff_under_a_lock(tmp_path):
    paths = soil_factors(tmp_path, shape=(12, 8), seed=9)
    plan = raster.plan(_inputs(paths), ["R-SOIL", "R-CARB"], grid.GridOptions(),
                       known_regions=SCOPE)
    windowed = raster.compute_windowed(plan, cells_path=str(tmp_path / "windowed.tif"))
    seen: list[int] = []
    clustered = raster.compute_dask(plan, cells_per_block=32, n_workers=1,
                                    progress=seen.append, cells_path=str(tmp_path / "dask.tif"))
    np.testing.assert_allclose(clustered, windowed, rtol=1e-12, atol=0)
    assert sorted(seen) == [32, 32, 32] and sum(seen) == 12 * 8
    _assert_same_cells(tmp_path / "dask.tif", tmp_path / "windowed.tif")
