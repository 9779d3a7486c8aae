"""Many concurrent writers through the whole HTTP stack.

Eight clients (threads, each its own test client and database connection) post random
transfers and two-phase transfers among a few accounts, half of them touching one hot
account. Afterwards every invariant holds, the balances equal what the successful answers
add up to, and every refusal was a clean, documented 409 (insufficient-balance or
concurrent-update). On PostgreSQL this exercises the row locks taken in account-id order; on
SQLite the same test runs with writers queued by BEGIN IMMEDIATE.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict

import pytest

from ecovalue.auth import system_principal
from ledger.core import services
from tests.ledger.conftest import make_party, posting_json, transfer, verify

CLIENTS = 8
ALLOWED_CONFLICTS = {"insufficient-balance", "concurrent-update"}


@pytest.fixture()
def accounts(database):
    actor = system_principal("test")
    codes = ["HOT", "A", "B", "C", "D"]
    with database.unit_of_work() as s:
        owner = make_party(s)
        services.create_asset(s, actor, code="CNY", kind="currency", name_zh="人民币")
        services.create_account(s, actor, party_id=owner, asset="CNY", kind="external",
                                code="BANK")
        for code in codes:
            services.create_account(s, actor, party_id=owner, asset="CNY",
                                    kind="fund" if code == "HOT" else "holding", code=code)
        for code in codes:
            services.create_transaction(s, actor, transfer("BANK", code, 3_000))
    return codes


def test_parallel_transfers_keep_every_invariant(app, database, tokens, accounts):
    requests_per_client = 30 if database.dialect == "postgresql" else 15
    headers = tokens.finance
    outcomes: list[tuple[int, str | None]] = []
    moved: list[list[tuple[str, str, int]]] = []
    pendings_posted: list[list[tuple[str, str, int]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)
    failures: list[BaseException] = []

    def client_loop(seed: int) -> None:
        rng = random.Random(seed)
        client = app.test_client()
        barrier.wait()
        for _ in range(requests_per_client):
            src, dst = rng.sample(accounts, 2)
            if rng.random() < 0.5 and "HOT" not in (src, dst):
                src, dst = (("HOT", dst) if rng.random() < 0.5 else (src, "HOT"))
            amount = rng.randint(1, 600)
            two_phase = rng.random() < 0.2
            response = client.post("/ledger/transactions", headers=headers, json={
                "type": "transfer", "postings": posting_json(src, dst, amount),
                "pending": two_phase})
            record = (response.status_code,
                      (response.get_json() or {}).get("code") if response.status_code >= 400
                      else None)
            legs = [(src, "debit", amount), (dst, "credit", amount)]
            with lock:
                outcomes.append(record)
                if response.status_code == 201 and not two_phase:
                    moved.append(legs)
            if response.status_code == 201 and two_phase:
                tx_id = response.get_json()["id"]
                action = "post" if rng.random() < 0.5 else "void"
                resolved = client.post(f"/ledger/transactions/{tx_id}/{action}", json={},
                                       headers=headers)
                with lock:
                    outcomes.append((resolved.status_code,
                                     (resolved.get_json() or {}).get("code")
                                     if resolved.status_code >= 400 else None))
                    if resolved.status_code == 201 and action == "post":
                        pendings_posted.append(legs)

    def run(seed: int) -> None:
        try:
            client_loop(seed)
        except BaseException as exc:  # any failure: reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures

    statuses = Counter(outcomes)
    unexpected = {k: v for k, v in statuses.items()
                  if not (k[0] == 201 or (k[0] == 409 and k[1] in ALLOWED_CONFLICTS))}
    assert unexpected == {}, statuses
    assert statuses[(201, None)] > CLIENTS * requests_per_client // 4  # most went through

    assert verify(database) == []
    expected = defaultdict(lambda: 3_000)
    for legs in moved + pendings_posted:
        for code, direction, amount in legs:
            expected[code] += amount if direction == "credit" else -amount
    with database.session(write=False) as s:
        actor = system_principal("test")
        for code in accounts:
            b = services.account_balance(s, actor, code)
            assert b.balance == expected[code], code
            assert b.pending_debits == 0 and b.pending_credits == 0
            assert b.available >= 0
        total = sum(services.account_balance(s, actor, c).balance for c in [*accounts, "BANK"])
    assert total == 0
