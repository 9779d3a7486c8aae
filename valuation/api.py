"""HTTP routes of GEP valuation: indicators, price books, price indices, quantity sets, runs,
reports, exports, charts, comparisons and asset values. Thin: parse, call one service, return.

Public without a token: the indicator registry, published price books, price indices,
published runs with their reports, exports, charts and comparisons. Everything else needs a
token; registrars act for their own county only.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from ecovalue.api import (
    XLSX_MIMETYPE,
    Blueprint,
    body_limit,
    current_actor,
    current_principal,
    file_response,
    page_of,
    paginate,
)
from ecovalue.db import current_session
from valuation import grid, schemas
from valuation.errors import GridInvalid
from valuation.services import indicators, prices, quantities, reporting, runs

blp = Blueprint("valuation", __name__, url_prefix="/valuation",
                description="GEP valuation: indicator registry, price books and indices, "
                            "physical quantities, valuation runs, reports and asset values")

BINARY = {"type": "string", "format": "binary"}


# --- indicators ------------------------------------------------------------------------------


@blp.route("/indicators")
@blp.arguments(schemas.IndicatorQuerySchema, location="query")
@blp.response(200, schemas.IndicatorSchema(many=True))
def list_indicators(query):
    """The indicator registry: built-in indicators (reference files) and custom ones."""
    return indicators.list_indicators(current_session(),
                                      include_inactive=query["include_inactive"])


@blp.route("/indicators", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.CustomIndicatorSchema)
@blp.response(201, schemas.IndicatorSchema)
def create_indicator(data):
    """Add a custom indicator (admin): value = a formula over Q and named price-book
    parameters, parsed safely (numbers, names, name[item], + - * /, parentheses)."""
    return indicators.create_custom_indicator(current_session(), current_actor(), data)


@blp.route("/indicators/<string:code>")
@blp.response(200, schemas.IndicatorSchema)
def get_indicator(code):
    """One indicator of the registry."""
    return indicators.get_indicator(current_session(), code)


@blp.route("/indicators/<string:code>", methods=["PATCH"])
@blp.authenticated
@blp.arguments(schemas.CustomIndicatorPatchSchema)
@blp.response(200, schemas.IndicatorSchema)
def update_indicator(data, code):
    """Change or deactivate a custom indicator (admin); finished runs keep their copy."""
    return indicators.update_custom_indicator(current_session(), current_actor(), code, data)


# --- price books -------------------------------------------------------------------------------


@blp.route("/price-books")
@blp.response(200, schemas.PriceBookSchema(many=True))
def list_price_books():
    """Published price books (drafts too with a reading token)."""
    return prices.list_books(current_session(), current_principal())


@blp.route("/price-books", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.PriceBookCreateSchema)
@blp.response(201, schemas.PriceBookDetailSchema)
def create_price_book(data):
    """A new draft version, empty or copied from another version (admin, verifier)."""
    return prices.create_book(current_session(), current_actor(), **data)


@blp.route("/price-books/<string:version>")
@blp.response(200, schemas.PriceBookDetailSchema)
def get_price_book(version):
    """A price book with its entries."""
    return prices.get_book(current_session(), current_principal(), version)


@blp.route("/price-books/<string:version>/entries", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.PriceEntriesSchema)
@blp.response(200, schemas.PriceBookDetailSchema)
def put_price_entries(data, version):
    """Add or replace entries of a draft (all checked; nothing written if one is wrong)."""
    return prices.upsert_entries(current_session(), current_actor(), version, data["entries"])


@blp.route("/price-books/<string:version>/entries/<string:parameter>", methods=["DELETE"])
@blp.authenticated
@blp.response(200, schemas.PriceBookDetailSchema)
def delete_price_entry(version, parameter):
    """Remove an entry from a draft."""
    return prices.delete_entry(current_session(), current_actor(), version, parameter)


@blp.route("/price-books/<string:version>/publish", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.PriceBookDetailSchema)
def publish_price_book(version):
    """Publish a draft (admin, verifier): it becomes usable by runs and immutable."""
    return prices.publish_book(current_session(), current_actor(), version)


# --- price indices -----------------------------------------------------------------------------


def _series_view(series: Any) -> dict[str, Any]:
    session = current_session()
    return {"code": series.code, "name_zh": series.name_zh, "name_en": series.name_en,
            "kind": series.kind, "base": series.base, "source": series.source,
            "confirmation": series.confirmation,
            "values": prices.series_values(session, series.code)}


@blp.route("/price-indices")
@blp.response(200, schemas.IndexSeriesSchema(many=True))
def list_price_indices():
    """Price-index series (fixed-base CPI ...) with their values."""
    return [_series_view(s) for s in prices.list_series(current_session())]


@blp.route("/price-indices/<string:code>")
@blp.response(200, schemas.IndexSeriesSchema)
def get_price_index(code):
    """One series with its values."""
    return _series_view(prices.get_series(current_session(), code))


@blp.route("/price-indices/<string:code>", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.IndexSeriesInSchema)
@blp.response(200, schemas.IndexSeriesSchema)
def put_price_index(data, code):
    """Create or describe a series (admin, verifier)."""
    return _series_view(prices.upsert_series(current_session(), current_actor(), {**data,
                                                                           "code": code}))


@blp.route("/price-indices/<string:code>/values", methods=["PUT"])
@blp.authenticated
@blp.arguments(schemas.IndexValuesInSchema)
@blp.response(200, schemas.IndexSeriesSchema)
def put_price_index_values(data, code):
    """Set values of a series by year (finished runs keep the values they used)."""
    session = current_session()
    prices.upsert_values(session, current_actor(), code, data["values"])
    return _series_view(prices.get_series(session, code))


# --- quantity sets -----------------------------------------------------------------------------


@blp.route("/quantity-sets")
@blp.authenticated
@blp.arguments(schemas.QuantitySetQuerySchema, location="query")
@blp.response(200, page_of(schemas.QuantitySetSchema))
def list_quantity_sets(query):
    """Quantity sets the caller may read, newest first."""
    session = current_session()
    stmt = quantities.list_sets(session, current_principal(), region_code=query.get("region_code"),
                                year=query.get("year"))
    return paginate(session, stmt, query["page"], query["page_size"])


@blp.route("/quantity-sets", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.QuantitySetCreateSchema)
@blp.response(201, schemas.QuantitySetSchema)
def create_quantity_set(data):
    """Physical quantities posted as rows (region, indicator, item, ecosystem type, quantity,
    unit, origin); every problem is reported at once."""
    return quantities.create_from_rows(current_session(), current_actor(), **data)


@blp.route("/quantity-sets/upload", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.UploadQuerySchema, location="query")
@blp.arguments(schemas.FileSchema, location="files")
@blp.response(201, schemas.QuantitySetSchema)
def upload_quantity_set(query, files):
    """Upload a county's aggregate table (CSV in UTF-8/GBK, or XLSX) with the columns
    region_code, year, indicator, item, ecosystem_type, quantity, unit, origin, note (Chinese
    headers such as 地区代码, 指标, 实物量, 单位 are accepted)."""
    upload = files["file"]
    return quantities.create_from_file(current_session(), current_actor(),
                                       filename=upload.filename,
                                       data=upload.read(), **query)


@blp.route("/quantity-sets/grid", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.GridQuerySchema, location="query")
@blp.arguments(schemas.GridFilesSchema, location="files")
@blp.response(201, schemas.QuantitySetSchema)
def upload_grid(query, files):
    """Grid route: one row per cell with region_code, ecosystem_type, area_m2 and the inputs of
    each indicator (precipitation_mm, runoff_mm, evapotranspiration_mm; rainfall_erosivity,
    soil_erodibility, slope_length_steepness, cover_management, support_practice; npp;
    weather_factor, erodible_fraction, crust_factor, roughness_factor, vegetation_factor;
    et_hot_mm). Quantities are computed per cell and summed per region x ecosystem type."""
    extra: dict[str, Any] = {}
    if files.get("options") is not None:
        try:
            extra = json.loads(files["options"].read().decode("utf-8"))
            if not isinstance(extra, dict):
                raise ValueError("not an object")
            removal = {str(k): {str(p): float(r) for p, r in v.items()}
                       for k, v in (extra.get("removal_rates") or {}).items()}
            emissions = {str(k): {str(p): float(r) for p, r in v.items()}
                         for k, v in (extra.get("emissions") or {}).items()}
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise GridInvalid(f"the options file is not valid JSON of the documented shape: "
                              f"{exc}") from None
        extra = {"removal_rates": removal, "emissions": emissions}
    options = grid.GridOptions(
        npp_basis=query["npp_basis"], carbon_fraction=query["carbon_fraction"],
        latent_heat_kj_per_kg=query["latent_heat_kj_per_kg"], eer=query["eer"],
        rweq_z_m=query["rweq_z_m"], negative_water_balance=query["negative_water_balance"],
        **extra)
    upload = files["file"]
    return quantities.create_from_grid_file(
        current_session(), current_actor(),
        region_code=query["region_code"], year=query["year"],
        filename=upload.filename, data=upload.read(), indicators=query.get("indicators"),
        options=options, note=query.get("note"))


@blp.route("/quantity-sets/from-catalog", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.CatalogQuantitiesSchema)
@blp.response(201, schemas.QuantitySetSchema)
def quantities_from_catalog(data):
    """Derive quantities from the catalog's monitoring records of verified products (read
    only): annual records, money figures preferred over physical ones for a product, units
    converted exactly, summed per county x indicator x item x ecosystem type; everything not
    used is listed in the set's warnings."""
    return quantities.create_from_catalog(current_session(), current_actor(), **data)


