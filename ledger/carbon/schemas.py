"""Request and response shapes of the carbon registry API. Units are in the field names
(`quantity_t` whole tonnes of CO2e, `*_tco2e` float estimates, `*_bp` basis points, `area_mu`
mu, `*_m3` cubic metres); Chinese and English names side by side. Integers are strict: 1.5,
"1" or true are refused, never rounded."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from catalog.schemas import InputSchema, StrictSchema
from ecovalue.api import PageQuerySchema
from ledger.carbon import lifecycle
from ledger.carbon.models import (
    METHODOLOGY_CODES,
    PROJECT_STATUSES,
    REPORT_STATUSES,
    RETIREMENT_PURPOSES,
    REVERSAL_CAUSES,
)

MAX_T = 2**62
_ID: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=2**63 - 1)}
_TONNES: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=MAX_T),
           "metadata": {"description": "whole tonnes of CO2e"}}
_SERIAL: dict[str, Any] = {"validate": validate.Length(min=1, max=100), "metadata": {
    "description": "an inclusive serial block, e.g. QXN-522326-WM-AR-001-2023-000001-000100; "
                   "these exact serials move (instead of the lowest held)"}}
_TEXT = validate.Length(max=200)
_FORMAT = validate.OneOf(["csv", "xlsx"])


class CarbonHolder(ma.Schema):
    kind = fields.String(allow_none=True)
    name_zh = fields.String(allow_none=True, metadata={
        "description": "a household's name is masked (王*明) for authenticated readers and "
                       "omitted (null) in public"})


# --- parameter sets and the operator ---------------------------------------------------------


class SpeciesIn(StrictSchema):
    species_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=100))
    wood_density_t_per_m3 = fields.Float(required=True, allow_nan=False)
    biomass_expansion_factor = fields.Float(required=True, allow_nan=False)
    root_shoot_ratio = fields.Float(required=True, allow_nan=False)
    carbon_fraction = fields.Float(required=True, allow_nan=False, metadata={
        "description": "tC per t dry matter, a fraction (0.3-0.6), not a percent"})
    tree_tco2e_per_year = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                                       metadata={"description": "single-tree route: tCO2e "
                                                                "per tree and year"})
    confirmation = fields.String(load_default="to-confirm",
                                 validate=validate.OneOf(["to-confirm", "confirmed"]))
    source = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=500))


class SpeciesSchema(ma.Schema):
    species_code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    wood_density_t_per_m3 = fields.Float(required=True)
    biomass_expansion_factor = fields.Float(required=True)
    root_shoot_ratio = fields.Float(required=True)
    carbon_fraction = fields.Float(required=True)
    tree_tco2e_per_year = fields.Float(allow_none=True)
    tco2e_per_m3 = fields.Float(required=True, metadata={
        "description": "density x BEF x (1 + root:shoot) x carbon fraction x 44/12"})
    confirmation = fields.String(required=True)
    source = fields.String(allow_none=True)


class ParameterSetIn(StrictSchema):
    version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    based_on_version = fields.String(load_default=None, allow_none=True,
                                     validate=validate.Length(min=1, max=40))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class ParameterSetSchema(ma.Schema):
    version = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True)
    based_on_version = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    content_sha256 = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    published_at = fields.AwareDateTime(allow_none=True)
    species = fields.List(fields.Nested(SpeciesSchema), required=True)


class OperatorIn(StrictSchema):
    operator_party_id = fields.Integer(required=True, **_ID)


class OperatorSchema(ma.Schema):
    operator_party_id = fields.Integer(required=True)
    updated_at = fields.AwareDateTime(required=True)
    updated_by = fields.String(required=True)


# --- projects --------------------------------------------------------------------------------


class DocumentSchema(StrictSchema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reference = fields.String(load_default=None, allow_none=True, validate=_TEXT)
    sha256 = fields.String(load_default=None, allow_none=True,
                           validate=validate.Regexp(r"^[0-9a-f]{64}$"))


class ProjectIn(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=16),
                         metadata={"example": "WM-AR-002"})
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(load_default=None, allow_none=True, validate=_TEXT)
    methodology = fields.String(required=True, validate=validate.OneOf(METHODOLOGY_CODES))
    region_codes = fields.List(fields.String(validate=validate.Regexp(r"^\d{6}(\d{3}){0,2}$")),
                               required=True, validate=validate.Length(min=1, max=100))
    developer_party_id = fields.Integer(required=True, **_ID)
    owner_party_id = fields.Integer(required=True, **_ID)
    parcel_ids = fields.List(fields.Integer(**_ID), required=True,
                             validate=validate.Length(min=1, max=1000), metadata={
                                 "description": "verified forest products of the catalog"})
    parameter_set_version = fields.String(load_default=None, allow_none=True,
                                          validate=validate.Length(min=1, max=40))
    species_composition = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.Float(allow_nan=False), load_default=dict,
        metadata={"description": "species code -> share of stem volume, summing to 1"})
    crediting_start = fields.Date(required=True)
    crediting_end = fields.Date(required=True, metadata={
        "description": "inclusive; 20-40 years for afforestation"})
    share_of_proceeds_bp = fields.Integer(load_default=0, strict=True,
                                          validate=validate.Range(min=0, max=5000))
    overall_mitigation_bp = fields.Integer(load_default=0, strict=True,
                                           validate=validate.Range(min=0, max=5000))
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list,
                            validate=validate.Length(max=100))
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=2000))


class ProjectPatch(ProjectIn):
    class Meta:
        partial = True
        unknown = ma.RAISE


class ReasonIn(StrictSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ParcelSchema(ma.Schema):
    product_id = fields.Integer(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    region_code = fields.String(required=True)
    area_ha = fields.Float(allow_none=True)
    status = fields.String(required=True)


class ProjectSchema(ma.Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    methodology = fields.String(required=True)
    methodology_name_zh = fields.String(required=True)
    methodology_name_en = fields.String(required=True)
    county_code = fields.String(required=True)
    region_codes = fields.List(fields.String(), required=True)
    developer_party_id = fields.Integer(required=True)
    owner_party_id = fields.Integer(required=True)
    developer = fields.Nested(CarbonHolder, required=True)
    owner = fields.Nested(CarbonHolder, required=True)
    parameter_set_version = fields.String(required=True)
    species_composition = fields.Dict(keys=fields.String(), values=fields.Float(),
                                      required=True)
    crediting_start = fields.Date(required=True)
    crediting_end = fields.Date(required=True)
    buffer_share_bp = fields.Integer(required=True)
    share_of_proceeds_bp = fields.Integer(required=True)
    overall_mitigation_bp = fields.Integer(required=True)
    documents = fields.List(fields.Dict(), required=True)
    description = fields.String(allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(PROJECT_STATUSES))
    version = fields.Integer(required=True)
    parcels = fields.List(fields.Nested(ParcelSchema), required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ProjectEventSchema(ma.Schema):
    change = fields.String(required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    actor = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)


class ProjectQuery(PageQuerySchema, InputSchema):
    county = fields.String(validate=validate.Regexp(r"^\d{6}$"))
    status = fields.String(validate=validate.OneOf(PROJECT_STATUSES))
    methodology = fields.String(validate=validate.OneOf(METHODOLOGY_CODES))


class ExportQuery(InputSchema):
    format = fields.String(load_default="csv", validate=_FORMAT)


class TreeIn(StrictSchema):
    tree_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    species_code = fields.String(required=True, validate=validate.Length(min=1, max=40))
    planting_year = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(min=1950, max=2100))
    photo_reference = fields.String(load_default=None, allow_none=True, validate=_TEXT)


class HouseholdIn(StrictSchema):
    party_id = fields.Integer(required=True, **_ID)
    product_id = fields.Integer(required=True, **_ID)
    area_mu = fields.Float(required=True, allow_nan=False,
                           validate=validate.Range(min=0, min_inclusive=False, max=10_000))
    trees = fields.List(fields.Nested(TreeIn), load_default=list,
                        validate=validate.Length(max=5000))


class HouseholdSchema(ma.Schema):
    id = fields.Integer(required=True)
    party_id = fields.Integer(required=True)
    holder = fields.Nested(CarbonHolder, required=True)
    product_id = fields.Integer(required=True)
    area_mu = fields.Float(required=True)
    trees = fields.Integer(required=True)
    tree_cap = fields.Integer(required=True, metadata={
        "description": "225 per mu, at most 2 mu counted, at most 450"})


# --- reports ---------------------------------------------------------------------------------


class ReportIn(StrictSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    source = fields.String(required=True, validate=validate.OneOf(["catalog", "tree_registry"]),
                           metadata={"description": "catalog: stem-volume monitoring records "
                                                    "of the parcels; tree_registry: single-tree"
                                                    " route (inventory plots: .../inventory)"})
    baseline_tco2e = fields.Float(load_default=0.0, allow_nan=False,
                                  validate=validate.Range(min=0, max=1e12))
    leakage_tco2e = fields.Float(load_default=0.0, allow_nan=False,
                                 validate=validate.Range(min=0, max=1e12))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class InventoryQuery(InputSchema):
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    baseline_tco2e = fields.Float(load_default=0.0, allow_nan=False,
                                  validate=validate.Range(min=0, max=1e12))
    leakage_tco2e = fields.Float(load_default=0.0, allow_nan=False,
                                 validate=validate.Range(min=0, max=1e12))


class InventoryFile(ma.Schema):
    file = Upload(required=True, metadata={
        "description": "inventory plots, CSV (UTF-8 or GBK) or XLSX: 样地号, 地块编号, 树种, "
                       "样地面积, 期初蓄积, 期末蓄积"})


class CarbonReportSchema(ma.Schema):
    id = fields.Integer(required=True)
    project_id = fields.Integer(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    vintage_year = fields.Integer(required=True)
    source = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REPORT_STATUSES))
    actual_removals_tco2e = fields.Float(required=True)
    baseline_tco2e = fields.Float(required=True)
    leakage_tco2e = fields.Float(required=True)
    net_removals_tco2e = fields.Float(required=True)
    quantity_t = fields.Integer(required=True, metadata={
        "description": "net removals rounded down to whole tonnes"})
    calculation = fields.List(fields.Dict(), required=True)
    record_ids = fields.List(fields.Integer(), required=True)
    input_sha256 = fields.String(required=True)
    parameter_set_version = fields.String(required=True)
    note = fields.String(allow_none=True)
    rejection_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    verified_at = fields.AwareDateTime(allow_none=True)
    verified_by = fields.String(allow_none=True)


class ReportQuery(PageQuerySchema, InputSchema):
    project = fields.String(validate=validate.Length(min=1, max=40))
    status = fields.String(validate=validate.OneOf(REPORT_STATUSES))


class RejectIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# --- issuance and movements ------------------------------------------------------------------


class IssueIn(StrictSchema):
    report_id = fields.Integer(required=True, **_ID)


class CarbonBatchSchema(ma.Schema):
    id = fields.Integer(required=True)
    asset_code = fields.String(required=True)
    serial_block = fields.String(required=True)
    serial_start = fields.Integer(required=True)
    serial_end = fields.Integer(required=True)
    vintage_year = fields.Integer(required=True)
    project_id = fields.Integer(required=True)
    project_code = fields.String(required=True)
    project_name_zh = fields.String(required=True)
    project_name_en = fields.String(allow_none=True)
    methodology = fields.String(required=True)
    county_code = fields.String(required=True)
    report_id = fields.Integer(required=True)
    quantity_t = fields.Integer(required=True)
    owner_t = fields.Integer(required=True)
    buffer_t = fields.Integer(required=True)
    share_of_proceeds_t = fields.Integer(required=True)
    overall_mitigation_t = fields.Integer(required=True)
    tradable_t_now = fields.Integer(required=True)
    buffer_t_now = fields.Integer(required=True)
    retired_t_now = fields.Integer(required=True)
    cancelled_t_now = fields.Integer(required=True)
    ledger_transaction_id = fields.Integer(required=True)
    issued_on = fields.Date(required=True)
    issued_at = fields.AwareDateTime(required=True)


class BatchQuery(PageQuerySchema, InputSchema):
    project = fields.String(validate=validate.Length(min=1, max=16))
    vintage_year = fields.Integer(strict=False, validate=validate.Range(min=1990, max=2100))
    county = fields.String(validate=validate.Regexp(r"^\d{6}$"))


class BatchExportQuery(BatchQuery, ExportQuery):
    pass


class HoldingSchema(ma.Schema):
    batch = fields.String(required=True)
    account_code = fields.String(required=True)
    role = fields.String(required=True, metadata={
        "description": "tradable, buffer, retired or cancelled"})
    holder = fields.Nested(CarbonHolder, required=True)
    quantity_t = fields.Integer(required=True)
    block_count = fields.Integer(required=True)


class BlocksSchema(ma.Schema):
    account_code = fields.String(required=True)
    serial_blocks = fields.List(fields.String(), required=True)
    quantity_t = fields.Integer(required=True)


class EventSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    from_account_id = fields.Integer(allow_none=True)
    to_account_id = fields.Integer(required=True)
    quantity_t = fields.Integer(required=True)
    blocks = fields.List(fields.String(), required=True)
    ledger_transaction_id = fields.Integer(required=True)
    reason = fields.String(allow_none=True)
    reversal_id = fields.Integer(allow_none=True)
    effective_date = fields.Date(required=True)
    occurred_at = fields.AwareDateTime(required=True)


class _MoveIn(StrictSchema):
    account = fields.String(required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "the debited account's code"})
    quantity_t = fields.Integer(load_default=None, allow_none=True, **_TONNES)
    serial_block = fields.String(load_default=None, allow_none=True, **_SERIAL)

    @ma.validates_schema
    def _amount(self, data: dict, **_kwargs: object) -> None:
        if data.get("quantity_t") is None and data.get("serial_block") is None:
            raise ma.ValidationError("give quantity_t or serial_block", "quantity_t")


class TransferIn(_MoveIn):
    to_party_id = fields.Integer(required=True, **_ID)
    memo = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400))


class RetireIn(_MoveIn):
    beneficiary_name = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                     metadata={"description": "public, on the certificate"})
    purpose = fields.String(required=True, validate=validate.OneOf(RETIREMENT_PURPOSES))
    compliance_year = fields.Integer(load_default=None, allow_none=True, strict=True,
                                     validate=validate.Range(min=2000, max=2100))
    jurisdiction = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=100))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class CancelIn(_MoveIn):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MovedSchema(ma.Schema):
    event_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    batch = fields.String(required=True)
    from_account = fields.String(required=True)
    to_account = fields.String(required=True)
    quantity_t = fields.Integer(required=True)
    serial_blocks = fields.List(fields.String(), required=True)
    ledger_transaction_id = fields.Integer(required=True)
    certificate_number = fields.String(allow_none=True)
    certificate_url = fields.String(allow_none=True)


class ReversalIn(StrictSchema):
    project = fields.String(required=True, validate=validate.Length(min=1, max=16))
    cause = fields.String(required=True, validate=validate.OneOf(REVERSAL_CAUSES))
    occurred_on = fields.Date(required=True)
    lost_t = fields.Integer(required=True, **_TONNES)
    description = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ReversalSchema(ma.Schema):
    id = fields.Integer(required=True)
    project_id = fields.Integer(required=True)
    cause = fields.String(required=True)
    occurred_on = fields.Date(required=True)
    lost_t = fields.Integer(required=True)
    description = fields.String(required=True)
    events = fields.List(fields.Nested(EventSchema), required=True)


# --- retirements and certificates ------------------------------------------------------------


class RetirementSchema(ma.Schema):
    id = fields.Integer(required=True)
    certificate_number = fields.String(required=True)
    certificate_url = fields.String(required=True)
    batch = fields.String(required=True)
    serial_block_of_batch = fields.String(required=True)
    project_code = fields.String(required=True)
    project_name_zh = fields.String(required=True)
    project_name_en = fields.String(allow_none=True)
    county_code = fields.String(required=True)
    methodology = fields.String(required=True)
    vintage_year = fields.Integer(required=True)
    quantity_t = fields.Integer(required=True)
    blocks = fields.List(fields.String(), required=True)
    beneficiary_name = fields.String(required=True)
    purpose = fields.String(required=True)
    compliance_year = fields.Integer(allow_none=True)
    jurisdiction = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    retired_on = fields.Date(required=True)
    retired_at = fields.AwareDateTime(required=True)
    retired_by_party = fields.Nested(CarbonHolder, required=True)
    event_id = fields.Integer(required=True)
    batch_id = fields.Integer(required=True)
    audit_seq = fields.Integer(allow_none=True)
    audit_hash = fields.String(allow_none=True)


class RetirementQuery(PageQuerySchema, InputSchema):
    beneficiary = fields.String(validate=validate.Length(min=1, max=200))
    purpose = fields.String(validate=validate.OneOf(RETIREMENT_PURPOSES))
    vintage_year = fields.Integer(validate=validate.Range(min=1990, max=2100))
    compliance_year = fields.Integer(validate=validate.Range(min=2000, max=2100))
    batch = fields.String(validate=validate.Length(min=1, max=40))


class RetirementExportQuery(RetirementQuery, ExportQuery):
    pass


class VerifyQuery(InputSchema):
    quantity_t = fields.Integer(validate=validate.Range(min=1, max=MAX_T))
    beneficiary_name = fields.String(validate=validate.Length(min=1, max=200))
    audit_hash = fields.String(validate=validate.Length(min=1, max=64))
    serial_block = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                               metadata={"description": "every serial block the certificate "
                                                        "lists (repeat the parameter)"})


class VerifySchema(ma.Schema):
    valid = fields.Boolean(required=True)
    certificate_number = fields.String(required=True)
    quantity_t = fields.Integer(required=True)
    serial_blocks = fields.List(fields.String(), required=True)
    beneficiary_name = fields.String(required=True)
    audit_hash = fields.String(required=True)
    audit_seq = fields.Integer(required=True)


# --- traceability ----------------------------------------------------------------------------


class TraceRecordSchema(ma.Schema):
    id = fields.Integer(required=True)
    product_id = fields.Integer(required=True)
    metric = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    value = fields.Float(required=True)
    unit = fields.String(required=True)
    method = fields.String(required=True)
    source = fields.String(allow_none=True)


class TraceParcelSchema(ma.Schema):
    product_id = fields.Integer(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(allow_none=True)
    type_code = fields.String(required=True)
    region_code = fields.String(required=True)
    area_ha = fields.Float(allow_none=True)
    rights_type = fields.String(required=True)
    holder = fields.Nested(CarbonHolder, required=True)
    removals_tco2e = fields.Float(allow_none=True)
    monitoring_records = fields.List(fields.Nested(TraceRecordSchema), required=True)


class TraceHouseholdSchema(ma.Schema):
    product_id = fields.Integer(required=True)
    area_mu = fields.Float(required=True)
    trees = fields.Integer(required=True)
    holder = fields.Nested(CarbonHolder, required=True)


class TraceReportSchema(ma.Schema):
    id = fields.Integer(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    source = fields.String(required=True)
    actual_removals_tco2e = fields.Float(required=True)
    baseline_tco2e = fields.Float(required=True)
    leakage_tco2e = fields.Float(required=True)
    net_removals_tco2e = fields.Float(required=True)
    quantity_t = fields.Integer(required=True)
    input_sha256 = fields.String(required=True)
    parameter_set_version = fields.String(required=True)
    verified_by = fields.String(allow_none=True)
    verified_at = fields.AwareDateTime(allow_none=True)


class TraceSchema(ma.Schema):
    batch = fields.String(required=True)
    serial_block = fields.String(required=True)
    quantity_t = fields.Integer(required=True)
    vintage_year = fields.Integer(required=True)
    project_code = fields.String(required=True)
    project_name_zh = fields.String(required=True)
    project_name_en = fields.String(allow_none=True)
    methodology = fields.String(required=True)
    report = fields.Nested(TraceReportSchema, required=True)
    parcels = fields.List(fields.Nested(TraceParcelSchema), required=True)
    households = fields.List(fields.Nested(TraceHouseholdSchema), required=True)


TRANSITIONS = tuple(lifecycle.TRANSITIONS)


class PageQuerySchemaAlias(PageQuerySchema, InputSchema):
    """Pagination only."""
