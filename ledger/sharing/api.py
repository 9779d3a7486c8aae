"""HTTP routes of benefit sharing (thin: parse, call one service, return).

Public, no token (`/sharing/public/...`): where a payment into a fund went, per village, and
what funded a run, in aggregate. Everything else needs a bearer token; roles and scopes are
decided by the services (`sharing.*` actions of `ecovalue/auth/policy.py`). Writes that create
or move value accept Idempotency-Key; a run's `reference` also makes it pay once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

from ecovalue.api import XLSX_MIMETYPE, Blueprint, current_actor, file_response, page_of, paginate
from ecovalue.clock import local_today
from ecovalue.db import current_session
from ledger.sharing import schemas
from ledger.sharing.services import config, register, reversal, runs, statements, trace

blp = Blueprint("sharing", __name__, url_prefix="/sharing",
                description="Benefit sharing (利益分配): villager register, sharing rules, "
                            "funds, distribution runs, single-tree purchases, statements, "
                            "bank payment files, and where every fen went (public aggregates "
                            "under /sharing/public)")

_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 422: "UNPROCESSABLE_ENTITY"}
_FILES = {"text/csv": {"schema": {"type": "string"}},
          XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def _page(stmt: Any, query: dict) -> dict:
    return paginate(current_session(), stmt, query.pop("page"), query.pop("page_size"))


# --- register --------------------------------------------------------------------------------


@blp.route("/register/entries", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingRegisterEntryIn())
@blp.response(201, schemas.SharingRegisterEntrySchema)
@errors(404, 409, 422)
def record_entry(body: dict) -> Any:
    """A household joins a collective, changes its shares, trees, area or members, or leaves
    (status `left`), from `effective_date`."""
    return register.record_entry(current_session(), current_actor(), **body)


@blp.route("/register/<int:collective_party_id>")
@blp.authenticated
@blp.arguments(schemas.SharingRegisterQuery(), location="query")
@blp.response(200, schemas.SharingRegisterSchema)
@errors(404, 422)
def get_register(query: dict, collective_party_id: int) -> Any:
    """The households of a collective as of a date (identifiers masked)."""
    as_of = query["as_of"] or local_today()
    rows = register.register_as_of(current_session(), current_actor(), collective_party_id,
                                   as_of)
    return {"collective_party_id": collective_party_id, "as_of": as_of,
            "household_count": len(rows), "total_shares": sum(r.shares for r in rows),
            "total_members": sum(r.members for r in rows),
            "total_trees": sum(r.trees for r in rows),
            "total_area_m2": sum(r.area_m2 for r in rows), "households": rows}


@blp.route("/register/<int:collective_party_id>/history")
@blp.authenticated
@blp.arguments(schemas.SharingHistoryQuery(), location="query")
@blp.response(200, page_of(schemas.SharingRegisterEntrySchema))
def register_history(query: dict, collective_party_id: int) -> Any:
    """Every entry of a collective's register, oldest first."""
    return _page(register.history(current_session(), current_actor(), collective_party_id,
                                  household_party_id=query.pop("household_party_id")), query)


# --- rules -------------------------------------------------------------------------------------


def _rule_view(rule: Any) -> dict:
    session = current_session()
    return {**{k: getattr(rule, k) for k in ("id", "code", "name_zh", "name_en", "source_kind",
                                             "source_ref", "created_by", "created_at")},
            "versions": config.versions_of(session, rule)}


@blp.route("/rules", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingRuleIn())
@blp.response(201, schemas.SharingRuleSchema)
@errors(409, 422)
def create_rule(body: dict) -> Any:
    """A benefit-sharing rule for a revenue source, with its first version."""
    rule, _ = config.create_rule(current_session(), current_actor(), **body)
    return _rule_view(rule)


@blp.route("/rules")
@blp.authenticated
@blp.response(200, schemas.SharingRuleSchema(many=True))
def list_rules() -> Any:
    """Every rule with its versions."""
    return [_rule_view(r) for r in config.list_rules(current_session(), current_actor())]


