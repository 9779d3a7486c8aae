"""The raster route: the grid route's cell formulas (`valuation/grid.py`, unchanged) over
GeoTIFFs as GIS analysts hold them, read window by window, or as xarray + Dask arrays for grids
beyond one machine.

Inputs (each a GeoTIFF, read with rasterio; only the GTiff driver is opened):
- grid factors named as the grid route's columns (`rainfall_erosivity` or `R`, `soil_erodibility`
  or `K`, `slope_length_steepness`/`LS`, `cover_management`/`C`, `support_practice`/`P`,
  `precipitation_mm`, `runoff_mm`, `evapotranspiration_mm`/`ET`, `npp`, `et_hot_mm`, the RWEQ
  factors), in the units `grid.py` states;
- land cover (codes, reclassified to ecosystem types, `valuation.zones`) and regions (a zone
  raster, polygons or one code);
- per-cell quantities computed elsewhere, e.g. InVEST outputs (avoided erosion t/pixel, water
  yield mm, carbon change tC/ha): `QuantityRaster`, summed as they are.

Rules:
- **The grid** is the land cover's if given, else the zone raster's, else the first factor's.
  Every other raster must have its CRS, transform and shape, unless `resampling` names a method
  (nearest, bilinear, cubic, average, ...): it is then warped onto the grid (GDAL's warper);
  categorical rasters (land cover, zones) always with `nearest`; per-cell totals (t/pixel)
  never, because resampling a total per pixel changes its sum (give them per hectare).
- **Nodata** is each file's own nodata value from its metadata: such a cell is masked, never a
  number. A cell masked for one input is left out of the indicators that need that input and
  counted in the warnings (missing is not zero). A NaN that the file does not declare as nodata
  is an error, as is a factor outside its physical range (negative erosivity, C or P outside
  0-1).
- **Cell area** comes from the transform and CRS: the plane area |a e - b d| x (metres per
  unit)^2 for a projected CRS (for UTM this is the map area, within 0.1 % of the ground in
  Guizhou; use an equal-area CRS such as Albers for exact areas); for a geographic CRS the exact
  area on the CRS's ellipsoid of the cell bounded by its meridians and parallels (authalic
  latitude; checked against pyproj.Geod in the tests).
- Results are the grid route's: m3, t, tCO2, kWh, t per pollutant, by region x ecosystem type.

The block kernel (`block_sums`) is one pure function of numpy arrays: the windowed route and the
Dask route call it on the same blocks, so their sums differ only in the order of additions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valuation import grid, zones
from valuation.grid import GridOptions
from valuation.registry import normalize_ecosystem_type

#: short names analysts use -> the grid route's column names
FACTOR_ALIASES = {"R": "rainfall_erosivity", "K": "soil_erodibility",
                  "LS": "slope_length_steepness", "C": "cover_management",
                  "P": "support_practice", "precipitation": "precipitation_mm",
                  "runoff": "runoff_mm", "ET": "evapotranspiration_mm",
                  "evapotranspiration": "evapotranspiration_mm", "NPP": "npp",
                  "et_hot": "et_hot_mm", "WF": "weather_factor", "EF": "erodible_fraction",
                  "SCF": "crust_factor", "K'": "roughness_factor", "COG": "vegetation_factor"}
FACTORS = tuple(dict.fromkeys(c for cols in grid.REQUIRED_COLUMNS.values() for c in cols))
#: factors that are fractions (as the grid route checks them)
FRACTION_FACTORS = ("cover_management", "support_practice", "erodible_fraction",
                    "crust_factor", "vegetation_factor")
#: units of the factors, for messages and the README
FACTOR_UNITS = {"precipitation_mm": "mm/a", "runoff_mm": "mm/a", "evapotranspiration_mm": "mm/a",
                "rainfall_erosivity": "MJ mm/(hm2 h a)",
                "soil_erodibility": "t hm2 h/(hm2 MJ mm)", "slope_length_steepness": "1",
                "cover_management": "0-1", "support_practice": "0-1",
                "npp": "g/(m2 a) dry matter (or g C with npp_basis=carbon)",
                "et_hot_mm": "mm on days above 26 C", "weather_factor": "kg/m",
                "erodible_fraction": "0-1", "crust_factor": "0-1", "roughness_factor": "1",
                "vegetation_factor": "0-1"}
RESAMPLING_METHODS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average",
                      "mode", "max", "min", "med", "q1", "q3", "sum")
#: basis of a per-cell quantity raster -> factor x cell area (m2) it is multiplied by
QUANTITY_BASES = {"per_cell": None, "per_m2": 1.0, "per_ha": 1e-4, "per_km2": 1e-6,
                  "depth_mm": 1e-3}
QUANTITY_BASIS_HELP = ("per_cell: the value is the cell's quantity (InVEST's t/pixel); per_m2, "
                       "per_ha, per_km2: a density multiplied by the cell area; depth_mm: a "
                       "water depth in mm, times the cell area gives m3")
DEFAULT_CELLS_PER_BLOCK = 1 << 20


class RasterError(ValueError):
    """The rasters cannot be used; `problems` lists every issue ({field, message})."""

    def __init__(self, problems: list[dict[str, Any]], *, not_a_raster: bool = False) -> None:
        super().__init__("; ".join(p["message"] for p in problems[:5]))
        self.problems = problems
        self.not_a_raster = not_a_raster


def factor_name(text: str) -> str:
    """The grid column a factor name or alias stands for; RasterError if none."""
    name = FACTOR_ALIASES.get(text.strip(), text.strip())
    if name not in FACTORS:
        raise RasterError([{"field": "factors", "message": f"unknown grid factor {text!r}; "
                            f"use one of {', '.join(FACTORS)} (or R, K, LS, C, P, ET, NPP)"}])
    return name


# --- the grid and its cell areas ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Grid:
    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]  #: affine a, b, c, d, e, f
    width: int
    height: int

    @property
    def affine(self) -> Any:
        from affine import Affine

        return Affine(*self.transform)

    @property
    def cells(self) -> int:
        return self.width * self.height

    def describe(self) -> dict[str, Any]:
        from rasterio.crs import CRS

        crs = CRS.from_wkt(self.crs_wkt)
        return {"crs": crs.to_string(), "transform": list(self.transform),
                "width": self.width, "height": self.height, "cells": self.cells}


def _ellipsoid(crs_wkt: str) -> tuple[float, float]:
    """Semi-major axis (m) and first eccentricity squared of the CRS's ellipsoid."""
    from pyproj import CRS

    ellipsoid = CRS.from_wkt(crs_wkt).ellipsoid
    if ellipsoid is None:
        raise RasterError([{"field": "crs", "message": "the CRS has no ellipsoid"}])
    a = float(ellipsoid.semi_major_metre)
    b = float(ellipsoid.semi_minor_metre)
    return a, 1.0 - (b * b) / (a * a)


def _authalic_q(latitude_rad: np.ndarray, e2: float) -> np.ndarray:
    """q(phi) of Snyder (1987, eq. 3-12): the area from the equator to phi over one radian of
    longitude is a^2 q / 2."""
    sin = np.sin(latitude_rad)
    if e2 == 0.0:
        return 2.0 * sin
    e = math.sqrt(e2)
    return (1.0 - e2) * (sin / (1.0 - e2 * sin * sin)
                         - np.log((1.0 - e * sin) / (1.0 + e * sin)) / (2.0 * e))


def graticule_cell_area_m2(lat_south_deg: np.ndarray, lat_north_deg: np.ndarray,
                           width_deg: float, a: float, e2: float) -> np.ndarray:
    """Exact area on the ellipsoid (a, e2) of cells bounded by two parallels and two meridians
    `width_deg` apart."""
    q_north = _authalic_q(np.radians(lat_north_deg), e2)
    q_south = _authalic_q(np.radians(lat_south_deg), e2)
    return np.abs(q_north - q_south) * (a * a / 2.0) * math.radians(abs(width_deg))


