"""`ecovalue valuation ...`: GEP valuation from the console.

    ecovalue valuation run --region 522326 --year 2024 --quantities wangmo.xlsx [--prices VERSION]
    ecovalue valuation export RUN_ID --format xlsx [--output FILE] [--unit 亿元]
    ecovalue valuation grid cells.csv --region 522326 --year 2024
    ecovalue valuation grid --region 522300 --year 2024 --factor R=r.tif ... --zones c.geojson
    ecovalue valuation rows SET_ID | raster-map cells.tif | sample-rasters DIR
    ecovalue valuation compare BASE_RUN OTHER_RUN
    ecovalue valuation publish RUN_ID | reproduce RUN_ID | asset-value RUN_ID
    ecovalue valuation reference | price-books | indicators
    ecovalue valuation price-book create|fill|publish|show VERSION ...
    ecovalue valuation indicator add FILE.json|.yaml|.xlsx
    ecovalue valuation detail RUN_ID          # every result row: quantity, unit, price, value
    ecovalue valuation example garze-2010 --output DIR   # a published account's spreadsheets
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from ecovalue.cli import database, operator, unit_of_work
from valuation import grid, reports
from valuation.raster_cli import raster_options
from valuation.raster_cli import register as register_raster_commands
from valuation.services import indicators, prices, quantities, reporting, runs

UNITS = click.Choice(list(reports.DISPLAY_UNITS))


@click.group("valuation")
def cli() -> None:
    """GEP valuation: quantities, price books, runs, reports."""


def _amount(text: str | None, name: str) -> dict[str, Any] | None:
    """'98.6 亿元' or '98.6亿元' -> {value: 98.6, unit: 亿元}."""
    if not text:
        return None
    match = re.match(r"^\s*([-+0-9.eE]+)\s*(.+?)\s*$", text)
    if not match:
        raise click.BadParameter(f"{text!r}: give a number and a unit, e.g. '98.6 亿元'",
                                 param_hint=name)
    try:
        return {"value": float(match.group(1)), "unit": match.group(2)}
    except ValueError:
        raise click.BadParameter(f"{text!r}: {match.group(1)!r} is not a number",
                                 param_hint=name) from None


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value / reports.DISPLAY_UNITS[unit]:,.2f}"


def print_run(session: Any, run_id: int, unit: str) -> None:
    view = reporting.run_view(session, operator(), run_id)
    run = runs.get_run(session, operator(), run_id)
    click.echo(f"run {run.id}: {run.title} | region {run.region_code} | year {run.year} | "
               f"constant prices of {run.base_year} | price book {run.price_book.version} | "
               f"{run.status}")
    click.echo(f"input hash {run.input_hash}")
    header = (f"{'indicator':<9} {'name':<34} {'quantity':>18} {'unit':<6} "
              f"{'unit price':>12} {'adj.':>7} {'current ' + unit:>16} {'constant ' + unit:>16}")
    click.echo(header)
    click.echo("-" * len(header))
    table = reports.table(view, "indicator", "元")
    for row in table.itertuples(index=False):
        quantity = "-" if row.quantity != row.quantity else f"{row.quantity:,.2f}"
        price = "-" if row.unit_price != row.unit_price else f"{row.unit_price:,.4f}"
        factor = "-" if row.adjustment_factor != row.adjustment_factor else \
            f"{row.adjustment_factor:.4f}"
        mark = "" if row.complete else " *"
        name = str(row.name_en)[:34] if not row.item else f"  - {row.item}"[:34]
        click.echo(f"{row.indicator_code:<9} {name:<34} {quantity:>18} "
                   f"{str(row.quantity_unit)[:6]:<6} {price:>12} {factor:>7} "
                   f"{_fmt(row.value_current_元, unit):>16} "
                   f"{_fmt(row.value_constant_元, unit):>16}{mark}")
    click.echo("-" * len(header))
    for category, values in run.summary["by_category"].items():
        click.echo(f"{category:<44} {'':>46} {_fmt(values['current'], unit):>16} "
                   f"{_fmt(values['constant'], unit):>16}")
    click.echo(f"{'GEP':<44} {'':>46} {_fmt(run.gep_current, unit):>16} "
               f"{_fmt(run.gep_constant, unit):>16}")
    for region, values in sorted(run.ratios.items()):
        parts = []
        if values.get("gep_to_gdp") is not None:
            parts.append(f"GEP/GDP {values['gep_to_gdp']:.2f}")
        if values.get("gep_per_km2_yuan") is not None:
            parts.append(f"per km2 {values['gep_per_km2_yuan']:,.0f} yuan")
        if values.get("gep_per_capita_yuan") is not None:
            parts.append(f"per capita {values['gep_per_capita_yuan']:,.0f} yuan")
        if parts:
            click.echo(f"{region}: " + "; ".join(parts))
    if run.unvalued:
        click.echo("unvalued (missing is not zero):")
        for item in run.unvalued:
            where = " ".join(str(x) for x in (item["indicator_code"], item.get("item") or "",
                                             item.get("region_code") or "",
                                             item.get("ecosystem_type") or "") if x)
            click.echo(f"  - {where}: {item['reason']}")
    if run.warnings:
        click.echo("warnings:")
        for warning in run.warnings:
            click.echo(f"  ! {warning}")


@cli.command("run")
@click.option("--region", "region_code", required=True, help="county (or prefecture) code")
@click.option("--year", type=int, required=True, help="accounting year")
@click.option("--quantities", "quantity_files", multiple=True, type=click.Path(
    exists=True, dir_okay=False, path_type=Path), help="aggregate table (CSV or XLSX); repeat "
    "for several")
@click.option("--grid", "grid_files", multiple=True, type=click.Path(
    exists=True, dir_okay=False, path_type=Path), help="grid file (one row per cell)")
@click.option("--quantity-set", "set_ids", multiple=True, type=int,
              help="an existing quantity set id")
@click.option("--prices", "price_book", help="price-book version (default: the default book)")
@click.option("--base-year", type=int, help="constant-price base year (default: --year)")
@click.option("--enable", multiple=True, help="switch on an optional indicator, e.g. R-O2")
@click.option("--disable", multiple=True, help="switch off an indicator")
@click.option("--allow-double-count", multiple=True, help="accept an overlap, e.g. R-CARB+R-O2")
@click.option("--gdp", help="GDP of the region, e.g. '98.6 亿元'")
@click.option("--area", help="area of the region, e.g. '3006 km2'")
@click.option("--population", help="population, e.g. '32.1 万人'")
@click.option("--title", help="label of the run")
@click.option("--unit", type=UNITS, default="万元", show_default=True, help="display unit")
@click.option("--publish", is_flag=True, help="publish the run")
@click.option("--output-value-basis", type=click.Choice(["gross", "net"]), default="gross",
              show_default=True, help="whether reported output values (P-AGR, P-FOR ...) are "
              "gross or net (value added) output values: recorded with the run")
@with_appcontext
def run_command(region_code: str, year: int, quantity_files: tuple[Path, ...],
                grid_files: tuple[Path, ...], set_ids: tuple[int, ...], price_book: str | None,
                base_year: int | None, enable: tuple[str, ...], disable: tuple[str, ...],
                allow_double_count: tuple[str, ...], gdp: str | None, area: str | None,
                population: str | None, title: str | None, unit: str, publish: bool,
                output_value_basis: str) -> None:
    """Value a region's quantities for a year and print the result table."""
    if not (quantity_files or grid_files or set_ids):
        raise click.UsageError("give --quantities FILE (or --grid FILE, --quantity-set ID)")
    actor = operator()
    context = []
    if gdp or area or population:
        context.append({"region_code": region_code, "gdp": _amount(gdp, "--gdp"),
                        "area": _amount(area, "--area"),
                        "population": _amount(population, "--population")})
    with unit_of_work() as session:
        ids = list(set_ids)
        for path in quantity_files:
            created = quantities.create_from_file(
                session, actor, region_code=region_code, year=year, filename=path.name,
                data=path.read_bytes())
            click.echo(f"quantity set {created.id}: {created.row_count} rows from "
                       f"{path.name}")
            ids.append(created.id)
        for path in grid_files:
            created = quantities.create_from_grid_file(
                session, actor, region_code=region_code, year=year, filename=path.name,
                data=path.read_bytes())
            assert created.grid is not None  # a grid file's set records its grid
            click.echo(f"quantity set {created.id}: {created.row_count} aggregates from "
                       f"{created.grid['cells']} cells of {path.name}")
            ids.append(created.id)
        run = runs.create_run(
            session, actor, region_code=region_code, year=year, quantity_set_ids=ids,
            price_book_version=price_book, base_year=base_year,
            options={"enable": list(enable), "disable": list(disable),
                     "allow_double_count": list(allow_double_count),
                     "output_value_basis": output_value_basis},
            context=context, title=title)
        if publish:
            runs.publish_run(session, actor, run.id)
        run_id = run.id
    with unit_of_work() as session:
        print_run(session, run_id, unit)


