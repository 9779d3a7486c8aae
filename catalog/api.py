"""HTTP routes of the catalog: thin, each parses the request, calls one service, returns.

Public (no token): vocabularies, regions, and the public catalog of verified products.
Everything else needs a bearer token; roles and county scopes are decided by the services
through `ecovalue.auth.authorize`.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app

from catalog import lifecycle, schemas, vocabulary
from catalog.services import (
    exports,
    importing,
    monitoring,
    parties,
    products,
    regions,
    synonyms,
)
from ecovalue.api import (
    XLSX_MIMETYPE,
    Blueprint,
    current_actor,
    current_principal,
    file_response,
    page_of,
    paginate,
)
from ecovalue.db import current_session
from ecovalue.errors import BadRequest

blp = Blueprint("catalog", __name__, url_prefix="/catalog",
                description="Ecological product catalog: regions, parties, products, monitoring")

_ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')
IF_MATCH = {
    "in": "header", "name": "If-Match", "required": False,
    "description": "the version you read (the ETag); refused with 412 if it changed since",
    "schema": {"type": "string", "maxLength": 40},
}
_ETAG_HEADER = {"ETag": {"description": "the resource's version", "schema": {"type": "string"}}}
_FILE_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
}


def _expected_version() -> int | None:
    """The version named by If-Match (None if absent or `*`)."""
    from flask import request

    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    match = _ETAG_RE.match(value)
    if match is None:
        raise BadRequest("If-Match must be the ETag of the resource, e.g. \"3\"",
                         errors=[{"location": "headers", "field": "If-Match",
                                  "message": "an ETag such as \"3\""}])
    return int(match.group(1))


def _etag(obj: Any) -> dict[str, str]:
    return {"ETag": f'"{obj.version}"'}


def _page(stmt: Any, query: dict) -> dict:
    return paginate(current_session(), stmt, query["page"], query["page_size"])


# --- vocabularies --------------------------------------------------------------------------


@blp.route("/product-types")
@blp.response(200, schemas.ProductTypeSchema(many=True))
def product_types():
    """The controlled vocabulary of product types, with their category, GEP indicator code
    and the unit whose dimension a quantity must have (public)."""
    return list(vocabulary.product_types().values())


@blp.route("/metrics")
@blp.response(200, schemas.MetricSchema(many=True))
def metrics():
    """The metrics monitoring records may carry, with their reference units (public)."""
    return list(vocabulary.metrics().values())


@blp.route("/synonyms")
@blp.arguments(schemas.SynonymQuerySchema, location="query")
@blp.response(200, schemas.SynonymSchema(many=True))
def list_synonyms(query):
    """Synonyms of the vocabularies (同义词): the shipped ones and those admins added; imports
    match every spelling after normalising full-width characters and spaces (public)."""
    return synonyms.list_synonyms(current_session(), vocabulary_name=query.get("vocabulary"))


@blp.route("/synonyms", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.SynonymCreateSchema)
@blp.response(201, schemas.SynonymSchema)
@blp.alt_response(409, response="CONFLICT")
def create_synonym(body):
    """Add a synonym (admins): a spelling means one code only, so one that already means
    another code is refused with 409 `synonym-conflict`."""
    return synonyms.add_synonym(current_session(), current_actor(),
                                vocabulary_name=body["vocabulary"], term=body["term"],
                                code=body["code"], note=body.get("note"))


# --- regions -------------------------------------------------------------------------------


@blp.route("/regions")
@blp.arguments(schemas.RegionQuerySchema, location="query")
@blp.response(200, page_of(schemas.RegionSchema))
def list_regions(query):
    """Regions: prefecture, counties, townships, villages (public)."""
    stmt = regions.list_regions(level=query.get("level"), parent_code=query.get("parent"),
                                county_code=query.get("county"), q=query.get("q"))
    return _page(stmt, query)


@blp.route("/regions/tree")
@blp.arguments(schemas.RegionTreeQuerySchema, location="query")
@blp.response(200, schemas.RegionTreeSchema)
def region_tree(query):
    """A region and everything below it, nested (public)."""
    return regions.region_tree(current_session(), query["root"])


@blp.route("/regions/<region_code:code>")
@blp.response(200, schemas.RegionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_region(code):
    """One region (public)."""
    return regions.get_region(current_session(), code)


@blp.route("/regions", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.RegionCreateSchema)
@blp.response(201, schemas.RegionSchema)
@blp.alt_response(409, response="CONFLICT")
def create_region(body):
    """Add a township (9 digits, starting with the county code) or a village (12 digits,
    starting with the township code): admins, or the county's registrar."""
    return regions.create_region(current_session(), current_actor(), **body)


