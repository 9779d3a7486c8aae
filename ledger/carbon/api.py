"""HTTP routes of the forest-carbon registry (thin: parse, call one service, return).

Public, no token and no personal data (`/carbon/public/...`): projects, issuances, holdings
and serial blocks by batch, events, retirements (by beneficiary, purpose, vintage), CSV and
XLSX exports, certificates (HTML, PDF) and their verification, traceability. Everything else
needs a bearer token; roles and scopes are decided by the services (`carbon.*` actions of
`ecovalue/auth/policy.py`). Every POST that creates or moves value accepts Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from ecovalue.api import (
    XLSX_MIMETYPE,
    Blueprint,
    current_principal,
    file_response,
    page_of,
    paginate,
)
from ecovalue.auth import Principal
from ecovalue.db import current_session
from ecovalue.errors import Unauthorized
from ledger.carbon import certificate, schemas
from ledger.carbon.services import credits, parameters, projects, registry, reports

blp = Blueprint("carbon", __name__, url_prefix="/carbon",
                description="Forest-carbon registry: projects, parameter sets, monitoring "
                            "reports, issuance, transfers, retirements, certificates, "
                            "traceability (public reads under /carbon/public)")

_NAMES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 413: "REQUEST_ENTITY_TOO_LARGE",
          422: "UNPROCESSABLE_ENTITY"}
_FILES = {"text/csv": {"schema": {"type": "string"}},
          XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}}}


def errors(*statuses: int) -> Callable:
    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=_NAMES[status])(func)
        return func

    return decorate


def _actor() -> Principal:
    """The caller of an `authenticated` route (which refused a request without a token)."""
    actor = current_principal()
    if actor is None:  # pragma: no cover - blp.authenticated answered 401 already
        raise Unauthorized()
    return actor


def _ref(text: str) -> int | str:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def _page(stmt: Any, query: dict) -> dict:
    return paginate(current_session(), stmt, query.pop("page"), query.pop("page_size"))


def _export(data: bytes, name: str, fmt: str) -> Response:
    return file_response(data, f"{name}.{fmt}", "text/csv" if fmt == "csv" else XLSX_MIMETYPE)


def _export_doc(func: Callable) -> Callable:
    return blp.doc(responses={"200": {"description": "CSV (UTF-8 with BOM) or XLSX",
                                      "content": _FILES}})(func)


# --- registry operator and parameter sets ----------------------------------------------------


@blp.route("/registry", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.OperatorIn())
@blp.response(200, schemas.OperatorSchema)
@errors(422)
def set_operator(body: dict) -> Any:
    """Name the registry's operator party (holds issuer, buffer and retirement accounts)."""
    return parameters.set_operator(current_session(), _actor(),
                                   body["operator_party_id"])


@blp.route("/public/parameter-sets")
@blp.response(200, schemas.ParameterSetSchema(many=True))
def list_parameter_sets() -> Any:
    """Published species parameter sets (public): the factors every report computes with."""
    session = current_session()
    return [parameters.set_view(session, s) for s in session.scalars(
        parameters.list_sets(session)) if s.status == "published"]


@blp.route("/parameter-sets", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ParameterSetIn())
@blp.response(201, schemas.ParameterSetSchema)
@errors(404, 409, 422)
def create_parameter_set(body: dict) -> Any:
    """A draft parameter set copied from a published one (default: the reference set)."""
    session = current_session()
    created = parameters.create_set(session, _actor(), version=body["version"],
                                    title=body["title"], based_on=body["based_on_version"],
                                    note=body["note"])
    return parameters.set_view(session, created)


@blp.route("/parameter-sets/<string:version>")
@blp.authenticated
@blp.response(200, schemas.ParameterSetSchema)
@errors(404)
def get_parameter_set(version: str) -> Any:
    """A parameter set, draft or published."""
    session = current_session()
    return parameters.set_view(session, parameters.read_set(session, _actor(),
                                                            version))


@blp.route("/parameter-sets/<string:version>/species", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.SpeciesIn())
@blp.response(200, schemas.ParameterSetSchema)
@errors(404, 409, 422)
def put_species(body: dict, version: str) -> Any:
    """Add a species to a draft set or override its factors."""
    session = current_session()
    parameters.put_species(session, _actor(), version, body)
    return parameters.set_view(session, parameters.get_set(session, version))


