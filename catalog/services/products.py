"""Ecological products: register, edit (versioned, optimistic concurrency), move through the
lifecycle (catalog.lifecycle), query, summarise, export."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from catalog import lifecycle, vocabulary
from catalog.errors import (
    FourEyesViolation,
    IllegalTransition,
    ProductExists,
    ProductLocked,
    ProductNotFound,
    VersionMismatch,
)
from catalog.models import (
    DEVELOPMENT_STATUSES,
    RIGHTS_TYPES,
    Party,
    Product,
    ProductVersion,
    Region,
)
from catalog.services.common import fetch
from ecovalue import audit
from ecovalue.auth import Principal, authorize, county_of
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed

#: fields a client sets; everything else is kept by the service
FIELDS = ("external_code", "name_zh", "name_en", "type_code", "region_code", "holder_party_id",
          "rights_type", "area_ha", "latitude", "longitude", "grid_cell_id", "quantity",
          "quantity_unit", "quality_grade", "development_status", "brand", "certifications",
          "attributes")
_GRID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
_TEXT_LIMITS = {"external_code": 60, "name_zh": 200, "name_en": 200, "quality_grade": 40,
                "brand": 100, "grid_cell_id": 40, "quantity_unit": 20}


def product_data(product: Product) -> dict:
    """The product's stored fields as JSON: what the history and the audit trail keep."""
    return audit.snapshot(product)


# --- validation ----------------------------------------------------------------------------


def field_errors(values: dict[str, Any]) -> list[dict]:
    """Errors of a product's own values, without the database (all of them)."""
    errors: list[dict] = []

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for field, limit in _TEXT_LIMITS.items():
        value = values.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            err(field, f"text of at most {limit} characters")
    if not (values.get("name_zh") or "").strip():
        err("name_zh", "a name is required")
    type_code = values.get("type_code")
    if type_code not in vocabulary.product_types():
        err("type_code", f"unknown product type {type_code!r}; see GET /catalog/product-types")
        type_code = None
    if values.get("rights_type") not in RIGHTS_TYPES:
        err("rights_type", f"must be one of {', '.join(RIGHTS_TYPES)}")
    if values.get("development_status") not in DEVELOPMENT_STATUSES:
        err("development_status", f"must be one of {', '.join(DEVELOPMENT_STATUSES)}")
    for field in ("area_ha", "latitude", "longitude", "quantity"):
        value = values.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            err(field, "must be a finite number")
    area = values.get("area_ha")
    if isinstance(area, (int, float)) and math.isfinite(area) and area <= 0:
        err("area_ha", "the area must be positive (leave it empty when unknown)")
    latitude, longitude = values.get("latitude"), values.get("longitude")
    if all(v is None or (isinstance(v, (int, float)) and math.isfinite(v))
           for v in (latitude, longitude)) and (
            message := vocabulary.location_error(latitude, longitude)) is not None:
        err("latitude" if latitude is None or longitude is not None else "longitude", message)
    grid = values.get("grid_cell_id")
    if grid is not None and not _GRID_RE.match(str(grid)):
        err("grid_cell_id", "letters, digits and _ . : - only, at most 40")
    quantity, unit = values.get("quantity"), values.get("quantity_unit")
    if (quantity is None) != (unit is None):
        err("quantity_unit" if unit is None else "quantity",
            "give a quantity together with its unit")
    elif quantity is not None and isinstance(quantity, (int, float)):
        if quantity < 0:
            err("quantity", "a quantity cannot be negative")
        if type_code and isinstance(unit, str) and (
                message := vocabulary.quantity_unit_error(type_code, unit)) is not None:
            err("quantity_unit", message)
    certifications = values.get("certifications")
    if not isinstance(certifications, list) or not all(
            isinstance(c, str) and 0 < len(c) <= 100 for c in certifications):
        err("certifications", "a list of certification names")
    if not isinstance(values.get("attributes"), dict):
        err("attributes", "an object")
    return errors


