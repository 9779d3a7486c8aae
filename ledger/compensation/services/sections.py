"""Assessed sections: the river cross-sections (考核断面) and areas whose monitored values
agreements' conditions are assessed on."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.errors import ProductNotFound, RegionNotFound
from catalog.services import products, regions
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import ValidationFailed
from ledger.compensation.errors import SectionExists, SectionNotFound
from ledger.compensation.models import CompensationSection

SECTION_CODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{1,39}$")


def create_section(session: Session, actor: Principal,
                   values: dict[str, Any]) -> CompensationSection:
    """Register a section: its code, names, river and the region it lies in (a catalog
    region code of any level), and optionally the catalog product whose forest-coverage
    records it reads."""
    authorize(actor, "compensation.section.write")
    errors = []
    code = (values.get("code") or "").strip()
    if not SECTION_CODE_RE.match(code):
        errors.append({"field": "code", "message": "2-40 characters: capital letters, digits "
                       "and '-', starting with a letter"})
    name_zh = (values.get("name_zh") or "").strip()
    if not name_zh:
        errors.append({"field": "name_zh", "message": "a Chinese name is required"})
    try:
        regions.get_region(session, values.get("region_code") or "")
    except RegionNotFound:
        errors.append({"field": "region_code",
                       "message": f"no region {values.get('region_code')!r} in the catalog"})
    product_id = values.get("catalog_product_id")
    if product_id is not None:
        try:
            products.get_product(session, actor, product_id)
        except ProductNotFound:
            errors.append({"field": "catalog_product_id",
                           "message": f"no product {product_id} in the catalog"})
    if errors:
        raise ValidationFailed("invalid section", errors=errors)
    if session.scalar(sa.select(CompensationSection.id).where(CompensationSection.code == code)):
        raise SectionExists(f"a section with code {code} exists")
    section = CompensationSection(
        code=code, name_zh=name_zh, name_en=(values.get("name_en") or "").strip() or None,
        river=(values.get("river") or "").strip() or None, region_code=values["region_code"],
        catalog_product_id=product_id, note=(values.get("note") or "").strip() or None,
        created_by=actor.label)
    session.add(section)
    session.flush()
    audit.record(session, actor, "compensation.section.create", "compensation_section",
                 section.id, after=audit.snapshot(section))
    return section


def get_section(session: Session, actor: Principal, code: str) -> CompensationSection:
    authorize(actor, "compensation.read")
    section = session.scalar(sa.select(CompensationSection)
                             .where(CompensationSection.code == code))
    if section is None:
        raise SectionNotFound(f"no section {code}")
    return section


def list_sections(session: Session, actor: Principal) -> list[CompensationSection]:
    authorize(actor, "compensation.read")
    return list(session.scalars(sa.select(CompensationSection)
                                .order_by(CompensationSection.code)))


def known_codes(session: Session, codes: set[str]) -> dict[str, int]:
    """code -> id of the sections among `codes` that exist."""
    if not codes:
        return {}
    return dict(session.execute(sa.select(CompensationSection.code, CompensationSection.id)
                                .where(CompensationSection.code.in_(codes))).all())
