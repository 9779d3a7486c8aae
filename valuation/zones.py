"""Zones of the raster route: which region and which ecosystem type each cell belongs to.

- **Regions** come from a zone raster of region codes (GB/T 2260, 6 digits, or the 9/12-digit
  statistical codes below a county), from county or township polygons (GeoJSON, Shapefile,
  GeoPackage) rasterised onto the grid, or from one region code for every cell.
  **Edge-cell rule**: a cell belongs to the polygon that contains its *centre* (GDAL's default
  rasterisation, `all_touched=False`); a cell whose centre lies in no polygon is outside every
  region and is counted, never valued; a cell whose centre lies in two polygons is an error
  (overlapping regions would count it twice).
- **Ecosystem types** come from a land-cover raster through a reclassification table (CSV:
  `code` -> `ecosystem_type`), e.g. `reference/landcover_gbt21010.csv` (China's land-use
  classification GB/T 21010-2017, first- and second-level codes as integers: 0301 -> 301) and
  `reference/landcover_esa_cci.csv` (the ESA CCI land-cover codes of NatCap's global InVEST
  runs). An InVEST biophysical table with an added `ecosystem_type` column serves as it is
  (`lucode` is read as `code`). Land-cover codes missing from the table are an error that lists
  each code with its cell count.

Everything here works on one window of the grid at a time, so a prefecture at 10 m never has to
fit in memory; no database, no Flask.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ecovalue import spreadsheet
from valuation.registry import ECOSYSTEM_TYPES, normalize_ecosystem_type

#: shipped reclassification tables, by the name the CLI and API accept
RECLASSIFICATION_TABLES = {"gbt21010": "landcover_gbt21010.csv",
                           "esa-cci": "landcover_esa_cci.csv"}
#: headers accepted for the two columns of a reclassification table
RECLASS_ALIASES = {"code": ("lucode", "value", "landcover_code", "land_cover_code", "代码",
                            "地类编码", "地类代码", "编码"),
                   "ecosystem_type": ("ecosystem", "生态系统类型", "生态系统"),
                   "name_zh": ("名称", "地类名称"), "name_en": ("name", "description")}
MAX_RECLASS_ROWS = 10_000


class ZoneError(ValueError):
    """Zones or the reclassification cannot be used; `problems` lists every issue
    ({field, message})."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(p["message"] for p in problems[:5]))
        self.problems = problems


# --- integer codes -> positions ----------------------------------------------------------------


#: codes up to this value are looked up in a table (one index per cell) instead of by search
LOOKUP_TABLE_LIMIT = 1 << 21