@blp.route("/quantity-sets/<int:set_id>")
@blp.authenticated
@blp.response(200, schemas.QuantitySetSchema)
def get_quantity_set(set_id):
    """One quantity set."""
    return quantities.get_set(current_session(), current_principal(), set_id)


@blp.route("/quantity-sets/<int:set_id>/rows")
@blp.authenticated
@blp.arguments(schemas.PageQuerySchema, location="query")
@blp.response(200, page_of(schemas.QuantityRowSchema))
def list_quantity_rows(query, set_id):
    """The rows of a set: canonical quantity and unit next to the figure as reported."""
    session = current_session()
    rows = quantities.set_rows(session, current_principal(), set_id)
    return paginate(session, rows, query["page"], query["page_size"])


# --- runs ------------------------------------------------------------------------------------


@blp.route("/runs")
@blp.arguments(schemas.RunQuerySchema, location="query")
@blp.response(200, page_of(schemas.RunSummarySchema))
def list_runs(query):
    """Published runs for everyone; unpublished ones too for those who may read them."""
    session = current_session()
    stmt = runs.list_runs(session, current_principal(), region_code=query.get("region_code"),
                          year=query.get("year"), status=query.get("status"))
    return paginate(session, stmt, query["page"], query["page_size"])


@blp.route("/runs", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.RunCreateSchema)
@blp.response(201, schemas.RunSchema)
def create_run(data):
    """Value quantity sets for a region and year with a published price book; the run is
    stored with the hash of its inputs and never changes."""
    return runs.create_run(current_session(), current_actor(), **data)


