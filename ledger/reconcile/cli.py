"""`ecovalue reconcile ...`: reconciliation from the server's console (wraps the services).

    ecovalue reconcile bank set ABC --name-zh 中国农业银行 -c value_date=交易时间 -c memo=用途说明
    ecovalue reconcile import statement.csv --account DEMO-FOREST-FUND --period 2026-11
    ecovalue reconcile run --account DEMO-FOREST-FUND --period 2026-11
    ecovalue reconcile runs | show 1
    ecovalue reconcile confirm 1 4 | explain 1 5 --reason "..." | unmatch 1 3 --reason "..."
    ecovalue reconcile match 1 --line 7 --tx 12 --reason "..."
    ecovalue reconcile close 2026-11
    ecovalue reconcile report 2026-11 -o report.xlsx      (or .html)
    ecovalue reconcile rules show | set rules.json
    ecovalue reconcile simulate 42                        (replay a simulator seed)

Sign-off is the finance role's, by someone other than the preparer: over HTTP
(`POST /reconcile/runs/{id}/signoff`) or in the console (/console), not here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import render_template
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from ledger.core.calendar import format_month, parse_month
from ledger.reconcile import matching, simulate
from ledger.reconcile.models import ReconcileRun
from ledger.reconcile.services import reports, runs, statements


def _month(_ctx: object, _param: object, value: str) -> dt.date:
    try:
        return parse_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _run(action: Callable[[Any], Any]) -> Any:
    with unit_of_work() as session:
        return action(session)


@click.group("reconcile")
def cli() -> None:
    """Bank and treasury reconciliation: statements, runs, decisions, period close, reports."""


@cli.group("bank")
def bank_group() -> None:
    """Column mappings, one per bank."""


@bank_group.command("set")
@click.argument("bank_code")
@click.option("--name-zh", required=True)
@click.option("--source", type=click.Choice(["bank", "treasury"]), default="bank")
@click.option("-c", "--column", "columns", multiple=True, required=True,
              help="FIELD=HEADER, repeated (fields: value_date amount credit debit balance "
                   "bank_serial reference counterparty memo transaction_id)")
@with_appcontext
def bank_set(bank_code: str, name_zh: str, source: str, columns: tuple[str, ...]) -> None:
    """Save how BANK_CODE's statement files name their columns."""
    mapping: dict[str, list[str]] = {}
    for text in columns:
        field, sep, header = text.partition("=")
        if not sep or not header.strip():
            raise click.BadParameter(f"{text!r}: expected FIELD=HEADER")
        mapping.setdefault(field.strip(), []).append(header.strip())
    _run(lambda s: statements.put_mapping(s, operator(), bank_code, name_zh=name_zh,
                                          columns=mapping, source=source))
    click.echo(f"bank {bank_code}: {len(columns)} headers saved")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", required=True, help="ledger account code the bank account mirrors")
@click.option("--period", required=True, callback=_month, help="YYYY-MM")
@click.option("--bank", "bank_code", default=statements.DEFAULT_BANK)
@click.option("--opening", "opening", type=int, help="opening balance, fen")
@click.option("--closing", "closing", type=int, help="closing balance, fen")
@with_appcontext
def import_command(file: Path, account: str, period: dt.date, bank_code: str,
                   opening: int | None, closing: int | None) -> None:
    """Import a statement (CSV in UTF-8 or GBK, or XLSX); every problem is listed."""
    result = _run(lambda s: statements.import_statement(
        s, operator(), file.read_bytes(), file.name, account=account, period=period,
        bank_code=bank_code, opening_balance_fen=opening, closing_balance_fen=closing))
    click.echo(f"statement {result.statement_id} ({result.account_code} "
               f"{format_month(result.period)}): {result.lines_added} lines added, "
               f"{result.lines_already_present} already held, {result.line_count} in all; "
               f"closing balance {reports.yuan(result.closing_balance_fen)} yuan")


@cli.command("run")
@click.option("--account", required=True)
@click.option("--period", required=True, callback=_month)
@with_appcontext
def run_command(account: str, period: dt.date) -> None:
    """Match the month's statement against the ledger."""
    def create(session: Any) -> tuple[int, Any]:
        run = runs.create_run(session, operator(), account=account, period=period)
        return run.id, runs.summarize(session, run)

    run_id, summary = _run(create)
    click.echo(f"run {run_id}: " + ", ".join(f"{k} {v}" for k, v in summary.counts.items())
               + f"; {summary.unresolved} unresolved")


@cli.command("runs")
@click.option("--period", callback=lambda c, p, v: _month(c, p, v) if v else None)
@with_appcontext
def runs_command(period: dt.date | None) -> None:
    """List runs: id, month, account, status, preparer, signer."""
    with unit_of_work() as session:
        for run in session.scalars(runs.list_runs(session, operator(), period=period)):
            click.echo(f"{run.id}\t{format_month(run.period)}\t{run.account_code}\t"
                       f"{run.status}\t{run.prepared_by}\t{run.signed_off_by or '-'}")