@blp.route("/parameter-sets/<string:version>/publish", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.ParameterSetSchema)
@errors(404, 409, 422)
def publish_parameter_set(version: str) -> Any:
    """Publish a draft: from now on it is immutable and projects may use it."""
    session = current_session()
    return parameters.set_view(session, parameters.publish_set(session, _actor(),
                                                               version))


# --- projects --------------------------------------------------------------------------------


@blp.route("/projects", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ProjectIn())
@blp.response(201, schemas.ProjectSchema)
@errors(409, 422)
def create_project(body: dict) -> Any:
    """Register a project as a draft on verified forest parcels of one county."""
    session = current_session()
    project = projects.create_project(session, _actor(), body)
    return projects.project_view(session, project, public=False), 201, {
        "Location": f"/carbon/projects/{project.code}"}


@blp.route("/projects", methods=["GET"])
@blp.authenticated
@blp.arguments(schemas.ProjectQuery(), location="query")
@blp.response(200, page_of(schemas.ProjectSchema))
def list_projects(query: dict) -> Any:
    """Every project, drafts included."""
    session = current_session()
    stmt = projects.list_projects(session, _actor(), public=False,
                                  county_code=query.pop("county", None),
                                  status=query.pop("status", None),
                                  methodology_code=query.pop("methodology", None))
    page = _page(stmt, query)
    page["items"] = [projects.project_view(session, p, public=False) for p in page["items"]]
    return page


@blp.route("/projects/<string:ref>", methods=["GET"])
@blp.authenticated
@blp.response(200, schemas.ProjectSchema)
@errors(404)
def get_project(ref: str) -> Any:
    """A project by id or code."""
    session = current_session()
    project = projects.read_project(session, _actor(), _ref(ref))
    return projects.project_view(session, project, public=False)


@blp.route("/projects/<string:ref>", methods=["PATCH"])
@blp.authenticated
@blp.arguments(schemas.ProjectPatch())
@blp.response(200, schemas.ProjectSchema)
@errors(404, 409, 422)
def update_project(body: dict, ref: str) -> Any:
    """Edit a draft project (parcels replaced when `parcel_ids` is given)."""
    session = current_session()
    project = projects.update_project(session, _actor(), _ref(ref), body)
    return projects.project_view(session, project, public=False)


@blp.route("/projects/<string:ref>/history")
@blp.authenticated
@blp.response(200, schemas.ProjectEventSchema(many=True))
@errors(404)
def project_history(ref: str) -> Any:
    """Every step of the project's lifecycle."""
    return projects.project_history(current_session(), _actor(), _ref(ref))


def _transition_route(name: str) -> None:
    rule = projects.lifecycle.TRANSITIONS[name]

    def view(body: dict, ref: str) -> Any:
        session = current_session()
        project = projects.transition_project(session, _actor(), _ref(ref), name,
                                              reason=body.get("reason"))
        return projects.project_view(session, project, public=False)

    view.__name__ = f"project_{name}"
    view.__doc__ = (f"{name.capitalize()} the project: {', '.join(sorted(rule.sources))} -> "
                    f"{rule.target}" + (" (a reason is required)" if rule.reason_required
                                        else "")
                    + (" (not by its creator)" if rule.four_eyes else "") + ".")
    decorated = blp.response(200, schemas.ProjectSchema)(view)
    decorated = errors(404, 409, 422)(decorated)
    decorated = blp.arguments(schemas.ReasonIn())(decorated)
    decorated = blp.authenticated(decorated)
    blp.route(f"/projects/<string:ref>/{name}", methods=["POST"])(decorated)


for _name in schemas.TRANSITIONS:
    _transition_route(_name)


@blp.route("/projects/<string:ref>/households", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.HouseholdIn())
@blp.response(201, schemas.HouseholdSchema)
@errors(404, 409, 422)
def enrol_household(body: dict, ref: str) -> Any:
    """Single-tree route: enrol a household's land and register its trees (225 per mu, at
    most 2 mu counted, at most 450 per household)."""
    session = current_session()
    household = projects.enrol_household(session, _actor(), _ref(ref), **body)
    row = next(r for r in projects.household_rows(session, _actor(), _ref(ref))
               if r["id"] == household.id)
    return {**row, "holder": registry.holder_view(row.pop("party"), public=False)}


