"""Row visibility (`row_filter`): which rows of an action each role reaches, and the SQL
condition that lets exactly those rows through."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ecovalue.auth import Principal, Role, RowFilter, row_filter

WANGMO, XINGYI = "522326", "522301"

ACTORS = {
    "admin": Principal(Role.ADMIN, "a", token_id=1),
    "registrar": Principal(Role.REGISTRAR, "r", token_id=2, county_code=WANGMO),
    "verifier": Principal(Role.VERIFIER, "v", token_id=3),
    "trader": Principal(Role.TRADER, "t", token_id=4, party_id=7),
    "finance": Principal(Role.FINANCE, "f", token_id=5),
    "auditor": Principal(Role.AUDITOR, "u", token_id=6),
}
EVERYTHING, NOTHING = RowFilter(everything=True), RowFilter()
COUNTY, PARTY = RowFilter(county=WANGMO), RowFilter(party=7)

#: action -> expected filter per role (admin, registrar, verifier, trader, finance, auditor)
CASES = {
    "catalog.party.read": (EVERYTHING, EVERYTHING, EVERYTHING, PARTY, EVERYTHING, EVERYTHING),
    "catalog.party.write": (EVERYTHING, COUNTY, NOTHING, NOTHING, NOTHING, NOTHING),
    "catalog.product.read": (EVERYTHING,) * 6,
    "catalog.product.verify": (EVERYTHING, NOTHING, EVERYTHING, NOTHING, NOTHING, NOTHING),
    "catalog.monitoring.write": (EVERYTHING, COUNTY, NOTHING, NOTHING, NOTHING, NOTHING),
    "valuation.quantities.read": (EVERYTHING, COUNTY, EVERYTHING, NOTHING, EVERYTHING,
                                  EVERYTHING),
    "valuation.run.read": (EVERYTHING, COUNTY, EVERYTHING, NOTHING, EVERYTHING, EVERYTHING),
    "valuation.run.publish": (EVERYTHING, NOTHING, EVERYTHING, NOTHING, NOTHING, NOTHING),
    "ledger.read": (EVERYTHING, NOTHING, NOTHING, PARTY, EVERYTHING, EVERYTHING),
    "ledger.transaction.create": (EVERYTHING, NOTHING, NOTHING, PARTY, EVERYTHING, NOTHING),
    "token.manage": (EVERYTHING, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING),
    "audit.read": (EVERYTHING, NOTHING, NOTHING, NOTHING, NOTHING, EVERYTHING),
}


@pytest.mark.parametrize(("action", "role", "expected"), [
    (action, role, expected) for action, row in CASES.items()
    for role, expected in zip(ACTORS, row, strict=True)])
def test_row_filter_of_every_role(action, role, expected):
    assert row_filter(ACTORS[role], action) == expected


@pytest.mark.parametrize("action", list(CASES))
def test_no_actor_reaches_nothing(action):
    assert row_filter(None, action).nothing


def test_a_scoped_role_without_its_scope_reaches_nothing():
    assert row_filter(Principal(Role.REGISTRAR, "r", token_id=2), "valuation.run.read").nothing
    assert row_filter(Principal(Role.TRADER, "t", token_id=4), "ledger.read").nothing


def test_unknown_action_fails_loudly():
    with pytest.raises(LookupError):
        row_filter(ACTORS["admin"], "catalog.party.raed")


@pytest.fixture()
def rows_table():
    """Rows of two counties (county, township, village codes) and two parties."""
    engine = sa.create_engine("sqlite://")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("region_code", sa.String), sa.Column("party_id", sa.Integer))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": 1, "region_code": WANGMO, "party_id": 7},
            {"id": 2, "region_code": WANGMO + "101", "party_id": 8},
            {"id": 3, "region_code": WANGMO + "101201", "party_id": 7},
            {"id": 4, "region_code": XINGYI + "101", "party_id": 9},
            {"id": 5, "region_code": "522300", "party_id": 7}])
    yield engine, table
    engine.dispose()


@pytest.mark.parametrize(("rows", "columns", "expected"), [
    (EVERYTHING, ("county", "party"), {1, 2, 3, 4, 5}),
    (EVERYTHING, (), {1, 2, 3, 4, 5}),
    (COUNTY, ("county",), {1, 2, 3}),
    (COUNTY, ("county", "party"), {1, 2, 3}),
    (COUNTY, ("party",), set()),  # a county scope on a table without regions
    (PARTY, ("party",), {1, 3, 5}),
    (PARTY, ("county",), set()),  # a party scope on a table without parties
    (NOTHING, ("county", "party"), set()),
    (RowFilter(county="52232%"), ("county",), set()),  # the code is text, not a pattern
])
def test_condition_lets_through_the_rows_of_the_filter(rows_table, rows, columns, expected):
    engine, table = rows_table
    given = {"county": table.c.region_code, "party": table.c.party_id}
    condition = rows.condition(**{name: given[name] for name in columns})
    with engine.connect() as conn:
        found = set(conn.scalars(sa.select(table.c.id).where(condition)))
    assert found == expected
