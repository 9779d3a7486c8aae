"""Request and response shapes of the pilot API. Units are in the field names and
descriptions: `*_tco2` whole tonnes of CO2, `*_t` whole tonnes (of credits, tCO2e), `*_fen`
integer fen (1/100 yuan), `*_fen_per_tco2` fen per tonne, `*_bp` basis points (100 bp = 1 %),
`*_mwh` megawatt hours, `ncv_gj_per_unit` GJ per unit of the fuel (t, or 10^4 Nm3 for gas),
`carbon_content_tc_per_gj` tonnes of carbon per GJ, `oxidation_rate` a fraction (0.99, not 99).
Quantities of a report are decimals, as text or JSON numbers, computed exactly (never as
binary floats). Integers are strict: 1.5, "1" or true are refused, never rounded."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from catalog.schemas import InputSchema, StrictSchema
from ecovalue.api import Integer, PageQuerySchema
from ledger.carbon.models import METHODOLOGY_CODES
from ledger.pilot.emissions import FACTOR_STATUSES, METHODS
from ledger.pilot.models import REPORT_STATUSES, SETTLEMENT_KINDS
from ledger.pilot.services.compliance import STATUSES

_ID: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=2**63 - 1)}
_YEAR: dict[str, Any] = {"strict": True, "validate": validate.Range(min=2000, max=2100)}
#: query parameters are text: digits are read as integers (a fraction is still refused)
_QID: dict[str, Any] = {"validate": validate.Range(min=1, max=2**63 - 1)}
_QYEAR: dict[str, Any] = {"validate": validate.Range(min=2000, max=2100)}
_TONNES: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=10**12)}


class DecimalText(fields.Field):
    """A decimal quantity as written: JSON text ("120000.5") or a number (120000.5, read by
    its shortest representation, so what was typed is what is computed)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("oneOf", [
            {"type": "string", "pattern": r"^\s*-?[0-9][0-9,]*(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$",
             "maxLength": 40}, {"type": "number"}])
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ma.ValidationError("a decimal number, as text or a JSON number")
        if isinstance(value, str) and len(value) > 40:
            raise ma.ValidationError("at most 40 characters")
        return value


# --- reference: fuels and factor tables -----------------------------------------------------


class PilotFuelSchema(ma.Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    unit = fields.String(required=True, metadata={"description": "unit of consumption"})
    ncv_factor = fields.String(required=True, metadata={
        "description": "factor-table name of the default NCV (GJ per unit)"})
    carbon_content_factor = fields.String(required=True, metadata={
        "description": "factor-table name of the default carbon content (tC/GJ)"})
    oxidation_factor = fields.String(required=True, metadata={
        "description": "factor-table name of the default oxidation rate (fraction)"})


class EmissionFactorSchema(ma.Schema):
    factor = fields.String(required=True)
    year = Integer(allow_none=True, metadata={"description": "null: for every year"})
    value = fields.String(required=True, metadata={"description": "exact decimal text"})
    unit = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(FACTOR_STATUSES))
    source = fields.String(allow_none=True)


class FactorTableSchema(ma.Schema):
    version = fields.String(required=True)
    title = fields.String(required=True)
    note = fields.String(allow_none=True)
    content_sha256 = fields.String(required=True)
    row_count = Integer(required=True)
    created_at = fields.DateTime(required=True)
    created_by = fields.String(required=True)
    factors = fields.List(fields.Nested(EmissionFactorSchema))


class FactorTableQuery(InputSchema):
    version = fields.String(required=True, validate=validate.Length(min=1, max=40),
                            metadata={"description": "new version label (letters, digits, "
                                                     "'_', '.', '-')"})
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    note = fields.String(load_default=None, validate=validate.Length(max=1000))


class PilotFileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8 or GBK) or XLSX"})


# --- rules ------------------------------------------------------------------------------------