@cli.command("show")
@click.argument("run_id", type=int)
@click.option("--unit", type=UNITS, default="万元", show_default=True)
@with_appcontext
def show_command(run_id: int, unit: str) -> None:
    """Print a stored run's result table."""
    with unit_of_work() as session:
        print_run(session, run_id, unit)


@cli.command("export")
@click.argument("run_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx",
              show_default=True)
@click.option("--unit", type=UNITS, default="万元", show_default=True)
@click.option("--table", type=click.Choice(list(reports.TABLES)), default="indicator",
              show_default=True, help="CSV: which table")
@click.option("--region", "region_code", help="narrow a prefecture run to one county")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="file to write (default: a name from the run)")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the composition chart as PNG")
@with_appcontext
def export_command(run_id: int, fmt: str, unit: str, table: str, region_code: str | None,
                   output: Path | None, chart_path: Path | None) -> None:
    """Export a run to XLSX (every table and the chart) or one table to CSV."""
    with unit_of_work() as session:
        data, filename = reporting.export(session, operator(), run_id, fmt=fmt, unit=unit,
                                          table=table, region_code=region_code)
        chart = (reporting.composition_png(session, operator(), run_id,
                                           region_code=region_code) if chart_path else None)
    target = output or Path(filename)
    target.write_bytes(data)
    click.echo(f"wrote {target} ({len(data)} bytes)")
    if chart_path and chart:
        chart_path.write_bytes(chart)
        click.echo(f"wrote {chart_path} ({len(chart)} bytes)")


