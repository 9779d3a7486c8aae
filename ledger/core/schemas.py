"""Request and response shapes of the ledger API.

Amounts are passed through unconverted (`RawInteger`) and checked by the service, so that
1.5, "1", 1.0, true or 2**64 are refused with the named `invalid-amount` error instead of
being coerced or truncated by a generic field.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from ecovalue.api import Integer, PageQuerySchema, free_form
from ledger.core.amounts import MAX_AMOUNT
from ledger.core.models import ACCOUNT_KINDS, ASSET_KINDS, PHASES

_I64 = {"type": "integer", "format": "int64"}


class Str(ma.fields.String):
    """A string without NUL characters (no database text can hold them)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("must not contain NUL characters")
        return text


class RawInteger(ma.fields.Raw):
    """Documented as an integer; validated by the service (never coerced)."""

    def __init__(self, *, minimum: int | None = None, **kwargs: Any) -> None:
        doc: dict[str, Any] = dict(_I64)
        doc["maximum"] = MAX_AMOUNT
        doc["minimum"] = minimum if minimum is not None else -MAX_AMOUNT - 1
        metadata = {**kwargs.pop("metadata", {}), **doc}
        super().__init__(metadata=metadata, **kwargs)


def _account_ref(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ma.ValidationError("an account id (integer) or code (string)")
    if isinstance(value, str) and ("\x00" in value or not 1 <= len(value) <= 100):
        raise ma.ValidationError("an account code has 1-100 characters")
    if isinstance(value, int) and not 1 <= value <= MAX_AMOUNT:
        raise ma.ValidationError("an account id is a positive 64-bit integer")


# --- assets ----------------------------------------------------------------------------------


class AssetCreateSchema(ma.Schema):
    code = Str(required=True, validate=ma.validate.Length(min=2, max=40),
                            metadata={"example": "CNY"})
    kind = Str(required=True, validate=ma.validate.OneOf(sorted(ASSET_KINDS)))
    name_zh = Str(required=True, validate=ma.validate.Length(min=1, max=200))
    name_en = Str(load_default=None, allow_none=True,
                               validate=ma.validate.Length(max=200))
    vintage_year = Integer(load_default=None, allow_none=True, strict=True,
                                     validate=ma.validate.Range(min=1990, max=2100))
    batch_reference = Str(load_default=None, allow_none=True,
                                       validate=ma.validate.Length(min=1, max=100))
    project_reference = Str(load_default=None, allow_none=True,
                                         validate=ma.validate.Length(min=1, max=100))
    attributes = free_form(keys=Str(), load_default=dict)


class AssetSchema(ma.Schema):
    id = Integer(required=True)
    code = Str(required=True)
    kind = Str(required=True)
    unit = Str(required=True, metadata={"description": "fen or tCO2e"})
    name_zh = Str(required=True)
    name_en = Str(allow_none=True)
    vintage_year = Integer(allow_none=True)
    batch_reference = Str(allow_none=True)
    project_reference = Str(allow_none=True)
    attributes = ma.fields.Dict(allow_none=True)
    created_by = Str(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AssetQuerySchema(PageQuerySchema):
    kind = Str(validate=ma.validate.OneOf(sorted(ASSET_KINDS)))
    vintage_year = Integer(validate=ma.validate.Range(min=1990, max=2100))


# --- accounts --------------------------------------------------------------------------------


class AccountCreateSchema(ma.Schema):
    party_id = Integer(required=True, strict=True,
                                 validate=ma.validate.Range(min=1, max=MAX_AMOUNT))
    asset = Str(required=True, validate=ma.validate.Length(min=1, max=40))
    kind = Str(required=True, validate=ma.validate.OneOf(ACCOUNT_KINDS))
    code = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(min=1, max=100),
                            metadata={"description": "default P<party>-<KIND>-<ASSET>"})
    name = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(min=1, max=200))
    no_overdraft = ma.fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "the no-overdraft guard; default true for every kind but external"})
    attributes = free_form(keys=Str(), load_default=dict)


class AccountSchema(ma.Schema):
    id = Integer(required=True)
    code = Str(required=True)
    name = Str(required=True)
    party_id = Integer(required=True)
    asset = ma.fields.Function(lambda a: a.asset_code, required=True)
    kind = Str(required=True)
    no_overdraft = ma.fields.Boolean(required=True)
    attributes = ma.fields.Dict(allow_none=True)
    created_by = Str(required=True)
    created_at = ma.fields.AwareDateTime(required=True)


