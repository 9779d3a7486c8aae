"""HTTP routes of the thermal-power CO2 pilot (thin: parse, call one service, return).

Public, no token: the fuels, the emission-factor table versions and the yearly rules.
Everything else needs a bearer token; roles and scopes are decided by the services (the
`pilot.*` actions of `ecovalue/auth/policy.py`: a plant's trader token files and settles for
its own party, a verifier verifies, the finance bureau reads the fund). Every POST that
creates or moves value accepts Idempotency-Key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flask import current_app

from ecovalue.api import XLSX_MIMETYPE, Blueprint, current_actor, file_response, page_of, paginate
from ecovalue.db import current_session
from ledger.pilot import emissions, schemas
from ledger.pilot.services import compliance, factors, obligations, reports, rules

blp = Blueprint("pilot", __name__, url_prefix="/pilot",
                description="Thermal-power CO2 pilot (火电企业排放二氧化碳与森林生态补偿试点): "
                            "emission-factor tables, yearly rules, emission reports and their "
                            "verification, obligations, settlement by retiring forest credits "
                            "or paying the fee, compliance and the fund's inflows")

_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 413: "REQUEST_ENTITY_TOO_LARGE",
          415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY"}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def _upload(files: dict) -> tuple[bytes, str]:
    upload = files["file"]
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    return upload.stream.read(limit + 1), (upload.filename or "upload")[:255]


# --- reference (public) -------------------------------------------------------------------------


@blp.route("/fuels")
@blp.response(200, schemas.PilotFuelSchema(many=True))
def list_fuels() -> Any:
    """The fuels a report may name, their units and the factor-table names of their
    defaults (public)."""
    return [dataclasses.asdict(f) for f in emissions.FUELS.values()]


@blp.route("/factor-tables")
@blp.response(200, schemas.FactorTableSchema(many=True))
def list_factor_tables() -> Any:
    """The emission-factor table versions (public); the newest is a report's default."""
    session = current_session()
    return [factors.table_view(session, t, rows=False) for t in factors.list_tables(session)]


@blp.route("/factor-tables/<string:version>")
@blp.response(200, schemas.FactorTableSchema)
@errors(404)
def get_factor_table(version: str) -> Any:
    """One version with its factors (public). `reference` is the table shipped with
    ecovalue (values marked to-confirm await the authority's confirmation)."""
    session = current_session()
    return factors.table_view(session, factors.get_table(session, version))


@blp.route("/factor-tables", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.FactorTableQuery, location="query")
@blp.arguments(schemas.PilotFileSchema, location="files")
@blp.response(201, schemas.FactorTableSchema)
@errors(409, 413, 415, 422)
def upload_factor_table(query: dict, files: dict) -> Any:
    """Upload a new version of the factor table (admin): CSV or XLSX with the columns of
    emission_factors.csv (factor, year, value, unit, status, source); immutable once stored."""
    data, _ = _upload(files)
    session = current_session()
    table = factors.upload_table(session, current_actor(), version=query["version"],
                                 title=query["title"], note=query["note"], data=data)
    return factors.table_view(session, table)


@blp.route("/rules")
@blp.response(200, schemas.PilotRuleSchema(many=True))
def list_rules() -> Any:
    """The pilot rule of each year (public)."""
    return rules.list_rules(current_session())


@blp.route("/rules/<int:year>")
@blp.response(200, schemas.PilotRuleSchema)
@errors(404)
def get_rule(year: int) -> Any:
    """The pilot rule of one year (public)."""
    return rules.get_rule(current_session(), year)


@blp.route("/rules/<int:year>", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.PilotRuleIn())
@blp.response(200, schemas.PilotRuleSchema)
@errors(409, 422)
def put_rule(body: dict, year: int) -> Any:
    """Set the year's rule (admin, finance): share, fee, eligible credits, deadlines, fund.
    Refused (409) once it has fixed an obligation; verified reports of the year without an
    obligation get theirs now."""
    return rules.put_rule(current_session(), current_actor(), year, body)


# --- emission reports --------------------------------------------------------------------------


@blp.route("/reports", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.EmissionReportIn())
@blp.response(201, schemas.EmissionReportSchema)
@errors(404, 409, 422)
def file_report(body: dict) -> Any:
    """File a plant's emissions of a year as JSON lines (the plant's own trader token, or an
    admin naming `plant_party_id`). Every bad line is reported at once; nothing is stored
    then."""
    session = current_session()
    report = reports.file_report(session, current_actor(), **body)
    return reports.report_view(session, report)


@blp.route("/reports/upload", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.EmissionUploadQuery, location="query")
@blp.arguments(schemas.PilotFileSchema, location="files")
@blp.response(201, schemas.EmissionReportSchema)
@errors(404, 409, 413, 415, 422)
def upload_report(query: dict, files: dict) -> Any:
    """File a report from a CSV (UTF-8 or GBK) or XLSX file, one line per row (errors name
    the row and column)."""
    data, filename = _upload(files)
    session = current_session()
    report = reports.upload_report(session, current_actor(), data=data, filename=filename,
                                   **query)
    return reports.report_view(session, report)


