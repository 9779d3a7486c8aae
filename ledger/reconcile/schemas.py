"""Request and response shapes of the reconciliation API. Money is integer fen (`*_fen`),
signed from the account's side (money in positive); months are `YYYY-MM`."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from catalog.schemas import InputSchema, StrictSchema
from ecovalue.api import Integer, PageQuerySchema
from ledger.reconcile import matching, statement_file
from ledger.reconcile.models import ITEM_CATEGORIES, ITEM_STATUSES, RUN_STATUSES, SOURCES

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
_FEN: dict[str, Any] = {"metadata": {"description": "fen (1/100 yuan), signed: money in positive"}}
_ID: dict[str, Any] = {"validate": validate.Range(min=1, max=2**63 - 1)}
BANK_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$"
_CODE = validate.Regexp(BANK_CODE)


def month_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(MONTH), metadata={
        "description": "a month, YYYY-MM (Asia/Shanghai)"}, **kwargs)


class RecMappingIn(StrictSchema):
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200),
                            metadata={"description": "the bank's name (Chinese)"})
    source = fields.String(load_default="bank", validate=validate.OneOf(SOURCES))
    columns = fields.Dict(keys=fields.String(validate=validate.OneOf(statement_file.FIELDS)),
                          values=fields.List(fields.String(validate=validate.Length(
                              min=1, max=100)), validate=validate.Length(min=1, max=20)),
                          required=True, metadata={
                              "description": "canonical field -> the headers this bank "
                                             f"uses; fields: {', '.join(statement_file.FIELDS)}"})


class RecMappingSchema(ma.Schema):
    bank_code = fields.String()
    name_zh = fields.String()
    source = fields.String()
    columns = fields.Dict()
    updated_by = fields.String()
    updated_at = fields.DateTime()


class RecRuleSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    name = fields.String()
    kind = fields.String(metadata={"description": ", ".join(matching.RULE_KINDS)})
    enabled = fields.Boolean()
    window_days = Integer(metadata={"description": "days between the two dates, at most"})
    confidence = fields.Float()


class RecRulesIn(StrictSchema):
    rules = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=50),
                        metadata={"description": "ordered rules: {name, kind, enabled, "
                                                 "window_days, confidence, ...}"})
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=500))


class RecRulesSchema(ma.Schema):
    version = Integer(metadata={"description": "0: the defaults, never saved"})
    rules = fields.List(fields.Dict())


class RecImportQuery(InputSchema):
    account = fields.String(required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "ledger account code the bank account "
                                                     "mirrors"})
    period = month_field(required=True)
    bank_code = fields.String(load_default="DEFAULT", validate=_CODE, metadata={
        "description": "whose saved column mapping reads the file (DEFAULT: the usual "
                       "headers)"})
    opening_balance_fen = Integer(load_default=None, allow_none=True, **_FEN)
    closing_balance_fen = Integer(load_default=None, allow_none=True, **_FEN)


class RecImportFile(ma.Schema):
    file = Upload(required=True, metadata={"description": "CSV (UTF-8 or GBK) or XLSX"})


class RecImportResultSchema(ma.Schema):
    import_id = Integer()
    statement_id = Integer()
    account_code = fields.String()
    period = fields.Date()
    bank_code = fields.String()
    format = fields.String()
    encoding = fields.String()
    rows_read = Integer()
    lines_added = Integer()
    lines_already_present = Integer(metadata={"description": "held from an earlier import: "
                                                             "not added again"})
    opening_balance_fen = Integer(**_FEN)
    closing_balance_fen = Integer(**_FEN)
    line_count = Integer()


class RecStatementSchema(ma.Schema):
    id = Integer()
    account_code = fields.String()
    period = fields.Date()
    bank_code = fields.String()
    opening_balance_fen = Integer(**_FEN)
    closing_balance_fen = Integer(**_FEN)
    line_count = Integer()
    created_by = fields.String()
    created_at = fields.DateTime()


class RecStatementQuery(PageQuerySchema):
    account = fields.String(validate=validate.Length(max=100))
    period = month_field()


class RecLineSchema(ma.Schema):
    id = Integer()
    row_number = Integer()
    value_date = fields.Date()
    amount_fen = Integer(**_FEN)
    balance_fen = Integer(allow_none=True, **_FEN)
    bank_serial = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    transaction_id = Integer(allow_none=True)
    counterparty = fields.String(allow_none=True)
    memo = fields.String(allow_none=True)


class RecImportSchema(ma.Schema):
    id = Integer()
    filename = fields.String()
    sha256 = fields.String()
    format = fields.String()
    encoding = fields.String()
    rows_read = Integer()
    lines_added = Integer()
    lines_already_present = Integer()
    created_by = fields.String()
    created_at = fields.DateTime()


class RecRunIn(StrictSchema):
    account = fields.String(required=True, validate=validate.Length(min=1, max=100))
    period = month_field(required=True)


class RecRunQuery(PageQuerySchema):
    account = fields.String(validate=validate.Length(max=100))
    period = month_field()
    status = fields.String(validate=validate.OneOf(RUN_STATUSES))


class RecSummarySchema(ma.Schema):
    counts = fields.Dict(keys=fields.String(), values=Integer())
    unresolved = Integer()
    ledger_opening_fen = Integer(**_FEN)
    ledger_closing_fen = Integer(**_FEN)
    statement_opening_fen = Integer(**_FEN)
    statement_closing_fen = Integer(**_FEN)
    opening_difference_fen = Integer(**_FEN)
    outstanding_statement_fen = Integer(**_FEN)
    outstanding_ledger_fen = Integer(**_FEN)
    reconciled_fen = Integer(metadata={"description": "ledger closing + opening difference + "
                                                      "outstanding statement - outstanding "
                                                      "ledger, fen"})
    balanced = fields.Boolean()


class RecCarriedDecisionSchema(ma.Schema):
    decision = fields.String(metadata={"description": "unmatch, match, confirm or explain"})
    item_id = Integer(metadata={"description": "the item of the replaced run"})
    category = fields.String()
    line_ids = fields.List(Integer())
    transaction_ids = fields.List(Integer())
    reason = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    new_item_ids = fields.List(Integer(), metadata={"description": "items of this run it "
                                                                  "changed or made"})
    why = fields.String(metadata={"description": "why it no longer applies"})


class RecCarryOverSchema(ma.Schema):
    from_run = Integer()
    applied = fields.List(fields.Nested(RecCarriedDecisionSchema))
    not_applicable = fields.List(fields.Nested(RecCarriedDecisionSchema))


class RecRunSchema(ma.Schema):
    id = Integer()
    statement_id = Integer()
    account_code = fields.String()
    period = fields.Date()
    status = fields.String()
    rule_set_version = Integer()
    rules = fields.List(fields.Dict())
    prepared_by = fields.String()
    created_at = fields.DateTime()
    signed_off_by = fields.String(allow_none=True)
    signed_off_at = fields.DateTime(allow_none=True)
    sign_off_note = fields.String(allow_none=True)
    assertion_id = Integer(allow_none=True)
    summary = fields.Nested(RecSummarySchema)
    carried_over = fields.Nested(RecCarryOverSchema, allow_none=True, metadata={
        "description": "the officers' decisions of the open run this one replaced: those "
                       "applied again and those that no longer apply, with why"})


class RecItemQuery(PageQuerySchema):
    category = fields.String(validate=validate.OneOf(ITEM_CATEGORIES))
    status = fields.String(validate=validate.OneOf(ITEM_STATUSES))


class RecItemSchema(ma.Schema):
    id = Integer()
    category = fields.String()
    rule = fields.String(allow_none=True)
    confidence = fields.Float(allow_none=True)
    status = fields.String()
    line_ids = fields.List(Integer())
    transaction_ids = fields.List(Integer())
    difference_fen = Integer(metadata={"description": "lines minus ledger movements, fen"})
    gap_days = Integer()
    related_id = Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class RecReasonIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class RecOptionalReasonIn(StrictSchema):
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=1000))


class RecMatchIn(StrictSchema):
    line_ids = fields.List(Integer(**_ID), required=True,
                           validate=validate.Length(min=1, max=1000))
    transaction_ids = fields.List(Integer(**_ID), required=True,
                                  validate=validate.Length(min=1, max=1000))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class RecSignOffIn(StrictSchema):
    note = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=1000))


class RecPeriodSchema(ma.Schema):
    month = fields.Date()
    status = fields.String()
    closed_at = fields.DateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class RecNewItemsSchema(ma.Schema):
    item_ids = fields.List(Integer())


class RecReportSectionSchema(ma.Schema):
    key = fields.String()
    title_zh = fields.String()
    title_en = fields.String()
    columns = fields.List(fields.String())
    rows = fields.List(fields.Dict())
    note = fields.String(allow_none=True)


class RecReportSchema(ma.Schema):
    period = fields.String(metadata={"description": "YYYY-MM"})
    generated_at = fields.DateTime()
    generated_by = fields.String()
    sections = fields.List(fields.Nested(RecReportSectionSchema))
