"""The project state machine: every (state, transition) pair, allowed and refused, and who
may perform each transition (table-driven, through the HTTP API)."""

from __future__ import annotations

import pytest

from ecovalue.auth import system_principal
from ledger.carbon import lifecycle
from ledger.carbon.models import CarbonProject
from tests.conftest import XINGYI
from tests.ledger.carbon.conftest import NOW, make_world, project_values

STATES = list(lifecycle.STATES)

#: (state, transition) -> state after it; absent = refused with 409 illegal-transition
ALLOWED = {
    ("draft", "validate"): "validated",
    ("draft", "reject"): "rejected",
    ("validated", "reject"): "rejected",
    ("validated", "register"): "registered",
    ("registered", "activate"): "active",
    ("active", "close"): "closed",
    ("draft", "withdraw"): "withdrawn",
    ("validated", "withdraw"): "withdrawn",
    ("registered", "withdraw"): "withdrawn",
}
#: transition -> roles that may perform it on a Wangmo project ("registrar" = Wangmo's own,
#: "registrar_other" = Xingyi's)
WHO = {
    "validate": {"admin", "verifier"},
    "reject": {"admin", "verifier"},
    "register": {"admin", "verifier"},
    "activate": {"admin", "verifier"},
    "close": {"admin", "verifier"},
    "withdraw": {"admin", "registrar"},
}
ROLES = ["admin", "registrar", "registrar_other", "verifier", "trader", "finance", "auditor"]
#: the shortest path from draft to each state
PATH = {"draft": [], "validated": ["validate"], "registered": ["validate", "register"],
        "active": ["validate", "register", "activate"],
        "closed": ["validate", "register", "activate", "close"], "rejected": ["reject"],
        "withdrawn": ["withdraw"]}


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
    assert set(PATH) == set(STATES)


def _project_in(database, world, state: str, code: str, parcel: int) -> None:
    from ledger.carbon.services import projects

    admin = system_principal("table")
    with database.unit_of_work() as s:
        project = projects.create_project(s, admin, project_values(
            world, code=code, parcel_ids=[parcel]), now=NOW)
        for name in PATH[state]:
            projects.transition_project(s, admin, project.id, name, reason="table", now=NOW)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("transition", list(lifecycle.TRANSITIONS))
def test_every_state_transition_and_role(state, transition, client, tokens, database, problem):
    world = make_world(database)
    for i, role in enumerate(ROLES):
        code = f"T-{i}"
        # each role gets its own project (a parcel may be in one live project only, so the
        # projects of a table row share the two parcels only while one is live)
        parcel = world.parcels["north" if i % 2 else "south"]
        _project_in(database, world, state, code, parcel)
        response = client.post(f"/carbon/projects/{code}/{transition}",
                               json={"reason": "table test"},
                               headers=headers_for(role, tokens, world))
        where = f"{role} {transition} from {state}"
        if role not in WHO[transition]:
            problem(response, 403, "forbidden")
        elif (target := ALLOWED.get((state, transition))) is None:
            body = problem(response, 409, "illegal-transition")
            assert state in body["detail"], where
        else:
            assert response.status_code == 200, (where, response.get_json())
            assert response.get_json()["status"] == target, where
        # free the parcel for the next role's project
        with database.unit_of_work() as s:
            project = s.query(CarbonProject).filter_by(code=code).one()
            if project.status in lifecycle.HOLDING_STATES:
                project.status = "withdrawn"
