"""`ecovalue compensation ...`: agreements, monitored values and settlements from the
server's console (wraps the services; the operator acts as system:cli:<login>).

    ecovalue compensation section add QINGSHUIPU --name-zh 清水铺断面 --region 520000
    ecovalue compensation agreement create chishui.json      # a terms document (JSON)
    ecovalue compensation agreement activate CHISHUI-2018 1
    ecovalue compensation assess QINGSHUIPU 2019 water_quality_class II
    ecovalue compensation import values.xlsx --dry-run
    ecovalue compensation settle CHISHUI-2018 2019           # prepare; another person approves
    ecovalue compensation settlement show 1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import marshmallow as ma
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from ecovalue.printable import yuan_grouped as _yuan
from ledger.compensation import schemas
from ledger.compensation.models import CompensationSettlement
from ledger.compensation.services import agreements, assessments, sections, settlements


def _terms(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text("utf-8"))
        return schemas.TermsIn().load(document)
    except json.JSONDecodeError as exc:
        click.echo(f"error: {path} is not JSON: {exc}", err=True)
    except ma.ValidationError as exc:
        click.echo(f"error: {path} is not a terms document:", err=True)
        click.echo(json.dumps(exc.messages, ensure_ascii=False, indent=2), err=True)
    sys.exit(1)


@click.group("compensation")
def cli() -> None:
    """Ecological compensation: sections, agreements, monitored values, settlements."""


@cli.group("section")
def section_group() -> None:
    """Assessed sections (考核断面) and areas."""


@section_group.command("add")
@click.argument("code")
@click.option("--name-zh", required=True)
@click.option("--name-en")
@click.option("--region", "region_code", required=True, help="catalog region code")
@click.option("--river")
@click.option("--product", "catalog_product_id", type=int,
              help="catalog product whose forest_coverage records the section reads")
@with_appcontext
def section_add(code: str, **values: Any) -> None:
    """Register a section."""
    with unit_of_work() as session:
        section = sections.create_section(session, operator(), {"code": code, **values})
        click.echo(f"section {section.code}: {section.name_zh} ({section.region_code})")


@section_group.command("list")
@with_appcontext
def section_list() -> None:
    """Every section."""
    with unit_of_work() as session:
        for s in sections.list_sections(session, operator()):
            click.echo(f"{s.code:<24} {s.region_code:<12} {s.name_zh} {s.river or ''}")


@cli.group("agreement")
def agreement_group() -> None:
    """Agreements and their versions."""


def _show(agreement: Any) -> None:
    view = agreements.view(agreement)
    click.echo(f"{view['code']} v{view['version']} [{view['status']}] {view['name_zh']} — "
               f"{view['kind_label']}; {_yuan(view['amount_fen'])} yuan")
    for row in view["schedule"]:
        click.echo(f"  {row['period']:<8} {_yuan(row['payment_fen']):>20} yuan"
                   f"  (present value {_yuan(row['present_value_fen'])})")


@agreement_group.command("create")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def agreement_create(path: Path) -> None:
    """Draft a new agreement from a terms document (JSON, as POST /compensation/agreements)."""
    terms = _terms(path)
    with unit_of_work() as session:
        _show(agreements.create_agreement(session, operator(), terms))


@agreement_group.command("version")
@click.argument("code")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def agreement_version(code: str, path: Path) -> None:
    """Draft a new version of an agreement from a terms document."""
    terms = _terms(path)
    with unit_of_work() as session:
        _show(agreements.add_version(session, operator(), code, terms))


@agreement_group.command("activate")
@click.argument("code")
@click.argument("version", type=int)
@with_appcontext
def agreement_activate(code: str, version: int) -> None:
    """Put a draft version into force (then immutable)."""
    with unit_of_work() as session:
        _show(agreements.put_in_force(session, operator(), code, version))


@agreement_group.command("terminate")
@click.argument("code")
@with_appcontext
def agreement_terminate(code: str) -> None:
    """End the version in force (no further period is settled)."""
    with unit_of_work() as session:
        _show(agreements.terminate(session, operator(), code))


@agreement_group.command("show")
@click.argument("code")
@click.option("--version", type=int, help="default: the version in force, else the latest")
@with_appcontext
def agreement_show(code: str, version: int | None) -> None:
    """An agreement and its schedule."""
    with unit_of_work() as session:
        actor = operator()
        _show(agreements.get_version(session, actor, code, version) if version
              else agreements.current(session, actor, code))


@agreement_group.command("list")
@with_appcontext
def agreement_list() -> None:
    """Every agreement (its version in force, else its latest)."""
    with unit_of_work() as session:
        for a in agreements.list_agreements(session, operator()):
            click.echo(f"{a.code:<24} v{a.version:<3} {a.status:<11} {a.kind:<18} "
                       f"{_yuan(a.amount_fen):>20} yuan  {a.name_zh}")


@cli.command("assess")
@click.argument("section")
@click.argument("period")
@click.argument("indicator")
@click.argument("value")
@click.option("--source", help="monitoring report, published valuation run")
@with_appcontext
def assess(section: str, period: str, indicator: str, value: str, source: str | None) -> None:
    """Record one monitored value (water-quality class as I..V or 劣V; else a number)."""
    with unit_of_work() as session:
        row = assessments.record_values(session, operator(), [{
            "section": section, "period": period, "indicator": indicator, "value": value,
            "source": source}])[0]
        click.echo(f"recorded #{row.id}: {section} {period} {indicator} = {row.value:g}")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="check every row; record nothing")
@with_appcontext
def import_values(path: Path, dry_run: bool) -> None:
    """Monitored values from a CSV (UTF-8 or GBK) or XLSX file."""
    with unit_of_work() as session:
        rows = assessments.import_file(session, operator(), path.read_bytes(), path.name,
                                       dry_run=dry_run)
    click.echo(f"{'would record' if dry_run else 'recorded'} {len(rows)} values from "
               f"{path.name}")


def _show_settlement(session: Any, settlement: CompensationSettlement) -> None:
    view = settlements.view(session, settlement)
    statement = view["statement"]
    click.echo(f"settlement #{view['id']} {view['agreement_code']} v{view['agreement_version']}"
               f" {view['period']} [{view['status']}]: {_yuan(view['amount_fen'])} yuan")
    for e in statement["evaluations"]:
        click.echo(f"  {'met   ' if e['met'] else 'FAILED'} {e['condition']}: {e['indicator']} "
                   f"at {e['section']} = {e['value']:g} ({e['comparison']} {e['target']:g})")
    for p in statement["positions"]:
        click.echo(f"  {p['party']:<14} contributes {_yuan(p['contribution_fen']):>18}  "
                   f"receives {_yuan(p['receives_fen']):>18}  net {_yuan(p['net_fen']):>18}")
    for p in view["payments"]:
        click.echo(f"  pay {p['payer_key']} -> {p['payee_key']}: {_yuan(p['amount_fen'])} yuan "
                   f"({p['from_account']} -> {p['to_account']}, ledger tx "
                   f"{p['pending_tx_id']}, {p['status']})")


@cli.command("settle")
@click.argument("code")
@click.argument("period")
@with_appcontext
def settle(code: str, period: str) -> None:
    """Prepare the settlement of a period (another person approves it)."""
    with unit_of_work() as session:
        settlement, created = settlements.prepare(session, operator(), code, period)
        if not created:
            click.echo(f"{code} {period} is already settled (settling twice pays once):")
        _show_settlement(session, settlement)


@cli.group("settlement")
def settlement_group() -> None:
    """Settlements: show, approve, reject."""


@settlement_group.command("show")
@click.argument("settlement_id", type=int)
@with_appcontext
def settlement_show(settlement_id: int) -> None:
    """A settlement's statement and payments."""
    with unit_of_work() as session:
        _show_settlement(session, settlements.get_settlement(session, operator(),
                                                             settlement_id))


