"""Request validation and response shapes of the valuation API (marshmallow 4)."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate

from ecovalue.api import Integer, PageQuerySchema
from valuation.registry import CATEGORIES, CODE_RE, ECOSYSTEM_TYPES
from valuation.reports import TABLES, UNIT_CHOICES

REGION_CODE = validate.Regexp(r"^\d{6}(\d{3}(\d{3})?)?\Z", error="6, 9 or 12 digits")
YEAR = validate.Range(min=1950, max=2100)
VERSION = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,39}\Z",
                          error="1-40 letters, digits, '.', '_' or '-'")
INDICATOR_CODE = validate.Regexp(r"^[A-Za-z]-[A-Za-z0-9\-]{1,25}\Z",
                                 error="an indicator code such as R-WCON")
SHORT = validate.Length(max=200)
TEXT = validate.Length(max=1000)
UNIT_TEXT = validate.Length(min=1, max=40)


class _Finite(ma.fields.Float):
    def __init__(self, **kwargs):
        kwargs.setdefault("allow_nan", False)
        super().__init__(**kwargs)


# --- indicators ------------------------------------------------------------------------------


class ParameterSpecSchema(ma.Schema):
    name = ma.fields.String(required=True)
    unit = ma.fields.String(required=True, metadata={
        "description": "unit of the parameter; {Q} stands for the quantity's unit"})
    kind = ma.fields.String(required=True, metadata={
        "description": "price (index-adjusted) or coefficient (never adjusted)"})
    description = ma.fields.String()


class TermSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Regexp(
        r"^[a-z][a-z0-9_]{0,29}\Z", error="lower-case letters, digits, _"))
    formula = ma.fields.String(required=True, validate=validate.Length(min=1, max=500),
                               metadata={"description": "numbers, Q, parameter names, "
                                         "name[item], + - * / and parentheses"})


class IndicatorSchema(ma.Schema):
    code = ma.fields.String(required=True)
    category = ma.fields.String(required=True)
    name_zh = ma.fields.String(required=True)
    name_en = ma.fields.String(required=True)
    quantity_units = ma.fields.List(ma.fields.String(), required=True)
    items = ma.fields.List(ma.fields.String(), allow_none=True, metadata={
        "description": "allowed items; null = open vocabulary (products, sites); [] = none"})
    money_quantity = ma.fields.Boolean(required=True, metadata={
        "description": "a quantity in yuan (output value, revenue) is its own value"})
    allow_negative = ma.fields.Boolean(required=True)
    default_enabled = ma.fields.Boolean(required=True)
    optional = ma.fields.Boolean(required=True)
    double_counts_with = ma.fields.List(ma.fields.String(), required=True)
    grid = ma.fields.Boolean(required=True, metadata={"description": "computed by the grid "
                                                                     "route"})
    physical_quantity = ma.fields.String()
    valuation_method = ma.fields.String()
    value_formula_text = ma.fields.String()
    status = ma.fields.String()
    source = ma.fields.String()
    note = ma.fields.String()
    custom = ma.fields.Boolean(required=True)
    active = ma.fields.Boolean(required=True)
    version = Integer(required=True)
    terms = ma.fields.List(ma.fields.Nested(TermSchema), required=True)
    parameters = ma.fields.Dict(keys=ma.fields.String(),
                                values=ma.fields.Nested(ParameterSpecSchema), required=True)


class IndicatorQuerySchema(ma.Schema):
    include_inactive = ma.fields.Boolean(load_default=False)


class ParameterInSchema(ma.Schema):
    unit = ma.fields.String(required=True, validate=UNIT_TEXT)
    kind = ma.fields.String(load_default="price", validate=validate.OneOf(
        ("price", "coefficient")))
    description = ma.fields.String(load_default="", validate=SHORT)


class CustomIndicatorSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=validate.Regexp(
        CODE_RE, error="P-, R- or C- (by category), then 2-12 capitals or digits"))
    category = ma.fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    name_zh = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    quantity_units = ma.fields.List(ma.fields.String(validate=UNIT_TEXT), required=True,
                                    validate=validate.Length(min=1, max=5))
    formula = ma.fields.String(validate=validate.Length(min=1, max=500), metadata={
        "description": "one value formula (or give `terms`), e.g. Q * noise_price"})
    terms = ma.fields.List(ma.fields.Nested(TermSchema), validate=validate.Length(min=1, max=10))
    parameters = ma.fields.Dict(keys=ma.fields.String(validate=validate.Regexp(
        r"^[A-Za-z_][A-Za-z0-9_]{0,59}(\[item\])?\Z", error="name or name[item]")),
        values=ma.fields.Nested(ParameterInSchema), load_default=dict,
        validate=validate.Length(max=30))
    items = ma.fields.List(ma.fields.String(validate=validate.Length(min=1, max=40)),
                           allow_none=True, load_default=list,
                           validate=validate.Length(max=100))
    money_quantity = ma.fields.Boolean(load_default=False)
    allow_negative = ma.fields.Boolean(load_default=False)
    default_enabled = ma.fields.Boolean(load_default=True)
    double_counts_with = ma.fields.List(ma.fields.String(validate=INDICATOR_CODE),
                                        load_default=list, validate=validate.Length(max=20))
    physical_quantity = ma.fields.String(load_default="", validate=SHORT)
    valuation_method = ma.fields.String(load_default="", validate=SHORT)
    source = ma.fields.String(load_default="", validate=TEXT)
    note = ma.fields.String(load_default="", validate=TEXT)

    @ma.validates_schema
    def _formula_or_terms(self, data, **kwargs):
        if bool(data.get("formula")) == bool(data.get("terms")):
            raise ma.ValidationError("give either formula or terms", "formula")


class CustomIndicatorPatchSchema(ma.Schema):
    name_zh = ma.fields.String(validate=validate.Length(min=1, max=100))
    name_en = ma.fields.String(validate=validate.Length(min=1, max=200))
    quantity_units = ma.fields.List(ma.fields.String(validate=UNIT_TEXT),
                                    validate=validate.Length(min=1, max=5))
    formula = ma.fields.String(validate=validate.Length(min=1, max=500))
    terms = ma.fields.List(ma.fields.Nested(TermSchema), validate=validate.Length(min=1, max=10))
    parameters = ma.fields.Dict(keys=ma.fields.String(validate=validate.Regexp(
        r"^[A-Za-z_][A-Za-z0-9_]{0,59}(\[item\])?\Z", error="name or name[item]")),
        values=ma.fields.Nested(ParameterInSchema), validate=validate.Length(max=30))
    items = ma.fields.List(ma.fields.String(validate=validate.Length(min=1, max=40)),
                           allow_none=True, validate=validate.Length(max=100))
    money_quantity = ma.fields.Boolean()
    allow_negative = ma.fields.Boolean()
    default_enabled = ma.fields.Boolean()
    double_counts_with = ma.fields.List(ma.fields.String(validate=INDICATOR_CODE),
                                        validate=validate.Length(max=20))
    physical_quantity = ma.fields.String(validate=SHORT)
    valuation_method = ma.fields.String(validate=SHORT)
    source = ma.fields.String(validate=TEXT)
    note = ma.fields.String(validate=TEXT)
    active = ma.fields.Boolean(metadata={"description": "false: no longer offered to runs"})

    @ma.validates_schema
    def _not_both(self, data, **kwargs):
        if data.get("formula") and data.get("terms"):
            raise ma.ValidationError("give either formula or terms", "formula")
        if not data:
            raise ma.ValidationError("nothing to change")


# --- price books -----------------------------------------------------------------------------


class PriceEntrySchema(ma.Schema):
    parameter = ma.fields.String(required=True, validate=validate.Length(min=1, max=100),
                                 metadata={"description": "reservoir_cost, abatement_cost.SO2 "
                                                          "(per item), agri_price.rice ..."})
    value = _Finite(required=True)
    unit = ma.fields.String(required=True, validate=UNIT_TEXT,
                            metadata={"description": "e.g. yuan/m3, yuan/tC, t/m3, 1"})
    price_year = Integer(allow_none=True, load_default=None, validate=YEAR,
                                   metadata={"description": "year whose prices value is in "
                                                            "(required for prices)"})
    index_series = ma.fields.String(allow_none=True, load_default=None,
                                    validate=validate.Length(max=40), metadata={
                                        "description": "series adjusting it to the accounting "
                                                       "year, e.g. CPI-CN-1978; null = none"})
    confirmation = ma.fields.String(load_default="to-confirm",
                                    validate=validate.OneOf(("to-confirm", "confirmed")))
    source = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))


class PriceBookSchema(ma.Schema):
    id = Integer(required=True)
    version = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    based_on_version = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    content_hash = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    created_by = ma.fields.String(required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True)
    published_by = ma.fields.String(allow_none=True)
    entry_count = ma.fields.Function(lambda book: len(book.entries))


class PriceBookDetailSchema(PriceBookSchema):
    entries = ma.fields.List(ma.fields.Nested(PriceEntrySchema), required=True)


class PriceBookCreateSchema(ma.Schema):
    version = ma.fields.String(required=True, validate=VERSION)
    title = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    based_on = ma.fields.String(allow_none=True, load_default=None, validate=VERSION,
                                metadata={"description": "copy the entries of this version, "
                                                         "e.g. default"})
    note = ma.fields.String(allow_none=True, load_default=None, validate=TEXT)


class PriceEntriesSchema(ma.Schema):
    entries = ma.fields.List(ma.fields.Nested(PriceEntrySchema), required=True,
                             validate=validate.Length(min=1, max=500))


# --- price indices ---------------------------------------------------------------------------


class IndexValueSchema(ma.Schema):
    year = Integer(required=True, validate=YEAR)
    value = _Finite(required=True)
    confirmation = ma.fields.String(load_default="to-confirm",
                                    validate=validate.OneOf(("to-confirm", "confirmed")))
    note = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))


class IndexSeriesSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name_zh = ma.fields.String(required=True)
    name_en = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    base = ma.fields.String(required=True)
    source = ma.fields.String(allow_none=True)
    confirmation = ma.fields.String(required=True)
    values = ma.fields.List(ma.fields.Nested(IndexValueSchema), required=True)


class IndexSeriesInSchema(ma.Schema):
    name_zh = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    base = ma.fields.String(required=True, validate=validate.Length(min=1, max=40))
    source = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))
    confirmation = ma.fields.String(load_default="to-confirm",
                                    validate=validate.OneOf(("to-confirm", "confirmed")))


class IndexValuesInSchema(ma.Schema):
    values = ma.fields.List(ma.fields.Nested(IndexValueSchema), required=True,
                            validate=validate.Length(min=1, max=300))


# --- quantities ------------------------------------------------------------------------------


class QuantityRowInSchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    year = Integer(allow_none=True, load_default=None, validate=YEAR)
    indicator = ma.fields.String(required=True, validate=validate.Length(min=1, max=100),
                                 metadata={"description": "code (R-WCON) or name (水源涵养)"})
    item = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=40))
    ecosystem_type = ma.fields.String(allow_none=True, load_default=None,
                                      validate=validate.Length(max=20), metadata={
                                          "description": ", ".join(ECOSYSTEM_TYPES)})
    quantity = _Finite(allow_none=True, required=True, metadata={
        "description": "null = not available (listed as unvalued; missing is not zero)"})
    unit = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=40), metadata={"description": "e.g. 亿m³, 万t, 万tCO2, 亿kWh, 万人次, 万元"})
    origin = ma.fields.String(load_default="local", validate=validate.OneOf(
        ("local", "outside")), metadata={"description": "outside: produced by ecosystems "
                                                        "outside the region (subtracted)"})
    note = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))


class QuantitySetCreateSchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    year = Integer(required=True, validate=YEAR)
    note = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))
    rows = ma.fields.List(ma.fields.Nested(QuantityRowInSchema), required=True,
                          validate=validate.Length(min=1, max=10000))


class UploadQuerySchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    year = Integer(required=True, validate=YEAR)
    note = ma.fields.String(load_default=None, validate=validate.Length(max=500))


class FileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8 or GBK) or XLSX"})


class GridQuerySchema(UploadQuerySchema):
    indicators = ma.fields.List(ma.fields.String(validate=validate.OneOf(
        ("R-WCON", "R-SOIL", "R-SAND", "R-CARB", "R-O2", "R-CLIM", "R-AIR", "R-WQ"))),
        metadata={"description": "default: every grid indicator the columns allow"})
    npp_basis = ma.fields.String(load_default="dry_matter",
                                 validate=validate.OneOf(("dry_matter", "carbon")))
    carbon_fraction = _Finite(load_default=0.45, validate=validate.Range(min=0.01, max=1))
    latent_heat_kj_per_kg = _Finite(load_default=2260.0, validate=validate.Range(min=1,
                                                                                  max=10000))
    eer = _Finite(load_default=3.0, validate=validate.Range(min=0.1, max=20))
    rweq_z_m = _Finite(load_default=50.0, validate=validate.Range(min=1, max=10000))
    negative_water_balance = ma.fields.String(load_default="keep",
                                              validate=validate.OneOf(("keep", "zero")))


class GridFilesSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "one row per cell (CSV or XLSX)"})
    options = Upload(metadata={"description": "optional JSON: {\"removal_rates\": {eco: "
                                              "{pollutant: t/(km2 a)}}, \"emissions\": {region: "
                                              "{pollutant: t/a}}}"})


class QuantitySetQuerySchema(PageQuerySchema):
    region_code = ma.fields.String(validate=REGION_CODE)
    year = Integer(validate=YEAR)


class QuantitySetSchema(ma.Schema):
    id = Integer(required=True)
    region_code = ma.fields.String(required=True)
    year = Integer(required=True)
    source = ma.fields.String(required=True)
    filename = ma.fields.String(allow_none=True)
    file_sha256 = ma.fields.String(allow_none=True)
    content_hash = ma.fields.String(required=True)
    row_count = Integer(required=True)
    note = ma.fields.String(allow_none=True)
    warnings = ma.fields.List(ma.fields.String(), required=True)
    grid = ma.fields.Dict(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    created_by = ma.fields.String(required=True)


class QuantityRowSchema(ma.Schema):
    id = Integer(required=True)
    source_row = Integer(required=True)
    region_code = ma.fields.String(required=True)
    indicator_code = ma.fields.String(required=True)
    item = ma.fields.String(required=True)
    ecosystem_type = ma.fields.String(required=True)
    origin = ma.fields.String(required=True)
    quantity = ma.fields.Float(allow_none=True)
    quantity_unit = ma.fields.String(allow_none=True)
    money = ma.fields.Boolean(required=True)
    reported_quantity = ma.fields.Float(allow_none=True)
    reported_unit = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)


class CatalogQuantitiesSchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    year = Integer(required=True, validate=YEAR)
    include_registered = ma.fields.Boolean(load_default=False, metadata={
        "description": "also use registered (not yet verified) products"})
    note = ma.fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=500))


# --- runs ------------------------------------------------------------------------------------


class AmountSchema(ma.Schema):
    value = _Finite(required=True)
    unit = ma.fields.String(required=True, validate=UNIT_TEXT)


class ContextInSchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    gdp = ma.fields.Nested(AmountSchema, allow_none=True, load_default=None,
                           metadata={"description": "e.g. {value: 98.6, unit: 亿元}"})
    area = ma.fields.Nested(AmountSchema, allow_none=True, load_default=None,
                            metadata={"description": "e.g. {value: 3006, unit: km2}"})
    population = ma.fields.Nested(AmountSchema, allow_none=True, load_default=None,
                                  metadata={"description": "e.g. {value: 32.1, unit: 万人}"})


class RunOptionsSchema(ma.Schema):
    enable = ma.fields.List(ma.fields.String(validate=INDICATOR_CODE), load_default=list,
                            validate=validate.Length(max=50),
                            metadata={"description": "optional indicators to switch on (R-O2)"})
    disable = ma.fields.List(ma.fields.String(validate=INDICATOR_CODE), load_default=list,
                             validate=validate.Length(max=50))
    allow_double_count = ma.fields.List(ma.fields.String(validate=validate.Regexp(
        r"^[A-Za-z]-[A-Za-z0-9\-]{1,25}\+[A-Za-z]-[A-Za-z0-9\-]{1,25}\Z",
        error="a pair such as R-CARB+R-O2")), load_default=list,
        validate=validate.Length(max=20),
        metadata={"description": "accept an overlap explicitly, e.g. R-CARB+R-O2"})
    deflator_series = ma.fields.String(load_default="CPI-CN-1978",
                                       validate=validate.Length(min=1, max=40))
    output_value_basis = ma.fields.String(load_default="gross",
                                          validate=validate.OneOf(("gross", "net")))


class RunCreateSchema(ma.Schema):
    region_code = ma.fields.String(required=True, validate=REGION_CODE)
    year = Integer(required=True, validate=YEAR)
    quantity_set_ids = ma.fields.List(Integer(validate=validate.Range(
        min=1, max=2**62)), required=True, validate=validate.Length(min=1, max=50))
    price_book_version = ma.fields.String(allow_none=True, load_default=None,
                                          validate=VERSION,
                                          metadata={"description": "default: the default book"})
    base_year = Integer(allow_none=True, load_default=None, validate=YEAR,
                                  metadata={"description": "constant-price base year "
                                                           "(default: the accounting year)"})
    options = ma.fields.Nested(RunOptionsSchema, load_default=dict)
    context = ma.fields.List(ma.fields.Nested(ContextInSchema), load_default=list,
                             validate=validate.Length(max=50))
    title = ma.fields.String(allow_none=True, load_default=None, validate=SHORT)


class RunQuerySchema(PageQuerySchema):
    region_code = ma.fields.String(validate=REGION_CODE)
    year = Integer(validate=YEAR)
    status = ma.fields.String(validate=validate.OneOf(("finished", "published")))


class RunSummarySchema(ma.Schema):
    id = Integer(required=True)
    title = ma.fields.String(required=True)
    region_code = ma.fields.String(required=True)
    year = Integer(required=True)
    base_year = Integer(required=True)
    status = ma.fields.String(required=True)
    price_book_version = ma.fields.Function(lambda run: run.price_book.version)
    input_hash = ma.fields.String(required=True)
    engine_version = ma.fields.String(required=True)
    gep_current = ma.fields.Float(required=True, metadata={"description": "yuan"})
    gep_constant = ma.fields.Float(required=True, metadata={"description": "yuan, base-year "
                                                                           "prices"})
    quantity_set_ids = ma.fields.Function(lambda run: [s.id for s in run.quantity_sets])
    created_at = ma.fields.AwareDateTime(required=True)
    created_by = ma.fields.String(required=True)
    published_at = ma.fields.AwareDateTime(allow_none=True)
    published_by = ma.fields.String(allow_none=True)


class UnvaluedSchema(ma.Schema):
    kind = ma.fields.String(required=True, metadata={
        "description": "no-quantity, not-available, disabled, price"})
    indicator_code = ma.fields.String(required=True)
    item = ma.fields.String(allow_none=True)
    region_code = ma.fields.String(allow_none=True)
    ecosystem_type = ma.fields.String(allow_none=True)
    term = ma.fields.String(allow_none=True)
    quantity = ma.fields.Float(allow_none=True)
    quantity_unit = ma.fields.String(allow_none=True)
    reason = ma.fields.String(required=True)


class RunSchema(RunSummarySchema):
    options = ma.fields.Dict(required=True)
    context = ma.fields.List(ma.fields.Dict(), required=True)
    summary = ma.fields.Dict(required=True, metadata={
        "description": "gep, by_category, by_ecosystem_type, by_region, by_indicator "
                       "(yuan, current and constant)"})
    ratios = ma.fields.Dict(required=True)
    unvalued = ma.fields.List(ma.fields.Nested(UnvaluedSchema), required=True)
    warnings = ma.fields.List(ma.fields.String(), required=True)
    prices = ma.fields.Dict(required=True, metadata={
        "description": "each parameter used: book value and unit, unit factor, price year, "
                       "index series, adjustment factors, adjusted values"})
    enabled_indicators = ma.fields.Function(lambda run: run.registry_snapshot["enabled"])


class ResultSchema(ma.Schema):
    id = Integer(required=True)
    indicator_code = ma.fields.String(required=True)
    category = ma.fields.String(required=True)
    item = ma.fields.String(required=True)
    region_code = ma.fields.String(required=True)
    ecosystem_type = ma.fields.String(required=True)
    quantity = ma.fields.Float(required=True)
    quantity_unit = ma.fields.String(required=True)
    quantity_gross = ma.fields.Float(required=True)
    quantity_outside = ma.fields.Float(required=True)
    unit_price = ma.fields.Float(allow_none=True, metadata={"description": "yuan per quantity "
                                                                          "unit, current"})
    unit_price_constant = ma.fields.Float(allow_none=True)
    adjustment_factor = ma.fields.Float(allow_none=True)
    value_reference = ma.fields.Float(required=True)
    value_current = ma.fields.Float(required=True)
    value_constant = ma.fields.Float(required=True)
    complete = ma.fields.Boolean(required=True)
    terms = ma.fields.List(ma.fields.String(), required=True)
    parameters = ma.fields.List(ma.fields.String(), required=True)


class ResultQuerySchema(PageQuerySchema):
    indicator_code = ma.fields.String(validate=INDICATOR_CODE)
    region_code = ma.fields.String(validate=REGION_CODE)
    ecosystem_type = ma.fields.String(validate=validate.OneOf(ECOSYSTEM_TYPES))


class ReproductionSchema(ma.Schema):
    run_id = Integer(required=True)
    identical = ma.fields.Boolean(required=True)
    stored_input_hash = ma.fields.String(required=True)
    recomputed_input_hash = ma.fields.String(required=True)
    stored_gep_current = ma.fields.Float(required=True)
    recomputed_gep_current = ma.fields.Float(required=True)
    results = Integer(required=True)
    max_abs_difference = ma.fields.Float(required=True)


class ReportQuerySchema(ma.Schema):
    by = ma.fields.String(load_default="indicator", validate=validate.OneOf(TABLES))
    unit = ma.fields.String(load_default="万元", validate=validate.OneOf(UNIT_CHOICES),
                          metadata={"description": "元, 万元, 亿元 (or yuan, wan, yi)"})
    region = ma.fields.String(validate=REGION_CODE, metadata={
        "description": "a county (or any region) inside the run's scope"})


class ReportSchema(ma.Schema):
    run_id = Integer(required=True)
    region_code = ma.fields.String(required=True)
    year = Integer(required=True)
    base_year = Integer(required=True)
    table = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    gep_current = ma.fields.Float(required=True)
    gep_constant = ma.fields.Float(required=True)
    columns = ma.fields.List(ma.fields.String(), required=True)
    rows = ma.fields.List(ma.fields.Dict(), required=True)
    warnings = ma.fields.List(ma.fields.String(), required=True)


class ExportQuerySchema(ma.Schema):
    format = ma.fields.String(load_default="xlsx", validate=validate.OneOf(("xlsx", "csv")))
    unit = ma.fields.String(load_default="万元", validate=validate.OneOf(UNIT_CHOICES),
                          metadata={"description": "元, 万元, 亿元 (or yuan, wan, yi)"})
    table = ma.fields.String(load_default="indicator", validate=validate.OneOf(TABLES),
                             metadata={"description": "CSV only: which table"})
    region = ma.fields.String(validate=REGION_CODE)


class ChartQuerySchema(ma.Schema):
    unit = ma.fields.String(load_default="亿元", validate=validate.OneOf(UNIT_CHOICES),
                          metadata={"description": "元, 万元, 亿元 (or yuan, wan, yi)"})
    region = ma.fields.String(validate=REGION_CODE)


class ComparisonQuerySchema(ma.Schema):
    base = Integer(required=True, validate=validate.Range(min=1, max=2**62))
    other = Integer(required=True, validate=validate.Range(min=1, max=2**62))
    basis = ma.fields.String(load_default="current", validate=validate.OneOf(("current",
                                                                             "constant")))


class ComparisonChartQuerySchema(ComparisonQuerySchema):
    unit = ma.fields.String(load_default="亿元", validate=validate.OneOf(UNIT_CHOICES),
                          metadata={"description": "元, 万元, 亿元 (or yuan, wan, yi)"})


class EffectsSchema(ma.Schema):
    value_0 = ma.fields.Float(required=True)
    value_1 = ma.fields.Float(required=True)
    change = ma.fields.Float(required=True)
    quantity_effect = ma.fields.Float(required=True)
    price_effect = ma.fields.Float(required=True)
    interaction = ma.fields.Float(required=True)
    composition = ma.fields.Float(required=True)


class CategoryEffectsSchema(EffectsSchema):
    category = ma.fields.String(required=True)


class IndicatorEffectsSchema(CategoryEffectsSchema):
    indicator_code = ma.fields.String(required=True)


class ItemEffectsSchema(IndicatorEffectsSchema):
    item = ma.fields.String(required=True, metadata={
        "description": "item or sub-item of the indicator (sediment, lake, domestic ...); "
                       "'(no item)' for its rows without one; the items sum to by_indicator"})


class ComparisonSchema(ma.Schema):
    base_run_id = Integer(required=True)
    other_run_id = Integer(required=True)
    region_code = ma.fields.String(required=True)
    base_year = Integer(required=True)
    other_year = Integer(required=True)
    basis = ma.fields.String(required=True)
    method = ma.fields.String(required=True)
    gep_0 = ma.fields.Float(required=True)
    gep_1 = ma.fields.Float(required=True)
    totals = ma.fields.Nested(EffectsSchema, required=True)
    by_category = ma.fields.List(ma.fields.Nested(CategoryEffectsSchema), required=True)
    by_indicator = ma.fields.List(ma.fields.Nested(IndicatorEffectsSchema), required=True)
    by_item = ma.fields.List(ma.fields.Nested(ItemEffectsSchema), required=True)
    rows = ma.fields.List(ma.fields.Dict(), required=True)
    notes = ma.fields.List(ma.fields.String(), required=True)


class AssetQuerySchema(ma.Schema):
    rates = ma.fields.List(_Finite(validate=validate.Range(min=-0.5, max=1)),
                           load_default=lambda: [0.03, 0.05, 0.08],
                           validate=validate.Length(min=2, max=10), metadata={
                               "description": "discount rates as fractions (0.05 = 5 %), "
                                             "at least two"})
    horizon = Integer(load_default=30, validate=validate.Range(min=1, max=200))
    growth = _Finite(load_default=0.0, validate=validate.Range(min=-0.5, max=1))
    basis = ma.fields.String(load_default="constant", validate=validate.OneOf(("current",
                                                                              "constant")))
    indicator = ma.fields.String(validate=INDICATOR_CODE)
    category = ma.fields.String(validate=validate.OneOf(CATEGORIES))


class SensitivityRowSchema(ma.Schema):
    discount_rate = ma.fields.Float(required=True)
    growth = ma.fields.Float(required=True)
    npv = ma.fields.Float(required=True)
    years_of_flow = ma.fields.Float(allow_none=True)


class AssetValueSchema(ma.Schema):
    run_id = Integer(required=True)
    scope = ma.fields.String(required=True)
    basis = ma.fields.String(required=True)
    annual_flow_yuan = ma.fields.Float(required=True)
    horizon_years = Integer(required=True)
    growth = ma.fields.Float(required=True)
    timing = ma.fields.String(required=True)
    note = ma.fields.String(required=True)
    sensitivity = ma.fields.List(ma.fields.Nested(SensitivityRowSchema), required=True)


class ProductValueQuerySchema(ma.Schema):
    year = Integer(required=True, validate=YEAR, metadata={
        "description": "accounting year: the sequestration record and the price year"})
    rates = ma.fields.List(_Finite(validate=validate.Range(min=-0.5, max=1)),
                           load_default=lambda: [0.03, 0.05, 0.08],
                           validate=validate.Length(min=2, max=10))
    horizon = Integer(load_default=20, validate=validate.Range(min=1, max=200),
                                metadata={"description": "crediting period, years"})
    growth = _Finite(load_default=0.0, validate=validate.Range(min=-0.5, max=1))
    price_book_version = ma.fields.String(validate=VERSION)
    unit_price = _Finite(validate=validate.Range(min=0, max=1e9), metadata={
        "description": "override the book price (yuan per quantity unit)"})


class ProductValuationRowSchema(ma.Schema):
    discount_rate = ma.fields.Float(required=True)
    npv = ma.fields.Float(required=True)
    npv_per_unit = ma.fields.Float(allow_none=True)
    npv_per_ha = ma.fields.Float(allow_none=True)


class ProductValuationSchema(ma.Schema):
    product_id = Integer(required=True)
    product_name = ma.fields.String(required=True)
    indicator_code = ma.fields.String(required=True)
    year = Integer(required=True)
    annual_quantity = ma.fields.Float(required=True)
    quantity_unit = ma.fields.String(required=True)
    quantity_source = ma.fields.String(required=True)
    unit_price = ma.fields.Float(required=True)
    unit_price_source = ma.fields.String(required=True)
    annual_value = ma.fields.Float(required=True)
    horizon_years = Integer(required=True)
    growth = ma.fields.Float(required=True)
    area_ha = ma.fields.Float(allow_none=True)
    valuations = ma.fields.List(ma.fields.Nested(ProductValuationRowSchema), required=True)
    note = ma.fields.String(required=True)


# --- the raster route (valuation/raster.py) --------------------------------------------------


class RasterQuerySchema(GridQuerySchema):
    path = ma.fields.String(validate=validate.Length(min=1, max=1000), metadata={
        "description": "instead of an upload: a server-side folder, zip or GeoTIFF inside a "
                       "folder listed in ECOVALUE_RASTER_PATHS"})
    zone_field = ma.fields.String(load_default="region_code", validate=validate.Length(
        min=1, max=100), metadata={"description": "the polygons' attribute holding the region "
                                                  "code (zones.geojson/.gpkg/.shp)"})
    zone_layer = ma.fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "the layer of the zone polygons' file holding the regions, for a "
                       "GeoPackage of several layers (a file of one layer needs none)"})
    zone_code = ma.fields.String(validate=REGION_CODE, metadata={
        "description": "one region for every cell (no zone raster or polygons)"})
    reclassification = ma.fields.String(validate=validate.OneOf(("gbt21010", "esa-cci")),
                                        metadata={"description": "a shipped reclassification "
                                                  "table (else reclassification.csv)"})
    ecosystem_type = ma.fields.String(validate=validate.Length(min=1, max=20), metadata={
        "description": "one ecosystem type for every cell (no land cover)"})
    resampling = ma.fields.String(validate=validate.OneOf((
        "nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "max",
        "min", "med", "q1", "q3", "sum")), metadata={
        "description": "warp rasters of another CRS, transform or shape onto the grid with "
                       "this method (default: refuse them)"})
    quantity_indicator = ma.fields.String(validate=validate.Length(min=1, max=30), metadata={
        "description": "the upload is (or holds) a per-cell quantity of this indicator, e.g. "
                       "R-SOIL for InVEST's avoided_erosion.tif"})
    quantity_unit = ma.fields.String(validate=validate.Length(min=1, max=20), metadata={
        "description": "unit of the per-cell quantity, e.g. t, m3, tC"})
    quantity_basis = ma.fields.String(load_default="per_cell", validate=validate.OneOf(
        ("per_cell", "per_m2", "per_ha", "per_km2", "depth_mm")), metadata={
        "description": "per_cell (a total per pixel), a density per m2/ha/km2, or depth_mm "
                       "(water depth: x cell area = m3)"})
    quantity_item = ma.fields.String(validate=validate.Length(max=40))
    quantity_file = ma.fields.String(validate=validate.Length(min=1, max=255), metadata={
        "description": "the quantity raster's file name inside the zip (default: the only "
                       "GeoTIFF)"})


class RasterFilesSchema(ma.Schema):
    file = Upload(metadata={"description": "a GeoTIFF, or a zip of GeoTIFFs named by role: "
                                           "<factor>.tif (rainfall_erosivity.tif or R.tif, "
                                           "...), land_cover.tif, zones.tif or zones.geojson/"
                                           ".gpkg/.shp, reclassification.csv"})
    zones = Upload(metadata={"description": "regions: polygons (GeoJSON, GeoPackage, a zip of a "
                                            "Shapefile) or a zone raster (GeoTIFF)"})
    reclassification = Upload(metadata={"description": "CSV: code, ecosystem_type"})