@blp.route("/regions/<region_code:code>", methods=["PATCH"])
@blp.authenticated
@blp.arguments(schemas.RegionUpdateSchema)
@blp.response(200, schemas.RegionSchema)
@blp.alt_response(404, response="NOT_FOUND")
def update_region(body, code):
    """Rename a township or village."""
    return regions.update_region(current_session(), current_actor(), code, **body)


# --- parties -------------------------------------------------------------------------------


@blp.route("/parties")
@blp.authenticated
@blp.arguments(schemas.PartyQuerySchema, location="query")
@blp.response(200, page_of(schemas.PartySchema))
def list_parties(query):
    """Parties (a trader sees only its own); personal data masked."""
    stmt = parties.list_parties(
        current_session(), current_actor(), kind=query.get("kind"),
        county_code=query.get("county"), region_code=query.get("region"), q=query.get("q"),
        active=query.get("active"))
    return _page(stmt, query)


@blp.route("/parties", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.PartyCreateSchema)
@blp.response(201, schemas.PartySchema, headers=_ETAG_HEADER)
@blp.alt_response(409, response="CONFLICT")
def create_party(body):
    """Register a party in the county of its region. Enterprises need a valid unified social
    credit code; households the head's ID-card number (stored encrypted, returned masked)."""
    party = parties.create_party(current_session(), current_actor(), body)
    return party, 201, _etag(party)


@blp.route("/parties/lookup", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.HouseholdLookupSchema)
@blp.response(200, schemas.PartySchema)
@blp.alt_response(404, response="NOT_FOUND")
def lookup_household(body):
    """Find the household registered with an ID-card number (exact match; the number travels
    in the body so that it never lands in URLs or logs)."""
    from catalog.errors import PartyNotFound

    party = parties.find_household_by_id_number(current_session(), current_actor(),
                                                body["id_number"])
    if party is None:
        raise PartyNotFound("no household is registered with this ID-card number")
    return party


