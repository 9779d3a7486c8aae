"""Helpers every `api.py` uses: the Blueprint with auth and idempotency decorators, the problem
schema, pagination and file downloads. Routes stay thin: parse, call one service, return."""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import flask_smorest
import marshmallow as ma
import sqlalchemy as sa
from flask import Response, g
from sqlalchemy.orm import Session

from ecovalue.auth.policy import Principal
from ecovalue.errors import PROBLEM_MEDIA_TYPE, Unauthorized

BEARER = "bearerAuth"


def current_principal() -> Principal | None:
    """The caller of the current request, None when no token was presented."""
    return g.get("principal")


def current_actor() -> Principal:
    """The caller of an `authenticated` route (which has refused a request without a token)."""
    principal = current_principal()
    if principal is None:
        raise Unauthorized()
    return principal


# --- documentation schemas ---------------------------------------------------------------------


class ErrorItemSchema(ma.Schema):
    location = ma.fields.String(metadata={"description": "json, query, path, headers, file..."})
    field = ma.fields.String(metadata={"description": "field or column, dotted for nesting"})
    message = ma.fields.String()
    row = ma.fields.Integer(metadata={"description": "row number in an uploaded file (1 = header)"})
    column = ma.fields.String(metadata={"description": "column name in an uploaded file"})


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with a stable `code` and field `errors`; a problem may carry
    extension members of its own (e.g. the refused `action`), as RFC 9457 allows."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "urn:ecovalue:problem:<code>"})
    code = ma.fields.String(metadata={"description": "stable machine-readable error code"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    request_id = ma.fields.String()
    errors = ma.fields.List(ma.fields.Nested(ErrorItemSchema))


class Integer(ma.fields.Integer):
    """marshmallow's Integer, but a number with a fraction (2.5) or a boolean is refused
    instead of being cut to 2 or read as 1 silently; 2.0 and digit strings (query parameters)
    are read as before. Every schema of the service uses this one."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class AwareDateTime(ma.fields.AwareDateTime):
    """marshmallow's AwareDateTime, but an instant that has no UTC form (0001-01-01T00:00+00:01
    is before year 1 in UTC) is refused instead of overflowing wherever it is compared or
    stored. Every input schema with a timestamp uses this one."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed.astimezone(dt.UTC)
        except OverflowError:
            raise self.make_error("invalid", input=value, obj_type="datetime") from None
        return parsed


#: the most characters a free-form JSON field (attributes, metadata) may take, serialised
MAX_FREE_FORM_CHARS = 10_000


def _free_form_size(value: Any) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    if size > MAX_FREE_FORM_CHARS:
        raise ma.ValidationError(f"at most {MAX_FREE_FORM_CHARS:,} characters as JSON "
                                 f"(this is {size:,})")


def free_form(**kwargs: Any) -> ma.fields.Dict:
    """A free-form JSON object field (attributes, metadata) capped at MAX_FREE_FORM_CHARS
    characters serialised, with string keys; the nesting depth is capped for every JSON body
    by the app (ecovalue.app.MAX_JSON_DEPTH)."""
    metadata = kwargs.pop("metadata", {})
    metadata.setdefault("description", "free-form JSON object")
    metadata["description"] += f" (at most {MAX_FREE_FORM_CHARS:,} characters as JSON)"
    kwargs.setdefault("keys", ma.fields.String())
    return ma.fields.Dict(validate=_free_form_size, metadata=metadata, **kwargs)


class PageQuerySchema(ma.Schema):
    page = Integer(load_default=1, validate=ma.validate.Range(min=1, max=1_000_000))
    page_size = Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


_envelopes: dict[type, type] = {}


def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The paginated envelope {items, page, page_size, total, pages} around `item_schema`."""
    if item_schema not in _envelopes:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _envelopes[item_schema] = type(name, (ma.Schema,), {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "page": Integer(required=True),
            "page_size": Integer(required=True),
            "total": Integer(required=True),
            "pages": Integer(required=True),
        })
    return _envelopes[item_schema]


def paginate(session: Session, stmt: sa.Select, page: int, page_size: int,
             *, scalars: bool = True) -> dict[str, Any]:
    """Run `stmt` for one page; the total is counted on the same filters."""
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    query = stmt.limit(page_size).offset((page - 1) * page_size)
    items = list(session.scalars(query)) if scalars else list(session.execute(query))
    return {"items": items, "page": page, "page_size": page_size, "total": total or 0,
            "pages": math.ceil((total or 0) / page_size)}


def sort_clause(columns: dict[str, Any], sort: str | None, default: Sequence[Any]) -> list[Any]:
    """ORDER BY from `sort` like "-area_ha,name" restricted to whitelisted `columns`; the
    caller validates the names (see `sort_field`)."""
    if not sort:
        return list(default)
    clauses = []
    for part in sort.split(","):
        desc = part.startswith("-")
        column = columns[part.lstrip("-+")]
        clauses.append(column.desc() if desc else column.asc())
    return [*clauses, *default]


def sort_field(allowed: Sequence[str], **kwargs: Any) -> ma.fields.String:
    """A `sort` query field accepting comma-separated names from `allowed`, '-' for descending."""

    def check(value: str) -> None:
        for part in value.split(","):
            if part.lstrip("-+") not in allowed:
                raise ma.ValidationError(f"cannot sort by {part!r}; choose from {list(allowed)}")

    description = f"comma-separated, '-' for descending; one of {', '.join(allowed)}"
    return ma.fields.String(validate=check, metadata={"description": description}, **kwargs)


def file_response(data: bytes, filename: str, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the Blueprint -------------------------------------------------------------------------


def _add_doc(wrapper: Callable, wrapped: Callable, **doc: Any) -> None:
    """Merge manual OpenAPI doc into a wrapper the way flask-smorest's decorators do."""
    apidoc = deepcopy(getattr(wrapped, "_apidoc", {}))
    manual = apidoc.setdefault("manual_doc", {})
    for key, value in doc.items():
        if isinstance(value, list):
            manual.setdefault(key, []).extend(value)
        else:
            manual[key] = value
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]  # flask-smorest reads it there


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint plus `authenticated`, `idempotent` and `headers`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_headers_doc)

    def alt_response(self, status_code: Any, **kwargs: Any) -> Callable:
        """flask-smorest's `alt_response`, which only documents a response, without the
        wrapper it puts around the view for that: same document, one call layer less per
        documented status on every request (a POST route documents five)."""
        document = super().alt_response(status_code, **kwargs)

        def decorator(func: Callable) -> Callable:
            func._apidoc = document(func)._apidoc  # type: ignore[attr-defined]
            return func

        return decorator

    def headers(self, *parameters: dict[str, Any]) -> Callable:
        """Document request headers a view reads (`If-Match`), beside the parameters that
        `arguments` generates. (flask-smorest's `doc(parameters=[...])` would *replace* the
        generated list, so an operation's query parameters would vanish from the document.)"""

        def decorator(func: Callable) -> Callable:
            func._apidoc = deepcopy(getattr(func, "_apidoc", {}))  # type: ignore[attr-defined]
            func._apidoc.setdefault("headers", []).extend(parameters)  # type: ignore[attr-defined]
            return func

        return decorator

    @staticmethod
    def _prepare_headers_doc(doc: dict[str, Any], doc_info: dict[str, Any],
                             **_kwargs: Any) -> dict[str, Any]:
        doc.setdefault("parameters", []).extend(deepcopy(doc_info.get("headers", [])))
        return doc

    def authenticated(self, func: Callable) -> Callable:
        """The route needs a bearer token (role and scope are checked by the service)."""

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_principal() is None:
                raise Unauthorized()
            return func(*args, **kwargs)

        _add_doc(wrapper, func, security=[{BEARER: []}])
        for status, name in ((401, "UNAUTHORIZED"), (403, "FORBIDDEN")):
            wrapper = self.alt_response(status, response=name)(wrapper)
        return wrapper

    def idempotent(self, func: Callable | None = None, *, by_service: bool = False) -> Callable:
        """Accept an `Idempotency-Key` header: a replay returns the first response unchanged,
        the same key with another body is a 409. Put it above `arguments`/`response`.

        `@blp.idempotent(by_service=True)`: the view's service stores the key with what it
        creates, rebuilds the first response on a replay and claims the key with
        `ecovalue.idempotency.claim`; the route then stores no response of its own (two
        statements fewer per request) and only checks and documents the header."""
        if func is None:
            return functools.partial(self.idempotent, by_service=by_service)
        from ecovalue.idempotency import (  # avoid an import circle at load
            run_idempotent,
            run_service_idempotent,
        )

        run = run_service_idempotent if by_service else run_idempotent

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(lambda: func(*args, **kwargs))

        wrapper = self.headers({
            "in": "header", "name": "Idempotency-Key", "required": False,
            "description": "client-chosen unique key (1-200 printable ASCII characters); "
                           "retrying with the same key and body replays the first response",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                       "pattern": "^[\\x21-\\x7e]+$"},
        })(wrapper)
        return self.alt_response(409, response="CONFLICT")(wrapper)


def problem_responses() -> dict[str, Any]:
    """Spec fragment for the problem+json media type, used by the Api subclass."""
    return {"content_type": PROBLEM_MEDIA_TYPE, "schema": ProblemSchema}


def body_limit(config_key: str) -> Callable:
    """Let a route take request bodies up to `app.config[config_key]` bytes instead of
    MAX_CONTENT_LENGTH (the shell's `_screen_request` reads the mark). Put it right above the
    view function, below the flask-smorest decorators."""

    def mark(func: Callable) -> Callable:
        func.body_limit_config = config_key  # type: ignore[attr-defined]
        return func

    return mark
