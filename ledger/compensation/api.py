"""HTTP routes of ecological compensation (thin: parse, call one service, return).

Every route needs a bearer token; roles are decided by the services (`compensation.*` actions
of `ecovalue/auth/policy.py`). Every POST that creates something or moves money accepts an
Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app

from ecovalue.api import XLSX_MIMETYPE, Blueprint, current_actor, file_response, page_of, paginate
from ecovalue.db import current_session
from ledger.compensation import schemas
from ledger.compensation.models import CompensationAssessment
from ledger.compensation.services import agreements, assessments, sections, settlements

blp = Blueprint("compensation", __name__, url_prefix="/compensation",
                description="Ecological compensation (生态保护补偿): assessed sections, "
                            "agreements (vertical, horizontal, market, the thermal-power "
                            "fund) and their versions, monitored values, settlements and "
                            "their payments through the ledger")

_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 413: "REQUEST_ENTITY_TOO_LARGE",
          415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY"}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def _assessment(row: CompensationAssessment, section: str) -> dict[str, Any]:
    return {"id": row.id, "section": section, "period": row.period, "indicator": row.indicator,
            "value": row.value, "origin": row.origin, "source": row.source,
            "catalog_record_id": row.catalog_record_id, "recorded_at": row.recorded_at,
            "recorded_by": row.recorded_by}


def _assessments(rows: list[CompensationAssessment]) -> list[dict[str, Any]]:
    codes = {s.id: s.code for s in sections.list_sections(current_session(), current_actor())}
    return [_assessment(r, codes[r.section_id]) for r in rows]


# --- sections ----------------------------------------------------------------------------------


@blp.route("/sections")
@blp.authenticated
@blp.response(200, schemas.SectionSchema(many=True))
def list_sections() -> Any:
    """Assessed sections (考核断面) and areas, by code."""
    return sections.list_sections(current_session(), current_actor())


@blp.route("/sections", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SectionIn())
@blp.response(201, schemas.SectionSchema)
@errors(409, 422)
def create_section(body: dict) -> Any:
    """Register a section: code, names, river, the catalog region it lies in."""
    return sections.create_section(current_session(), current_actor(), body)


@blp.route("/sections/<string:code>")
@blp.authenticated
@blp.response(200, schemas.SectionSchema)
@errors(404)
def get_section(code: str) -> Any:
    """One section."""
    return sections.get_section(current_session(), current_actor(), code)


# --- agreements --------------------------------------------------------------------------------


@blp.route("/agreements")
@blp.authenticated
@blp.arguments(schemas.AgreementQuerySchema, location="query")
@blp.response(200, schemas.AgreementSchema(many=True))
def list_agreements(query: dict) -> Any:
    """Every agreement: its version in force, else its latest."""
    return [agreements.view(a) for a in agreements.list_agreements(
        current_session(), current_actor(), kind=query.get("kind"))]


@blp.route("/agreements", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.TermsIn())
@blp.response(201, schemas.AgreementSchema)
@errors(409, 422)
def create_agreement(body: dict) -> Any:
    """A new agreement, version 1, as a draft; every problem of its terms is listed at once
    (shares that do not sum to share_basis, unknown sections or parties, a negative amount)
    and nothing is saved."""
    return agreements.view(agreements.create_agreement(current_session(), current_actor(),
                                                       body))


@blp.route("/agreements/<string:code>")
@blp.authenticated
@blp.response(200, schemas.AgreementSchema)
@errors(404)
def get_agreement(code: str) -> Any:
    """An agreement: its version in force, else its latest, with its schedule."""
    return agreements.view(agreements.current(current_session(), current_actor(), code))


@blp.route("/agreements/<string:code>/versions")
@blp.authenticated
@blp.response(200, schemas.AgreementSchema(many=True))
@errors(404)
def list_versions(code: str) -> Any:
    """Every version of an agreement, oldest first."""
    return [agreements.view(a) for a in agreements.versions(current_session(),
                                                             current_actor(), code)]


@blp.route("/agreements/<string:code>/versions", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.TermsIn())
@blp.response(201, schemas.AgreementSchema)
@errors(404, 409, 422)
def add_version(body: dict, code: str) -> Any:
    """A new draft version (an amendment); the version in force stays in force until the
    new one is put into force."""
    return agreements.view(agreements.add_version(current_session(), current_actor(), code,
                                                  body))


@blp.route("/agreements/<string:code>/versions/<int:version>")
@blp.authenticated
@blp.response(200, schemas.AgreementSchema)
@errors(404)
def get_version(code: str, version: int) -> Any:
    """One version of an agreement."""
    return agreements.view(agreements.get_version(current_session(), current_actor(), code,
                                                  version))


@blp.route("/agreements/<string:code>/versions/<int:version>", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.TermsIn())
@blp.response(200, schemas.AgreementSchema)
@errors(404, 409, 422)
def replace_draft(body: dict, code: str, version: int) -> Any:
    """Replace a draft's terms; a version in force is immutable (409)."""
    return agreements.view(agreements.replace_draft(current_session(), current_actor(), code,
                                                    version, body))


