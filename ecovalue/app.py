"""The composition root: the only module that knows every package.

`create_app` builds the Flask app: configuration, database, error handling, auth, logging,
OpenAPI with offline Swagger UI and ReDoc, and the blueprints and CLI commands of catalog,
valuation and ledger. `main` is the `ecovalue` console command.

Everything the app is made of is imported here by name, so reading this file tells what the
service contains; the domain packages import the shell's infrastructure, never this module.
"""

from __future__ import annotations

import http
import re
import signal
import threading
from pathlib import Path
from typing import Any, ClassVar

import click
import flask_smorest
import numpy as np
import sqlalchemy as sa
from flask import Flask, g, redirect, request, send_from_directory
from flask.cli import FlaskGroup
from swagger_ui_bundle import swagger_ui_path
from werkzeug.routing import BaseConverter, IntegerConverter

import catalog.api
import catalog.cli
import catalog.demo
import catalog.models
import catalog.services
import ecovalue.audit.api
import ecovalue.audit.models
import ecovalue.auth.api
import ecovalue.auth.models
import ecovalue.health
import ecovalue.idempotency
import ledger.carbon.api
import ledger.carbon.cli
import ledger.carbon.demo
import ledger.carbon.models
import ledger.carbon.services
import ledger.compensation.api
import ledger.compensation.cli
import ledger.compensation.demo
import ledger.compensation.models
import ledger.compensation.services
import ledger.core.api
import ledger.core.cli
import ledger.core.demo
import ledger.core.models
import ledger.market.api
import ledger.market.cli
import ledger.market.demo
import ledger.market.models
import ledger.pilot.api
import ledger.pilot.cli
import ledger.pilot.demo
import ledger.pilot.models
import ledger.pilot.services
import ledger.reconcile.api
import ledger.reconcile.cli
import ledger.reconcile.console
import ledger.reconcile.demo
import ledger.reconcile.models
import ledger.reconcile.services.reports
import ledger.sharing.api
import ledger.sharing.cli
import ledger.sharing.demo
import ledger.sharing.models
import ledger.sharing.services
import valuation.api
import valuation.cli
import valuation.demo
import valuation.models
import valuation.services.runs
from ecovalue import __version__, declared, errors, protect, ratelimit
from ecovalue import cli as shell_cli
from ecovalue.api import BEARER, ProblemSchema
from ecovalue.auth import services as auth_services
from ecovalue.config import load_config
from ecovalue.db import INT64_MAX, Base, Database, current_session
from ecovalue.errors import (
    PROBLEM_MEDIA_TYPE,
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)
from ecovalue.logging import configure_logging

#: every module that defines models; Alembic's autogenerate and `alembic check` see these
MODEL_MODULES = (ecovalue.auth.models, ecovalue.audit.models, ecovalue.idempotency,
                 catalog.models, valuation.models, ledger.core.models, ledger.carbon.models,
                 ledger.pilot.models, ledger.compensation.models,
                 ledger.reconcile.models, ledger.sharing.models,
                 ledger.market.models)

#: every flask-smorest Blueprint, in the order they appear in the docs
BLUEPRINTS = (ecovalue.health.blp, ecovalue.auth.api.blp, ecovalue.audit.api.blp,
              catalog.api.blp, valuation.api.blp, ledger.core.api.blp, ledger.carbon.api.blp,
              ledger.pilot.api.blp, ledger.compensation.api.blp,
              ledger.reconcile.api.blp, ledger.sharing.api.blp,
              ledger.market.api.blp)

#: the command groups of `ecovalue`: the shell's, then each package's
CLI_COMMANDS = (shell_cli.token_group, shell_cli.audit_group, shell_cli.db_group,
                shell_cli.demo_group, catalog.cli.cli, valuation.cli.cli, ledger.core.cli.cli,
                ledger.carbon.cli.cli, ledger.pilot.cli.cli, ledger.compensation.cli.cli,
                ledger.reconcile.cli.cli, ledger.sharing.cli.cli,
                ledger.market.cli.cli)

