"""Projects: register on verified catalog parcels, edit while draft, move through the
lifecycle (`ledger.carbon.lifecycle`), enrol households and trees (single-tree route)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party, Product, Region
from ecovalue import audit
from ecovalue.auth import Principal, authorize, county_of
from ecovalue.errors import ValidationFailed
from ledger.carbon import errors, lifecycle, methodology, serials
from ledger.carbon.models import (
    CarbonHousehold,
    CarbonParameterSet,
    CarbonProject,
    CarbonProjectEvent,
    CarbonProjectParcel,
    CarbonTree,
)
from ledger.carbon.services import parameters
from ledger.carbon.services.common import fetch, get_project, now_and_today

#: catalog product types a project may cover
FOREST_TYPES = frozenset({"forest_carbon_sink", "timber_forest"})
FIELDS = ("code", "name_zh", "name_en", "methodology", "region_codes", "developer_party_id",
          "owner_party_id", "species_composition", "crediting_start", "crediting_end",
          "share_of_proceeds_bp", "overall_mitigation_bp", "documents", "description")
MAX_PARCELS = 1000
MAX_TREES_PER_REQUEST = 5000
PUBLIC_STATES = ("registered", "active", "closed")


def project_data(project: CarbonProject, parcel_ids: Iterable[int] | None = None) -> dict:
    data = audit.snapshot(project)
    if parcel_ids is not None:
        data["parcel_ids"] = sorted(parcel_ids)
    return data


def parcel_ids_of(session: Session, project_id: int) -> list[int]:
    return list(session.scalars(sa.select(CarbonProjectParcel.product_id).where(
        CarbonProjectParcel.project_id == project_id).order_by(CarbonProjectParcel.product_id)))


def parcels_of(session: Session, project_id: int) -> list[Product]:
    return list(session.scalars(sa.select(Product).join(
        CarbonProjectParcel, CarbonProjectParcel.product_id == Product.id).where(
        CarbonProjectParcel.project_id == project_id).order_by(Product.id)))


def _err(errors_: list[dict], field: str, message: str) -> None:
    errors_.append({"location": "json", "field": field, "message": message})


def _crediting_errors(method: methodology.Methodology, start: Any, end: Any) -> list[dict]:
    found: list[dict] = []
    if not isinstance(start, dt.date) or not isinstance(end, dt.date):
        _err(found, "crediting_start", "the crediting period needs a start and an end date")
        return found
    if end <= start:
        _err(found, "crediting_end", "the crediting period ends after it starts")
        return found
    low, high = method.crediting_years
    days = (end - start).days + 1
    if not low * 365 <= days <= high * 366:
        _err(found, "crediting_end", f"a {method.code} crediting period lasts {low} to {high} "
                                     f"years (this one {days / 365.25:.1f})")
    return found


def _parcel_errors(session: Session, product_ids: Any, county: str | None,
                   own_project_id: int | None) -> tuple[list[dict], list[Product]]:
    found: list[dict] = []
    if not isinstance(product_ids, list) or not product_ids or len(product_ids) > MAX_PARCELS:
        _err(found, "parcel_ids", f"1 to {MAX_PARCELS} verified forest parcels of the catalog")
        return found, []
    if len(set(product_ids)) != len(product_ids):
        _err(found, "parcel_ids", "a parcel is listed twice")
    products = []
    for i, product_id in enumerate(product_ids):
        product = fetch(session, Product, product_id)
        where = f"parcel_ids.{i}"
        if product is None:
            _err(found, where, f"no catalog product {product_id}")
            continue
        if product.status != "verified":
            _err(found, where, f"product {product_id} is {product.status}, not verified")
        if product.type_code not in FOREST_TYPES:
            _err(found, where, f"product {product_id} is a {product.type_code}, not a forest "
                               f"parcel ({', '.join(sorted(FOREST_TYPES))})")
        if county and product.county_code != county:
            _err(found, where, f"product {product_id} lies in county {product.county_code}, "
                               f"not the project's {county}")
        other = session.scalar(sa.select(CarbonProject.code).join(
            CarbonProjectParcel, CarbonProjectParcel.project_id == CarbonProject.id).where(
            CarbonProjectParcel.product_id == product.id,
            CarbonProject.status.in_(lifecycle.HOLDING_STATES),
            CarbonProject.id != (own_project_id or -1)))
        if other is not None:
            _err(found, where, f"product {product_id} belongs to project {other}")
        products.append(product)
    return found, products


def _validate(session: Session, values: dict[str, Any], *, own: CarbonProject | None
              ) -> tuple[list[dict], str | None, CarbonParameterSet | None]:
    """Every problem of a project's values (all at once); the county and parameter set."""
    found: list[dict] = []
    code = values.get("code")
    if not isinstance(code, str) or not serials.PROJECT_CODE_RE.match(code):
        _err(found, "code", "2-16 characters A-Z, 0-9 and '-' (used in serial numbers)")
    elif session.scalar(sa.select(CarbonProject.id).where(
            CarbonProject.code == code, CarbonProject.id != (own.id if own else -1))):
        raise errors.ProjectExists(f"a project with code {code} exists",
                                   errors=[{"field": "code", "message": "taken"}])
    if not isinstance(values.get("name_zh"), str) or not values["name_zh"].strip():
        _err(found, "name_zh", "required")
    method = methodology.METHODOLOGIES.get(str(values.get("methodology")))
    if method is None:
        _err(found, "methodology", f"one of {', '.join(methodology.METHODOLOGIES)}")
    county = None
    regions = values.get("region_codes")
    if not isinstance(regions, list) or not regions or not all(
            isinstance(r, str) for r in regions):
        _err(found, "region_codes", "at least one region code (county, township or village)")
    else:
        counties = {county_of(r) for r in regions}
        known = set(session.scalars(sa.select(Region.code).where(
            Region.code.in_(regions), Region.level.in_(("county", "township", "village")))))
        for i, region in enumerate(regions):
            if region not in known:
                _err(found, f"region_codes.{i}", f"no county, township or village {region}")
        if len(counties) > 1:
            _err(found, "region_codes", "a project lies in one county")
        county = next(iter(counties))
    for field in ("developer_party_id", "owner_party_id"):
        party = fetch(session, Party, values.get(field))
        if party is None or not party.active:
            _err(found, field, f"no active party {values.get(field)}")
    parameter_set = None
    version = values.get("parameter_set_version") or parameters.REFERENCE_VERSION
    if version == parameters.REFERENCE_VERSION:
        parameter_set = None  # resolved by the caller (created on first use)
    else:
        parameter_set = session.scalar(sa.select(CarbonParameterSet).where(
            CarbonParameterSet.version == version))
        if parameter_set is None or parameter_set.status != "published":
            _err(found, "parameter_set_version", f"no published parameter set {version!r}")
    if method is not None:
        found += _crediting_errors(method, values.get("crediting_start"),
                                   values.get("crediting_end"))
    shares = [values.get("share_of_proceeds_bp", 0), values.get("overall_mitigation_bp", 0)]
    for field, share in zip(("share_of_proceeds_bp", "overall_mitigation_bp"), shares,
                            strict=True):
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 5000:
            _err(found, field, "an integer of basis points, 0 to 5000 (50 %)")
    documents = values.get("documents", [])
    if not isinstance(documents, list) or len(documents) > 100 or not all(
            isinstance(d, dict) and isinstance(d.get("title"), str) and d["title"].strip()
            for d in documents):
        _err(found, "documents", "a list of {title, reference, sha256}")
    return found, county, parameter_set