def cell_area_m2(grid_: Grid, row_off: int, height: int) -> np.ndarray:
    """Cell areas of rows row_off .. row_off+height-1, shape (height, 1) (a row's cells are
    equal: the transforms read here have no rotation in geographic CRSs)."""
    from rasterio.crs import CRS

    a, b, _c, d, e, f = grid_.transform
    crs = CRS.from_wkt(grid_.crs_wkt)
    if crs.is_geographic:
        if b != 0 or d != 0:
            raise RasterError([{"field": "transform", "message": "a rotated grid in a "
                                "geographic CRS is not supported: warp it to north-up first"}])
        semi_major, e2 = _ellipsoid(grid_.crs_wkt)
        rows = np.arange(row_off, row_off + height, dtype=np.float64)
        top = f + rows * e
        bottom = top + e
        return graticule_cell_area_m2(np.minimum(top, bottom), np.maximum(top, bottom), a,
                                      semi_major, e2).reshape(height, 1)
    if not crs.is_projected:
        raise RasterError([{"field": "crs", "message": "the grid has no projected or "
                            "geographic CRS, so its cell area is unknown"}])
    _unit, metres = crs.linear_units_factor
    area = abs(a * e - b * d) * metres * metres
    return np.full((height, 1), area)


# --- inputs ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QuantityRaster:
    """A per-cell quantity computed elsewhere (an InVEST output), summed by region x ecosystem
    type as the quantity of `indicator` in `unit`."""

    path: str
    indicator: str
    unit: str
    basis: str = "per_cell"
    item: str = ""


@dataclasses.dataclass
class RasterInputs:
    factors: dict[str, str] = dataclasses.field(default_factory=dict)  #: factor -> path
    land_cover: str | None = None
    reclassification: zones.Reclassification | None = None
    ecosystem_type: str | None = None  #: one ecosystem type for every cell (no land cover)
    zone_raster: str | None = None
    zone_polygons: zones.ZonePolygons | None = None
    zone_code: str | None = None  #: one region for every cell
    quantities: list[QuantityRaster] = dataclasses.field(default_factory=list)
    resampling: str | None = None
    #: display names of the files (an upload's names rather than temporary paths)
    names: dict[str, str] = dataclasses.field(default_factory=dict)

    def display(self, path: str) -> str:
        return self.names.get(path, Path(path).name)

    def paths(self) -> list[str]:
        found = [*self.factors.values(), self.land_cover, self.zone_raster,
                 *(q.path for q in self.quantities)]
        return [p for p in dict.fromkeys(found) if p]


def open_geotiff(path: str, name: str) -> Any:
    """A rasterio dataset of a GeoTIFF; RasterError (not_a_raster) for anything else."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        dataset = rasterio.open(path, driver="GTiff")
    except (RasterioIOError, OSError) as exc:
        raise RasterError([{"field": "rasters", "message": f"{name} is not a GeoTIFF raster "
                            f"({str(exc).splitlines()[0][:200]})"}], not_a_raster=True) from None
    if dataset.count < 1:
        dataset.close()
        raise RasterError([{"field": "rasters", "message": f"{name} has no band"}],
                          not_a_raster=True)
    return dataset


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Source:
    """One raster as the kernel reads it."""

    key: str  #: factor name, land_cover, zones, or q0, q1, ... for quantity rasters
    path: str
    name: str  #: display name
    nodata: float | None
    warp: str | None  #: resampling method when the raster is warped onto the grid
    categorical: bool
    block_rows: int = 1  #: rows of the file's internal blocks (tiles or strips)
    tile_row_bytes: int = 0  #: bytes of one row of the file's blocks, whole width


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything the block kernel needs; picklable, so Dask workers can run it."""

    grid: Grid
    sources: tuple[Source, ...]
    indicators: tuple[str, ...]
    quantities: tuple[QuantityRaster, ...]
    options: GridOptions
    zone_labels: tuple[str, ...]  #: region code of each zone position
    zone_index: zones.CodeIndex | None  #: zone raster code -> position
    zone_polygons: zones.ZonePolygons | None
    ecosystems: tuple[str, ...]  #: ecosystem type of each ecosystem position
    reclass_index: zones.CodeIndex | None
    rows: tuple[str, ...]  #: names of the kernel's output rows

    @property
    def n_groups(self) -> int:
        return len(self.zone_labels) * len(self.ecosystems)

    def row(self, name: str) -> int:
        return self.rows.index(name)

    @property
    def tile_rows(self) -> int:
        """Rows of the files' internal blocks that strips align to (the least common
        multiple of the sources' block heights, or the largest if that is beyond 4096)."""
        heights = [s.block_rows for s in self.sources if not s.warp] or [1]
        common = math.lcm(*heights)
        return common if common <= 4096 else max(heights)

    def source(self, key: str) -> Source:
        return next(s for s in self.sources if s.key == key)


def _needs(indicator: str) -> tuple[str, ...]:
    return grid.REQUIRED_COLUMNS[indicator]


def _same_grid(dataset: Any, reference: Grid) -> bool:
    if dataset.crs is None or (dataset.crs.to_wkt() != reference.crs_wkt
                               and dataset.crs != _crs(reference)):
        return False
    if (dataset.width, dataset.height) != (reference.width, reference.height):
        return False
    size = max(abs(reference.transform[0]), abs(reference.transform[4]))
    return all(abs(x - y) <= 1e-9 * size for x, y in zip(tuple(dataset.transform)[:6],
                                                          reference.transform))


def _crs(reference: Grid) -> Any:
    from rasterio.crs import CRS

    return CRS.from_wkt(reference.crs_wkt)


