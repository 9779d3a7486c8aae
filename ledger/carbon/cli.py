"""`ecovalue carbon ...`: the registry from the server's console (wraps the services).

    ecovalue carbon registry set-operator PARTY_ID
    ecovalue carbon verify             # the registry's invariants (also run by `ledger verify`)
    ecovalue carbon holdings BATCH
"""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ecovalue.auth import Principal
from ecovalue.cli import operator, unit_of_work
from ledger.carbon.services import parameters, registry


def _actor() -> Principal:
    return operator()


@click.group("carbon")
def cli() -> None:
    """Forest-carbon registry: operator, invariants, holdings."""


@cli.group("registry")
def registry_group() -> None:
    """The registry's configuration."""


@registry_group.command("set-operator")
@click.argument("party_id", type=int)
@with_appcontext
def set_operator(party_id: int) -> None:
    """Name the party operating the registry (a government body)."""
    with unit_of_work() as session:
        parameters.set_operator(session, _actor(), party_id)
    click.echo(f"registry operator: party {party_id}")


@cli.command("verify")
@with_appcontext
def verify() -> None:
    """Per batch: tradable + retired + cancelled + buffer = issued, blocks without overlap
    or gap and equal to the ledger's balances; exit 1 on a problem."""
    with unit_of_work() as session:
        problems = registry.verify(session, _actor())
    for problem in problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("carbon registry verified: every batch's tonnes and serial blocks add up")


@cli.command("holdings")
@click.argument("batch")
@with_appcontext
def holdings(batch: str) -> None:
    """Who holds a batch's tonnes."""
    with unit_of_work() as session:
        rows = registry.holdings(session, batch, public=False)
    for row in rows:
        click.echo(f"{row['account_code']:<50} {row['role']:<10} {row['quantity_t']:>12} t "
                   f"{row['block_count']:>6} blocks  {row['holder']['name_zh'] or ''}")
