"""Exactly once: what the ledger does with an `Idempotency-Key`.

A key is stored on the transaction it created, unique per caller scope (`token:<id>`, the
same scope as the HTTP mechanism of `ecovalue.idempotency`, whose records also hold the
ledger's keys, so that a key stays unique across every route). The same key with the same
request replays the first answer (the transaction as it was created) and changes nothing;
the same key with another request, or a key taken by another route, is refused with 409;
a racing duplicate waits on the unique index for the first and then replays it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ecovalue import idempotency
from ecovalue.auth.policy import Principal
from ecovalue.errors import IdempotencyKeyReused
from ledger.core import store
from ledger.core.rules import digest
from ledger.core.store import Found
from ledger.core.views import TransactionView, as_created, load_views


def scope_of(actor: Principal) -> str:
    """Idempotency scope of a caller, the same as the HTTP mechanism's (`token:<id>`)."""
    return f"token:{actor.token_id}" if actor.token_id else actor.label


def follow_up_hash(op: str, original_id: int, body: Mapping[str, Any]) -> str:
    """The request hash of a reversal or a resolution of `original_id`."""
    return digest({"op": op, "original": original_id, **body})


def replay_or_refuse(found: Found, request_hash: str | None) -> int:
    """The transaction to replay for a found key, or 409 if the key served another request."""
    tx_id, stored_hash = found
    if tx_id is None or stored_hash != request_hash:
        raise IdempotencyKeyReused(idempotency.REUSED)
    return tx_id


def replayed(session: Session, found: Found, request_hash: str | None,
             now: dt.datetime) -> TransactionView:
    """The answer to a replay: the first answer again, the current state is one GET away."""
    tx_id = replay_or_refuse(found, request_hash)
    return as_created(load_views(session, [tx_id], now=now)[0])


def replay_if_used(session: Session, actor: Principal, key: str | None,
                   request_hash: str | None, now: dt.datetime) -> TransactionView | None:
    """The replay for `key` if it was used already (or 409), None if it is free."""
    if key is None:
        return None
    found = store.find_by_key(session, scope_of(actor), key)
    return None if found is None else replayed(session, found, request_hash, now)
