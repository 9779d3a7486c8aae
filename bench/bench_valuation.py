"""Benchmark: the grid route of GEP valuation on 1,000,000 cells with every grid indicator,
against a hand-written numpy kernel doing the same arithmetic, measured in the same run.

    .venv/bin/python bench/bench_valuation.py                 # 1,000,000 cells
    .venv/bin/python bench/bench_valuation.py --cells 200000 --repeat 5

The engine (`valuation.grid.compute`) does what a real run does: checks every input column
(missing columns, NaN/inf, negatives, fractions above 1, zero areas, unknown ecosystem types),
normalises ecosystem types, computes water conservation, RUSLE soil retention, RWEQ sand
fixation, CO2 fixed and O2 released from NPP, climate regulation, and air/water purification
from removal rates capped by emissions, then sums per region x ecosystem type. The kernel does
only the arithmetic and the sums, on the same arrays, with no checks. Both results are compared.

Prints cells/s of each, the ratio engine/kernel (speed; 1.0 = as fast as the kernel) and the
peak memory of each (tracemalloc, numpy allocations included).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from valuation import grid

REGIONS = ["522301", "522322", "522323", "522324", "522325", "522326", "522327", "522328"]
ECOSYSTEMS = ["forest", "shrubland", "grassland", "wetland", "farmland", "urban"]
RATES = {"forest": {"SO2": 8.0, "NOx": 3.0, "dust": 120.0, "COD": 1.0},
         "shrubland": {"SO2": 4.0, "NOx": 1.5, "dust": 60.0},
         "grassland": {"SO2": 2.0, "dust": 30.0},
         "wetland": {"COD": 25.0, "NH3-N": 2.0, "TN": 3.0, "TP": 0.4},
         "farmland": {"COD": 0.5}}
EMISSIONS = {region: {"SO2": 1200.0, "NOx": 900.0, "dust": 30000.0, "COD": 4000.0,
                      "NH3-N": 300.0, "TN": 500.0, "TP": 60.0} for region in REGIONS}


def make_cells(n: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "region_code": pd.Categorical.from_codes(rng.integers(0, len(REGIONS), n), REGIONS),
        "ecosystem_type": pd.Categorical.from_codes(rng.integers(0, len(ECOSYSTEMS), n),
                                                    ECOSYSTEMS),
        "area_m2": np.full(n, 900.0),
        "precipitation_mm": rng.uniform(1100, 1500, n),
        "runoff_mm": rng.uniform(100, 400, n),
        "evapotranspiration_mm": rng.uniform(400, 800, n),
        "rainfall_erosivity": rng.uniform(3000, 6000, n),
        "soil_erodibility": rng.uniform(0.01, 0.05, n),
        "slope_length_steepness": rng.uniform(0.5, 15, n),
        "cover_management": rng.uniform(0.0, 0.5, n),
        "support_practice": rng.uniform(0.3, 1.0, n),
        "weather_factor": rng.uniform(1, 30, n),
        "erodible_fraction": rng.uniform(0.1, 0.6, n),
        "crust_factor": rng.uniform(0.2, 0.9, n),
        "roughness_factor": rng.uniform(0.3, 1.0, n),
        "vegetation_factor": rng.uniform(0.01, 1.0, n),
        "npp": rng.uniform(300, 1400, n),
        "et_hot_mm": rng.uniform(50, 250, n),
    })


OPTIONS = grid.GridOptions(removal_rates=RATES, emissions=EMISSIONS)
INDICATORS = list(grid.GRID_INDICATORS)


def engine(cells: pd.DataFrame) -> pd.DataFrame:
    return grid.compute(cells, INDICATORS, OPTIONS).quantities


def kernel(cells: pd.DataFrame) -> dict[tuple[str, str, str, str], float]:
    """The same arithmetic by hand: raw arrays, one bincount per quantity, no checks."""
    r_codes = cells["region_code"].cat.codes.to_numpy().astype(np.int64)
    e_codes = cells["ecosystem_type"].cat.codes.to_numpy().astype(np.int64)
    n_eco = len(ECOSYSTEMS)
    group = r_codes * n_eco + e_codes
    size = len(REGIONS) * n_eco
    c = {name: cells[name].to_numpy() for name in cells.columns[2:]}
    a = c["area_m2"]
    sums = {}
    sums["R-WCON"] = np.bincount(group, (c["precipitation_mm"] - c["runoff_mm"]
                                         - c["evapotranspiration_mm"]) * a * 1e-3, size)
    sums["R-SOIL"] = np.bincount(group, c["rainfall_erosivity"] * c["soil_erodibility"]
                                 * c["slope_length_steepness"]
                                 * (1 - c["cover_management"] * c["support_practice"])
                                 * a * 1e-4, size)
    base = c["weather_factor"] * c["erodible_fraction"] * c["crust_factor"] * \
        c["roughness_factor"]
    z = 50.0

    def loss(product):  # type: ignore[no-untyped-def]
        s = 150.71 * product ** -0.3711
        return 2 * z / (s * s) * 109.8 * product * np.exp(-(z / s) ** 2)

    sums["R-SAND"] = np.bincount(group, (loss(base) - loss(base * c["vegetation_factor"]))
                                 * a * 1e-3, size)
    dry = np.bincount(group, c["npp"] * a, size) * 1e-6
    sums["R-CARB"] = 1.63 * dry
    sums["R-O2"] = 1.19 * dry
    sums["R-CLIM"] = np.bincount(group, c["et_hot_mm"] * a * (2260.0 / 3600.0 / 3.0), size)
    area_km2 = np.bincount(group, a, size) * 1e-6
    out = {}
    for code, values in sums.items():
        for g in range(size):
            out[(REGIONS[g // n_eco], ECOSYSTEMS[g % n_eco], code, "")] = values[g]
    for code, items in (("R-AIR", grid.AIR_ITEMS), ("R-WQ", grid.WATER_ITEMS)):
        for item in items:
            rates = np.array([RATES.get(e, {}).get(item, np.nan) for e in ECOSYSTEMS])
            if np.isnan(rates).all():
                continue
            removal = (np.nan_to_num(rates)[np.arange(size) % n_eco] * area_km2).reshape(
                len(REGIONS), n_eco)
            totals = removal.sum(axis=1)
            caps = np.array([EMISSIONS[r][item] for r in REGIONS])
            scale = np.where(totals > caps, caps / totals, 1.0)
            removal *= scale[:, None]
            for ri, region in enumerate(REGIONS):
                for ei, eco in enumerate(ECOSYSTEMS):
                    out[(region, eco, code, item)] = removal[ri, ei]
    return out


def timed(function, cells: pd.DataFrame, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = function(cells)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_memory(function, cells: pd.DataFrame) -> int:  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    function(cells)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cells = make_cells(args.cells)
    input_mb = cells.memory_usage(deep=True).sum() / 2**20
    print(f"grid route: {args.cells:,} cells x {len(INDICATORS)} grid indicators "
          f"({', '.join(INDICATORS)}); input {input_mb:,.0f} MiB")
    engine(cells.iloc[:1000])  # warm up imports and caches
    kernel(cells.iloc[:1000])
    engine_time, result = timed(engine, cells, args.repeat)
    kernel_time, expected = timed(kernel, cells, args.repeat)
    table = result.set_index(["region_code", "ecosystem_type", "indicator_code", "item"])[
        "quantity"]
    worst = max(abs(table[key] - value) / max(abs(value), 1e-9)
                for key, value in expected.items() if key in table.index)
    missing = [key for key, value in expected.items() if key not in table.index]
    assert not missing, f"engine lacks {missing[:3]}"
    assert worst < 1e-9, f"engine and kernel differ (relative {worst:.3g})"
    engine_peak = peak_memory(engine, cells)
    kernel_peak = peak_memory(kernel, cells)
    ratio = kernel_time / engine_time
    print(f"engine : {engine_time:8.3f} s  {args.cells / engine_time:14,.0f} cells/s  "
          f"peak {engine_peak / 2**20:8.1f} MiB (tracemalloc)")
    print(f"kernel : {kernel_time:8.3f} s  {args.cells / kernel_time:14,.0f} cells/s  "
          f"peak {kernel_peak / 2**20:8.1f} MiB (tracemalloc)")
    print(f"ratio engine/kernel speed: {ratio:.2f} (aim >= 0.5); results agree to {worst:.1e} "
          f"relative; {len(table)} region x ecosystem x indicator aggregates")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} "
          "MiB")


if __name__ == "__main__":
    main()