@blp.route("/parties/<int:party_id>")
@blp.authenticated
@blp.response(200, schemas.PartySchema, headers=_ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
def get_party(party_id):
    """One party; personal data masked."""
    party = parties.get_party(current_session(), current_actor(), party_id)
    return party, 200, _etag(party)


@blp.route("/parties/<int:party_id>", methods=["PATCH"])
@blp.authenticated
@blp.headers(IF_MATCH)
@blp.arguments(schemas.PartyUpdateSchema)
@blp.response(200, schemas.PartySchema, headers=_ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(412, response="PRECONDITION_FAILED")
def update_party(body, party_id):
    """Change a party (its kind never changes)."""
    party = parties.update_party(current_session(), current_actor(), party_id, body,
                                 expected_version=_expected_version())
    return party, 200, _etag(party)


@blp.route("/parties/<int:party_id>/deactivate", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.PartySchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def deactivate_party(party_id):
    """Deactivate a party that holds no products any more (it is kept for the record)."""
    return parties.deactivate_party(current_session(), current_actor(), party_id)


# --- products ------------------------------------------------------------------------------


def _product_filters(query: dict) -> dict:
    return {"county_code": query.get("county"), "region_code": query.get("region"),
            "category": query.get("category"), "type_code": query.get("type"),
            "status": query.get("status"), "holder_party_id": query.get("holder"),
            "development_status": query.get("development_status"), "q": query.get("q"),
            "sort": query.get("sort")}


@blp.route("/products")
@blp.authenticated
@blp.arguments(schemas.ProductQuerySchema, location="query")
@blp.response(200, page_of(schemas.ProductSchema))
def list_products(query):
    """Products, filtered, sorted and paginated."""
    stmt = products.list_products(current_session(), current_actor(),
                                  **_product_filters(query))
    return _page(stmt, query)


@blp.route("/products", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ProductCreateSchema)
@blp.response(201, schemas.ProductSchema, headers=_ETAG_HEADER)
@blp.alt_response(409, response="CONFLICT")
def create_product(body):
    """Register a product as a draft (admins, or the registrar of its county)."""
    product = products.create_product(current_session(), current_actor(), body)
    return product, 201, _etag(product)


@blp.route("/products/export")
@blp.authenticated
@blp.arguments(schemas.ExportQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "the products as CSV (UTF-8 with BOM) or XLSX, "
                            "in the import template's columns", "content": _FILE_CONTENT}})
def export_products(query):
    """Export the filtered products (all pages) as CSV or XLSX; the file can be re-imported."""
    fmt = query.pop("format")
    data = exports.export_products(current_session(), current_actor(), fmt,
                                   **_product_filters(query))
    mimetype = "text/csv" if fmt == "csv" else XLSX_MIMETYPE
    return file_response(data, f"products.{fmt}", mimetype)


@blp.route("/products/summary")
@blp.authenticated
@blp.arguments(schemas.SummaryQuerySchema, location="query")
@blp.response(200, schemas.SummaryRowSchema(many=True))
def product_summary(query):
    """Per county and type: products (not retired), verified ones, total area."""
    return products.summary(current_session(), current_principal(),
                            county_code=query.get("county"))


@blp.route("/products/<int:product_id>")
@blp.authenticated
@blp.response(200, schemas.ProductSchema, headers=_ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
def get_product(product_id):
    """One product."""
    product = products.get_product(current_session(), current_actor(), product_id)
    return product, 200, _etag(product)


@blp.route("/products/<int:product_id>", methods=["PATCH"])
@blp.authenticated
@blp.headers(IF_MATCH)
@blp.arguments(schemas.ProductUpdateSchema)
@blp.response(200, schemas.ProductSchema, headers=_ETAG_HEADER)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(412, response="PRECONDITION_FAILED")
def update_product(body, product_id):
    """Edit a draft, registered or verified product; editing what a verifier attested sends a
    verified product back to registered."""
    product = products.update_product(current_session(), current_actor(), product_id, body,
                                      expected_version=_expected_version())
    return product, 200, _etag(product)


def _transition_view(name: str, rule: lifecycle.Transition) -> None:
    def view(body, product_id):
        product = products.transition_product(
            current_session(), current_actor(), product_id, name,
            reason=body.get("reason"), expected_version=_expected_version())
        return product, 200, _etag(product)

    view.__name__ = f"{name}_product"
    view.__doc__ = (f"{name.capitalize()}: {', '.join(sorted(rule.sources))} -> {rule.target} "
                    f"({rule.description}). Needs {rule.action}"
                    + ("; a reason is required." if rule.reason_required else "."))
    decorated = blp.alt_response(412, response="PRECONDITION_FAILED")(view)
    decorated = blp.alt_response(409, response="CONFLICT")(decorated)
    decorated = blp.alt_response(404, response="NOT_FOUND")(decorated)
    decorated = blp.response(200, schemas.ProductSchema, headers=_ETAG_HEADER)(decorated)
    decorated = blp.arguments(schemas.TransitionSchema, required=False)(decorated)
    decorated = blp.headers(IF_MATCH)(decorated)
    decorated = blp.authenticated(decorated)
    blp.route(f"/products/<int:product_id>/{name}", methods=["POST"],
              endpoint=f"{name}_product")(decorated)


for _name, _rule in lifecycle.TRANSITIONS.items():
    _transition_view(_name, _rule)


@blp.route("/products/<int:product_id>/history")
@blp.authenticated
@blp.arguments(schemas.PageQuerySchema, location="query")
@blp.response(200, page_of(schemas.ProductVersionSchema))
@blp.alt_response(404, response="NOT_FOUND")
def product_history(query, product_id):
    """Every version of a product, oldest first: who changed what, when and why."""
    return _page(products.product_history(current_session(), current_actor(), product_id),
                 query)


@blp.route("/products/<int:product_id>/monitoring")
@blp.authenticated
@blp.arguments(schemas.ProductMonitoringQuerySchema, location="query")
@blp.response(200, page_of(schemas.MonitoringRecordSchema))
@blp.alt_response(404, response="NOT_FOUND")
def product_monitoring(query, product_id):
    """A product's monitoring records in time order (its time series)."""
    stmt = monitoring.list_records(
        current_session(), current_actor(), product_id=product_id,
        metric=query.get("metric"), method=query.get("method"),
        year_from=query.get("year_from"), year_to=query.get("year_to"),
        monthly=query.get("monthly"))
    return _page(stmt, query)


@blp.route("/products/<int:product_id>/monitoring", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.MonitoringCreateSchema)
@blp.response(201, schemas.MonitoringRecordSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def create_monitoring_record(body, product_id):
    """Record a value of a metric for a year or a month (admins, the county's registrar)."""
    return monitoring.create_record(current_session(), current_actor(), product_id, body)


# --- monitoring ----------------------------------------------------------------------------


@blp.route("/monitoring")
@blp.authenticated
@blp.arguments(schemas.MonitoringQuerySchema, location="query")
@blp.response(200, page_of(schemas.MonitoringRecordSchema))
def list_monitoring(query):
    """Monitoring records across products (e.g. a county's), in time order."""
    stmt = monitoring.list_records(
        current_session(), current_actor(), product_id=query.get("product"),
        county_code=query.get("county"), metric=query.get("metric"),
        method=query.get("method"), year_from=query.get("year_from"),
        year_to=query.get("year_to"), monthly=query.get("monthly"))
    return _page(stmt, query)


@blp.route("/monitoring/series")
@blp.authenticated
@blp.arguments(schemas.SeriesQuerySchema, location="query")
@blp.response(200, schemas.SeriesSchema)
def monitoring_series(query):
    """A county's total of one metric per year (or month), in the metric's reference unit."""
    return monitoring.county_series(
        current_session(), current_actor(), county_code=query["county"],
        metric=query["metric"], type_code=query.get("type"), category=query.get("category"),
        year_from=query.get("year_from"), year_to=query.get("year_to"),
        monthly=query["monthly"])


@blp.route("/monitoring/<int:record_id>")
@blp.authenticated
@blp.response(200, schemas.MonitoringRecordSchema)
@blp.alt_response(404, response="NOT_FOUND")
def get_monitoring_record(record_id):
    """One monitoring record."""
    return monitoring.get_record(current_session(), current_actor(), record_id)


@blp.route("/monitoring/<int:record_id>", methods=["PATCH"])
@blp.authenticated
@blp.arguments(schemas.MonitoringUpdateSchema)
@blp.response(200, schemas.MonitoringRecordSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def update_monitoring_record(body, record_id):
    """Correct a record's value, unit, source or note."""
    return monitoring.update_record(current_session(), current_actor(), record_id, body)


@blp.route("/monitoring/<int:record_id>", methods=["DELETE"])
@blp.authenticated
@blp.response(204)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
def delete_monitoring_record(record_id):
    """Delete a record entered in error (the audit trail keeps its content)."""
    monitoring.delete_record(current_session(), current_actor(), record_id)


# --- imports -------------------------------------------------------------------------------


def _max_upload() -> int:
    config = current_app.config
    return int(config.get("CATALOG_IMPORT_MAX_BYTES") or config["MAX_CONTENT_LENGTH"])


def _upload(files: dict) -> tuple[bytes, str]:
    upload = files["file"]
    limit = _max_upload()
    data = upload.stream.read(limit + 1)
    return data, (upload.filename or "upload")[:255]


_IMPORT_DOC = ("Dry run (`dry_run=true`): every error of the file at once (row, column, "
               "message) or what a commit would do; nothing is written. Commit: all rows or "
               "none. Re-importing the same file creates no duplicates (natural key). ")


@blp.route("/imports/products", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ProductImportQuerySchema, location="query")
@blp.arguments(schemas.ImportFileSchema, location="files")
@blp.response(200, schemas.ImportReportSchema)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.doc(description=_IMPORT_DOC + "Natural key of a product: region_code + type + name_zh; "
         "a matching row updates the product (or is skipped if identical). Columns: "
         "GET /catalog/imports/templates/products.")
def import_products(query, files):
    """Bulk import of products from CSV (UTF-8 or GBK) or XLSX."""
    data, filename = _upload(files)
    return importing.import_products(
        current_session(), current_actor(), data, filename, dry_run=query["dry_run"],
        initial_status=query["status"], max_bytes=_max_upload())


@blp.route("/imports/monitoring", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ImportQuerySchema, location="query")
@blp.arguments(schemas.ImportFileSchema, location="files")
@blp.response(200, schemas.ImportReportSchema)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.doc(description=_IMPORT_DOC + "Natural key of a record: product + metric + year/month + "
         "method; a matching row updates the value (or is skipped if identical). Columns: "
         "GET /catalog/imports/templates/monitoring.")
def import_monitoring(query, files):
    """Bulk import of monitoring records from CSV (UTF-8 or GBK) or XLSX."""
    data, filename = _upload(files)
    return importing.import_monitoring(current_session(), current_actor(), data, filename,
                                       dry_run=query["dry_run"], max_bytes=_max_upload())


@blp.route("/imports/parties", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.ImportQuerySchema, location="query")
@blp.arguments(schemas.ImportFileSchema, location="files")
@blp.response(200, schemas.ImportReportSchema)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
@blp.alt_response(415, response="UNSUPPORTED_MEDIA_TYPE")
@blp.doc(description=_IMPORT_DOC + "A party matches by credit code, ID-card number or (without "
         "either) name and kind in the county; new ones are created, a household's bank "
         "account is updated when given. Columns: GET /catalog/imports/templates/parties.")
def import_parties(query, files):
    """Bulk import of a party register (villagers, collectives, cooperatives) from CSV or
    XLSX; personal data stored protected as always."""
    data, filename = _upload(files)
    return importing.import_parties(current_session(), current_actor(), data, filename,
                                    dry_run=query["dry_run"], max_bytes=_max_upload())


@blp.route("/imports")
@blp.authenticated
@blp.arguments(schemas.ImportBatchQuerySchema, location="query")
@blp.response(200, page_of(schemas.ImportBatchSchema))
def list_imports(query):
    """Committed imports, newest first."""
    return _page(importing.list_batches(current_session(), current_actor(),
                                        kind=query.get("kind")), query)


@blp.route("/imports/templates/<any(products, monitoring, parties):kind>")
@blp.arguments(schemas.TemplateQuerySchema, location="query")
@blp.doc(responses={"200": {"description": "an empty spreadsheet with the import columns and "
                            "one example row", "content": _FILE_CONTENT}})
def import_template(query, kind):
    """The columns an import file has (public): header row plus one example."""
    fmt = query["format"]
    data = exports.template(kind, fmt)
    return file_response(data, f"{kind}-template.{fmt}",
                         "text/csv" if fmt == "csv" else XLSX_MIMETYPE)


# --- public catalog ------------------------------------------------------------------------


@blp.route("/public/products")
@blp.arguments(schemas.PublicProductQuerySchema, location="query")
@blp.response(200, page_of(schemas.PublicProductSchema))
def public_products(query):
    """Verified products, for everyone (no token): no personal data."""
    filters = {"county_code": query.get("county"), "region_code": query.get("region"),
               "category": query.get("category"), "type_code": query.get("type"),
               "q": query.get("q"), "sort": query.get("sort")}
    return _page(products.public_products(**filters), query)


@blp.route("/public/products/<int:product_id>")
@blp.response(200, schemas.PublicProductSchema)
@blp.alt_response(404, response="NOT_FOUND")
def public_product(product_id):
    """One verified product (no token)."""
    return products.get_public_product(current_session(), product_id)


@blp.route("/public/summary")
@blp.arguments(schemas.SummaryQuerySchema, location="query")
@blp.response(200, schemas.SummaryRowSchema(many=True))
def public_summary(query):
    """Verified products per county and type, with their area (no token)."""
    return products.summary(current_session(), None, county_code=query.get("county"),
                            public=True)
