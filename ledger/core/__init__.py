"""The double-entry ledger core."""