class PilotRuleIn(StrictSchema):
    share_bp = Integer(required=True, strict=True, validate=validate.Range(min=0, max=10_000),
                       metadata={"description": "share of verified emissions to compensate, "
                                                "basis points (50 = 0.5 %)"})
    fee_fen_per_tco2 = Integer(required=True, strict=True,
                               validate=validate.Range(min=1, max=10**9),
                               metadata={"description": "compensation fee, fen per tCO2 "
                                                        "(6000 = 60.00 yuan/t)"})
    eligible_region_code = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9]{6}$"), metadata={"description": "credits from projects in this prefecture "
                                                 "or county (6-digit code), e.g. 522300"})
    eligible_methodologies = fields.List(fields.String(validate=validate.OneOf(
        METHODOLOGY_CODES)), required=True, validate=validate.Length(min=1, max=10))
    vintage_from = Integer(required=True, **_YEAR, metadata={
        "description": "earliest eligible vintage year"})
    vintage_to = Integer(required=True, **_YEAR, metadata={
        "description": "latest eligible vintage year"})
    report_deadline = fields.Date(required=True, metadata={
        "description": "last day (Asia/Shanghai) to file the year's report"})
    settlement_deadline = fields.Date(required=True, metadata={
        "description": "last day (Asia/Shanghai) to settle the obligation"})
    fund_account_code = fields.String(required=True, validate=validate.Length(min=1, max=100),
                                      metadata={"description": "the forest compensation "
                                                               "fund's CNY ledger account"})
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


class PilotRuleSchema(ma.Schema):
    year = Integer(required=True)
    share_bp = Integer(required=True, metadata={"description": "basis points"})
    fee_fen_per_tco2 = Integer(required=True, metadata={"description": "fen per tCO2"})
    eligible_region_code = fields.String(required=True)
    eligible_methodologies = fields.List(fields.String(), required=True)
    vintage_from = Integer(required=True)
    vintage_to = Integer(required=True)
    report_deadline = fields.Date(required=True)
    settlement_deadline = fields.Date(required=True)
    fund_account_code = fields.String(required=True)
    note = fields.String(allow_none=True)
    version = Integer(required=True, metadata={"description": "change counter"})
    updated_at = fields.DateTime(required=True)
    updated_by = fields.String(required=True)


# --- reports ----------------------------------------------------------------------------------


class EmissionLineIn(StrictSchema):
    fuel = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                         metadata={"description": "combustion: a fuel code (GET /pilot/fuels)"})
    consumption = DecimalText(load_default=None, allow_none=True, metadata={
        "description": "combustion: fuel consumed in the fuel's unit (t, or 10^4 Nm3)"})
    ncv_gj_per_unit = DecimalText(load_default=None, allow_none=True, metadata={
        "description": "measured net calorific value, GJ per unit; blank: the table's default"})
    carbon_content_tc_per_gj = DecimalText(load_default=None, allow_none=True, metadata={
        "description": "measured carbon content, tC/GJ; blank: the table's default"})
    oxidation_rate = DecimalText(load_default=None, allow_none=True, metadata={
        "description": "measured oxidation rate, a fraction; blank: the table's default"})
    generation_mwh = DecimalText(load_default=None, allow_none=True, metadata={
        "description": "generation method: electricity generated, MWh"})
    factor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=80),
                           metadata={"description": "generation method: a factor of the "
                                                    "table in tCO2/MWh, e.g. fossil_power"})


class EmissionReportIn(StrictSchema):
    plant_party_id = Integer(load_default=None, allow_none=True, **_ID, metadata={
        "description": "the plant (enterprise party); default: the caller's party"})
    year = Integer(required=True, **_YEAR, metadata={"description": "year of the emissions"})
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    factor_table = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=40),
                                 metadata={"description": "factor table version; default "
                                                          "the newest"})
    lines = fields.List(fields.Nested(EmissionLineIn), required=True,
                        validate=validate.Length(min=1, max=1000))
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


class EmissionUploadQuery(InputSchema):
    plant_party_id = Integer(load_default=None, **_QID, metadata={
        "description": "the plant; default: the caller's party"})
    year = Integer(required=True, **_QYEAR)
    method = fields.String(required=True, validate=validate.OneOf(METHODS), metadata={
        "description": "combustion (columns fuel, consumption, ncv_gj_per_unit, "
                       "carbon_content_tc_per_gj, oxidation_rate; Chinese headers accepted) "
                       "or generation (generation_mwh, factor)"})
    factor_table = fields.String(load_default=None, validate=validate.Length(min=1, max=40))
    note = fields.String(load_default=None, validate=validate.Length(max=1000))


