"""Parties (主体): government bodies, village collectives, cooperatives, households, enterprises.

A household's ID-card number and bank account are personal data: they are validated, encrypted
at rest (ecovalue.protect), found again through a keyed blind index (so a household cannot be
registered twice), and leave the service only masked. The audit trail records the masked forms;
the encrypted bytes and the blind index never appear in it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.errors import PartyExists, PartyInUse, PartyNotFound, VersionMismatch
from catalog.identifiers import (
    bank_account_error,
    id_number_error,
    normalize_code,
    uscc_error,
)
from catalog.models import PARTY_KINDS, Party, Product, Region
from catalog.services.common import fetch
from ecovalue import audit, protect
from ecovalue.auth import Principal, authorize, county_of, row_filter
from ecovalue.db import utcnow
from ecovalue.errors import ValidationFailed

#: columns never shown in the audit trail: ciphertexts and the blind index
_SECRET_COLUMNS = {"id_number_encrypted", "id_number_index", "bank_account_encrypted"}
_EDITABLE = ("name_zh", "name_en", "region_code", "credit_code", "sector", "bank_name",
             "attributes", "id_number", "bank_account")


def party_snapshot(party: Party) -> dict:
    """What the audit trail records of a party: everything but the protected columns."""
    return audit.snapshot(party, exclude=_SECRET_COLUMNS)


def get_party(session: Session, actor: Principal, party_id: int) -> Party:
    party = fetch(session, Party, party_id)
    if party is None:
        # A caller who reads one party only (a trader) probing other ids learns nothing more
        # than "not yours".
        if row_filter(actor, "catalog.party.read").party is not None:
            authorize(actor, "catalog.party.read", party=party_id)
        raise PartyNotFound(f"no party {party_id}")
    authorize(actor, "catalog.party.read", party=party.id)
    return party


def list_parties(session: Session, actor: Principal, *, kind: str | None = None,
                 county_code: str | None = None, region_code: str | None = None,
                 q: str | None = None, active: bool | None = None) -> sa.Select:
    """Parties matching the filters, by id; a trader sees only its own party."""
    visible = row_filter(actor, "catalog.party.read")
    if visible.nothing:
        authorize(actor, "catalog.party.read")  # refuses, with the reason
    stmt = sa.select(Party).where(visible.condition(party=Party.id))
    if kind:
        stmt = stmt.where(Party.kind == kind)
    if county_code:
        stmt = stmt.where(Party.region_code.startswith(county_code, autoescape=True))
    if region_code:
        stmt = stmt.where(Party.region_code.startswith(region_code, autoescape=True))
    if q:
        pattern = f"%{q}%"
        stmt = stmt.where(sa.or_(Party.name_zh.like(pattern), Party.name_en.ilike(pattern),
                                 Party.credit_code == q.upper()))
    if active is not None:
        stmt = stmt.where(Party.active == active)
    return stmt.order_by(Party.id)


def find_household_by_id_number(session: Session, actor: Principal,
                                id_number: str) -> Party | None:
    """The household registered with this ID-card number (exact match via the blind index)."""
    authorize(actor, "catalog.party.read")
    number = normalize_code(id_number)
    if id_number_error(number):
        return None
    return session.scalar(sa.select(Party).where(
        Party.id_number_index == protect.protector().blind_index(number)))


def _validate(session: Session, kind: str, values: dict[str, Any], *,
              creating: bool, allow_unidentified: bool = False) -> list[dict]:
    """Field errors of a party's values (all of them)."""
    errors: list[dict] = []

    def err(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    if kind not in PARTY_KINDS:
        err("kind", f"must be one of {', '.join(PARTY_KINDS)}")
        return errors
    if not (values.get("name_zh") or "").strip():
        err("name_zh", "a name is required")
    region_code = values.get("region_code")
    if region_code is not None and session.get(Region, region_code) is None:
        err("region_code", f"unknown region code {region_code}")
    credit_code = values.get("credit_code")
    if kind == "enterprise" and not credit_code and not allow_unidentified:
        err("credit_code", "an enterprise must carry its unified social credit code")
    if credit_code:
        if kind == "household":
            err("credit_code", "a household carries an ID-card number, not a credit code")
        elif (message := uscc_error(credit_code)) is not None:
            err("credit_code", message)
    id_number, bank_account = values.get("id_number"), values.get("bank_account")
    if kind == "household":
        if creating and not id_number:
            err("id_number", "a household must carry the ID-card number of its head")
        if id_number and (message := id_number_error(id_number)) is not None:
            err("id_number", message)
        if bank_account and (message := bank_account_error(bank_account)) is not None:
            err("bank_account", message)
    else:
        if id_number:
            err("id_number", "only households carry an ID-card number")
        if bank_account:
            err("bank_account", "only households' bank accounts are kept as personal data; "
                                "record an organisation's account in the ledger")
    return errors


def _normalized(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in ("credit_code", "id_number", "bank_account"):
        if key in out:
            out[key] = normalize_code(out[key]) if out[key] else None
    for key in ("name_zh", "name_en", "sector", "bank_name"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip() or None
    return out


def _check_unique(session: Session, party: Party | None, credit_code: str | None,
                  id_index: str | None) -> None:
    own_id = party.id if party is not None else -1
    if credit_code and session.scalar(sa.select(Party.id).where(
            Party.credit_code == credit_code, Party.id != own_id)) is not None:
        raise PartyExists(f"a party with credit code {credit_code} is already registered",
                          errors=[{"field": "credit_code", "message": "already registered"}])
    if id_index and session.scalar(sa.select(Party.id).where(
            Party.id_number_index == id_index, Party.id != own_id)) is not None:
        # never echo the number itself
        raise PartyExists("a household with this ID-card number is already registered",
                          errors=[{"field": "id_number", "message": "already registered"}])


def _protect_personal(party: Party, id_number: str | None, bank_account: str | None) -> None:
    protector = protect.protector()
    if id_number:
        party.id_number_encrypted = protector.encrypt(id_number)
        party.id_number_index = protector.blind_index(id_number)
        party.id_number_masked = protect.mask_id_number(id_number)
    if bank_account:
        party.bank_account_encrypted = protector.encrypt(bank_account)
        party.bank_account_masked = protect.mask_account(bank_account)


def create_party(session: Session, actor: Principal, values: dict[str, Any], *,
                 allow_unidentified: bool = False) -> Party:
    """Register a party in the county of its region. `allow_unidentified` (imports of a
    county's file) registers an enterprise without its credit code as unidentified: it can
    hold products but no ledger account (so neither trade nor receive money) until the code
    is added (`update_party`)."""
    values = _normalized(values)
    region_code = values.get("region_code") or ""
    authorize(actor, "catalog.party.write", county=county_of(region_code))
    kind = values.get("kind") or ""
    errors = _validate(session, kind, values, creating=True,
                       allow_unidentified=allow_unidentified)
    if errors:
        raise ValidationFailed("invalid party", errors=errors)
    id_number = values.get("id_number")
    id_index = protect.protector().blind_index(id_number) if id_number else None
    _check_unique(session, None, values.get("credit_code"), id_index)
    party = Party(
        kind=kind, name_zh=values["name_zh"], name_en=values.get("name_en"),
        region_code=region_code, credit_code=values.get("credit_code"),
        sector=values.get("sector"), bank_name=values.get("bank_name"),
        attributes=values.get("attributes") or {}, version=1, active=True,
    )
    _protect_personal(party, id_number, values.get("bank_account"))
    session.add(party)
    session.flush()
    audit.record(session, actor, "catalog.party.create", "party", party.id,
                 after=party_snapshot(party))
    return party


def _expect_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise VersionMismatch(f"the party is at version {current}, not {expected}; "
                              f"read it again and retry")


def update_party(session: Session, actor: Principal, party_id: int, changes: dict[str, Any],
                 *, expected_version: int | None = None) -> Party:
    """Change a party's fields; its kind never changes. Moving it to another county needs the
    right to write in both."""
    party = fetch(session, Party, party_id)
    if party is None:
        authorize(actor, "catalog.party.write", county=actor.county_code or "")
        raise PartyNotFound(f"no party {party_id}")
    changes = _normalized({k: v for k, v in changes.items() if k in _EDITABLE})
    counties = {county_of(party.region_code)}
    if changes.get("region_code"):
        counties.add(county_of(changes["region_code"]))
    authorize(actor, "catalog.party.write", county=counties)
    _expect_version(party.version, expected_version)
    if "kind" in changes:
        raise ValidationFailed("the kind of a party cannot change",
                               errors=[{"field": "kind", "message": "cannot change"}])
    merged = {"name_zh": party.name_zh, "region_code": party.region_code,
              "credit_code": party.credit_code, **changes}
    # an unidentified enterprise may be edited before its code is known, but no enterprise's
    # code may be taken away
    still_unidentified = party.credit_code is None and "credit_code" not in changes
    errors = _validate(session, party.kind, merged, creating=False,
                       allow_unidentified=still_unidentified)
    if errors:
        raise ValidationFailed("invalid party", errors=errors)
    id_number = changes.get("id_number")
    id_index = protect.protector().blind_index(id_number) if id_number else None
    _check_unique(session, party, changes.get("credit_code"), id_index)
    before = party_snapshot(party)
    for key in ("name_zh", "name_en", "region_code", "credit_code", "sector", "bank_name"):
        if key in changes:
            setattr(party, key, changes[key])
    if "attributes" in changes:
        party.attributes = changes["attributes"] or {}
    if party.kind == "household" and "bank_account" in changes and not changes["bank_account"]:
        party.bank_account_encrypted = party.bank_account_masked = None
    _protect_personal(party, id_number, changes.get("bank_account"))
    after = party_snapshot(party)
    personal_changed = bool(id_number or changes.get("bank_account"))
    if after == before and not personal_changed:
        return party
    party.version += 1
    party.updated_at = utcnow()
    session.flush()
    after = party_snapshot(party)
    audit.record(session, actor, "catalog.party.update", "party", party.id,
                 before=before, after=after)
    return party


def deactivate_party(session: Session, actor: Principal, party_id: int) -> Party:
    """Deactivate a party: it stays (accounts, history and products refer to it) but can no
    longer be named as a rights holder. Refused while it holds products that are not retired."""
    party = fetch(session, Party, party_id)
    if party is None:
        authorize(actor, "catalog.party.write", county=actor.county_code or "")
        raise PartyNotFound(f"no party {party_id}")
    authorize(actor, "catalog.party.write", county=county_of(party.region_code))
    held = session.scalar(sa.select(sa.func.count()).select_from(Product).where(
        Product.holder_party_id == party.id, Product.status != "retired"))
    if held:
        raise PartyInUse(f"party {party.id} still holds {held} product(s) that are not "
                         f"retired; transfer or retire them first")
    if party.active:
        before = party_snapshot(party)
        party.active = False
        party.version += 1
        party.updated_at = utcnow()
        session.flush()
        audit.record(session, actor, "catalog.party.deactivate", "party", party.id,
                     before=before, after=party_snapshot(party))
    return party