def _composition_errors(session: Session, values: dict[str, Any],
                        parameter_set: CarbonParameterSet) -> list[dict]:
    composition = values.get("species_composition") or {}
    if values.get("methodology") == "single_tree" and not composition:
        return []
    known = parameters.species_of(session, parameter_set.id)
    found = methodology.composition_errors(composition, known)
    if any("has no parameters" in e["message"] for e in found):
        raise errors.SpeciesWithoutParameters(
            "species without parameters in parameter set " + parameter_set.version,
            errors=found)
    return found


def _record(session: Session, project: CarbonProject, actor: Principal, change: str,
            before: str | None, reason: str | None = None) -> None:
    session.add(CarbonProjectEvent(project_id=project.id, change=change, from_status=before,
                                   to_status=project.status, reason=reason, actor=actor.label,
                                   occurred_at=project.updated_at))


def create_project(session: Session, actor: Principal, values: dict[str, Any], *,
                   now: dt.datetime | None = None) -> CarbonProject:
    """Register a project as a draft on verified forest parcels of its county."""
    values = {"share_of_proceeds_bp": 0, "overall_mitigation_bp": 0, "documents": [],
              **values}
    regions = values.get("region_codes")
    first = regions[0] if isinstance(regions, list) and regions and isinstance(
        regions[0], str) else ""
    authorize(actor, "carbon.project.write", county=county_of(first))
    found, county, parameter_set = _validate(session, values, own=None)
    parcel_problems, _ = _parcel_errors(session, values.get("parcel_ids"), county, None)
    found += parcel_problems
    if found:
        raise ValidationFailed("invalid carbon project", errors=found)
    now, _ = now_and_today(now)
    parameter_set = parameter_set or parameters.reference_set(session, actor, now)
    composition_problems = _composition_errors(session, values, parameter_set)
    if composition_problems:
        raise ValidationFailed("invalid species composition", errors=composition_problems)
    method = methodology.METHODOLOGIES[values["methodology"]]
    project = CarbonProject(
        **{k: values.get(k) for k in FIELDS}, county_code=county,
        parameter_set_id=parameter_set.id, buffer_share_bp=method.buffer_share_bp,
        status="draft", version=1, created_at=now, created_by=actor.label, updated_at=now,
        updated_by=actor.label)
    project.species_composition = values.get("species_composition") or {}
    session.add(project)
    session.flush()
    session.add_all([CarbonProjectParcel(project_id=project.id, product_id=p)
                     for p in values["parcel_ids"]])
    _record(session, project, actor, "create", None)
    session.flush()
    audit.record(session, actor, "carbon.project.create", "carbon_project", project.id,
                 after=project_data(project, values["parcel_ids"]))
    return project


