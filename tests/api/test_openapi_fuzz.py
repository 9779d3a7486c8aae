"""Schemathesis over the whole OpenAPI document: no 5xx, and every response (status code,
media type, body) conforms to what the document says.

Runs as admin (who may call every operation, so generated data reaches the services) against
the demo dataset, loaded once for this module. SCHEMATHESIS_MAX_EXAMPLES tunes the depth.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.shared_database

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def demo_loaded(app):
    from tests.conftest import load_demo, wipe

    database = app.extensions["ecovalue.db"]
    wipe(database)
    load_demo(app)
    yield
    wipe(database)


@pytest.fixture(scope="module")
def admin_headers(app, demo_loaded):
    from tests.conftest import Tokens

    return Tokens(app.extensions["ecovalue.db"]).admin


@pytest.fixture(scope="module")
def api_schema(app, demo_loaded):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, admin_headers):
    case.call_and_validate(headers=admin_headers, checks=CHECKS)