@dataclasses.dataclass(frozen=True)
class CodeIndex:
    """Sorted integer codes and, for each, a position (an index into some label list)."""

    codes: np.ndarray  #: int64, sorted, unique
    positions: np.ndarray  #: int64, same length
    #: code -> position (-2 unknown) for small non-negative codes (land cover, 6-digit regions)
    table: np.ndarray | None = None

    @classmethod
    def build(cls, pairs: Sequence[tuple[int, int]]) -> CodeIndex:
        ordered = sorted(pairs)
        codes = np.array([c for c, _ in ordered], dtype=np.int64)
        positions = np.array([p for _, p in ordered], dtype=np.int64)
        table = None
        if len(codes) and codes[0] >= 0 and codes[-1] < LOOKUP_TABLE_LIMIT:
            table = np.full(int(codes[-1]) + 1, -2, dtype=np.int64)
            table[codes] = positions
        return cls(codes, positions, table)

    def lookup(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Position of each value; -1 where `valid` is False, -2 where the code is unknown."""
        if self.table is not None:
            in_range = (values >= 0) & (values < len(self.table))
            result = self.table[np.where(in_range, values, 0)]
            if not in_range.all():
                result[~in_range] = -2
            if not valid.all():
                result[~valid] = -1
            return result
        result = np.full(values.shape, -1, dtype=np.int64)
        if not len(self.codes):
            result[valid] = -2
            return result
        where = np.searchsorted(self.codes, values).clip(0, len(self.codes) - 1)
        found = self.codes[where] == values
        result[valid & found] = self.positions[where[valid & found]]
        result[valid & ~found] = -2
        return result


def integer_codes(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell values as int64 codes; a float cell that is not a whole number is made invalid
    and reported by the caller as an unknown code (returned as the second mask)."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64, copy=False), np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**62)
    codes = np.where(whole, values, 0).astype(np.int64)
    return codes, valid & ~whole


# --- reclassification --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reclassification:
    """Land-cover code -> ecosystem type."""

    source: str  #: the shipped table's name or the file name
    sha256: str  #: of the table's bytes
    mapping: dict[int, str]  #: code -> canonical ecosystem type
    names: dict[int, str]  #: code -> name as written (for messages)

    @property
    def ecosystems(self) -> tuple[str, ...]:
        """The ecosystem types the table uses, in the registry's order."""
        used = set(self.mapping.values())
        return tuple(e for e in ECOSYSTEM_TYPES if e in used)

    def index(self) -> CodeIndex:
        position = {eco: i for i, eco in enumerate(self.ecosystems)}
        return CodeIndex.build([(code, position[eco]) for code, eco in self.mapping.items()])


def shipped_reclassification(name: str) -> Reclassification:
    if name not in RECLASSIFICATION_TABLES:
        raise ZoneError([{"field": "reclassification", "message": f"no shipped reclassification "
                          f"table {name!r}; shipped: {', '.join(RECLASSIFICATION_TABLES)}, or "
                          "give a CSV file"}])
    data = resources.files("valuation").joinpath(
        f"reference/{RECLASSIFICATION_TABLES[name]}").read_bytes()
    return read_reclassification(data, source=name)


def read_reclassification(data: bytes, *, source: str) -> Reclassification:
    """A reclassification table (CSV in UTF-8/GBK, or XLSX) with the columns `code` and
    `ecosystem_type`; every bad row is reported (code not an integer, duplicated code, unknown
    ecosystem type)."""
    try:
        sheet = spreadsheet.read_spreadsheet(data, RECLASS_ALIASES,
                                             required=("code", "ecosystem_type"),
                                             max_rows=MAX_RECLASS_ROWS)
    except spreadsheet.SpreadsheetError as exc:
        raise ZoneError([{"field": "reclassification", "message": f"{source}: {exc}"}]) from None
    problems: list[dict[str, Any]] = []
    if sheet.missing:
        raise ZoneError([{"field": "reclassification", "message": f"{source}: missing "
                          f"column(s) {', '.join(sheet.missing)} (code, ecosystem_type)"}])
    problems.extend({"field": "reclassification", "message": f"{source} row {e.row}: "
                     f"{e.message}"} for e in sheet.errors)
    mapping: dict[int, str] = {}
    names: dict[int, str] = {}
    for number, row in sheet.rows():
        text = str(row.get("code") or "").strip()
        if isinstance(row.get("code"), float) and float(row["code"]).is_integer():
            text = str(int(row["code"]))
        try:
            code = int(text)
        except ValueError:
            problems.append({"field": "reclassification", "message": f"{source} row {number}: "
                             f"code {text!r} is not an integer land-cover code"})
            continue
        eco = normalize_ecosystem_type(str(row.get("ecosystem_type") or ""))
        if eco is None or not str(row.get("ecosystem_type") or "").strip():
            problems.append({"field": "reclassification", "message": f"{source} row {number}: "
                             f"unknown ecosystem type {row.get('ecosystem_type')!r}; use one of "
                             f"{', '.join(ECOSYSTEM_TYPES)}"})
            continue
        if code in mapping:
            problems.append({"field": "reclassification", "message": f"{source} row {number}: "
                             f"code {code} is listed twice"})
            continue
        mapping[code] = eco
        names[code] = str(row.get("name_zh") or row.get("name_en") or "")
    if not mapping and not problems:
        problems.append({"field": "reclassification", "message": f"{source}: no rows"})
    if problems:
        raise ZoneError(problems)
    return Reclassification(source=source, sha256=hashlib.sha256(data).hexdigest(),
                            mapping=mapping, names=names)


# --- regions -----------------------------------------------------------------------------------


def region_code_text(value: Any) -> str | None:
    """A region code attribute as text ('522326' from 522326, 522326.0 or ' 522326 '), None if
    it is not a code of digits."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    text = str(value).strip()
    return text if text.isdigit() and len(text) <= 18 else None


@dataclasses.dataclass
class ZonePolygons:
    """Region polygons and their codes, rasterised window by window."""

    source: str  #: file name
    sha256: str
    field: str  #: the attribute holding the region code
    geometries: list[Any]  #: shapely geometries, in `crs_wkt`
    labels: list[str]  #: region code of each geometry
    crs_wkt: str  #: CRS of the geometries
    layer: str | None = None  #: the layer read (GeoPackage); None: the file's only layer

    def to_crs(self, crs_wkt: str) -> ZonePolygons:
        """The same polygons in another CRS (pyproj), prepared for rasterisation."""
        import shapely
        from pyproj import CRS, Transformer

        source, target = CRS.from_wkt(self.crs_wkt), CRS.from_wkt(crs_wkt)
        geometries = list(self.geometries)
        if source != target:
            transformer = Transformer.from_crs(source, target, always_xy=True)
            geometries = list(shapely.transform(np.array(geometries, dtype=object), lambda xy:
                              np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))))
        shapely.prepare(geometries)
        return dataclasses.replace(self, geometries=geometries, crs_wkt=crs_wkt)

    def burn(self, transform: Any, shape: tuple[int, int], positions: dict[str, int],
             ) -> tuple[np.ndarray, np.ndarray]:
        """(position of the region whose polygon contains each cell's centre, -1 outside;
        number of polygons containing each cell centre) for one window."""
        from rasterio import features
        from rasterio.enums import MergeAlg
        from shapely import box

        height, width = shape
        left, top = transform @ (0, 0)
        right, bottom = transform @ (width, height)
        window_box = box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        chosen = [(g, positions[label]) for g, label in zip(self.geometries, self.labels)
                  if g.intersects(window_box)]
        zone = np.full(shape, -1, dtype=np.int64)
        count = np.zeros(shape, dtype=np.int32)
        if not chosen:
            return zone, count
        # int32 burns (GDAL rasterises into int32 or float64, not int64): positions are small
        burned = features.rasterize(chosen, out_shape=shape, transform=transform, fill=-1,
                                    all_touched=False, dtype="int32")
        zone[:] = burned
        features.rasterize(((g, 1) for g, _ in chosen), out=count, transform=transform,
                           all_touched=False, merge_alg=MergeAlg.add)
        return zone, count


def read_polygons(path: Path, field: str, *, layer: str | None = None,
                  display_name: str | None = None) -> ZonePolygons:
    """Region polygons from a GeoJSON, Shapefile (or a zip holding one) or GeoPackage file, in
    the file's CRS (`ZonePolygons.to_crs` puts them on the grid). Refused: a file GDAL cannot
    read as vectors, a file without a CRS, a missing code attribute (the attributes found are
    listed), empty or non-polygon geometries, a code that is not digits.

    `layer` names the layer of a file that holds several (a GeoPackage of counties and
    townships): without it such a file is refused with its layers listed, and so is a layer it
    does not hold; a file of one layer needs no name."""
    import pyogrio
    import shapely
    from pyproj import CRS

    name = display_name or path.name
    target = f"/vsizip/{path}" if path.suffix.lower() == ".zip" else str(path)
    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(target)]
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise ZoneError([{"field": "zones", "message": f"{name} is not a polygon file GDAL can "
                          f"read (GeoJSON, Shapefile, GeoPackage): "
                          f"{str(exc).splitlines()[0][:200]}"}]) from None
    if layer is not None and layer not in layers:
        raise ZoneError([{"field": "zone_layer", "message": f"{name} has no layer {layer!r}; "
                          f"its layers: {', '.join(layers) or 'none'}"}])
    if layer is None and len(layers) > 1:
        raise ZoneError([{"field": "zone_layer", "message": f"{name} holds {len(layers)} "
                          f"layers: name the one of the regions ({', '.join(layers)})"}])
    if layer is not None and len(layers) == 1:
        layer = None  # the only layer: the same zones as without the name (and the same digest)
    try:
        info = pyogrio.read_info(target, layer=layer)
    except Exception as exc:
        raise ZoneError([{"field": "zones", "message": f"{name} is not a polygon file GDAL can "
                          f"read (GeoJSON, Shapefile, GeoPackage): "
                          f"{str(exc).splitlines()[0][:200]}"}]) from None
    fields = [str(f) for f in info["fields"]]
    if field not in fields:
        raise ZoneError([{"field": "zone_field", "message": f"{name} has no attribute "
                          f"{field!r} holding the region code; its attributes: "
                          f"{', '.join(fields) or 'none'}"}])
    if not info.get("crs"):
        raise ZoneError([{"field": "zones", "message": f"{name} has no coordinate reference "
                          "system (a Shapefile needs its .prj)"}])
    _meta, _fids, wkb, field_data = pyogrio.raw.read(target, layer=layer, columns=[field])
    geometries = shapely.from_wkb(wkb)
    problems: list[dict[str, Any]] = []
    labels: list[str] = []
    kept: list[Any] = []
    for number, (geometry, value) in enumerate(zip(geometries, field_data[0]), start=1):
        code = region_code_text(value)
        if code is None:
            problems.append({"field": "zones", "message": f"{name} feature {number}: {field} "
                             f"{value!r} is not a region code (digits)"})
            continue
        if geometry is None or geometry.is_empty:
            problems.append({"field": "zones", "message": f"{name} feature {number} ({code}): "
                             "no geometry"})
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append({"field": "zones", "message": f"{name} feature {number} ({code}): "
                             f"a {geometry.geom_type}, not a polygon"})
            continue
        labels.append(code)
        kept.append(geometry)
    if not kept and not problems:
        problems.append({"field": "zones", "message": f"{name} has no features"})
    if problems:
        raise ZoneError(problems)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return ZonePolygons(source=name, sha256=digest, field=field, geometries=kept, labels=labels,
                        crs_wkt=CRS.from_user_input(info["crs"]).to_wkt(), layer=layer)
