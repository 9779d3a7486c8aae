"""The composition root: the only module that knows every package.

`create_app` builds the Flask app: configuration, database, error handling, auth, logging,
OpenAPI with an offline Swagger UI, and the blueprints and CLI commands of catalog, valuation
and ledger.
"""

from __future__ import annotations

import http
import importlib
import re
from typing import Any

import flask_smorest
import sqlalchemy as sa
from flask import Flask, g, request, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.routing import IntegerConverter

from ecovalue import __version__, errors, protect
from ecovalue.api import BEARER, ProblemSchema
from ecovalue.auth import services as auth_services
from ecovalue.config import load_config
from ecovalue.db import Database, current_session
from ecovalue.errors import PROBLEM_MEDIA_TYPE, BadRequest, PayloadTooLarge, Unauthorized
from ecovalue.logging import configure_logging

#: every module that defines models; Alembic's autogenerate and `alembic check` see these
MODEL_MODULES = [
    "ecovalue.auth.models",
    "ecovalue.audit.models",
    "ecovalue.idempotency",
    "catalog.models",
    "valuation.models",
    "ledger.core.models",
    "ledger.carbon.models",
]

#: (module, attribute) of every flask-smorest Blueprint, in the order they appear in the docs
BLUEPRINTS = [
    ("ecovalue.health", "blp"),
    ("ecovalue.auth.api", "blp"),
    ("ecovalue.audit.api", "blp"),
    ("catalog.api", "blp"),
    ("valuation.api", "blp"),
    ("ledger.core.api", "blp"),
    ("ledger.carbon.api", "blp"),
]

#: click groups or commands added to the `ecovalue` command
CLI_COMMANDS = [
    ("ecovalue.cli", "token_group"),
    ("ecovalue.cli", "audit_group"),
    ("ecovalue.cli", "db_group"),
    ("ecovalue.cli", "demo_group"),
    ("catalog.cli", "cli"),
    ("valuation.cli", "cli"),
    ("ledger.core.cli", "cli"),
    ("ledger.carbon.cli", "cli"),
]


#: demo data loaders, in order: each `load(session, actor) -> list[str]` (summary lines)
DEMO_LOADERS = [("catalog.demo", "load"), ("valuation.demo", "load"), ("ledger.core.demo", "load"),
                ("ledger.carbon.demo", "load")]
#: invariant checks `ecovalue ledger verify` runs after the core's: `check(session, actor)`
LEDGER_VERIFY_CHECKS = [("ledger.carbon.services", "verify")]
#: the party the demo trader token acts for: `trader_party_id(session) -> int | None`
DEMO_TRADER_PARTY = ("catalog.demo", "trader_party_id")

#: checks that a token's county / party exists (the catalog knows regions and parties)
TOKEN_SCOPE_VALIDATOR = ("catalog.services", "validate_token_scope")


def import_models() -> sa.MetaData:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from ecovalue.db import Base

    return Base.metadata


def _load(spec: tuple[str, str]) -> Any:
    module, attribute = spec
    return getattr(importlib.import_module(module), attribute)


class Api(flask_smorest.Api):
    """flask-smorest's Api, with errors documented and rendered as application/problem+json."""

    ERROR_SCHEMA = ProblemSchema

    #: names that differ between Python versions (3.13 renamed 413 and 422), registered too
    RESPONSE_ALIASES = {413: ("PAYLOAD_TOO_LARGE", "CONTENT_TOO_LARGE",
                              "REQUEST_ENTITY_TOO_LARGE"),
                        422: ("UNPROCESSABLE_ENTITY", "UNPROCESSABLE_CONTENT")}

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": self.ERROR_SCHEMA}}
            for name in {status.name, *self.RESPONSE_ALIASES.get(status.value, ())}:
                self.spec.components.response(name, dict(response), lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "Error (RFC 9457 problem details)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": self.ERROR_SCHEMA}},
        }, lazy=True)

    def handle_http_exception(self, error: Any) -> Any:
        return errors.handle_http_exception(error)