@blp.route("/runs/<int:run_id>")
@blp.response(200, schemas.RunSchema)
def get_run(run_id):
    """A run: totals, ratios, unvalued indicators with reasons, warnings, prices used."""
    return runs.get_run(current_session(), current_principal(), run_id)


@blp.route("/runs/<int:run_id>/results")
@blp.arguments(schemas.ResultQuerySchema, location="query")
@blp.response(200, page_of(schemas.ResultSchema))
def list_results(query, run_id):
    """Result rows: indicator x item x region x ecosystem type."""
    session = current_session()
    page, page_size = query.pop("page"), query.pop("page_size")
    stmt = runs.results_query(session, current_principal(), run_id, **query)
    return paginate(session, stmt, page, page_size)


@blp.route("/runs/<int:run_id>/publish", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.RunSchema)
def publish_run(run_id):
    """Make a run public (admin, verifier). Its numbers never change."""
    return runs.publish_run(current_session(), current_actor(), run_id)


@blp.route("/runs/<int:run_id>/reproduction")
@blp.response(200, schemas.ReproductionSchema)
def reproduce_run(run_id):
    """Recompute the run from its stored inputs and compare hash and numbers."""
    return runs.reproduce_run(current_session(), current_principal(), run_id)


@blp.route("/runs/<int:run_id>/report")
@blp.arguments(schemas.ReportQuerySchema, location="query")
@blp.response(200, schemas.ReportSchema)
def run_report(query, run_id):
    """A report table (by category, indicator, ecosystem type, region; detail, unvalued,
    prices) in 元, 万元 or 亿元; `region` narrows a prefecture run to one county."""
    return reporting.report(current_session(), current_principal(), run_id, by=query["by"],
                            unit=query["unit"], region_code=query.get("region"))


