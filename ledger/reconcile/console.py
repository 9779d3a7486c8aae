"""The finance bureau's web console (server-rendered Jinja pages under /console).

Sign in with a token (the same bearer tokens as the API; it is kept in an HttpOnly,
SameSite=Strict cookie for /console only), upload a statement (with a progress bar while the
file goes up), see the discrepancy report, confirm, match, unmatch and explain, sign off,
close the period and download the reports. Routes only translate HTTP: each calls the same
service as the API. Every form carries a CSRF token: for a signed-in officer an HMAC of the
session's token, for the sign-in form a random value also set as a cookie; a form posted
without it is refused (400) and nothing changes. Labels are Chinese with English alongside;
the pages use a local stylesheet and script, no CDN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ecovalue.auth import Principal
from ecovalue.auth import services as auth_services
from ecovalue.db import current_session
from ecovalue.errors import EcovalueError
from ledger.core.calendar import parse_month
from ledger.reconcile import errors
from ledger.reconcile.services import reports, runs, statements

bp = Blueprint("reconcile_console", __name__, url_prefix="/console",
               template_folder="templates", static_folder="static",
               static_url_path="/static")

SESSION_COOKIE = "ecovalue_console"
LOGIN_CSRF_COOKIE = "ecovalue_console_csrf"
_COOKIE: dict[str, Any] = {"httponly": True, "samesite": "Strict", "path": "/console"}


class CsrfRefused(EcovalueError):
    status, code, title = 400, "csrf-token-missing", "Form refused: CSRF token missing or wrong"


def _csrf_for(secret: str) -> str:
    return hmac.new(secret.encode(), b"ecovalue-console-csrf", hashlib.sha256).hexdigest()[:40]


def _principal() -> Principal | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    return auth_services.authenticate(current_session(), secret)


def _check_csrf(expected: str | None) -> None:
    sent = request.form.get("csrf_token", "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused("this form was sent without its security token (CSRF), or with a "
                          "stale one; nothing was changed. Reload the page and try again.")


def _page(template: str, status: int = 200, **context: Any) -> Response:
    context.setdefault("actor", g.get("console_actor"))
    context.setdefault("csrf_token", g.get("console_csrf"))
    return make_response(render_template(f"reconcile/{template}", yuan=reports.yuan,
                                         **context), status)


def _error_page(exc: EcovalueError) -> Response:
    return _page("error.html", status=exc.status, error=exc, back=request.referrer)


def signed_in(func: Callable) -> Callable:
    """The officer must be signed in; a POST must carry the session's CSRF token; domain
    errors become a page (with the status) instead of problem+json."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            actor = _principal()
            if actor is None:
                if request.method == "POST":
                    raise CsrfRefused("you are not signed in (or the token expired): sign in "
                                      "and send the form again; nothing was changed")
                return redirect(url_for("reconcile_console.signin"))
            g.console_actor = actor
            g.console_csrf = _csrf_for(request.cookies[SESSION_COOKIE])
            if request.method == "POST":
                _check_csrf(g.console_csrf)
            return func(actor, *args, **kwargs)
        except EcovalueError as exc:
            current_session().rollback()
            return _error_page(exc)

    return wrapper


def _month(text: str) -> dt.date:
    try:
        return parse_month(text)
    except ValueError:
        raise errors.InvalidMatch(f"{text!r} is not a month (YYYY-MM)") from None


def _int(name: str) -> int | None:
    text = (request.form.get(name) or "").strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit() or len(text) > 18:
        raise errors.InvalidMatch(f"{name}: a whole number of fen", errors=[
            {"location": "form", "field": name, "message": "a whole number of fen"}])
    return int(text)


def _ids(name: str) -> list[int]:
    values = request.form.getlist(name)
    if any(not v.isdigit() or len(v) > 18 for v in values):
        raise errors.InvalidMatch(f"{name}: ids")
    return [int(v) for v in values]


# --- sign in and out -------------------------------------------------------------------------


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    if request.method == "GET":
        token = secrets.token_urlsafe(24)
        response = _page("signin.html", csrf_token=token, actor=None)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, **_COOKIE)
        return response
    try:
        _check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE))
    except CsrfRefused as exc:
        return _error_page(exc)
    secret = (request.form.get("token") or "").strip()
    actor = auth_services.authenticate(current_session(), secret) if secret else None
    if actor is None:
        token = secrets.token_urlsafe(24)
        response = _page("signin.html", status=401, csrf_token=token, actor=None,
                         failed=True)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, **_COOKIE)
        return response
    signed = redirect(url_for("reconcile_console.home"))
    signed.set_cookie(SESSION_COOKIE, secret, **_COOKIE)
    signed.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return signed


@bp.route("/signout", methods=["POST"])
@signed_in
def signout(actor: Principal) -> Any:
    response = redirect(url_for("reconcile_console.signin"))
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# --- pages -----------------------------------------------------------------------------------


