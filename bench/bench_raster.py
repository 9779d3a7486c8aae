"""Benchmark: the raster route over a synthetic 30 m grid the size of Qianxinan Prefecture
(16,804 km2: about 18.7 M cells), every grid factor as a GeoTIFF, against a hand-written
rasterio-by-blocks + numpy kernel of the same arithmetic, measured in the same run; then the
Dask route on a local cluster over the same files.

    .venv/bin/python bench/bench_raster.py                 # 4,325 x 4,325 cells (18.7 M)
    .venv/bin/python bench/bench_raster.py --size 1000     # 1 M cells, for development

The files: 9 factors as float32 GeoTIFFs (RUSLE R K LS C P; precipitation, runoff, ET; NPP),
tiled 256 x 256, nodata -9999 in a corner of R and NPP; land cover in GB/T 21010 codes (int16);
a zone raster of the prefecture's eight county codes (int32). Both paths compute R-SOIL,
R-WCON, R-CARB and R-O2 per cell, mask nodata, and sum per county x ecosystem type; their totals
are compared (relative 1e-9). The route also checks every factor's physical range and counts
what it masks; that is the price of the ratio. The baseline runs twice: as first written
(strips of --block-cells cells, GDAL's default block cache of 5 % of the RAM) and with the
route's tile-aligned strips and bounded cache, so the ratio is also shown against the better
hand-written kernel; wall-clock and CPU-time (process_time) ratios are both printed, the latter
being less sensitive to a shared machine's load. Peak RSS is the process's maximum resident set
(getrusage), read after the route (which runs first; the files are written by a child
process, so writing them does not set it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from valuation import grid, raster, zones

COUNTIES = ("522301", "522302", "522323", "522324", "522325", "522326", "522327", "522328")
LAND_COVER = np.array([301, 305, 404, 103, 101, 1101, 701], dtype="int16")
FACTORS = ("rainfall_erosivity", "soil_erodibility", "slope_length_steepness",
           "cover_management", "support_practice", "precipitation_mm", "runoff_mm",
           "evapotranspiration_mm", "npp")
INDICATORS = ["R-SOIL", "R-WCON", "R-CARB", "R-O2"]
NODATA = -9999.0
STRIP = 256


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def write_grid(folder: Path, size: int) -> dict[str, Path]:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    transform = Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 2_900_000.0)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "crs": "EPSG:32648",
               "transform": transform, "tiled": True, "blockxsize": 256, "blockysize": 256}
    paths = {name: folder / f"{name}.tif" for name in (*FACTORS, "land_cover", "zones")}
    outputs = {name: rasterio.open(path, "w", dtype="float32", nodata=NODATA, **profile)
               for name, path in paths.items() if name in FACTORS}
    outputs["land_cover"] = rasterio.open(paths["land_cover"], "w", dtype="int16", nodata=0,
                                          **profile)
    outputs["zones"] = rasterio.open(paths["zones"], "w", dtype="int32", nodata=0, **profile)
    rng = np.random.default_rng(14)
    codes = np.array([int(c) for c in COUNTIES], dtype="int32")
    try:
        for row in range(0, size, STRIP):
            height = min(STRIP, size - row)
            shape = (height, size)
            window = Window(0, row, size, height)
            layers = {
                "rainfall_erosivity": rng.uniform(2000, 6000, shape),
                "soil_erodibility": rng.uniform(0.002, 0.05, shape),
                "slope_length_steepness": rng.gamma(2.0, 3.0, shape),
                "cover_management": rng.beta(2, 8, shape),
                "support_practice": rng.uniform(0.3, 1.0, shape),
                "precipitation_mm": rng.uniform(1100, 1500, shape),
                "runoff_mm": rng.uniform(200, 500, shape),
                "evapotranspiration_mm": rng.uniform(500, 800, shape),
                "npp": rng.uniform(300, 1200, shape),
            }
            if row == 0:
                for name in ("rainfall_erosivity", "npp"):
                    layers[name][:50, :50] = NODATA
            for name, values in layers.items():
                outputs[name].write(values.astype("float32"), 1, window=window)
            outputs["land_cover"].write(LAND_COVER[rng.integers(0, len(LAND_COVER), shape)],
                                        1, window=window)
            columns = np.minimum(np.arange(size) * len(codes) // size, len(codes) - 1)
            outputs["zones"].write(np.broadcast_to(codes[columns], shape), 1, window=window)
    finally:
        for dataset in outputs.values():
            dataset.close()
    return paths


def baseline(paths: dict[str, Path], block_cells: int, *, rows: int | None = None,
             cache_mib: int | None = None) -> np.ndarray:
    """Hand-written: rasterio by row strips, numpy formulas, nodata masked, bincount by
    county x ecosystem type. Returns sums [indicator, group]. `rows` and `cache_mib` give it
    the route's tile-aligned strips and bounded GDAL cache (default: strips of `block_cells`
    cells, GDAL's default cache)."""
    import contextlib

    import rasterio

    reclass = zones.shipped_reclassification("gbt21010")
    ecosystems = reclass.ecosystems
    lut = np.full(2000, -1, dtype=np.int64)
    for code, eco in reclass.mapping.items():
        lut[code] = ecosystems.index(eco)
    county_codes = np.array(sorted(int(c) for c in COUNTIES))
    groups = len(county_codes) * len(ecosystems)
    sums = np.zeros((4, groups + 1))
    env = rasterio.Env(GDAL_CACHEMAX=cache_mib) if cache_mib else contextlib.nullcontext()
    with env:
        return _baseline(paths, block_cells, rows, lut, county_codes, ecosystems, sums)


