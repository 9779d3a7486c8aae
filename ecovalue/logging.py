"""Structured (one JSON object per line) logs carrying the request id.

Only method, path, status, duration, the caller's token label and the request id are logged:
never bodies, query strings or headers, which may carry personal data or secrets.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
        for key in ("method", "path", "status", "duration_ms", "actor"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


def configure_logging(app: Flask) -> None:
    root = logging.getLogger("ecovalue")
    if not any(getattr(h, "_ecovalue", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._ecovalue = True  # type: ignore[attr-defined]  # our mark: installed once
        root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    root.propagate = False
    access = logging.getLogger("ecovalue.access")

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _log(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        started = g.get("request_started")
        principal = g.get("principal")
        duration = round((time.perf_counter() - started) * 1000, 2) if started else None
        access.info(
            "request", extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "duration_ms": duration,
                "actor": f"token:{principal.token_id}" if principal and principal.token_id
                else None,
            },
        )
        return response
