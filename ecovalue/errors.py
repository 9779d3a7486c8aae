"""Errors: one exception class per domain failure, mapped to HTTP once, here.

Every error leaves the service as `application/problem+json` (RFC 9457):

    {"type": "urn:ecovalue:problem:insufficient-balance", "code": "insufficient-balance",
     "title": "Insufficient balance", "status": 409, "detail": "...", "instance": "/ledger/...",
     "request_id": "...", "errors": [{"location": "json", "field": "amount_fen", "message": "..."}]}

Domain packages subclass the generic classes below (`class InsufficientBalance(Conflict)`), give
the subclass its own `code` and `title`, and raise it from services; nothing else is needed for it
to reach the client correctly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, Response, g, has_request_context, json, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:ecovalue:problem:"

log = logging.getLogger("ecovalue.errors")


class EcovalueError(Exception):
    """Base of every expected failure. `status`, `code` and `title` are class constants; the
    instance carries the human `detail`, optional field `errors` and extension members."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Iterable[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = [dict(e) for e in errors] if errors else []
        self.headers = dict(headers or {})
        self.extensions = extensions


class BadRequest(EcovalueError):
    status, code, title = 400, "bad-request", "Bad request"


class Unauthorized(EcovalueError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "a valid bearer token is required", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="ecovalue"'})
        super().__init__(detail, **kwargs)


class Forbidden(EcovalueError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(EcovalueError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(EcovalueError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(EcovalueError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(EcovalueError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class RequestTimeout(EcovalueError):
    status, code, title = 503, "request-timeout", "The request ran out of time"


class ValidationFailed(EcovalueError):
    """Input that is well-formed but wrong: field errors are listed in `errors`, all of them."""

    status, code, title = 422, "validation-error", "Invalid input"


class IdempotencyKeyReused(Conflict):
    code, title = "idempotency-key-reused", "Idempotency key reused with a different request"


class ConcurrentUpdate(Conflict):
    code, title = "concurrent-update", "Concurrent update, retry the request"


class IntegrityConflict(Conflict):
    code, title = "integrity-conflict", "The change conflicts with stored data"


# --- rendering -------------------------------------------------------------------------------


def flatten_messages(messages: Any, location: str = "json", prefix: str = "") -> list[dict]:
    """Turn marshmallow/webargs nested messages into a flat list of {location, field, message}."""
    out: list[dict] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            field = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                field = prefix
            out.extend(flatten_messages(value, location, field))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out.extend({"location": location, "field": prefix, "message": m} for m in messages)
        else:
            for item in messages:
                out.extend(flatten_messages(item, location, prefix))
    else:
        out.append({"location": location, "field": prefix, "message": str(messages)})
    return out


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "code": code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if has_request_context():
        body["instance"] = request.path
        if g.get("request_id"):
            body["request_id"] = g.request_id
    if errors:
        body["errors"] = errors
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MEDIA_TYPE
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "-").replace("'", "")


def handle_ecovalue_error(exc: EcovalueError) -> Response:
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if status == 422 and "messages" in data:
        errors: list[dict] = []
        for location, messages in data["messages"].items():
            errors.extend(flatten_messages(messages, location))
        detail = "; ".join(f"{e['field'] or location}: {e['message']}" for e in errors[:5])
        return problem_response(422, "validation-error", "Invalid input", detail, errors=errors)
    if status >= 500:
        log.error("http error %s", status, exc_info=exc)
        return problem_response(
            status, "internal-error", "Internal error", "the service failed; the request id "
            "identifies it in the logs"
        )
    detail = data.get("message") or exc.description or exc.name
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(exc, "valid_methods", None)  # MethodNotAllowed's
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if status == 413:
        detail = "the request body is larger than this service accepts"
    return problem_response(status, _http_code(exc), exc.name, detail, headers=headers)


def handle_integrity_error(exc: sa_exc.IntegrityError) -> Response:
    log.info("integrity error turned into 409: %s", exc.orig.__class__.__name__)
    return handle_ecovalue_error(
        IntegrityConflict("the change conflicts with data already stored (duplicate or dangling "
                          "reference); nothing was written")
    )


def handle_operational_error(exc: sa_exc.OperationalError) -> Response:
    text = str(exc.orig).lower()
    retryable = any(
        word in text for word in ("deadlock", "could not serialize", "database is locked",
                                  "lock timeout", "canceling statement due to lock")
    )
    if retryable:
        return handle_ecovalue_error(
            ConcurrentUpdate("another request changed the same data at the same time; nothing "
                             "was written, retry", headers={"Retry-After": "1"})
        )
    return handle_unexpected(exc)


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return problem_response(
        500, "internal-error", "Internal error",
        "the service failed; the request id identifies it in the logs",
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(EcovalueError, handle_ecovalue_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(sa_exc.IntegrityError, handle_integrity_error)
    app.register_error_handler(sa_exc.OperationalError, handle_operational_error)
    app.register_error_handler(ma.ValidationError, lambda exc: handle_ecovalue_error(
        ValidationFailed("invalid input", errors=flatten_messages(exc.messages))))
    app.register_error_handler(Exception, handle_unexpected)