def plan(inputs: RasterInputs, indicators: Sequence[str], options: grid.GridOptions, *,
         known_regions: Sequence[str]) -> Plan:
    """Check the inputs (every problem at once) and lay out the computation. `known_regions`
    are the region codes a zone may carry (the scope and the regions below it)."""
    problems: list[dict[str, Any]] = []
    indicators = tuple(dict.fromkeys(indicators))
    for code in indicators:
        if code not in grid.REQUIRED_COLUMNS:
            problems.append({"field": "indicators", "message": f"{code} is not computable by "
                             f"the grid route ({', '.join(grid.GRID_INDICATORS)})"})
    if problems:
        raise RasterError(problems)
    needed = [f for code in indicators for f in _needs(code)]
    for factor in dict.fromkeys(needed):
        if factor not in inputs.factors:
            users = [c for c in indicators if factor in _needs(c)]
            problems.append({"field": "factors", "message": f"{', '.join(users)} need(s) a "
                             f"{factor} raster ({FACTOR_UNITS[factor]})"})
    if inputs.resampling is not None and inputs.resampling not in RESAMPLING_METHODS:
        problems.append({"field": "resampling", "message": f"unknown resampling method "
                         f"{inputs.resampling!r}; use one of {', '.join(RESAMPLING_METHODS)}"})
    zone_choices = [x for x in (inputs.zone_raster, inputs.zone_polygons, inputs.zone_code)
                    if x is not None]
    if len(zone_choices) != 1:
        problems.append({"field": "zones", "message": "give exactly one of a zone raster, "
                         "zone polygons or one region code for every cell"})
    if (inputs.land_cover is None) == (inputs.ecosystem_type is None):
        problems.append({"field": "land_cover", "message": "give a land-cover raster with a "
                         "reclassification table, or one ecosystem type for every cell"})
    if inputs.land_cover is not None and inputs.reclassification is None:
        problems.append({"field": "reclassification", "message": "a land-cover raster needs a "
                         "reclassification table (code -> ecosystem type), e.g. gbt21010"})
    if inputs.ecosystem_type is not None and \
            normalize_ecosystem_type(inputs.ecosystem_type) is None:
        problems.append({"field": "ecosystem_type", "message": f"unknown ecosystem type "
                         f"{inputs.ecosystem_type!r}"})
    for number, quantity in enumerate(inputs.quantities):
        if quantity.basis not in QUANTITY_BASES:
            problems.append({"field": f"quantities.{number}", "message": f"basis "
                             f"{quantity.basis!r}: {QUANTITY_BASIS_HELP}"})
        if quantity.indicator in indicators:
            problems.append({"field": f"quantities.{number}", "message": f"{quantity.indicator} "
                             "is computed from factors and given as a quantity raster: choose "
                             "one"})
    if not indicators and not inputs.quantities:
        problems.append({"field": "indicators", "message": "nothing to compute: no grid "
                         "indicator has all its factors and no quantity raster is given"})
    # the files are opened even when the request is incomplete, so that a file that is no
    # raster is named with the rest (and answered as such)

    wanted: list[tuple[str, str, bool]] = []  # key, path, categorical
    if inputs.land_cover:
        wanted.append(("land_cover", inputs.land_cover, True))
    if inputs.zone_raster:
        wanted.append(("zones", inputs.zone_raster, True))
    for factor in dict.fromkeys(needed):
        if factor in inputs.factors:
            wanted.append((factor, inputs.factors[factor], False))
    for number, quantity in enumerate(inputs.quantities):
        wanted.append((f"q{number}", quantity.path, False))
    sources: list[Source] = []
    reference: Grid | None = None
    for key, path, categorical in wanted:
        name = inputs.display(path)
        try:
            dataset = open_geotiff(path, name)
        except RasterError as exc:
            problems.extend(exc.problems)
            continue
        with dataset:
            if dataset.crs is None:
                problems.append({"field": key, "message": f"{name} has no CRS"})
                continue
            if reference is None:
                reference = Grid(dataset.crs.to_wkt(), tuple(dataset.transform)[:6],
                                 dataset.width, dataset.height)
                warp = None
            elif _same_grid(dataset, reference):
                warp = None
            else:
                what = (f"{name}: {dataset.crs.to_string()} {dataset.width}x{dataset.height} "
                        f"cells of {abs(dataset.transform.a):g} x {abs(dataset.transform.e):g} "
                        f"from ({dataset.transform.c:g}, {dataset.transform.f:g}), the grid: "
                        f"{_crs(reference).to_string()} {reference.width}x{reference.height} of "
                        f"{abs(reference.transform[0]):g} x {abs(reference.transform[4]):g} from "
                        f"({reference.transform[2]:g}, {reference.transform[5]:g})")
                if inputs.resampling is None:
                    problems.append({"field": key, "message": f"{what} (CRS, transform or "
                                     "shape differ): align it, or name a resampling method"})
                    continue
                if key.startswith("q") and inputs.quantities[int(key[1:])].basis == "per_cell":
                    problems.append({"field": key, "message": f"{what}: a per-cell total "
                                     "cannot be resampled (its sum would change); give it per "
                                     "hectare (basis per_ha) or align it"})
                    continue
                warp = "nearest" if categorical else inputs.resampling
            nodata = dataset.nodata
            block_rows = int(dataset.block_shapes[0][0])
            row_bytes = dataset.width * block_rows * np.dtype(dataset.dtypes[0]).itemsize
            sources.append(Source(key, path, name, None if nodata is None else float(nodata),
                                  warp, categorical, block_rows, row_bytes))
    if problems:
        raise RasterError(problems, not_a_raster=any(
            p["message"].find("is not a GeoTIFF") >= 0 for p in problems))
    if reference is None:
        raise RasterError([{"field": "rasters", "message": "no raster given"}])

    zone_labels: tuple[str, ...]
    zone_index = None
    polygons = None
    known = sorted(set(known_regions))
    if inputs.zone_code is not None:
        zone_labels = (inputs.zone_code,)
    elif inputs.zone_polygons is not None:
        polygons = inputs.zone_polygons.to_crs(reference.crs_wkt)
        zone_labels = tuple(sorted(set(polygons.labels)))
        outside = [c for c in zone_labels if c not in set(known)]
        if outside:
            raise RasterError([{"field": "zones", "message": f"{inputs.zone_polygons.source}: "
                                f"region code(s) {', '.join(outside)} unknown or outside the "
                                "scope"}])
    else:
        numeric = [c for c in known if c.isdigit()]
        zone_labels = tuple(numeric)
        zone_index = zones.CodeIndex.build([(int(c), i) for i, c in enumerate(numeric)])
    if inputs.reclassification is not None:
        ecosystems = inputs.reclassification.ecosystems
        reclass_index: zones.CodeIndex | None = inputs.reclassification.index()
    else:
        ecosystems = (normalize_ecosystem_type(inputs.ecosystem_type) or "unspecified",)
        reclass_index = None
    rows = ["cells", "area_m2", "outside_zones", "unknown_zone", "overlap",
            "land_cover_nodata", "land_cover_unknown"]
    for code in indicators:
        rows += [f"{code}:quantity", f"{code}:cells", f"{code}:masked"]
    rows += ["R-WCON:negative_cells", "R-WCON:negative_m3"]
    for number in range(len(inputs.quantities)):
        rows += [f"q{number}:quantity", f"q{number}:cells", f"q{number}:masked"]
    for source in sources:
        if not source.categorical:
            rows += [f"{source.key}:nodata", f"{source.key}:nan", f"{source.key}:below",
                     f"{source.key}:above"]
    return Plan(grid=reference, sources=tuple(sources), indicators=indicators,
                quantities=tuple(inputs.quantities), options=options, zone_labels=zone_labels,
                zone_index=zone_index, zone_polygons=polygons,
                ecosystems=ecosystems, reclass_index=reclass_index, rows=tuple(rows))


# --- reading blocks ----------------------------------------------------------------------------