class EmissionReportSchema(ma.Schema):
    id = Integer(required=True)
    plant_party_id = Integer(required=True)
    year = Integer(required=True)
    method = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REPORT_STATUSES))
    factor_table_version = fields.String(required=True)
    factor_table_sha256 = fields.String(required=True)
    lines = fields.List(fields.Dict(), required=True, metadata={
        "description": "each line's inputs, the factor values used and their source "
                       "(measured, or table:<factor>:<year>:<status>), its exact tCO2"})
    emissions_exact_tco2 = fields.String(required=True, metadata={
        "description": "exact total, six decimals, tCO2"})
    emissions_tco2 = Integer(required=True, metadata={
        "description": "total rounded once to whole tCO2, half up"})
    source = fields.String(required=True)
    filename = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    filed_at = fields.DateTime(required=True)
    filed_by = fields.String(required=True)
    reviewed_at = fields.DateTime(allow_none=True)
    reviewed_by = fields.String(allow_none=True)
    review_note = fields.String(allow_none=True)
    obligation_id = Integer(allow_none=True, metadata={
        "description": "the obligation fixed by its verification (when the year has a rule)"})
    report_deadline = fields.Date(allow_none=True, metadata={
        "description": "the year's report deadline (its rule's; null while it has none)"})
    filed_late = fields.Boolean(allow_none=True, metadata={
        "description": "filed after the report deadline (local date, Asia/Shanghai); null "
                       "while the year has no rule"})


class EmissionReportQuery(PageQuerySchema):
    year = Integer(load_default=None, **_QYEAR)
    status = fields.String(load_default=None, validate=validate.OneOf(REPORT_STATUSES))
    plant_party_id = Integer(load_default=None, **_QID)


class EmissionVerifyIn(StrictSchema):
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


class EmissionRejectIn(StrictSchema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=1000),
                         metadata={"description": "why (the plant files a corrected report)"})


# --- obligations --------------------------------------------------------------------------------


class PilotPlantSchema(ma.Schema):
    id = Integer(required=True)
    name_zh = fields.String(allow_none=True)
    name_en = fields.String(allow_none=True)
    credit_code = fields.String(allow_none=True)


class PilotSettlementSchema(ma.Schema):
    id = Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(SETTLEMENT_KINDS))
    quantity_t = Integer(required=True, metadata={"description": "tonnes settled, tCO2e"})
    amount_fen = Integer(required=True, metadata={"description": "fee paid, fen (0 for a "
                                                                 "retirement)"})
    from_account = fields.String(required=True)
    batch = fields.String(allow_none=True)
    vintage_year = Integer(allow_none=True)
    certificate_number = fields.String(allow_none=True)
    certificate_url = fields.String(allow_none=True)
    ledger_transaction_id = Integer(required=True)
    settled_on = fields.Date(required=True)
    settled_at = fields.DateTime(required=True)
    settled_by = fields.String(required=True)


_POSITION = {
    "obligation_t": "tonnes to compensate (tCO2): emissions x share, rounded once, half up",
    "retired_t": "tonnes settled by retired credits (tCO2e)",
    "fee_t": "tonnes settled by the fee (tCO2)",
    "paid_fen": "fee paid into the fund (fen) = fee_t x fee_fen_per_tco2",
    "shortfall_t": "tonnes still open (tCO2)",
    "shortfall_fen": "what paying the open tonnes as a fee costs (fen)",
}


class ObligationSchema(ma.Schema):
    id = Integer(required=True)
    code = fields.String(required=True)
    year = Integer(required=True)
    plant = fields.Nested(PilotPlantSchema, required=True)
    report_id = Integer(required=True)
    emissions_tco2 = Integer(required=True, metadata={"description": "verified, tCO2"})
    share_bp = Integer(required=True, metadata={"description": "basis points"})
    fee_fen_per_tco2 = Integer(required=True, metadata={"description": "fen per tCO2"})
    settlement_deadline = fields.Date(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    settled_on = fields.Date(allow_none=True)
    late = fields.Boolean(required=True, metadata={"description": "settled after the deadline"})
    settlements = fields.List(fields.Nested(PilotSettlementSchema), required=True)
    obligation_t = Integer(required=True, metadata={"description": _POSITION["obligation_t"]})
    retired_t = Integer(required=True, metadata={"description": _POSITION["retired_t"]})
    fee_t = Integer(required=True, metadata={"description": _POSITION["fee_t"]})
    paid_fen = Integer(required=True, metadata={"description": _POSITION["paid_fen"]})
    shortfall_t = Integer(required=True, metadata={"description": _POSITION["shortfall_t"]})
    shortfall_fen = Integer(required=True, metadata={"description": _POSITION["shortfall_fen"]})


class ObligationQuery(PageQuerySchema):
    year = Integer(load_default=None, **_QYEAR)
    plant_party_id = Integer(load_default=None, **_QID)


class PilotRetirementIn(StrictSchema):
    account = fields.String(required=True, validate=validate.Length(min=1, max=100), metadata={
        "description": "the plant's carbon account (code) holding the credits"})
    quantity_t = Integer(load_default=None, allow_none=True, **_TONNES, metadata={
        "description": "whole tonnes (tCO2e), taken from the lowest serials"})
    serial_block = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100), metadata={
        "description": "or: an exact serial block the account holds"})


