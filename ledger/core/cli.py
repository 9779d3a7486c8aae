"""`ecovalue ledger ...`: the ledger from the server's console (wraps the services).

    ecovalue ledger asset create CNY --kind currency --name-zh 人民币
    ecovalue ledger account create --party 3 --asset CNY --kind holding --code P3-CNY
    ecovalue ledger tx create --type transfer -p BANK:CNY:debit:10000 -p P3-CNY:CNY:credit:10000
    ecovalue ledger tx reverse 42 | post 43 | void 44 | show 42 | list --account P3-CNY
    ecovalue ledger pending expire
    ecovalue ledger batch import transfers.csv
    ecovalue ledger balance P3-CNY [--as-of 2024-03-31] | party-balances 3
    ecovalue ledger statement P3-CNY --from 2024-03-01 --to 2024-03-31 [-o out.xlsx]
    ecovalue ledger period close 2024-03 | reopen 2024-03 | list
    ecovalue ledger assert P3-CNY --as-of 2024-03-31 --expected 10000 | recheck
    ecovalue ledger verify
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from ecovalue.clock import utcnow
from ledger.core import export, services
from ledger.core.calendar import format_month, parse_month
from ledger.core.models import ACCOUNT_KINDS, ASSET_KINDS
from ledger.core.posting import PostingSpec, TransactionSpec, account_ref


def _date(_ctx: object, _param: object, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("a date YYYY-MM-DD") from None


def _month(_ctx: object, _param: object, value: str) -> dt.date:
    try:
        return parse_month(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _posting(text: str) -> PostingSpec:
    """ACCOUNT:ASSET:debit|credit:AMOUNT (amount an integer in the asset's unit)."""
    try:
        account, asset, direction, amount = text.rsplit(":", 3)
        if not (amount.isascii() and amount.isdigit()):
            raise ValueError
        return PostingSpec(account_ref(account), asset, direction, int(amount))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected ACCOUNT:ASSET:debit|credit:AMOUNT "
                                 "with an integer amount") from None


def _show_tx(view: services.TransactionView) -> None:
    flags = " (replayed)" if view.replayed else ""
    click.echo(f"transaction {view.id} {view.type} {view.phase}/{view.status} "
               f"{view.effective_date}{flags}")
    if view.memo:
        click.echo(f"  memo: {view.memo}")
    for p in view.postings:
        click.echo(f"  {p.direction:<6} {p.account_code:<30} {p.amount:>20} {p.asset}")


def _run(fn):
    with unit_of_work() as session:
        return fn(session)


#: shown wherever an amount is typed or printed
AMOUNTS = ("Amounts are integers in the asset's unit: fen for CNY (50000 = 500.00 yuan), whole "
           "tonnes CO2e for a carbon batch.")
#: what `--type` accepts (ledger.core.posting checks it)
TYPES = ("a name of your choosing: a lowercase letter, then up to 39 of a-z 0-9 _ . (e.g. "
         "transfer, deposit, compensation, payout, issuance, dividend); 'reversal' and "
         "'pending_resolution' are reserved for the ledger's own transactions")


@click.group("ledger", help=f"""Double-entry ledger: assets, accounts, transactions, balances,
periods.

{AMOUNTS} Dates are accounting dates of Asia/Shanghai (YYYY-MM-DD).""")
def cli() -> None:
    pass


# --- assets and accounts ---------------------------------------------------------------------


@cli.group("asset")
def asset_group() -> None:
    """Assets: CNY (counted in fen) and carbon issuance batches (counted in tCO2e)."""


@asset_group.command("create")
@click.argument("code")
@click.option("--kind", type=click.Choice(sorted(ASSET_KINDS)), required=True,
              help="currency (counted in fen) or carbon_credit (one issuance batch, tCO2e)")
@click.option("--name-zh", required=True)
@click.option("--name-en")
@click.option("--vintage-year", type=int, help="carbon_credit: the credits' vintage")
@click.option("--batch-reference", help="carbon_credit: the registry's batch reference")
@click.option("--project-reference")
@with_appcontext
def asset_create(code: str, kind: str, name_zh: str, name_en: str | None,
                 vintage_year: int | None, batch_reference: str | None,
                 project_reference: str | None) -> None:
    """Create an asset (the demo data already has CNY)."""
    asset = _run(lambda s: services.create_asset(
        s, operator(), code=code, kind=kind, name_zh=name_zh, name_en=name_en,
        vintage_year=vintage_year, batch_reference=batch_reference,
        project_reference=project_reference))
    click.echo(f"asset {asset.id} {asset.code} ({asset.unit})")


