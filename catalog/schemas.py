"""Request and response shapes of the catalog API.

Personal data: a household's ID-card number and bank account are accepted in requests and never
returned; responses carry only the masked forms. Product responses name a household holder with a
masked name (王*明); public responses omit a household holder's name altogether.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from catalog import lifecycle
from catalog.identifiers import mask_name
from catalog.models import (
    DEVELOPMENT_STATUSES,
    IMPORT_KINDS,
    MONITORING_METHODS,
    PARTY_KINDS,
    PRODUCT_CATEGORIES,
    PRODUCT_STATUSES,
    REGION_LEVELS,
    REGION_SOURCES,
    RIGHTS_TYPES,
)
from catalog.vocabulary import VOCABULARIES
from ecovalue.api import Integer, PageQuerySchema, free_form, sort_field
from ecovalue.db import INT64_MAX

REGION_CODE = validate.Regexp(r"^\d{6}(\d{3}){0,2}$", error="6, 9 or 12 digits")
COUNTY_CODE = validate.Regexp(r"^\d{6}$", error="a 6-digit county code")
_TEXT = {"validate": validate.Length(max=200)}


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class InputSchema(ma.Schema):
    """Refuses NUL characters anywhere in the input: no text column can store them
    (PostgreSQL rejects them outright), so they are bad input, not a server error."""

    @ma.pre_load
    def _refuse_nul(self, data, **_kwargs):
        items = data.to_dict(flat=False) if hasattr(data, "to_dict") else data
        if isinstance(items, dict) and _has_nul(items):
            raise ma.ValidationError("text must not contain NUL characters")
        return data


class StrictSchema(InputSchema):
    class Meta:
        unknown = ma.RAISE


# --- vocabularies ----------------------------------------------------------------------------


class ProductTypeSchema(ma.Schema):
    code = fields.String(required=True)
    category = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    indicator_code = fields.String(required=True, metadata={
        "description": "GEP indicator (valuation/reference/gep_indicators.csv) it feeds"})
    quantity_unit = fields.String(required=True, metadata={
        "description": "reference unit: a quantity must have this unit's dimension"})
    description = fields.String(required=True)


class SynonymSchema(ma.Schema):
    vocabulary = fields.String(required=True, metadata={
        "description": "type, category, rights_type, development_status, metric or method"})
    term = fields.String(required=True, metadata={"description": "the spelling (同义词)"})
    code = fields.String(required=True, metadata={"description": "the code it means"})
    note = fields.String(allow_none=True)
    source = fields.String(required=True, metadata={
        "description": "reference (shipped), registered (added by an admin), or existing "
                       "(the spelling was already understood: nothing added)"})


class SynonymQuerySchema(InputSchema):
    vocabulary = fields.String(validate=validate.OneOf(VOCABULARIES), metadata={
        "description": "only this vocabulary's synonyms"})


class SynonymCreateSchema(StrictSchema):
    vocabulary = fields.String(required=True, validate=validate.OneOf(VOCABULARIES))
    term = fields.String(required=True, validate=validate.Length(min=1, max=100))
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    note = fields.String(allow_none=True, validate=validate.Length(max=300))


class MetricSchema(ma.Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    unit = fields.String(required=True, metadata={
        "description": "reference unit, or `type` for the product type's quantity unit"})
    flow = fields.Boolean(required=True)
    allows_negative = fields.Boolean(required=True)
    description = fields.String(required=True)


# --- regions -----------------------------------------------------------------------------------


class RegionSchema(ma.Schema):
    code = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(REGION_LEVELS))
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    parent_code = fields.String(allow_none=True)
    pilot = fields.String(allow_none=True)
    source = fields.String(required=True, validate=validate.OneOf(REGION_SOURCES), metadata={
        "description": "reference (national list), registered, or demo (made-up code)"})


class RegionTreeSchema(ma.Schema):
    region = fields.Nested(RegionSchema, required=True)
    children = fields.List(fields.Nested(lambda: RegionTreeSchema()), required=True)


class RegionQuerySchema(InputSchema, PageQuerySchema):
    level = fields.String(validate=validate.OneOf(REGION_LEVELS))
    parent = fields.String(validate=REGION_CODE)
    county = fields.String(validate=COUNTY_CODE)
    q = fields.String(validate=validate.Length(min=1, max=100))


class RegionTreeQuerySchema(InputSchema):
    root = fields.String(load_default="522300", validate=REGION_CODE)


class RegionCreateSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(
        r"^\d{6}(\d{3}){0,2}$", error="a township code has 9 digits, a village code 12 (a "
        "prefecture or county newer than the national table: 6 digits, admins only)"),
        metadata={"description": "GB/T 2260 code: township 9 digits, village 12; admins also "
                                 "6 (a prefecture or county the national table lacks)"})
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(allow_none=True, validate=validate.Length(max=100))


class RegionUpdateSchema(StrictSchema):
    name_zh = fields.String(validate=validate.Length(min=1, max=100))
    name_en = fields.String(allow_none=True, validate=validate.Length(max=100))


# --- parties -----------------------------------------------------------------------------------


class PartySchema(ma.Schema):
    """A party as authenticated callers see it: personal data only masked."""

    id = Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    region_code = fields.String(required=True)
    credit_code = fields.String(allow_none=True)
    identified = fields.Boolean(required=True, metadata={
        "description": "false for an enterprise without its credit code (created by an "
                       "import): it can neither trade nor receive money until the code is "
                       "added"})
    sector = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True, metadata={
        "description": "household: ID-card number with all but 3 + 4 characters hidden"})
    bank_account_masked = fields.String(allow_none=True, metadata={
        "description": "household: bank account with all but the last 4 digits hidden"})
    bank_name = fields.String(allow_none=True)
    attributes = fields.Dict(required=True)
    active = fields.Boolean(required=True)
    version = Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class PartyQuerySchema(InputSchema, PageQuerySchema):
    kind = fields.String(validate=validate.OneOf(PARTY_KINDS))
    county = fields.String(validate=COUNTY_CODE)
    region = fields.String(validate=REGION_CODE)
    q = fields.String(validate=validate.Length(min=1, max=100))
    active = fields.Boolean()


class _PartyWriteSchema(StrictSchema):
    name_zh = fields.String(validate=validate.Length(min=1, max=200))
    name_en = fields.String(allow_none=True, validate=validate.Length(max=200))
    region_code = fields.String(validate=REGION_CODE)
    credit_code = fields.String(allow_none=True, validate=validate.Length(max=30))
    sector = fields.String(allow_none=True, validate=validate.Length(max=40))
    id_number = fields.String(allow_none=True, load_only=True, validate=validate.Length(max=30),
                              metadata={"description": "household head's ID-card number; "
                                        "stored encrypted, never returned"})
    bank_account = fields.String(allow_none=True, load_only=True,
                                 validate=validate.Length(max=40), metadata={
                                     "description": "household bank account; stored "
                                     "encrypted, never returned"})
    bank_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    attributes = free_form(keys=fields.String(validate=validate.Length(max=60)),
                           metadata={"description": "free attributes; no personal data"})


class PartyCreateSchema(_PartyWriteSchema):
    kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    region_code = fields.String(required=True, validate=REGION_CODE)


class PartyUpdateSchema(_PartyWriteSchema):
    pass


class HouseholdLookupSchema(StrictSchema):
    id_number = fields.String(required=True, validate=validate.Length(min=1, max=30),
                              metadata={"description": "sent in the body, so that it never "
                                        "appears in URLs or access logs"})


# --- products ----------------------------------------------------------------------------------


class HolderSchema(ma.Schema):
    id = Integer(required=True)
    kind = fields.String(required=True)
    name_zh = fields.String(allow_none=True, metadata={
        "description": "masked for households (王*明)"})


class PublicHolderSchema(ma.Schema):
    kind = fields.String(required=True)
    name_zh = fields.String(allow_none=True, metadata={
        "description": "omitted (null) for households: no personal data in public"})


class _ProductBaseSchema(ma.Schema):
    id = Integer(required=True)
    external_code = fields.String(allow_none=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    category = fields.String(required=True, validate=validate.OneOf(PRODUCT_CATEGORIES))
    type_code = fields.String(required=True)
    region_code = fields.String(required=True)
    region_name_zh = fields.String(allow_none=True)
    county_code = fields.String(required=True)
    rights_type = fields.String(required=True, validate=validate.OneOf(RIGHTS_TYPES))
    area_ha = fields.Float(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    grid_cell_id = fields.String(allow_none=True)
    quantity = fields.Float(allow_none=True)
    quantity_unit = fields.String(allow_none=True)
    quality_grade = fields.String(allow_none=True)
    development_status = fields.String(required=True)
    brand = fields.String(allow_none=True)
    certifications = fields.List(fields.String(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(PRODUCT_STATUSES))
    verified_at = fields.AwareDateTime(allow_none=True)


    @ma.pre_dump
    def _view(self, product, **_kwargs):
        """Flatten the product with its region's name and its holder, as this schema shows
        the holder (masked or omitted)."""
        if isinstance(product, dict):
            return product
        view = {c.key: getattr(product, c.key) for c in product.__table__.columns}
        view["region_name_zh"] = product.region.name_zh if product.region else None
        view["holder"] = self.holder_view(product.holder)
        return view

    @staticmethod
    def holder_view(holder: Any) -> dict:
        raise NotImplementedError


class ProductSchema(_ProductBaseSchema):
    holder_party_id = Integer(required=True)
    holder = fields.Nested(HolderSchema, required=True, metadata={
        "description": "the rights holder (a household's name masked)"})
    attributes = fields.Dict(required=True)
    version = Integer(required=True, metadata={"description": "send as If-Match"})
    verified_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    updated_at = fields.AwareDateTime(required=True)
    updated_by = fields.String(required=True)

    @staticmethod
    def holder_view(holder: Any) -> dict:
        name = mask_name(holder.name_zh) if holder.kind == "household" else holder.name_zh
        return {"id": holder.id, "kind": holder.kind, "name_zh": name}


class PublicProductSchema(_ProductBaseSchema):
    """A verified product as the public sees it: no personal data, no internal trail."""

    holder = fields.Nested(PublicHolderSchema, required=True)

    @staticmethod
    def holder_view(holder: Any) -> dict:
        return {"kind": holder.kind,
                "name_zh": None if holder.kind == "household" else holder.name_zh}


class ProductFilterSchema(InputSchema):
    county = fields.String(validate=COUNTY_CODE)
    region = fields.String(validate=REGION_CODE, metadata={
        "description": "the region and everything below it"})
    category = fields.String(validate=validate.OneOf(PRODUCT_CATEGORIES))
    type = fields.List(fields.String(validate=validate.Length(max=40)), metadata={
        "description": "one or more type codes (repeat the parameter)"})
    status = fields.List(fields.String(validate=validate.OneOf(PRODUCT_STATUSES)))
    holder = Integer(validate=validate.Range(min=1, max=INT64_MAX), metadata={
        "description": "rights holder's party id"})
    development_status = fields.String(validate=validate.OneOf(DEVELOPMENT_STATUSES))
    q = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "text in the names or brand, or an exact external code"})
    sort = sort_field(["id", "name_zh", "type_code", "region_code", "area_ha", "quantity",
                       "status", "created_at", "updated_at"])


class ProductQuerySchema(ProductFilterSchema, PageQuerySchema):
    pass


class PublicProductQuerySchema(InputSchema, PageQuerySchema):
    county = fields.String(validate=COUNTY_CODE)
    region = fields.String(validate=REGION_CODE)
    category = fields.String(validate=validate.OneOf(PRODUCT_CATEGORIES))
    type = fields.List(fields.String(validate=validate.Length(max=40)))
    q = fields.String(validate=validate.Length(min=1, max=100))
    sort = sort_field(["id", "name_zh", "type_code", "region_code", "area_ha", "quantity"])


class ExportQuerySchema(ProductFilterSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))


class _ProductWriteSchema(StrictSchema):
    external_code = fields.String(allow_none=True, validate=validate.Length(max=60))
    name_zh = fields.String(validate=validate.Length(min=1, max=200))
    name_en = fields.String(allow_none=True, validate=validate.Length(max=200))
    type_code = fields.String(validate=validate.Length(min=1, max=40), metadata={
        "description": "see GET /catalog/product-types"})
    region_code = fields.String(validate=REGION_CODE)
    holder_party_id = Integer(validate=validate.Range(min=1, max=INT64_MAX))
    rights_type = fields.String(validate=validate.OneOf(RIGHTS_TYPES))
    area_ha = fields.Float(allow_none=True, allow_nan=False)
    latitude = fields.Float(allow_none=True, allow_nan=False)
    longitude = fields.Float(allow_none=True, allow_nan=False)
    grid_cell_id = fields.String(allow_none=True, validate=validate.Length(max=40))
    quantity = fields.Float(allow_none=True, allow_nan=False)
    quantity_unit = fields.String(allow_none=True, validate=validate.Length(max=20))
    quality_grade = fields.String(allow_none=True, validate=validate.Length(max=40))
    development_status = fields.String(validate=validate.OneOf(DEVELOPMENT_STATUSES))
    brand = fields.String(allow_none=True, validate=validate.Length(max=100))
    certifications = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                                 validate=validate.Length(max=50))
    attributes = free_form(keys=fields.String(validate=validate.Length(max=60)))


class ProductCreateSchema(_ProductWriteSchema):
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    region_code = fields.String(required=True, validate=REGION_CODE)
    holder_party_id = Integer(required=True, validate=validate.Range(min=1, max=INT64_MAX))
    rights_type = fields.String(required=True, validate=validate.OneOf(RIGHTS_TYPES))


class ProductUpdateSchema(_ProductWriteSchema):
    pass


class TransitionSchema(StrictSchema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))


class ProductVersionSchema(ma.Schema):
    version = Integer(required=True)
    change = fields.String(required=True, metadata={
        "description": "create, update, import, or a transition: "
                       + ", ".join(lifecycle.TRANSITIONS)})
    status = fields.String(required=True)
    changed_fields = fields.List(fields.String(), required=True)
    reason = fields.String(allow_none=True)
    actor = fields.String(required=True)
    changed_at = fields.AwareDateTime(required=True)
    import_batch_id = Integer(allow_none=True)
    data = fields.Dict(required=True, metadata={"description": "the product after the change"})


class SummaryQuerySchema(InputSchema):
    county = fields.String(validate=COUNTY_CODE)


class SummaryRowSchema(ma.Schema):
    county_code = fields.String(required=True)
    county_name_zh = fields.String(allow_none=True)
    category = fields.String(required=True)
    type_code = fields.String(required=True)
    type_name_zh = fields.String(allow_none=True)
    products = Integer(required=True, metadata={"description": "not retired"})
    verified = Integer(required=True)
    products_with_area = Integer(required=True)
    area_ha = fields.Float(allow_none=True, metadata={
        "description": "sum over products with a known area; null if none has one"})


# --- monitoring --------------------------------------------------------------------------------


class MonitoringRecordSchema(ma.Schema):
    id = Integer(required=True)
    product_id = Integer(required=True)
    county_code = fields.String(required=True)
    period_year = Integer(required=True)
    period_month = Integer(allow_none=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    metric = fields.String(required=True)
    value = fields.Float(required=True)
    unit = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(MONITORING_METHODS))
    source = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    recorded_by = fields.String(required=True)
    recorded_at = fields.AwareDateTime(required=True)
    version = Integer(required=True)
    import_batch_id = Integer(allow_none=True)


class MonitoringCreateSchema(StrictSchema):
    period_year = Integer(required=True, validate=validate.Range(min=1949, max=9999))
    period_month = Integer(allow_none=True, validate=validate.Range(min=1, max=12))
    metric = fields.String(required=True, validate=validate.Length(min=1, max=40))
    value = fields.Float(required=True, allow_nan=False)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=20))
    method = fields.String(required=True, validate=validate.OneOf(MONITORING_METHODS))
    source = fields.String(allow_none=True, validate=validate.Length(max=300))
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class MonitoringUpdateSchema(StrictSchema):
    value = fields.Float(allow_nan=False)
    unit = fields.String(validate=validate.Length(min=1, max=20))
    source = fields.String(allow_none=True, validate=validate.Length(max=300))
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class MonitoringQuerySchema(InputSchema, PageQuerySchema):
    county = fields.String(validate=COUNTY_CODE)
    product = Integer(validate=validate.Range(min=1, max=INT64_MAX))
    metric = fields.String(validate=validate.Length(max=40))
    method = fields.String(validate=validate.OneOf(MONITORING_METHODS))
    year_from = Integer(validate=validate.Range(min=1949, max=9999))
    year_to = Integer(validate=validate.Range(min=1949, max=9999))
    monthly = fields.Boolean(metadata={"description": "true: monthly records only; false: "
                                       "annual only; absent: both"})


class ProductMonitoringQuerySchema(InputSchema, PageQuerySchema):
    metric = fields.String(validate=validate.Length(max=40))
    method = fields.String(validate=validate.OneOf(MONITORING_METHODS))
    year_from = Integer(validate=validate.Range(min=1949, max=9999))
    year_to = Integer(validate=validate.Range(min=1949, max=9999))
    monthly = fields.Boolean()


class SeriesQuerySchema(InputSchema):
    county = fields.String(required=True, validate=COUNTY_CODE)
    metric = fields.String(required=True, validate=validate.Length(min=1, max=40))
    type = fields.String(validate=validate.Length(max=40))
    category = fields.String(validate=validate.OneOf(PRODUCT_CATEGORIES))
    year_from = Integer(validate=validate.Range(min=1949, max=9999))
    year_to = Integer(validate=validate.Range(min=1949, max=9999))
    monthly = fields.Boolean(load_default=False)


class SeriesPointSchema(ma.Schema):
    period_year = Integer(required=True)
    period_month = Integer(allow_none=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    value = fields.Float(required=True)
    products = Integer(required=True)
    methods = fields.List(fields.String(), required=True)


class SeriesSchema(ma.Schema):
    county_code = fields.String(required=True)
    metric = fields.String(required=True)
    type_code = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    unit = fields.String(required=True)
    monthly = fields.Boolean(required=True)
    points = fields.List(fields.Nested(SeriesPointSchema), required=True)


# --- imports -----------------------------------------------------------------------------------


class ImportFileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8 or GBK) or XLSX"})


class ImportQuerySchema(InputSchema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "check every row and report what would happen; write nothing"})


class ProductImportQuerySchema(ImportQuerySchema):
    status = fields.String(load_default="registered",
                           validate=validate.OneOf(["draft", "registered"]),
                           metadata={"description": "state of newly created products"})


class FieldChangeSchema(ma.Schema):
    field = fields.String(required=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class ImportChangeSchema(ma.Schema):
    row = Integer(required=True, metadata={"description": "the file's row number"})
    product_id = Integer(allow_none=True, metadata={"description": "the product changed"})
    party_id = Integer(allow_none=True, metadata={"description": "the party changed (a "
                                                                 "party import)"})
    name_zh = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "the product's state now"})
    fields_ = fields.List(fields.Nested(FieldChangeSchema), required=True, data_key="fields",
                          attribute="fields")
    lifecycle = fields.String(allow_none=True, metadata={
        "description": "e.g. 'verified → registered: attested fields change (quantity)'"})


class NewHolderSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    name_zh = fields.String(required=True)
    county_code = fields.String(required=True)
    region_code = fields.String(required=True)
    credit_code = fields.String(allow_none=True)
    id_number_masked = fields.String(allow_none=True)
    identified = fields.Boolean(required=True)
    rows = fields.List(Integer(), required=True)


class ImportReportSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(IMPORT_KINDS))
    dry_run = fields.Boolean(required=True)
    filename = fields.String(required=True)
    encoding = fields.String(required=True, metadata={"description": "utf-8, gbk or xlsx"})
    sha256 = fields.String(required=True)
    rows = Integer(required=True)
    created = Integer(required=True)
    updated = Integer(required=True)
    unchanged = Integer(required=True, metadata={"description": "skipped: identical"})
    sent_back_for_verification = Integer(required=True)
    batch_id = Integer(allow_none=True)
    ignored_columns = fields.List(fields.String(), required=True)
    changes = fields.List(fields.Nested(ImportChangeSchema), required=True, metadata={
        "description": "per product changed: the fields old -> new and the lifecycle "
                       "consequence (a dry run shows what a commit would do)"})
    holders_to_create = fields.List(fields.Nested(NewHolderSchema), required=True, metadata={
        "description": "rights holders not yet registered that the import creates"})
    parties_created = Integer(required=True)


class ImportBatchSchema(ma.Schema):
    id = Integer(required=True)
    kind = fields.String(required=True)
    filename = fields.String(required=True)
    sha256 = fields.String(required=True)
    encoding = fields.String(required=True)
    rows = Integer(required=True)
    created = Integer(required=True)
    updated = Integer(required=True)
    unchanged = Integer(required=True)
    county_code = fields.String(allow_none=True)
    actor = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class ImportBatchQuerySchema(InputSchema, PageQuerySchema):
    kind = fields.String(validate=validate.OneOf(IMPORT_KINDS))


class TemplateQuerySchema(InputSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))
