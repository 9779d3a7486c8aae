"""ecovalue: ecological products, GEP valuation and compensation ledger for Qianxinan Prefecture.

This module stays tiny and imports no domain package; the app factory lives in `ecovalue.app`.
"""

__version__ = "0.1.0"
