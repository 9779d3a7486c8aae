"""WSGI app for bench_ledger.py ONLY: the product app plus a bare endpoint that does one INSERT,
the baseline of the HTTP benchmark. Never imported by the product.

    gunicorn --pythonpath bench 'ledger_app:create()'
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import jsonify, request

from ecovalue.app import create_app
from ecovalue.db import current_session
from ecovalue.errors import Unauthorized


def create():  # type: ignore[no-untyped-def]
    app = create_app()
    if os.environ.get("ECOVALUE_BENCH_AUDIT") == "off":
        # Measurement probe only (bench_ledger.py --audit-probe): how much of a POST's cost is
        # the audit chain's append, serialised by its advisory lock until commit?
        from ecovalue import audit

        audit.record = lambda *args, **kwargs: 0  # type: ignore[assignment]

    add_bare(app)
    return app


def add_bare(app):  # type: ignore[no-untyped-def]
    """The baseline route on `app` (also used in-process by profile_ledger_post.py --bare)."""

    def bare():  # type: ignore[no-untyped-def]
        """Same stack (auth, session, commit, logging) as the ledger, one INSERT, no rules."""
        if not getattr(__import__("flask").g, "principal", None):
            raise Unauthorized()
        body = request.get_json()
        row_id = current_session().execute(
            sa.text("INSERT INTO bench_bare (payload) VALUES (:p) RETURNING id"),
            {"p": str(body)}).scalar_one()
        return jsonify({"id": row_id}), 201

    app.add_url_rule("/bench/bare", "bench_bare", bare, methods=["POST"])