#: demo data loaders, in order: each `load(session, actor) -> list[str]` (summary lines)
DEMO_LOADERS = (catalog.demo.load, valuation.demo.load, ledger.core.demo.load,
                ledger.carbon.demo.load, ledger.pilot.demo.load, ledger.compensation.demo.load,
                ledger.reconcile.demo.load, ledger.sharing.demo.load,
                ledger.market.demo.load)
#: server-rendered pages (plain Flask blueprints, outside the OpenAPI document)
PAGE_BLUEPRINTS = (ledger.reconcile.console.bp,)
#: invariant checks `ecovalue ledger verify` runs after the core's: `check(session, actor)`
LEDGER_VERIFY_CHECKS = (ledger.carbon.services.verify, ledger.pilot.services.verify,
                        ledger.compensation.services.settlements.verify,
                        ledger.sharing.services.verify)
#: rows reconcile's period report reads from packages it may not import (never sideways)
RECONCILE_REPORT_READERS = {
    "sharing.paid_by_village": ledger.sharing.services.totals.paid_by_village}
#: valuation's run totals, for compensation's conditions on a GEP change (never sideways)
COMPENSATION_GEP_READER = valuation.services.runs.gep_totals

#: ReDoc's script, vendored (see vendor/redoc/README.md): no CDN on a county intranet
REDOC_ASSETS = Path(__file__).resolve().parent / "vendor" / "redoc"


def import_models() -> sa.MetaData:
    """The metadata of every table (the model modules above are imported with this module)."""
    return Base.metadata