@settlement_group.command("export")
@click.argument("settlement_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="a .xlsx, .csv or .html (printable page) file")
@with_appcontext
def settlement_export(settlement_id: int, output: Path) -> None:
    """Write a settlement's statement to a spreadsheet or a printable page (by the suffix)."""
    fmt = {".csv": "csv", ".html": "html", ".htm": "html"}.get(output.suffix.lower(), "xlsx")
    with unit_of_work() as session:
        data = settlements.export_statement(session, operator(), settlement_id, fmt)
    output.write_bytes(data)
    click.echo(f"settlement #{settlement_id}: statement written to {output}")


@settlement_group.command("approve")
@click.argument("settlement_id", type=int)
@click.option("--note")
@with_appcontext
def settlement_approve(settlement_id: int, note: str | None) -> None:
    """Approve (post the payments); not by whoever prepared it."""
    with unit_of_work() as session:
        _show_settlement(session, settlements.approve(session, operator(), settlement_id,
                                                      note=note))


@settlement_group.command("reject")
@click.argument("settlement_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def settlement_reject(settlement_id: int, reason: str) -> None:
    """Reject (void the payments); the period may be settled again."""
    with unit_of_work() as session:
        _show_settlement(session, settlements.reject(session, operator(), settlement_id,
                                                     reason=reason))


@cli.command("verify")
@with_appcontext
def verify() -> None:
    """Agreements in force unchanged, settlements' payments as their statements say; exit 1
    on a problem (also run by `ecovalue ledger verify`)."""
    with unit_of_work() as session:
        problems = settlements.verify(session, operator())
    for problem in problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("compensation verified: agreements in force unchanged, every settlement's "
               "payments as its statement says")