@blp.route("/projects/<string:ref>/households", methods=["GET"])
@blp.authenticated
@blp.response(200, schemas.HouseholdSchema(many=True))
@errors(404)
def list_households(ref: str) -> Any:
    """Enrolled households with their tree counts and caps (names masked)."""
    rows = projects.household_rows(current_session(), _actor(), _ref(ref))
    return [{**r, "holder": registry.holder_view(r.pop("party"), public=False)} for r in rows]


# --- monitoring reports ----------------------------------------------------------------------


@blp.route("/projects/<string:ref>/reports", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ReportIn())
@blp.response(201, schemas.CarbonReportSchema)
@errors(404, 409, 422)
def file_report(body: dict, ref: str) -> Any:
    """File a monitoring report computed from the parcels' stem-volume records in the
    catalog, or from the tree registry (single-tree route)."""
    return reports.file_report(current_session(), _actor(), _ref(ref), **body)


@blp.route("/projects/<string:ref>/reports/inventory", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.InventoryQuery(), location="query")
@blp.arguments(schemas.InventoryFile(), location="files")
@blp.response(201, schemas.CarbonReportSchema)
@errors(404, 409, 413, 422)
def file_inventory_report(query: dict, files: dict, ref: str) -> Any:
    """File a monitoring report from uploaded inventory plots (CSV in UTF-8 or GBK, or XLSX;
    every error of the file at once, nothing written unless the whole file is clean)."""
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    data = files["file"].stream.read(limit + 1)
    return reports.file_report(current_session(), _actor(), _ref(ref),
                               source="inventory_plots", upload=data, **query)


@blp.route("/reports")
@blp.authenticated
@blp.arguments(schemas.ReportQuery(), location="query")
@blp.response(200, page_of(schemas.CarbonReportSchema))
@errors(404)
def list_reports(query: dict) -> Any:
    """Monitoring reports, oldest first."""
    project = query.pop("project", None)
    stmt = reports.list_reports(current_session(), _actor(),
                                project=_ref(project) if project else None,
                                status=query.pop("status", None))
    return _page(stmt, query)


@blp.route("/reports/<int:report_id>")
@blp.authenticated
@blp.response(200, schemas.CarbonReportSchema)
@errors(404)
def get_report(report_id: int) -> Any:
    """A monitoring report with its calculation and inputs."""
    return reports.get_report(current_session(), _actor(), report_id)


@blp.route("/reports/<int:report_id>/verify", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.CarbonReportSchema)
@errors(404, 409)
def verify_report(report_id: int) -> Any:
    """Approve a report (a verifier who did not file it)."""
    return reports.verify_report(current_session(), _actor(), report_id)


@blp.route("/reports/<int:report_id>/reject", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RejectIn())
@blp.response(200, schemas.CarbonReportSchema)
@errors(404, 409, 422)
def reject_report(body: dict, report_id: int) -> Any:
    """Send a report back with a reason; its period is free for a corrected report."""
    return reports.reject_report(current_session(), _actor(), report_id,
                                 reason=body["reason"])


# --- issuance and movements ------------------------------------------------------------------


@blp.route("/issuances", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.IssueIn())
@blp.response(201, schemas.CarbonBatchSchema)
@errors(404, 409, 422)
def issue(body: dict) -> Any:
    """Issue the credits of a verified report as a new batch with its serial block."""
    session = current_session()
    batch = credits.issue(session, _actor(), body["report_id"])
    return registry.batch_view(session, batch), 201, {
        "Location": f"/carbon/public/issuances/{batch.asset_code}"}


def _moved(moved: credits.Moved, kind: str) -> Any:
    return credits.moved_view(moved, kind), 201


@blp.route("/transfers", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.TransferIn())
@blp.response(201, schemas.MovedSchema)
@errors(404, 409, 422)
def transfer(body: dict) -> Any:
    """Transfer credits to another party (lowest serials first, or the serials named)."""
    return _moved(credits.transfer(current_session(), _actor(), **body), "transfer")


@blp.route("/retirements", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.RetireIn())
@blp.response(201, schemas.MovedSchema)
@errors(404, 409, 422)
def retire(body: dict) -> Any:
    """Retire credits for good on behalf of a beneficiary; answers with the certificate."""
    return _moved(credits.retire(current_session(), _actor(), **body),
                  "retirement")


@blp.route("/cancellations", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.CancelIn())
@blp.response(201, schemas.MovedSchema)
@errors(404, 409, 422)
def cancel(body: dict) -> Any:
    """Cancel credits with a reason (they leave circulation and can never be retired)."""
    return _moved(credits.cancel(current_session(), _actor(), **body),
                  "cancellation")


