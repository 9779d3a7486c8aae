"""HTTP routes of bank and treasury reconciliation (thin: parse, call one service, return).

Everything needs a bearer token; the `reconcile.*` actions of `ecovalue/auth/policy.py`
decide who may do what (finance prepares and signs off, an auditor reads).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, render_template

from ecovalue.api import (
    XLSX_MIMETYPE,
    Blueprint,
    current_actor,
    file_response,
    page_of,
    paginate,
)
from ecovalue.db import current_session
from ecovalue.errors import ValidationFailed
from ledger.core.calendar import parse_month
from ledger.reconcile import schemas
from ledger.reconcile.services import reports, runs, statements

blp = Blueprint("reconcile", __name__, url_prefix="/reconcile", template_folder="templates",
                description="Bank and treasury reconciliation: column mappings, statement "
                            "imports, matching rules, runs, decisions, sign-off, period close "
                            "and period reports (finance bureau)")

_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 413: "REQUEST_ENTITY_TOO_LARGE",
          415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY"}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def month(text: str, field: str = "period", location: str = "query") -> dt.date:
    try:
        return parse_month(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a month (YYYY-MM)", errors=[
            {"location": location, "field": field, "message": "YYYY-MM"}]) from None


def run_view(run: Any) -> dict:
    session = current_session()
    view = {column: getattr(run, column) for column in (
        "id", "statement_id", "account_code", "period", "status", "rule_set_version", "rules",
        "prepared_by", "created_at", "signed_off_by", "signed_off_at", "sign_off_note",
        "assertion_id")}
    view["summary"] = dataclasses.asdict(runs.summarize(session, run))
    view["carried_over"] = runs.carry_over_of(session, run)
    return view


# --- mappings and rules ----------------------------------------------------------------------


@blp.route("/banks")
@blp.authenticated
@blp.response(200, schemas.RecMappingSchema(many=True))
def list_banks() -> Any:
    """Saved column mappings, one per bank."""
    return statements.list_mappings(current_session(), current_actor())


@blp.route("/banks/<string:bank_code>", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.RecMappingIn())
@blp.response(200, schemas.RecMappingSchema)
@errors(422)
def put_bank(body: dict, bank_code: str) -> Any:
    """Save how one bank's statement files name their columns (replaces the previous)."""
    if not re.match(schemas.BANK_CODE, bank_code):
        raise ValidationFailed("bank_code: letters, digits, . _ - (up to 40)", errors=[
            {"location": "path", "field": "bank_code", "message": "up to 40 of A-Z 0-9 . _ -"}])
    return statements.put_mapping(current_session(), current_actor(), bank_code,
                                  name_zh=body["name_zh"], columns=body["columns"],
                                  source=body["source"])


@blp.route("/banks/<string:bank_code>")
@blp.authenticated
@blp.response(200, schemas.RecMappingSchema)
@errors(404)
def get_bank(bank_code: str) -> Any:
    """One bank's column mapping."""
    return statements.get_mapping(current_session(), current_actor(), bank_code)


@blp.route("/rules")
@blp.authenticated
@blp.response(200, schemas.RecRulesSchema)
def get_rules() -> Any:
    """The matching rules in force, in order (version 0: the defaults)."""
    version, rules = runs.get_rules(current_session(), current_actor())
    return {"version": version, "rules": rules}


@blp.route("/rules", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.RecRulesIn())
@blp.response(200, schemas.RecRulesSchema)
@errors(422)
def put_rules(body: dict) -> Any:
    """Reorder or tune the rules: a new version; runs already made keep theirs."""
    version, rules = runs.put_rules(current_session(), current_actor(), body["rules"],
                                    note=body["note"])
    return {"version": version, "rules": rules}


# --- statements ------------------------------------------------------------------------------


def _max_upload() -> int:
    return int(current_app.config["MAX_CONTENT_LENGTH"])


@blp.route("/statements", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.RecImportQuery, location="query")
@blp.arguments(schemas.RecImportFile, location="files")
@blp.response(201, schemas.RecImportResultSchema)
@errors(404, 409, 413, 422)
@blp.doc(description="All or nothing: a file with any bad line is refused (422) with every "
         "problem listed (row, field, code); re-importing lines already held adds nothing.")
