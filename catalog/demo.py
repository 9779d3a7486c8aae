"""Demo dataset of the pilot counties (to be completed by the catalog work)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog.services import load_reference_regions
from ecovalue.auth import Principal


def load(session: Session, actor: Principal) -> list[str]:
    added = load_reference_regions(session)
    return [f"regions: {added} added"]


def trader_party_id(session: Session) -> int | None:
    return None
