"""The product state machine: every (state, transition) pair, allowed and refused, and who may
perform each transition (table-driven, through the HTTP API)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from catalog import lifecycle
from catalog.models import ProductVersion
from ecovalue.audit.models import AuditEvent
from tests.catalog.conftest import XINGYI, make_product

STATES = ["draft", "registered", "verified", "suspended", "retired"]

#: (state, transition) -> state after it; absent = refused with 409 illegal-transition
ALLOWED = {
    ("draft", "submit"): "registered",
    ("registered", "reject"): "draft",
    ("registered", "verify"): "verified",
    ("verified", "suspend"): "suspended",
    ("suspended", "reinstate"): "verified",
    ("draft", "retire"): "retired",
    ("registered", "retire"): "retired",
    ("verified", "retire"): "retired",
    ("suspended", "retire"): "retired",
}

#: transition -> roles that may perform it on a Wangmo product ("registrar" = Wangmo's own,
#: "registrar_other" = Xingyi's)
WHO = {
    "submit": {"admin", "registrar"},
    "reject": {"admin", "verifier"},
    "verify": {"admin", "verifier"},
    "suspend": {"admin", "verifier"},
    "reinstate": {"admin", "verifier"},
    "retire": {"admin", "registrar", "verifier"},
}
ROLES = ["admin", "registrar", "registrar_other", "verifier", "trader", "finance", "auditor"]


def headers_for(role, tokens, world):
    if role == "registrar":
        return tokens.registrar()
    if role == "registrar_other":
        return tokens.registrar(XINGYI)
    if role == "trader":
        return tokens.trader(world.plant)
    return tokens.headers(role)


def test_the_table_matches_the_module():
    derived = {(s, t): lifecycle.next_state(s, t) for s in STATES for t in lifecycle.TRANSITIONS
               if lifecycle.next_state(s, t)}
    assert derived == ALLOWED
    assert set(WHO) == set(lifecycle.TRANSITIONS)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("transition", list(lifecycle.TRANSITIONS))
def test_every_state_transition_and_role(state, transition, client, tokens, world, database,
                                         problem):
    for role in ROLES:
        product_id = make_product(database, world, state, name_zh=f"茶园 {role}")
        response = client.post(f"/catalog/products/{product_id}/{transition}",
                               json={"reason": "table test"},
                               headers=headers_for(role, tokens, world))
        where = f"{role} {transition} from {state}"
        if role not in WHO[transition]:
            problem(response, 403, "forbidden")
            continue
        target = ALLOWED.get((state, transition))
        if target is None:
            body = problem(response, 409, "illegal-transition")
            assert state in body["detail"], where
            continue
        assert response.status_code == 200, (where, response.get_json())
        body = response.get_json()
        assert body["status"] == target, where
        assert response.headers["ETag"] == f'"{body["version"]}"'
        with database.session(write=False) as s:
            last = s.scalars(sa.select(ProductVersion).where(
                ProductVersion.product_id == product_id)
                .order_by(ProductVersion.version.desc())).first()
            assert (last.change, last.status, last.version) == (transition, target,
                                                                body["version"]), where
            event = s.scalars(sa.select(AuditEvent).where(
                AuditEvent.entity_type == "product", AuditEvent.entity_id == str(product_id))
                .order_by(AuditEvent.seq.desc())).first()
            assert event.action == f"catalog.product.{transition}", where
            assert event.before["status"] == state and event.after["status"] == target


@pytest.mark.parametrize("transition", ["reject", "suspend", "retire"])
def test_a_reason_is_required_where_the_table_says(transition, client, tokens, world, database,
                                                   problem):
    state = {"reject": "registered", "suspend": "verified", "retire": "draft"}[transition]
    product_id = make_product(database, world, state)
    body = problem(client.post(f"/catalog/products/{product_id}/{transition}", json={},
                               headers=tokens.admin), 422)
    assert body["errors"][0]["field"] == "reason"


def test_the_same_person_cannot_change_and_verify(client, tokens, world, problem):
    from tests.catalog.conftest import product_body

    created = client.post("/catalog/products", json=product_body(world), headers=tokens.admin)
    product_id = created.get_json()["id"]
    assert client.post(f"/catalog/products/{product_id}/submit",
                       headers=tokens.admin).status_code == 200
    problem(client.post(f"/catalog/products/{product_id}/verify", headers=tokens.admin),
            409, "four-eyes")
    assert client.post(f"/catalog/products/{product_id}/verify",
                       headers=tokens.verifier).status_code == 200


def test_stale_if_match_is_refused_with_412(client, tokens, world, database, problem):
    product_id = make_product(database, world, "registered")
    current = client.get(f"/catalog/products/{product_id}", headers=tokens.verifier)
    etag = current.headers["ETag"]
    problem(client.post(f"/catalog/products/{product_id}/verify",
                        headers={**tokens.verifier, "If-Match": '"1"'}), 412, "version-mismatch")
    assert client.post(f"/catalog/products/{product_id}/verify",
                       headers={**tokens.verifier, "If-Match": etag}).status_code == 200


def test_unknown_product_is_404_for_those_who_may_act(client, tokens, problem):
    problem(client.post("/catalog/products/999/verify", headers=tokens.verifier), 404,
            "product-not-found")
    problem(client.post("/catalog/products/999/verify", headers=tokens.finance), 403)
