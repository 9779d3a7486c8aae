"""Regions: the national provinces, prefectures and counties (GB/T 2260 reference data), and the
townships and villages (and, for admins, newer county-level codes) added below them."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.errors import RegionExists, RegionNotFound
from catalog.identifiers import region_code_error
from catalog.models import Party, Region
from catalog.services.common import fetch
from ecovalue import audit
from ecovalue.auth import Principal, authorize, county_of
from ecovalue.db import bulk_insert_records, utcnow
from ecovalue.errors import Forbidden, ValidationFailed

#: level of the region a new code's parent must be, by the new region's level
_PARENT_LEVEL = {"township": "county", "village": "township"}
_LEVEL_BY_LENGTH = {9: "township", 12: "village"}


def validate_token_scope(session: Session, county_code: str | None,
                         party_id: int | None) -> list[str]:
    """Problems with a token's scope: the county must be a known county, the party must exist."""
    problems = []
    if county_code is not None:
        region = session.get(Region, county_code)
        if region is None or region.level != "county":
            problems.append(f"{county_code} is not a known county code")
    party = fetch(session, Party, party_id) if party_id is not None else None
    if party_id is not None and party is None:
        problems.append(f"no party {party_id}")
    elif party is not None and not party.identified:
        problems.append(f"party {party_id} is an enterprise without its credit code "
                        f"(unidentified): add the code first")
    return problems


#: the national table of provinces, prefectures and counties (GB/T 2260), see
#: catalog/reference/regions_gbt2260.md for its source and date
NATIONAL_TABLE = "reference/regions_gbt2260.csv"
_LEVEL_ORDER = {"province": 0, "prefecture": 1, "county": 2}


def _reference_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("catalog").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def load_reference_regions(session: Session) -> int:
    """Insert the province, prefecture and counties of catalog/reference/regions.csv (the
    prefecture's own part of the national table, with English names and pilots) that are
    missing; returns how many were added. Reference data, not a user's change: not audited."""
    existing = set(session.scalars(sa.select(Region.code)))
    added = 0
    for row in _reference_rows("reference/regions.csv"):
        if row["code"] in existing:
            continue
        session.add(Region(code=row["code"], level=row["level"], name_zh=row["name_zh"],
                           name_en=row["name_en"] or None, parent_code=row["parent_code"] or None,
                           pilot=row["pilot"] or None, source="reference"))
        session.flush()
        added += 1
    return added


def load_national_regions(session: Session) -> int:
    """Every province, prefecture and county of the national table (GB/T 2260,
    `reference/regions_gbt2260.csv`) that is missing, set-based; returns how many were added.
    Rows already stored are left as they are (names given by the prefecture's own list, or
    renamed since, stay), except that a reference prefecture or county stored without a parent
    (databases from before the national table) is placed under its province or prefecture.
    Idempotent; reference data, not audited."""
    load_reference_regions(session)
    rows = _reference_rows(NATIONAL_TABLE)
    stored = dict(session.execute(sa.select(Region.code, Region.parent_code)).all())
    now = utcnow()
    missing = sorted((r for r in rows if r["code"] not in stored),
                     key=lambda r: (_LEVEL_ORDER[r["level"]], r["code"]))
    bulk_insert_records(session, Region.__table__, [
        {"code": r["code"], "level": r["level"], "name_zh": r["name_zh"], "name_en": None,
         "parent_code": r["parent_code"] or None, "pilot": None, "created_at": now,
         "source": "reference"} for r in missing])
    for r in rows:
        if r["code"] in stored and stored[r["code"]] is None and r["parent_code"]:
            session.execute(sa.update(Region).where(Region.code == r["code"],
                                                    Region.parent_code.is_(None))
                            .values(parent_code=r["parent_code"]))
    return len(missing)


def get_region(session: Session, code: str) -> Region:
    region = session.get(Region, code) if code.isdigit() and len(code) <= 12 else None
    if region is None:
        raise RegionNotFound(f"no region with code {code}")
    return region


