"""`ecovalue sharing ...`: benefit sharing from the server's console (wraps the services).

    ecovalue sharing register show 7 --as-of 2026-11-30
    ecovalue sharing run prepare --reference R1 --fund FUND --rule SANMING --amount-fen 100000 \\
        --collective 7 --record-date 2026-11-30 --preparer wang
    ecovalue sharing run approve 1 --approver li     # another person than the preparer
    ecovalue sharing run reverse 1 --reason "wrong record date"   # 红字冲销, all or none
    ecovalue sharing trace payment 42                 # where a plant's payment went
    ecovalue sharing trace household 12               # where a household's money came from

The console acts as the system operator; `--preparer` and `--approver` name the two people
of the four-eyes rule (recorded in the audit trail as system:cli:<name>).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from ecovalue.auth import system_principal
from ecovalue.cli import operator, unit_of_work
from ecovalue.clock import local_today
from ledger.sharing.services import config, register, reversal, runs, statements, trace
from ledger.sharing.services.statements import yuan

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@click.group("sharing")
def cli() -> None:
    """Benefit sharing: villager register, rules, distributions, purchases, traceability."""


@cli.group("register")
def register_group() -> None:
    """The villager register of a collective."""


@register_group.command("add")
@click.option("--collective", "collective", type=int, required=True, help="collective party id")
@click.option("--household", "household", type=int, required=True, help="household party id")
@click.option("--date", "day", type=DATE, required=True, help="effective date (YYYY-MM-DD)")
@click.option("--shares", type=int, default=0, show_default=True)
@click.option("--members", type=int, default=1, show_default=True)
@click.option("--trees", type=int, default=0, show_default=True)
@click.option("--area-m2", "area_m2", type=int, default=0, show_default=True)
@click.option("--left", is_flag=True, help="the household leaves the collective")
@click.option("--reason")
@with_appcontext
def register_add(collective: int, household: int, day: dt.datetime, shares: int, members: int,
                 trees: int, area_m2: int, left: bool, reason: str | None) -> None:
    """Record a household joining, changing or leaving (from --date)."""
    with unit_of_work() as session:
        entry = register.record_entry(
            session, operator(), collective_party_id=collective, household_party_id=household,
            effective_date=day.date(), status="left" if left else "member", shares=shares,
            members=members, trees=trees, area_m2=area_m2, reason=reason)
    click.echo(f"register entry {entry.id}: household {household} in {collective} from "
               f"{entry.effective_date} ({entry.status})")


@register_group.command("show")
@click.argument("collective", type=int)
@click.option("--as-of", "as_of", type=DATE)
@with_appcontext
def register_show(collective: int, as_of: dt.datetime | None) -> None:
    """The households of a collective as of a date (identifiers masked)."""
    day = _date(as_of) or local_today()
    with unit_of_work() as session:
        rows = register.register_as_of(session, operator(), collective, day)
    click.echo(f"collective {collective} as of {day}: {len(rows)} households")
    for r in rows:
        click.echo(f"{r.household_party_id:>8} {r.name_zh:<12} shares {r.shares:>6} trees "
                   f"{r.trees:>5} area {r.area_m2:>7} m2 members {r.members:>2} "
                   f"{r.bank_account_masked or ''}")


@cli.group("rule")
def rule_group() -> None:
    """Benefit-sharing rules."""


@rule_group.command("create")
@click.argument("code")
@click.option("--name-zh", required=True)
@click.option("--name-en")
@click.option("--source-kind", default="fund", show_default=True)
@click.option("--source-ref")
@click.option("--definition", required=True, help="the split tree as JSON, or @file.json")
@with_appcontext
def rule_create(code: str, name_zh: str, name_en: str | None, source_kind: str,
                source_ref: str | None, definition: str) -> None:
    """A rule with its first version."""
    text = Path(definition[1:]).read_text(encoding="utf-8") if definition.startswith("@") \
        else definition
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    with unit_of_work() as session:
        rule, version = config.create_rule(session, operator(), code=code, name_zh=name_zh,
                                           name_en=name_en, source_kind=source_kind,
                                           source_ref=source_ref, definition=tree)
    click.echo(f"rule {rule.code} version {version.version}")


@cli.group("run")
def run_group() -> None:
    """Distribution runs."""


@run_group.command("prepare")
@click.option("--reference", required=True)
@click.option("--fund", required=True, help="fund account code")
@click.option("--rule", required=True, help="rule code")
@click.option("--amount-fen", "amount_fen", type=int, required=True)
@click.option("--collective", "collectives", type=int, multiple=True, required=True)
@click.option("--record-date", "record_date", type=DATE, required=True)
@click.option("--memo")
@click.option("--preparer", required=True, help="who prepares (four eyes)")
@with_appcontext
def run_prepare(reference: str, fund: str, rule: str, amount_fen: int,
                collectives: tuple[int, ...], record_date: dt.datetime, memo: str | None,
                preparer: str) -> None:
    """Prepare a distribution (the allocation preview)."""
    with unit_of_work() as session:
        result = runs.prepare_run(session, system_principal(f"cli:{preparer}"),
                                  reference=reference, fund_code=fund, rule_code=rule,
                                  amount_fen=amount_fen, collective_party_ids=list(collectives),
                                  record_date=record_date.date(), memo=memo)
    click.echo(f"run {result.run.id} {result.run.status}: {result.run.line_count} lines, "
               f"{yuan(result.run.amount_fen)} yuan" + (" (already there)" if result.replayed
                                                       else ""))


@run_group.command("approve")
@click.argument("run_id", type=int)
@click.option("--approver", required=True, help="who approves (not the preparer)")
@with_appcontext
def run_approve(run_id: int, approver: str) -> None:
    """Approve and pay a prepared distribution."""
    with unit_of_work() as session:
        result = runs.approve_run(session, system_principal(f"cli:{approver}"), run_id)
    click.echo(f"run {run_id} {result.run.status}: ledger batch {result.run.ledger_batch_id}"
               + (" (already paid)" if result.replayed else ""))


@run_group.command("reverse")
@click.argument("run_id", type=int)
@click.option("--reason", required=True, help="why (shown on the statements)")
@click.option("--reverser", help="who reverses (not the preparer; default: the console "
                                 "operator)")
@with_appcontext
def run_reverse(run_id: int, reason: str, reverser: str | None) -> None:
    """Reverse a paid distribution (红字冲销): every ledger transaction of it, all or none."""
    actor = system_principal(f"cli:{reverser}") if reverser else operator()
    with unit_of_work() as session:
        result = reversal.reverse_run(session, actor, run_id, reason=reason)
        run = result.run
        pairs = run.reversal_transaction_ids or []
    click.echo(f"run {run_id} {run.status} on {run.reversed_on}: {yuan(run.amount_fen)} yuan "
               f"back to {run.payer_account_code}, {len(pairs)} ledger transaction(s) reversed "
               f"({', '.join(f'{a} -> {b}' for a, b in pairs)})"
               + (" (already reversed)" if result.replayed else ""))


@run_group.command("show")
@click.argument("run_id", type=int)
@with_appcontext
def run_show(run_id: int) -> None:
    """A run and its lines."""
    with unit_of_work() as session:
        run = runs.read_run(session, operator(), run_id)
        lines = session.scalars(runs.lines_of(session, operator(), run_id)).all()
        click.echo(f"run {run.id} {run.kind} {run.reference} {run.status} "
                   f"{yuan(run.amount_fen)} yuan, record date {run.record_date}")
        for ln in lines:
            click.echo(f"{ln.line_no:>6} {ln.kind:<10} {ln.account_code:<28} "
                       f"{yuan(ln.amount_fen):>14}  {ln.part}")


@cli.group("trace")
def trace_group() -> None:
    """Where every fen went."""


@trace_group.command("payment")
@click.argument("transaction_id", type=int)
@with_appcontext
def trace_payment(transaction_id: int) -> None:
    """Every collective and household that received part of a payment."""
    with unit_of_work() as session:
        out = trace.trace_payment(session, operator(), transaction_id, detail=True)
    click.echo(f"payment {transaction_id}: {yuan(out['amount_fen'])} yuan, distributed "
               f"{yuan(out['distributed_fen'])}, undistributed {yuan(out['undistributed_fen'])}")
    for r in out["recipients"]:
        click.echo(f"  run {r.run_id} {r.kind:<10} {r.name_zh or r.account_code:<20} "
                   f"{yuan(r.amount_fen):>14}")


@trace_group.command("household")
@click.argument("party_id", type=int)
@with_appcontext
def trace_household(party_id: int) -> None:
    """Every source that funded a household's receipts."""
    with unit_of_work() as session:
        out = trace.trace_household(session, operator(), party_id)
    click.echo(f"household {party_id} {out['name_zh']}: received {yuan(out['received_fen'])}")
    for receipt in out["receipts"]:
        click.echo(f"  {receipt['paid_on']} {receipt['reference']} "
                   f"{yuan(receipt['amount_fen'])}")
        for s in receipt["sources"]:
            click.echo(f"      from {s['payer_name_zh'] or '?'} (transaction "
                       f"{s['transaction_id']}): {yuan(s['amount_fen'])}")


@cli.command("statement")
@click.argument("party_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="file to write: .xlsx or .html")
@with_appcontext
def statement(party_id: int, output: Path) -> None:
    """A household's (or, for a collective, the village's) statement as XLSX or HTML."""
    html = output.suffix.lower() == ".html"
    with unit_of_work() as session:
        from catalog.models import Party

        party = session.get(Party, party_id)
        data: Any
        if party is not None and party.kind == "village_collective":
            st = statements.village_statement(session, operator(), party_id)
            data = statements.village_html(st) if html else statements.village_xlsx(st)
        else:
            st = statements.household_statement(session, operator(), party_id)
            data = statements.household_html(st) if html else statements.household_xlsx(st)
    if isinstance(data, str):
        output.write_text(data, encoding="utf-8")
    else:
        output.write_bytes(data)
    click.echo(f"wrote {output}")


@cli.command("verify")
@with_appcontext
def verify() -> None:
    """The invariants of benefit sharing (also run by `ecovalue ledger verify`)."""
    from ledger.sharing.services import verify as check

    with unit_of_work() as session:
        problems = check(session, operator())
    for problem in problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("benefit sharing verified: every run's lines, batch and sources add up")
