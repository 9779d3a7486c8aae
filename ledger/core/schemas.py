"""Request and response shapes of the ledger API.

Amounts are passed through unconverted (`RawInteger`) and checked by the service, so that
1.5, "1", 1.0, true or 2**64 are refused with the named `invalid-amount` error instead of
being coerced or truncated by a generic field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

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
#
# A transaction POST is the ledger's hot path, and marshmallow's generic field machinery was
# a tenth of its cost (issue 15). `TransactionInSchema.load` reads a plain body (what nearly
# every client sends: the required fields, a memo, `pending`, postings of four plain
# values) directly and hands anything else (a date, metadata, an expiry, any value that
# could fail or be converted) to marshmallow; `TransactionSchema.dump` renders through
# converters compiled from the declared fields. tests/ledger/test_fast_schemas.py checks
# both against marshmallow on the same inputs.


def _nullable(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _converter(field: ma.fields.Field) -> Callable[[Any], Any]:
    """What marshmallow's `field._serialize` does to a value, for the field kinds used by the
    response schemas below (any other kind is refused when the module loads)."""
    if field.data_key is not None or field.attribute is not None:
        raise TypeError(f"compiled dump: {field!r} renames its key")
    if isinstance(field, ma.fields.Integer) and not field.as_string:
        return _nullable(int)
    if type(field) in (ma.fields.String, Str):
        return _nullable(str)
    if type(field) is ma.fields.Date and field.format is None:
        return _nullable(dt.date.isoformat)
    if type(field) is ma.fields.AwareDateTime and field.format is None:
        return _nullable(dt.datetime.isoformat)
    if type(field) is ma.fields.Dict and field.key_field is None \
            and field.value_field is None:
        return _nullable(dict)
    if type(field) is ma.fields.List and isinstance(field.inner, ma.fields.Nested) \
            and isinstance(field.inner.nested, type):
        nested = compiled_dump(field.inner.nested)
        return _nullable(lambda values: [nested(v) for v in values])
    raise TypeError(f"compiled dump: no converter for {field!r}")


def compiled_dump(schema: type[ma.Schema]) -> Callable[[Any], dict[str, Any]]:
    """`schema().dump(obj)` for an object with every declared field as an attribute, as
    straight-line converters (same keys, same order, same values)."""
    converters = [(name, _converter(field)) for name, field in
                  schema._declared_fields.items()]

    def dump(obj: Any) -> dict[str, Any]:
        return {name: convert(getattr(obj, name)) for name, convert in converters}

    return dump


class CompiledDumpSchema(ma.Schema):
    """A response schema whose whole-object dumps go through `compiled_dump`."""

    #: per class, compiled at its first dump (the fields are declared after class creation)
    _compiled: ClassVar[dict[type, Callable[[Any], dict[str, Any]]]] = {}

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if self.only is not None or self.exclude:
            return super().dump(obj, many=many)
        compiled = self._compiled.get(type(self))
        if compiled is None:
            compiled = self._compiled[type(self)] = compiled_dump(type(self))
        many = self.many if many is None else bool(many)
        return [compiled(o) for o in obj] if many else compiled(obj)


def _plain_text(value: Any, longest: int, shortest: int = 1) -> bool:
    return type(value) is str and shortest <= len(value) <= longest and "\x00" not in value


_POSTING_KEYS = frozenset(("account", "asset", "direction", "amount"))


def _plain_posting(p: Any) -> bool:
    if type(p) is not dict or p.keys() != _POSTING_KEYS:
        return False
    account = p["account"]
    return (_plain_text(account, 100) or (type(account) is int and 1 <= account <= MAX_AMOUNT)) \
        and _plain_text(p["asset"], 40) and p["direction"] in ("debit", "credit") \
        and type(p["direction"]) is str and p["amount"] is not None


_TRANSACTION_KEYS = frozenset(("type", "effective_date", "memo", "metadata", "pending",
                               "expires_at", "postings"))


def plain_transaction(data: Any) -> dict[str, Any] | None:
    """What `TransactionInSchema` loads from `data` if `data` is a plain body, which it then
    is valid as it stands; None otherwise (marshmallow decides)."""
    if type(data) is not dict or not data.keys() <= _TRANSACTION_KEYS:
        return None
    postings = data.get("postings")
    if not _plain_text(data.get("type"), 40) or type(postings) is not list \
            or not 2 <= len(postings) <= 1000 or not all(map(_plain_posting, postings)):
        return None
    memo, pending = data.get("memo"), data.get("pending", False)
    if data.get("effective_date") is not None or data.get("metadata") is not None \
            or data.get("expires_at") is not None or type(pending) is not bool \
            or not (memo is None or _plain_text(memo, 500, 0)):
        return None
    return {"type": data["type"], "effective_date": None, "memo": memo, "metadata": None,
            "pending": pending, "expires_at": None,
            "postings": [{"account": p["account"], "asset": p["asset"],
                          "direction": p["direction"], "amount": p["amount"]}
                         for p in postings]}


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
    """A transaction as a client sends it (a plain body is read by `plain_transaction`)."""

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,
             unknown: Any = None) -> Any:
        if not many and not self.many and partial is None and unknown in (None, ma.RAISE) \
                and isinstance(data, Mapping):
            plain = plain_transaction(data)
            if plain is not None:
                return plain
        return super().load(data, many=many, partial=partial, unknown=unknown)

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


class PostingSchema(CompiledDumpSchema):
    id = Integer(allow_none=True)
    account_id = Integer(required=True)
    account_code = Str(required=True)
    asset = Str(required=True)
    direction = Str(required=True)
    amount = Integer(required=True)


class TransactionSchema(CompiledDumpSchema):
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
