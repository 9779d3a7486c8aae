"""The registry's operations, one transaction each (the caller commits): parameter sets,
projects and their lifecycle, monitoring reports, issuance and the movements of credits, the
public registry and its invariants. Every operation takes `(session, actor, ...)`, calls
`authorize` first, flushes but never commits, and appends to the audit trail."""

from ledger.carbon.services import credits, parameters, projects, registry, reports
from ledger.carbon.services.registry import verify

__all__ = ["credits", "parameters", "projects", "registry", "reports", "verify"]
