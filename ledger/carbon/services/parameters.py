"""Species parameter sets: the reference set (from the package's CSV), drafts a user copies,
adds species to and overrides, and publishes (then immutable), like the valuation price books.
Also the registry's operator party."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Party
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.errors import ValidationFailed
from ledger.carbon import errors, methodology
from ledger.carbon.models import CarbonParameterSet, CarbonRegistry, CarbonSpeciesParameter
from ledger.carbon.services.common import fetch, now_and_today

REFERENCE_VERSION = "reference"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SPECIES_FIELDS = ("species_code", "name_zh", "name_en", "wood_density_t_per_m3",
                  "biomass_expansion_factor", "root_shoot_ratio", "carbon_fraction",
                  "tree_tco2e_per_year", "confirmation", "source")


def species_row_data(row: CarbonSpeciesParameter) -> dict[str, Any]:
    return {f: getattr(row, f) for f in SPECIES_FIELDS}


def set_data(parameter_set: CarbonParameterSet) -> dict:
    return audit.snapshot(parameter_set)


def _content_sha256(rows: list[CarbonSpeciesParameter]) -> str:
    body = sorted((species_row_data(r) for r in rows), key=lambda r: r["species_code"])
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def rows_of(session: Session, set_id: int) -> list[CarbonSpeciesParameter]:
    return list(session.scalars(sa.select(CarbonSpeciesParameter).where(
        CarbonSpeciesParameter.set_id == set_id).order_by(CarbonSpeciesParameter.species_code)))


def species_of(session: Session, set_id: int) -> dict[str, methodology.SpeciesParameters]:
    """The species of a set as the pure methodology takes them."""
    return {r.species_code: methodology.SpeciesParameters(
        species_code=r.species_code, name_zh=r.name_zh, name_en=r.name_en,
        wood_density_t_per_m3=r.wood_density_t_per_m3,
        biomass_expansion_factor=r.biomass_expansion_factor,
        root_shoot_ratio=r.root_shoot_ratio, carbon_fraction=r.carbon_fraction,
        tree_tco2e_per_year=r.tree_tco2e_per_year, status=r.confirmation, source=r.source)
        for r in rows_of(session, set_id)}


def reference_set(session: Session, actor: Principal,
                  now: dt.datetime | None = None) -> CarbonParameterSet:
    """The published reference set (the package's carbon_species.csv), created on first use."""
    existing = session.scalar(sa.select(CarbonParameterSet).where(
        CarbonParameterSet.version == REFERENCE_VERSION))
    if existing is not None:
        return existing
    now, _ = now_and_today(now)
    parameter_set = CarbonParameterSet(
        version=REFERENCE_VERSION, title="Reference species parameters (carbon_species.csv)",
        status="published", created_at=now, created_by=actor.label, published_at=now,
        published_by=actor.label, note="national GHG inventory values, to be confirmed")
    session.add(parameter_set)
    session.flush()
    rows = [CarbonSpeciesParameter(
        set_id=parameter_set.id, confirmation="confirmed" if p.status == "confirmed"
        else "to-confirm", **{f: v for f, v in dataclasses.asdict(p).items()
                              if f in SPECIES_FIELDS})
        for p in methodology.builtin_species().values()]
    session.add_all(rows)
    session.flush()
    parameter_set.content_sha256 = _content_sha256(rows)
    session.flush()
    audit.record(session, actor, "carbon.parameters.create", "carbon_parameter_set",
                 parameter_set.id, after={**set_data(parameter_set),
                                          "species": [species_row_data(r) for r in rows]})
    return parameter_set


def get_set(session: Session, version: str) -> CarbonParameterSet:
    found = None if "\x00" in version else session.scalar(
        sa.select(CarbonParameterSet).where(CarbonParameterSet.version == version))
    if found is None:
        raise errors.ParameterSetNotFound(f"no parameter set {version!r}")
    return found


def read_set(session: Session, actor: Principal | None, version: str) -> CarbonParameterSet:
    """A set, draft or published (drafts are not public)."""
    authorize(actor, "carbon.read")
    return get_set(session, version)


def list_sets(session: Session) -> sa.Select:
    return sa.select(CarbonParameterSet).order_by(CarbonParameterSet.id)


def create_set(session: Session, actor: Principal, *, version: str, title: str,
               based_on: str | None = None, note: str | None = None,
               now: dt.datetime | None = None) -> CarbonParameterSet:
    """A draft copied from `based_on` (default: the reference set)."""
    authorize(actor, "carbon.parameters.write")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ValidationFailed("invalid version", errors=[{
            "field": "version", "message": "1-40 characters: letters, digits, '_', '.', '-'"}])
    now, _ = now_and_today(now)
    base = get_set(session, based_on) if based_on else reference_set(session, actor, now)
    if session.scalar(sa.select(CarbonParameterSet.id).where(
            CarbonParameterSet.version == version)):
        raise errors.ParameterSetExists(f"a parameter set {version!r} exists")
    draft = CarbonParameterSet(version=version, title=title, status="draft",
                               based_on_version=base.version, note=note, created_at=now,
                               created_by=actor.label)
    session.add(draft)
    session.flush()
    session.add_all([CarbonSpeciesParameter(set_id=draft.id, **species_row_data(r))
                     for r in rows_of(session, base.id)])
    session.flush()
    audit.record(session, actor, "carbon.parameters.create", "carbon_parameter_set", draft.id,
                 after=set_data(draft))
    return draft


def put_species(session: Session, actor: Principal, version: str,
                values: dict[str, Any]) -> CarbonSpeciesParameter:
    """Add a species to a draft set, or override its values."""
    authorize(actor, "carbon.parameters.write")
    parameter_set = get_set(session, version)
    if parameter_set.status != "draft":
        raise errors.ParameterSetPublished(
            f"parameter set {version!r} is published and immutable; copy it into a new draft")
    problems = methodology.parameter_errors(values)
    if values.get("confirmation", "to-confirm") not in ("to-confirm", "confirmed"):
        problems.append({"field": "confirmation", "message": "to-confirm or confirmed"})
    if problems:
        raise ValidationFailed("invalid species parameters", errors=problems)
    row = session.scalar(sa.select(CarbonSpeciesParameter).where(
        CarbonSpeciesParameter.set_id == parameter_set.id,
        CarbonSpeciesParameter.species_code == values["species_code"]))
    before = species_row_data(row) if row is not None else None
    if row is None:
        row = CarbonSpeciesParameter(set_id=parameter_set.id,
                                     species_code=values["species_code"])
        session.add(row)
    for field in SPECIES_FIELDS[1:]:
        if field in values:
            setattr(row, field, values[field])
    row.confirmation = row.confirmation or "to-confirm"
    session.flush()
    audit.record(session, actor, "carbon.parameters.species", "carbon_parameter_set",
                 parameter_set.id, before=before, after=species_row_data(row))
    return row


def publish_set(session: Session, actor: Principal, version: str,
                now: dt.datetime | None = None) -> CarbonParameterSet:
    authorize(actor, "carbon.parameters.publish")
    parameter_set = get_set(session, version)
    if parameter_set.status != "draft":
        raise errors.ParameterSetPublished(f"parameter set {version!r} is already published")
    rows = rows_of(session, parameter_set.id)
    if not rows:
        raise ValidationFailed("a parameter set needs at least one species",
                               errors=[{"field": "species", "message": "empty"}])
    now, _ = now_and_today(now)
    before = set_data(parameter_set)
    parameter_set.status, parameter_set.published_at = "published", now
    parameter_set.published_by = actor.label
    parameter_set.content_sha256 = _content_sha256(rows)
    session.flush()
    audit.record(session, actor, "carbon.parameters.publish", "carbon_parameter_set",
                 parameter_set.id, before=before, after=set_data(parameter_set))
    return parameter_set


# --- the registry's operator -----------------------------------------------------------------


def set_operator(session: Session, actor: Principal, party_id: int,
                 now: dt.datetime | None = None) -> CarbonRegistry:
    """Name the party that operates the registry (holds issuer, buffer and retirement
    accounts). It must be an active government body."""
    authorize(actor, "carbon.registry.configure")
    party = fetch(session, Party, party_id)
    if party is None or not party.active or party.kind != "government":
        raise ValidationFailed("the operator is an active government party", errors=[{
            "field": "operator_party_id", "message": f"no active government party {party_id}"}])
    now, _ = now_and_today(now)
    row = session.get(CarbonRegistry, 1)
    before = audit.snapshot(row) if row is not None else None
    if row is None:
        row = CarbonRegistry(id=1, operator_party_id=party.id, updated_at=now,
                             updated_by=actor.label)
        session.add(row)
    else:
        row.operator_party_id, row.updated_at, row.updated_by = party.id, now, actor.label
    session.flush()
    audit.record(session, actor, "carbon.registry.configure", "carbon_registry", 1,
                 before=before, after=audit.snapshot(row))
    return row


def set_view(session: Session, parameter_set: CarbonParameterSet) -> dict:
    species = species_of(session, parameter_set.id)
    rows = []
    for row in rows_of(session, parameter_set.id):
        rows.append({**species_row_data(row),
                     "tco2e_per_m3": species[row.species_code].tco2e_per_m3})
    return {**{c.key: getattr(parameter_set, c.key)
               for c in CarbonParameterSet.__table__.columns}, "species": rows}
