"""HTTP routes of the ledger core (thin: parse, call one service, return)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import request

from ecovalue.api import (
    XLSX_MIMETYPE,
    Blueprint,
    current_actor,
    file_response,
    page_of,
    paginate,
)
from ecovalue.db import current_session
from ecovalue.errors import ValidationFailed
from ecovalue.idempotency import HEADER as IDEMPOTENCY_HEADER
from ledger import core
from ledger.core import export, schemas
from ledger.core.calendar import parse_month

blp = Blueprint("ledger", __name__, url_prefix="/ledger",
                description="Double-entry ledger: assets, accounts, transactions, two-phase "
                            "transfers, balances, statements, periods, balance assertions")


def errors(*statuses: int) -> Callable:
    """Document the problem+json statuses a route can answer with."""
    names = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT",
             422: "UNPROCESSABLE_ENTITY"}

    def decorate(func: Callable) -> Callable:
        for status in statuses:
            func = blp.alt_response(status, response=names[status])(func)
        return func

    return decorate


def _key() -> str | None:
    return request.headers.get(IDEMPOTENCY_HEADER)


def _spec(body: dict, key: str | None = None) -> core.TransactionSpec:
    return core.TransactionSpec(
        type=body["type"], effective_date=body.get("effective_date"), memo=body.get("memo"),
        metadata=body.get("metadata"), pending=body.get("pending", False),
        expires_at=body.get("expires_at"), idempotency_key=key,
        postings=[core.PostingSpec(p["account"], p["asset"], p["direction"], p["amount"])
                  for p in body["postings"]])


def _created(view: core.TransactionView) -> tuple[Any, int, dict]:
    headers = {"Location": f"/ledger/transactions/{view.id}"}
    if view.replayed:
        headers["Idempotent-Replayed"] = "true"
    return view, 201, headers


# --- assets ----------------------------------------------------------------------------------


@blp.route("/assets", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.AssetCreateSchema())
@blp.response(201, schemas.AssetSchema)
@errors(422)
def create_asset(body):
    """Create an asset: CNY (fen) or the credits of one carbon issuance batch (tCO2e)."""
    return core.create_asset(current_session(), current_actor(), **body)


@blp.route("/assets", methods=["GET"])
@blp.authenticated
@blp.arguments(schemas.AssetQuerySchema(), location="query")
@blp.response(200, page_of(schemas.AssetSchema))
def list_assets(query):
    """Assets, by code."""
    page, page_size = query.pop("page"), query.pop("page_size")
    stmt = core.list_assets(current_session(), current_actor(), **query)
    return paginate(current_session(), stmt, page, page_size)


@blp.route("/assets/<string:code>")
@blp.authenticated
@blp.response(200, schemas.AssetSchema)
@errors(404)
def get_asset(code):
    """One asset by code."""
    return core.get_asset(current_session(), current_actor(), code)


# --- accounts --------------------------------------------------------------------------------


@blp.route("/accounts", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.AccountCreateSchema())
@blp.response(201, schemas.AccountSchema)
@errors(422)
def create_account(body):
    """Open an account for a party in one asset (finance, admin)."""
    return core.create_account(current_session(), current_actor(), **body)


@blp.route("/accounts", methods=["GET"])
@blp.authenticated
@blp.arguments(schemas.AccountQuerySchema(), location="query")
@blp.response(200, page_of(schemas.AccountSchema))
def list_accounts(query):
    """Accounts (a trader sees its own party's)."""
    page, page_size = query.pop("page"), query.pop("page_size")
    stmt = core.list_accounts(current_session(), current_actor(), **query)
    return paginate(current_session(), stmt, page, page_size)


@blp.route("/accounts/<string:account>")
@blp.authenticated
@blp.response(200, schemas.AccountSchema)
@errors(404)
def get_account(account):
    """One account by id or code."""
    return core.get_account(current_session(), current_actor(), core.account_ref(account))


@blp.route("/accounts/<string:account>/balance")
@blp.authenticated
@blp.arguments(schemas.AsOfQuerySchema(), location="query")
@blp.response(200, schemas.BalanceSchema)
@errors(404)
def account_balance(query, account):
    """Current balance with reservations, or the posted balance at the end of `as_of`."""
    return core.account_balance(current_session(), current_actor(),
                                    core.account_ref(account), as_of=query.get("as_of"))


def _statement(query: dict, account: str) -> core.Statement:
    return core.statement(current_session(), current_actor(), core.account_ref(account),
                              date_from=query.get("date_from"), date_to=query.get("date_to"))


@blp.route("/accounts/<string:account>/statement")
@blp.authenticated
@blp.arguments(schemas.StatementQuerySchema(), location="query")
@blp.response(200, schemas.StatementSchema)
@errors(404)
def account_statement(query, account):
    """Posted movements between two dates with opening, running and closing balance."""
    return _statement(query, account)


@blp.route("/accounts/<string:account>/statement.csv")
@blp.authenticated
@blp.arguments(schemas.StatementQuerySchema(), location="query")
@blp.response(200, {"type": "string"}, content_type="text/csv")
@errors(404)
def account_statement_csv(query, account):
    """The statement as CSV (UTF-8 with BOM)."""
    st = _statement(query, account)
    return file_response(export.statement_csv(st), f"statement-{st.account_id}-"
                         f"{st.date_from}-{st.date_to}.csv", "text/csv")


@blp.route("/accounts/<string:account>/statement.xlsx")
@blp.authenticated
@blp.arguments(schemas.StatementQuerySchema(), location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=XLSX_MIMETYPE)
@errors(404)
def account_statement_xlsx(query, account):
    """The statement as an Excel workbook."""
    st = _statement(query, account)
    return file_response(export.statement_xlsx(st), f"statement-{st.account_id}-"
                         f"{st.date_from}-{st.date_to}.xlsx", XLSX_MIMETYPE)


@blp.route("/parties/<int:party_id>/balances")
@blp.authenticated
@blp.arguments(schemas.AsOfQuerySchema(), location="query")
@blp.response(200, schemas.PartyBalancesSchema)
@errors(404)
def party_balances(query, party_id):
    """Every account of a party with its balance, and totals per asset."""
    rows, totals = core.party_balances(current_session(), current_actor(), party_id,
                                           as_of=query.get("as_of"))
    return {"party_id": party_id, "as_of": query.get("as_of"), "accounts": rows,
            "totals": totals}


# --- transactions ----------------------------------------------------------------------------


@blp.route("/transactions", methods=["POST"])
@blp.authenticated
@blp.idempotent(by_service=True)
@blp.arguments(schemas.TransactionInSchema())
@blp.response(201, schemas.TransactionSchema)
@errors(400, 422)
def create_transaction(body):
    """Post a balanced transaction, or reserve a two-phase transfer (`pending: true`)."""
    view = core.create_transaction(current_session(), current_actor(),
                                       _spec(body, _key()))
    return _created(view)


@blp.route("/transactions", methods=["GET"])
@blp.authenticated
@blp.arguments(schemas.TransactionQuerySchema(), location="query")
@blp.response(200, page_of(schemas.TransactionSchema))
@errors(404)
def list_transactions(query):
    """Transactions, newest first (a trader sees those touching its accounts)."""
    page, page_size = query.pop("page"), query.pop("page_size")
    if "account" in query:
        query["account"] = core.account_ref(query["account"])
    session = current_session()
    stmt = core.list_transactions(session, current_actor(), **query)
    result = paginate(session, stmt, page, page_size)
    result["items"] = core.load_views(session, result["items"])
    return result


@blp.route("/transactions/<int:tx_id>")
@blp.authenticated
@blp.response(200, schemas.TransactionSchema)
@errors(404)
def get_transaction(tx_id):
    """One transaction with its postings and, for a pending, its outcome."""
    return core.get_transaction(current_session(), current_actor(), tx_id)


@blp.route("/transactions/<int:tx_id>/reverse", methods=["POST"])
@blp.authenticated
@blp.idempotent(by_service=True)
@blp.arguments(schemas.ReverseSchema())
@blp.response(201, schemas.TransactionSchema)
@errors(400, 404, 422)
def reverse_transaction(body, tx_id):
    """Correct a transaction by appending its mirror image (finance, admin)."""
    return _created(core.reverse_transaction(
        current_session(), current_actor(), tx_id, idempotency_key=_key(), **body))


@blp.route("/transactions/<int:tx_id>/post", methods=["POST"])
@blp.authenticated
@blp.idempotent(by_service=True)
@blp.arguments(schemas.ReverseSchema())
@blp.response(201, schemas.TransactionSchema)
@errors(400, 404, 422)
def post_pending(body, tx_id):
    """Post a pending transfer in full (finance, admin); at most once, not after expiry."""
    return _created(core.post_pending(current_session(), current_actor(), tx_id,
                                          idempotency_key=_key(), **body))


@blp.route("/transactions/<int:tx_id>/void", methods=["POST"])
@blp.authenticated
@blp.idempotent(by_service=True)
@blp.arguments(schemas.VoidSchema())
@blp.response(201, schemas.TransactionSchema)
@errors(400, 404, 422)
def void_pending(body, tx_id):
    """Void a pending transfer: its reservation is released (finance, admin)."""
    return _created(core.void_pending(current_session(), current_actor(), tx_id,
                                          idempotency_key=_key(), **body))


@blp.route("/pending/expire", methods=["POST"])
@blp.authenticated
@blp.response(200, schemas.ExpiredSchema)
def expire_pendings():
    """Record the expiry of every pending transfer past its expiry (finance, admin)."""
    return {"expired": core.expire_pendings(current_session(), current_actor())}


@blp.route("/batches", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.BatchInSchema())
@blp.response(201, schemas.BatchSchema)
@errors(400, 422)
def post_batch(body):
    """Post up to 10,000 transactions at once, all or nothing."""
    session = current_session()
    batch_id, ids = core.post_batch(session, current_actor(),
                                        [_spec(t) for t in body["transactions"]],
                                        memo=body.get("memo"))
    batch, _ = core.get_batch(session, current_actor(), batch_id)
    return ({**_batch(batch), "transaction_ids": ids}, 201,
            {"Location": f"/ledger/batches/{batch_id}"})


def _batch(batch: Any) -> dict:
    return {k: getattr(batch, k) for k in ("id", "transaction_count", "content_sha256", "memo",
                                           "author", "created_at")}


@blp.route("/batches/<int:batch_id>")
@blp.authenticated
@blp.response(200, schemas.BatchSchema)
@errors(404)
def get_batch(batch_id):
    """A batch and the ids of its transactions."""
    batch, ids = core.get_batch(current_session(), current_actor(), batch_id)
    return {**_batch(batch), "transaction_ids": ids}


# --- periods ---------------------------------------------------------------------------------


@blp.route("/periods")
@blp.authenticated
@blp.response(200, schemas.PeriodSchema(many=True))
def list_periods():
    """Months that were ever closed, newest first (every other month is open)."""
    return core.list_periods(current_session(), current_actor())


def _month(text: str) -> dt.date:
    try:
        return parse_month(text)
    except ValueError as exc:
        raise ValidationFailed(str(exc), errors=[{"location": "path", "field": "month",
                                                  "message": "YYYY-MM"}]) from None


@blp.route("/periods/<string:month>/close", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.PeriodActionSchema())
@blp.response(200, schemas.PeriodSchema)
@errors(409, 422)
def close_period(body, month):
    """Close a month (YYYY-MM): postings dated in it are refused until it is reopened."""
    return core.close_period(current_session(), current_actor(), _month(month),
                                 note=body.get("note"))


@blp.route("/periods/<string:month>/reopen", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.PeriodActionSchema())
@blp.response(200, schemas.PeriodSchema)
@errors(409, 422)
def reopen_period(body, month):
    """Reopen a closed month (finance, admin; audited)."""
    return core.reopen_period(current_session(), current_actor(), _month(month),
                                  note=body.get("note"))


# --- balance assertions ----------------------------------------------------------------------


@blp.route("/assertions", methods=["POST"])
@blp.authenticated
@blp.idempotent
@blp.arguments(schemas.AssertionInSchema())
@blp.response(201, schemas.AssertionSchema)
@errors(404, 422)
def create_assertion(body):
    """Record the expected balance of an account at the end of a date and check it now (a
    failed assertion is recorded too, with `passed: false`)."""
    return core.assert_balance(current_session(), current_actor(), body["account"],
                                   as_of=body["as_of"], expected_balance=body["expected_balance"],
                                   memo=body.get("memo"))


@blp.route("/assertions", methods=["GET"])
@blp.authenticated
@blp.arguments(schemas.AssertionQuerySchema(), location="query")
@blp.response(200, page_of(schemas.AssertionSchema))
@errors(404)
def list_assertions(query):
    """Recorded balance assertions, newest first; `passed=false` lists the discrepancies."""
    page, page_size = query.pop("page"), query.pop("page_size")
    if "account" in query:
        query["account"] = core.account_ref(query["account"])
    stmt = core.list_assertions(current_session(), current_actor(), **query)
    return paginate(current_session(), stmt, page, page_size)


@blp.route("/assertions/recheck", methods=["POST"])
@blp.authenticated
@blp.arguments(schemas.RecheckSchema())
@blp.response(200, schemas.RecheckResultSchema)
@errors(404)
def recheck_assertions(body):
    """Check every recorded assertion again (after back-dated postings, say)."""
    checked = core.recheck_assertions(current_session(), current_actor(),
                                          account=body.get("account"))
    return {"checked": len(checked), "failed": [a for a in checked if not a.passed]}
