"""CLI commands of this package (to be written)."""

import click


@click.group("catalog")
def cli() -> None:
    """(to be written)"""
