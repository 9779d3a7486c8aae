"""Small helpers shared by the compensation services."""

from __future__ import annotations

from catalog.services.common import fetch

#: the currency every agreement is settled in (the ledger core's asset code)
CNY = "CNY"

__all__ = ["CNY", "fetch"]