def reference_errors(session: Session, values: dict[str, Any]) -> list[dict]:
    """Errors about what the product refers to: its region and its rights holder."""
    errors = []
    region_code = values.get("region_code")
    region = session.get(Region, region_code) if isinstance(region_code, str) else None
    if region is None:
        errors.append({"field": "region_code", "message": f"unknown region code {region_code}"})
    elif region.level in ("province", "prefecture"):
        errors.append({"field": "region_code",
                       "message": "a product lies in a county, township or village"})
    holder_id = values.get("holder_party_id")
    holder = fetch(session, Party, holder_id) if isinstance(holder_id, int) else None
    if holder is None:
        errors.append({"field": "holder_party_id", "message": f"unknown party {holder_id}"})
    elif not holder.active:
        errors.append({"field": "holder_party_id",
                       "message": f"party {holder_id} is deactivated"})
    return errors


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: values[k] for k in FIELDS if k in values}
    for key in ("external_code", "name_zh", "name_en", "quality_grade", "brand",
                "grid_cell_id", "quantity_unit", "region_code"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip() or None
    if isinstance(out.get("certifications"), list):
        out["certifications"] = [c.strip() if isinstance(c, str) else c
                                 for c in out["certifications"]]
    return out


def _check_natural_key(session: Session, values: dict[str, Any], own_id: int | None) -> None:
    own = own_id if own_id is not None else -1
    clash = session.scalar(sa.select(Product.id).where(
        Product.region_code == values["region_code"], Product.type_code == values["type_code"],
        Product.name_zh == values["name_zh"], Product.id != own))
    if clash is not None:
        raise ProductExists(
            f"product {clash} already has this name, type and region "
            f"({values['name_zh']}, {values['type_code']}, {values['region_code']})",
            errors=[{"field": "name_zh", "message": "already used for this type in this region"}])
    if values.get("external_code"):
        clash = session.scalar(sa.select(Product.id).where(
            Product.county_code == county_of(values["region_code"]),
            Product.external_code == values["external_code"], Product.id != own))
        if clash is not None:
            raise ProductExists(
                f"product {clash} already has external code {values['external_code']} in this "
                f"county", errors=[{"field": "external_code", "message": "already used"}])


def add_version(session: Session, product: Product, actor: Principal, change: str, *,
                changed_fields: Iterable[str] = (), reason: str | None = None) -> None:
    session.add(ProductVersion(
        product_id=product.id, version=product.version, change=change, status=product.status,
        data=product_data(product), changed_fields=sorted(changed_fields), reason=reason,
        actor=actor.label, changed_at=product.updated_at,
    ))


# --- operations ----------------------------------------------------------------------------


def get_product(session: Session, actor: Principal, product_id: int) -> Product:
    authorize(actor, "catalog.product.read")
    product = fetch(session, Product, product_id)
    if product is None:
        raise ProductNotFound(f"no product {product_id}")
    return product


def _load_for_write(session: Session, actor: Principal, product_id: int,
                    action: str) -> Product:
    product = fetch(session, Product, product_id)
    if product is None:
        # writers learn it does not exist; everyone else only that they may not write
        authorize(actor, action, county=(actor.county_code if actor else None) or "")
        raise ProductNotFound(f"no product {product_id}")
    authorize(actor, action, county=product.county_code)
    return product


def create_product(session: Session, actor: Principal, values: dict[str, Any]) -> Product:
    """Register a new product as a draft in the county of its region."""
    values = {"development_status": "not_developed", "certifications": [], "attributes": {},
              **_clean(values)}
    authorize(actor, "catalog.product.write", county=county_of(values.get("region_code") or ""))
    errors = field_errors(values) + reference_errors(session, values)
    if errors:
        raise ValidationFailed("invalid product", errors=errors)
    _check_natural_key(session, values, None)
    product_type = vocabulary.product_types()[values["type_code"]]
    now = utcnow()
    product = Product(
        **values, category=product_type.category, county_code=county_of(values["region_code"]),
        status="draft", version=1, created_at=now, created_by=actor.label, updated_at=now,
        updated_by=actor.label,
    )
    session.add(product)
    session.flush()
    add_version(session, product, actor, "create")
    audit.record(session, actor, "catalog.product.create", "product", product.id,
                 after=product_data(product))
    return product


def _expect_version(product: Product, expected: int | None) -> None:
    if expected is not None and expected != product.version:
        raise VersionMismatch(
            f"product {product.id} is at version {product.version}, not {expected}; read it "
            f"again and retry", )


def update_product(session: Session, actor: Principal, product_id: int,
                   changes: dict[str, Any], *, expected_version: int | None = None) -> Product:
    """Edit a draft, registered or verified product. Changing an attested field of a verified
    product sends it back to registered for re-verification. The region may change only within
    the product's county (to move a product to another county, retire it and register it
    there)."""
    product = _load_for_write(session, actor, product_id, "catalog.product.write")
    _expect_version(product, expected_version)
    if product.status not in lifecycle.EDITABLE_STATES:
        raise ProductLocked(f"product {product.id} is {product.status}; it cannot be edited")
    changes = _clean(changes)
    current = {k: getattr(product, k) for k in FIELDS}
    merged = {**current, **changes}
    errors = field_errors(merged)
    if merged.get("region_code") and county_of(merged["region_code"]) != product.county_code:
        errors.append({"field": "region_code", "message": "a product cannot move to another "
                       "county; retire it and register it there"})
    changed = {k for k in changes if changes[k] != current[k]}
    if {"region_code", "holder_party_id"} & changed:
        errors += reference_errors(session, merged)
    if errors:
        raise ValidationFailed("invalid product", errors=errors)
    if not changed:
        return product
    if {"region_code", "type_code", "name_zh", "external_code"} & changed:
        _check_natural_key(session, merged, product.id)
    before = product_data(product)
    for key in changed:
        setattr(product, key, merged[key])
    if "type_code" in changed:
        product.category = vocabulary.product_types()[product.type_code].category
    reason = None
    if lifecycle.reverification_needed(product.status, changed):
        product.status = "registered"
        reason = "attested fields changed after verification: needs verification again"
    product.version += 1
    product.updated_at, product.updated_by = utcnow(), actor.label
    session.flush()
    add_version(session, product, actor, "update", changed_fields=changed, reason=reason)
    audit.record(session, actor, "catalog.product.update", "product", product.id,
                 before=before, after=product_data(product))
    return product


def transition_product(session: Session, actor: Principal, product_id: int, name: str, *,
                       reason: str | None = None,
                       expected_version: int | None = None) -> Product:
    """Move a product through its lifecycle (see catalog.lifecycle.TRANSITIONS)."""
    rule = lifecycle.TRANSITIONS[name]
    product = _load_for_write(session, actor, product_id, rule.action)
    _expect_version(product, expected_version)
    target = lifecycle.next_state(product.status, name)
    if target is None:
        allowed = ", ".join(sorted(rule.sources))
        raise IllegalTransition(
            f"cannot {name} product {product.id}: it is {product.status} "
            f"({name} is allowed from {allowed})")
    reason = (reason or "").strip() or None
    if rule.reason_required and not reason:
        raise ValidationFailed(f"a reason is required to {name} a product",
                               errors=[{"field": "reason", "message": "required"}])
    if name == "verify" and not actor.is_system and product.updated_by == actor.label:
        raise FourEyesViolation(
            f"product {product.id} was last changed by {actor.label}; another person must "
            f"verify it")
    before = product_data(product)
    now = utcnow()
    product.status = target
    if name == "verify":
        product.verified_at, product.verified_by = now, actor.label
    product.version += 1
    product.updated_at, product.updated_by = now, actor.label
    session.flush()
    add_version(session, product, actor, name, changed_fields=["status"], reason=reason)
    audit.record(session, actor, f"catalog.product.{name}", "product", product.id,
                 before=before, after=product_data(product))
    return product


def product_history(session: Session, actor: Principal, product_id: int) -> sa.Select:
    get_product(session, actor, product_id)
    return (sa.select(ProductVersion).where(ProductVersion.product_id == product_id)
            .order_by(ProductVersion.version))


# --- queries -------------------------------------------------------------------------------

SORTABLE = {
    "id": Product.id, "name_zh": Product.name_zh, "type_code": Product.type_code,
    "region_code": Product.region_code, "area_ha": Product.area_ha,
    "quantity": Product.quantity, "status": Product.status,
    "created_at": Product.created_at, "updated_at": Product.updated_at,
}


def order_by(sort: str | None) -> list[Any]:
    """ORDER BY for `sort` like "-area_ha,name_zh" (names checked by the schema), then id."""
    clauses = []
    for part in (sort or "").split(","):
        if part.strip().lstrip("+-") in SORTABLE:
            column = SORTABLE[part.strip().lstrip("+-")]
            clause = column.desc() if part.strip().startswith("-") else column.asc()
            clauses.append(clause.nulls_last())
    return [*clauses, Product.id]


#: the statement `filter_products` narrows keeps its row type (an export unpacks its columns)
_Select = TypeVar("_Select", bound=sa.Select)


def filter_products(stmt: _Select, *, county_code: str | None = None,
                    region_code: str | None = None, category: str | None = None,
                    type_code: Iterable[str] | None = None, status: Iterable[str] | None = None,
                    holder_party_id: int | None = None, development_status: str | None = None,
                    q: str | None = None, **_: Any) -> _Select:
    if county_code:
        stmt = stmt.where(Product.county_code == county_code)
    if region_code:
        stmt = stmt.where(Product.region_code.startswith(region_code, autoescape=True))
    if category:
        stmt = stmt.where(Product.category == category)
    if type_code:
        stmt = stmt.where(Product.type_code.in_(list(type_code)))
    if status:
        stmt = stmt.where(Product.status.in_(list(status)))
    if holder_party_id is not None:
        stmt = stmt.where(Product.holder_party_id == holder_party_id)
    if development_status:
        stmt = stmt.where(Product.development_status == development_status)
    if q:
        pattern = f"%{q.strip()}%"
        stmt = stmt.where(sa.or_(
            Product.name_zh.like(pattern), Product.name_en.ilike(pattern),
            Product.brand.ilike(pattern), Product.external_code == q.strip()))
    return stmt


def list_products(session: Session, actor: Principal, *, sort: str | None = None,
                  **filters: Any) -> sa.Select:
    """Products matching the filters (every role that reads the catalog sees all counties)."""
    authorize(actor, "catalog.product.read")
    stmt = filter_products(sa.select(Product), **filters)
    stmt = stmt.options(selectinload(Product.holder), selectinload(Product.region))
    return stmt.order_by(*order_by(sort))


def public_products(*, sort: str | None = None, **filters: Any) -> sa.Select:
    """The public catalog: verified products only (no token needed)."""
    filters.pop("status", None)
    filters.pop("holder_party_id", None)
    stmt = filter_products(sa.select(Product).where(Product.status == "verified"), **filters)
    stmt = stmt.options(selectinload(Product.holder), selectinload(Product.region))
    return stmt.order_by(*order_by(sort))


def get_public_product(session: Session, product_id: int) -> Product:
    product = fetch(session, Product, product_id)
    if product is None or product.status != "verified":
        raise ProductNotFound(f"no verified product {product_id}")
    return product


def summary(session: Session, actor: Principal | None, *, county_code: str | None = None,
            public: bool = False) -> list[dict]:
    """Per county and type: number of products, total area, and how many are verified.
    `public=True` counts verified products only (the public catalog's summary)."""
    if not public:
        authorize(actor, "catalog.product.read")
    stmt = (
        sa.select(
            Product.county_code, Product.category, Product.type_code,
            sa.func.count().label("products"),
            sa.func.count(Product.area_ha).label("products_with_area"),
            sa.func.sum(Product.area_ha).label("area_ha"),
            sa.func.sum(sa.case((Product.status == "verified", 1), else_=0)).label("verified"),
        )
        .where(Product.status != "retired")
        .group_by(Product.county_code, Product.category, Product.type_code)
        .order_by(Product.county_code, Product.category, Product.type_code)
    )
    if public:
        stmt = stmt.where(Product.status == "verified")
    if county_code:
        stmt = stmt.where(Product.county_code == county_code)
    names = dict(session.execute(sa.select(Region.code, Region.name_zh)
                                 .where(Region.level == "county")).all())
    types = vocabulary.product_types()
    return [
        {"county_code": r.county_code, "county_name_zh": names.get(r.county_code),
         "category": r.category, "type_code": r.type_code,
         "type_name_zh": types[r.type_code].name_zh if r.type_code in types else None,
         "products": r.products, "verified": int(r.verified or 0),
         "products_with_area": r.products_with_area,
         "area_ha": float(r.area_ha) if r.area_ha is not None else None}
        for r in session.execute(stmt)
    ]