@blp.route("/rules/<string:code>")
@blp.authenticated
@blp.response(200, schemas.SharingRuleSchema)
@errors(404)
def get_rule(code: str) -> Any:
    """A rule with its versions."""
    return _rule_view(config.read_rule(current_session(), current_actor(), code))


@blp.route("/rules/<string:code>/versions", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingVersionIn())
@blp.response(201, schemas.SharingVersionSchema)
@errors(404, 422)
def add_version(body: dict, code: str) -> Any:
    """A new version of a rule; earlier versions stay as they were."""
    return config.add_version(current_session(), current_actor(), code, body["definition"])


@blp.route("/rules/<string:code>/versions/<int:version>", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.SharingVersionIn())
@blp.response(200, schemas.SharingVersionSchema)
@errors(404, 409, 422)
def replace_version(body: dict, code: str, version: int) -> Any:
    """Change a version no run has used yet (a used version is immutable: 409)."""
    return config.replace_version(current_session(), current_actor(), code, version,
                                  body["definition"])


# --- funds and programmes ----------------------------------------------------------------------


@blp.route("/funds", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingFundIn())
@blp.response(201, schemas.SharingFundSchema)
@errors(404, 409, 422)
def register_fund(body: dict) -> Any:
    """Declare a CNY fund account of the ledger as one benefit sharing distributes."""
    return config.register_fund(current_session(), current_actor(), **body)


@blp.route("/funds")
@blp.authenticated
@blp.response(200, schemas.SharingFundSchema(many=True))
def list_funds() -> Any:
    """The sharing funds."""
    return config.list_funds(current_session(), current_actor())


@blp.route("/funds/<string:code>/inflows")
@blp.authenticated
@blp.arguments(schemas.SharingStatementQuery(), location="query")
@blp.response(200, schemas.SharingInflowSchema(many=True))
@errors(404)
def fund_inflows(query: dict, code: str) -> Any:
    """The payments into a fund (who paid, how much, how much is attributed so far)."""
    return trace.fund_inflows(current_session(), current_actor(), code,
                              date_from=query["date_from"], date_to=query["date_to"])


@blp.route("/programmes", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingProgrammeIn())
@blp.response(201, schemas.SharingProgrammeSchema)
@errors(409, 422)
def create_programme(body: dict) -> Any:
    """A single-tree programme's terms (price per tree and year, caps, term)."""
    return config.create_programme(current_session(), current_actor(), **body)


@blp.route("/programmes")
@blp.response(200, schemas.SharingProgrammeSchema(many=True))
def list_programmes() -> Any:
    """Single-tree programmes (public: their terms are published)."""
    return config.list_programmes(current_session())


# --- runs --------------------------------------------------------------------------------------


def _run_response(result: runs.RunResult) -> Any:
    return result.run, 200 if result.replayed else 201


@blp.route("/runs", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingRunIn())
@blp.response(201, schemas.SharingRunSchema)
@blp.alt_response(200, schema=schemas.SharingRunSchema, description="the run with this reference "
                  "and the same terms, already prepared")
@errors(404, 409, 422)
def prepare_run(body: dict) -> Any:
    """Prepare a distribution: the allocation preview (GET .../lines lists every collective
    and household). Nothing is paid until the finance bureau approves it."""
    body["fund_code"] = body.pop("fund_account_code")
    return _run_response(runs.prepare_run(current_session(), current_actor(), **body))


@blp.route("/runs")
@blp.authenticated
@blp.arguments(schemas.SharingRunQuery(), location="query")
@blp.response(200, page_of(schemas.SharingRunSchema))
def list_runs(query: dict) -> Any:
    """Runs, newest first."""
    return _page(runs.list_runs(current_session(), current_actor(), kind=query.pop("kind"),
                                status=query.pop("status")), query)


