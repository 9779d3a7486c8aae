"""The OpenAPI document tells the whole truth about parameters: every operation refuses a query
parameter or form field it does not declare (ecovalue/declared.py), so no view can read one the
document does not show, and a typo in a filter is an error instead of an unfiltered answer."""

from __future__ import annotations

import re

import pytest

from ecovalue.declared import declared_parameters, openapi_path

UNKNOWN = "zz_not_a_parameter"


def _url(path: str, operation: dict) -> str:
    """A URL matching the route, whatever the ids (the check runs before the view looks)."""
    schemas = {p["name"]: p.get("schema", {}) for p in operation.get("parameters", [])
               if p["in"] == "path"}

    def value(match: re.Match) -> str:
        schema = schemas.get(match.group(1), {})
        if "enum" in schema:
            return str(schema["enum"][0])
        return "522326" if "region" in match.group(1) else "1"

    return re.sub(r"\{([^}]+)\}", value, path)


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                yield path, method, {**item[method], "parameters": [
                    *item.get("parameters", []), *item[method].get("parameters", [])]}


def test_every_operation_refuses_an_undeclared_query_parameter(client, tokens, problem):
    spec = client.get("/openapi.json").get_json()
    checked = 0
    for path, method, operation in _operations(spec):
        response = client.open(f"{_url(path, operation)}?{UNKNOWN}=1",
                               method=method.upper(), json={}, headers=tokens.admin)
        body = problem(response, 422, "validation-error")
        assert body["errors"][0]["location"] == "query", (method, path, body)
        assert body["errors"][0]["field"] == UNKNOWN, (method, path, body)
        checked += 1
    assert checked > 100  # every package's operations, not a handful


def test_the_problem_names_the_parameters_the_operation_takes(client, problem):
    body = problem(client.get("/catalog/public/products?regoin=522326"), 422)
    assert "'regoin' is not a parameter of GET /catalog/public/products" in body["detail"]
    assert "county, page, page_size, q, region," in body["errors"][0]["message"]


def test_declared_parameters_are_accepted(client, tokens):
    response = client.get("/catalog/products?region=522326&page=1&page_size=5",
                          headers=tokens.admin)
    assert response.status_code == 200, response.get_json()


def test_routes_outside_the_document_are_not_checked(client):
    assert client.get(f"/docs?{UNKNOWN}=1").status_code == 200


@pytest.mark.parametrize(("rule", "path"), [
    ("/catalog/products/<int:product_id>", "/catalog/products/{product_id}"),
    ("/catalog/regions/<region_code:code>/tree", "/catalog/regions/{code}/tree"),
    ("/health", "/health"),
])
def test_openapi_path_of_a_flask_rule(rule, path):
    assert openapi_path(rule) == path


def test_declared_parameters_resolve_references():
    document = {
        "components": {
            "parameters": {"Page": {"name": "page", "in": "query"}},
            "schemas": {"Upload": {"properties": {"file": {}, "note": {}}}},
        },
        "paths": {"/x/{id}": {
            "parameters": [{"name": "id", "in": "path"}],
            "get": {"parameters": [{"$ref": "#/components/parameters/Page"},
                                   {"name": "year", "in": "query"},
                                   {"name": "Idempotency-Key", "in": "header"}]},
            "post": {"requestBody": {"content": {"multipart/form-data": {
                "schema": {"$ref": "#/components/schemas/Upload"}}}}},
        }},
    }
    assert declared_parameters(document) == {
        ("/x/{id}", "GET"): {"query": frozenset({"page", "year"}), "form": frozenset()},
        ("/x/{id}", "POST"): {"query": frozenset(), "form": frozenset({"file", "note"})},
    }


def _argument_schemas(app):
    """(rule, METHOD, location, schema) of every `@blp.arguments` of every view."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        methods = {m: getattr(view.view_class, m.lower()) for m in rule.methods
                   if hasattr(getattr(view, "view_class", None), m.lower())} \
            if hasattr(view, "view_class") else dict.fromkeys(rule.methods, view)
        for method, func in methods.items():
            if method in ("HEAD", "OPTIONS"):
                continue
            for argument in getattr(func, "_apidoc", {}).get("arguments", {}).get(
                    "parameters", []):
                yield rule.rule, method, argument.get("in", "json"), argument["schema"]


def test_every_parameter_a_view_parses_is_in_the_document(app, client):
    """The other half of the truth: what a view's schemas read, the document shows (it once
    lost the query parameters of every operation that also documented a header)."""
    spec = client.get("/openapi.json").get_json()
    declared = declared_parameters(spec)
    missing, checked = [], 0
    for rule, method, location, schema in _argument_schemas(app):
        where = {"query": "query", "form": "form", "files": "form"}.get(location)
        if where is None:
            continue
        schema = schema() if isinstance(schema, type) else schema
        names = {field.data_key or name for name, field in schema.fields.items()
                 if not field.dump_only}
        documented = declared[(openapi_path(rule), method)][where]
        missing += [f"{method} {rule} {where} {n}" for n in sorted(names - documented)]
        checked += 1
    assert missing == []
    assert checked > 30
