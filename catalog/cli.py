"""`ecovalue catalog ...`: the catalog's console commands (wrapping the services).

    ecovalue catalog import products.csv --dry-run
    ecovalue catalog import monitoring.xlsx --kind monitoring
    ecovalue catalog template products --format xlsx -o products.xlsx
    ecovalue catalog export -o wangmo.xlsx --county 522326
    ecovalue catalog summary
    ecovalue catalog regions load                 # the national GB/T 2260 table
    ecovalue catalog regions add 530629104 旧府乡  # a township below it
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from flask.cli import with_appcontext

from catalog.services import exports, importing, products, regions, synonyms
from catalog.vocabulary import VOCABULARIES
from ecovalue.cli import database, operator, unit_of_work


@click.group("catalog")
def cli() -> None:
    """Ecological product catalog: bulk import, templates, export, summary."""


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["products", "monitoring", "parties"]),
              default="products", show_default=True)
@click.option("--dry-run", is_flag=True, help="check every row and report; write nothing")
@click.option("--status", type=click.Choice(["draft", "registered"]), default="registered",
              show_default=True, help="state of newly created products")
@with_appcontext
def import_command(file: Path, kind: str, dry_run: bool, status: str) -> None:
    """Import products or monitoring records from a CSV (UTF-8 or GBK) or XLSX file: all rows
    or none; the same file twice creates no duplicates."""
    data = file.read_bytes()
    with unit_of_work() as session:
        if kind == "products":
            report = importing.import_products(session, operator(), data, file.name,
                                               dry_run=dry_run, initial_status=status)
        elif kind == "parties":
            report = importing.import_parties(session, operator(), data, file.name,
                                              dry_run=dry_run)
        else:
            report = importing.import_monitoring(session, operator(), data, file.name,
                                                 dry_run=dry_run)
    values = dataclasses.asdict(report)
    verb = "would be" if dry_run else "were"
    click.echo(f"{file.name}: {values['rows']} rows ({values['encoding']}); "
               f"{values['created']} {verb} created, {values['updated']} {verb} updated, "
               f"{values['unchanged']} unchanged"
               + (f", {values['sent_back_for_verification']} sent back for verification"
                  if values["sent_back_for_verification"] else "")
               + ("" if dry_run or values["batch_id"] is None
                  else f" (import batch {values['batch_id']})"))
    if report.ignored_columns:
        click.echo(f"ignored columns: {', '.join(report.ignored_columns)}")
    for holder in report.holders_to_create:
        click.echo(f"holder to {'create' if dry_run else 'created'}: {holder['kind']} "
                   f"{holder['name_zh']} in {holder['region_code']}"
                   + (f", credit code {holder['credit_code']}" if holder["credit_code"] else "")
                   + (f", ID {holder['id_number_masked']}" if holder["id_number_masked"] else "")
                   + ("" if holder["identified"] else
                      " (unidentified: no credit code, cannot trade or receive money)")
                   + f" (rows {', '.join(map(str, holder['rows']))})")
    for change in report.changes:
        diffs = "; ".join(f"{c['field']}: {c['old']} → {c['new']}" for c in change["fields"])
        what = (f"party {change['party_id']}" if change.get("party_id") is not None
                else f"product {change['product_id']}")
        click.echo(f"row {change['row']}: {what} {change['name_zh']} "
                   f"({change['status']}): {diffs}"
                   + (f" [{change['lifecycle']}]" if change["lifecycle"] else ""))
    if dry_run:
        click.echo("dry run: nothing was written")


@cli.command("template")
@click.argument("kind", type=click.Choice(["products", "monitoring", "parties"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def template_command(kind: str, fmt: str, output: Path) -> None:
    """Write an import template (header and one example row)."""
    output.write_bytes(exports.template(kind, fmt))
    click.echo(f"wrote {output}")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="default: from the output file's extension")
@click.option("--county", help="6-digit county code")
@click.option("--status", multiple=True, help="draft, registered, verified ... (repeatable)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def export_command(fmt: str | None, county: str | None, status: tuple[str, ...],
                   output: Path) -> None:
    """Export products in the import template's columns."""
    fmt = fmt or ("xlsx" if output.suffix.lower() == ".xlsx" else "csv")
    with database().session(write=False) as session:
        data = exports.export_products(session, operator(), fmt, county_code=county,
                                       status=list(status) or None)
    output.write_bytes(data)
    click.echo(f"wrote {output}")