@cli.command("grid")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path))
@click.option("--region", "region_code", required=True)
@click.option("--year", type=int, required=True)
@click.option("--indicator", "indicator_codes", multiple=True,
              type=click.Choice(list(grid.GRID_INDICATORS)),
              help="default: every grid indicator the columns (or factor rasters) allow")
@click.option("--npp-basis", type=click.Choice(["dry_matter", "carbon"]), default="dry_matter",
              show_default=True)
@click.option("--negative-water-balance", type=click.Choice(["keep", "zero"]), default="keep",
              show_default=True)
@click.option("--options", "options_path", type=click.Path(exists=True, dir_okay=False,
                                                           path_type=Path),
              help="JSON with removal_rates and emissions (R-AIR, R-WQ)")
@raster_options
@with_appcontext
def grid_command(path: Path | None, region_code: str, year: int,
                 indicator_codes: tuple[str, ...], npp_basis: str, negative_water_balance: str,
                 options_path: Path | None, **raster_args: Any) -> None:
    """Compute quantities from a grid file (CSV/XLSX, one row per cell) or from GeoTIFFs
    (--factor, --land-cover, --zones ...), store them as a quantity set and print the
    aggregates (indicator, region, ecosystem type, quantity, unit)."""
    extra = json.loads(options_path.read_text("utf-8")) if options_path else {}
    options = grid.GridOptions(npp_basis=npp_basis,
                               negative_water_balance=negative_water_balance,
                               removal_rates=extra.get("removal_rates") or {},
                               emissions=extra.get("emissions") or {})
    if path is None:
        from valuation.raster_cli import run_raster_grid

        run_raster_grid(region_code=region_code, year=year,
                        indicators=list(indicator_codes) or None, options=options,
                        **raster_args)
        return
    data = path.read_bytes()
    with unit_of_work() as session:
        created = quantities.create_from_grid_file(
            session, operator(), region_code=region_code, year=year, filename=path.name,
            data=data, indicators=list(indicator_codes) or None, options=options)
        assert created.grid is not None  # a grid file's set records its grid
        click.echo(f"quantity set {created.id}: {created.row_count} aggregates from "
                   f"{created.grid['cells']} cells (sha256 "
                   f"{hashlib.sha256(data).hexdigest()[:12]}…)")
        for warning in created.warnings:
            click.echo(f"  ! {warning}")
        from valuation.raster_cli import print_rows

        print_rows(created.rows)