@blp.route("/runs/<int:run_id>/export")
@blp.arguments(schemas.ExportQuerySchema, location="query")
@blp.response(200, BINARY, content_type=XLSX_MIMETYPE,
              description="XLSX workbook (all tables and the chart) or, with format=csv, one "
                          "table as CSV (text/csv, UTF-8 with BOM)")
@blp.doc(responses={"200": {
    "description": "XLSX workbook, or with format=csv one table as CSV (UTF-8 with BOM)",
    "content": {XLSX_MIMETYPE: {"schema": BINARY}, "text/csv": {"schema": {"type": "string"}}}}})
def export_run(query, run_id):
    """Download the run as XLSX or one table as CSV."""
    data, filename = reporting.export(current_session(), current_principal(), run_id,
                                      fmt=query["format"], unit=query["unit"],
                                      table=query["table"], region_code=query.get("region"))
    mimetype = XLSX_MIMETYPE if query["format"] == "xlsx" else "text/csv"
    return file_response(data, filename, mimetype)


@blp.route("/runs/<int:run_id>/chart.png")
@blp.arguments(schemas.ChartQuerySchema, location="query")
@blp.response(200, BINARY, content_type="image/png", description="PNG chart of GEP composition")
def run_chart(query, run_id):
    """GEP composition by category and indicator (PNG)."""
    data = reporting.composition_png(current_session(), current_principal(),
                                     run_id, unit=query["unit"],
                                     region_code=query.get("region"))
    return Response(data, mimetype="image/png")


@blp.route("/runs/<int:run_id>/asset-value")
@blp.arguments(schemas.AssetQuerySchema, location="query")
@blp.response(200, schemas.AssetValueSchema)
def run_asset_value(query, run_id):
    """NPV of the run's GEP (or a category or indicator) as an expected annual flow, with a
    sensitivity table over the discount rates. Never added to GEP."""
    return runs.asset_value(current_session(), current_principal(), run_id,
                            discount_rates=query["rates"], horizon_years=query["horizon"],
                            growth=query["growth"], basis=query["basis"],
                            indicator_code=query.get("indicator"),
                            category=query.get("category"))


@blp.route("/products/<int:product_id>/asset-value")
@blp.authenticated
@blp.arguments(schemas.ProductValueQuerySchema, location="query")
@blp.response(200, schemas.ProductValuationSchema)
def product_asset_value(query, product_id):
    """NPV of one catalog product's annual flow (e.g. a forest carbon-sink parcel's
    sequestration over a crediting period) at a published book's unit price: a reference
    price per unit and per hectare over discount rates."""
    return runs.product_value(current_session(), current_principal(),
                              product_id, year=query["year"],
                              discount_rates=query["rates"], horizon_years=query["horizon"],
                              growth=query["growth"],
                              price_book_version=query.get("price_book_version"),
                              unit_price=query.get("unit_price"))


# --- comparisons -----------------------------------------------------------------------------