def update_project(session: Session, actor: Principal, ref: int | str,
                   changes: dict[str, Any], *, expected_version: int | None = None,
                   now: dt.datetime | None = None) -> CarbonProject:
    """Edit a draft project (parcels replaced when `parcel_ids` is given)."""
    project = get_project(session, ref)
    authorize(actor, "carbon.project.write", county=project.county_code)
    if expected_version is not None and expected_version != project.version:
        raise errors.ProjectLocked(f"project {project.code} is at version {project.version}, "
                                   f"not {expected_version}; read it again")
    if project.status not in lifecycle.EDITABLE_STATES:
        raise errors.ProjectLocked(f"project {project.code} is {project.status}; only a draft "
                                   "can be edited")
    current = {k: getattr(project, k) for k in FIELDS}
    current["parameter_set_version"] = session.get_one(CarbonParameterSet,
                                                   project.parameter_set_id).version
    merged = {**current, **changes}
    found, county, parameter_set = _validate(session, merged, own=project)
    if county != project.county_code:
        _err(found, "region_codes", "a project cannot move to another county")
    parcel_ids = changes.get("parcel_ids", parcel_ids_of(session, project.id))
    parcel_problems, _ = _parcel_errors(session, parcel_ids, project.county_code, project.id)
    found += parcel_problems
    if found:
        raise ValidationFailed("invalid carbon project", errors=found)
    now, _ = now_and_today(now)
    parameter_set = parameter_set or parameters.reference_set(session, actor, now)
    composition_problems = _composition_errors(session, merged, parameter_set)
    if composition_problems:
        raise ValidationFailed("invalid species composition", errors=composition_problems)
    before = project_data(project, parcel_ids_of(session, project.id))
    for key in FIELDS:
        setattr(project, key, merged.get(key))
    project.species_composition = merged.get("species_composition") or {}
    project.parameter_set_id = parameter_set.id
    if "parcel_ids" in changes:
        session.execute(sa.delete(CarbonProjectParcel).where(
            CarbonProjectParcel.project_id == project.id))
        session.add_all([CarbonProjectParcel(project_id=project.id, product_id=p)
                         for p in parcel_ids])
    project.version += 1
    project.updated_at, project.updated_by = now, actor.label
    _record(session, project, actor, "update", project.status)
    session.flush()
    audit.record(session, actor, "carbon.project.update", "carbon_project", project.id,
                 before=before, after=project_data(project, parcel_ids))
    return project