def list_regions(*, level: str | None = None, parent_code: str | None = None,
                 county_code: str | None = None, q: str | None = None) -> sa.Select:
    """Regions matching the filters, by code (public data: no actor needed)."""
    stmt = sa.select(Region)
    if level:
        stmt = stmt.where(Region.level == level)
    if parent_code:
        stmt = stmt.where(Region.parent_code == parent_code)
    if county_code:
        stmt = stmt.where(Region.code.startswith(county_code, autoescape=True))
    if q:
        pattern = f"%{q}%"
        stmt = stmt.where(sa.or_(Region.name_zh.like(pattern), Region.name_en.ilike(pattern)))
    return stmt.order_by(Region.code)


def region_tree(session: Session, root_code: str) -> dict:
    """The region `root_code` with its descendants nested under `children`, by code."""
    root = get_region(session, root_code)
    prefix = {"province": root.code[:2], "prefecture": root.code[:4]}.get(root.level, root.code)
    rows = session.scalars(
        sa.select(Region).where(Region.code.startswith(prefix, autoescape=True))
        .order_by(Region.code)
    ).all()
    nodes: dict[str, dict[str, Any]] = {r.code: {"region": r, "children": []} for r in rows}
    for r in rows:
        if r.code != root.code and r.parent_code in nodes:
            nodes[r.parent_code]["children"].append(nodes[r.code])
    return nodes[root.code]


@dataclasses.dataclass(frozen=True)
class RegionHierarchy:
    """Every known region's parent and level, read once (`region_hierarchy`), so that many
    codes are placed in the tree without a query each. Codes below a county share its first
    six digits, but a code's place is taken from the registered parents, never from its
    digits: an unregistered code lies nowhere."""

    #: region code -> (parent code or None, level)
    parents: Mapping[str, tuple[str | None, str]]

    def __contains__(self, code: object) -> bool:
        return code in self.parents

    def level(self, code: str) -> str:
        """province, prefecture, county, township or village; KeyError for an unknown code."""
        return self.parents[code][1]

    def is_within(self, code: str, scope: str) -> bool:
        """Whether region `code` is `scope` or lies below it."""
        current: str | None = code
        for _ in range(_MAX_DEPTH):
            if current is None:
                return False
            if current == scope:
                return True
            current = self.parents.get(current, (None, ""))[0]
        return False

    def county_of(self, code: str) -> str:
        """The county a region lies in: itself for a county, the code itself for a province,
        a prefecture or a code the hierarchy does not place under a county."""
        current: str | None = code
        for _ in range(_MAX_DEPTH):
            if current is None:
                break
            parent, level = self.parents.get(current, (None, ""))
            if level in ("county", "prefecture", "province"):
                return current
            current = parent
        return code


#: more levels than prefecture > county > township > village: a guard against a cycle
_MAX_DEPTH = 10


def region_hierarchy(session: Session) -> RegionHierarchy:
    """The parent and level of every known region (one query)."""
    return RegionHierarchy({code: (parent, level) for code, parent, level in session.execute(
        sa.select(Region.code, Region.parent_code, Region.level))})


def region_names(session: Session) -> dict[str, str]:
    """code -> Chinese name of every known region (the code where the name is empty)."""
    return {code: name_zh or code for code, name_zh in session.execute(
        sa.select(Region.code, Region.name_zh))}


def region_display_name(session: Session, code: str) -> str | None:
    """The English name of a region where it has one, else its Chinese name; None for an
    unknown code."""
    region = session.get(Region, code)
    return (region.name_en or region.name_zh) if region is not None else None


def _region_snapshot(region: Region) -> dict:
    return audit.snapshot(region)


def _national_level(code: str) -> str:
    """The level a 6-digit GB/T 2260 code names: xx0000 province, xxxx00 prefecture, else a
    county-level unit."""
    if code.endswith("0000"):
        return "province"
    return "prefecture" if code.endswith("00") else "county"


