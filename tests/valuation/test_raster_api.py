"""The raster route over HTTP: a zip of GeoTIFFs named by role, an InVEST output as one
GeoTIFF, a server-side path allowed by configuration, its own body limit, identical uploads,
and problem+json on bad input with nothing stored."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import sqlalchemy as sa
from affine import Affine

from tests.valuation.rasters import write_gpkg, write_tif
from valuation import sample_rasters
from valuation.models import QuantitySet

V = "/valuation/quantity-sets/rasters"
WANGMO, PREFECTURE = "522326", "522300"
SAMPLE = Affine(30, 0, 600_000, 0, -30, 2_790_000)


@pytest.fixture()
def sample(tmp_path):
    folder = tmp_path / "sample"
    sample_rasters.write_sample(folder, size=16)
    (folder / "counties.geojson").rename(folder / "zones.geojson")
    return folder


def _zip(folder, names=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            if names is None or path.name in names:
                archive.write(path, f"rasters/{path.name}")
    return buffer.getvalue()


def _post(client, headers, query, files):
    data = {name: (io.BytesIO(content), filename) for name, (content, filename) in files.items()}
    return client.post(f"{V}?{query}", data=data, headers=headers,
                       content_type="multipart/form-data")


def _sets(client) -> int:
    with client.application.extensions["ecovalue.db"].unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(QuantitySet))


def test_a_zip_of_geotiffs_and_county_polygons_becomes_a_quantity_set(client, tokens, sample):
    admin = tokens.admin
    body = _zip(sample)
    first = _post(client, admin, f"region_code={PREFECTURE}&year=2024&indicators=R-SOIL"
                  "&indicators=R-CARB", {"file": (body, "rasters.zip")})
    assert first.status_code == 201, first.get_json()
    created = first.get_json()
    assert created["source"] == "grid" and created["grid"]["route"] == "raster"
    assert created["grid"]["cells"] == 256 and created["filename"] == "rasters.zip"
    rows = client.get(f"/valuation/quantity-sets/{created['id']}/rows?page_size=100",
                      headers=admin).get_json()["items"]
    assert {r["region_code"] for r in rows} == {"522326", "522327"}
    assert {(r["indicator_code"], r["quantity_unit"]) for r in rows} == {("R-SOIL", "t"),
                                                                          ("R-CARB", "tCO2")}
    again = _post(client, admin, f"region_code={PREFECTURE}&year=2024&indicators=R-SOIL"
                  "&indicators=R-CARB", {"file": (body, "same-rasters.zip")})
    assert again.status_code == 200 and again.get_json()["id"] == created["id"]
    assert _sets(client) == 1


def test_an_invest_output_as_one_geotiff_for_a_county(client, tokens, tmp_path):
    avoided = write_tif(tmp_path / "avoided_erosion.tif", np.full((4, 5), 2.5), nodata=-1.0,
                        transform=SAMPLE)
    land_cover = write_tif(tmp_path / "lc.tif", np.full((4, 5), 301, dtype="int16"), nodata=0,
                           transform=SAMPLE)
    del land_cover  # one ecosystem type instead, as a county without land cover would
    response = _post(client, tokens.registrar(WANGMO),
                     f"region_code={WANGMO}&year=2024&zone_code={WANGMO}&ecosystem_type=forest"
                     "&quantity_indicator=R-SOIL&quantity_unit=t&quantity_basis=per_cell",
                     {"file": (avoided.read_bytes(), "avoided_erosion.tif")})
    assert response.status_code == 201, response.get_json()
    rows = client.get(f"/valuation/quantity-sets/{response.get_json()['id']}/rows",
                      headers=tokens.registrar(WANGMO)).get_json()["items"]
    assert [(r["indicator_code"], r["ecosystem_type"], r["quantity"], r["quantity_unit"])
            for r in rows] == [("R-SOIL", "forest", 50.0, "t")]


def test_bad_uploads_are_problems_and_store_nothing(client, tokens, sample, problem):
    admin = tokens.admin
    query = f"region_code={PREFECTURE}&year=2024"
    not_raster = _post(client, admin, query, {"file": (b"region_code,npp\n", "npp.tif")})
    body = problem(not_raster, 415, "unsupported-file")
    assert "is not a GeoTIFF raster" in body["detail"]
    (sample / "land_cover.tif").unlink()
    write_tif(sample / "land_cover.tif", np.full((16, 16), 77, dtype="int16"), nodata=0,
              transform=SAMPLE)
    missing = _post(client, admin, query, {"file": (_zip(sample), "r.zip")})
    body = problem(missing, 422, "grid-invalid")
    assert "land-cover codes missing from the reclassification table: 77 (256 cells)" in \
        body["detail"]
    no_field = _post(client, admin, query + "&zone_field=PAC", {"file": (_zip(sample), "r.zip")})
    assert "has no attribute 'PAC'" in problem(no_field, 422, "grid-invalid")["detail"]
    foreign = _post(client, tokens.registrar("522327"), query,
                    {"file": (_zip(sample), "r.zip")})
    problem(foreign, 403)
    neither = _post(client, admin, query, {})
    assert "one of file or path" in str(problem(neither, 422, "grid-invalid")["errors"])
    assert _sets(client) == 0


def test_server_paths_only_inside_the_configured_folders(client, tokens, sample, problem,
                                                         tmp_path):
    admin = tokens.admin
    query = f"region_code={PREFECTURE}&year=2024&indicators=R-SOIL"
    off = _post(client, admin, f"{query}&path={sample}", {})
    assert "no server-side raster folder is configured" in problem(off, 422)["detail"]
    client.application.config["RASTER_PATHS"] = str(tmp_path / "allowed")
    try:
        (tmp_path / "allowed").mkdir()
        outside = _post(client, admin, f"{query}&path={sample}", {})
        assert "outside the configured raster folders" in problem(outside, 422)["detail"]
        escape = _post(client, admin, f"{query}&path={tmp_path / 'allowed' / '..' / 'sample'}",
                       {})
        assert "outside the configured raster folders" in problem(escape, 422)["detail"]
        sample.rename(tmp_path / "allowed" / "sample")
        inside = _post(client, admin, f"{query}&path={tmp_path / 'allowed' / 'sample'}", {})
        assert inside.status_code == 201, inside.get_json()
    finally:
        client.application.config["RASTER_PATHS"] = ""


def test_rasters_have_their_own_body_limit(client, tokens, sample, problem):
    app = client.application
    body = _zip(sample)
    spreadsheet_limit = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = len(body) // 2
    try:
        accepted = _post(client, tokens.admin, f"region_code={PREFECTURE}&year=2024"
                         "&indicators=R-SOIL", {"file": (body, "r.zip")})
        assert accepted.status_code == 201, accepted.get_json()
        app.config["RASTER_MAX_UPLOAD_BYTES"] = len(body) // 2
        refused = _post(client, tokens.admin, f"region_code={PREFECTURE}&year=2024",
                        {"file": (body, "r.zip")})
        problem(refused, 413)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = spreadsheet_limit
        app.config["RASTER_MAX_UPLOAD_BYTES"] = 512 * 1024 * 1024


def test_zone_polygons_from_a_layer_of_an_uploaded_geopackage(client, tokens, sample, problem):
    admin = tokens.admin
    features = [(f["properties"], f["geometry"]) for f in
                json.loads((sample / "zones.geojson").read_text("utf-8"))["features"]]
    (sample / "zones.geojson").unlink()
    regions = write_gpkg(sample.parent / "regions.gpkg", {
        "townships": [({"region_code": "522326100"}, features[0][1])], "counties": features})
    rasters_zip = _zip(sample)
    query = f"region_code={PREFECTURE}&year=2024&indicators=R-CARB"
    unnamed = _post(client, admin, query, {"file": (rasters_zip, "r.zip"),
                                           "zones": (regions.read_bytes(), "regions.gpkg")})
    body = problem(unnamed, 422, "grid-invalid")
    assert "regions.gpkg holds 2 layers: name the one of the regions (townships, counties)" in \
        body["detail"]
    unknown = _post(client, admin, query + "&zone_layer=xiang",
                    {"file": (rasters_zip, "r.zip"),
                     "zones": (regions.read_bytes(), "regions.gpkg")})
    assert "has no layer 'xiang'" in problem(unknown, 422, "grid-invalid")["detail"]
    assert _sets(client) == 0
    named = _post(client, admin, query + "&zone_layer=counties",
                  {"file": (rasters_zip, "r.zip"), "zones": (regions.read_bytes(), "regions.gpkg")})
    assert named.status_code == 201, named.get_json()
    assert named.get_json()["grid"]["zone_polygons"] == {
        "file": "regions.gpkg", "field": "region_code", "features": 2, "layer": "counties"}
    rows = client.get(f"/valuation/quantity-sets/{named.get_json()['id']}/rows",
                      headers=admin).get_json()["items"]
    assert {r["region_code"] for r in rows} == {"522326", "522327"}