def _baseline(paths: dict[str, Path], block_cells: int, rows: int | None, lut: np.ndarray,
              county_codes: np.ndarray, ecosystems: tuple[str, ...], sums: np.ndarray,
              ) -> np.ndarray:
    import rasterio
    from rasterio.windows import Window

    groups = len(county_codes) * len(ecosystems)
    datasets = {name: rasterio.open(path) for name, path in paths.items()}
    try:
        width, height = datasets["zones"].width, datasets["zones"].height
        rows = rows or max(1, block_cells // width)
        area = 900.0
        for row in range(0, height, rows):
            window = Window(0, row, width, min(rows, height - row))
            read = {name: d.read(1, window=window).ravel() for name, d in datasets.items()}
            f = {name: read[name].astype(np.float64) for name in FACTORS}
            for name in FACTORS:
                f[name][read[name] == np.float32(NODATA)] = np.nan
            zone = np.searchsorted(county_codes, read["zones"])
            eco = lut[read["land_cover"]]
            group = np.where(eco >= 0, zone * len(ecosystems) + eco, groups)
            soil = f["rainfall_erosivity"] * f["soil_erodibility"] * \
                f["slope_length_steepness"] * (1 - f["cover_management"] *
                                               f["support_practice"]) * (area * 1e-4)
            water = (f["precipitation_mm"] - f["runoff_mm"] - f["evapotranspiration_mm"]) * \
                area * 1e-3
            dry = f["npp"] * area * 1e-6
            for index, values in enumerate((soil, water, 1.63 * dry, 1.19 * dry)):
                valid = ~np.isnan(values)
                sums[index] += np.bincount(group, weights=np.where(valid, values, 0.0),
                                           minlength=groups + 1)
    finally:
        for dataset in datasets.values():
            dataset.close()
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4325, help="cells per side (4,325: 18.7 M)")
    parser.add_argument("--block-cells", type=int, default=raster.DEFAULT_CELLS_PER_BLOCK)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    cells = args.size * args.size
    with tempfile.TemporaryDirectory(prefix="bench-raster-") as folder:
        started = time.perf_counter()
        # written by a child process, so that the peak RSS read below is the route's alone
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            paths = pool.submit(write_grid, Path(folder), args.size).result()
        size_mb = sum(p.stat().st_size for p in paths.values()) / 2**20
        print(f"grid: {args.size:,} x {args.size:,} = {cells:,} cells of 30 m "
              f"({cells * 900 / 1e6:,.0f} km2), {len(paths)} GeoTIFFs, {size_mb:,.0f} MiB, "
              f"written in {time.perf_counter() - started:.1f} s")
        inputs = raster.RasterInputs(
            factors={name: str(paths[name]) for name in FACTORS},
            land_cover=str(paths["land_cover"]),
            reclassification=zones.shipped_reclassification("gbt21010"),
            zone_raster=str(paths["zones"]))
        plan = raster.plan(inputs, INDICATORS, grid.GridOptions(),
                           known_regions=["522300", *COUNTIES])
        rss_before = peak_rss_mib()
        started, cpu = time.perf_counter(), time.process_time()
        total = raster.compute_windowed(plan, cells_per_block=args.block_cells)
        result = raster.aggregate(plan, total)
        route_s, route_cpu = time.perf_counter() - started, time.process_time() - cpu
        route_rss = peak_rss_mib()
        rows = raster.strip_rows(plan, args.block_cells)
        runs = {}
        for label, kwargs in (
                (f"baseline, strips of {max(1, args.block_cells // args.size)} rows, GDAL's "
                 "default cache", {}),
                (f"baseline, the route's strips ({rows} rows, tile-aligned) and GDAL cache "
                 f"({raster.gdal_cache_mib(plan)} MiB)",
                 {"rows": rows, "cache_mib": raster.gdal_cache_mib(plan)})):
            started, cpu = time.perf_counter(), time.process_time()
            hand = baseline(paths, args.block_cells, **kwargs)
            runs[label] = (time.perf_counter() - started, time.process_time() - cpu)
            for index, code in enumerate(INDICATORS):
                ours = result.quantities.loc[result.quantities.indicator_code == code,
                                             "quantity"].sum()
                theirs = hand[index, :-1].sum()
                assert abs(ours - theirs) <= 1e-9 * abs(theirs), (code, ours, theirs)
        print(f"raster route (windowed, strips of {rows} rows): {route_s:7.2f} s "
              f"(CPU {route_cpu:6.2f} s)  {cells / route_s:12,.0f} cells/s  peak RSS "
              f"{route_rss:,.0f} MiB (before: {rss_before:,.0f} MiB)")
        for label, (wall, cpu) in runs.items():
            print(f"{label}: {wall:7.2f} s (CPU {cpu:6.2f} s)  {cells / wall:12,.0f} cells/s  "
                  f"ratio route/baseline (throughput): {wall / route_s:.2f} "
                  f"(CPU time: {cpu / route_cpu:.2f})")
        print("aim: ratio >= 0.5 against either baseline, peak RSS < 1,024 MiB (wall-clock "
              "ratios are noisy on a shared machine; the CPU-time ratio less so)")
        frame = result.quantities
        totals = [f"{code} {frame.loc[frame.indicator_code == code, 'quantity'].sum():,.0f} "
                  f"{grid.UNITS[code]}" for code in INDICATORS]
        print("totals (equal to the baseline's to 1e-9): " + ", ".join(totals))
        if not args.no_dask:
            started = time.perf_counter()
            clustered = raster.compute_dask(plan, cells_per_block=args.block_cells,
                                            n_workers=args.dask_workers)
            dask_s = time.perf_counter() - started
            same = np.allclose(clustered, total, rtol=1e-12, atol=0)
            print(f"dask LocalCluster ({args.dask_workers} workers, start-up included): "
                  f"{dask_s:7.2f} s  {cells / dask_s:12,.0f} cells/s  equal to windowed: {same}")


if __name__ == "__main__":
    main()
