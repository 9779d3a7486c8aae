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

`action` is the policy action (in `ecovalue.auth.policy.POLICY`) the caller is authorized
under: a sibling package names its own, so its roles are decided in the one policy table.
"""

from ledger.core.errors import (
    AccountNotOwned,
    AlreadyReversed,
    InsufficientBalance,
    PendingAlreadyResolved,
    PendingExpired,
    PeriodClosed,
)
from ledger.core.rules import PostingSpec, TransactionSpec
from ledger.core.services import (
    BalanceView,
    TransactionView,
    account_balance,
    create_account,
    create_asset,
    ensure_account,
    get_asset,
    party_balances,
    post_batch,
    post_pending,
    reverse_transaction,
    statement,
    void_pending,
)
from ledger.core.services import create_transaction as post

__all__ = [
    "AccountNotOwned", "AlreadyReversed", "BalanceView", "InsufficientBalance",
    "PendingAlreadyResolved", "PendingExpired", "PeriodClosed", "PostingSpec",
    "TransactionSpec", "TransactionView", "account_balance", "create_account", "create_asset",
    "ensure_account", "get_asset", "party_balances", "post", "post_batch", "post_pending",
    "reverse_transaction", "statement", "void_pending",
]
