"""GET /audit: the audit trail, filtered and paginated (auditor, admin)."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app

from ecovalue.api import (
    AwareDateTime,
    Blueprint,
    Integer,
    PageQuerySchema,
    current_actor,
    current_principal,
    page_of,
    paginate,
)
from ecovalue.audit import services
from ecovalue.auth import authorize
from ecovalue.db import current_session

blp = Blueprint("audit", __name__, url_prefix="/audit", description="Audit trail")


class AuditEventSchema(ma.Schema):
    seq = Integer(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    actor = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    entity_type = ma.fields.String(required=True)
    entity_id = ma.fields.String(required=True)
    before = ma.fields.Raw(allow_none=True)
    after = ma.fields.Raw(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    prev_hash = ma.fields.String(required=True)
    hash = ma.fields.String(required=True)


class AuditQuerySchema(PageQuerySchema):
    actor = ma.fields.String(validate=ma.validate.Length(max=250))
    action = ma.fields.String(validate=ma.validate.Length(max=100), metadata={
        "description": "exact action, or a prefix ending with '.' (e.g. `catalog.product.`)"})
    entity_type = ma.fields.String(validate=ma.validate.Length(max=60))
    entity_id = ma.fields.String(validate=ma.validate.Length(max=100))
    since = AwareDateTime()
    until = AwareDateTime()


class ChainReportSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)
    checked = Integer(required=True)
    first_broken_seq = Integer(allow_none=True)
    reason = ma.fields.String(allow_none=True)


class CheckpointSchema(ma.Schema):
    seq = Integer(required=True, validate=ma.validate.Range(min=0, max=2**63 - 1),
                            metadata={"description": "the last event covered"})
    hash = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[0-9a-f]{64}$"),
                            metadata={"description": "that event's hash"})
    signed_at = AwareDateTime(required=True)
    signature = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[0-9a-f]{64}$"),
                                 metadata={"description": "HMAC-SHA256 under the audit key"})

    @ma.post_load
    def make(self, data: dict, **_kwargs: object) -> services.Checkpoint:
        return services.Checkpoint(**data)


class VerifyAgainstSchema(ma.Schema):
    checkpoints = ma.fields.List(ma.fields.Nested(CheckpointSchema), required=True,
                                 validate=ma.validate.Length(min=1, max=1000))


@blp.route("")
@blp.authenticated
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, page_of(AuditEventSchema))
def list_events(query):
    """Audit events, newest first."""
    page, page_size = query.pop("page"), query.pop("page_size")
    actor = query.pop("actor", None)
    stmt = services.list_events(current_session(), current_actor(), actor_label=actor, **query)
    return paginate(current_session(), stmt, page, page_size)


@blp.route("/verify")
@blp.authenticated
@blp.response(200, ChainReportSchema)
def verify():
    """Recompute the hash chain and name the first broken link, if any."""
    authorize(current_principal(), "audit.read")
    return services.verify_chain(current_session())


@blp.route("/verify", methods=["POST"])
@blp.authenticated
@blp.arguments(VerifyAgainstSchema)
@blp.response(200, ChainReportSchema)
def verify_against(body):
    """Verify the chain against checkpoints an auditor kept: detects the truncation or the
    rewriting (with every later hash recomputed) of any event up to each checkpoint."""
    authorize(current_principal(), "audit.read")
    return services.verify_chain(current_session(), against=body["checkpoints"],
                                 key=current_app.config["AUDIT_KEY"])


@blp.route("/checkpoint")
@blp.authenticated
@blp.response(200, CheckpointSchema)
def checkpoint():
    """The chain's head, signed: keep it (outside this server) and verify against it later."""
    return services.checkpoint(current_session(), current_actor(),
                               current_app.config["AUDIT_KEY"])