@blp.route("/reversals", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ReversalIn())
@blp.response(201, schemas.ReversalSchema)
@errors(404, 409, 422)
def reversal(body: dict) -> Any:
    """Record a loss of stored carbon (fire, illegal felling ...): the lost tonnes are
    cancelled from the buffer pool, the project's own batches first."""
    session = current_session()
    project = body.pop("project")
    recorded, _ = credits.record_reversal(session, _actor(), _ref(project), **body)
    return credits.reversal_view(session, recorded), 201


@blp.route("/issuances/<string:batch>/trace")
@blp.authenticated
@blp.response(200, schemas.TraceSchema)
@errors(404)
def trace(batch: str) -> Any:
    """Where a batch comes from, with rights holders' names (households masked)."""
    return registry.trace(current_session(), _actor(), _ref(batch), public=False)


# --- the public registry ---------------------------------------------------------------------


@blp.route("/public/projects")
@blp.arguments(schemas.ProjectQuery(), location="query")
@blp.response(200, page_of(schemas.ProjectSchema))
def public_projects(query: dict) -> Any:
    """Registered, active and closed projects (public)."""
    session = current_session()
    stmt = projects.list_projects(session, None, public=True,
                                  county_code=query.pop("county", None),
                                  status=query.pop("status", None),
                                  methodology_code=query.pop("methodology", None))
    page = _page(stmt, query)
    page["items"] = [projects.project_view(session, p, public=True) for p in page["items"]]
    return page


@blp.route("/public/projects/export")
@blp.arguments(schemas.ExportQuery(), location="query")
@_export_doc
def export_projects(query: dict) -> Any:
    """The public project list as CSV or XLSX."""
    session = current_session()
    stmt = projects.list_projects(session, None, public=True)
    return _export(registry.export(session, "projects", query["format"], stmt), "projects",
                   query["format"])


@blp.route("/public/projects/<string:ref>")
@blp.response(200, schemas.ProjectSchema)
@errors(404)
def public_project(ref: str) -> Any:
    """A registered, active or closed project (public)."""
    session = current_session()
    return projects.project_view(session, projects.public_project(session, _ref(ref)),
                                 public=True)


def _batches(query: dict) -> Any:
    return registry.list_batches(project=query.pop("project", None),
                                 vintage_year=query.pop("vintage_year", None),
                                 county_code=query.pop("county", None))


@blp.route("/public/issuances")
@blp.arguments(schemas.BatchQuery(), location="query")
@blp.response(200, page_of(schemas.CarbonBatchSchema))
def public_issuances(query: dict) -> Any:
    """Every issuance with its serial block and what became of its tonnes (public)."""
    session = current_session()
    page = _page(_batches(query), query)
    page["items"] = [registry.batch_view(session, b) for b in page["items"]]
    return page


@blp.route("/public/issuances/export")
@blp.arguments(schemas.BatchExportQuery(), location="query")
@_export_doc
def export_issuances(query: dict) -> Any:
    """The issuances as CSV or XLSX."""
    fmt = query.pop("format")
    query.pop("page", None)
    query.pop("page_size", None)
    return _export(registry.export(current_session(), "issuances", fmt, _batches(query)),
                   "issuances", fmt)


@blp.route("/public/issuances/<string:batch>")
@blp.response(200, schemas.CarbonBatchSchema)
@errors(404)
def public_issuance(batch: str) -> Any:
    """One issuance (by asset code, serial block or id)."""
    session = current_session()
    return registry.batch_view(session, credits.batch_of(session, _ref(batch)))


@blp.route("/public/issuances/<string:batch>/holdings")
@blp.response(200, schemas.HoldingSchema(many=True))
@errors(404)
def public_holdings(batch: str) -> Any:
    """Who holds the batch's tonnes, by account and role (public; households not named)."""
    return registry.holdings(current_session(), _ref(batch))


@blp.route("/public/issuances/<string:batch>/holdings/export")
@blp.arguments(schemas.ExportQuery(), location="query")
@_export_doc
@errors(404)
def export_holdings(query: dict, batch: str) -> Any:
    """The holdings of a batch as CSV or XLSX."""
    session = current_session()
    found = credits.batch_of(session, _ref(batch))
    return _export(registry.export(session, "holdings", query["format"],
                                   batch=found.asset_code), f"holdings-{found.asset_code}",
                   query["format"])