@cli.command("from-catalog")
@click.option("--region", "region_code", required=True)
@click.option("--year", type=int, required=True)
@click.option("--include-registered", is_flag=True, help="also registered (unverified) products")
@with_appcontext
def from_catalog_command(region_code: str, year: int, include_registered: bool) -> None:
    """Derive a quantity set from the catalog's monitoring records."""
    with unit_of_work() as session:
        created = quantities.create_from_catalog(
            session, operator(), region_code=region_code, year=year,
            include_registered=include_registered)
        click.echo(f"quantity set {created.id}: {created.row_count} rows from the catalog")
        for warning in created.warnings:
            click.echo(f"  ! {warning}")


@cli.command("compare")
@click.argument("base_id", type=int)
@click.argument("other_id", type=int)
@click.option("--basis", type=click.Choice(["current", "constant"]), default="current",
              show_default=True)
@click.option("--unit", type=UNITS, default="万元", show_default=True)
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def compare_command(base_id: int, other_id: int, basis: str, unit: str,
                    chart_path: Path | None) -> None:
    """Change between two runs split into quantity, price, interaction, composition."""
    with unit_of_work() as session:
        result = runs.compare_runs(session, operator(), base_id, other_id, basis=basis)
        chart = (reporting.change_png(session, operator(), base_id, other_id, basis=basis,
                                      unit="亿元") if chart_path else None)
    click.echo(result["method"])
    click.echo(f"{'indicator':<10} {'change':>14} {'quantity':>14} {'price':>14} "
               f"{'interaction':>14} {'composition':>14}   ({unit})")
    items: dict[str, list[dict[str, Any]]] = {}
    for part in result.get("by_item", []):
        items.setdefault(part["indicator_code"], []).append(part)
    lines = []
    for row in result["by_indicator"]:
        lines.append(row)
        lines += [{**part, "indicator_code": f"  - {part['item']}"}
                  for part in items.get(row["indicator_code"], [])]
    for row in [*lines, {"indicator_code": "GEP", **result["totals"]}]:
        click.echo(f"{row['indicator_code'][:10]:<10} {_fmt(row['change'], unit):>14} "
                   f"{_fmt(row['quantity_effect'], unit):>14} "
                   f"{_fmt(row['price_effect'], unit):>14} {_fmt(row['interaction'], unit):>14} "
                   f"{_fmt(row['composition'], unit):>14}")
    for note in result["notes"]:
        click.echo(f"  ! {note}")
    if chart_path and chart:
        chart_path.write_bytes(chart)
        click.echo(f"wrote {chart_path}")


@cli.command("publish")
@click.argument("run_id", type=int)
@with_appcontext
def publish_command(run_id: int) -> None:
    """Publish a run (public from now on)."""
    with unit_of_work() as session:
        runs.publish_run(session, operator(), run_id)
    click.echo(f"run {run_id} published")


@cli.command("reproduce")
@click.argument("run_id", type=int)
@with_appcontext
def reproduce_command(run_id: int) -> None:
    """Recompute a run from its stored inputs; exit 1 unless identical."""
    with unit_of_work() as session:
        result = runs.reproduce_run(session, operator(), run_id)
    click.echo(json.dumps(result, indent=2))
    if not result["identical"]:
        raise SystemExit(1)


@cli.command("asset-value")
@click.argument("run_id", type=int)
@click.option("--rate", "rates", multiple=True, type=float, default=(0.03, 0.05, 0.08),
              show_default=True, help="discount rate as a fraction (repeat)")
@click.option("--horizon", type=int, default=30, show_default=True, help="years")
@click.option("--growth", type=float, default=0.0, show_default=True, help="as a fraction")
@click.option("--unit", type=UNITS, default="亿元", show_default=True)
@with_appcontext
def asset_value_command(run_id: int, rates: tuple[float, ...], horizon: int, growth: float,
                        unit: str) -> None:
    """NPV of the run's GEP as an annual flow (a stock: never added to GEP)."""
    with unit_of_work() as session:
        result = runs.asset_value(session, operator(), run_id, discount_rates=rates,
                                  horizon_years=horizon, growth=growth)
    click.echo(f"annual flow {_fmt(result['annual_flow_yuan'], unit)} {unit} "
               f"({result['basis']} prices), {horizon} years, growth {growth:g}")
    for row in result["sensitivity"]:
        click.echo(f"  rate {row['discount_rate']:.2%}: NPV {_fmt(row['npv'], unit)} {unit}")
    click.echo(result["note"])


