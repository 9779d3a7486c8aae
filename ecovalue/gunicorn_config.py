"""gunicorn's configuration for `make run` (`gunicorn -c ecovalue/gunicorn_config.py ...`).

Timeouts, measured rather than guessed (SECURITY.md, "Denial by size or depth"): the largest
documented product import (200,000 rows, about 18 MB) takes well under the request budget on
PostgreSQL. A request still running after ECOVALUE_REQUEST_BUDGET_SECONDS is rolled back and
answered 503 problem+json by the app (ecovalue.app.RequestBudget); gunicorn's own worker
timeout is 30 s above it, for a database statement that does not return in time, and only then
kills the worker. Both can be set from the environment; the budget stays below the timeout.
"""

import os

#: sync workers: one request at a time in the main thread, which the request budget needs
worker_class = "sync"
workers = int(os.environ.get("ECOVALUE_WORKERS", "2"))
#: seconds a worker may be silent before gunicorn kills it
timeout = int(os.environ.get("ECOVALUE_WORKER_TIMEOUT", "300"))
graceful_timeout = 30
_budget = min(float(os.environ.get("ECOVALUE_REQUEST_BUDGET_SECONDS", timeout - 30)),
              max(timeout - 30, 1))
# the app reads the budget from the environment when each worker creates it
os.environ["ECOVALUE_REQUEST_BUDGET_SECONDS"] = f"{_budget:g}"