@cli.command("show")
@click.argument("run_id", type=int)
@with_appcontext
def show_command(run_id: int) -> None:
    """A run's reconciliation statement and its items."""
    with unit_of_work() as session:
        run: ReconcileRun = runs.get_run(session, operator(), run_id)
        summary = runs.summarize(session, run)
        click.echo(f"run {run.id}  {run.account_code}  {format_month(run.period)}  "
                   f"{run.status}")
        click.echo(f"  ledger closing        {reports.yuan(summary.ledger_closing_fen):>18}")
        click.echo(f"+ opening difference    {reports.yuan(summary.opening_difference_fen):>18}")
        click.echo(f"+ only in the statement {reports.yuan(summary.outstanding_statement_fen):>18}")
        click.echo(f"- only in the ledger    {reports.yuan(summary.outstanding_ledger_fen):>18}")
        click.echo(f"= reconciled            {reports.yuan(summary.reconciled_fen):>18}"
                   f"  (statement {reports.yuan(summary.statement_closing_fen)}, "
                   f"{'balanced' if summary.balanced else 'NOT balanced'})")
        for item in session.scalars(runs.items(session, operator(), run_id)):
            confidence = f"{item.confidence:.2f}" if item.confidence is not None else "-"
            click.echo(f"item {item.id}\t{item.category}\t{item.rule or '-'}\t{confidence}\t"
                       f"{item.status}\tlines {item.line_ids}\ttx {item.transaction_ids}\t"
                       f"{reports.yuan(item.difference_fen)}")


@cli.command("confirm")
@click.argument("run_id", type=int)
@click.argument("item_id", type=int)
@click.option("--reason")
@with_appcontext
def confirm_command(run_id: int, item_id: int, reason: str | None) -> None:
    """Accept a proposed match."""
    _run(lambda s: runs.confirm(s, operator(), run_id, item_id, reason=reason))
    click.echo(f"item {item_id} confirmed")


@cli.command("explain")
@click.argument("run_id", type=int)
@click.argument("item_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def explain_command(run_id: int, item_id: int, reason: str) -> None:
    """Explain an unresolved item."""
    _run(lambda s: runs.explain(s, operator(), run_id, item_id, reason=reason))
    click.echo(f"item {item_id} explained")


@cli.command("unmatch")
@click.argument("run_id", type=int)
@click.argument("item_id", type=int)
@click.option("--reason", required=True)
@with_appcontext
def unmatch_command(run_id: int, item_id: int, reason: str) -> None:
    """Undo a match."""
    created = _run(lambda s: runs.unmatch(s, operator(), run_id, item_id, reason=reason))
    click.echo(f"item {item_id} unmatched; open items {created}")


@cli.command("match")
@click.argument("run_id", type=int)
@click.option("--line", "lines", type=int, multiple=True, required=True)
@click.option("--tx", "transactions", type=int, multiple=True, required=True)
@click.option("--reason", required=True)
@with_appcontext
def match_command(run_id: int, lines: tuple[int, ...], transactions: tuple[int, ...],
                  reason: str) -> None:
    """Match statement lines and ledger transactions by hand (sums equal)."""
    item = _run(lambda s: runs.manual_match(s, operator(), run_id, line_ids=list(lines),
                                            transaction_ids=list(transactions),
                                            reason=reason).id)
    click.echo(f"item {item}: lines {list(lines)} matched with transactions "
               f"{list(transactions)}")


@cli.command("close")
@click.argument("month", callback=_month)
@click.option("--note")
@with_appcontext
def close_command(month: dt.date, note: str | None) -> None:
    """Close the ledger month once every statement of it is signed off."""
    _run(lambda s: runs.close_period(s, operator(), month, note=note))
    click.echo(f"period {format_month(month)} closed")


@cli.command("report")
@click.argument("month", callback=_month)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="report.xlsx or report.html")
@with_appcontext
def report_command(month: dt.date, output: Path) -> None:
    """The month's report: XLSX (one sheet per topic) or printable HTML, by the file name."""
    with unit_of_work() as session:
        built = reports.build_report(session, operator(), month)
        if output.suffix.lower() == ".html":
            output.write_text(render_template("reconcile/report_print.html", report=built,
                                              yuan=reports.yuan),
                              encoding="utf-8")
        else:
            output.write_bytes(reports.report_xlsx(built))
    click.echo(f"report for {format_month(month)} written to {output}")


@cli.group("rules")
def rules_group() -> None:
    """The ordered matching rules."""


@rules_group.command("show")
@with_appcontext
def rules_show() -> None:
    """Print the rules in force as JSON."""
    with unit_of_work() as session:
        version, rules = runs.get_rules(session, operator())
    click.echo(json.dumps({"version": version, "rules": rules}, ensure_ascii=False, indent=2))


@rules_group.command("set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--note")
@with_appcontext
def rules_set(file: Path, note: str | None) -> None:
    """Save the rules of a JSON file (a list, or {"rules": [...]}) as a new version."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    rules = data.get("rules") if isinstance(data, dict) else data
    version, _ = _run(lambda s: runs.put_rules(s, operator(), rules, note=note))
    click.echo(f"rules version {version} saved")


@cli.command("simulate")
@click.argument("seed", type=int)
@with_appcontext
def simulate_command(seed: int) -> None:
    """Replay a simulator seed: the injected discrepancies and what the engine found."""
    sim = simulate.simulate(seed)
    found = matching.match(sim.lines, sim.items).findings()
    precision, recall = simulate.precision_recall(found, sim.injected, sim.expected)
    click.echo(f"seed {seed}: {len(sim.items)} payments, {len(sim.lines)} lines, "
               f"{len(sim.injected)} injected; precision {precision:.3f} recall {recall:.3f}")
    for finding in sorted(sim.expected ^ found, key=str):
        side = "missed" if finding in sim.expected else "unexpected"
        click.echo(f"  {side}: {finding[0]} {finding[1]} lines {sorted(finding[2])} "
                   f"tx {sorted(finding[3])}")