@cli.command("template")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("gep-quantities.xlsx"), show_default=True)
@click.option("--year", type=int, default=2024, show_default=True)
def template_command(output: Path, year: int) -> None:
    """Write an XLSX of quantities in the upload format, filled with Wangmo DEMO rows: replace
    them with the county's figures (units such as 亿m³, 万t, 万人次, 万元 are fine)."""
    from valuation.demo import demo_workbook

    output.write_bytes(demo_workbook(year))
    click.echo(f"wrote {output}: columns region_code, year, indicator, item, ecosystem_type, "
               "quantity, unit, origin, note (rows are DEMO examples)")


#: published accounts shipped as the spreadsheets a bureau would hold (valuation/examples/*)
EXAMPLES = Path(__file__).resolve().parent / "examples"


@cli.command("example")
@click.argument("name", type=click.Choice(sorted(
    p.name for p in EXAMPLES.iterdir() if p.is_dir()) if EXAMPLES.is_dir() else []))
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder to write the files into (created if missing)")
def example_command(name: str, output: Path) -> None:
    """Write the files of a published GEP account: its quantities and price book as a bureau's
    spreadsheets (CSV in GBK), custom indicators, and the published values with their table
    references (README.md of the example says where every number comes from)."""
    output.mkdir(parents=True, exist_ok=True)
    for source in sorted((EXAMPLES / name).iterdir()):
        if source.is_file():
            (output / source.name).write_bytes(source.read_bytes())
            click.echo(f"wrote {output / source.name}")


@cli.command("reference")
@with_appcontext
def reference_command() -> None:
    """Load the default price book and CPI series from the reference files (idempotent)."""
    with database().unit_of_work() as session:
        loaded = prices.ensure_reference_data(session)
    click.echo("\n".join(loaded) or "reference data already loaded")


@cli.command("price-books")
@with_appcontext
def price_books_command() -> None:
    """List price books."""
    with database().unit_of_work() as session:
        for book in prices.list_books(session, operator()):
            click.echo(f"{book.version:<20} {book.status:<10} {len(book.entries):>3} entries  "
                       f"{book.title}")


@cli.command("indicators")
@with_appcontext
def indicators_command() -> None:
    """List the indicator registry."""
    with database().unit_of_work() as session:
        for item in indicators.list_indicators(session):
            flags = []
            if not item["default_enabled"]:
                flags.append("optional, off by default")
            if item["grid"]:
                flags.append("grid")
            if item["custom"]:
                flags.append("custom")
            click.echo(f"{item['code']:<8} {item['category']:<13} {item['name_zh']:<8} "
                       f"{item['name_en']:<40} {'|'.join(item['quantity_units']):<12} "
                       f"{', '.join(flags)}")


# --- price books, custom indicators, run detail (what an analyst does, without HTTP) ----------

#: price-book spreadsheet columns (English or Chinese headers)
PRICE_COLUMNS = {
    "parameter": ("参数", "参数名", "parameter_name"),
    "value": ("数值", "价格", "值"),
    "unit": ("单位",),
    "price_year": ("价格年份", "价格年", "年份"),
    "index_series": ("价格指数", "指数", "index"),
    "confirmation": ("确认", "确认状态"),
    "source": ("来源", "数据来源"),
}


def _cell(value: Any) -> Any:
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def price_entries_from_file(path: Path) -> list[Mapping[str, Any]]:
    """The entries of a price-book spreadsheet (CSV UTF-8/GBK or XLSX): one parameter a row;
    `name.item` for a per-item parameter (`agri_price.茶叶`)."""
    from ecovalue import spreadsheet

    sheet = spreadsheet.read_spreadsheet(path.read_bytes(), PRICE_COLUMNS,
                                         required=["parameter", "value", "unit"])
    problems = [f"row {e.row}: {e.message}" for e in sheet.errors]
    problems += [f"missing column {name}" for name in sheet.missing]
    entries: list[Mapping[str, Any]] = []
    for number, row in sheet.rows():
        parameter = str(_cell(row.get("parameter")) or "").strip()
        try:
            value = float(str(row.get("value")).replace(",", ""))
        except (TypeError, ValueError):
            problems.append(f"row {number}: {row.get('value')!r} is not a number")
            continue
        year = _cell(row.get("price_year"))
        try:
            price_year = None if year is None else int(float(str(year)))
        except ValueError:
            problems.append(f"row {number}: {year!r} is not a year")
            continue
        entries.append({
            "parameter": parameter, "value": value, "unit": str(row.get("unit") or "").strip(),
            "price_year": price_year,
            "index_series": _cell(row.get("index_series")),
            "confirmation": _cell(row.get("confirmation")) or "to-confirm",
            "source": str(_cell(row.get("source")) or "")[:500]})
    if problems:
        raise click.ClickException(f"{path.name}: " + "; ".join(problems))
    return entries


