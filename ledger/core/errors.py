"""Named ledger failures; each renders as problem+json with its own stable code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class UnbalancedTransaction(ValidationFailed):
    code, title = "unbalanced-transaction", "Debits and credits differ"


class UnknownAccount(ValidationFailed):
    code, title = "unknown-account", "Unknown account"


class UnknownAsset(ValidationFailed):
    code, title = "unknown-asset", "Unknown asset"


class AssetMismatch(ValidationFailed):
    code, title = "asset-mismatch", "Posting asset differs from the account's asset"


class InvalidAmount(ValidationFailed):
    code, title = "invalid-amount", "Amount must be a positive 64-bit integer"


class InvalidTransaction(ValidationFailed):
    code, title = "invalid-transaction", "Invalid transaction"


class EffectiveDateInFuture(ValidationFailed):
    code, title = "effective-date-in-future", "Effective date in the future"


class EffectiveDateTooEarly(ValidationFailed):
    code, title = "effective-date-too-early", "Effective date before the original's"


class AmountOutOfRange(ValidationFailed):
    code, title = "amount-out-of-range", "A running total would exceed the 64-bit range"


class PeriodClosed(Conflict):
    code, title = "period-closed", "Accounting period closed"


class PeriodAlreadyClosed(Conflict):
    code, title = "period-already-closed", "Accounting period already closed"


class PeriodNotClosed(Conflict):
    code, title = "period-not-closed", "Accounting period is not closed"


class InsufficientBalance(Conflict):
    code, title = "insufficient-balance", "Insufficient balance"


class AccountNotOwned(Forbidden):
    code, title = "account-not-owned", "Account belongs to another party"


class ValueEntryRefused(Forbidden):
    code, title = "value-entry-refused", "Only finance or the registry brings value in"


class AccountNotFound(NotFound):
    code, title = "account-not-found", "Account not found"


class AssetNotFound(NotFound):
    code, title = "asset-not-found", "Asset not found"


class TransactionNotFound(NotFound):
    code, title = "transaction-not-found", "Transaction not found"


class AssertionNotFound(NotFound):
    code, title = "assertion-not-found", "Balance assertion not found"


class CodeTaken(Conflict):
    code, title = "code-taken", "Code already in use"


class AlreadyReversed(Conflict):
    code, title = "already-reversed", "Transaction already reversed"


class NotReversible(Conflict):
    code, title = "not-reversible", "Transaction cannot be reversed"


class NotPending(Conflict):
    code, title = "not-pending", "Transaction is not a pending transfer"


class PendingAlreadyResolved(Conflict):
    code, title = "pending-already-resolved", "Pending transfer already posted, voided or expired"


class PendingExpired(Conflict):
    code, title = "pending-expired", "Pending transfer expired"
