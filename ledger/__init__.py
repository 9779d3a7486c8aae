"""What moves: the double-entry ledger core and, later, carbon registry, compensation, benefit
sharing and reconciliation built on it."""
