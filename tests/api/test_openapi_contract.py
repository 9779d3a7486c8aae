"""Properties of the whole OpenAPI document that no single package test would notice."""

from __future__ import annotations

import re

import pytest

WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.fixture()
def spec(client):
    return client.get("/openapi.json").get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_every_write_needs_a_token(spec):
    open_writes = [f"{m.upper()} {p}" for p, m, op in _operations(spec)
                   if m in WRITE_METHODS and not op.get("security")]
    assert open_writes == []


def test_every_operation_documents_problem_errors(spec):
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        assert "default" in responses, f"{method} {path}"
        if operation.get("security"):
            assert {"401", "403"} <= set(responses), f"{method} {path}"


def test_every_secured_operation_answers_401_without_token(client, spec, problem):
    for path, method, operation in _operations(spec):
        if not operation.get("security"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.open(url, method=method.upper(), json={})
        problem(response, 401, "unauthorized")
