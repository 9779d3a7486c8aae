"""Reconciliation operations: statements (mappings, imports), runs (rules, matching,
decisions, sign-off, period close) and reports. Each is one unit of work the caller commits."""
