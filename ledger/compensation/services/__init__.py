"""Compensation operations, one unit of work each (the caller commits): sections, agreements
and their versions, monitored values, settlements and their payments.

Every operation takes `(session, actor, ...)`, authorizes under a `compensation.*` action of
`ecovalue/auth/policy.py`, flushes but never commits, and appends an audit event for every
change; money moves only through the ledger core's public API (`ledger.core`).
"""

from ledger.compensation.services import agreements, assessments, gep, sections, settlements

__all__ = ["agreements", "assessments", "gep", "sections", "settlements"]
