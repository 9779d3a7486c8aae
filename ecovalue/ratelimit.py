"""Per-token rate limits (flask-limiter): a caller that sends too many requests gets
`429 Too Many Requests` as problem+json with `Retry-After` (seconds until its window resets).

The key is the bearer token (`token:<id>`), or the client address for requests without one.
Limits are configuration (`ECOVALUE_MARKET_RATE_LIMIT`, default 1200 per minute per token on
the market's routes, a loop gone wrong rather than a busy trading desk); `ECOVALUE_RATE_LIMITS=
off` disables them. Counts live in the worker's memory by default (each gunicorn worker counts
on its own, so the effective limit is up to workers x the limit); `ECOVALUE_RATELIMIT_STORAGE_URI`
(e.g. `redis://...`) shares them between workers.

The default storage is limits' memory storage with one sweeper thread per worker
(`ecovalue-memory://`): the library's own starts a 10 ms timer thread to drop expired entries
on every request that finds the previous timer done (on a trading desk's pace, every request)
and waits for that thread to start - a millisecond or more per request on a busy machine.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from limits.storage import MemoryStorage

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


class SweptMemoryStorage(MemoryStorage):
    """limits' memory storage (`ecovalue-memory://`), its expired entries dropped every
    SWEEP_SECONDS by one long-lived thread instead of a timer thread started per request.
    Counting is the library's: a sweep only frees memory, expired entries never count."""

    STORAGE_SCHEME = ["ecovalue-memory"]  # noqa: RUF012 - the library's registry reads it
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        # the library starts a timer only when this one is not alive: it always is
        self.timer = threading.Thread(  # type: ignore[assignment]
            target=self._sweep, name="ratelimit-sweeper", daemon=True)
        self.timer.start()

    def _sweep(self) -> None:
        expire = getattr(self, "_MemoryStorage__expire_events")  # noqa: B009 - private
        while True:
            time.sleep(self.SWEEP_SECONDS)
            expire()


limiter = Limiter(caller_key, headers_enabled=False, on_breach=_refuse,
                  storage_uri=os.environ.get("ECOVALUE_RATELIMIT_STORAGE_URI",
                                             "ecovalue-memory://"),
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