def strip_rows(plan_: Plan, cells_per_block: int = DEFAULT_CELLS_PER_BLOCK) -> int:
    """Rows of a strip: about `cells_per_block` cells of the grid's width, aligned to the
    files' internal tiling (a multiple of the tile height, or a divisor of it for strips
    narrower than a tile row), so that no tile is decoded twice."""
    target = max(1, cells_per_block // max(plan_.grid.width, 1))
    tile = plan_.tile_rows
    if tile <= 1:
        return target
    if target >= tile:
        return target // tile * tile
    return max(d for d in range(1, target + 1) if tile % d == 0)


def windows(plan_: Plan, cells_per_block: int = DEFAULT_CELLS_PER_BLOCK,
            ) -> list[tuple[int, int]]:
    """(row_off, height) of full-width row strips of about `cells_per_block` cells, aligned to
    the files' tiles (`strip_rows`)."""
    rows = strip_rows(plan_, cells_per_block)
    return [(start, min(rows, plan_.grid.height - start))
            for start in range(0, plan_.grid.height, rows)]


#: GDAL's block cache while the route reads (MiB), on top of one row of tiles of every file:
#: GDAL's default (5 % of the RAM) would keep every tile read, up to gigabytes
GDAL_CACHE_MIB = 64


def gdal_cache_mib(plan_: Plan) -> int:
    """The block cache the route reads with: enough for one row of every file's tiles (a strip
    thinner than a tile row reads each tile row several times) and GDAL_CACHE_MIB more."""
    return GDAL_CACHE_MIB + -(-sum(s.tile_row_bytes for s in plan_.sources) // 2**20)


class Reader:
    """Open datasets (warped onto the grid where the plan says so), read by row strips, with
    GDAL's block cache bounded (`gdal_cache_mib`)."""

    def __init__(self, plan_: Plan) -> None:
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        self.plan = plan_
        self.datasets: dict[str, Any] = {}
        self._open: list[Any] = []
        self._buffers: dict[str, np.ndarray] = {}
        self._env = rasterio.Env(GDAL_CACHEMAX=gdal_cache_mib(plan_))
        self._env.__enter__()
        try:
            for source in plan_.sources:
                dataset = open_geotiff(source.path, source.name)
                self._open.append(dataset)
                if source.warp:
                    nodata = source.nodata if source.nodata is not None else float("nan")
                    dataset = WarpedVRT(dataset, crs=_crs(plan_.grid),
                                        transform=plan_.grid.affine, width=plan_.grid.width,
                                        height=plan_.grid.height,
                                        resampling=Resampling[source.warp],
                                        src_nodata=source.nodata, nodata=nodata,
                                        dtype="float64")
                    self._open.append(dataset)
                self.datasets[source.key] = dataset
        except BaseException:
            self.close()
            raise

    def nodata(self, key: str) -> float | None:
        source = self.plan.source(key)
        if source.warp and source.nodata is None:
            return float("nan")
        return source.nodata

    def read(self, row_off: int, height: int, *, reuse: bool = False) -> dict[str, np.ndarray]:
        """The strip of every source. With `reuse`, into buffers kept from strip to strip
        (valid until the next read)."""
        from rasterio.windows import Window

        window = Window(0, row_off, self.plan.grid.width, height)
        if not reuse:
            return {key: dataset.read(1, window=window)
                    for key, dataset in self.datasets.items()}
        strips = {}
        for key, dataset in self.datasets.items():
            buffer = self._buffers.get(key)
            if buffer is None or buffer.shape[0] < height:
                buffer = self._buffers[key] = np.empty((height, self.plan.grid.width),
                                                       dtype=dataset.dtypes[0])
            strips[key] = dataset.read(1, window=window, out=buffer[:height])
        return strips

    def close(self) -> None:
        for dataset in reversed(self._open):
            dataset.close()
        self._open.clear()
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def source_nodata(plan_: Plan) -> dict[str, float | None]:
    """Nodata of each source as read (a warped source without nodata gets NaN outside the
    source's extent)."""
    return {s.key: (float("nan") if s.warp and s.nodata is None else s.nodata)
            for s in plan_.sources}


def decode(raw: np.ndarray, nodata: float | None, out: np.ndarray | None = None,
           ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, float, float]:
    """(float64 values with NaN where masked, nodata mask, undeclared-NaN mask, smallest and
    largest value left); a mask is None when no cell of the block has it (the common case).

    The common case costs one min and one max over the raw block and one cast: when the
    block's range excludes the nodata value and holds no NaN, no mask is built. `out` is a
    float64 buffer of raw's size to cast into (reused from block to block)."""
    values = np.empty(raw.shape, dtype=np.float64) if out is None else out
    np.copyto(values, raw, casting="safe")
    if not raw.size:
        return values, None, None, math.nan, math.nan
    lo, hi = raw.min(), raw.max()  # min and max propagate NaN
    declared = None if nodata is None else np.asarray(nodata).astype(raw.dtype)
    if not np.isnan(lo) and (declared is None or np.isnan(declared)
                             or not lo <= declared <= hi):
        return values, None, None, float(lo), float(hi)
    masked: np.ndarray | None = None
    if declared is not None:
        hit = np.isnan(values) if np.isnan(declared) else raw == declared
        masked = hit if hit.any() else None
    undeclared: np.ndarray | None = None
    if raw.dtype.kind == "f" and (declared is None or not np.isnan(declared)) and np.isnan(lo):
        undeclared = np.isnan(values) if masked is None else np.isnan(values) & ~masked
    if masked is not None:
        values[masked] = np.nan
    smallest, largest = np.fmin.reduce(values, axis=None), np.fmax.reduce(values, axis=None)
    return values, masked, undeclared, float(smallest), float(largest)


def positions(index: zones.CodeIndex, raw: np.ndarray, nodata: float | None) -> np.ndarray:
    """Position of each cell's code in `index` (int64): -1 for nodata (and NaN), -2 for a code
    the index does not know or a value that is not a whole number. Integer blocks whose codes
    span a short range are looked up in one pass through a table of that range."""
    if raw.dtype.kind in "iu" and raw.size:
        lo, hi = int(raw.min()), int(raw.max())
        if hi - lo < zones.LOOKUP_TABLE_LIMIT and hi - lo <= np.iinfo(raw.dtype).max:
            table = np.full(hi - lo + 1, -2, dtype=np.int64)
            inside = (index.codes >= lo) & (index.codes <= hi)
            table[index.codes[inside] - lo] = index.positions[inside]
            if nodata is not None and not math.isnan(nodata):
                declared = int(np.asarray(nodata).astype(raw.dtype))  # as decode_codes reads it
                if lo <= declared <= hi:
                    table[declared - lo] = -1
            return table[raw - raw.dtype.type(lo)]
    codes, valid, not_whole = decode_codes(raw, nodata)
    found = index.lookup(codes, valid & ~not_whole)
    found[not_whole] = -2
    return found


def decode_codes(raw: np.ndarray, nodata: float | None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 codes, valid cells, cells that are not whole numbers) of a categorical raster;
    nodata and NaN are not valid."""
    if raw.dtype.kind in "iu":
        valid = np.ones(raw.shape, dtype=bool) if nodata is None or math.isnan(nodata) else \
            raw != np.asarray(nodata).astype(raw.dtype)
        return raw.astype(np.int64, copy=False), valid, np.zeros(raw.shape, dtype=bool)
    valid = ~np.isnan(raw)
    if nodata is not None and not math.isnan(nodata):
        valid &= raw != np.asarray(nodata).astype(raw.dtype)
    codes, not_whole = zones.integer_codes(raw, valid)
    return codes, valid, not_whole


def _full(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, dtype=bool) if mask is None else mask


# --- the kernel --------------------------------------------------------------------------------


@dataclasses.dataclass
class Block:
    """One strip of the grid, decoded (flat arrays)."""

    zone: np.ndarray  #: zone position (-1 outside, -2 unknown code)
    eco: np.ndarray  #: ecosystem position (-1 nodata, -2 unknown code)
    overlap: np.ndarray | None  #: cell centres inside more than one polygon
    group: np.ndarray  #: region x ecosystem group, n_groups outside
    inside: np.ndarray  #: group < n_groups
    all_inside: bool
    area: float | np.ndarray  #: m2: one number (projected CRS) or per cell
    values: dict[str, np.ndarray]  #: factor / quantity key -> float64 with NaN
    nodata: dict[str, np.ndarray | None]
    undeclared: dict[str, np.ndarray | None]
    #: factor / quantity key -> (smallest, largest) value outside nodata (NaN: none)
    extremes: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


class Buffers:
    """float64 buffers of one strip, one per factor, reused from strip to strip (the cast of
    each factor then allocates nothing)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, key: str, size: int) -> np.ndarray:
        array = self._arrays.get(key)
        if array is None or array.size < size:
            array = self._arrays[key] = np.empty(size, dtype=np.float64)
        return array[:size]


def decode_block(plan_: Plan, raw: Mapping[str, np.ndarray], row_off: int,
                 nodata: Mapping[str, float | None], buffers: Buffers | None = None) -> Block:
    height, width = next(iter(raw.values())).shape
    shape = (height, width)
    overlap = None
    if plan_.zone_index is not None:
        zone = positions(plan_.zone_index, raw["zones"], nodata["zones"])
    elif plan_.zone_polygons is not None:
        from affine import Affine

        transform = plan_.grid.affine @ Affine.translation(0, row_off)
        labels = {label: i for i, label in enumerate(plan_.zone_labels)}
        zone, count = plan_.zone_polygons.burn(transform, shape, labels)
        overlap = (count > 1).ravel()
        if not overlap.any():
            overlap = None
    else:
        zone = np.zeros(shape, dtype=np.int64)
    if plan_.reclass_index is not None:
        eco = positions(plan_.reclass_index, raw["land_cover"], nodata["land_cover"])
    else:
        eco = np.zeros(shape, dtype=np.int64)
    zone = zone.ravel()
    eco = eco.ravel()
    inside = (zone | eco) >= 0  # both positions >= 0 (a negative one sets the sign bit)
    if overlap is not None:
        inside &= ~overlap
    all_inside = bool(inside.all())
    group = zone * len(plan_.ecosystems)
    group += eco
    if not all_inside:
        group[~inside] = plan_.n_groups
    rows = cell_area_m2(plan_.grid, row_off, height)
    area: float | np.ndarray = float(rows[0, 0]) if height and (rows == rows[0, 0]).all() \
        else np.repeat(rows[:, 0], width)
    values: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray | None] = {}
    undeclared_masks: dict[str, np.ndarray | None] = {}
    extremes: dict[str, tuple[float, float]] = {}
    for source in plan_.sources:
        if source.categorical:
            continue
        flat = raw[source.key].ravel()
        out = None if buffers is None else buffers.get(source.key, flat.size)
        decoded, masked, undeclared, smallest, largest = decode(flat, nodata[source.key], out)
        values[source.key] = decoded
        masks[source.key] = masked
        undeclared_masks[source.key] = undeclared
        extremes[source.key] = (smallest, largest)
    return Block(zone, eco, overlap, group, inside, all_inside, area, values, masks,
                 undeclared_masks, extremes)


