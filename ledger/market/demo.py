"""Demo market data (every number DEMO) on the registry's demo batch
QXN-522326-WM-AR-001-2023-01: the Kafa collective lists 150 t at 60.00 yuan/t, the demo
thermal-power plant buys 50 t of it (a settled trade: credits, money and fee in one ledger
transaction), Kafa lists another 30 t at 62.00 yuan/t, and the plant bids for 100 t at
58.00 yuan/t with a buy listing (its money escrowed). The batch's reference price is 60.00
yuan/t, so the ±10 % band runs from 54.00 to 66.00 yuan/t until the first close."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.demo import PARTIES
from catalog.models import Party
from ecovalue.auth import Principal
from ecovalue.clock import utcnow
from ledger.carbon.demo import PROJECT_CODE
from ledger.carbon.models import CarbonBatch
from ledger.market.models import MarketListing
from ledger.market.services import common, listings

BATCH = f"QXN-522326-{PROJECT_CODE}-2023-01"
REFERENCE_FEN = 6_000  #: 60.00 yuan per tCO2e (DEMO)


def _party(session: Session, key: str) -> int:
    values = PARTIES[key]
    column, value = (Party.credit_code, values["credit_code"]) if values.get("credit_code") \
        else (Party.name_zh, values["name_zh"])
    found = session.scalar(sa.select(Party.id).where(column == value))
    if found is None:
        raise LookupError(f"demo party {key!r} missing: load the catalog demo first")
    return found


def load(session: Session, actor: Principal) -> list[str]:
    if session.scalar(sa.select(MarketListing.id).limit(1)) is not None:
        return ["market: demo listings already present"]
    if session.scalar(sa.select(CarbonBatch.id).where(CarbonBatch.asset_code == BATCH)) is None:
        return [f"market: no demo batch {BATCH}; load the carbon demo first"]
    kafa, plant = _party(session, "kafa"), _party(session, "plant")
    common.set_batch_rule(session, actor, BATCH, {"reference_price_fen_per_tco2e": REFERENCE_FEN})
    expires = utcnow() + dt.timedelta(days=30)
    first = listings.create_listing(session, actor, side="sell", batch=BATCH, quantity_t=150,
                                    price_fen_per_tco2e=6_000, min_lot_t=10,
                                    expires_at=expires, party_id=kafa)
    trade = listings.take(session, actor, first.id, quantity_t=50, party_id=plant)
    second = listings.create_listing(session, actor, side="sell", batch=BATCH, quantity_t=30,
                                     price_fen_per_tco2e=6_200, min_lot_t=10,
                                     expires_at=expires, party_id=kafa)
    bid = listings.create_listing(session, actor, side="buy", batch=BATCH, quantity_t=100,
                                  price_fen_per_tco2e=5_800, min_lot_t=10, expires_at=expires,
                                  party_id=plant)
    return [f"market: sell listings {first.id} (100 t left at 60.00 yuan/t) and {second.id} "
            f"(30 t at 62.00), buy listing {bid.id} (100 t at 58.00), trade {trade.id} of "
            f"50 t settled in ledger transaction {trade.ledger_transaction_id} (DEMO)"]
