"""Liveness and readiness: GET /health."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app

from ecovalue.api import Blueprint
from ecovalue.db import current_session

blp = Blueprint("system", __name__, description="Service health")


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "ok or degraded"})
    database = ma.fields.String(required=True)
    dialect = ma.fields.String(required=True)
    version = ma.fields.String(required=True)


@blp.route("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="the database does not answer")
def health():
    """Whether the service and its database answer (no token needed)."""
    body = {"status": "ok", "database": "ok", "version": current_app.config["ECOVALUE_VERSION"],
            "dialect": current_app.extensions["ecovalue.db"].dialect}
    try:
        current_session().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        body.update(status="degraded", database="unreachable")
        return body, 503
    return body
