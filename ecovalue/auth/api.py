"""GET /auth/whoami: what the presented token allows."""

from __future__ import annotations

import marshmallow as ma

from ecovalue.api import Blueprint, Integer, current_principal

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Authentication")


class PrincipalSchema(ma.Schema):
    role = ma.fields.String(required=True)
    token_id = Integer(allow_none=True)
    county_code = ma.fields.String(allow_none=True)
    party_id = Integer(allow_none=True)


@blp.route("/whoami")
@blp.authenticated
@blp.response(200, PrincipalSchema)
def whoami():
    """The role and scope of the bearer token."""
    return current_principal()
