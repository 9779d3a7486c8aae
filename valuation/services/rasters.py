"""Quantity sets from rasters (the raster route, `valuation/raster.py`): GeoTIFF factors, zones
and land cover as GIS analysts hold them, uploaded over HTTP (a GeoTIFF or a zip of GeoTIFFs),
named by a server-side path that configuration allows, or given by the console.

A set from rasters is a grid set (`source` grid) whose `grid` record says `route: raster` and
lists the rasters, the grid, the edge rule and the counts of cells used and masked. Its
`file_sha256` is the digest of every input file's bytes, their roles and the options: the same
upload again returns the set already stored instead of a second copy.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.services.regions import region_hierarchy
from ecovalue.auth import Principal
from valuation import grid, raster, zones
from valuation.errors import GridInvalid, UnsupportedFile
from valuation.models import QuantitySet
from valuation.services import quantities
from valuation.services.indicators import current_registry

#: largest GeoTIFF or zip of GeoTIFFs accepted over HTTP, unless configured otherwise
#: (ECOVALUE_RASTER_MAX_UPLOAD_BYTES); spreadsheets keep ECOVALUE_MAX_UPLOAD_BYTES
DEFAULT_RASTER_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
#: at most this many members in an uploaded zip, and this many bytes unpacked
MAX_ZIP_MEMBERS = 64
ZIP_EXPANSION_LIMIT = 4


def raster_error(exc: raster.RasterError | zones.ZoneError) -> GridInvalid | UnsupportedFile:
    """The problem+json error of a raster or zone failure (415 for a file that is no raster)."""
    problems = [{k: v for k, v in p.items() if v is not None} for p in exc.problems]
    first = problems[0]["message"] if problems else str(exc)
    if isinstance(exc, raster.RasterError) and exc.not_a_raster:
        files = [p["message"] for p in problems if "is not a GeoTIFF" in p["message"]]
        return UnsupportedFile("; ".join(files) or first, errors=problems)
    return GridInvalid(f"{len(problems)} problem(s) in the rasters: {first}", errors=problems)


def default_indicators(definitions: Mapping[str, Any], inputs: raster.RasterInputs,
                       options: grid.GridOptions) -> list[str]:
    """Every grid indicator of the registry whose factors are all given (R-AIR and R-WQ only
    with removal rates) and that no quantity raster already gives."""
    given = {q.indicator for q in inputs.quantities}
    return [c for c in grid.GRID_INDICATORS if c in definitions and c not in given
            and all(f in inputs.factors for f in grid.REQUIRED_COLUMNS[c])
            and (c not in ("R-AIR", "R-WQ") or options.removal_rates)]


@dataclasses.dataclass
class RasterOutcome:
    quantity_set: QuantitySet
    existing: bool  #: an identical input had already been stored: this is that set


def create_from_rasters(session: Session, actor: Principal, *, region_code: str, year: int,
                        inputs: raster.RasterInputs, indicators: Sequence[str] | None = None,
                        options: grid.GridOptions | None = None, note: str | None = None,
                        filename: str | None = None, engine: str = "windowed",
                        dask_address: str | None = None, cells_path: str | None = None,
                        progress: Callable[[int], None] | None = None,
                        cells_per_block: int = raster.DEFAULT_CELLS_PER_BLOCK,
                        ) -> RasterOutcome:
    """Compute the grid indicators (and sum the quantity rasters) by region x ecosystem type
    and store them as a quantity set, in the caller's unit of work; nothing is stored when any
    input is wrong (every problem is listed)."""
    quantities._validate_scope(session, actor, region_code, year)
    options = options or grid.GridOptions()
    definitions = current_registry(session)
    if indicators is None:
        indicators = default_indicators(definitions, inputs, options)
    indicators = list(dict.fromkeys(indicators))
    unknown = [c for c in indicators if c not in definitions]
    if unknown:
        raise GridInvalid(f"indicator(s) not in the registry: {', '.join(unknown)}")
    if engine not in ("windowed", "dask"):
        raise GridInvalid(f"engine {engine!r}: windowed or dask")
    tree = region_hierarchy(session)
    known = [code for code in tree.parents if tree.is_within(code, region_code)]
    try:
        plan = raster.plan(inputs, indicators, options, known_regions=known)
        digest = raster.inputs_digest(inputs, indicators, options)
        existing = session.scalar(sa.select(QuantitySet).where(
            QuantitySet.region_code == region_code, QuantitySet.year == year,
            QuantitySet.source == "grid", QuantitySet.file_sha256 == digest))
        if existing is not None and cells_path is None:
            return RasterOutcome(existing, True)
        if engine == "dask":
            total = raster.compute_dask(plan, address=dask_address,
                                        cells_per_block=cells_per_block, progress=progress,
                                        cells_path=cells_path)
        else:
            total = raster.compute_windowed(plan, cells_per_block=cells_per_block,
                                            progress=progress, cells_path=cells_path)
        result = raster.aggregate(plan, total)
    except (raster.RasterError, zones.ZoneError) as exc:
        raise raster_error(exc) from None
    if existing is not None:
        return RasterOutcome(existing, True)
    rows = [(position, {"region_code": r.region_code, "indicator": r.indicator_code,
                        "item": r.item or None, "ecosystem_type": r.ecosystem_type,
                        "quantity": float(r.quantity), "unit": r.unit})
            for position, r in enumerate(result.quantities.itertuples(index=False), start=1)]
    clean, problems = quantities.check_rows(rows, scope=region_code, year=year,
                                            definitions=definitions, tree=tree,
                                            row_label="aggregate")
    if problems:
        raise GridInvalid(f"the raster aggregates are not usable: {problems[0]['message']}",
                          errors=problems)
    info = {**raster.describe_inputs(plan, inputs), "cells": result.cells,
            "indicators": list(indicators), "options": options.to_dict(),
            "engine": engine, **result.summary}
    created = quantities._store(session, actor, scope=region_code, year=year, source="grid",
                                rows=clean, filename=filename, file_sha256=digest, note=note,
                                warnings=result.warnings, grid_info=info)
    return RasterOutcome(created, False)


# --- uploads and server paths ------------------------------------------------------------------


def allowed_roots(configured: str | Sequence[str] | None) -> list[Path]:
    """Server folders a request may name rasters in (ECOVALUE_RASTER_PATHS, separated by the
    OS path separator); none by default."""
    if not configured:
        return []
    items = configured.split(os.pathsep) if isinstance(configured, str) else configured
    return [Path(item).resolve() for item in items if str(item).strip()]


def server_path(text: str, roots: Sequence[Path]) -> Path:
    """A server-side file or folder inside one of `roots` (symlinks resolved first)."""
    if not roots:
        raise GridInvalid("no server-side raster folder is configured (ECOVALUE_RASTER_PATHS): "
                          "upload the files instead", errors=[{
                              "field": "path", "message": "server paths are not enabled"}])
    path = Path(text).resolve()
    if not any(path == root or root in path.parents for root in roots):
        raise GridInvalid(f"{text} lies outside the configured raster folders", errors=[{
            "field": "path", "message": "outside the configured raster folders"}])
    if not path.exists():
        raise GridInvalid(f"{text} does not exist", errors=[{"field": "path",
                                                             "message": "no such file"}])
    return path


@contextmanager
def unpacked(path: Path, limit_bytes: int) -> Iterator[Path]:
    """A folder holding the rasters: `path` itself if it is a folder, the zip's members
    unpacked into a temporary folder (flat: member folders are dropped; at most
    MAX_ZIP_MEMBERS members and ZIP_EXPANSION_LIMIT x `limit_bytes` unpacked), or a folder
    holding the one GeoTIFF."""
    if path.is_dir():
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="ecovalue-rasters-"))
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()
                           and not Path(m.filename).name.startswith(".")
                           and "__MACOSX" not in m.filename]
                if len(members) > MAX_ZIP_MEMBERS:
                    raise GridInvalid(f"the zip holds {len(members)} files; at most "
                                      f"{MAX_ZIP_MEMBERS}")
                if sum(m.file_size for m in members) > ZIP_EXPANSION_LIMIT * limit_bytes:
                    raise GridInvalid("the zip unpacks to more than "
                                      f"{ZIP_EXPANSION_LIMIT * limit_bytes:,} bytes")
                names = [Path(m.filename).name for m in members]
                if len(set(names)) != len(names):
                    raise GridInvalid("the zip holds two files of the same name")
                for member, name in zip(members, names):
                    with archive.open(member) as source, open(folder / name, "wb") as target:
                        shutil.copyfileobj(source, target, 1 << 20)
        else:
            shutil.copyfile(path, folder / (path.name if path.suffix.lower() in (
                ".tif", ".tiff") else "upload.tif"))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def inputs_from_folder(folder: Path, *, zone_field: str = "region_code",
                       zone_layer: str | None = None, zone_code: str | None = None,
                       reclassification: str | None = None,
                       ecosystem_type: str | None = None,
                       quantities_spec: Sequence[Mapping[str, Any]] = (),
                       resampling: str | None = None, names: Mapping[str, str] | None = None,
                       ) -> raster.RasterInputs:
    """Rasters named by their roles: `<factor>.tif` (rainfall_erosivity.tif or R.tif ...),
    `land_cover.tif`, `zones.tif` or zone polygons `zones.geojson` / `zones.gpkg` /
    `zones.shp`, `reclassification.csv`; quantity rasters by the file names that
    `quantities_spec` gives (`{file, indicator, unit, basis, item}`). A single GeoTIFF with no
    factor name is the first quantity raster's file."""
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    lowered = {name.lower(): path for name, path in files.items()}
    factors: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    quantity_files = {str(q.get("file") or "") for q in quantities_spec}
    tifs = [p for n, p in sorted(files.items()) if n.lower().endswith((".tif", ".tiff"))]
    lone = len(tifs) == 1 and len(quantities_spec) == 1 and not quantities_spec[0].get("file")
    for path in tifs:
        stem = path.stem
        if stem.lower() in ("land_cover", "landcover", "lulc", "zones") or path.name in \
                quantity_files or lone:
            continue
        try:
            factors[raster.factor_name(stem)] = str(path)
        except raster.RasterError:
            problems.append({"field": "file", "message": f"{path.name}: not a factor name "
                             f"({', '.join(raster.FACTORS)}), land_cover, zones, or a "
                             "quantity raster's file"})
    land_cover = next((str(lowered[n]) for n in ("land_cover.tif", "landcover.tif", "lulc.tif")
                       if n in lowered), None)
    zone_raster = str(lowered["zones.tif"]) if "zones.tif" in lowered else None
    polygon_file = next((lowered[n] for n in ("zones.geojson", "zones.json", "zones.gpkg",
                                               "zones.shp") if n in lowered), None)
    reclass: zones.Reclassification | None = None
    try:
        if reclassification and reclassification in zones.RECLASSIFICATION_TABLES:
            reclass = zones.shipped_reclassification(reclassification)
        elif "reclassification.csv" in lowered:
            reclass = zones.read_reclassification(
                lowered["reclassification.csv"].read_bytes(), source="reclassification.csv")
        elif reclassification:
            reclass = zones.shipped_reclassification(reclassification)
    except zones.ZoneError as exc:
        problems.extend(exc.problems)
    quantity_rasters: list[raster.QuantityRaster] = []
    for number, spec in enumerate(quantities_spec):
        name = str(spec.get("file") or (tifs[0].name if lone else ""))
        if name not in files:
            problems.append({"field": f"quantities.{number}.file", "message": f"no file "
                             f"{name!r} among {', '.join(sorted(files)) or 'no files'}"})
            continue
        quantity_rasters.append(raster.QuantityRaster(
            str(files[name]), str(spec["indicator"]), str(spec["unit"]),
            str(spec.get("basis") or "per_cell"), str(spec.get("item") or "")))
    if problems:
        raise GridInvalid(f"{len(problems)} problem(s) in the files: {problems[0]['message']}",
                          errors=problems)
    polygons = None
    if polygon_file is not None and zone_raster is None and zone_code is None:
        try:
            polygons = zones.read_polygons(polygon_file, zone_field, layer=zone_layer)
        except zones.ZoneError as exc:
            raise raster_error(exc) from None
    return raster.RasterInputs(
        factors=factors, land_cover=land_cover, reclassification=reclass,
        ecosystem_type=ecosystem_type if land_cover is None else None,
        zone_raster=zone_raster if zone_code is None else None, zone_polygons=polygons,
        zone_code=zone_code, quantities=quantity_rasters, resampling=resampling,
        names=dict(names or {}))