def _invalid(block: Block, keys: Sequence[str]) -> np.ndarray | None:
    """Cells where any of `keys` has no data (None: every cell has all of them)."""
    result: np.ndarray | None = None
    for key in keys:
        for mask in (block.nodata[key], block.undeclared[key]):
            if mask is not None:
                result = mask.copy() if result is None else result | mask
    return result


#: per-cell quantity, cells without its data (None: none), and a linear function applied to
#: its sums (None: identity), as the grid route sums dry matter and then converts it
Quantity = tuple[np.ndarray, "np.ndarray | None", "Callable[[Any], Any] | None"]


def cell_quantities(plan_: Plan, block: Block) -> dict[str, Quantity]:
    """Per-cell quantity of each indicator and quantity raster (the grid route's cell
    functions), the cells without the data it needs, and the conversion applied to its sums
    (R-CARB and R-O2 sum dry matter, then convert it, as grid.compute does)."""
    v = block.values
    options = plan_.options
    area = block.area
    out: dict[str, Quantity] = {}
    with np.errstate(invalid="ignore"):
        if "R-WCON" in plan_.indicators:
            water = grid.water_conservation_m3(v["precipitation_mm"], v["runoff_mm"],
                                               v["evapotranspiration_mm"], area)
            out["R-WCON"] = (water, _invalid(block, _needs("R-WCON")), None)
        if "R-SOIL" in plan_.indicators:
            out["R-SOIL"] = (grid.soil_retention_t(
                v["rainfall_erosivity"], v["soil_erodibility"], v["slope_length_steepness"],
                v["cover_management"], v["support_practice"], area),
                _invalid(block, _needs("R-SOIL")), None)
        if "R-SAND" in plan_.indicators:
            out["R-SAND"] = (grid.sand_fixation_t(
                v["weather_factor"], v["erodible_fraction"], v["crust_factor"],
                v["roughness_factor"], v["vegetation_factor"], area, options.rweq_z_m),
                _invalid(block, _needs("R-SAND")), None)
        if "R-CARB" in plan_.indicators or "R-O2" in plan_.indicators:
            dry_matter = grid.dry_matter_t(v["npp"], area, basis=options.npp_basis,
                                           carbon_fraction=options.carbon_fraction)
            invalid = _invalid(block, ("npp",))
            if "R-CARB" in plan_.indicators:
                out["R-CARB"] = (dry_matter, invalid, grid.co2_fixed_t)
            if "R-O2" in plan_.indicators:
                out["R-O2"] = (dry_matter, invalid, grid.o2_released_t)
        if "R-CLIM" in plan_.indicators:
            out["R-CLIM"] = (grid.climate_regulation_kwh(
                v["et_hot_mm"], area, latent_heat_kj_per_kg=options.latent_heat_kj_per_kg,
                eer=options.eer), _invalid(block, ("et_hot_mm",)), None)
        for number, quantity in enumerate(plan_.quantities):
            key = f"q{number}"
            factor = QUANTITY_BASES[quantity.basis]
            value = v[key] if factor is None else v[key] * (area * factor)
            out[key] = (value, _invalid(block, (key,)), None)
    return out


def per_cell(quantity: Quantity) -> np.ndarray:
    """The per-cell values of a quantity (its conversion applied cell by cell)."""
    value, _invalid_cells, convert = quantity
    return value if convert is None else convert(value)


def block_sums(plan_: Plan, raw: Mapping[str, np.ndarray], row_off: int,
               nodata: Mapping[str, float | None]) -> np.ndarray:
    """The kernel: sums of one strip, shape (len(plan.rows), n_groups + 1). Per-group rows
    count in columns 0..n_groups-1 (the last column collects cells outside every group and is
    ignored for them); whole-grid counts (nodata, range, zones) are kept in the last column."""
    block = decode_block(plan_, raw, row_off, nodata)
    return sums_of(plan_, block, cell_quantities(plan_, block))


def sums_of(plan_: Plan, block: Block, quantities: Mapping[str, Quantity]) -> np.ndarray:
    size = plan_.n_groups + 1
    out = np.zeros((len(plan_.rows), size))
    group = block.group
    inside = block.inside
    row = {name: i for i, name in enumerate(plan_.rows)}

    def put(name: str, weights: np.ndarray | None = None) -> np.ndarray:
        counted = np.bincount(group, weights=weights, minlength=size)
        out[row[name]] += counted
        return counted

    def scalar(name: str, count: float) -> None:
        out[row[name], plan_.n_groups] += count

    def in_zones(mask: np.ndarray | None) -> int:
        if mask is None:
            return 0
        return int(np.count_nonzero(mask if block.all_inside else mask & inside))

    counts = put("cells").astype(np.float64)
    if isinstance(block.area, float):
        out[row["area_m2"]] += counts * block.area
    else:
        put("area_m2", block.area)
    if not block.all_inside:  # every cell inside: no zone or land-cover count to make
        scalar("outside_zones", float(np.count_nonzero(block.zone == -1)))
        scalar("unknown_zone", float(np.count_nonzero(block.zone == -2)))
        scalar("overlap", 0.0 if block.overlap is None else
               float(np.count_nonzero(block.overlap)))
        scalar("land_cover_nodata",
               float(np.count_nonzero((block.eco == -1) & (block.zone >= 0))))
        scalar("land_cover_unknown", float(np.count_nonzero(block.eco == -2)))
    summed: dict[int, np.ndarray] = {}  # id of a per-cell array -> its masked sums
    for key, (value, invalid, convert) in quantities.items():
        if key == "R-WCON":
            with np.errstate(invalid="ignore"):
                negative = value < 0  # NaN (no data) is not negative
            if negative.any():
                put("R-WCON:negative_cells", (negative & inside).astype(np.float64))
                put("R-WCON:negative_m3", np.where(negative & inside, value, 0.0))
                if plan_.options.negative_water_balance == "zero":
                    value = np.where(negative, 0.0, value)
        sums = summed.get(id(value))
        if sums is None:  # R-CARB and R-O2 share the dry matter's sums
            weights = value if invalid is None else np.where(invalid, 0.0, value)
            sums = summed[id(value)] = np.bincount(group, weights=weights, minlength=size)
        out[row[f"{key}:quantity"]] += sums if convert is None else convert(sums)
        if invalid is None:
            out[row[f"{key}:cells"]] += counts
        else:
            masked = put(f"{key}:masked", invalid)
            out[row[f"{key}:cells"]] += counts - masked
    for source in plan_.sources:
        if source.categorical:
            continue
        key = source.key
        scalar(f"{key}:nodata", in_zones(block.nodata[key]))
        undeclared = block.undeclared[key]
        scalar(f"{key}:nan", 0.0 if undeclared is None else float(np.count_nonzero(undeclared)))
        low, high = _range(key)
        value = block.values[key]
        if value.size and (low is not None or high is not None):
            smallest, largest = block.extremes.get(key) or (np.fmin.reduce(value),
                                                           np.fmax.reduce(value))
            with np.errstate(invalid="ignore"):
                if low is not None and smallest < low:
                    scalar(f"{key}:below", float(np.count_nonzero(value < low)))
                if high is not None and largest > high:
                    scalar(f"{key}:above", float(np.count_nonzero(value > high)))
    return out