def transition_project(session: Session, actor: Principal, ref: int | str, name: str, *,
                       reason: str | None = None, expected_version: int | None = None,
                       now: dt.datetime | None = None) -> CarbonProject:
    """Move a project through its lifecycle (see ledger.carbon.lifecycle.TRANSITIONS)."""
    rule = lifecycle.TRANSITIONS[name]
    project = get_project(session, ref)
    authorize(actor, rule.action, county=project.county_code)
    if expected_version is not None and expected_version != project.version:
        raise errors.ProjectLocked(f"project {project.code} is at version {project.version}, "
                                   f"not {expected_version}; read it again")
    target = lifecycle.next_state(project.status, name)
    if target is None:
        raise errors.IllegalTransition(
            f"cannot {name} project {project.code}: it is {project.status} ({name} is allowed "
            f"from {', '.join(sorted(rule.sources))})")
    reason = (reason or "").strip() or None
    if rule.reason_required and not reason:
        raise ValidationFailed(f"a reason is required to {name} a project",
                               errors=[{"field": "reason", "message": "required"}])
    if rule.four_eyes and not actor.is_system and project.created_by == actor.label:
        raise errors.FourEyesViolation(
            f"project {project.code} was created by {actor.label}; another person must {name} "
            "it")
    if name in ("validate", "register"):
        problems, _ = _parcel_errors(session, parcel_ids_of(session, project.id),
                                     project.county_code, project.id)
        if problems:
            raise errors.ParcelNotEligible(
                f"project {project.code}'s parcels are no longer eligible", errors=problems)
    now, _ = now_and_today(now)
    before, previous = project_data(project), project.status
    project.status = target
    project.version += 1
    project.updated_at, project.updated_by = now, actor.label
    _record(session, project, actor, name, previous, reason)
    session.flush()
    audit.record(session, actor, f"carbon.project.{name}", "carbon_project", project.id,
                 before=before, after={**project_data(project), "reason": reason})
    return project


def read_project(session: Session, actor: Principal | None, ref: int | str) -> CarbonProject:
    """A project: registered, active and closed ones are public; others need carbon.read."""
    project = get_project(session, ref)
    if project.status not in PUBLIC_STATES:
        authorize(actor, "carbon.read")
    return project


def public_project(session: Session, ref: int | str) -> CarbonProject:
    """A registered, active or closed project; others are not public (404)."""
    project = get_project(session, ref)
    if project.status not in PUBLIC_STATES:
        raise errors.ProjectNotFound(f"no public carbon project {ref!r}")
    return project


def list_projects(session: Session, actor: Principal | None, *, public: bool,
                  county_code: str | None = None, status: str | None = None,
                  methodology_code: str | None = None) -> sa.Select:
    stmt = sa.select(CarbonProject)
    if public:
        stmt = stmt.where(CarbonProject.status.in_(PUBLIC_STATES))
    else:
        authorize(actor, "carbon.read")
    if county_code:
        stmt = stmt.where(CarbonProject.county_code == county_code)
    if status:
        stmt = stmt.where(CarbonProject.status == status)
    if methodology_code:
        stmt = stmt.where(CarbonProject.methodology == methodology_code)
    return stmt.order_by(CarbonProject.id)


def project_history(session: Session, actor: Principal | None, ref: int | str) -> list:
    project = read_project(session, actor, ref)
    return list(session.scalars(sa.select(CarbonProjectEvent).where(
        CarbonProjectEvent.project_id == project.id).order_by(CarbonProjectEvent.id)))


# --- single-tree route -----------------------------------------------------------------------