class PilotSettleIn(StrictSchema):
    retirements = fields.List(fields.Nested(PilotRetirementIn), load_default=list,
                              validate=validate.Length(max=50), metadata={
        "description": "eligible credits to retire against the obligation"})
    fee_t = Integer(load_default=None, allow_none=True, **_TONNES, metadata={
        "description": "tonnes (tCO2) to settle by paying the fee into the fund"})
    from_account = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100), metadata={
        "description": "the plant's CNY account paying the fee; default its first CNY "
                       "holding account"})
    memo = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


# --- compliance and the fund --------------------------------------------------------------------


class PilotYearQuery(InputSchema):
    year = Integer(required=True, **_QYEAR, metadata={"description": "compliance year"})


class FundQuery(InputSchema):
    year = Integer(load_default=None, **_QYEAR, metadata={
        "description": "only payments for this compliance year"})


class CompliancePlantSchema(ma.Schema):
    plant = fields.Nested(PilotPlantSchema, required=True)
    year = Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES), metadata={
        "description": "no_report, report_filed, no_rule (verified, the year has no rule), "
                       "open, partially_settled, settled, overdue"})
    report_id = Integer(allow_none=True)
    report_status = fields.String(allow_none=True)
    report_filed_late = fields.Boolean(allow_none=True, metadata={
        "description": "its report was filed after the year's report deadline"})
    emissions_tco2 = Integer(allow_none=True, metadata={"description": "verified, tCO2"})
    obligation_id = Integer(allow_none=True)
    obligation_code = fields.String(allow_none=True)
    settlement_deadline = fields.Date(allow_none=True)
    settled_on = fields.Date(allow_none=True)
    late = fields.Boolean(required=True)
    obligation_t = Integer(allow_none=True, metadata={"description": _POSITION["obligation_t"]})
    retired_t = Integer(allow_none=True, metadata={"description": _POSITION["retired_t"]})
    fee_t = Integer(allow_none=True, metadata={"description": _POSITION["fee_t"]})
    paid_fen = Integer(allow_none=True, metadata={"description": _POSITION["paid_fen"]})
    shortfall_t = Integer(allow_none=True, metadata={"description": _POSITION["shortfall_t"]})
    shortfall_fen = Integer(allow_none=True, metadata={"description": _POSITION["shortfall_fen"]})


class ComplianceSchema(ma.Schema):
    year = Integer(required=True)
    as_of = fields.Date(required=True, metadata={"description": "the local date of the status"})
    rule = fields.Dict(allow_none=True)
    plants = fields.List(fields.Nested(CompliancePlantSchema), required=True)
    totals = fields.Dict(keys=fields.String(), values=Integer(), required=True, metadata={
        "description": "sums over the plants with an obligation (units as in each field)"})
    status_counts = fields.Dict(keys=fields.String(), values=Integer(), required=True)


class FundLineSchema(ma.Schema):
    settlement_id = Integer(required=True)
    obligation_code = fields.String(required=True)
    year = Integer(required=True)
    plant_party_id = Integer(required=True)
    plant_name_zh = fields.String(allow_none=True)
    tonnes = Integer(required=True, metadata={"description": "tCO2 settled by this payment"})
    amount_fen = Integer(required=True, metadata={"description": "fen paid into the fund"})
    ledger_transaction_id = Integer(required=True)
    from_account = fields.String(required=True)
    settled_on = fields.Date(required=True)


class FundPlantSchema(ma.Schema):
    plant_party_id = Integer(required=True)
    plant_name_zh = fields.String(allow_none=True)
    payments = Integer(required=True)
    tonnes = Integer(required=True, metadata={"description": "tCO2"})
    amount_fen = Integer(required=True, metadata={"description": "fen"})


class FundAccountSchema(ma.Schema):
    account = fields.String(required=True)
    balance_fen = Integer(required=True, metadata={"description": "posted balance, fen"})
    available_fen = Integer(allow_none=True, metadata={
        "description": "balance less pending payouts, fen"})


class FundSchema(ma.Schema):
    year = Integer(allow_none=True)
    as_of = fields.Date(required=True)
    funds = fields.List(fields.Nested(FundAccountSchema), required=True)
    lines = fields.List(fields.Nested(FundLineSchema), required=True)
    by_plant = fields.List(fields.Nested(FundPlantSchema), required=True)
    total_fen = Integer(required=True, metadata={"description": "fen paid in by the pilot"})