def _range(key: str) -> tuple[float | None, float | None]:
    """Physical range of a factor (quantity rasters may be negative: carbon loss, deficits)."""
    if key in FRACTION_FACTORS:
        return 0.0, 1.0
    if key in FACTORS:
        return 0.0, None
    return None, None


# --- the two routes ----------------------------------------------------------------------------


def compute_windowed(plan_: Plan, *, cells_per_block: int = DEFAULT_CELLS_PER_BLOCK,
                     progress: Callable[[int], None] | None = None,
                     cells_path: str | None = None) -> np.ndarray:
    """Sum the kernel over row strips read one at a time (bounded memory). `progress` is
    called with the number of cells of each strip read; `cells_path` writes the per-cell
    quantities (and the region code) to a GeoTIFF."""
    total = np.zeros((len(plan_.rows), plan_.n_groups + 1))
    nodata = source_nodata(plan_)
    writer = None
    try:
        with Reader(plan_) as reader:
            if cells_path:
                writer = _cells_writer(plan_, cells_path)
            buffers = Buffers()
            for row_off, height in windows(plan_, cells_per_block):
                raw = reader.read(row_off, height, reuse=True)
                block = decode_block(plan_, raw, row_off, nodata, buffers)
                quantities = cell_quantities(plan_, block)
                total += sums_of(plan_, block, quantities)
                if writer is not None:
                    _write_cells(plan_, writer, block, quantities, row_off, height)
                if progress is not None:
                    progress(height * plan_.grid.width)
    finally:
        if writer is not None:
            writer.close()
    return total


def cell_bands(plan_: Plan) -> list[tuple[str, str]]:
    """(band description, unit) of the per-cell GeoTIFF, in band order."""
    bands = [(code, grid.UNITS[code]) for code in plan_.indicators
             if code not in ("R-AIR", "R-WQ")]
    bands += [(q.indicator + (f"/{q.item}" if q.item else ""), q.unit) for q in plan_.quantities]
    return [*bands, ("region_code", "")]


def _cells_writer(plan_: Plan, path: str) -> Any:
    import rasterio

    bands = cell_bands(plan_)
    writer = rasterio.open(path, "w", driver="GTiff", width=plan_.grid.width,
                           height=plan_.grid.height, count=len(bands), dtype="float64",
                           crs=_crs(plan_.grid), transform=plan_.grid.affine,
                           nodata=float("nan"), tiled=True, blockxsize=256, blockysize=256,
                           compress="deflate", BIGTIFF="IF_SAFER")
    for number, (description, unit) in enumerate(bands, start=1):
        writer.set_band_description(number, description)
        writer.update_tags(number, unit=unit)
    return writer


def cell_values(plan_: Plan, block: Block, quantities: Mapping[str, Quantity],
                shape: tuple[int, int]) -> np.ndarray:
    """The per-cell GeoTIFF's bands of one block (`cell_bands`): each quantity where the cell
    lies in a group and has the data it needs, else NaN; and the cell's region code."""
    inside = block.group < plan_.n_groups
    keys = [c for c in plan_.indicators if c not in ("R-AIR", "R-WQ")]
    keys += [f"q{n}" for n in range(len(plan_.quantities))]
    out = np.empty((len(keys) + 1, *shape))
    for band, key in enumerate(keys):
        invalid = quantities[key][1]
        keep = inside if invalid is None else inside & ~invalid
        out[band] = np.where(keep, per_cell(quantities[key]), np.nan).reshape(shape)
    labels = np.array([float(c) for c in plan_.zone_labels] or [np.nan])
    out[-1] = np.where(block.zone >= 0, labels[block.zone.clip(0)], np.nan).reshape(shape)
    return out


def _write_cells(plan_: Plan, writer: Any, block: Block,
                 quantities: Mapping[str, Quantity], row_off: int,
                 height: int) -> None:
    from rasterio.windows import Window

    window = Window(0, row_off, plan_.grid.width, height)
    writer.write(cell_values(plan_, block, quantities, (height, plan_.grid.width)),
                 window=window)