@blp.route("/runs/<int:run_id>")
@blp.authenticated
@blp.response(200, schemas.SharingRunSchema)
@errors(404)
def get_run(run_id: int) -> Any:
    """A run."""
    return runs.read_run(current_session(), current_actor(), run_id)


@blp.route("/runs/<int:run_id>/lines")
@blp.authenticated
@blp.arguments(schemas.PageQuerySchema(), location="query")
@blp.response(200, page_of(schemas.SharingLineSchema))
@errors(404)
def run_lines(query: dict, run_id: int) -> Any:
    """The allocation: every line of a run, in order."""
    return _page(runs.lines_of(current_session(), current_actor(), run_id), query)


@blp.route("/runs/<int:run_id>/approve", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.response(200, schemas.SharingRunSchema)
@errors(404, 409)
def approve_run(run_id: int) -> Any:
    """Approve and pay a prepared distribution (the finance bureau; never its preparer): one
    ledger batch. Approving a paid run again returns it unchanged."""
    return runs.approve_run(current_session(), current_actor(), run_id).run


@blp.route("/runs/<int:run_id>/cancel", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.SharingRunSchema)
@errors(404, 409)
def cancel_run(run_id: int) -> Any:
    """Cancel a prepared distribution (nothing was paid)."""
    return runs.cancel_run(current_session(), current_actor(), run_id)


@blp.route("/runs/<int:run_id>/reverse", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingReverseIn())
@blp.response(200, schemas.SharingRunSchema)
@errors(404, 409, 422)
def reverse_run(body: dict, run_id: int) -> Any:
    """Reverse a paid distribution (红字冲销): every ledger transaction of it reversed, all or
    none, dated today (finance, admin; never its preparer: 403 four-eyes). Reversing it again
    returns it unchanged; a run that is not a paid distribution is 409
    sharing-run-not-reversible."""
    return reversal.reverse_run(current_session(), current_actor(), run_id,
                                reason=body["reason"]).run


@blp.route("/runs/<int:run_id>/payment-file")
@blp.authenticated
@blp.arguments(schemas.SharingFormatQuery(), location="query")
@blp.doc(responses={"200": {"description": "CSV (UTF-8 with BOM) or XLSX", "content": _FILES}})
@errors(404, 409)
def payment_file(query: dict, run_id: int) -> Response:
    """The bank batch-payment file (代发明细) of a paid run, with whole account numbers: the
    finance role only; every download is audited."""
    data, name = statements.payment_file(current_session(), current_actor(), run_id,
                                         query["format"])
    return file_response(data, name, "text/csv" if query["format"] == "csv" else XLSX_MIMETYPE)


@blp.route("/purchases", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.SharingPurchaseIn())
@blp.response(201, schemas.SharingRunSchema)
@blp.alt_response(200, schema=schemas.SharingRunSchema, description="the purchase with this "
                  "reference and the same terms, already paid")
@errors(404, 409, 422)
def create_purchase(body: dict) -> Any:
    """A buyer pays for single-tree carbon: trees x price x years to each household, in full,
    in one ledger batch from the buyer's account."""
    return _run_response(runs.create_purchase(current_session(), current_actor(), **body))


# --- statements --------------------------------------------------------------------------------


def _household(query: dict, party_id: int) -> dict:
    return statements.household_statement(current_session(), current_actor(), party_id,
                                          date_from=query["date_from"],
                                          date_to=query["date_to"])


@blp.route("/households/<int:party_id>/statement")
@blp.authenticated
@blp.arguments(schemas.SharingStatementQuery(), location="query")
@blp.response(200, schemas.SharingHouseholdStatementSchema)
@errors(404)
def household_statement(query: dict, party_id: int) -> Any:
    """A household's receipts, each with where every fen came from (masked identifiers)."""
    return _household(query, party_id)


@blp.route("/households/<int:party_id>/statement.xlsx")
@blp.authenticated
@blp.arguments(schemas.SharingStatementQuery(), location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=XLSX_MIMETYPE)
@errors(404)
def household_statement_xlsx(query: dict, party_id: int) -> Response:
    """The household statement as an Excel workbook (Chinese with English)."""
    return file_response(statements.household_xlsx(_household(query, party_id)),
                         f"household-{party_id}.xlsx", XLSX_MIMETYPE)


@blp.route("/households/<int:party_id>/statement.html")
@blp.authenticated
@blp.arguments(schemas.SharingStatementQuery(), location="query")
@blp.response(200, {"type": "string"}, content_type="text/html")
@errors(404)
def household_statement_html(query: dict, party_id: int) -> Response:
    """The household statement as a printable page (Chinese with English)."""
    return Response(statements.household_html(_household(query, party_id)),
                    mimetype="text/html")


def _village(query: dict, party_id: int) -> dict:
    return statements.village_statement(current_session(), current_actor(), party_id,
                                        run_id=query["run_id"])


@blp.route("/villages/<int:party_id>/statement")
@blp.authenticated
@blp.arguments(schemas.SharingVillageQuery(), location="query")
@blp.response(200, schemas.SharingVillageStatementSchema)
@errors(404)
def village_statement(query: dict, party_id: int) -> Any:
    """A village's paid lines (collective and households) per run, masked accounts."""
    return _village(query, party_id)


@blp.route("/villages/<int:party_id>/statement.xlsx")
@blp.authenticated
@blp.arguments(schemas.SharingVillageQuery(), location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=XLSX_MIMETYPE)
@errors(404)
def village_statement_xlsx(query: dict, party_id: int) -> Response:
    """The village statement as an Excel workbook."""
    return file_response(statements.village_xlsx(_village(query, party_id)),
                         f"village-{party_id}.xlsx", XLSX_MIMETYPE)


@blp.route("/villages/<int:party_id>/statement.html")
@blp.authenticated
@blp.arguments(schemas.SharingVillageQuery(), location="query")
@blp.response(200, {"type": "string"}, content_type="text/html")
@errors(404)
def village_statement_html(query: dict, party_id: int) -> Response:
    """The village statement as a printable page."""
    return Response(statements.village_html(_village(query, party_id)), mimetype="text/html")


# --- where every fen went ------------------------------------------------------------------------


@blp.route("/public/payments/<int:transaction_id>/recipients")
@blp.response(200, schemas.SharingPaymentTraceSchema)
@errors(404)
def public_payment_trace(transaction_id: int) -> Any:
    """Where a payment into a sharing fund (or a single-tree purchase) went, per village, and
    what is still undistributed (public, no names)."""
    return trace.trace_payment(current_session(), None, transaction_id, detail=False)


@blp.route("/trace/payments/<int:transaction_id>")
@blp.authenticated
@blp.response(200, schemas.SharingPaymentTraceSchema)
@errors(404)
def payment_trace(transaction_id: int) -> Any:
    """Every collective and household that received part of a payment, and how much (the
    parts and what is undistributed sum exactly to the payment). A trader: its own payments."""
    return trace.trace_payment(current_session(), current_actor(), transaction_id, detail=True)


@blp.route("/trace/households/<int:party_id>")
@blp.authenticated
@blp.arguments(schemas.SharingStatementQuery(), location="query")
@blp.response(200, schemas.SharingHouseholdTraceSchema)
@errors(404)
def household_trace(query: dict, party_id: int) -> Any:
    """Every source that funded a household's receipts (each receipt's sources sum exactly
    to it)."""
    return trace.trace_household(current_session(), current_actor(), party_id,
                                 date_from=query["date_from"], date_to=query["date_to"])


@blp.route("/public/runs/<int:run_id>/sources")
@blp.response(200, schemas.SharingRunSourcesSchema)
@errors(404)
def public_run_sources(run_id: int) -> Any:
    """What funded a run, by payer (public aggregate)."""
    return trace.run_sources(current_session(), run_id)
