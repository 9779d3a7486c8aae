"""Agreements and their versions: drafted as a terms document, checked in full, put into
force (then immutable), superseded by a later version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.errors import PartyNotFound, RegionNotFound
from catalog.services import parties, regions
from ecovalue import audit
from ecovalue.auth import Principal, authorize
from ecovalue.clock import utcnow
from ecovalue.errors import NotFound
from ledger import core as ledger
from ledger.compensation import terms as terms_module
from ledger.compensation.errors import (
    AgreementExists,
    AgreementInForce,
    AgreementNotDraft,
    AgreementNotFound,
    DraftExists,
    InvalidTerms,
    NoAgreementInForce,
)
from ledger.compensation.models import CompensationAgreement
from ledger.compensation.services import sections
from ledger.compensation.services.common import CNY


def _snapshot(agreement: CompensationAgreement) -> dict:
    return audit.snapshot(agreement)


def check_terms(session: Session, actor: Principal, terms: Mapping[str, Any]) -> None:
    """Raise InvalidTerms listing every problem of `terms` (sections, parties and regions are
    looked up in this database)."""
    wanted = {c["section"] for c in terms["conditions"] if c.get("section") is not None}
    known = sections.known_codes(session, wanted)

    def party_exists(party_id: int) -> bool:
        try:
            return bool(parties.get_party(session, actor, party_id).active)
        except PartyNotFound:
            return False

    def region_exists(code: str) -> bool:
        try:
            regions.get_region(session, code)
        except RegionNotFound:
            return False
        return True

    problems = terms_module.problems(terms, known_sections=known, party_exists=party_exists,
                                     region_exists=region_exists)
    problems += _account_problems(session, actor, terms)
    if problems:
        raise InvalidTerms(f"the agreement's terms have {len(problems)} problem(s); nothing "
                           "was saved", errors=problems)


def _account_problems(session: Session, actor: Principal,
                      terms: Mapping[str, Any]) -> list[dict[str, str]]:
    """Accounts a party's terms name to pay from or be paid into must be that party's CNY
    accounts in the ledger."""
    problems = []
    for i, party in enumerate(terms["parties"]):
        for field in ("pay_from", "receive_into"):
            code = party.get(field)
            if code is None:
                continue
            try:
                account = ledger.account_balance(session, actor, code)
            except NotFound:
                problems.append({"field": f"parties.{i}.{field}",
                                 "message": f"no ledger account {code!r}"})
                continue
            if account.party_id != party["party_id"] or account.asset != CNY:
                problems.append({"field": f"parties.{i}.{field}", "message": (
                    f"account {code} is not a CNY account of party {party['party_id']}")})
    return problems


def _versions(session: Session, code: str) -> list[CompensationAgreement]:
    return list(session.scalars(sa.select(CompensationAgreement)
                                .where(CompensationAgreement.code == code)
                                .order_by(CompensationAgreement.version)))


def _new_row(actor: Principal, terms: Mapping[str, Any], version: int) -> CompensationAgreement:
    now = utcnow()
    return CompensationAgreement(
        code=terms["code"], version=version, kind=terms["kind"], status="draft",
        name_zh=terms["name_zh"], amount_fen=terms["amount_fen"], terms=dict(terms),
        terms_sha256=terms_module.terms_hash(terms), created_at=now, created_by=actor.label,
        updated_at=now)


def create_agreement(session: Session, actor: Principal,
                     terms: Mapping[str, Any]) -> CompensationAgreement:
    """Version 1 of a new agreement, as a draft."""
    authorize(actor, "compensation.agreement.write")
    check_terms(session, actor, terms)
    if _versions(session, terms["code"]):
        raise AgreementExists(f"agreement {terms['code']} exists; add a version to change it "
                              f"(POST /compensation/agreements/{terms['code']}/versions)")
    agreement = _new_row(actor, terms, 1)
    session.add(agreement)
    session.flush()
    audit.record(session, actor, "compensation.agreement.create", "compensation_agreement",
                 agreement.id, after=_snapshot(agreement))
    return agreement


def add_version(session: Session, actor: Principal, code: str,
                terms: Mapping[str, Any]) -> CompensationAgreement:
    """A new draft version of an existing agreement (the amendment of one in force)."""
    authorize(actor, "compensation.agreement.write")
    versions = _versions(session, code)
    if not versions:
        raise AgreementNotFound(f"no agreement {code}")
    if terms["code"] != code:
        raise InvalidTerms("a version keeps its agreement's code",
                           errors=[{"field": "code", "message": f"must be {code}"}])
    draft = next((v for v in versions if v.status == "draft"), None)
    if draft is not None:
        raise DraftExists(f"version {draft.version} of {code} is a draft: change it or put it "
                          "into force first", version=draft.version)
    check_terms(session, actor, terms)
    agreement = _new_row(actor, terms, versions[-1].version + 1)
    session.add(agreement)
    session.flush()
    audit.record(session, actor, "compensation.agreement.version", "compensation_agreement",
                 agreement.id, after=_snapshot(agreement))
    return agreement


#: the largest version the 32-bit column holds (a larger one in a URL is a 404, not a 500)
MAX_VERSION = 2**31 - 1


def get_version(session: Session, actor: Principal, code: str,
                version: int) -> CompensationAgreement:
    authorize(actor, "compensation.read")
    found = None
    if 0 < version <= MAX_VERSION:  # beyond the column's range there is no such version
        found = session.scalar(sa.select(CompensationAgreement).where(
            CompensationAgreement.code == code, CompensationAgreement.version == version))
    if found is None:
        raise AgreementNotFound(f"agreement {code} has no version {version}")
    return found


def replace_draft(session: Session, actor: Principal, code: str, version: int,
                  terms: Mapping[str, Any]) -> CompensationAgreement:
    """Replace the terms of a draft version; a version in force never changes."""
    authorize(actor, "compensation.agreement.write")
    agreement = get_version(session, actor, code, version)
    if agreement.status == "in_force":
        raise AgreementInForce(f"version {version} of {code} is in force and cannot change; "
                               "add a version instead")
    if agreement.status != "draft":
        raise AgreementNotDraft(f"version {version} of {code} is {agreement.status}")
    if terms["code"] != code:
        raise InvalidTerms("a version keeps its agreement's code",
                           errors=[{"field": "code", "message": f"must be {code}"}])
    check_terms(session, actor, terms)
    before = _snapshot(agreement)
    agreement.terms, agreement.kind = dict(terms), terms["kind"]
    agreement.name_zh, agreement.amount_fen = terms["name_zh"], terms["amount_fen"]
    agreement.terms_sha256 = terms_module.terms_hash(terms)
    agreement.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "compensation.agreement.update", "compensation_agreement",
                 agreement.id, before=before, after=_snapshot(agreement))
    return agreement


def put_in_force(session: Session, actor: Principal, code: str,
                 version: int) -> CompensationAgreement:
    """Put a draft version into force (its terms are checked again: a section or party may
    have changed since); the version in force until now is superseded."""
    authorize(actor, "compensation.agreement.activate")
    agreement = get_version(session, actor, code, version)
    if agreement.status != "draft":
        raise AgreementNotDraft(f"version {version} of {code} is {agreement.status}, not a "
                                "draft")
    check_terms(session, actor, agreement.terms)
    now = utcnow()
    for other in _versions(session, code):
        if other.status == "in_force":
            before = _snapshot(other)
            other.status, other.in_force_code, other.ended_at = "superseded", None, now
            session.flush()
            audit.record(session, actor, "compensation.agreement.supersede",
                         "compensation_agreement", other.id, before=before,
                         after=_snapshot(other))
    before = _snapshot(agreement)
    agreement.status, agreement.in_force_code = "in_force", code
    agreement.in_force_at, agreement.in_force_by = now, actor.label
    agreement.terms_sha256 = terms_module.terms_hash(agreement.terms)
    session.flush()
    audit.record(session, actor, "compensation.agreement.activate", "compensation_agreement",
                 agreement.id, before=before, after=_snapshot(agreement))
    return agreement


def terminate(session: Session, actor: Principal, code: str) -> CompensationAgreement:
    """End the version in force: no period of it can be settled any more (settlements already
    prepared can still be approved or rejected)."""
    authorize(actor, "compensation.agreement.activate")
    agreement = in_force(session, actor, code)
    before = _snapshot(agreement)
    agreement.status, agreement.in_force_code, agreement.ended_at = "terminated", None, utcnow()
    session.flush()
    audit.record(session, actor, "compensation.agreement.terminate", "compensation_agreement",
                 agreement.id, before=before, after=_snapshot(agreement))
    return agreement


def in_force(session: Session, actor: Principal, code: str) -> CompensationAgreement:
    """The version of `code` in force."""
    authorize(actor, "compensation.read")
    found = session.scalar(sa.select(CompensationAgreement)
                           .where(CompensationAgreement.in_force_code == code))
    if found is None:
        if not _versions(session, code):
            raise AgreementNotFound(f"no agreement {code}")
        raise NoAgreementInForce(f"no version of {code} is in force")
    return found


def current(session: Session, actor: Principal, code: str) -> CompensationAgreement:
    """The version in force, else the latest."""
    authorize(actor, "compensation.read")
    versions = _versions(session, code)
    if not versions:
        raise AgreementNotFound(f"no agreement {code}")
    return next((v for v in versions if v.status == "in_force"), versions[-1])


def versions(session: Session, actor: Principal, code: str) -> list[CompensationAgreement]:
    authorize(actor, "compensation.read")
    found = _versions(session, code)
    if not found:
        raise AgreementNotFound(f"no agreement {code}")
    return found


def list_agreements(session: Session, actor: Principal, *,
                    kind: str | None = None) -> list[CompensationAgreement]:
    """Every agreement, by code: its version in force, else its latest."""
    authorize(actor, "compensation.read")
    stmt = sa.select(CompensationAgreement).order_by(CompensationAgreement.code,
                                                     CompensationAgreement.version)
    if kind:
        stmt = stmt.where(CompensationAgreement.kind == kind)
    chosen: dict[str, CompensationAgreement] = {}
    for row in session.scalars(stmt):
        if chosen.get(row.code) is None or chosen[row.code].status != "in_force":
            chosen[row.code] = row
    return list(chosen.values())


def view(agreement: CompensationAgreement) -> dict[str, Any]:
    """An agreement version with its schedule, for the API and the CLI."""
    terms = agreement.terms
    return {
        "id": agreement.id, "code": agreement.code, "version": agreement.version,
        "status": agreement.status, "kind": agreement.kind,
        "kind_label": terms_module.KIND_LABELS.get(agreement.kind, agreement.kind),
        "name_zh": agreement.name_zh, "name_en": terms.get("name_en"),
        "amount_fen": agreement.amount_fen, "terms": terms,
        "terms_sha256": agreement.terms_sha256,
        "schedule": [vars(i) for i in terms_module.schedule_of(terms)],
        "created_at": agreement.created_at, "created_by": agreement.created_by,
        "in_force_at": agreement.in_force_at, "in_force_by": agreement.in_force_by,
        "ended_at": agreement.ended_at,
    }