def import_statement(query: dict, files: dict) -> Any:
    """Import a bank or treasury statement (CSV in UTF-8 or GBK, or XLSX) for one month."""
    upload = files["file"]
    data = upload.stream.read(_max_upload() + 1)
    result = statements.import_statement(
        current_session(), current_actor(), data, (upload.filename or "upload")[:255],
        account=query["account"], period=month(query["period"]), bank_code=query["bank_code"],
        opening_balance_fen=query["opening_balance_fen"],
        closing_balance_fen=query["closing_balance_fen"])
    return dataclasses.asdict(result)


@blp.route("/statements")
@blp.authenticated
@blp.arguments(schemas.RecStatementQuery(), location="query")
@blp.response(200, page_of(schemas.RecStatementSchema))
def list_statements(query: dict) -> Any:
    """Imported statements, newest month first."""
    period = month(query.pop("period")) if query.get("period") else None
    stmt = statements.list_statements(current_session(), current_actor(),
                                      account=query.pop("account", None), period=period)
    return paginate(current_session(), stmt, query.pop("page"), query.pop("page_size"))


@blp.route("/statements/<int:statement_id>")
@blp.authenticated
@blp.response(200, schemas.RecStatementSchema)
@errors(404)
def get_statement(statement_id: int) -> Any:
    """One statement with its balances."""
    return statements.get_statement(current_session(), current_actor(), statement_id)


@blp.route("/statements/<int:statement_id>/lines")
@blp.authenticated
@blp.arguments(schemas.PageQuerySchema(), location="query")
@blp.response(200, page_of(schemas.RecLineSchema))
@errors(404)
def list_lines(query: dict, statement_id: int) -> Any:
    """A statement's lines, by date."""
    stmt = statements.statement_lines(current_session(), current_actor(), statement_id)
    return paginate(current_session(), stmt, query["page"], query["page_size"])


@blp.route("/statements/<int:statement_id>/imports")
@blp.authenticated
@blp.response(200, schemas.RecImportSchema(many=True))
@errors(404)
def list_imports(statement_id: int) -> Any:
    """The files read into a statement."""
    return statements.list_imports(current_session(), current_actor(), statement_id)


# --- runs ------------------------------------------------------------------------------------


@blp.route("/runs", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecRunIn())
@blp.response(201, schemas.RecRunSchema)
@errors(404, 409, 422)
def create_run(body: dict) -> Any:
    """Match a statement against the ledger (an open run of the same account and month is
    superseded)."""
    run = runs.create_run(current_session(), current_actor(), account=body["account"],
                          period=month(body["period"], location="json"))
    return run_view(run)


@blp.route("/runs")
@blp.authenticated
@blp.arguments(schemas.RecRunQuery(), location="query")
@blp.response(200, page_of(schemas.RecRunSchema))
def list_runs(query: dict) -> Any:
    """Reconciliation runs, newest first."""
    period = month(query.pop("period")) if query.get("period") else None
    stmt = runs.list_runs(current_session(), current_actor(), account=query.pop("account", None),
                          period=period, status=query.pop("status", None))
    page = paginate(current_session(), stmt, query.pop("page"), query.pop("page_size"))
    page["items"] = [run_view(r) for r in page["items"]]
    return page


@blp.route("/runs/<int:run_id>")
@blp.authenticated
@blp.response(200, schemas.RecRunSchema)
@errors(404)
def get_run(run_id: int) -> Any:
    """A run with its reconciliation statement (ledger balance ± outstanding = statement)."""
    return run_view(runs.get_run(current_session(), current_actor(), run_id))


@blp.route("/runs/<int:run_id>/items")
@blp.authenticated
@blp.arguments(schemas.RecItemQuery(), location="query")
@blp.response(200, page_of(schemas.RecItemSchema))
@errors(404)
def list_items(query: dict, run_id: int) -> Any:
    """A run's findings: matches (confirmed or proposed) and discrepancies."""
    stmt = runs.items(current_session(), current_actor(), run_id,
                      category=query.pop("category", None), status=query.pop("status", None))
    return paginate(current_session(), stmt, query.pop("page"), query.pop("page_size"))


