"""Console commands of the raster route (`ecovalue valuation grid --factor ...`, `rows`,
`raster-map`, `sample-rasters`); registered on the `valuation` group by valuation/cli.py."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from valuation import grid, raster

EXISTING = click.Path(exists=True, path_type=Path)


def raster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that name rasters, zones and land cover (all optional: without them the
    grid command reads a CSV/XLSX grid file)."""
    options = [
        click.option("--factor", "factors", multiple=True, metavar="NAME=GEOTIFF",
                     help="a grid factor raster, e.g. R=erosivity.tif, K=k.tif, LS=ls.tif, "
                     "C=c.tif, P=p.tif, precipitation_mm=p.tif, runoff_mm=..., ET=..., NPP=..."),
        click.option("--dir", "folder", type=click.Path(exists=True, file_okay=False,
                                                        path_type=Path),
                     help="a folder of rasters named by their role (R.tif, land_cover.tif, "
                     "zones.tif or zones.geojson, reclassification.csv)"),
        click.option("--land-cover", type=EXISTING, help="land-cover codes (GeoTIFF)"),
        click.option("--reclass", "reclassification", help="reclassification table: a CSV "
                     "(code, ecosystem_type) or a shipped one: gbt21010, esa-cci"),
        click.option("--ecosystem-type", help="one ecosystem type for every cell (no land "
                     "cover)"),
        click.option("--zones", "zones_path", type=EXISTING, help="regions: a zone raster "
                     "(GeoTIFF of region codes) or polygons (GeoJSON, Shapefile, GeoPackage)"),
        click.option("--zone-field", default="region_code", show_default=True,
                     help="the polygons' attribute holding the region code"),
        click.option("--zone-layer", "--layer", "zone_layer", help="the layer holding the "
                     "regions, for a GeoPackage of several layers"),
        click.option("--zone-code", help="one region code for every cell"),
        click.option("--quantity", "quantity_specs", multiple=True,
                     metavar="GEOTIFF=INDICATOR:UNIT[:BASIS[:ITEM]]",
                     help="a per-cell quantity (e.g. InVEST's avoided_erosion.tif=R-SOIL:t:"
                     "per_cell); " + raster.QUANTITY_BASIS_HELP),
        click.option("--resampling", type=click.Choice(list(raster.RESAMPLING_METHODS)),
                     help="warp rasters whose CRS, transform or shape differ from the grid "
                     "(default: refuse them)"),
        click.option("--write-cells", type=click.Path(dir_okay=False, path_type=Path),
                     help="also write the per-cell quantities (one band per indicator, and the "
                     "region code) to this GeoTIFF"),
        click.option("--engine", type=click.Choice(["windowed", "dask"]), default="windowed",
                     show_default=True, help="windowed: row strips in bounded memory; dask: "
                     "xarray + Dask on a local cluster or --dask-address"),
        click.option("--dask-address", help="an existing Dask scheduler, e.g. "
                     "tcp://10.0.0.5:8786 (its workers must see the same paths)"),
        click.option("--block-cells", type=click.IntRange(min=1),
                     default=raster.DEFAULT_CELLS_PER_BLOCK, show_default=True,
                     help="cells per block read"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _quantity(spec: str) -> raster.QuantityRaster:
    path, _, rest = spec.rpartition("=")
    parts = rest.split(":")
    if not path or len(parts) < 2 or len(parts) > 4:
        raise click.BadParameter(f"{spec!r}: GEOTIFF=INDICATOR:UNIT[:BASIS[:ITEM]], e.g. "
                                 "avoided_erosion.tif=R-SOIL:t:per_cell", param_hint="--quantity")
    if not Path(path).is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint="--quantity")
    return raster.QuantityRaster(path, parts[0].upper(), parts[1],
                                 parts[2] if len(parts) > 2 else "per_cell",
                                 parts[3] if len(parts) > 3 else "")


def build_inputs(*, factors: Iterable[str], folder: Path | None, land_cover: Path | None,
                 reclassification: str | None, ecosystem_type: str | None,
                 zones_path: Path | None, zone_field: str, zone_layer: str | None,
                 zone_code: str | None,
                 quantity_specs: Iterable[str], resampling: str | None) -> raster.RasterInputs:
    from valuation import zones
    from valuation.services import rasters

    try:
        if folder is not None:
            inputs = rasters.inputs_from_folder(
                folder, zone_field=zone_field, zone_layer=zone_layer, zone_code=zone_code,
                reclassification=reclassification, ecosystem_type=ecosystem_type,
                resampling=resampling)
        else:
            inputs = raster.RasterInputs(resampling=resampling, zone_code=zone_code,
                                         ecosystem_type=ecosystem_type)
        for item in factors:
            name, _, path = item.partition("=")
            if not path or not Path(path).is_file():
                raise click.BadParameter(f"{item!r}: NAME=GEOTIFF of an existing file",
                                         param_hint="--factor")
            inputs.factors[raster.factor_name(name)] = path
        if land_cover is not None:
            inputs.land_cover = str(land_cover)
            inputs.ecosystem_type = None
        if reclassification and folder is None:
            inputs.reclassification = (
                zones.shipped_reclassification(reclassification)
                if reclassification in zones.RECLASSIFICATION_TABLES
                else zones.read_reclassification(Path(reclassification).read_bytes(),
                                                 source=Path(reclassification).name))
        elif inputs.land_cover is not None and inputs.reclassification is None:
            raise click.UsageError("--land-cover needs --reclass (a CSV, or gbt21010 / esa-cci)")
        if zones_path is not None:
            if zones_path.suffix.lower() in (".tif", ".tiff"):
                inputs.zone_raster, inputs.zone_polygons = str(zones_path), None
            else:
                inputs.zone_polygons = zones.read_polygons(zones_path, zone_field,
                                                           layer=zone_layer)
                inputs.zone_raster = None
        inputs.quantities.extend(_quantity(spec) for spec in quantity_specs)
    except (raster.RasterError, zones.ZoneError) as exc:
        from ecovalue.cli import fail

        fail(rasters.raster_error(exc))
    except OSError as exc:
        raise click.UsageError(str(exc)) from None
    return inputs


def print_rows(rows: Iterable[Any]) -> None:
    """The aggregates of a quantity set: indicator, region, ecosystem type, quantity, unit."""
    header = (f"{'indicator':<9} {'item':<10} {'region':<12} {'ecosystem':<12} "
              f"{'quantity':>22} {'unit':<8}")
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        quantity = "-" if row.quantity is None else f"{row.quantity:,.4f}"
        click.echo(f"{row.indicator_code:<9} {row.item or '':<10} {row.region_code:<12} "
                   f"{row.ecosystem_type:<12} {quantity:>22} {row.quantity_unit or '':<8}")


def run_raster_grid(*, region_code: str, year: int, indicators: list[str] | None,
                    options: grid.GridOptions, write_cells: Path | None, engine: str,
                    dask_address: str | None, block_cells: int, **named: Any) -> None:
    from valuation.services import rasters

    inputs = build_inputs(**named)
    if not inputs.paths():
        raise click.UsageError("give a grid file, or rasters (--factor, --dir, --quantity)")
    from valuation.raster import open_geotiff

    try:
        with open_geotiff(inputs.paths()[0], inputs.display(inputs.paths()[0])) as first:
            total_cells = first.width * first.height
    except raster.RasterError:
        total_cells = 0  # the service names the bad file with every other problem
    with unit_of_work() as session, contextlib.ExitStack() as stack:
        progress: Callable[[int], None] | None = None
        if total_cells > 4 * block_cells:  # both engines report the cells of each block
            stderr = sys.stderr
            bar: Any = stack.enter_context(click.progressbar(
                length=total_cells, label="reading rasters", file=stderr))
            progress = bar.update
        outcome = rasters.create_from_rasters(
            session, operator(), region_code=region_code, year=year, inputs=inputs,
            indicators=indicators, options=options, engine=engine, dask_address=dask_address,
            cells_path=str(write_cells) if write_cells else None, progress=progress,
            cells_per_block=block_cells)
        stack.close()
        created = outcome.quantity_set
        record = created.grid or {}
        if outcome.existing:
            click.echo(f"quantity set {created.id} already holds these rasters "
                       f"(identical inputs): not stored again")
        else:
            click.echo(f"quantity set {created.id}: {created.row_count} aggregates from "
                       f"{record.get('cells', 0):,} cells of {record.get('grid', {}).get('crs')} "
                       f"({record.get('area_m2', 0) / 1e6:,.3f} km2)")
        for warning in created.warnings:
            click.echo(f"  ! {warning}")
        print_rows(created.rows)
        if write_cells:
            click.echo(f"wrote {write_cells} (per-cell quantities, one band per indicator, and "
                       "region_code)")


@click.command("rows")
@click.argument("set_id", type=int)
@with_appcontext
def rows_command(set_id: int) -> None:
    """List a quantity set's rows (indicator, item, region, ecosystem type, quantity, unit)."""
    from valuation.services import quantities

    with unit_of_work() as session:
        quantity_set = quantities.get_set(session, operator(), set_id, with_rows=True)
        click.echo(f"quantity set {quantity_set.id}: {quantity_set.source} | region "
                   f"{quantity_set.region_code} | year {quantity_set.year} | "
                   f"{quantity_set.row_count} rows" + (f" | {quantity_set.note}"
                                                       if quantity_set.note else ""))
        print_rows(quantity_set.rows)
        for warning in quantity_set.warnings:
            click.echo(f"  ! {warning}")


@click.command("raster-map")
@click.argument("cells", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--indicator", "band", help="the band to map (default: the first)")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("map.png"), show_default=True)
@click.option("--title", help="title above the maps")
def raster_map_command(cells: Path, band: str | None, output: Path, title: str | None) -> None:
    """Map a per-cell quantity (a GeoTIFF of `grid --write-cells`) per cell and per county, as
    PNG for a report."""
    from valuation import raster_maps

    try:
        data, totals = raster_maps.quantity_map_png(str(cells), band, title=title)
    except raster.RasterError as exc:
        raise click.ClickException(str(exc)) from None
    output.write_bytes(data)
    click.echo(f"wrote {output} ({len(data)} bytes)")
    for region, value, unit in totals:
        click.echo(f"  {region:<12} {value:>22,.4f} {unit}")


@click.command("sample-rasters")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=click.IntRange(min=4, max=5000), default=60, show_default=True,
              help="cells per side")
def sample_rasters_command(folder: Path, size: int) -> None:
    """Write small SAMPLE rasters to try the raster route: RUSLE, water-balance and NPP factors,
    GB/T 21010 land cover (30 m, UTM 48N), two county polygons (Wangmo, Ceheng) and the
    reclassification table. Synthetic numbers, not survey data."""
    from valuation import sample_rasters

    written = sample_rasters.write_sample(folder, size=size)
    for path in written:
        click.echo(f"wrote {path}")


def register(group: click.Group) -> None:
    for command in (rows_command, raster_map_command, sample_rasters_command):
        group.add_command(command)

