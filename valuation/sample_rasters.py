"""SAMPLE rasters to try the raster route (`ecovalue valuation sample-rasters DIR`): a 30 m grid
in UTM 48N over two counties, synthetic but physically plausible factors, GB/T 21010 land cover,
county polygons and the reclassification table. Not survey data."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

NODATA = -9999.0
CRS = "EPSG:32648"
#: top-left corner of the sample grid (UTM 48N, near Wangmo/Ceheng)
ORIGIN = (600_000.0, 2_790_000.0)
CELL_M = 30.0
COUNTIES = (("522326", "望谟县", "Wangmo"), ("522327", "册亨县", "Ceheng"))
#: GB/T 21010 codes of the sample land cover and their share of cells
LAND_COVER = ((301, 0.45), (305, 0.15), (404, 0.10), (103, 0.15), (101, 0.05), (1101, 0.04),
              (701, 0.06))


def _write(path: Path, array: np.ndarray, nodata: float | None, dtype: str) -> Path:
    import rasterio
    from affine import Affine

    transform = Affine(CELL_M, 0.0, ORIGIN[0], 0.0, -CELL_M, ORIGIN[1])
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0],
                       count=1, dtype=dtype, crs=CRS, transform=transform, nodata=nodata,
                       tiled=array.shape[1] >= 256 and array.shape[0] >= 256,
                       compress="deflate") as dataset:
        dataset.write(array.astype(dtype), 1)
    return path


def factors(size: int, seed: int = 14) -> dict[str, np.ndarray]:
    """Factor arrays of a size x size grid (float32-representable), a corner of nodata."""
    rng = np.random.default_rng(seed)
    shape = (size, size)
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    layers = {
        "rainfall_erosivity": 3500 + 1500 * x + rng.normal(0, 100, shape),
        "soil_erodibility": np.clip(0.02 + 0.01 * y + rng.normal(0, 0.003, shape), 0.001, None),
        "slope_length_steepness": np.clip(rng.gamma(2.0, 3.0, shape), 0.0, None),
        "cover_management": np.clip(rng.beta(2, 8, shape), 0.0, 1.0),
        "support_practice": np.clip(rng.uniform(0.3, 1.0, shape), 0.0, 1.0),
        "precipitation_mm": 1200 + 200 * y + rng.normal(0, 20, shape),
        "runoff_mm": 300 + 80 * x + rng.normal(0, 10, shape),
        "evapotranspiration_mm": 650 + rng.normal(0, 25, shape),
        "npp": np.clip(800 + rng.normal(0, 150, shape), 0.0, None),
    }
    corner = max(1, size // 20)
    for name in ("rainfall_erosivity", "npp"):
        layers[name][:corner, :corner] = NODATA
    return {name: values.astype("float32") for name, values in layers.items()}


def land_cover(size: int, seed: int = 21) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = np.array([c for c, _ in LAND_COVER], dtype="int16")
    shares = np.array([s for _, s in LAND_COVER])
    return codes[rng.choice(len(codes), size=(size, size), p=shares / shares.sum())]


def counties_geojson(size: int) -> dict:
    """Two counties side by side, split at 0.55 of the width (off the cell centres)."""
    left, top = ORIGIN
    right, bottom = left + size * CELL_M, top - size * CELL_M
    split = left + (round(size * 0.55) + 0.3) * CELL_M
    rings = ([[left, bottom], [split, bottom], [split, top], [left, top], [left, bottom]],
             [[split, bottom], [right, bottom], [right, top], [split, top], [split, bottom]])
    return {"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32648"}},
            "features": [{"type": "Feature",
                          "properties": {"region_code": code, "name_zh": zh, "name_en": en},
                          "geometry": {"type": "Polygon", "coordinates": [ring]}}
                         for (code, zh, en), ring in zip(COUNTIES, rings)]}


def write_sample(folder: Path, *, size: int = 60) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [_write(folder / f"{name}.tif", values, NODATA, "float32")
               for name, values in factors(size).items()]
    written.append(_write(folder / "land_cover.tif", land_cover(size), 0, "int16"))
    polygons = folder / "counties.geojson"
    polygons.write_text(json.dumps(counties_geojson(size), ensure_ascii=False), "utf-8")
    table = folder / "reclassification.csv"
    table.write_bytes(resources.files("valuation").joinpath(
        "reference/landcover_gbt21010.csv").read_bytes())
    return [*written, polygons, table]