@blp.route("/runs/<int:run_id>/items/<int:item_id>/confirm", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecOptionalReasonIn())
@blp.response(200, schemas.RecItemSchema)
@errors(404, 409, 422)
def confirm_item(body: dict, run_id: int, item_id: int) -> Any:
    """Accept a proposed match."""
    return runs.confirm(current_session(), current_actor(), run_id, item_id,
                        reason=body["reason"])


@blp.route("/runs/<int:run_id>/items/<int:item_id>/explain", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecReasonIn())
@blp.response(200, schemas.RecItemSchema)
@errors(404, 409, 422)
def explain_item(body: dict, run_id: int, item_id: int) -> Any:
    """Explain an unresolved item so that the run can be signed off."""
    return runs.explain(current_session(), current_actor(), run_id, item_id,
                        reason=body["reason"])


@blp.route("/runs/<int:run_id>/items/<int:item_id>/unmatch", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecReasonIn())
@blp.response(200, schemas.RecNewItemsSchema)
@errors(404, 409, 422)
def unmatch_item(body: dict, run_id: int, item_id: int) -> Any:
    """Undo a match: its lines and transactions become open items again."""
    return {"item_ids": runs.unmatch(current_session(), current_actor(), run_id, item_id,
                                     reason=body["reason"])}


@blp.route("/runs/<int:run_id>/matches", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecMatchIn())
@blp.response(201, schemas.RecItemSchema)
@errors(404, 409, 422)
def match_items(body: dict, run_id: int) -> Any:
    """Match lines and ledger transactions by hand (sums equal; a reason is required)."""
    return runs.manual_match(current_session(), current_actor(), run_id,
                             line_ids=body["line_ids"], transaction_ids=body["transaction_ids"],
                             reason=body["reason"])


@blp.route("/runs/<int:run_id>/signoff", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecSignOffIn())
@blp.response(200, schemas.RecRunSchema)
@errors(404, 409, 422)
def sign_off(body: dict, run_id: int) -> Any:
    """Sign the run off (finance, not its preparer; every item confirmed or explained)."""
    return run_view(runs.sign_off(current_session(), current_actor(), run_id,
                                  note=body["note"]))


@blp.route("/periods/<string:period>/close", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecSignOffIn())
@blp.response(200, schemas.RecPeriodSchema)
@errors(409, 422)
def close_period(body: dict, period: str) -> Any:
    """Close the ledger month once every statement of it is signed off."""
    return runs.close_period(current_session(), current_actor(),
                             month(period, location="path"), note=body["note"])


# --- reports ---------------------------------------------------------------------------------


@blp.route("/reports/<string:period>")
@blp.authenticated
@blp.response(200, schemas.RecReportSchema)
@errors(422)
def report(period: str) -> Any:
    """The month's report as JSON: one section per topic."""
    built = reports.build_report(current_session(), current_actor(),
                                 month(period, location="path"))
    return reports.report_data(built)


@blp.route("/reports/<string:period>/xlsx")
@blp.authenticated
@blp.doc(responses={"200": {"description": "XLSX, one sheet per topic", "content": {
    XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}}})
@errors(422)
def report_xlsx(period: str) -> Response:
    """The month's report as an XLSX workbook (one sheet per topic)."""
    when = month(period, location="path")
    built = reports.build_report(current_session(), current_actor(), when)
    return file_response(reports.report_xlsx(built), f"report-{period}.xlsx", XLSX_MIMETYPE)


@blp.route("/reports/<string:period>/html")
@blp.authenticated
@blp.doc(responses={"200": {"description": "a printable HTML page", "content": {
    "text/html": {"schema": {"type": "string"}}}}})
@errors(422)
def report_html(period: str) -> Response:
    """The month's report as a printable HTML page (Chinese with English alongside)."""
    built = reports.build_report(current_session(), current_actor(),
                                 month(period, location="path"))
    return Response(render_template("reconcile/report_print.html", report=built, yuan=reports.yuan),
                    mimetype="text/html")
