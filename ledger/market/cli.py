"""`ecovalue market ...`: the market from the server's console (wraps the services).

    ecovalue market expire     # end expired listings and block proposals, close auctions (cron)
    ecovalue market rules      # the rules in force
    ecovalue market book BATCH # the order book of a batch
"""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ecovalue.cli import operator, unit_of_work
from ledger.market.services import auctions, common, feed


@click.group("market")
def cli() -> None:
    """Offset market: expiry sweep, rules, order book."""


@cli.command("expire")
@with_appcontext
def expire() -> None:
    """End the listings (their escrow goes back) and block-trade proposals whose time is up,
    and close the auctions due."""
    with unit_of_work() as session:
        swept = auctions.sweep(session, operator())
    click.echo(f"{len(swept.listings)} listings expired, {len(swept.blocks)} block-trade "
               f"proposals expired, {len(swept.auctions)} auctions closed")


@cli.command("rules")
@with_appcontext
def rules() -> None:
    """The market's rules in force."""
    with unit_of_work() as session:
        click.echo(json.dumps(common.rules_view(session), default=str, ensure_ascii=False,
                              indent=2))


@cli.command("book")
@click.argument("batch")
@with_appcontext
def book(batch: str) -> None:
    """The order book of BATCH (asks lowest first, bids highest first)."""
    with unit_of_work() as session:
        data = feed.book(session, batch)
    for side in ("asks", "bids"):
        click.echo(f"{side}:")
        for level in data[side]:
            click.echo(f"  {level['price_fen_per_tco2e']:>10} fen/t  {level['quantity_t']:>10} t"
                       f"  ({level['listings']} listings)")
