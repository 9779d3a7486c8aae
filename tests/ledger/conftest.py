"""Ledger fixtures: parties, assets and accounts made through the services."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os

import pytest
import sqlalchemy as sa

from catalog.models import Party
from ecovalue.auth import system_principal
from ledger.core import services, staged
from ledger.core.posting import PostingSpec, TransactionSpec

_credit_codes = itertools.count(1)


@pytest.fixture(autouse=True)
def _staged_batches(request, monkeypatch):
    """ECOVALUE_TEST_STAGED_BATCHES=1 sends every batch of the ledger tests through the
    staged path (`ledger.core.staged`, normally for batches of 5,000 legs or more), so the
    whole batch test set checks that it posts, guards and refuses as the ordinary path
    does. The statement budget test pins each path's budget itself."""
    if os.environ.get("ECOVALUE_TEST_STAGED_BATCHES") == "1" and \
            request.node.module.__name__ != "tests.ledger.test_statement_budget":
        monkeypatch.setattr(staged, "STAGED_MIN_LEGS", 1)
#: the clock of service-level tests: 12:00 in Shanghai on 20 March 2024
NOW = dt.datetime(2024, 3, 20, 4, 0, tzinfo=dt.UTC)


def make_party(session, name: str = "望谟县某村", kind: str = "village_collective",
               region: str = "522326") -> int:
    credit = f"91522326MA{next(_credit_codes):08d}" if kind == "enterprise" else None
    party = Party(kind=kind, name_zh=name, region_code=region, credit_code=credit,
                  attributes={})
    session.add(party)
    session.flush()
    return party.id


def transfer(debit, credit, amount, asset="CNY", **kwargs) -> TransactionSpec:
    """A two-posting transfer from `debit` to `credit` (account codes or ids)."""
    return TransactionSpec(type=kwargs.pop("type", "transfer"), postings=[
        PostingSpec(debit, asset, "debit", amount), PostingSpec(credit, asset, "credit", amount)],
        **kwargs)


def posting_json(debit, credit, amount, asset="CNY") -> list[dict]:
    return [{"account": debit, "asset": asset, "direction": "debit", "amount": amount},
            {"account": credit, "asset": asset, "direction": "credit", "amount": amount}]


@dataclasses.dataclass
class World:
    """Two parties with CNY holdings, the bank (external), a fund, and a carbon batch."""

    bank_party: int
    alice: int  # a village collective
    plant: int  # a thermal-power plant (enterprise, the trader)
    accounts: dict[str, int]


@pytest.fixture()
def world(database) -> World:
    actor = system_principal("test")
    with database.unit_of_work() as s:
        bank_party = make_party(s, "州财政局", "government", "522300")
        alice = make_party(s, "望谟县某村集体", "village_collective")
        plant = make_party(s, "兴义电厂", "enterprise", "522301")
        services.create_asset(s, actor, code="CNY", kind="currency", name_zh="人民币",
                              name_en="Chinese yuan")
        services.create_asset(s, actor, code="FCC-WM-2023-001", kind="carbon_credit",
                              name_zh="望谟县林业碳汇 2023 第1批", vintage_year=2023,
                              batch_reference="QXN-WM-2023-001")
        specs = {
            "BANK": (bank_party, "CNY", "external"),
            "FUND": (bank_party, "CNY", "fund"),
            "ALICE": (alice, "CNY", "holding"),
            "PLANT": (plant, "CNY", "holding"),
            "ESCROW": (bank_party, "CNY", "escrow"),
            "ISSUANCE": (bank_party, "FCC-WM-2023-001", "external"),
            "ALICE-C": (alice, "FCC-WM-2023-001", "holding"),
            "PLANT-C": (plant, "FCC-WM-2023-001", "holding"),
        }
        accounts = {}
        for code, (party, asset, kind) in specs.items():
            accounts[code] = services.create_account(s, actor, party_id=party, asset=asset,
                                                     kind=kind, code=code).id
    return World(bank_party, alice, plant, accounts)


def fund(database, code: str, amount: int, *, asset: str = "CNY", source: str = "BANK",
         day: dt.date | None = None, now: dt.datetime = NOW) -> int:
    with database.unit_of_work() as s:
        return services.create_transaction(
            s, system_principal("test"),
            transfer(source, code, amount, asset=asset, type="deposit", effective_date=day),
            now=now).id


def balance(database, code: str, as_of: dt.date | None = None):
    with database.session(write=False) as s:
        return services.account_balance(s, system_principal("test"), code, as_of=as_of)


def verify(database) -> list[str]:
    with database.session(write=False) as s:
        return services.verify(s, system_principal("test"))


def count(database, model) -> int:
    with database.session(write=False) as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))