@blp.route("/comparisons")
@blp.arguments(schemas.ComparisonQuerySchema, location="query")
@blp.response(200, schemas.ComparisonSchema)
def compare(query):
    """Change from run `base` to run `other`: quantity, price, interaction and composition
    effects per row, indicator and category; the parts sum to the change."""
    return runs.compare_runs(current_session(), current_principal(), query["base"], query["other"],
                             basis=query["basis"])


@blp.route("/comparisons/chart.png")
@blp.arguments(schemas.ComparisonChartQuerySchema, location="query")
@blp.response(200, BINARY, content_type="image/png", description="PNG chart of the change")
def compare_chart(query):
    """Waterfall of the change between two runs and the change per indicator (PNG)."""
    data = reporting.change_png(current_session(), current_principal(),
                                query["base"], query["other"],
                                basis=query["basis"], unit=query["unit"])
    return Response(data, mimetype="image/png")


# --- the raster route ------------------------------------------------------------------------


@blp.route("/quantity-sets/rasters", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.RasterQuerySchema, location="query")
@blp.arguments(schemas.RasterFilesSchema, location="files")
@blp.response(201, schemas.QuantitySetSchema)
@blp.alt_response(200, schema=schemas.QuantitySetSchema,
                  description="identical inputs: the quantity set already stored")
@body_limit("RASTER_MAX_UPLOAD_BYTES")
def upload_rasters(query, files):
    """Raster route: grid factors as GeoTIFFs (a zip of files named by role, or one GeoTIFF),
    or InVEST outputs as per-cell quantities; regions from a zone raster, polygons (cell-centre
    rule) or one code; ecosystem types from land cover through a reclassification table.
    Nodata is masked; every problem is listed and nothing is stored. The body limit is
    ECOVALUE_RASTER_MAX_UPLOAD_BYTES (not the spreadsheet limit); `path` names server-side
    rasters inside ECOVALUE_RASTER_PATHS instead. Identical inputs return the stored set
    (200)."""
    import tempfile
    from pathlib import Path

    from flask import current_app
    from werkzeug.utils import secure_filename

    from valuation.services import rasters

    options = grid.GridOptions(
        npp_basis=query["npp_basis"], carbon_fraction=query["carbon_fraction"],
        latent_heat_kj_per_kg=query["latent_heat_kj_per_kg"], eer=query["eer"],
        rweq_z_m=query["rweq_z_m"], negative_water_balance=query["negative_water_balance"])
    with tempfile.TemporaryDirectory(prefix="ecovalue-upload-") as folder:
        saved = {}
        for field in ("file", "zones", "reclassification"):
            if files.get(field) is not None:
                # the upload's own name (made safe) tells a factor: npp.tif, R.tif ...
                name = secure_filename(files[field].filename or "") or field
                (Path(folder) / field).mkdir()
                saved[field] = Path(folder) / field / name
                files[field].save(saved[field])
        outcome = rasters.create_from_files(
            current_session(), current_actor(), region_code=query["region_code"],
            year=query["year"], upload=saved.get("file"),
            upload_name=files["file"].filename if files.get("file") else None,
            zones_file=saved.get("zones"),
            zones_name=files["zones"].filename if files.get("zones") else None,
            reclass_file=saved.get("reclassification"), path=query.get("path"),
            roots=rasters.allowed_roots(current_app.config.get("RASTER_PATHS")),
            limit_bytes=int(current_app.config["RASTER_MAX_UPLOAD_BYTES"]),
            indicators=query.get("indicators"), options=options,
            zone_field=query["zone_field"], zone_layer=query.get("zone_layer"),
            zone_code=query.get("zone_code"),
            reclassification=query.get("reclassification"),
            ecosystem_type=query.get("ecosystem_type"), resampling=query.get("resampling"),
            quantity={"indicator": query.get("quantity_indicator"),
                      "unit": query.get("quantity_unit"), "basis": query["quantity_basis"],
                      "item": query.get("quantity_item"), "file": query.get("quantity_file")},
            note=query.get("note"))
    return outcome.quantity_set, 200 if outcome.existing else 201