class Api(flask_smorest.Api):
    """flask-smorest's Api, with errors documented and rendered as application/problem+json."""

    ERROR_SCHEMA = ProblemSchema

    #: names that differ between Python versions (3.13 renamed 413 and 422), registered too
    RESPONSE_ALIASES: ClassVar[dict[int, tuple[str, ...]]] = {
        413: ("PAYLOAD_TOO_LARGE", "CONTENT_TOO_LARGE", "REQUEST_ENTITY_TOO_LARGE"),
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



class Int64Converter(IntegerConverter):
    """`<int:...>` limited to what a BIGINT column holds: a larger id is simply not found
    (404) instead of overflowing the database driver."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", INT64_MAX)
        super().__init__(url_map, *args, **kwargs)


def _int64_schema(_converter: Any) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT64_MAX}


class RegionCodeConverter(BaseConverter):
    """`<region_code:...>`: an administrative code is digits (GB/T 2260: 6, 9 or 12), so a
    fixed path beside it (/catalog/regions/tree) can never be taken for a code."""

    regex = r"\d{1,12}"


def _region_code_schema(_converter: Any) -> dict[str, Any]:
    return {"type": "string", "pattern": r"^\d{1,12}$"}


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


#: the deepest nesting of arrays and objects a JSON body may have (the parsers, validators and
#: serialisers behind it recurse: about 400 levels exhausted Python's stack)
MAX_JSON_DEPTH = 64
#: a JSON string, escapes included (unrolled, so that a long string is matched in one pass)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_OPENERS = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSERS = np.frombuffer(b"]}", dtype=np.uint8)


class JsonTooDeep(BadRequest):
    code, title = "json-too-deep", "JSON nested too deeply"


class BodyRequired(BadRequest):
    code, title = "body-required", "Request body required"


def json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in JSON text, counted without parsing it (so without
    recursion): strings are cut out, then the brackets are summed up."""
    codes = np.frombuffer(_JSON_STRING.sub(b"", data), dtype=np.uint8)
    if not len(codes):
        return 0
    steps = np.isin(codes, _OPENERS).astype(np.int64) - np.isin(codes, _CLOSERS)
    return int(np.cumsum(steps).max(initial=0))


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests deeper than `limit`. No body can nest deeper than it has
    opening brackets (those inside strings only add to the count), so a body with at most
    `limit` of them, which is nearly every body, is passed on two byte counts, without the
    walk of `json_depth`."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    return json_depth(data) > limit


def _json_body(view: Any) -> bool | None:
    """None when the view reads no JSON body; else whether its body is required (as declared
    with flask-smorest's `arguments`)."""
    apidoc = getattr(view, "_apidoc", None) or {}
    for parameter in apidoc.get("arguments", {}).get("parameters", []):
        if parameter.get("in", "json") == "json":
            return bool(parameter.get("required", True))
    return None


class RequestBudget:
    """A time budget per request (sync workers, which serve a request in the main thread): a
    request still running after `seconds` is interrupted by SIGALRM with RequestTimeout, so
    its unit of work is rolled back and the client gets a 503 problem+json instead of the
    HTML page or dropped connection of a worker killed by gunicorn's timeout. The budget is
    stopped before the commit, so a request is never reported failed after it committed.
    (A single database statement is not interrupted: the alarm is raised when it returns,
    which is why gunicorn's own timeout is set well above the budget.)"""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def _expired(self, _signum: int, _frame: Any) -> None:
        raise RequestTimeout(f"the request ran longer than {self.seconds:g} s and was rolled "
                             f"back; nothing was changed", limit_seconds=self.seconds)

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    @staticmethod
    def stop() -> None:
        if threading.current_thread() is threading.main_thread():
            signal.setitimer(signal.ITIMER_REAL, 0)


class EcoFlask(Flask):
    """Commits the request's unit of work when the view succeeded, before the response leaves,
    so that a failing commit still becomes a problem+json answer rather than a 500."""

    def dispatch_request(self) -> Any:
        response = self.make_response(super().dispatch_request())
        RequestBudget.stop()  # a request that reaches its commit is not interrupted any more
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
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider, typed as its base
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

    if app.config.get("REQUEST_BUDGET_SECONDS"):
        budget = RequestBudget(float(app.config["REQUEST_BUDGET_SECONDS"]))
        app.before_request(budget.start)
        app.teardown_request(lambda _exc: budget.stop())

    json_bodies: dict[str, bool | None] = {}

    def _screen_json_body() -> None:
        """A route that reads a JSON body gets one, as application/json in UTF-8: an empty
        body where one is required is a 400, another media type or charset a 415 (without
        this, webargs would read a text/plain body as no body at all)."""
        rule = request.url_rule
        if rule is None or request.method not in ("POST", "PUT", "PATCH"):
            return
        if rule.endpoint not in json_bodies:
            json_bodies[rule.endpoint] = _json_body(app.view_functions.get(rule.endpoint))
        required = json_bodies[rule.endpoint]
        if required is None:
            return
        if not request.get_data(cache=True):
            if required:
                raise BodyRequired("this operation needs a JSON body (application/json)")
            return
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if request.mimetype != "application/json" or charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"the body must be application/json in UTF-8, not "
                f"{request.content_type or 'a body without Content-Type'}")

    @app.before_request
    def _screen_request() -> None:
        """Refuse, whatever the route, an oversized body (Werkzeug would only notice when a
        view reads it), NUL characters in the URL, a JSON body of the wrong media type or
        nested deeper than MAX_JSON_DEPTH (before any parser or schema recurses into it), and
        NUL characters or unpaired surrogates in a JSON body (no database text can store
        them, so they would otherwise fail deep inside a service)."""
        limit = app.config["MAX_CONTENT_LENGTH"]
        # a route may take larger bodies under a limit of its own (ecovalue.api.body_limit)
        view = app.view_functions.get(request.url_rule.endpoint) if request.url_rule else None
        if getattr(view, "body_limit_config", None):
            limit = int(app.config[view.body_limit_config])  # type: ignore[union-attr]
            request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
        if "\x00" in request.path or any(
                "\x00" in key + value for key, value in request.args.items(multi=True)):
            raise BadRequest("NUL characters (U+0000) are not accepted in the URL")
        _screen_json_body()
        if request.is_json and json_too_deep(request.get_data(cache=True)):
            raise JsonTooDeep(f"the JSON body nests arrays and objects deeper than "
                              f"{MAX_JSON_DEPTH} levels", limit=MAX_JSON_DEPTH)
        if request.is_json and _UNSTORABLE_ESCAPE.search(request.get_data(cache=True)) and \
                _unstorable(request.get_json(silent=True)):
            raise BadRequest("NUL characters (U+0000) and unpaired surrogate escapes "
                             "(\\ud800-\\udfff) are not accepted in text")

    token_cache = auth_services.TokenCache()
    app.extensions["ecovalue.auth.token_cache"] = token_cache

    @app.before_request
    def _authenticate() -> None:
        g.principal = None
        header = request.headers.get("Authorization")
        if header is None:
            return
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        principal = auth_services.authenticate(current_session(), secret.strip(), token_cache)
        if principal is None:
            raise Unauthorized("the token is unknown, expired or revoked")
        g.principal = principal

    ratelimit.init_app(app)  # after authentication: the limits count per token
    errors.register_error_handlers(app)
    app.url_map.converters["int"] = Int64Converter
    app.url_map.converters["region_code"] = RegionCodeConverter
    api = Api(app)
    api.register_converter(Int64Converter, _int64_schema)
    api.register_converter(RegionCodeConverter, _region_code_schema)
    api.spec.components.security_scheme(BEARER, {
        "type": "http", "scheme": "bearer",
        "description": "opaque token from `ecovalue token create` (shown once)",
    })
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    for page_blueprint in PAGE_BLUEPRINTS:
        app.register_blueprint(page_blueprint)
    declared.refuse_undeclared(app, api.spec.to_dict)

    @app.get("/")
    def index() -> Any:
        """A visitor of the bare address lands on the API documentation."""
        return redirect("/docs")

    swagger_assets_dir = str(swagger_ui_path)

    @app.get("/docs/assets/<path:filename>")
    def swagger_assets(filename: str) -> Any:
        """Swagger UI's files, served locally: county intranets are often offline."""
        return send_from_directory(swagger_assets_dir, filename, max_age=86400)

    @app.get("/redoc/assets/<path:filename>")
    def redoc_assets(filename: str) -> Any:
        """ReDoc's script, served locally like Swagger UI's."""
        return send_from_directory(REDOC_ASSETS, filename, max_age=86400)

    app.extensions["ecovalue.token_scope_validator"] = catalog.services.validate_token_scope
    app.extensions["ecovalue.demo"] = {
        "loaders": list(DEMO_LOADERS),
        "trader_party_id": catalog.demo.trader_party_id,
    }
    app.extensions["ledger.verify_checks"] = list(LEDGER_VERIFY_CHECKS)
    ledger.reconcile.services.reports.provide_readers(RECONCILE_REPORT_READERS)
    ledger.compensation.services.gep.provide_reader(COMPENSATION_GEP_READER)
    for command in CLI_COMMANDS:
        app.cli.add_command(command)
    app.config["ECOVALUE_VERSION"] = __version__
    return app


class EcovalueCommand(FlaskGroup):
    """Flask's command group (the app's commands, plus `run`, `shell` and `routes`) without the
    options that do not apply: the app is always this one (Flask's `--app`), configuration
    comes from ECOVALUE_* variables (`--env-file`), and a county server never runs in debug
    mode (`--debug`)."""

    FLASK_OPTIONS = ("env_file", "app", "debug")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(create_app=lambda *_args: create_app(), add_version_option=False,
                         load_dotenv=False, set_debug_flag=False, **kwargs)
        self.params = [p for p in self.params if p.name not in self.FLASK_OPTIONS]


@click.group(cls=EcovalueCommand)
@click.version_option(__version__, prog_name="ecovalue")
def main() -> None:
    """ecovalue: ecological products, GEP valuation and compensation ledger.

    Configuration comes from ECOVALUE_* environment variables (README.md); by default the
    SQLite database and the data key live in instance/. Start with `make run`, or:
    `ecovalue db upgrade`, `ecovalue demo load`, `ecovalue demo tokens`.
    """