def create_region(session: Session, actor: Principal, *, code: str, name_zh: str,
                  name_en: str | None = None, source: str = "registered") -> Region:
    """Add a region below the national table: a township (9-digit code starting with its
    county's code) or a village (12 digits starting with its township's code), anywhere in
    China; admins alone may also add a prefecture- or county-level code (6 digits) that the
    national table does not have yet (a unit created after its date), under its province or
    prefecture. Provinces come from the national table only."""
    code = (code or "").strip()
    if len(code) == 6 and code.isdigit():
        return _create_national_region(session, actor, code=code, name_zh=name_zh,
                                       name_en=name_en)
    level = _LEVEL_BY_LENGTH.get(len(code))
    authorize(actor, "catalog.region.write", county=county_of(code))
    if level is None:
        problem = "a township code has 9 digits, a village code 12"
        raise ValidationFailed(f"cannot add region {code!r}: {problem}",
                               errors=[{"field": "code", "message": problem}])
    if (error := region_code_error(code, level)) is not None:
        raise ValidationFailed(error, errors=[{"field": "code", "message": error}])
    name_zh = _required_name(name_zh)
    parent_code = code[:6] if level == "township" else code[:9]
    parent = session.get(Region, parent_code)
    if parent is None or parent.level != _PARENT_LEVEL[level]:
        message = (f"a {level} code must start with the code of an existing "
                   f"{_PARENT_LEVEL[level]} ({parent_code} is not one)")
        raise ValidationFailed(message, errors=[{"field": "code", "message": message}])
    return _add_region(session, actor, code=code, level=level, name_zh=name_zh,
                       name_en=name_en, parent_code=parent_code, source=source)


def _required_name(name_zh: str | None) -> str:
    name_zh = (name_zh or "").strip()
    if not name_zh:
        raise ValidationFailed("a Chinese name is required",
                               errors=[{"field": "name_zh", "message": "required"}])
    return name_zh


def _create_national_region(session: Session, actor: Principal, *, code: str, name_zh: str,
                            name_en: str | None) -> Region:
    authorize(actor, "catalog.region.national.write")
    level = _national_level(code)
    if level == "province":
        problem = "provinces come from the national table (GB/T 2260) only"
        raise ValidationFailed(f"cannot add region {code}: {problem}",
                               errors=[{"field": "code", "message": problem}])
    name_zh = _required_name(name_zh)
    candidates = [code[:2] + "0000"] if level == "prefecture" else [code[:4] + "00",
                                                                    code[:2] + "0000"]
    parent = next((r for c in candidates if (r := session.get(Region, c)) is not None), None)
    if parent is None or parent.level not in ("province", "prefecture"):
        message = (f"a {level} code must lie under an existing "
                   f"{'province' if level == 'prefecture' else 'prefecture or province'} "
                   f"({' or '.join(candidates)})")
        raise ValidationFailed(message, errors=[{"field": "code", "message": message}])
    return _add_region(session, actor, code=code, level=level, name_zh=name_zh,
                       name_en=name_en, parent_code=parent.code, source="registered")


def _add_region(session: Session, actor: Principal, *, code: str, level: str, name_zh: str,
                name_en: str | None, parent_code: str, source: str) -> Region:
    if session.get(Region, code) is not None:
        raise RegionExists(f"region {code} already exists")
    region = Region(code=code, level=level, name_zh=name_zh,
                    name_en=(name_en or "").strip() or None, parent_code=parent_code,
                    source=source)
    session.add(region)
    session.flush()
    audit.record(session, actor, "catalog.region.create", "region", code,
                 after=_region_snapshot(region))
    return region


def update_region(session: Session, actor: Principal, code: str, *,
                  name_zh: str | None = None, name_en: str | None = None) -> Region:
    """Rename a region added below the national table (codes never change: they are
    national identifiers); the national table's own rows are reference data."""
    authorize(actor, "catalog.region.write", county=county_of(code))
    region = get_region(session, code)
    if region.source == "reference" or region.level == "province":
        raise Forbidden("provinces, prefectures and counties of the national reference list "
                        "cannot be changed here")
    if len(code) == 6:
        authorize(actor, "catalog.region.national.write")
    before = _region_snapshot(region)
    if name_zh is not None:
        if not name_zh.strip():
            raise ValidationFailed("a Chinese name is required",
                                   errors=[{"field": "name_zh", "message": "must not be empty"}])
        region.name_zh = name_zh.strip()
    if name_en is not None:
        region.name_en = name_en.strip() or None
    after = _region_snapshot(region)
    if after != before:
        session.flush()
        audit.record(session, actor, "catalog.region.update", "region", code,
                     before=before, after=after)
    return region