@cli.command("summary")
@click.option("--county", help="6-digit county code")
@with_appcontext
def summary_command(county: str | None) -> None:
    """Products and areas per county and type (not retired)."""
    with database().session(write=False) as session:
        rows = products.summary(session, operator(), county_code=county)
    for r in rows:
        area = f"{r['area_ha']:.2f} ha" if r["area_ha"] is not None else "area unknown"
        click.echo(f"{r['county_code']} {r['county_name_zh'] or '':<6} {r['type_code']:<24} "
                   f"{r['products']:>6} products ({r['verified']} verified)  {area}")


@cli.group("regions")
def regions_group() -> None:
    """Regions: the national table (GB/T 2260) and the townships and villages below it."""


@regions_group.command("load")
@with_appcontext
def regions_load_command() -> None:
    """Load the national province/prefecture/county table (GB/T 2260) where rows are missing
    (idempotent; `make run` runs it)."""
    with unit_of_work() as session:
        added = regions.load_national_regions(session)
    click.echo(f"national regions (GB/T 2260): {added} added")


@regions_group.command("add")
@click.argument("code")
@click.argument("name_zh")
@click.option("--name-en", help="English / pinyin name")
@with_appcontext
def regions_add_command(code: str, name_zh: str, name_en: str | None) -> None:
    """Add a township (9 digits) or village (12 digits) below an existing region, or (admins)
    a prefecture or county code newer than the national table."""
    with unit_of_work() as session:
        region = regions.create_region(session, operator(), code=code, name_zh=name_zh,
                                       name_en=name_en)
        click.echo(f"{region.code} {region.level} {region.name_zh} (under {region.parent_code})")


@regions_group.command("list")
@click.option("--parent", help="the parent's code: e.g. 530000 for Yunnan's prefectures")
@click.option("--level", type=click.Choice(["province", "prefecture", "county", "township",
                                            "village"]))
@click.option("-q", "query", help="part of the Chinese or English name")
@with_appcontext
def regions_list_command(parent: str | None, level: str | None, query: str | None) -> None:
    """List regions by code."""
    with database().session(write=False) as session:
        for region in session.scalars(regions.list_regions(level=level, parent_code=parent,
                                                           q=query)):
            click.echo(f"{region.code:<12} {region.level:<10} {region.name_zh}"
                       + (f" ({region.name_en})" if region.name_en else ""))


@cli.group("synonyms")
def synonyms_group() -> None:
    """Synonyms of the vocabularies (物质产品 = provisioning, 林下食用菌 = understory_fungi ...)."""


@synonyms_group.command("list")
@click.option("--vocabulary", "vocabulary_name",
              type=click.Choice(VOCABULARIES))
@with_appcontext
def synonyms_list_command(vocabulary_name: str | None) -> None:
    """The shipped synonyms and those admins added."""
    with database().session(write=False) as session:
        for row in synonyms.list_synonyms(session, vocabulary_name=vocabulary_name):
            click.echo(f"{row['vocabulary']:<19} {row['term']:<12} -> {row['code']:<24} "
                       f"{row['source']}")


@synonyms_group.command("add")
@click.argument("vocabulary_name", metavar="VOCABULARY",
                type=click.Choice(VOCABULARIES))
@click.argument("term")
@click.argument("code")
@click.option("--note", help="why (a county's usage, a standard's wording)")
@with_appcontext
def synonyms_add_command(vocabulary_name: str, term: str, code: str, note: str | None) -> None:
    """Add TERM as a spelling of CODE (a spelling means one code only)."""
    with unit_of_work() as session:
        row = synonyms.add_synonym(session, operator(), vocabulary_name=vocabulary_name,
                                   term=term, code=code, note=note)
    click.echo(f"{row['vocabulary']}: {row['term']} -> {row['code']}"
               + (" (already understood)" if row["source"] == "existing" else ""))