@blp.route("/agreements/<string:code>/versions/<int:version>/activate", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.AgreementSchema)
@errors(404, 409, 422)
def put_in_force(code: str, version: int) -> Any:
    """Put a draft version into force (its terms are checked again); the version in force
    until now is superseded."""
    return agreements.view(agreements.put_in_force(current_session(), current_actor(), code,
                                                   version))


@blp.route("/agreements/<string:code>/terminate", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.AgreementSchema)
@errors(404, 409)
def terminate(code: str) -> Any:
    """End the version in force: no further period can be settled."""
    return agreements.view(agreements.terminate(current_session(), current_actor(), code))


# --- monitored values ----------------------------------------------------------------------


@blp.route("/assessments")
@blp.authenticated
@blp.arguments(schemas.AssessmentQuerySchema, location="query")
@blp.response(200, page_of(schemas.AssessmentSchema))
def list_assessments(query: dict) -> Any:
    """Monitored values, in the order recorded (the latest of a section, period and
    indicator counts)."""
    page = paginate(current_session(), assessments.list_values(
        current_session(), current_actor(), section=query.get("section"),
        period=query.get("period")), query["page"], query["page_size"], scalars=False)
    page["items"] = [_assessment(row, code) for row, code in page["items"]]
    return page


@blp.route("/assessments", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ValuesIn())
@blp.response(201, schemas.AssessmentSchema(many=True))
@errors(422)
def record_values(body: dict) -> Any:
    """Record monitored values (all or none; every problem listed)."""
    return _assessments(assessments.record_values(current_session(), current_actor(),
                                                  body["values"]))


def _max_upload() -> int:
    return int(current_app.config["MAX_CONTENT_LENGTH"])


@blp.route("/assessments/import", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.AssessmentImportQuerySchema, location="query")
@blp.arguments(schemas.AssessmentFileSchema, location="files")
@blp.response(200, schemas.AssessmentImportReportSchema)
@errors(413, 415, 422)
def import_values(query: dict, files: dict) -> Any:
    """Monitored values from CSV (UTF-8 or GBK) or XLSX: columns section (断面), period
    (期间), indicator (指标), value (监测值), source (来源); all rows or none."""
    upload = files["file"]
    data = upload.stream.read(_max_upload() + 1)
    rows = assessments.import_file(current_session(), current_actor(), data,
                                   (upload.filename or "upload")[:255],
                                   dry_run=query["dry_run"], max_bytes=_max_upload())
    values = [{**_assessment(r, ""), "id": r.id} for r in rows] if query["dry_run"] \
        else _assessments(rows)
    return {"dry_run": query["dry_run"], "recorded": len(rows), "values": values}