@blp.route("/reports")
@blp.authenticated
@blp.arguments(schemas.EmissionReportQuery, location="query")
@blp.response(200, page_of(schemas.EmissionReportSchema))
def list_reports(query: dict) -> Any:
    """Emission reports (a plant sees its own)."""
    session = current_session()
    page, size = query.pop("page"), query.pop("page_size")
    result = paginate(session, reports.list_reports(session, current_actor(), **query), page,
                      size)
    result["items"] = [reports.report_view(session, r) for r in result["items"]]
    return result


@blp.route("/reports/<int:report_id>")
@blp.authenticated
@blp.response(200, schemas.EmissionReportSchema)
@errors(404)
def get_report(report_id: int) -> Any:
    """One report with its computed lines."""
    session = current_session()
    return reports.report_view(session, reports.get_report(session, current_actor(),
                                                           report_id))


@blp.route("/reports/<int:report_id>/verify", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.EmissionVerifyIn())
@blp.response(200, schemas.EmissionReportSchema)
@errors(404, 409, 422)
def verify_report(body: dict, report_id: int) -> Any:
    """Verify a filed report (a verifier who did not file it): the plant's obligation of the
    year is fixed when the year has a rule."""
    session = current_session()
    report = reports.verify_report(session, current_actor(), report_id, note=body["note"])
    return reports.report_view(session, report)


@blp.route("/reports/<int:report_id>/reject", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.EmissionRejectIn())
@blp.response(200, schemas.EmissionReportSchema)
@errors(404, 409, 422)
def reject_report(body: dict, report_id: int) -> Any:
    """Reject a filed report, with the reason; the plant files a corrected one."""
    session = current_session()
    report = reports.reject_report(session, current_actor(), report_id, note=body["note"])
    return reports.report_view(session, report)


# --- obligations ----------------------------------------------------------------------------------


@blp.route("/obligations")
@blp.authenticated
@blp.arguments(schemas.ObligationQuery, location="query")
@blp.response(200, page_of(schemas.ObligationSchema))
def list_obligations(query: dict) -> Any:
    """Obligations with their position and settlements (a plant sees its own)."""
    session = current_session()
    page, size = query.pop("page"), query.pop("page_size")
    result = paginate(session, obligations.list_obligations(session, current_actor(), **query),
                      page, size)
    result["items"] = [obligations.obligation_view(session, o) for o in result["items"]]
    return result


@blp.route("/obligations/<int:obligation_id>")
@blp.authenticated
@blp.response(200, schemas.ObligationSchema)
@errors(404)
def get_obligation(obligation_id: int) -> Any:
    """One obligation: emissions, tonnes owed, retired, paid, shortfall, status."""
    session = current_session()
    return obligations.obligation_view(session, obligations.get_obligation(
        session, current_actor(), obligation_id))


@blp.route("/obligations/<int:obligation_id>/settlements", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.PilotSettleIn())
@blp.response(200, schemas.ObligationSchema)
@errors(404, 409, 422)
def settle(body: dict, obligation_id: int) -> Any:
    """Settle (part of) an obligation: retire eligible credits against it (each gets a public
    certificate naming the obligation), pay the fee for `fee_t` tonnes into the fund, or both;
    all or nothing."""
    session = current_session()
    parts = [obligations.RetirementPart(**part) for part in body["retirements"]]
    settled = obligations.settle(session, current_actor(), obligation_id, retirements=parts,
                                 fee_t=body["fee_t"], from_account=body["from_account"],
                                 memo=body["memo"])
    return obligations.obligation_view(session, settled)


# --- compliance and the fund --------------------------------------------------------------------


@blp.route("/compliance")
@blp.authenticated
@blp.arguments(schemas.PilotYearQuery, location="query")
@blp.response(200, schemas.ComplianceSchema)
def get_compliance(query: dict) -> Any:
    """The pilot report of a year (JSON): per plant emissions, obligation, retired, paid,
    shortfall and status; totals (a plant sees its own line)."""
    return compliance.compliance(current_session(), current_actor(), query["year"])


@blp.route("/compliance.xlsx")
@blp.authenticated
@blp.arguments(schemas.PilotYearQuery, location="query")
@blp.doc(responses={"200": {"description": "XLSX", "content": {
    XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}}})
def get_compliance_xlsx(query: dict) -> Any:
    """The pilot report of a year as XLSX for the prefecture (positions, settlements, rule)."""
    data = compliance.report_xlsx(current_session(), current_actor(), query["year"])
    return file_response(data, f"pilot-compliance-{query['year']}.xlsx", XLSX_MIMETYPE)


@blp.route("/fund")
@blp.authenticated
@blp.arguments(schemas.FundQuery, location="query")
@blp.response(200, schemas.FundSchema)
def get_fund(query: dict) -> Any:
    """The forest compensation fund's inflows from the pilot (finance, admin, auditor):
    each plant's fee payment with its ledger transaction, totals per plant, the fund's
    balance."""
    return compliance.fund_statement(current_session(), current_actor(), year=query["year"])
