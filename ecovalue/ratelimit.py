"""Per-token rate limits (flask-limiter): a caller that sends too many requests gets
`429 Too Many Requests` as problem+json with `Retry-After` (seconds until its window resets).

The key is the bearer token (`token:<id>`), or the client address for requests without one.
Limits are configuration (`ECOVALUE_MARKET_RATE_LIMIT`, default 1200 per minute per token on
the market's routes, a loop gone wrong rather than a busy trading desk); `ECOVALUE_RATE_LIMITS=
off` disables them. Counts live in the worker's memory by default (each gunicorn worker counts
on its own, so the effective limit is up to workers x the limit); `ECOVALUE_RATELIMIT_STORAGE_URI`
(e.g. `redis://...`) shares them between workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RequestLimit

from ecovalue.clock import utcnow
from ecovalue.errors import EcovalueError

DEFAULT_MARKET_LIMIT = "1200 per minute"


class RateLimited(EcovalueError):
    status, code, title = 429, "rate-limited", "Too many requests"


def caller_key() -> str:
    """Whose requests count together: the token's, else the client address's."""
    principal = g.get("principal")
    if principal is not None and principal.token_id is not None:
        return f"token:{principal.token_id}"
    return f"address:{request.remote_addr or 'unknown'}"


def _refuse(limit: RequestLimit) -> None:
    wait = max(1, math.ceil(limit.reset_at - utcnow().timestamp()))
    raise RateLimited(f"more than {limit.limit} for this token; retry in {wait} s",
                      headers={"Retry-After": str(wait)}, limit=str(limit.limit),
                      retry_after_seconds=wait)


limiter = Limiter(caller_key, headers_enabled=False, on_breach=_refuse,
                  storage_uri=os.environ.get("ECOVALUE_RATELIMIT_STORAGE_URI", "memory://"),
                  strategy="moving-window")


def config() -> dict[str, Any]:
    """The rate-limit settings of `ecovalue.config.load_config`."""
    return {"RATELIMIT_ENABLED": os.environ.get("ECOVALUE_RATE_LIMITS", "on") != "off",
            "MARKET_RATE_LIMIT": os.environ.get("ECOVALUE_MARKET_RATE_LIMIT",
                                                DEFAULT_MARKET_LIMIT)}


def init_app(app: Flask) -> None:
    """Attach the limiter (after authentication, so that the key knows the token)."""
    for key, value in config().items():
        app.config.setdefault(key, value)
    limiter.init_app(app)


def market_limit() -> str:
    return str(current_app.config.get("MARKET_RATE_LIMIT", DEFAULT_MARKET_LIMIT))


def limit_blueprint(blueprint: Any, limit: Callable[[], str] = market_limit) -> Any:
    """Apply the per-token `limit` (read from the app's configuration per request) to every
    route of `blueprint`."""
    limiter.limit(limit)(blueprint)
    return blueprint
