"""CLI commands of this package (to be written)."""

import click


@click.group("ledger")
def cli() -> None:
    """(to be written)"""