@blp.route("/assessments/from-catalog", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.CatalogReadIn())
@blp.response(201, schemas.AssessmentSchema)
@errors(404, 422)
def read_catalog(body: dict) -> Any:
    """A section's forest coverage for a year, read from the catalog's monitoring records of
    the section's product."""
    row = assessments.read_catalog(current_session(), current_actor(), body["section"],
                                   body["period"], body["indicator"])
    return _assessment(row, body["section"])


# --- settlements -------------------------------------------------------------------------------


@blp.route("/agreements/<string:code>/settlements", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SettleIn())
@blp.response(201, schemas.SettlementSchema)
@blp.alt_response(200, schema=schemas.SettlementSchema,
                  description="the period's live settlement, unchanged (settling twice pays "
                              "once)")
@errors(404, 409, 422)
def prepare_settlement(body: dict, code: str) -> Any:
    """Settle a period: conditions evaluated on the latest monitored values, each party's
    contribution and allocation, the netted payments reserved as pending ledger transfers,
    waiting for the finance bureau's approval."""
    session = current_session()
    settlement, created = settlements.prepare(session, current_actor(), code, body["period"])
    return settlements.view(session, settlement), 201 if created else 200


@blp.route("/settlements")
@blp.authenticated
@blp.arguments(schemas.SettlementQuerySchema, location="query")
@blp.response(200, page_of(schemas.SettlementSchema))
def list_settlements(query: dict) -> Any:
    """Settlements, oldest first."""
    session = current_session()
    page = paginate(session, settlements.list_settlements(
        session, current_actor(), agreement=query.get("agreement"),
        period=query.get("period"), status=query.get("status")),
        query["page"], query["page_size"])
    page["items"] = [settlements.view(session, s) for s in page["items"]]
    return page


@blp.route("/settlements/<int:settlement_id>")
@blp.authenticated
@blp.response(200, schemas.SettlementSchema)
@errors(404)
def get_settlement(settlement_id: int) -> Any:
    """A settlement: its statement and its payments."""
    session = current_session()
    return settlements.view(session, settlements.get_settlement(session, current_actor(),
                                                                settlement_id))


@blp.route("/settlements/<int:settlement_id>/statement")
@blp.authenticated
@blp.arguments(schemas.StatementQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "CSV (UTF-8 with BOM), XLSX or a printable HTML "
                                          "page", "content": {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
    "text/html": {"schema": {"type": "string"}}}}})
@errors(404)
def export_statement(query: dict, settlement_id: int) -> Any:
    """A settlement's statement as a spreadsheet or a printable page (`format=html`):
    conditions, the clearing of failed ones, each party's position, the payments (Chinese
    with English)."""
    fmt = query["format"]
    data = settlements.export_statement(current_session(), current_actor(), settlement_id, fmt)
    if fmt == "html":
        return Response(data, mimetype="text/html")
    return file_response(data, f"settlement-{settlement_id}.{fmt}",
                         "text/csv" if fmt == "csv" else XLSX_MIMETYPE)


@blp.route("/settlements/<int:settlement_id>/approve", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SettlementApproveIn(), required=False)
@blp.response(200, schemas.SettlementSchema)
@errors(404, 409, 422)
def approve_settlement(body: dict, settlement_id: int) -> Any:
    """Approve a prepared settlement: its payments are posted in the ledger. The finance
    bureau approves; its preparer may not (403 compensation-own-settlement)."""
    session = current_session()
    return settlements.view(session, settlements.approve(
        session, current_actor(), settlement_id, note=(body or {}).get("note")))


@blp.route("/settlements/<int:settlement_id>/reject", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SettlementRejectIn())
@blp.response(200, schemas.SettlementSchema)
@errors(404, 409, 422)
def reject_settlement(body: dict, settlement_id: int) -> Any:
    """Reject a prepared settlement: its payments are voided; the period may be settled
    again."""
    session = current_session()
    return settlements.view(session, settlements.reject(
        session, current_actor(), settlement_id, reason=body["reason"]))
