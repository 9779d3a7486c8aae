"""Benefit sharing (利益分配): the villager register, sharing rules, distribution runs,
single-tree purchases, statements and traceability of pooled money (README.md)."""