@blp.route("/public/issuances/<string:batch>/events")
@blp.arguments(schemas.PageQuerySchemaAlias(), location="query")
@blp.response(200, page_of(schemas.EventSchema))
@errors(404)
def public_events(query: dict, batch: str) -> Any:
    """Everything that happened to the batch's credits, each with the serial blocks moved."""
    return _page(registry.events_of(current_session(), _ref(batch)), query)


@blp.route("/public/issuances/<string:batch>/trace")
@blp.response(200, schemas.TraceSchema)
@errors(404)
def public_trace(batch: str) -> Any:
    """Where a batch comes from: parcels, rights holders (households not named), monitoring
    records and report (public)."""
    return registry.trace(current_session(), None, _ref(batch), public=True)


@blp.route("/public/accounts/<string:code>/blocks")
@blp.response(200, schemas.BlocksSchema)
@errors(404)
def public_blocks(code: str) -> Any:
    """The serial blocks an account holds."""
    return registry.account_blocks(current_session(), code)


@blp.route("/public/parcels/<int:product_id>/batches")
@blp.response(200, schemas.CarbonBatchSchema(many=True))
@errors(404)
def public_parcel_batches(product_id: int) -> Any:
    """The batches issued on a catalog parcel."""
    return registry.parcel_batches(current_session(), product_id)


def _retirements(query: dict) -> Any:
    return registry.list_retirements(
        beneficiary=query.pop("beneficiary", None), purpose=query.pop("purpose", None),
        vintage_year=query.pop("vintage_year", None), batch=query.pop("batch", None),
        compliance_year=query.pop("compliance_year", None))


@blp.route("/public/retirements")
@blp.arguments(schemas.RetirementQuery(), location="query")
@blp.response(200, page_of(schemas.RetirementSchema))
def public_retirements(query: dict) -> Any:
    """Retirements, queryable by beneficiary, purpose, vintage, compliance year, batch."""
    session = current_session()
    page = _page(_retirements(query), query)
    page["items"] = [registry.retirement_view(session, r) for r in page["items"]]
    return page


@blp.route("/public/retirements/export")
@blp.arguments(schemas.RetirementExportQuery(), location="query")
@_export_doc
def export_retirements(query: dict) -> Any:
    """The retirements as CSV or XLSX."""
    fmt = query.pop("format")
    query.pop("page", None)
    query.pop("page_size", None)
    return _export(registry.export(current_session(), "retirements", fmt, _retirements(query)),
                   "retirements", fmt)


def _certificate(number: str) -> tuple[dict, str]:
    session = current_session()
    view = registry.retirement_view(session, registry.get_retirement(session, _ref(number)))
    query = "&".join([f"audit_hash={view['audit_hash']}", f"quantity_t={view['quantity_t']}"])
    return view, (f"{request.host_url.rstrip('/')}/carbon/public/certificates/"
                  f"{view['certificate_number']}/verify?{query}")


@blp.route("/public/certificates/<string:number>")
@blp.response(200, {"type": "string"}, content_type="text/html")
@errors(404)
def certificate_html(number: str) -> Any:
    """A retirement's certificate, at a stable URL (HTML, both languages)."""
    view, verify_url = _certificate(number)
    return Response(certificate.render_html(view, verify_url), mimetype="text/html")


@blp.route("/public/certificates/<string:number>.pdf")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf")
@errors(404)
def certificate_pdf(number: str) -> Any:
    """The certificate as PDF."""
    view, verify_url = _certificate(number)
    return file_response(certificate.render_pdf(view, verify_url),
                         f"{view['certificate_number']}.pdf", "application/pdf")


@blp.route("/public/certificates/<string:number>/verify")
@blp.arguments(schemas.VerifyQuery(), location="query")
@blp.response(200, schemas.VerifySchema)
@errors(404, 422)
def verify_certificate(query: dict, number: str) -> Any:
    """Does a certificate match the registry? Give what it shows (quantity, beneficiary,
    audit hash, serial blocks); 422 certificate-mismatch lists what differs."""
    return registry.verify_certificate(
        current_session(), number, quantity_t=query.get("quantity_t"),
        beneficiary_name=query.get("beneficiary_name"), audit_hash=query.get("audit_hash"),
        serial_blocks=query.get("serial_block"))
