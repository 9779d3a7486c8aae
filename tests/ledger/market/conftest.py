"""Market fixtures: the registry's test world (a Wangmo batch of 1,395 t, 1,116 t held by the
Dalang collective), CNY with a bank account, buyers funded through the ledger's services."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from catalog.services import parties
from ecovalue.errors import NotFound
from ecovalue.ratelimit import limiter
from ledger import core as ledger
from ledger.carbon.models import CarbonAccount
from ledger.carbon.services import credits
from ledger.market.models import MarketAuction, MarketBid, MarketListing
from ledger.market.services import common
from tests.ledger.carbon.conftest import ADMIN, NOW, World, issued_batch, make_world

#: what each funded party gets, fen (1,000,000.00 yuan)
FUNDS_FEN = 100_000_000
LATER = NOW + dt.timedelta(days=7)


@dataclasses.dataclass
class Market:
    world: World
    batch: str
    seller: int  # the collective, holding the batch's tradable credits
    buyers: list[int]  # enterprises funded with FUNDS_FEN each

    @property
    def plant(self) -> int:
        return self.world.plant

    @property
    def buyer(self) -> int:
        return self.world.buyer


def fund(session, party_id: int, amount: int = FUNDS_FEN) -> None:
    account = ledger.ensure_account(session, ADMIN, party_id=party_id, asset="CNY",
                                    kind="holding")
    ledger.post(session, ADMIN, ledger.TransactionSpec(type="deposit", postings=[
        ledger.PostingSpec("BANK-CNY", "CNY", "debit", amount),
        ledger.PostingSpec(account.id, "CNY", "credit", amount)]), now=NOW)


def make_market(database, *, extra_buyers: int = 0) -> Market:
    world = make_world(database)
    batch = issued_batch(database, world)
    with database.unit_of_work() as s:
        ledger.create_asset(s, ADMIN, code="CNY", kind="currency", name_zh="人民币")
        ledger.create_account(s, ADMIN, party_id=world.bureau, asset="CNY", kind="external",
                              code="BANK-CNY")
        buyers = [world.plant, world.buyer]
        for n in range(extra_buyers):
            buyers.append(parties.create_party(s, ADMIN, {
                "kind": "village_collective", "name_zh": f"买家村{n}",
                "region_code": "522326104201"}).id)
        for party in [world.collective, *buyers]:
            fund(s, party)
    return Market(world, batch, world.collective, buyers)


@pytest.fixture()
def market(database) -> Market:
    return make_market(database)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request: pytest.FixtureRequest) -> Iterator[None]:
    """Token ids repeat from test to test (tables are emptied): counts start afresh."""
    uses_app = "app" in request.fixturenames or "client" in request.fixturenames
    if uses_app:
        limiter.reset()
    yield
    if uses_app:
        limiter.reset()


def balance(session, ref) -> int:
    return ledger.account_balance(session, ADMIN, ref).balance


def cash(session, party_id: int) -> int:
    return balance(session, common.cash_account(session, ADMIN, party_id))


def held(session, batch: str, party_id: int) -> int:
    account = session.scalar(sa.select(CarbonAccount.ledger_account_id).where(
        CarbonAccount.asset_code == batch, CarbonAccount.party_id == party_id,
        CarbonAccount.role == "tradable", ~CarbonAccount.code.like("%-ESCROW")))
    return balance(session, account) if account else 0


def escrowed_credits(session, batch: str) -> int:
    account = session.scalar(sa.select(CarbonAccount.ledger_account_id).where(
        CarbonAccount.code == f"{batch}{credits.ESCROW_SUFFIX}"))
    return balance(session, account) if account else 0


def escrowed_cash(session) -> int:
    try:
        return balance(session, common.ESCROW_CNY)
    except NotFound:  # not opened yet
        return 0


def expected_escrow(session, batch: str) -> tuple[int, int]:
    """What the open listings, auctions and sealed bids say is escrowed: (tonnes, fen)."""
    tonnes = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MarketListing.remaining_t),
                                                       0)).where(
        MarketListing.asset_code == batch, MarketListing.status == "open",
        MarketListing.side == "sell")) or 0
    tonnes += session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MarketAuction.quantity_t),
                                                        0)).where(
        MarketAuction.asset_code == batch, MarketAuction.status == "open")) or 0
    fen = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MarketListing.escrow_fen), 0))
                         .where(MarketListing.status == "open")) or 0
    fen += session.scalar(sa.select(sa.func.coalesce(sa.func.sum(MarketBid.escrow_fen), 0))
                          .where(MarketBid.status == "sealed")) or 0
    return int(tonnes), int(fen)
