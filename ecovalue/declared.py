"""Only what the OpenAPI document declares: a request naming a query parameter that its
operation does not declare is refused (422), whatever the route.

Why refuse rather than ignore: a trader's script asking `GET /catalog/products?regoin=522326`
(a typo) would otherwise get every product back, unfiltered, and trust it; and a view reading a
parameter the document does not declare is an API nobody can discover. Checking every request
against the document itself makes both impossible at once: a view can only ever see the
parameters its operation documents, so the document tells the whole truth by construction.

The declared names are read from the generated OpenAPI document (`api.spec`), resolving
`$ref`s, once per app. Routes outside the document (the docs pages, static assets) and methods
it does not describe (HEAD, OPTIONS) are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, request

from ecovalue.errors import ValidationFailed

#: a Flask rule's variable, `<int:product_id>` or `<name>`, as OpenAPI writes it: `{product_id}`
_RULE_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

#: (OpenAPI path, method) -> {"query": names, "form": names}
Declared = dict[tuple[str, str], dict[str, frozenset[str]]]


def openapi_path(rule: str) -> str:
    """The OpenAPI path of a Flask URL rule: `/a/<int:id>` -> `/a/{id}`."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def declared_parameters(document: Mapping[str, Any]) -> Declared:
    """Every operation's declared query parameters and form fields (multipart or urlencoded)."""
    declared: Declared = {}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if not isinstance(operation, Mapping) or method == "parameters":
                continue
            parameters = [_resolve(document, p)
                          for p in [*shared, *operation.get("parameters", [])]]
            query = frozenset(p["name"] for p in parameters if p.get("in") == "query")
            form: set[str] = set()
            content = _resolve(document, operation.get("requestBody", {})).get("content", {})
            for media_type in _FORM_MEDIA_TYPES:
                schema = _resolve(document, content.get(media_type, {}).get("schema", {}))
                form.update(schema.get("properties", {}))
            declared[(path, method.upper())] = {"query": query, "form": frozenset(form)}
    return declared


def refuse_undeclared(app: Flask, document: Any) -> None:
    """Register the check on `app`; `document()` returns the OpenAPI document (read on the first
    request, when every blueprint has been registered)."""
    cache: dict[str, Declared] = {}

    @app.before_request
    def _refuse_undeclared() -> None:
        if request.url_rule is None:
            return
        if "declared" not in cache:
            cache["declared"] = declared_parameters(document())
        names = cache["declared"].get((openapi_path(request.url_rule.rule), request.method))
        if names is None:
            return
        # query parameters only: reading a multipart form here, before the view's own
        # parsing and the idempotency digest, changed what those saw (form fields are
        # checked against the document by tests/api/test_declared_parameters.py instead)
        sent = {"query": set(request.args)}
        errors = [
            {"location": location, "field": name,
             "message": f"unknown {'query parameter' if location == 'query' else 'form field'}"
                        f"; this operation takes: {', '.join(sorted(names[location])) or 'none'}"}
            for location, given in sent.items() for name in sorted(given - names[location])]
        if errors:
            unknown = ", ".join(repr(e["field"]) for e in errors)
            raise ValidationFailed(
                f"{unknown} {'is' if len(errors) == 1 else 'are'} not a parameter of "
                f"{request.method} {openapi_path(request.url_rule.rule)} (see /openapi.json)",
                errors=errors)