class AccountQuerySchema(PageQuerySchema):
    party_id = Integer(validate=ma.validate.Range(min=1, max=MAX_AMOUNT))
    asset = Str(validate=ma.validate.Length(max=40))
    kind = Str(validate=ma.validate.OneOf(ACCOUNT_KINDS))
    code_prefix = Str(validate=ma.validate.Length(max=100))


class BalanceSchema(ma.Schema):
    account_id = Integer(required=True)
    account_code = Str(required=True)
    party_id = Integer(required=True)
    kind = Str(required=True)
    asset = Str(required=True)
    unit = Str(required=True)
    as_of = ma.fields.Date(allow_none=True, metadata={
        "description": "null: the current balance with reservations"})
    balance = Integer(required=True, metadata={
        "description": "posted credits - posted debits, in the asset's unit"})
    pending_debits = Integer(allow_none=True)
    pending_credits = Integer(allow_none=True)
    available = Integer(allow_none=True, metadata={
        "description": "balance - pending debits: what can still be debited"})
    no_overdraft = ma.fields.Boolean(required=True)


class AsOfQuerySchema(ma.Schema):
    as_of = ma.fields.Date(metadata={"description": "local date; omit for the current balance"})


class PartyBalancesSchema(ma.Schema):
    party_id = Integer(required=True)
    as_of = ma.fields.Date(allow_none=True)
    accounts = ma.fields.List(ma.fields.Nested(BalanceSchema), required=True)
    totals = ma.fields.Dict(keys=Str(), values=Integer(), required=True,
                            metadata={"description": "balance per asset code"})


class StatementQuerySchema(ma.Schema):
    date_from = ma.fields.Date(metadata={"description": "default: first day of date_to's month"})
    date_to = ma.fields.Date(metadata={"description": "default: today (Asia/Shanghai)"})


class StatementLineSchema(ma.Schema):
    effective_date = ma.fields.Date(required=True)
    transaction_id = Integer(required=True)
    type = Str(required=True)
    memo = Str(allow_none=True)
    debit = Integer(required=True)
    credit = Integer(required=True)
    balance = Integer(required=True, metadata={"description": "running balance"})


class StatementSchema(ma.Schema):
    account_id = Integer(required=True)
    account_code = Str(required=True)
    account_name = Str(required=True)
    party_id = Integer(required=True)
    asset = Str(required=True)
    unit = Str(required=True)
    date_from = ma.fields.Date(required=True)
    date_to = ma.fields.Date(required=True)
    opening_balance = Integer(required=True)
    closing_balance = Integer(required=True)
    total_debits = Integer(required=True)
    total_credits = Integer(required=True)
    lines = ma.fields.List(ma.fields.Nested(StatementLineSchema), required=True)


# --- transactions ----------------------------------------------------------------------------


class PostingInSchema(ma.Schema):
    account = ma.fields.Raw(required=True, validate=_account_ref, metadata={
        "description": "account id (integer) or code (string)",
        "oneOf": [{"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_AMOUNT},
                  {"type": "string", "minLength": 1, "maxLength": 100}]})
    asset = Str(required=True, validate=ma.validate.Length(min=1, max=40),
                             metadata={"description": "must be the account's asset"})
    direction = Str(required=True, validate=ma.validate.OneOf(["debit", "credit"]))
    amount = RawInteger(required=True, minimum=1, metadata={
        "description": "positive integer in the asset's unit (fen, tCO2e); never fractional"})


class TransactionInSchema(ma.Schema):
    type = Str(required=True, validate=ma.validate.Length(min=1, max=40),
                            metadata={"example": "transfer"})
    effective_date = ma.fields.Date(load_default=None, allow_none=True, metadata={
        "description": "local accounting date (Asia/Shanghai); default today"})
    memo = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))
    metadata = free_form(keys=Str(), load_default=None, allow_none=True)
    pending = ma.fields.Boolean(load_default=False, metadata={
        "description": "true: a two-phase transfer that reserves the amounts until posted, "
                       "voided or expired"})
    expires_at = ma.fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "pending only: after this instant it can no longer be posted"})
    postings = ma.fields.List(ma.fields.Nested(PostingInSchema), required=True,
                              validate=ma.validate.Length(min=2, max=1000))


class PostingSchema(ma.Schema):
    id = Integer(allow_none=True)
    account_id = Integer(required=True)
    account_code = Str(required=True)
    asset = Str(required=True)
    direction = Str(required=True)
    amount = Integer(required=True)


