"""CLI commands of this package (to be written)."""

import click


@click.group("valuation")
def cli() -> None:
    """(to be written)"""
