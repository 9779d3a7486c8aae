"""Request and response shapes of the compensation API. Money is integer fen (`*_fen`),
shares are integers that are parts of the agreement's `share_basis`, portions basis points
(`*_bp`); Chinese and English names side by side. Integers are strict: 1.5 or true are
refused, never rounded."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from catalog.schemas import InputSchema, StrictSchema
from ecovalue.api import Integer, PageQuerySchema
from ledger.compensation import clearing, schedule, terms
from ledger.compensation.models import SETTLEMENT_STATUSES

#: the largest amount an agreement may name, fen (10 trillion yuan): far beyond any budget,
#: and sums of it stay inside a 64-bit column
MAX_AMOUNT_FEN = 10**15
_ID: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=2**63 - 1)}
_KEY = validate.Length(min=1, max=30)
_CODE = validate.Length(min=1, max=40)
_SHARE: dict[str, Any] = {"strict": True, "validate": validate.Range(min=-10**9, max=10**9)}
_PERIOD: dict[str, Any] = {"validate": validate.Length(min=4, max=7), "metadata": {
    "description": "assessment period: a year (2019), half (2019-H2), quarter (2019-Q3) or "
                   "month (2019-07)"}}


def _text(limit: int, **kwargs: Any) -> fields.String:
    return fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=limit), **kwargs)


# --- agreement terms -------------------------------------------------------------------------


class RecipientIn(StrictSchema):
    party = fields.String(required=True, validate=_KEY, metadata={
        "description": "key of a party of this agreement"})
    share = Integer(load_default=None, allow_none=True, **_SHARE, metadata={
        "description": "'split': its part of share_basis (the split's shares sum to it)"})


class FailureIn(StrictSchema):
    party = fields.String(required=True, validate=_KEY, metadata={
        "description": "key of the party whose allocation a failure affects"})
    action = fields.String(required=True, metadata={
        "description": "withhold (returned to the contributors by their contribution shares), "
                       "redirect (paid to one named party) or split (paid to several named "
                       "parties by shares)", "enum": list(clearing.ACTIONS)})
    to = fields.List(fields.Nested(RecipientIn), load_default=list,
                     validate=validate.Length(max=50))
    portion_bp = Integer(load_default=clearing.WHOLE_BP, strict=True,
                         validate=validate.Range(min=-10**9, max=10**9), metadata={
                             "description": "basis points of the allocation affected, "
                                            "1-10000 (default the whole)"})


class GepIn(StrictSchema):
    region_code = fields.String(required=True, validate=validate.Length(min=6, max=12), metadata={
        "description": "the region (GB/T 2260) whose published valuation runs give the change"})
    base_year = Integer(load_default=None, allow_none=True, strict=True,
                        validate=validate.Range(min=1949, max=2200), metadata={
                            "description": "the year compared with (default: the year before "
                                           "the period's, a year-on-year change)"})


class ConditionIn(StrictSchema):
    key = fields.String(required=True, validate=_KEY)
    name_zh = _text(200, metadata={"description": "e.g. 清水铺断面水质达到III类"})
    name_en = _text(200)
    section = fields.String(validate=_CODE, metadata={
        "description": "code of a registered section (GET /compensation/sections); left out "
                       "for a condition on `gep`"})
    gep = fields.Nested(GepIn, metadata={
        "description": "gep_change_percent from two published valuation runs of this region "
                       "(the period's year against base_year), instead of a monitored value "
                       "at a section: (GEP_year - GEP_base) / GEP_base x 100, at the runs' "
                       "constant (base-year) prices"})
    indicator = fields.String(required=True, metadata={
        "description": "water_quality_class (GB 3838 class, met when at most the target), "
                       "forest_coverage_percent or gep_change_percent (met when at least the "
                       "target; a GEP change is read from published valuation runs with "
                       "`gep`, or entered as a monitored value at a section)",
        "enum": list(clearing.INDICATORS)})
    target = fields.Raw(required=True, metadata={
        "description": "water-quality class as I..V, 劣V or 1..6; else a number (percent)"})
    comparison = fields.String(load_default=None, allow_none=True, metadata={
        "description": "at_most or at_least; default the indicator's",
        "enum": list(clearing.COMPARISONS)})
    on_failure = fields.Nested(FailureIn, required=True)


class PartyIn(StrictSchema):
    key = fields.String(required=True, validate=_KEY, metadata={
        "description": "the party's name inside the agreement, e.g. yunnan"})
    party_id = Integer(required=True, **_ID, metadata={"description": "catalog party"})
    region_code = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(min=6, max=12), metadata={
                                    "description": "the region (GB/T 2260 code) it acts "
                                                   "for; required in a horizontal agreement"})
    role_zh = _text(100, metadata={"description": "e.g. 上游 / 下游 / 出资方"})
    contribution_share = Integer(required=True, **_SHARE, metadata={
        "description": "its part of share_basis in the contributions"})
    allocation_share = Integer(required=True, **_SHARE, metadata={
        "description": "its part of share_basis in the allocations"})
    pay_from = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(min=1, max=100), metadata={
                                 "description": "ledger account (code) it pays from; default "
                                                "COMP-P<party>-TREASURY (external)"})
    receive_into = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=100), metadata={
                                     "description": "ledger account (code) it is paid into; "
                                                    "default COMP-<agreement>-<KEY> (fund)"})


class ScheduleIn(StrictSchema):
    type = fields.String(required=True, metadata={
        "description": "equal, instalments or annuity", "enum": list(schedule.SCHEDULE_TYPES)})
    amounts_fen = fields.List(Integer(strict=True, validate=validate.Range(
        min=-MAX_AMOUNT_FEN, max=MAX_AMOUNT_FEN)), load_default=None, allow_none=True,
        validate=validate.Length(max=terms.MAX_PERIODS),
        metadata={"description": "instalments: one amount per period, summing to amount_fen"})
    rate = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20),
                         metadata={"description": "annuity: rate per period as a decimal "
                                                  "fraction, e.g. \"0.05\""})


class TermsIn(StrictSchema):
    code = fields.String(required=True, validate=_CODE, metadata={
        "description": "e.g. CHISHUI-2018 (capital letters, digits, '-')"})
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = _text(200)
    kind = fields.String(required=True, metadata={
        "description": "vertical (纵向), horizontal (横向), market (市场化) or "
                       "thermal_power_fund (火电企业森林生态补偿基金)", "enum": list(terms.KINDS)})
    amount_fen = Integer(required=True, strict=True, validate=validate.Range(
        min=-MAX_AMOUNT_FEN, max=MAX_AMOUNT_FEN), metadata={
            "description": "the whole amount over all periods, fen (annuity: its present "
                           "value)"})
    share_basis = Integer(required=True, strict=True, validate=validate.Range(
        min=-10**9, max=10**9), metadata={
            "description": "the whole that shares are parts of (10 for 1:5:4, 100 for "
                           "percent)"})
    periods = fields.List(fields.String(validate=validate.Length(max=7)), required=True,
                          validate=validate.Length(max=terms.MAX_PERIODS),
                          metadata={"description": "the assessment periods, in time order"})
    schedule = fields.Nested(ScheduleIn, required=True)
    parties = fields.List(fields.Nested(PartyIn), required=True,
                          validate=validate.Length(max=terms.MAX_PARTIES))
    conditions = fields.List(fields.Nested(ConditionIn), load_default=list,
                             validate=validate.Length(max=terms.MAX_CONDITIONS))
    note = _text(1000)
    signed_on = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "date the agreement was signed"})

    @ma.post_load
    def _jsonable(self, data: dict, **_kwargs: Any) -> dict:
        if data.get("signed_on") is not None:
            data["signed_on"] = data["signed_on"].isoformat()
        return data


class InstalmentSchema(ma.Schema):
    period = fields.String()
    payment_fen = fields.Integer(metadata={"description": "what the period's settlement "
                                                          "clears, fen"})
    principal_fen = fields.Integer(metadata={"description": "part of the whole it repays"})
    interest_fen = fields.Integer()
    balance_after_fen = fields.Integer()
    present_value_fen = fields.Integer(metadata={"description": "the payment discounted to "
                                                                "the start, fen"})


class AgreementSchema(ma.Schema):
    id = fields.Integer()
    code = fields.String()
    version = fields.Integer()
    status = fields.String(metadata={"description": "draft, in_force, superseded or "
                                                    "terminated"})
    kind = fields.String()
    kind_label = fields.String(metadata={"description": "Chinese (English)"})
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    amount_fen = fields.Integer()
    terms = fields.Dict()
    terms_sha256 = fields.String()
    schedule = fields.List(fields.Nested(InstalmentSchema))
    created_at = fields.DateTime()
    created_by = fields.String()
    in_force_at = fields.DateTime(allow_none=True)
    in_force_by = fields.String(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)


class AgreementQuerySchema(InputSchema):
    kind = fields.String(load_default=None, validate=validate.OneOf(terms.KINDS))


# --- sections and monitored values -------------------------------------------------------------


class SectionIn(StrictSchema):
    code = fields.String(required=True, validate=_CODE, metadata={
        "description": "e.g. QINGSHUIPU (capital letters, digits, '-')"})
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = _text(200)
    river = _text(100)
    region_code = fields.String(required=True, validate=validate.Length(min=1, max=12),
                                metadata={"description": "catalog region (GB/T 2260 code)"})
    catalog_product_id = Integer(load_default=None, allow_none=True, **_ID, metadata={
        "description": "catalog product whose forest_coverage records this section reads"})
    note = _text(500)


class SectionSchema(ma.Schema):
    id = fields.Integer()
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    river = fields.String(allow_none=True)
    region_code = fields.String()
    catalog_product_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()
    created_by = fields.String()


class ValueIn(StrictSchema):
    section = fields.String(required=True, validate=_CODE)
    period = fields.String(required=True, **_PERIOD)
    indicator = fields.String(required=True, metadata={"enum": list(clearing.INDICATORS)})
    value = fields.Raw(required=True, metadata={
        "description": "water-quality class as I..V, 劣V or 1..6; else a number (percent)"})
    source = _text(300, metadata={"description": "monitoring report, published valuation run"})


class ValuesIn(StrictSchema):
    values = fields.List(fields.Nested(ValueIn), required=True,
                         validate=validate.Length(min=1, max=10_000))


class CatalogReadIn(StrictSchema):
    section = fields.String(required=True, validate=_CODE)
    period = fields.String(required=True, validate=validate.Length(min=4, max=4),
                           metadata={"description": "a year"})
    indicator = fields.String(load_default="forest_coverage_percent",
                              validate=validate.OneOf(["forest_coverage_percent"]))


class AssessmentSchema(ma.Schema):
    id = fields.Integer()
    section = fields.String()
    period = fields.String()
    indicator = fields.String()
    value = fields.Float(metadata={"description": "in the indicator's unit (class 1..6 for "
                                                  "I..V, 劣V; percent)"})
    origin = fields.String(metadata={"description": "entered, imported or catalog"})
    source = fields.String(allow_none=True)
    catalog_record_id = fields.Integer(allow_none=True)
    recorded_at = fields.DateTime()
    recorded_by = fields.String()


class AssessmentQuerySchema(PageQuerySchema, InputSchema):
    section = fields.String(load_default=None, validate=_CODE)
    period = fields.String(load_default=None, validate=validate.Length(max=7))


class AssessmentFileSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8 or GBK) or XLSX"})


class AssessmentImportQuerySchema(InputSchema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "check every row and report what would be recorded; write nothing"})


class AssessmentImportReportSchema(ma.Schema):
    dry_run = fields.Boolean()
    recorded = fields.Integer(metadata={"description": "values recorded (or that would be)"})
    values = fields.List(fields.Nested(AssessmentSchema))


# --- settlements -------------------------------------------------------------------------------


class SettleIn(StrictSchema):
    period = fields.String(required=True, **_PERIOD)


class SettlementApproveIn(StrictSchema):
    note = _text(500, metadata={"description": "remark recorded with the approval"})


class SettlementRejectIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class PaymentSchema(ma.Schema):
    id = fields.Integer()
    seq = fields.Integer()
    payer_key = fields.String()
    payer_party_id = fields.Integer()
    payee_key = fields.String()
    payee_party_id = fields.Integer()
    from_account = fields.String(metadata={"description": "ledger account debited"})
    to_account = fields.String(metadata={"description": "ledger account credited"})
    amount_fen = fields.Integer()
    status = fields.String(metadata={"description": "pending, posted or voided"})
    pending_tx_id = fields.Integer(metadata={"description": "the pending ledger transfer"})
    resolution_tx_id = fields.Integer(allow_none=True, metadata={
        "description": "the ledger transaction that posted or voided it"})


class SettlementSchema(ma.Schema):
    id = fields.Integer()
    agreement_code = fields.String()
    agreement_version = fields.Integer()
    period = fields.String()
    status = fields.String(metadata={"description": "prepared, approved or rejected"})
    amount_fen = fields.Integer(metadata={"description": "the period's amount, fen"})
    payments_total_fen = fields.Integer()
    statement = fields.Dict(metadata={
        "description": "evaluations (each condition, its value and whether it was met), "
                       "positions (each party's contribution, allocation, withheld, received "
                       "and net, fen), adjustments (what each failed condition moved), "
                       "transfers (who pays whom, netted)"})
    payments = fields.List(fields.Nested(PaymentSchema))
    prepared_at = fields.DateTime()
    prepared_by = fields.String()
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_note = fields.String(allow_none=True)


class SettlementQuerySchema(PageQuerySchema, InputSchema):
    agreement = fields.String(load_default=None, validate=_CODE)
    period = fields.String(load_default=None, validate=validate.Length(max=7))
    status = fields.String(load_default=None, validate=validate.OneOf(SETTLEMENT_STATUSES))


class StatementQuerySchema(InputSchema):
    format = fields.String(load_default="xlsx",
                           validate=validate.OneOf(["csv", "xlsx", "html"]),
                           metadata={"description": "csv (UTF-8 with BOM), xlsx, or html (a "
                                                    "printable page, Chinese with English)"})
