"""Catalog operations, one transaction each (the caller commits): regions, parties, products
and their lifecycle, monitoring records, bulk imports and exports.

Every operation takes `(session, actor, ...)`, calls `authorize` first, flushes but never
commits, and appends an audit event for every change.
"""

from catalog.services import exports, importing, monitoring, parties, products, regions
from catalog.services.regions import load_reference_regions, validate_token_scope

__all__ = ["exports", "importing", "load_reference_regions", "monitoring", "parties",
           "products", "regions", "validate_token_scope"]
