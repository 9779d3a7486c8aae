"""Domain operations of GEP valuation: each takes a session and the acting principal, checks
permissions with `authorize` first, flushes but never commits, and audits every change.

- `indicators`: the registry (built-in + custom) and custom indicators;
- `prices`: price books, price indices and the reference data they start from;
- `quantities`: quantity sets (aggregate tables, API rows, grid route, catalog records);
- `runs`: valuation runs, publication, reproduction, comparison, asset values;
- `reporting`: report tables, exports and charts of runs.
"""