@cli.group("price-book")
def price_book_group() -> None:
    """A price book: create a draft, fill it from a spreadsheet, publish it, show it."""


@price_book_group.command("create")
@click.argument("version")
@click.option("--title", required=True, help="what the book is for, e.g. '望谟县 2024 核算价格'")
@click.option("--based-on", help="copy the entries of a book (e.g. default)")
@click.option("--note")
@with_appcontext
def price_book_create_command(version: str, title: str, based_on: str | None,
                              note: str | None) -> None:
    """Create a draft price book, empty or copied from another."""
    with unit_of_work() as session:
        book = prices.create_book(session, operator(), version=version, title=title,
                                  based_on=based_on, note=note)
        click.echo(f"price book {book.version}: draft, {len(book.entries)} entries")


@price_book_group.command("fill")
@click.argument("version")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def price_book_fill_command(version: str, file: Path) -> None:
    """Add or replace a draft's entries from a spreadsheet with the columns parameter (参数),
    value (数值), unit (单位), price_year (价格年份), index_series (价格指数), confirmation
    (确认: to-confirm / confirmed), source (来源). All rows are checked; none is written if
    one is wrong."""
    entries = price_entries_from_file(file)
    with unit_of_work() as session:
        book = prices.upsert_entries(session, operator(), version, entries)
        click.echo(f"price book {book.version}: {len(entries)} entries from {file.name}, "
                   f"{len(book.entries)} in all")


@price_book_group.command("publish")
@click.argument("version")
@with_appcontext
def price_book_publish_command(version: str) -> None:
    """Publish a draft: from then on it never changes and runs may use it."""
    with unit_of_work() as session:
        book = prices.publish_book(session, operator(), version)
        click.echo(f"price book {book.version}: published")


@price_book_group.command("show")
@click.argument("version")
@with_appcontext
def price_book_show_command(version: str) -> None:
    """Every entry of a book: parameter, value, unit, price year, index series, confirmation."""
    with unit_of_work() as session:
        book = prices.get_book(session, operator(), version)
        click.echo(f"price book {book.version} ({book.status}): {book.title}")
        for entry in sorted(book.entries, key=lambda e: e.parameter):
            click.echo(f"  {entry.parameter:<32} {entry.value:>14,.4f} {entry.unit:<12} "
                       f"{entry.price_year or '':<5} {entry.index_series or '-':<12} "
                       f"{entry.confirmation}")


#: custom-indicator spreadsheet columns: one row per value term, the indicator's fields on
#: its first row (rows of one code are one indicator)
INDICATOR_COLUMNS = {
    "code": ("代码", "指标代码"), "category": ("类别",), "name_zh": ("指标名称", "名称"),
    "name_en": ("英文名称",), "quantity_units": ("实物量单位", "单位"),
    "items": ("项目", "子项"), "term": ("值项", "term_name"), "formula": ("公式", "价值公式"),
    "parameters": ("参数", "参数单位"), "money_quantity": (), "note": ("备注",),
}


