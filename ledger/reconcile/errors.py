"""Named failures of reconciliation; each renders as problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class StatementNotFound(NotFound):
    code, title = "reconcile-statement-not-found", "Unknown statement"


class RunNotFound(NotFound):
    code, title = "reconcile-run-not-found", "Unknown reconciliation run"


class ItemNotFound(NotFound):
    code, title = "reconcile-item-not-found", "Unknown reconciliation item"


class MappingNotFound(NotFound):
    code, title = "reconcile-mapping-not-found", "Unknown bank column mapping"


class StatementRejected(ValidationFailed):
    code, title = "statement-rejected", "The statement file has errors; nothing was imported"


class RunSignedOff(Conflict):
    code, title = "run-signed-off", "A signed-off reconciliation is immutable"


class RunNotOpen(Conflict):
    code, title = "run-not-open", "The reconciliation run is not open"


class AlreadyMatched(Conflict):
    code, title = "already-matched", "A line or transaction is already in a confirmed match"


class UnresolvedItems(Conflict):
    code, title = "unresolved-items", "Unresolved items must be confirmed or explained"


class PreparerMaySignOff(Forbidden):
    code, title = "four-eyes", "The preparer of a reconciliation may not sign it off"


class LedgerChanged(Conflict):
    code, title = "ledger-changed", "The ledger no longer agrees with the reconciliation"


class PeriodNotReconciled(Conflict):
    code, title = "period-not-reconciled", "The period has reconciliations not signed off"


class InvalidMatch(ValidationFailed):
    code, title = "invalid-match", "The match does not balance or names unknown entries"