@asset_group.command("list")
@with_appcontext
def asset_list() -> None:
    """List assets."""
    def show(s):
        for a in s.scalars(services.list_assets(s, operator())):
            extra = f" vintage {a.vintage_year} batch {a.batch_reference}" if a.vintage_year else ""
            click.echo(f"{a.id:>5}  {a.code:<24} {a.unit:<6} {a.name_zh}{extra}")
    _run(show)


@cli.group("account")
def account_group() -> None:
    """Accounts of parties."""


@account_group.command("create")
@click.option("--party", "party_id", type=int, required=True,
              help="owner party id (`ecovalue catalog summary`, GET /catalog/parties)")
@click.option("--asset", required=True, help="asset code, e.g. CNY")
@click.option("--kind", type=click.Choice(ACCOUNT_KINDS), required=True)
@click.option("--code", help="code used instead of the id, default P<party>-<KIND>-<ASSET>")
@click.option("--name")
@click.option("--allow-overdraft", is_flag=True, help="turn the no-overdraft guard off")
@with_appcontext
def account_create(party_id: int, asset: str, kind: str, code: str | None, name: str | None,
                   allow_overdraft: bool) -> None:
    """Open an account (balance 0; every kind but external refuses to go below 0)."""
    account = _run(lambda s: services.create_account(
        s, operator(), party_id=party_id, asset=asset, kind=kind, code=code, name=name,
        no_overdraft=False if allow_overdraft else None))
    click.echo(f"account {account.id} {account.code}")


@account_group.command("list")
@click.option("--party", "party_id", type=int)
@click.option("--asset")
@with_appcontext
def account_list(party_id: int | None, asset: str | None) -> None:
    """List accounts with their current and available balance, in the asset's unit (fen for
    CNY)."""
    def show(s):
        accounts = list(s.scalars(services.list_accounts(s, operator(), party_id=party_id,
                                                         asset=asset)))
        for a in accounts:
            b = services.account_balance(s, operator(), a.id)
            guard = "guarded" if a.no_overdraft else "open"
            click.echo(f"{a.id:>5}  {a.code:<30} {a.kind:<10} {a.asset_code:<20} "
                       f"{b.balance:>20} avail {b.available:>20} {guard}")
    _run(show)


# --- transactions ----------------------------------------------------------------------------


@cli.group("tx")
def tx_group() -> None:
    """Transactions: create, show, list, reverse, post, void."""


@tx_group.command("create")
@click.option("--type", "tx_type", required=True, help=f"transaction type, {TYPES}")
@click.option("-p", "--posting", "postings", multiple=True, required=True,
              help="ACCOUNT:ASSET:debit|credit:AMOUNT, at least two, debits equal to credits; "
                   "AMOUNT is an integer: fen for CNY (50000 = 500.00 yuan), tCO2e for carbon")
@click.option("--date", "effective_date", callback=_date,
              help="effective date YYYY-MM-DD, default today in Asia/Shanghai; not in the "
                   "future, not in a closed month")
@click.option("--memo")
@click.option("--pending", is_flag=True, help="two-phase: reserve now, post or void later")
@click.option("--expires-in-hours", type=click.IntRange(min=1),
              help="with --pending: after this, it can no longer be posted")
@click.option("--idempotency-key", help="retrying with the same key replays the first result")
@with_appcontext
def tx_create(tx_type: str, postings: tuple[str, ...], effective_date: dt.date | None,
              memo: str | None, pending: bool, expires_in_hours: int | None,
              idempotency_key: str | None) -> None:
    """Post a balanced transaction, e.g. 500.00 yuan from account PLANT to FUND:

    \b
    ecovalue ledger tx create --type transfer -p PLANT:CNY:debit:50000 -p FUND:CNY:credit:50000

    The debited account must hold the amount (the no-overdraft guard; external accounts are
    exempt: that is where value enters the ledger, which only finance and admin may do)."""
    expires_at = (utcnow() + dt.timedelta(hours=expires_in_hours)
                  if expires_in_hours else None)
    spec = TransactionSpec(type=tx_type, postings=[_posting(p) for p in postings],
                           effective_date=effective_date, memo=memo, pending=pending,
                           expires_at=expires_at, idempotency_key=idempotency_key)
    _show_tx(_run(lambda s: services.create_transaction(s, operator(), spec)))


@tx_group.command("show")
@click.argument("tx_id", type=int)
@with_appcontext
def tx_show(tx_id: int) -> None:
    """Show one transaction."""
    _show_tx(_run(lambda s: services.get_transaction(s, operator(), tx_id)))


