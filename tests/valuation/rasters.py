"""Small GeoTIFFs and polygon files the raster tests write themselves (rasterio, pyogrio)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

UTM48N = "EPSG:32648"  # Guizhou lies in UTM zone 48N (102-108 E)
#: a 30 m grid whose top-left corner is near Wangmo (106.1 E, 25.2 N in UTM 48N)
ORIGIN = (610_000.0, 2_790_000.0)


def write_tif(path: Path, array: np.ndarray, *, crs: str = UTM48N,
              transform: Affine | None = None, nodata: float | None = None,
              dtype: str | None = None, tiled: bool = False) -> Path:
    array = np.asarray(array)
    transform = transform or Affine(30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1])
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1,
               "dtype": dtype or array.dtype.name, "crs": crs, "transform": transform,
               "nodata": nodata}
    if tiled:
        profile.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array.astype(profile["dtype"]), 1)
    return path


def write_geojson(path: Path, features: list[tuple[dict, dict]], crs: str = UTM48N) -> Path:
    """features: (properties, geometry) pairs; the CRS is written as a named CRS member."""
    document = {"type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": crs.replace(
                    "EPSG:", "urn:ogc:def:crs:EPSG::")}},
                "features": [{"type": "Feature", "properties": p, "geometry": g}
                             for p, g in features]}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1],
                                                [x0, y0]]]}


def soil_factors(folder: Path, shape: tuple[int, int] = (6, 8), seed: int = 1,
                 nodata: float = -9999.0) -> dict[str, Path]:
    """RUSLE factors of a small grid (a few cells nodata in R and C), land cover in GB/T 21010
    codes, and water-balance and NPP factors."""
    rng = np.random.default_rng(seed)
    height, width = shape
    r = rng.uniform(2000, 6000, shape)
    r[0, 0] = nodata
    c = rng.uniform(0.0, 1.0, shape)
    c[1, 2] = nodata
    layers = {
        "rainfall_erosivity": r, "soil_erodibility": rng.uniform(0.002, 0.05, shape),
        "slope_length_steepness": rng.uniform(0.5, 30, shape), "cover_management": c,
        "support_practice": rng.uniform(0.2, 1.0, shape),
        "precipitation_mm": rng.uniform(1100, 1500, shape),
        "runoff_mm": rng.uniform(200, 500, shape),
        "evapotranspiration_mm": rng.uniform(500, 800, shape),
        "npp": rng.uniform(300, 1200, shape),
    }
    paths = {name: write_tif(folder / f"{name}.tif", values, nodata=nodata, dtype="float32")
             for name, values in layers.items()}
    land_cover = np.tile(np.array([301, 305, 101, 1101, 404, 701, 301, 103][:width]),
                         (height, 1)).astype("int16")
    paths["land_cover"] = write_tif(folder / "land_cover.tif", land_cover, nodata=0)
    return paths


def write_gpkg(path: Path, layers: dict[str, list[tuple[dict, dict]]],
               crs: str = UTM48N) -> Path:
    """A GeoPackage of several polygon layers: layer name -> (properties, geometry) pairs (the
    properties of one layer share their keys)."""
    import pyogrio.raw
    import shapely

    for name, features in layers.items():
        keys = list(features[0][0])
        geometry = shapely.to_wkb(np.array([shapely.geometry.shape(g) for _, g in features],
                                           dtype=object))
        pyogrio.raw.write(str(path), geometry, [np.array([p[k] for p, _ in features],
                                                         dtype=object) for k in keys],
                          keys, layer=name, driver="GPKG", geometry_type="Polygon", crs=crs,
                          append=path.exists())
    return path