def indicator_definitions_from_file(path: Path) -> list[dict[str, Any]]:
    """Custom indicator definitions from JSON or YAML (one object or a list, in the shape of
    `POST /valuation/indicators`) or from a spreadsheet (INDICATOR_COLUMNS; `parameters` as
    `name[item]=yuan/t; other=1:coefficient`; lists separated by `|`)."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".yaml", ".yml"):
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            data = json.loads(text)
        else:
            import yaml  # type: ignore[import-untyped]

            data = yaml.safe_load(text)
        return data if isinstance(data, list) else [data]
    from ecovalue import spreadsheet

    sheet = spreadsheet.read_spreadsheet(path.read_bytes(), INDICATOR_COLUMNS,
                                         required=["code", "formula"])
    if sheet.missing or sheet.errors:
        raise click.ClickException(f"{path.name}: missing columns {sheet.missing} "
                                   f"{[e.message for e in sheet.errors]}")
    definitions: dict[str, dict[str, Any]] = {}
    for _number, row in sheet.rows():
        code = str(row["code"]).strip()
        definition = definitions.setdefault(code, {"code": code, "terms": [],
                                                   "parameters": {}})
        for field in ("category", "name_zh", "name_en", "note"):
            if _cell(row.get(field)) is not None:
                definition[field] = str(row[field]).strip()
        if _cell(row.get("quantity_units")) is not None:
            definition["quantity_units"] = [u.strip() for u in
                                            str(row["quantity_units"]).split("|")]
        if _cell(row.get("items")) is not None:
            items = str(row["items"]).strip()
            definition["items"] = None if items == "*" else [i.strip()
                                                             for i in items.split("|")]
        if _cell(row.get("money_quantity")) is not None:
            definition["money_quantity"] = str(row["money_quantity"]).strip().lower() in (
                "true", "1", "yes", "是")
        term = str(_cell(row.get("term")) or f"term{len(definition['terms']) + 1}")
        definition["terms"].append({"name": term, "formula": str(row["formula"]).strip()})
        for part in re.split(r"[;；]", str(_cell(row.get("parameters")) or "")):
            if "=" not in part:
                continue
            name, spec = (p.strip() for p in part.split("=", 1))
            unit, _, kind = spec.partition(":")
            definition["parameters"][name] = {"unit": unit.strip(),
                                              "kind": kind.strip() or "price"}
    return list(definitions.values())


@cli.group("indicator")
def indicator_group() -> None:
    """Custom indicators (admins): added as data, checked like the built-in ones."""


@indicator_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def indicator_add_command(file: Path) -> None:
    """Add the custom indicator(s) of a JSON, YAML, CSV or XLSX file (all or none)."""
    definitions = indicator_definitions_from_file(file)
    with unit_of_work() as session:
        for data in definitions:
            created = indicators.create_custom_indicator(session, operator(), data)
            click.echo(f"indicator {created['code']} {created['name_zh']}: "
                       f"{'; '.join(t['formula'] for t in created['terms'])}")


@cli.command("detail")
@click.argument("run_id", type=int)
@click.option("--unit", type=UNITS, default="元", show_default=True)
@with_appcontext
def detail_command(run_id: int, unit: str) -> None:
    """Every result row of a run -- indicator, sub-item or item, region, ecosystem type --
    with its quantity, unit, unit price and value (current and constant prices)."""
    with unit_of_work() as session:
        view = reporting.run_view(session, operator(), run_id)
        run = runs.get_run(session, operator(), run_id)
        click.echo(f"run {run.id}: region {run.region_code} | year {run.year} | price book "
                   f"{run.price_book.version} | output values "
                   f"{run.options.get('output_value_basis', 'gross')}")
        header = (f"{'indicator':<9} {'item':<14} {'region':<12} {'ecosystem':<11} "
                  f"{'quantity':>18} {'unit':<8} {'unit price':>14} "
                  f"{'current ' + unit:>18} {'constant ' + unit:>18}")
        click.echo(header)
        click.echo("-" * len(header))
        for row in view.results.itertuples(index=False):
            price = "-" if row.unit_price != row.unit_price else f"{row.unit_price:,.4f}"
            click.echo(f"{row.indicator_code:<9} {str(row.item or '-')[:14]:<14} "
                       f"{row.region_code:<12} {row.ecosystem_type:<11} "
                       f"{row.quantity:>18,.4f} {str(row.quantity_unit)[:8]:<8} {price:>14} "
                       f"{_fmt(row.value_current, unit):>18} "
                       f"{_fmt(row.value_constant, unit):>18}")
        click.echo("-" * len(header))
        click.echo(f"{'GEP':<76} {_fmt(run.gep_current, unit):>18} "
                   f"{_fmt(run.gep_constant, unit):>18}")


# raster route: `rows`, `raster-map`, `sample-rasters` (valuation/raster_cli.py)
register_raster_commands(cli)