@tx_group.command("list")
@click.option("--account")
@click.option("--party", "party_id", type=int)
@click.option("--type", "tx_type")
@click.option("--from", "date_from", callback=_date, help="YYYY-MM-DD")
@click.option("--to", "date_to", callback=_date, help="YYYY-MM-DD")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@with_appcontext
def tx_list(account: str | None, party_id: int | None, tx_type: str | None,
            date_from: dt.date | None, date_to: dt.date | None, limit: int) -> None:
    """List transactions, newest first."""
    def show(s):
        stmt = services.list_transactions(
            s, operator(), account=account_ref(account) if account else None, party_id=party_id,
            type=tx_type, date_from=date_from, date_to=date_to).limit(limit)
        for view in services.load_views(s, list(s.scalars(stmt))):
            _show_tx(view)
    _run(show)


@tx_group.command("reverse")
@click.argument("tx_id", type=int)
@click.option("--memo")
@click.option("--date", "effective_date", callback=_date)
@click.option("--idempotency-key")
@with_appcontext
def tx_reverse(tx_id: int, memo: str | None, effective_date: dt.date | None,
               idempotency_key: str | None) -> None:
    """Reverse a transaction: a new one with the legs swapped (type 'reversal')."""
    _show_tx(_run(lambda s: services.reverse_transaction(
        s, operator(), tx_id, memo=memo, effective_date=effective_date,
        idempotency_key=idempotency_key)))


@tx_group.command("post")
@click.argument("tx_id", type=int)
@click.option("--memo")
@click.option("--date", "effective_date", callback=_date)
@with_appcontext
def tx_post(tx_id: int, memo: str | None, effective_date: dt.date | None) -> None:
    """Post a pending transfer."""
    _show_tx(_run(lambda s: services.post_pending(s, operator(), tx_id, memo=memo,
                                                  effective_date=effective_date)))


@tx_group.command("void")
@click.argument("tx_id", type=int)
@click.option("--memo")
@with_appcontext
def tx_void(tx_id: int, memo: str | None) -> None:
    """Void a pending transfer."""
    _show_tx(_run(lambda s: services.void_pending(s, operator(), tx_id, memo=memo)))


@cli.group("pending")
def pending_group() -> None:
    """Two-phase transfers."""


@pending_group.command("expire")
@with_appcontext
def pending_expire() -> None:
    """Record the expiry of every pending transfer past its expiry time."""
    expired = _run(lambda s: services.expire_pendings(s, operator()))
    click.echo(f"{len(expired)} pending transfer(s) expired" +
               (f": {', '.join(map(str, expired))}" if expired else ""))


@cli.group("batch")
def batch_group() -> None:
    """Batch posting."""


@batch_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--memo")
@with_appcontext
def batch_import(path: Path, memo: str | None) -> None:
    """Post a CSV of transfers as one all-or-nothing batch.

    Columns: type, debit_account, credit_account, asset, amount (an integer: fen for CNY),
    effective_date (YYYY-MM-DD, empty = today), memo."""
    specs = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                amount = int(row["amount"]) if row["amount"].strip().isascii() \
                    and row["amount"].strip().isdigit() else row["amount"]
                day = dt.date.fromisoformat(row["effective_date"]) \
                    if row.get("effective_date") else None
                specs.append(TransactionSpec(
                    type=row.get("type") or "transfer", effective_date=day,
                    memo=row.get("memo") or None, postings=[
                        PostingSpec(account_ref(row["debit_account"]), row["asset"], "debit",
                                    amount),
                        PostingSpec(account_ref(row["credit_account"]), row["asset"], "credit",
                                    amount)]))
            except (KeyError, ValueError, AttributeError) as exc:
                click.echo(f"error: row {number}: {exc}", err=True)
                sys.exit(1)
    batch_id, ids = _run(lambda s: services.post_batch(s, operator(), specs, memo=memo))
    click.echo(f"batch {batch_id}: {len(ids)} transactions posted ({ids[0]}-{ids[-1]})")


# --- balances, statements --------------------------------------------------------------------


@cli.command("balance")
@click.argument("account")
@click.option("--as-of", callback=_date, help="YYYY-MM-DD: the posted balance at its end")
@with_appcontext
def balance(account: str, as_of: dt.date | None) -> None:
    """Balance of an account in the asset's unit (fen for CNY): current, or posted at the end
    of --as-of."""
    b = _run(lambda s: services.account_balance(s, operator(), account_ref(account), as_of=as_of))
    if as_of:
        click.echo(f"{b.account_code}: {b.balance} {b.asset} ({b.unit}) at the end of {as_of}")
    else:
        click.echo(f"{b.account_code}: {b.balance} {b.asset} ({b.unit}); pending debits "
                   f"{b.pending_debits}, credits {b.pending_credits}; available {b.available}")


@cli.command("party-balances")
@click.argument("party_id", type=int)
@click.option("--as-of", callback=_date)
@with_appcontext
def party_balances(party_id: int, as_of: dt.date | None) -> None:
    """Every account of a party, and totals per asset."""
    rows, totals = _run(lambda s: services.party_balances(s, operator(), party_id, as_of=as_of))
    for b in rows:
        click.echo(f"{b.account_code:<30} {b.kind:<10} {b.balance:>20} {b.asset}")
    for asset, total in totals.items():
        click.echo(f"total {asset}: {total}")


