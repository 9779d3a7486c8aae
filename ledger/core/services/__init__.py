"""Ledger operations. Each is one unit of work that the caller commits:
`op(session, actor, ...)`, authorize first, flush but never commit, audit every change.

Amounts are integers in the asset's unit (fen for CNY, tCO2e for carbon credits); balances
are credit-normal (credits - debits). The write path is `ledger.core.posting`.
"""

from ledger.core.rules import PostingSpec, TransactionSpec
from ledger.core.services.accounts import (
    account_id_sql,
    create_account,
    create_asset,
    ensure_account,
    find_account,
    get_account,
    get_asset,
    list_accounts,
    list_assets,
)
from ledger.core.services.balances import (
    BalanceView,
    Inflow,
    Statement,
    StatementLine,
    account_balance,
    account_inflows,
    assert_balance,
    list_assertions,
    party_balances,
    recheck_assertions,
    statement,
    verify,
)
from ledger.core.services.periods import (
    close_period,
    list_periods,
    period_status,
    reopen_period,
)
from ledger.core.services.transactions import (
    create_transaction,
    expire_pendings,
    get_batch,
    get_transaction,
    list_transactions,
    post_batch,
    post_pending,
    reverse_transaction,
    void_pending,
)
from ledger.core.views import PostingView, TransactionView, load_views

__all__ = [
    "BalanceView", "Inflow", "PostingSpec", "PostingView", "Statement", "StatementLine",
    "TransactionSpec", "TransactionView", "account_balance", "account_id_sql", "account_inflows",
    "assert_balance", "close_period",
    "create_account", "create_asset", "create_transaction", "ensure_account",
    "expire_pendings", "find_account", "get_account", "get_asset", "get_batch",
    "get_transaction", "list_accounts", "list_assertions", "list_assets", "list_periods",
    "list_transactions", "load_views", "party_balances", "period_status", "post_batch",
    "post_pending", "recheck_assertions", "reopen_period", "reverse_transaction", "statement",
    "verify", "void_pending",
]