INT64_MAX = 2**63 - 1


class Int64Converter(IntegerConverter):
    """`<int:...>` limited to what a BIGINT column holds: a larger id is simply not found
    (404) instead of overflowing the database driver."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", INT64_MAX)
        super().__init__(url_map, *args, **kwargs)


def _int64_schema(_converter: Any) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT64_MAX}


#: text no database column can hold: U+0000, and UTF-16 surrogates left unpaired by a JSON
#: escape such as "\ud800" (not encodable as UTF-8)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: their trace in a raw JSON body, to parse only the bodies that may hold them
_UNSTORABLE_ESCAPE = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])")


def _unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


class EcoFlask(Flask):
    """Commits the request's unit of work when the view succeeded, before the response leaves,
    so that a failing commit still becomes a problem+json answer rather than a 500."""

    def dispatch_request(self) -> Any:  # type: ignore[override]
        response = self.make_response(super().dispatch_request())
        session = g.get("_db_session")
        if session is not None:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        return response


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = EcoFlask("ecovalue")
    app.config.update(load_config(config))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # 望谟县, not \u671b\u8c1f\u53bf
    app.json.sort_keys = False  # type: ignore[attr-defined]
    protect.configure(app.config["DATA_KEY"])
    configure_logging(app)

    database = Database(app.config["DATABASE_URL"])
    app.extensions["ecovalue.db"] = database
    import_models()

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("_db_session", None)
        if session is not None:
            session.close()

    @app.before_request
    def _screen_request() -> None:
        """Refuse, whatever the route, an oversized body (Werkzeug would only notice when a
        view reads it) and NUL characters in the URL or a JSON body, or unpaired surrogates in
        a JSON body (no database text can store them, so they would otherwise fail deep inside
        a service)."""
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        if "\x00" in request.path or any(
                "\x00" in key + value for key, value in request.args.items(multi=True)):
            raise BadRequest("NUL characters (U+0000) are not accepted in the URL")
        if request.is_json and _UNSTORABLE_ESCAPE.search(request.get_data(cache=True)) and \
                _unstorable(request.get_json(silent=True)):
            raise BadRequest("NUL characters (U+0000) and unpaired surrogate escapes "
                             "(\\ud800-\\udfff) are not accepted in text")

    @app.before_request
    def _authenticate() -> None:
        g.principal = None
        header = request.headers.get("Authorization")
        if header is None:
            return
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        principal = auth_services.authenticate(current_session(), secret.strip())
        if principal is None:
            raise Unauthorized("the token is unknown, expired or revoked")
        g.principal = principal

    errors.register_error_handlers(app)
    app.url_map.converters["int"] = Int64Converter
    api = Api(app)
    api.register_converter(Int64Converter, _int64_schema)
    api.spec.components.security_scheme(BEARER, {
        "type": "http", "scheme": "bearer",
        "description": "opaque token from `ecovalue token create` (shown once)",
    })
    for spec in BLUEPRINTS:
        api.register_blueprint(_load(spec))

    assets = str(swagger_ui_path)

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename: str) -> Any:
        """Swagger UI's files, served locally: county intranets are often offline."""
        return send_from_directory(assets, filename, max_age=86400)

    app.extensions["ecovalue.token_scope_validator"] = _load(TOKEN_SCOPE_VALIDATOR)
    app.extensions["ecovalue.demo"] = {
        "loaders": [_load(spec) for spec in DEMO_LOADERS],
        "trader_party_id": _load(DEMO_TRADER_PARTY),
    }
    app.extensions["ledger.verify_checks"] = [_load(spec) for spec in LEDGER_VERIFY_CHECKS]
    for spec in CLI_COMMANDS:
        app.cli.add_command(_load(spec))
    app.config["ECOVALUE_VERSION"] = __version__
    return app