def enrol_household(session: Session, actor: Principal, ref: int | str, *, party_id: int,
                    product_id: int, area_mu: float, trees: list[dict[str, Any]],
                    now: dt.datetime | None = None) -> CarbonHousehold:
    """Enrol a household's land and register its trees (more trees may be added later, up
    to the household's cap: 225 per mu, at most 2 mu counted, at most 450)."""
    project = get_project(session, ref)
    authorize(actor, "carbon.project.write", county=project.county_code)
    if project.methodology != "single_tree":
        raise errors.ProjectLocked(f"project {project.code} is not a single-tree project")
    if project.status not in lifecycle.HOLDING_STATES:
        raise errors.ProjectLocked(f"project {project.code} is {project.status}")
    found: list[dict] = []
    party = fetch(session, Party, party_id)
    if party is None or party.kind != "household" or not party.active:
        _err(found, "party_id", f"no active household {party_id}")
    if product_id not in parcel_ids_of(session, project.id):
        _err(found, "product_id", f"product {product_id} is not a parcel of {project.code}")
    if isinstance(area_mu, bool) or not isinstance(area_mu, (int, float)) \
            or not math.isfinite(area_mu) or area_mu <= 0:
        _err(found, "area_mu", "a positive area in mu")
    if not isinstance(trees, list) or len(trees) > MAX_TREES_PER_REQUEST:
        _err(found, "trees", f"at most {MAX_TREES_PER_REQUEST} trees per request")
        trees = []
    species = parameters.species_of(session, project.parameter_set_id)
    existing_codes = set(session.scalars(sa.select(CarbonTree.tree_code).where(
        CarbonTree.project_id == project.id)))
    missing_species = []
    for i, tree in enumerate(trees):
        code = tree.get("tree_code")
        if not isinstance(code, str) or not 1 <= len(code) <= 40:
            _err(found, f"trees.{i}.tree_code", "1-40 characters")
        elif code in existing_codes:
            _err(found, f"trees.{i}.tree_code", f"tree {code} is already registered")
        else:
            existing_codes.add(code)
        if tree.get("species_code") not in species:
            missing_species.append({"location": "json", "field": f"trees.{i}.species_code",
                                    "message": f"species {tree.get('species_code')!r} has no "
                                               "parameters in the project's set"})
        year = tree.get("planting_year")
        if isinstance(year, bool) or not isinstance(year, int) or not 1950 <= year <= 2100:
            _err(found, f"trees.{i}.planting_year", "a year")
    if missing_species:
        raise errors.SpeciesWithoutParameters("species without parameters",
                                              errors=missing_species)
    if found:
        raise ValidationFailed("invalid household enrolment", errors=found)
    household = session.scalar(sa.select(CarbonHousehold).where(
        CarbonHousehold.project_id == project.id, CarbonHousehold.party_id == party_id))
    registered = 0 if household is None else session.scalar(
        sa.select(sa.func.count()).select_from(CarbonTree).where(
            CarbonTree.household_id == household.id)) or 0
    problem = methodology.tree_cap_error(registered + len(trees), float(area_mu))
    if problem:
        raise errors.TreeCapExceeded(problem, errors=[{"location": "json", "field": "trees",
                                                       "message": problem}])
    if household is None:
        household = CarbonHousehold(project_id=project.id, party_id=party_id,
                                    product_id=product_id, area_mu=float(area_mu))
        session.add(household)
    else:
        household.area_mu, household.product_id = float(area_mu), product_id
    session.flush()
    session.add_all([CarbonTree(project_id=project.id, household_id=household.id,
                                tree_code=t["tree_code"], species_code=t["species_code"],
                                planting_year=t["planting_year"],
                                photo_reference=t.get("photo_reference")) for t in trees])
    session.flush()
    audit.record(session, actor, "carbon.project.enrol", "carbon_project", project.id, after={
        "household_id": household.id, "party_id": party_id, "product_id": product_id,
        "area_mu": float(area_mu), "trees_added": len(trees),
        "trees_total": registered + len(trees)})
    return household


def household_rows(session: Session, actor: Principal, ref: int | str) -> list[dict]:
    """The enrolled households of a project with tree counts (names masked by the schema)."""
    project = get_project(session, ref)
    authorize(actor, "carbon.read")
    counts = dict(session.execute(sa.select(CarbonTree.household_id, sa.func.count()).where(
        CarbonTree.project_id == project.id).group_by(CarbonTree.household_id)).all())
    rows = []
    for h in session.scalars(sa.select(CarbonHousehold).where(
            CarbonHousehold.project_id == project.id).order_by(CarbonHousehold.id)):
        party = session.get_one(Party, h.party_id)
        rows.append({"id": h.id, "party_id": h.party_id, "party": party,
                     "product_id": h.product_id, "area_mu": h.area_mu,
                     "trees": counts.get(h.id, 0),
                     "tree_cap": methodology.household_tree_cap(h.area_mu)})
    return rows



def project_view(session: Session, project: CarbonProject, *, public: bool) -> dict:
    """A project as the API shows it: names side by side, parties (households' names masked,
    omitted in public), parcels, the parameter set's version."""
    from ledger.carbon.services.registry import holder_view

    method = methodology.METHODOLOGIES[project.methodology]
    view = {c.key: getattr(project, c.key) for c in CarbonProject.__table__.columns}
    view.update(
        methodology_name_zh=method.name_zh, methodology_name_en=method.name_en,
        developer=holder_view(session.get_one(Party, project.developer_party_id), public=public),
        owner=holder_view(session.get_one(Party, project.owner_party_id), public=public),
        parameter_set_version=session.get_one(CarbonParameterSet, project.parameter_set_id).version,
        parcels=[{"product_id": p.id, "name_zh": p.name_zh, "name_en": p.name_en,
                  "region_code": p.region_code, "area_ha": p.area_ha, "status": p.status}
                 for p in parcels_of(session, project.id)])
    return view
