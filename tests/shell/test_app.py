"""The shell: health, docs served offline, problem+json for HTTP errors, request ids."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from click.testing import CliRunner

from ecovalue.app import REDOC_ASSETS, main
from tests.conftest import TEST_DATA_KEY


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.headers["X-Request-ID"]


def test_request_id_is_echoed_when_well_formed(client):
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] \
        == "abc-123"
    assert client.get("/health", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] \
        != "bad id!"


def test_openapi_document_has_security_scheme_and_problem_errors(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.0")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    default_error = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert "application/problem+json" in default_error["content"]
    whoami = spec["paths"]["/auth/whoami"]["get"]
    assert whoami["security"] == [{"bearerAuth": []}]
    assert {"401", "403"} <= set(whoami["responses"])


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "/docs/assets/swagger-ui-bundle.js" in page
    assert "http://" not in page and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200


def test_unknown_route_is_problem_404(client, problem):
    problem(client.get("/no/such/thing"), 404, "not-found")


def test_wrong_method_is_problem_405_with_allow(client, problem):
    response = client.delete("/health")
    problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


def test_body_too_large_is_problem_413(app, client, problem):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/audit", data=b"x" * (limit + 1),
                           headers={"Content-Type": "application/octet-stream"})
    problem(response, 413, "payload-too-large")


def test_bad_query_parameter_is_problem_422_with_field_errors(client, tokens, problem):
    body = problem(client.get("/audit?page=0", headers=tokens.auditor), 422, "validation-error")
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "page"


def test_nul_characters_are_refused_before_any_service(client, tokens, problem):
    problem(client.get("/audit?actor=a%00b", headers=tokens.auditor), 400, "bad-request")
    problem(client.post("/ledger/transactions", data='{"type": "a\\u0000b"}',
                        content_type="application/json", headers=tokens.admin), 400)


def test_unpaired_surrogate_escapes_are_refused_before_any_service(client, tokens, problem):
    """A JSON "\\ud800" parses to a str that no database driver can encode as UTF-8."""
    for text in ('"a\\ud800b"', '"\\uDC00"', '"x\\ud83d"'):
        body = problem(client.post("/ledger/transactions", data=f'{{"type": "t", "memo": {text}}}',
                                   content_type="application/json", headers=tokens.admin),
                       400, "bad-request")
        assert "surrogate" in body["detail"]
    # a surrogate PAIR is one character (U+1F600) and goes on to validation like any text
    problem(client.post("/ledger/transactions", data='{"type": "t", "memo": "\\ud83d\\ude00"}',
                        content_type="application/json", headers=tokens.admin), 422)


def test_the_bare_address_leads_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/docs"


def test_redoc_is_served_without_a_cdn(client):
    page = client.get("/redoc").get_data(as_text=True)
    assert '<script src="/redoc/assets/redoc.standalone.js">' in page
    assert 'spec-url="/openapi.json"' in page
    assert "http://" not in page and "https://" not in page
    script = client.get("/redoc/assets/redoc.standalone.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    # the vendored file is the one its README names (version and checksum)
    readme = (REDOC_ASSETS / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(script.data).hexdigest() in readme
    assert client.get("/redoc/assets/LICENSE").status_code == 200


def test_the_command_shows_its_own_options_only(tmp_path, monkeypatch):
    # listing the commands builds an app, and create_app sets the process-wide data key
    monkeypatch.setenv("ECOVALUE_DATA_KEY", TEST_DATA_KEY)
    monkeypatch.setenv("ECOVALUE_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("ECOVALUE_DATABASE_URL", f"sqlite:///{tmp_path / 'help.sqlite3'}")
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for flask_option in ("--env-file", "--app", "--debug"):
        assert flask_option not in result.output
    for command in ("catalog", "valuation", "ledger", "token", "db", "demo", "audit"):
        assert f"\n  {command} " in result.output
    assert CliRunner().invoke(main, ["--version"]).output.strip() == "ecovalue, version 0.1.0"


def test_the_shell_never_imports_the_app_or_a_domain_package():
    """ecovalue's infrastructure (its CLI included) is imported by catalog, valuation and
    ledger; only ecovalue.app, the composition root, may import them in turn."""
    code = ("import sys, ecovalue.cli, ecovalue.db, ecovalue.auth, ecovalue.audit, "
            "ecovalue.errors, ecovalue.idempotency, ecovalue.clock\n"
            "print(sorted(m for m in sys.modules if m == 'ecovalue.app' or "
            "m.split('.')[0] in ('catalog', 'valuation', 'ledger')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