def _chunk_all(plan_: Plan, row_off: int, nodata: Mapping[str, float | None], cells: bool,
               *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The kernel's sums of one Dask chunk and, with `cells`, its per-cell bands."""
    keys = [s.key for s in plan_.sources]
    raw = {key: np.asarray(array).reshape(array.shape[-2:]) for key, array in zip(keys, arrays)}
    block = decode_block(plan_, raw, row_off, nodata)
    quantities = cell_quantities(plan_, block)
    first: np.ndarray = next(iter(raw.values()))
    shape = (int(first.shape[0]), int(first.shape[1]))
    values = cell_values(plan_, block, quantities, shape) if cells else None
    return sums_of(plan_, block, quantities), values


def compute_dask(plan_: Plan, *, address: str | None = None,
                 cells_per_block: int = DEFAULT_CELLS_PER_BLOCK, n_workers: int = 2,
                 client: Any = None, scheduler: str | None = None,
                 progress: Callable[[int], None] | None = None,
                 cells_path: str | None = None) -> np.ndarray:
    """The same kernel over xarray + Dask arrays (rioxarray), on the Dask cluster at `address`
    (whose workers must see the same paths), on `client`, on one of Dask's local schedulers
    (`scheduler="threads"` or "synchronous"), or by default on a local cluster
    (distributed.LocalCluster of `n_workers` processes) started for the call. Warped sources
    are read through rioxarray's WarpedVRT support.

    `progress` is called with the cells of each chunk as it completes (the CLI's progress
    bar); `cells_path` writes the per-cell quantities to a GeoTIFF as the windowed route does
    (rioxarray's `to_raster`, chunks written under a lock: a distributed.Lock on a cluster,
    whose workers must see the path; each chunk is computed once for both)."""
    import dask
    import dask.array as dask_array
    import rioxarray

    rows = windows(plan_, cells_per_block)
    strip = rows[0][1]
    nodata = source_nodata(plan_)
    arrays: dict[str, Any] = {}
    opened: list[Any] = []
    for source in plan_.sources:
        if source.warp:
            import rasterio
            from rasterio.enums import Resampling
            from rasterio.vrt import WarpedVRT

            dataset = rasterio.open(source.path, driver="GTiff")
            vrt = WarpedVRT(dataset, crs=_crs(plan_.grid), transform=plan_.grid.affine,
                            width=plan_.grid.width, height=plan_.grid.height,
                            resampling=Resampling[source.warp], src_nodata=source.nodata,
                            nodata=nodata[source.key], dtype="float64")
            opened += [vrt, dataset]
            target: Any = vrt
        else:
            target = source.path
        data = rioxarray.open_rasterio(target, chunks={"band": 1, "y": strip, "x": -1},
                                       lock=False, mask_and_scale=False, cache=False)
        assert not isinstance(data, list)  # one GeoTIFF is one DataArray
        arrays[source.key] = data.isel(band=0).data
    blocks = {key: array.to_delayed().ravel() for key, array in arrays.items()}
    chunk = dask.delayed(_chunk_all, nout=2)
    chunks = [chunk(plan_, row_off, nodata, cells_path is not None,
                    *[blocks[s.key][index] for s in plan_.sources])
              for index, (row_off, _height) in enumerate(rows)]
    total = _tree_sum([c[0] for c in chunks])
    chunk_cells = {c.key: height * plan_.grid.width for c, (_row, height) in zip(chunks, rows)}
    bands = cell_bands(plan_)
    cells = None
    if cells_path is not None:
        cells = dask_array.concatenate(
            [dask_array.from_delayed(c[1], shape=(len(bands), height, plan_.grid.width),
                                     dtype=np.float64) for c, (_row, height) in zip(chunks, rows)],
            axis=1)

    def store(lock: Callable[[], Any]) -> list[Any]:
        return [] if cells is None else [_cells_store(plan_, cells, cells_path, strip, lock())]

    try:
        if scheduler is not None:
            if scheduler not in ("threads", "synchronous", "sync", "single-threaded"):
                raise ValueError("a local scheduler here is threads or synchronous")
            import threading

            from dask.callbacks import Callback

            class Progress(Callback):
                def _posttask(self, key: Any, *_args: Any) -> None:
                    if progress is not None and key in chunk_cells:
                        progress(chunk_cells[key])

            with Progress():
                result = dask.compute(total, *store(threading.Lock), scheduler=scheduler)[0]
        elif client is not None:
            result = _on_client(client, total, store, chunks, chunk_cells, progress)
        else:
            from distributed import Client, LocalCluster

            if address:
                with Client(address) as remote:
                    result = _on_client(remote, total, store, chunks, chunk_cells, progress)
            else:
                with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, Client(cluster) as local:
                    result = _on_client(local, total, store, chunks, chunk_cells, progress)
    finally:
        for item in opened:
            item.close()
    if cells_path is not None:
        import rasterio

        with rasterio.open(cells_path, "r+") as written:  # per-band units, as the windowed
            for number, (_description, unit) in enumerate(bands, start=1):
                written.update_tags(number, unit=unit)
    return np.asarray(result)


def _on_client(client: Any, total: Any, store: Callable[[Any], list[Any]], chunks: list[Any],
               chunk_cells: Mapping[Any, int], progress: Callable[[int], None] | None) -> Any:
    """Compute the sums (and the per-cell GeoTIFF) on a distributed client, reporting each
    chunk as it completes."""
    from distributed import Lock, as_completed, wait

    writes = store(lambda: Lock("ecovalue-raster-cells"))
    if progress is None:
        futures = client.compute([total, *writes])
        wait(futures)
        return futures[0].result()
    futures = client.compute([total, *writes, *chunks])
    watched = dict(zip(futures[1 + len(writes):], chunk_cells.values()))  # in chunk order
    for future in as_completed(list(watched)):
        progress(watched[future])
        future.release()  # the sums' tree holds what it still needs
    wait(futures[:1 + len(writes)])
    return futures[0].result()


def _cells_store(plan_: Plan, cells: Any, path: str | None, strip: int, lock: Any) -> Any:
    """The delayed write of the per-cell bands (a Dask array band x y x x) to `path`."""
    import xarray

    a, _b, c, _d, e, f = plan_.grid.transform
    bands = cell_bands(plan_)
    data = xarray.DataArray(cells, dims=("band", "y", "x"), coords={
        "band": np.arange(1, len(bands) + 1),
        "y": f + e * (np.arange(plan_.grid.height) + 0.5),
        "x": c + a * (np.arange(plan_.grid.width) + 0.5)})
    data = data.rio.write_crs(_crs(plan_.grid)).rio.write_transform(plan_.grid.affine)
    data = data.rio.write_nodata(np.nan)
    data.attrs["long_name"] = tuple(description for description, _unit in bands)
    # tiles as tall as a chunk, so that each chunk writes whole tiles (compressed tiles written
    # twice would grow the file); a chunk height that is no multiple of 16 writes strips
    layout: dict[str, Any] = {"tiled": True, "blockxsize": 256, "blockysize": strip,
                              "compress": "deflate"} if strip % 16 == 0 else {"tiled": False}
    return data.rio.to_raster(path, lock=lock, compute=False, dtype="float64",
                              recalc_transform=False, BIGTIFF="IF_SAFER", **layout)


def _tree_sum(tasks: list[Any]) -> Any:
    import dask

    add = dask.delayed(np.add)
    while len(tasks) > 1:
        tasks = [add(tasks[i], tasks[i + 1]) if i + 1 < len(tasks) else tasks[i]
                 for i in range(0, len(tasks), 2)]
    return tasks[0]


# --- from sums to quantities -------------------------------------------------------------------


@dataclasses.dataclass
class RasterResult:
    quantities: pd.DataFrame  #: region_code, ecosystem_type, indicator_code, item, quantity, unit
    cells: int  #: cells inside a region with an ecosystem type
    warnings: list[str]
    summary: dict[str, Any]  #: counts for the quantity set's record


def _histogram(plan_: Plan, key: str, index: zones.CodeIndex | None,
               ) -> list[tuple[str, int]]:
    """(code, cells) of the codes of raster `key` that `index` does not know (error path)."""
    counts: dict[str, int] = {}
    nodata = source_nodata(plan_)[key]
    with Reader(plan_) as reader:
        dataset = reader.datasets[key]
        from rasterio.windows import Window

        for row_off, height in windows(plan_):
            raw = dataset.read(1, window=Window(0, row_off, plan_.grid.width, height))
            codes, valid, not_whole = decode_codes(raw, nodata)
            position = index.lookup(codes, valid & ~not_whole) if index else \
                np.full(raw.shape, -2)
            unknown = (position == -2) & valid & ~not_whole
            for code, count in zip(*np.unique(codes[unknown], return_counts=True)):
                counts[str(int(code))] = counts.get(str(int(code)), 0) + int(count)
            if not_whole.any():
                for value, count in zip(*np.unique(raw[not_whole], return_counts=True)):
                    counts[repr(float(value))] = counts.get(repr(float(value)), 0) + int(count)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _first_cell(plan_: Plan, key: str, test: Callable[[np.ndarray], np.ndarray],
                ) -> tuple[int, int, float] | None:
    from rasterio.windows import Window

    with Reader(plan_) as reader:
        dataset = reader.datasets[key]
        nodata = source_nodata(plan_)[key]
        for row_off, height in windows(plan_):
            raw = dataset.read(1, window=Window(0, row_off, plan_.grid.width, height))
            _values, masked, _undeclared, _lo, _hi = decode(raw, nodata)
            with np.errstate(invalid="ignore"):
                hit = test(raw.astype(np.float64)) & ~_full(masked, raw.shape)
            if hit.any():
                row, column = np.argwhere(hit)[0]
                return int(row_off + row), int(column), float(raw[row, column])
    return None


def problems_of(plan_: Plan, total: np.ndarray) -> list[dict[str, Any]]:
    """Every reason the sums cannot be used, with the counts (and, for a range violation, the
    first offending cell)."""
    problems: list[dict[str, Any]] = []
    outside = plan_.n_groups

    def count(name: str) -> int:  # whole-grid counts live in the last column
        return round(total[plan_.row(name), outside])

    for source in plan_.sources:
        if source.categorical:
            continue
        key = source.key
        label = key if not key.startswith("q") else \
            f"quantity raster {plan_.quantities[int(key[1:])].indicator}"
        if count(f"{key}:nan"):
            problems.append({"field": key, "message": f"{source.name} ({label}): "
                             f"{count(f'{key}:nan'):,} NaN cell(s) that the file does not "
                             "declare as nodata (set its nodata to nan, e.g. gdal_edit.py "
                             "-a_nodata nan)"})
        low, high = _range(key)
        for side, bound, test in (("below", low, lambda x, b=low: x < b),
                                  ("above", high, lambda x, b=high: x > b)):
            if bound is None or not count(f"{key}:{side}"):
                continue
            first = _first_cell(plan_, key, test)
            where = f"; first at row {first[0]}, column {first[1]}: {first[2]:g}" if first \
                else ""
            allowed = "in [0, 1]" if high is not None else ">= 0"
            problems.append({"field": key, "message": f"{source.name} ({label}): "
                             f"{count(f'{key}:{side}'):,} cell(s) out of range, must be "
                             f"{allowed} outside nodata{where} (a nodata value missing from the "
                             "file's metadata?)"})
    if count("unknown_zone"):
        listed = _histogram(plan_, "zones", plan_.zone_index)
        problems.append({"field": "zones", "message": f"{plan_.source('zones').name}: "
                         f"{count('unknown_zone'):,} cell(s) with region codes unknown or "
                         "outside the scope: " + ", ".join(f"{c} ({n:,} cells)"
                                                           for c, n in listed[:20])})
    if count("overlap"):
        problems.append({"field": "zones", "message": f"{count('overlap'):,} cell centre(s) "
                         "lie in more than one zone polygon: regions overlap"})
    if count("land_cover_unknown"):
        listed = _histogram(plan_, "land_cover", plan_.reclass_index)
        problems.append({"field": "land_cover", "message": f"{plan_.source('land_cover').name}:"
                         f" land-cover codes missing from the reclassification table: "
                         + ", ".join(f"{c} ({n:,} cells)" for c, n in listed[:50]),
                         "codes": [{"code": c, "cells": n} for c, n in listed]})
    if not problems and total[plan_.row("cells"), :outside].sum() == 0:
        problems.append({"field": "zones", "message": "no cell lies inside a region with an "
                         "ecosystem type (check the zones, the CRS and the land cover)"})
    return problems


def aggregate(plan_: Plan, total: np.ndarray) -> RasterResult:
    """Quantities by region x ecosystem type from the kernel's sums; RasterError listing every
    problem."""
    problems = problems_of(plan_, total)
    if problems:
        raise RasterError(problems)
    n_eco = len(plan_.ecosystems)
    cells = total[plan_.row("cells"), :plan_.n_groups]
    present = np.flatnonzero(cells > 0)
    rows: list[tuple[str, str, str, str, float, str]] = []
    warnings: list[str] = []
    groups = slice(0, plan_.n_groups)  # per-group rows: the last column is outside every group
    area_per_cell = total[plan_.row("area_m2"), groups].sum() / max(cells.sum(), 1.0)

    def region_eco(index: Any) -> tuple[str, str]:
        return plan_.zone_labels[index // n_eco], plan_.ecosystems[index % n_eco]

    labelled = [(c, c, grid.UNITS[c], "") for c in plan_.indicators
                if c not in ("R-AIR", "R-WQ")]
    labelled += [(f"q{n}", q.indicator, q.unit, q.item) for n, q in enumerate(plan_.quantities)]
    for key, code, unit, item in labelled:
        used = total[plan_.row(f"{key}:cells")]
        for index in present:
            if used[index] > 0:
                region, eco = region_eco(index)
                rows.append((region, eco, code, item,
                             float(total[plan_.row(f"{key}:quantity"), index]), unit))
        masked = round(total[plan_.row(f"{key}:masked"), groups].sum())
        if masked:
            needs = _needs(code) if key == code else (plan_.source(key).name,)
            gaps = [f"{s.name} {round(total[plan_.row(f'{s.key}:nodata')].sum()):,}"
                    for s in plan_.sources if (s.key in needs or s.name in needs)
                    and not s.categorical
                    and total[plan_.row(f"{s.key}:nodata")].sum() > 0]
            warnings.append(f"{code}: {masked:,} cell(s) ({masked * area_per_cell / 1e6:,.4g} "
                            f"km2) without data (nodata in {', '.join(gaps)}) are not counted: "
                            "missing is not zero")
    if "R-WCON" in plan_.indicators:
        negative = round(total[plan_.row("R-WCON:negative_cells"), groups].sum())
        if negative:
            verb = "kept (signed sum)" if plan_.options.negative_water_balance == "keep" else \
                "counted as 0"
            lost = total[plan_.row("R-WCON:negative_m3"), groups].sum()
            warnings.append(f"R-WCON: {negative} cell(s) lose more water to runoff and ET than "
                            f"they receive ({lost:.6g} m3); {verb}")
    removal = [c for c in plan_.indicators if c in ("R-AIR", "R-WQ")]
    if removal:
        areas = pd.DataFrame([(*region_eco(i), total[plan_.row("area_m2"), i])
                              for i in present],
                             columns=["region_code", "ecosystem_type", "area_m2"])
        try:
            result = grid.compute(areas, removal, plan_.options)
        except grid.GridError as exc:
            raise RasterError([{"field": p.get("column") or "options",
                                "message": p["message"]} for p in exc.problems]) from None
        warnings.extend(result.warnings)
        rows.extend(result.quantities.itertuples(index=False, name=None))
    outside = round(total[plan_.row("outside_zones")].sum())
    if outside:
        warnings.append(f"{outside:,} cell(s) lie outside every region (zone nodata, or the "
                        "centre in no polygon): not counted")
    lc_nodata = round(total[plan_.row("land_cover_nodata")].sum())
    if lc_nodata:
        warnings.append(f"{lc_nodata:,} cell(s) inside a region have no land cover (nodata): "
                        "not counted")
    frame = pd.DataFrame(rows, columns=["region_code", "ecosystem_type", "indicator_code",
                                        "item", "quantity", "unit"])
    frame = frame.sort_values(["region_code", "ecosystem_type", "indicator_code", "item"],
                              kind="stable").reset_index(drop=True)
    summary = {"cells_counted": int(cells.sum()), "area_m2": float(
        total[plan_.row("area_m2"), :plan_.n_groups].sum()), "cells_outside": outside,
        "land_cover_nodata": lc_nodata}
    return RasterResult(frame, int(cells.sum()), warnings, summary)


def describe_inputs(plan_: Plan, inputs: RasterInputs) -> dict[str, Any]:
    """What the quantity set records of its rasters (the `grid` field)."""
    info: dict[str, Any] = {"route": "raster", "grid": plan_.grid.describe(),
                            "edge_rule": "cell centre"}
    info["rasters"] = [{"role": s.key if not s.key.startswith("q") else "quantity",
                        "file": s.name, "nodata": s.nodata, "resampled": s.warp}
                       for s in plan_.sources]
    if inputs.zone_polygons is not None:
        info["zone_polygons"] = {"file": inputs.zone_polygons.source,
                                 "field": inputs.zone_polygons.field,
                                 "features": len(inputs.zone_polygons.labels)}
        if inputs.zone_polygons.layer:
            info["zone_polygons"]["layer"] = inputs.zone_polygons.layer
    if inputs.zone_code is not None:
        info["zone_code"] = inputs.zone_code
    if inputs.reclassification is not None:
        info["reclassification"] = inputs.reclassification.source
    if inputs.ecosystem_type is not None:
        info["ecosystem_type"] = inputs.ecosystem_type
    info["quantity_rasters"] = [dataclasses.asdict(q) | {"path": inputs.display(q.path)}
                                for q in plan_.quantities]
    return info


def inputs_digest(inputs: RasterInputs, indicators: Sequence[str],
                  options: grid.GridOptions, extra: Mapping[str, Any] | None = None) -> str:
    """SHA-256 over every input file's bytes, the roles they play and the options: equal
    digests mean an identical upload."""
    import json

    parts: dict[str, Any] = {
        "factors": {k: file_sha256(v) for k, v in sorted(inputs.factors.items())},
        "land_cover": file_sha256(inputs.land_cover) if inputs.land_cover else None,
        "zone_raster": file_sha256(inputs.zone_raster) if inputs.zone_raster else None,
        "zone_polygons": [inputs.zone_polygons.sha256, inputs.zone_polygons.field,
                          *([inputs.zone_polygons.layer] if inputs.zone_polygons.layer else [])]
        if inputs.zone_polygons else None,
        "zone_code": inputs.zone_code,
        "reclassification": inputs.reclassification.sha256 if inputs.reclassification else None,
        "ecosystem_type": inputs.ecosystem_type,
        "quantities": [dataclasses.asdict(q) | {"path": file_sha256(q.path)}
                       for q in inputs.quantities],
        "resampling": inputs.resampling, "indicators": sorted(indicators),
        "options": options.to_dict(), "extra": dict(extra or {})}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
