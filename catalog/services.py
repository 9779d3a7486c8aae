"""Catalog operations (each one transaction, committed by the caller)."""

from __future__ import annotations

import csv
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party, Region


def validate_token_scope(session: Session, county_code: str | None,
                         party_id: int | None) -> list[str]:
    """Problems with a token's scope: the county must be a known county, the party must exist."""
    problems = []
    if county_code is not None:
        region = session.get(Region, county_code)
        if region is None or region.level != "county":
            problems.append(f"{county_code} is not a known county code")
    if party_id is not None and session.get(Party, party_id) is None:
        problems.append(f"no party {party_id}")
    return problems


def load_reference_regions(session: Session) -> int:
    """Insert the prefecture and counties of catalog/reference/regions.csv that are missing;
    returns how many were added."""
    text = resources.files("catalog").joinpath("reference/regions.csv").read_text("utf-8")
    existing = set(session.scalars(sa.select(Region.code)))
    added = 0
    for row in csv.DictReader(text.splitlines()):
        if row["code"] in existing:
            continue
        session.add(Region(code=row["code"], level=row["level"], name_zh=row["name_zh"],
                           name_en=row["name_en"] or None, parent_code=row["parent_code"] or None,
                           pilot=row["pilot"] or None, source="reference"))
        session.flush()
        added += 1
    return added
