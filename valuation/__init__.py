"""GEP valuation: indicator registry, price books, valuation runs, reports, asset values."""
