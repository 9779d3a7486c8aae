"""The pilot's operations, one transaction each (the caller commits): factor tables, rules,
emission reports, obligations and their settlement, compliance and the fund's inflows. Every
operation takes `(session, actor, ...)`, checks `authorize` (the `pilot.*` actions of
`ecovalue/auth/policy.py`), flushes but never commits, and appends to the audit trail."""

from ledger.pilot.services import checks, compliance, factors, obligations, reports, rules
from ledger.pilot.services.checks import verify

__all__ = ["checks", "compliance", "factors", "obligations", "reports", "rules", "verify"]
