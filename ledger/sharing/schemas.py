"""Request and response shapes of benefit sharing. Units are in the field names (`*_fen`
integer fen, `*_bp` basis points of 10,000, `area_m2` whole square metres, `trees` whole
trees); Chinese and English side by side. Integers are strict: 1.5, "1" or true are refused,
never rounded. ID-card numbers and bank accounts only ever appear masked."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from catalog.schemas import InputSchema, StrictSchema
from ecovalue.api import Integer, PageQuerySchema, free_form
from ledger.sharing.models import REGISTER_STATUSES, RUN_KINDS, RUN_STATUSES, SOURCE_KINDS

_ID: dict[str, Any] = {"strict": True, "validate": validate.Range(min=1, max=2**63 - 1)}
#: an id in a query string (text, read as an integer)
_QUERY_ID: dict[str, Any] = {"validate": validate.Range(min=1, max=2**63 - 1)}
_FEN: dict[str, Any] = {"strict": True, "metadata": {"description": "integer fen (1/100 yuan)"}}
_REF = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$",
                       error="1-100 characters: letters, digits, '_', '.', ':', '-'")
_CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$",
                        error="1-60 characters: letters, digits, '_', '.', '-'")
_COUNT: dict[str, Any] = {"strict": True, "validate": validate.Range(min=0, max=10**9)}


def _ids(**kwargs: Any) -> fields.List:
    return fields.List(Integer(**_ID), validate=validate.Length(min=1, max=100_000), **kwargs)


# --- register ----------------------------------------------------------------------------------


class SharingRegisterEntryIn(StrictSchema):
    collective_party_id = Integer(required=True, **_ID)
    household_party_id = Integer(required=True, **_ID)
    effective_date = fields.Date(required=True, metadata={
        "description": "local date (Asia/Shanghai) from which the entry holds; not in the "
                       "future"})
    status = fields.String(load_default="member", validate=validate.OneOf(REGISTER_STATUSES))
    shares = Integer(load_default=0, **_COUNT, metadata={"description": "股份, whole shares"})
    members = Integer(load_default=1, **_COUNT, metadata={"description": "people in the household"})
    trees = Integer(load_default=0, **_COUNT, metadata={
        "description": "trees enrolled in a single-tree programme"})
    area_m2 = Integer(load_default=0, **_COUNT, metadata={
        "description": "contracted forest area, whole square metres (1 mu = 2000/3 m2)"})
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class SharingRegisterEntrySchema(ma.Schema):
    id = fields.Integer()
    collective_party_id = fields.Integer()
    household_party_id = fields.Integer()
    effective_date = fields.Date()
    status = fields.String()
    shares = fields.Integer()
    members = fields.Integer()
    trees = fields.Integer()
    area_m2 = fields.Integer()
    reason = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()


class SharingRegisterQuery(InputSchema):
    as_of = fields.Date(load_default=None, metadata={
        "description": "the register as of the end of this local date (default today)"})


class SharingHistoryQuery(PageQuerySchema, InputSchema):
    household_party_id = Integer(load_default=None, **_QUERY_ID)


class SharingRegisterRowSchema(ma.Schema):
    household_party_id = fields.Integer()
    name_zh = fields.String()
    id_number_masked = fields.String(allow_none=True)
    bank_account_masked = fields.String(allow_none=True)
    bank_name = fields.String(allow_none=True)
    joined_on = fields.Date()
    effective_date = fields.Date(metadata={"description": "date of the entry in force"})
    shares = fields.Integer()
    members = fields.Integer()
    trees = fields.Integer()
    area_m2 = fields.Integer()
    account_code = fields.String(allow_none=True, metadata={"description": "ledger account"})


class SharingRegisterSchema(ma.Schema):
    collective_party_id = fields.Integer()
    as_of = fields.Date()
    household_count = fields.Integer()
    total_shares = fields.Integer()
    total_members = fields.Integer()
    total_trees = fields.Integer()
    total_area_m2 = fields.Integer()
    households = fields.List(fields.Nested(SharingRegisterRowSchema))


# --- rules, funds, programmes ------------------------------------------------------------------


_DEFINITION_DOC = (
    "the split tree: {kind: split|villages, parts: [...]}; each part {kind, label, share_bp "
    "(basis points; the parts of a split sum to 10000), ...}: account {account: ledger "
    "account code}, collective, households {basis: shares|area_m2|trees|members|equal}, "
    "villages {basis: shares|area_m2|trees|members|households|equal, parts}, split {parts}")


class SharingRuleIn(StrictSchema):
    code = fields.String(required=True, validate=_CODE)
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    source_kind = fields.String(required=True, validate=validate.OneOf(SOURCE_KINDS))
    source_ref = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(max=200))
    definition = free_form(required=True, metadata={"description": _DEFINITION_DOC})


class SharingVersionIn(StrictSchema):
    definition = free_form(required=True, metadata={"description": _DEFINITION_DOC})


class SharingVersionSchema(ma.Schema):
    version = fields.Integer()
    definition = fields.Dict()
    definition_sha256 = fields.String()
    used_at = fields.DateTime(allow_none=True, metadata={
        "description": "first used by a run; from then on immutable"})
    created_by = fields.String()
    created_at = fields.DateTime()


class SharingRuleSchema(ma.Schema):
    id = fields.Integer()
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    source_kind = fields.String()
    source_ref = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = fields.DateTime()
    versions = fields.List(fields.Nested(SharingVersionSchema))


class SharingFundIn(StrictSchema):
    account_code = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class SharingFundSchema(ma.Schema):
    id = fields.Integer()
    account_code = fields.String()
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    attributed_fen = fields.Integer(metadata={"description": "distributed and attributed, fen"})
    created_at = fields.DateTime()


class SharingProgrammeIn(StrictSchema):
    code = fields.String(required=True, validate=_CODE)
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    price_fen_per_tree_year = Integer(required=True, strict=True,
                                      validate=validate.Range(min=1, max=10**8),
                                      metadata={"description": "fen per tree and year (300 = "
                                                               "3 yuan, Wangmo)"})
    max_trees_per_household = Integer(required=True, strict=True,
                                      validate=validate.Range(min=1, max=10**6))
    max_trees_per_mu = Integer(required=True, strict=True, validate=validate.Range(min=0,
                                                                                   max=10**4),
                               metadata={"description": "0: no cap by area"})
    term_years = Integer(required=True, strict=True, validate=validate.Range(min=1, max=100))


class SharingProgrammeSchema(ma.Schema):
    id = fields.Integer()
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    price_fen_per_tree_year = fields.Integer()
    max_trees_per_household = fields.Integer()
    max_trees_per_mu = fields.Integer()
    term_years = fields.Integer()
    created_at = fields.DateTime()


# --- runs ----------------------------------------------------------------------------------------


class SharingRunIn(StrictSchema):
    reference = fields.String(required=True, validate=_REF, metadata={
        "description": "unique business reference: the same reference and body again "
                       "returns the first run"})
    fund_account_code = fields.String(required=True, validate=validate.Length(min=1, max=100))
    rule_code = fields.String(required=True, validate=validate.Length(min=1, max=60))
    rule_version = Integer(load_default=None, strict=True,
                           validate=validate.Range(min=1, max=2**31 - 1),
                           metadata={"description": "default: the rule's latest version"})
    amount_fen = Integer(required=True, **_FEN)
    collective_party_ids = _ids(required=True)
    household_party_ids = _ids(load_default=None, allow_none=True, metadata={
        "description": "only these households of the collectives (default: all)"})
    record_date = fields.Date(required=True, metadata={
        "description": "the register is read as of this local date"})
    window_from = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "attribute to the fund's inflows from this date (default: all)"})
    memo = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))


class SharingPurchaseIn(StrictSchema):
    reference = fields.String(required=True, validate=_REF)
    programme_code = fields.String(required=True, validate=validate.Length(min=1, max=60))
    buyer_account_code = fields.String(required=True, validate=validate.Length(min=1, max=100))
    collective_party_ids = _ids(required=True)
    household_party_ids = _ids(load_default=None, allow_none=True)
    record_date = fields.Date(required=True)
    years = Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))
    memo = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))


class SharingRunSchema(ma.Schema):
    id = fields.Integer()
    kind = fields.String()
    reference = fields.String()
    status = fields.String()
    amount_fen = fields.Integer(metadata={"description": "fen"})
    payer_account_code = fields.String()
    rule_version_id = fields.Integer(allow_none=True)
    programme_id = fields.Integer(allow_none=True)
    buyer_party_id = fields.Integer(allow_none=True)
    years = fields.Integer(allow_none=True)
    collective_party_ids = fields.List(fields.Integer())
    record_date = fields.Date()
    window_from = fields.Date(allow_none=True)
    memo = fields.String(allow_none=True)
    line_count = fields.Integer()
    lines_sha256 = fields.String()
    prepared_by = fields.String()
    prepared_at = fields.DateTime()
    approved_by = fields.String(allow_none=True)
    paid_at = fields.DateTime(allow_none=True)
    paid_on = fields.Date(allow_none=True)
    ledger_batch_id = fields.Integer(allow_none=True)
    reversed_by = fields.String(allow_none=True)
    reversed_at = fields.DateTime(allow_none=True)
    reversed_on = fields.Date(allow_none=True, metadata={
        "description": "local date of the reversal (红字冲销) postings"})
    reversal_reason = fields.String(allow_none=True)
    reversal_transaction_ids = fields.List(fields.List(fields.Integer()), allow_none=True,
                                           metadata={"description": "[original, reversal] "
                                                     "ledger transaction ids"})


class SharingReverseIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500), metadata={
        "description": "why the paid distribution is reversed (shown on the statements)"})


class SharingRunQuery(PageQuerySchema, InputSchema):
    kind = fields.String(load_default=None, validate=validate.OneOf(RUN_KINDS))
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUSES))


class SharingLineSchema(ma.Schema):
    line_no = fields.Integer()
    kind = fields.String(metadata={"description": "account, collective or household"})
    party_id = fields.Integer(allow_none=True)
    village_party_id = fields.Integer(allow_none=True)
    account_code = fields.String()
    part = fields.String(metadata={"description": "the rule part (label path) that paid it"})
    basis_value = fields.Integer(allow_none=True, metadata={
        "description": "what the part was split by for this line (shares, trees ...)"})
    amount_fen = fields.Integer()
    transaction_id = fields.Integer(allow_none=True)


class SharingFormatQuery(InputSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "xlsx"]))


# --- traceability and statements ---------------------------------------------------------------


class SharingVillageTotalSchema(ma.Schema):
    village_party_id = fields.Integer(allow_none=True, metadata={
        "description": "null: parts paid to named accounts (township, fees)"})
    village_name_zh = fields.String(allow_none=True)
    collective_fen = fields.Integer()
    households_fen = fields.Integer()
    household_count = fields.Integer()
    accounts_fen = fields.Integer()


class SharingRecipientSchema(ma.Schema):
    run_id = fields.Integer()
    reference = fields.String()
    paid_on = fields.Date(allow_none=True)
    line_no = fields.Integer()
    kind = fields.String()
    party_id = fields.Integer(allow_none=True)
    name_zh = fields.String(allow_none=True)
    village_party_id = fields.Integer(allow_none=True)
    account_code = fields.String()
    amount_fen = fields.Integer()


class SharingPayerSchema(ma.Schema):
    party_id = fields.Integer()
    name_zh = fields.String(allow_none=True)


class SharingReversedRunSchema(ma.Schema):
    run_id = fields.Integer()
    reference = fields.String()
    paid_on = fields.Date(allow_none=True)
    reversed_on = fields.Date(allow_none=True)
    amount_fen = fields.Integer(metadata={"description": "the part of this payment the run "
                                          "had paid out, back in the fund since"})
    reason = fields.String(metadata={"description": "detail only (role-scoped)"})


class SharingPaymentTraceSchema(ma.Schema):
    transaction_id = fields.Integer()
    kind = fields.String(metadata={"description": "fund_inflow or single_tree"})
    fund_account_code = fields.String(allow_none=True)
    effective_date = fields.Date(allow_none=True)
    memo = fields.String(allow_none=True)
    amount_fen = fields.Integer(metadata={"description": "the payment, fen"})
    payers = fields.List(fields.Nested(SharingPayerSchema))
    payer_accounts = fields.List(fields.String())
    distributed_fen = fields.Integer()
    undistributed_fen = fields.Integer(metadata={
        "description": "still in the fund: distributed + undistributed = amount"})
    by_village = fields.List(fields.Nested(SharingVillageTotalSchema))
    reversed_runs = fields.List(fields.Nested(SharingReversedRunSchema), metadata={
        "description": "distributions that paid part of it and were reversed (红字冲销): "
                       "their part counts as undistributed"})
    rule = fields.String()
    recipients = fields.List(fields.Nested(SharingRecipientSchema), metadata={
        "description": "detail only (role-scoped)"})


class SharingSourceSchema(ma.Schema):
    kind = fields.String(metadata={"description": "fund_inflow or single_tree_buyer"})
    transaction_id = fields.Integer(allow_none=True)
    payer_party_id = fields.Integer(allow_none=True)
    payer_name_zh = fields.String(allow_none=True)
    payer_accounts = fields.List(fields.String())
    effective_date = fields.Date(allow_none=True)
    memo = fields.String(allow_none=True)
    amount_fen = fields.Integer()


class SharingReceiptSchema(ma.Schema):
    run_id = fields.Integer()
    reference = fields.String()
    kind = fields.String()
    kind_label = fields.String()
    paid_on = fields.Date(allow_none=True)
    line_no = fields.Integer()
    village_party_id = fields.Integer(allow_none=True)
    village_name_zh = fields.String(allow_none=True)
    transaction_id = fields.Integer(allow_none=True)
    amount_fen = fields.Integer(metadata={"description": "the line paid (its sources sum to it)"})
    status = fields.String(metadata={"description": "the run's: paid or reversed"})
    reversed_on = fields.Date(allow_none=True)
    reversal_transaction_id = fields.Integer(allow_none=True)
    reversal_reason = fields.String(allow_none=True)
    paid_fen = fields.Integer(metadata={"description": "amount_fen if paid between the dates"})
    reversed_fen = fields.Integer(metadata={
        "description": "amount_fen if reversed (红字冲销) between the dates"})
    net_fen = fields.Integer(metadata={"description": "paid_fen - reversed_fen"})
    payer = fields.String(allow_none=True, metadata={"description": "fund account or buyer"})
    buyer_party_id = fields.Integer(allow_none=True)
    buyer_name_zh = fields.String(allow_none=True)
    memo = fields.String(allow_none=True)
    sources = fields.List(fields.Nested(SharingSourceSchema), metadata={
        "description": "where each fen came from; sums exactly to amount_fen"})


class SharingPayerTotalSchema(ma.Schema):
    payer_party_id = fields.Integer(allow_none=True)
    payer_name_zh = fields.String(allow_none=True)
    amount_fen = fields.Integer()


class SharingHouseholdTraceSchema(ma.Schema):
    household_party_id = fields.Integer()
    name_zh = fields.String()
    received_fen = fields.Integer(metadata={"description": "net: paid_fen - reversed_fen"})
    paid_fen = fields.Integer()
    reversed_fen = fields.Integer()
    receipts = fields.List(fields.Nested(SharingReceiptSchema))
    by_payer = fields.List(fields.Nested(SharingPayerTotalSchema))


class SharingHouseholdStatementSchema(SharingHouseholdTraceSchema):
    id_number_masked = fields.String(allow_none=True)
    bank_account_masked = fields.String(allow_none=True)
    bank_name = fields.String(allow_none=True)
    date_from = fields.Date(allow_none=True)
    date_to = fields.Date(allow_none=True)


class SharingStatementQuery(InputSchema):
    date_from = fields.Date(load_default=None)
    date_to = fields.Date(load_default=None)


class SharingVillageQuery(InputSchema):
    run_id = Integer(load_default=None, **_QUERY_ID)


class SharingVillageLineSchema(ma.Schema):
    line_no = fields.Integer()
    kind = fields.String()
    kind_label = fields.String()
    party_id = fields.Integer(allow_none=True)
    name_zh = fields.String(allow_none=True)
    bank_account_masked = fields.String(allow_none=True)
    part = fields.String()
    basis_value = fields.Integer(allow_none=True)
    amount_fen = fields.Integer()
    transaction_id = fields.Integer(allow_none=True)


class SharingVillageRunSchema(ma.Schema):
    run_id = fields.Integer()
    reference = fields.String()
    kind = fields.String()
    kind_label = fields.String()
    paid_on = fields.Date(allow_none=True)
    payer = fields.String(allow_none=True)
    memo = fields.String(allow_none=True)
    total_fen = fields.Integer(metadata={"description": "the run's lines of this village"})
    status = fields.String(metadata={"description": "paid or reversed"})
    reversed_on = fields.Date(allow_none=True)
    reversal_reason = fields.String(allow_none=True)
    net_fen = fields.Integer(metadata={"description": "total_fen, or 0 once reversed"})
    lines = fields.List(fields.Nested(SharingVillageLineSchema))


class SharingVillageStatementSchema(ma.Schema):
    collective_party_id = fields.Integer()
    name_zh = fields.String()
    name_en = fields.String(allow_none=True)
    total_fen = fields.Integer(metadata={"description": "net: what the village kept"})
    reversed_fen = fields.Integer(metadata={"description": "paid, then reversed (红字冲销)"})
    runs = fields.List(fields.Nested(SharingVillageRunSchema))


class SharingRunSourceSchema(ma.Schema):
    transaction_id = fields.Integer(allow_none=True)
    payer_party_id = fields.Integer(allow_none=True)
    payer_name_zh = fields.String(allow_none=True)
    effective_date = fields.Date(allow_none=True)
    amount_fen = fields.Integer()


class SharingRunSourcesSchema(ma.Schema):
    run_id = fields.Integer()
    reference = fields.String()
    kind = fields.String()
    status = fields.String()
    amount_fen = fields.Integer()
    paid_on = fields.Date(allow_none=True)
    sources = fields.List(fields.Nested(SharingRunSourceSchema))


class SharingInflowSchema(ma.Schema):
    transaction_id = fields.Integer()
    effective_date = fields.Date()
    type = fields.String()
    memo = fields.String(allow_none=True)
    amount_fen = fields.Integer(metadata={"description": "paid into the fund, fen"})
    payer_party_id = fields.Integer(allow_none=True)
    payer_name_zh = fields.String(allow_none=True)
    payer_accounts = fields.List(fields.String())
    attributed_fen = fields.Integer(metadata={"description": "attributed to paid distributions"})
    unattributed_fen = fields.Integer(metadata={
        "description": "still to be attributed (0 once the payment was reversed)"})
    reversed_by_id = fields.Integer(allow_none=True)