POLYGON_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".shp")


def create_from_files(session: Session, actor: Principal, *, region_code: str, year: int,
                      upload: Path | None, upload_name: str | None, zones_file: Path | None,
                      zones_name: str | None, reclass_file: Path | None,
                      path: str | None, roots: Sequence[Path], limit_bytes: int,
                      indicators: Sequence[str] | None, options: grid.GridOptions,
                      zone_field: str = "region_code", zone_layer: str | None = None,
                      zone_code: str | None = None,
                      reclassification: str | None = None, ecosystem_type: str | None = None,
                      resampling: str | None = None,
                      quantity: Mapping[str, Any] | None = None,
                      note: str | None = None) -> RasterOutcome:
    """The HTTP route's work: an uploaded GeoTIFF or zip (or a server path that configuration
    allows) with optional zone and reclassification files -> `create_from_rasters`."""
    quantities._validate_scope(session, actor, region_code, year)
    if (upload is None) == (path is None):
        raise GridInvalid("give a file (a GeoTIFF or a zip of GeoTIFFs) or a server path",
                          errors=[{"field": "file", "message": "one of file or path"}])
    source = upload if upload is not None else server_path(str(path), roots)
    display = upload_name or source.name
    with unpacked(source, limit_bytes) as folder:
        extra_folder = Path(tempfile.mkdtemp(prefix="ecovalue-zones-"))
        try:
            polygon = None
            zone_raster = None
            if zones_file is not None:
                suffix = Path(zones_name or "").suffix.lower()
                if suffix in (".tif", ".tiff"):
                    zone_raster = extra_folder / "zones.tif"
                elif suffix in POLYGON_SUFFIXES:
                    polygon = extra_folder / f"zones{'.zip' if suffix == '.shp' else suffix}"
                else:
                    raise UnsupportedFile(f"zones file {zones_name}: a GeoTIFF, GeoJSON, "
                                          "GeoPackage or a zip of a Shapefile")
                target = zone_raster or polygon
                assert target is not None  # one of the two was chosen above
                shutil.copyfile(zones_file, target)
            spec = [dict(quantity)] if quantity and quantity.get("indicator") else []
            if quantity and quantity.get("indicator") and not quantity.get("unit"):
                raise GridInvalid("a quantity raster needs its unit (quantity_unit)",
                                  errors=[{"field": "quantity_unit", "message": "required"}])
            inputs = inputs_from_folder(folder, zone_field=zone_field, zone_layer=zone_layer,
                                        zone_code=zone_code,
                                        reclassification=reclassification,
                                        ecosystem_type=ecosystem_type, quantities_spec=spec,
                                        resampling=resampling)
            if reclass_file is not None:
                try:
                    inputs.reclassification = zones.read_reclassification(
                        reclass_file.read_bytes(), source="reclassification")
                except zones.ZoneError as exc:
                    raise raster_error(exc) from None
            if zone_raster is not None:
                inputs.zone_raster, inputs.zone_polygons = str(zone_raster), None
            elif polygon is not None:
                try:
                    inputs.zone_polygons = zones.read_polygons(polygon, zone_field,
                                                               layer=zone_layer,
                                                               display_name=zones_name)
                except zones.ZoneError as exc:
                    raise raster_error(exc) from None
                inputs.zone_raster = None
            for original in inputs.paths():
                inputs.names.setdefault(original, Path(original).name)
            return create_from_rasters(session, actor, region_code=region_code, year=year,
                                       inputs=inputs, indicators=indicators, options=options,
                                       note=note, filename=display)
        finally:
            shutil.rmtree(extra_folder, ignore_errors=True)