@cli.command("statement")
@click.argument("account")
@click.option("--from", "date_from", callback=_date,
              help="YYYY-MM-DD, default the first day of --to's month")
@click.option("--to", "date_to", callback=_date, help="YYYY-MM-DD, default today")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="write .csv or .xlsx; default: print")
@with_appcontext
def statement(account: str, date_from: dt.date | None, date_to: dt.date | None,
              output: Path | None) -> None:
    """Statement of an account with running balance (amounts in the asset's unit: fen for
    CNY)."""
    st = _run(lambda s: services.statement(s, operator(), account_ref(account), date_from=date_from,
                                           date_to=date_to))
    if output is not None:
        data = export.statement_xlsx(st) if output.suffix.lower() == ".xlsx" \
            else export.statement_csv(st)
        output.write_bytes(data)
        click.echo(f"{len(st.lines)} lines written to {output}")
        return
    click.echo(f"{st.account_code} {st.asset} {st.date_from} .. {st.date_to}")
    click.echo(f"opening balance {st.opening_balance}")
    for line in st.lines:
        click.echo(f"{line.effective_date} {line.transaction_id:>10} {line.type:<14} "
                   f"{line.debit:>16} {line.credit:>16} {line.balance:>18}  {line.memo or ''}")
    click.echo(f"closing balance {st.closing_balance}")


# --- periods, assertions, verification -------------------------------------------------------


@cli.group("period")
def period_group() -> None:
    """Monthly accounting periods."""


@period_group.command("close")
@click.argument("month", callback=_month)
@click.option("--note")
@with_appcontext
def period_close(month: dt.date, note: str | None) -> None:
    """Close a month (YYYY-MM, not in the future): postings dated in it are refused until it is
    reopened."""
    _run(lambda s: services.close_period(s, operator(), month, note=note))
    click.echo(f"period {format_month(month)} closed")


@period_group.command("reopen")
@click.argument("month", callback=_month)
@click.option("--note")
@with_appcontext
def period_reopen(month: dt.date, note: str | None) -> None:
    """Reopen a closed month."""
    _run(lambda s: services.reopen_period(s, operator(), month, note=note))
    click.echo(f"period {format_month(month)} reopened")


@period_group.command("list")
@with_appcontext
def period_list() -> None:
    """Months that were ever closed."""
    def show(s):
        for p in services.list_periods(s, operator()):
            click.echo(f"{format_month(p.month)}  {p.status:<6}  {p.closed_by or ''}")
    _run(show)


@cli.command("assert")
@click.argument("account")
@click.option("--as-of", callback=_date, required=True, help="YYYY-MM-DD")
@click.option("--expected", type=int, required=True,
              help="expected balance (credits - debits) in the asset's unit: fen for CNY")
@click.option("--memo")
@with_appcontext
def assert_balance(account: str, as_of: dt.date, expected: int, memo: str | None) -> None:
    """Record and check the expected balance of an account at the end of a date."""
    a = _run(lambda s: services.assert_balance(s, operator(), account_ref(account), as_of=as_of,
                                               expected_balance=expected, memo=memo))
    state = "passed" if a.passed else f"FAILED (actual {a.actual_balance})"
    click.echo(f"assertion {a.id}: {account} = {expected} at {as_of}: {state}")
    if not a.passed:
        sys.exit(1)


@cli.command("recheck")
@with_appcontext
def recheck() -> None:
    """Check every recorded balance assertion again; exit 1 if any fails."""
    checked = _run(lambda s: services.recheck_assertions(s, operator()))
    failed = [a for a in checked if not a.passed]
    click.echo(f"{len(checked)} assertions checked, {len(failed)} failed")
    for a in failed:
        click.echo(f"  assertion {a.id}: account {a.account_id} at {a.as_of}: expected "
                   f"{a.expected_balance}, actual {a.actual_balance}")
    if failed:
        sys.exit(1)


@cli.command("verify")
@with_appcontext
def verify() -> None:
    """Recompute balances from the postings and check every invariant (and those of the
    packages built on the ledger, handed in by the composition root as
    `app.extensions["ledger.verify_checks"]`); exit 1 on a problem."""
    checks = [services.verify, *current_app.extensions.get("ledger.verify_checks", ())]
    problems = _run(lambda s: [p for check in checks for p in check(s, operator())])
    if problems:
        for problem in problems:
            click.echo(f"PROBLEM: {problem}", err=True)
        sys.exit(1)
    click.echo("ledger verified: balances equal postings, every asset sums to zero")
