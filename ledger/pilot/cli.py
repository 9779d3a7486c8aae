"""`ecovalue pilot ...`: the thermal-power pilot from the server's console (wraps the services).

    ecovalue pilot factors list
    ecovalue pilot factors upload FILE --version 2026-1 --title "MEE 2026 factors"
    ecovalue pilot compliance 2025 [-o pilot-2025.xlsx]
    ecovalue pilot fund [--year 2025]
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from ecovalue.printable import yuan_grouped as _yuan
from ledger.pilot.services import compliance, factors


@click.group("pilot")
def cli() -> None:
    """Thermal-power CO2 pilot: factor tables, compliance, the fund's inflows."""


@cli.group("factors")
def factors_group() -> None:
    """Emission-factor table versions."""


@factors_group.command("list")
@with_appcontext
def list_factors() -> None:
    """Every version, and the factors of the newest."""
    with unit_of_work() as session:
        newest = factors.latest_table(session, operator())
        for table in factors.list_tables(session):
            click.echo(f"{table.version:<20} {table.row_count:>4} rows  {table.content_sha256[:12]}"
                       f"  {table.title}")
        click.echo(f"\nnewest: {newest.version}")
        for row in factors.rows_of(session, newest.id):
            click.echo(f"  {row.factor:<40} {row.year or '-':>6} {row.value:>12} "
                       f"{row.unit:<14} {row.status}")


@factors_group.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="new version label")
@click.option("--title", required=True)
@click.option("--note", default=None)
@with_appcontext
def upload_factors(file: Path, version: str, title: str, note: str | None) -> None:
    """Store a new version of the factor table from a CSV or XLSX file."""
    with unit_of_work() as session:
        table = factors.upload_table(session, operator(), version=version, title=title,
                                     note=note, data=file.read_bytes())
        click.echo(f"factor table {table.version}: {table.row_count} rows, "
                   f"sha256 {table.content_sha256}")


@cli.command("compliance")
@click.argument("year", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="write the pilot report (XLSX) here")
@with_appcontext
def show_compliance(year: int, output: Path | None) -> None:
    """Each plant's position for YEAR: emissions, obligation, retired, paid, shortfall."""
    with unit_of_work() as session:
        data = compliance.compliance(session, operator(), year)
        for row in data["plants"]:
            click.echo(f"{row['plant']['id']:>5} {row['plant']['name_zh'] or '':<28} "
                       f"{row['status']:<18} emissions {row['emissions_tco2'] or '-':>10} t  "
                       f"owed {row['obligation_t'] if row['obligation_t'] is not None else '-':>8}"
                       f" t  retired {row['retired_t'] or 0:>8} t  fee {row['fee_t'] or 0:>8} t"
                       f"  shortfall {row['shortfall_t'] or 0:>8} t")
        if output is not None:
            output.write_bytes(compliance.report_xlsx(session, operator(), year))
            click.echo(f"pilot report written to {output}")


@cli.command("fund")
@click.option("--year", type=int, default=None, help="only this compliance year's payments")
@with_appcontext
def show_fund(year: int | None) -> None:
    """The fund's inflows from the pilot, payment by payment."""
    with unit_of_work() as session:
        data = compliance.fund_statement(session, operator(), year=year)
    for line in data["lines"]:
        click.echo(f"{line['settled_on']} {line['obligation_code']:<16} "
                   f"{line['plant_name_zh'] or '':<28} {line['tonnes']:>8} t "
                   f"{_yuan(line['amount_fen']):>14} yuan  tx {line['ledger_transaction_id']}")
    for fund in data["funds"]:
        click.echo(f"fund {fund['account']}: balance {_yuan(fund['balance_fen'])} yuan")
    click.echo(f"total paid in by the pilot: {_yuan(data['total_fen'])} yuan")
