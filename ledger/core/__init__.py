"""The double-entry ledger core, and the public API the floors above post through.

The carbon registry, the market, the thermal-power pilot, compensation, benefit sharing and
reconciliation import only these names (never the modules behind them). Every function takes
the caller's `Session` and `Principal` and runs in the caller's unit of work: it flushes,
never commits, so a sibling's own rows and the ledger's postings commit or roll back together.

    from ledger import core as ledger

    account = ledger.ensure_account(session, actor, party_id=7, asset="CNY", kind="fund",
                                    action="compensation.settle")
    view = ledger.post(session, actor, ledger.TransactionSpec(
        type="compensation.payment", memo="2026-11 instalment",
        postings=[ledger.PostingSpec("PLANT-CNY", "CNY", "debit", 500_000_00),
                  ledger.PostingSpec(account.code, "CNY", "credit", 500_000_00)]),
        action="compensation.settle")

The contract for the floors above is `post` (one transaction, or a pending one with
`pending=True`), `post_batch`, `post_pending` / `void_pending`, `reverse_transaction`,
`ensure_account` / `create_account` (and `account_id_sql`, the account `ensure_account`
finds as a subquery for a sibling's own statement), `create_asset` / `get_asset`, and the reads
`account_balance`, `party_balances`, `statement`, `account_inflows` (the credits of an
account with who paid them, for tracing pooled money), `get_transaction`, and the one
rounding rule for splitting an amount, `largest_remainder` (refusing with `SplitError`);
the routes and the CLI use the same names for the rest (periods, assertions, listings, `verify`).

`action` is the policy action (in `ecovalue.auth.policy.POLICY`) the caller is authorized
under: a sibling package names its own, so its roles are decided in the one policy table.
"""

from ledger.core.amounts import SplitError, largest_remainder
from ledger.core.errors import (
    AccountNotOwned,
    AlreadyReversed,
    InsufficientBalance,
    PendingAlreadyResolved,
    PendingExpired,
    PeriodClosed,
)
from ledger.core.rules import PostingSpec, TransactionSpec, account_ref
from ledger.core.services import (
    BalanceView,
    Inflow,
    PostingView,
    Statement,
    StatementLine,
    TransactionView,
    account_balance,
    account_id_sql,
    account_inflows,
    assert_balance,
    close_period,
    create_account,
    create_asset,
    create_transaction,
    ensure_account,
    expire_pendings,
    find_account,
    get_account,
    get_asset,
    get_batch,
    get_transaction,
    list_accounts,
    list_assertions,
    list_assets,
    list_periods,
    list_transactions,
    load_views,
    party_balances,
    period_status,
    post_batch,
    post_pending,
    recheck_assertions,
    reopen_period,
    reverse_transaction,
    statement,
    verify,
    void_pending,
)
from ledger.core.services import create_transaction as post

__all__ = [
    "AccountNotOwned", "AlreadyReversed", "BalanceView", "Inflow", "InsufficientBalance",
    "PendingAlreadyResolved", "PendingExpired", "PeriodClosed", "PostingSpec", "PostingView",
    "SplitError", "Statement", "StatementLine", "TransactionSpec", "TransactionView",
    "account_balance", "account_id_sql", "account_inflows", "account_ref", "assert_balance",
    "close_period",
    "create_account", "create_asset", "create_transaction", "ensure_account", "expire_pendings",
    "find_account", "get_account", "get_asset", "get_batch", "get_transaction",
    "largest_remainder", "list_accounts", "list_assertions", "list_assets", "list_periods",
    "list_transactions", "load_views", "party_balances", "period_status", "post", "post_batch",
    "post_pending", "recheck_assertions", "reopen_period", "reverse_transaction", "statement",
    "verify", "void_pending",
]