class TransactionSchema(ma.Schema):
    id = Integer(required=True)
    type = Str(required=True)
    phase = Str(required=True, metadata={"enum": list(PHASES)})
    status = Str(required=True, metadata={
        "description": "posted, pending, voided or expired (for a pending: its outcome)"})
    effective_date = ma.fields.Date(required=True)
    memo = Str(allow_none=True)
    metadata = ma.fields.Dict(allow_none=True)
    author = Str(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    reverses_id = Integer(allow_none=True)
    reversed_by_id = Integer(allow_none=True)
    pending_id = Integer(allow_none=True)
    resolved_by_id = Integer(allow_none=True)
    expires_at = ma.fields.AwareDateTime(allow_none=True)
    batch_id = Integer(allow_none=True)
    idempotency_key = Str(allow_none=True)
    postings = ma.fields.List(ma.fields.Nested(PostingSchema), required=True)


class TransactionQuerySchema(PageQuerySchema):
    account = Str(validate=ma.validate.Length(min=1, max=100), metadata={
        "description": "account id or code"})
    party_id = Integer(validate=ma.validate.Range(min=1, max=MAX_AMOUNT))
    asset = Str(validate=ma.validate.Length(max=40))
    type = Str(validate=ma.validate.Length(max=40))
    phase = Str(validate=ma.validate.OneOf(PHASES))
    date_from = ma.fields.Date()
    date_to = ma.fields.Date()
    batch_id = Integer(validate=ma.validate.Range(min=1, max=MAX_AMOUNT))


class ReverseSchema(ma.Schema):
    memo = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))
    effective_date = ma.fields.Date(load_default=None, allow_none=True, metadata={
        "description": "default today; not before the original's date"})


class VoidSchema(ma.Schema):
    memo = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))


class ExpiredSchema(ma.Schema):
    expired = ma.fields.List(Integer(), required=True, metadata={
        "description": "ids of the pending transfers whose expiry was recorded"})


class BatchInSchema(ma.Schema):
    memo = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))
    transactions = ma.fields.List(ma.fields.Nested(TransactionInSchema), required=True,
                                  validate=ma.validate.Length(min=1, max=10_000))


class BatchSchema(ma.Schema):
    id = Integer(required=True)
    transaction_count = Integer(required=True)
    content_sha256 = Str(required=True)
    memo = Str(allow_none=True)
    author = Str(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    transaction_ids = ma.fields.List(Integer(), required=True)


# --- periods and assertions ------------------------------------------------------------------


class PeriodSchema(ma.Schema):
    month = ma.fields.Function(lambda p: f"{p.month.year:04d}-{p.month.month:02d}",
                               required=True, metadata={"example": "2024-03"})
    status = Str(required=True)
    closed_at = ma.fields.AwareDateTime(allow_none=True)
    closed_by = Str(allow_none=True)
    reopened_at = ma.fields.AwareDateTime(allow_none=True)
    reopened_by = Str(allow_none=True)
    note = Str(allow_none=True)


class PeriodActionSchema(ma.Schema):
    note = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))


class AssertionInSchema(ma.Schema):
    account = ma.fields.Raw(required=True, validate=_account_ref, metadata={
        "description": "account id (integer) or code (string)",
        "oneOf": [{"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_AMOUNT},
                  {"type": "string", "minLength": 1, "maxLength": 100}]})
    as_of = ma.fields.Date(required=True)
    expected_balance = RawInteger(required=True)
    memo = Str(load_default=None, allow_none=True,
                            validate=ma.validate.Length(max=500))


class AssertionSchema(ma.Schema):
    id = Integer(required=True)
    account_id = Integer(required=True)
    as_of = ma.fields.Date(required=True)
    expected_balance = Integer(required=True)
    actual_balance = Integer(required=True)
    difference = ma.fields.Function(lambda a: a.actual_balance - a.expected_balance,
                                    required=True)
    passed = ma.fields.Boolean(required=True)
    memo = Str(allow_none=True)
    created_by = Str(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    checked_at = ma.fields.AwareDateTime(required=True)


class AssertionQuerySchema(PageQuerySchema):
    account = Str(validate=ma.validate.Length(min=1, max=100))
    passed = ma.fields.Boolean()


class RecheckSchema(ma.Schema):
    account = ma.fields.Raw(load_default=None, allow_none=True, validate=_account_ref, metadata={
        "description": "only this account's assertions (id or code); default all",
        "oneOf": [{"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_AMOUNT},
                  {"type": "string", "minLength": 1, "maxLength": 100}], "nullable": True})


class RecheckResultSchema(ma.Schema):
    checked = Integer(required=True)
    failed = ma.fields.List(ma.fields.Nested(AssertionSchema), required=True)