@bp.route("/")
@signed_in
def home(actor: Principal) -> Any:
    session = current_session()
    found = list(session.scalars(statements.list_statements(session, actor).limit(50)))
    recent = list(session.scalars(runs.list_runs(session, actor).limit(50)))
    return _page("home.html", statements=found, runs=recent)


@bp.route("/statements", methods=["POST"])
@signed_in
def upload(actor: Principal) -> Any:
    session = current_session()
    file = request.files.get("file")
    if file is None or not file.filename:
        raise errors.InvalidMatch("choose a statement file to upload", errors=[
            {"location": "form", "field": "file", "message": "required"}])
    try:
        result = statements.import_statement(
            session, actor, file.stream.read(), file.filename[:255],
            account=(request.form.get("account") or "").strip(),
            period=_month((request.form.get("period") or "").strip()),
            bank_code=(request.form.get("bank_code") or "DEFAULT").strip() or "DEFAULT",
            opening_balance_fen=_int("opening_balance_fen"),
            closing_balance_fen=_int("closing_balance_fen"))
    except errors.StatementRejected as exc:
        session.rollback()
        return _page("rejected.html", status=422, error=exc, filename=file.filename)
    return redirect(url_for("reconcile_console.statement", statement_id=result.statement_id,
                            added=result.lines_added, present=result.lines_already_present))


@bp.route("/statements/<int:statement_id>")
@signed_in
def statement(actor: Principal, statement_id: int) -> Any:
    session = current_session()
    found = statements.get_statement(session, actor, statement_id)
    lines = list(session.scalars(statements.statement_lines(session, actor, statement_id)
                                 .limit(2000)))
    return _page("statement.html", statement=found, lines=lines,
                 added=request.args.get("added"), present=request.args.get("present"))


@bp.route("/runs", methods=["POST"])
@signed_in
def create_run(actor: Principal) -> Any:
    run = runs.create_run(current_session(), actor,
                          account=(request.form.get("account") or "").strip(),
                          period=_month((request.form.get("period") or "").strip()))
    return redirect(url_for("reconcile_console.run", run_id=run.id))


@bp.route("/runs/<int:run_id>")
@signed_in
def run(actor: Principal, run_id: int) -> Any:
    session = current_session()
    found = runs.get_run(session, actor, run_id)
    listed = list(session.scalars(runs.items(session, actor, run_id)))
    order = {"proposed": 0, "open": 1, "explained": 2, "confirmed": 3}
    listed.sort(key=lambda i: (order.get(i.status, 9), i.id))
    return _page("run.html", run=found, items=listed, summary=runs.summarize(session, found),
                 month=f"{found.period:%Y-%m}", done=request.args.get("done"),
                 carried=runs.carry_over_of(session, found))


@bp.route("/runs/<int:run_id>/items/<int:item_id>/<string:action>", methods=["POST"])
@signed_in
def decide(actor: Principal, run_id: int, item_id: int, action: str) -> Any:
    session = current_session()
    reason = request.form.get("reason")
    if action == "confirm":
        runs.confirm(session, actor, run_id, item_id, reason=reason)
    elif action == "explain":
        runs.explain(session, actor, run_id, item_id, reason=reason or "")
    elif action == "unmatch":
        runs.unmatch(session, actor, run_id, item_id, reason=reason or "")
    else:
        raise errors.ItemNotFound(f"no action {action!r}")
    return redirect(url_for("reconcile_console.run", run_id=run_id, done=action) +
                    f"#item-{item_id}")


@bp.route("/runs/<int:run_id>/match", methods=["POST"])
@signed_in
def match(actor: Principal, run_id: int) -> Any:
    runs.manual_match(current_session(), actor, run_id, line_ids=_ids("line_ids"),
                      transaction_ids=_ids("transaction_ids"),
                      reason=request.form.get("reason") or "")
    return redirect(url_for("reconcile_console.run", run_id=run_id, done="match"))


@bp.route("/runs/<int:run_id>/signoff", methods=["POST"])
@signed_in
def signoff(actor: Principal, run_id: int) -> Any:
    runs.sign_off(current_session(), actor, run_id, note=request.form.get("note") or None)
    return redirect(url_for("reconcile_console.run", run_id=run_id, done="signoff"))


@bp.route("/periods/<string:period>/close", methods=["POST"])
@signed_in
def close(actor: Principal, period: str) -> Any:
    runs.close_period(current_session(), actor, _month(period),
                      note=request.form.get("note") or None)
    return redirect(url_for("reconcile_console.report", period=period, closed=1))


@bp.route("/reports/<string:period>")
@signed_in
def report(actor: Principal, period: str) -> Any:
    built = reports.build_report(current_session(), actor, _month(period))
    return _page("report.html", report=built, console=True,
                 closed=request.args.get("closed"))


@bp.route("/reports/<string:period>/xlsx")
@signed_in
def report_xlsx(actor: Principal, period: str) -> Any:
    built = reports.build_report(current_session(), actor, _month(period))
    response = make_response(reports.report_xlsx(built))
    response.mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response.headers["Content-Disposition"] = f'attachment; filename="report-{period}.xlsx"'
    return response
