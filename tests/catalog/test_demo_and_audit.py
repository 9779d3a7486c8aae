"""The demo dataset and the audit trail the catalog leaves."""

from __future__ import annotations

import sqlalchemy as sa

from catalog import demo
from catalog.identifiers import id_number_error, uscc_error
from catalog.models import MonitoringRecord, Party, Product, Region
from ecovalue import protect
from ecovalue.audit import verify_chain
from ecovalue.audit.models import AuditEvent
from ecovalue.auth import system_principal
from tests.catalog.conftest import make_product
from tests.conftest import tampering


def load_catalog_demo(database) -> list[str]:
    """The catalog's demo loader alone (`ecovalue demo load` runs every package's)."""
    with database.unit_of_work() as s:
        return demo.load(s, system_principal("demo"))


def test_demo_load_is_labelled_complete_and_repeatable(database):
    assert any("demo products" in line for line in load_catalog_demo(database))
    assert any("already present" in line for line in load_catalog_demo(database))
    with database.session(write=False) as s:
        names = {r.name_zh: r for r in s.scalars(sa.select(Region))}
        for place in ("乌沙镇", "威舍镇", "发哈村", "石屯镇", "打狼村", "新合村", "麻山镇",
                      "卡法村"):
            assert names[place].source == "demo" and "demo code" in names[place].name_en
        assert names["发哈村"].parent_code == names["威舍镇"].code
        assert names["卡法村"].parent_code == names["麻山镇"].code
        for county in ("522301", "522326", "522327"):
            assert s.scalar(sa.select(sa.func.count()).select_from(Region).where(
                Region.code.startswith(county), Region.level == "village")) >= 1
        products = s.scalars(sa.select(Product)).all()
        assert len(products) == len(demo.PRODUCTS)
        assert {p.county_code for p in products} == {"522301", "522326", "522327"}
        assert {p.status for p in products} == {"draft", "registered", "verified", "suspended"}
        for p in products:
            assert "DEMO" in p.name_en and p.attributes["demo"] is True
        records = s.scalars(sa.select(MonitoringRecord)).all()
        assert len({r.period_year for r in records}) >= 5
        assert all(r.source.startswith("DEMO") for r in records)
        kinds = {p.kind for p in s.scalars(sa.select(Party))}
        assert kinds == {"government", "village_collective", "cooperative", "household",
                         "enterprise"}
        for party in s.scalars(sa.select(Party)):
            assert party.attributes["demo"] is True and "DEMO" in party.name_en
            if party.credit_code:
                assert uscc_error(party.credit_code) is None
            if party.id_number_encrypted is not None:
                assert id_number_error(protect.protector().decrypt(
                    party.id_number_encrypted)) is None
        plant_id = demo.trader_party_id(s)
        plant = s.get(Party, plant_id)
        assert plant.sector == "thermal_power" and plant.kind == "enterprise"
        assert verify_chain(s).ok


def test_demo_tokens_scope_the_trader_to_the_plant(cli, database):
    load_catalog_demo(database)
    result = cli("demo", "tokens")
    assert result.exit_code == 0 and "trader" in result.output, result.output
    with database.session(write=False) as s:
        from ecovalue.auth.models import ApiToken

        trader = s.scalars(sa.select(ApiToken).where(ApiToken.role == "trader")).one()
        assert trader.party_id == demo.trader_party_id(s)


def test_every_change_is_audited_and_tampering_is_detected(client, tokens, world, database):
    product_id = make_product(database, world, "verified")
    client.patch(f"/catalog/products/{product_id}", json={"brand": "x"}, headers=tokens.admin)
    client.post(f"/catalog/products/{product_id}/monitoring", json={
        "period_year": 2022, "metric": "output", "value": 1.0, "unit": "t",
        "method": "field_survey"}, headers=tokens.registrar())
    with database.session(write=False) as s:
        actions = s.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        for expected in ("catalog.region.create", "catalog.party.create",
                         "catalog.product.create", "catalog.product.submit",
                         "catalog.product.verify", "catalog.product.update",
                         "catalog.monitoring.create"):
            assert expected in actions
        update = s.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "catalog.product.update")).one()
        assert update.before["brand"] is None and update.after["brand"] == "x"
        assert verify_chain(s).ok
    with tampering(database) as conn:  # someone edits a stored event behind our back
        conn.execute(sa.update(AuditEvent).where(AuditEvent.seq == update.seq)
                     .values(actor="someone else"))
    with database.session(write=False) as s:
        report = verify_chain(s)
    assert not report.ok and report.first_broken_seq == update.seq
