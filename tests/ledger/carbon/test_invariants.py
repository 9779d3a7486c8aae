"""Hypothesis stateful test: random issuances, transfers (by quantity or exact serials),
retirements, cancellations and reversals against the registry's services, next to an
independent model of who holds how many tonnes of each batch.

After every step: per batch, tradable + retired + cancelled + buffer = issued; the blocks
of its accounts never overlap and leave no gap; every account's blocks equal its ledger
balance and the model; the ledger's own invariants hold; a refused step changed nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from catalog.services import load_reference_regions
from ecovalue.errors import EcovalueError
from ledger import core as ledger
from ledger.carbon import serials
from ledger.carbon.models import CarbonBatch, CarbonBlock
from ledger.carbon.services import credits, registry, reports
from tests.conftest import wipe
from tests.ledger.carbon.conftest import ADMIN, NOW, make_world, registered_project

DATABASE = None  # set by the test function (Hypothesis machines take no fixtures)
PERIODS = [(dt.date(y, 1, 1), dt.date(y, 12, 31)) for y in (2021, 2022, 2023, 2024)]


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.db = DATABASE
        wipe(self.db)
        with self.db.unit_of_work() as s:
            load_reference_regions(s)
        self.world = make_world(self.db)
        project_id = registered_project(self.db, self.world)
        self.reports = []
        with self.db.unit_of_work() as s:
            for start, end in PERIODS:
                report = reports.file_report(s, ADMIN, project_id, period_start=start,
                                             period_end=end, source="catalog", now=NOW)
                reports.verify_report(s, ADMIN, report.id, now=NOW)
                self.reports.append(report.id)
        self.parties = [self.world.collective, self.world.plant, self.world.buyer]
        #: batch code -> role key (party id, "buffer", "retired", "cancelled") -> tonnes
        self.model: dict[str, dict] = {}
        self.issued: dict[str, int] = {}

    def call(self, fn):
        with self.db.unit_of_work() as s:
            return fn(s)

    def holder(self, batch: str, party: int) -> str:
        return f"P{party}-HOLDING-{batch}"

    def snapshot(self):
        with self.db.session(write=False) as s:
            return sorted(s.execute(sa.select(CarbonBlock.account_id, CarbonBlock.start_serial,
                                              CarbonBlock.end_serial)).all())

    def refused(self, fn) -> None:
        before = self.snapshot()
        try:
            self.call(fn)
        except EcovalueError:
            pass
        else:  # pragma: no cover - a failure of the registry
            raise AssertionError("expected a refusal")
        assert self.snapshot() == before, "a refused request changed the blocks"

    # --- rules -------------------------------------------------------------------------------

    @precondition(lambda self: len(self.issued) < len(PERIODS))
    @rule()
    def issue(self):
        report_id = self.reports[len(self.issued)]
        batch = self.call(lambda s: credits.issue(s, ADMIN, report_id, now=NOW))
        self.issued[batch.asset_code] = batch.quantity_t
        self.model[batch.asset_code] = defaultdict(int, {
            self.world.collective: batch.owner_t, "buffer": batch.buffer_t})

    def _pick(self, data, *, held: bool = True):
        batch = data.draw(st.sampled_from(sorted(self.model)))
        holders = [p for p in self.parties if self.model[batch][p] > 0] if held \
            else self.parties
        return batch, holders

    @precondition(lambda self: self.model)
    @rule(data=st.data(), exact=st.booleans())
    def transfer(self, data, exact):
        batch, holders = self._pick(data)
        if not holders:
            return
        source = data.draw(st.sampled_from(holders))
        target = data.draw(st.sampled_from([p for p in self.parties if p != source]))
        held = self.model[batch][source]
        amount = data.draw(st.integers(1, held))
        kwargs = {"quantity_t": amount}
        if exact:
            blocks = self.blocks(self.holder(batch, source))
            start, end = data.draw(st.sampled_from(blocks))
            first = data.draw(st.integers(start, end))
            last = data.draw(st.integers(first, end))
            prefix = batch.rsplit("-", 1)[0]
            kwargs = {"serial_block": serials.format_range(prefix, (first, last))}
            amount = last - first + 1
        self.call(lambda s: credits.transfer(s, ADMIN, account=self.holder(batch, source),
                                             to_party_id=target, now=NOW, **kwargs))
        self.model[batch][source] -= amount
        self.model[batch][target] += amount

    @precondition(lambda self: self.model)
    @rule(data=st.data(), too_much=st.booleans())
    def retire(self, data, too_much):
        batch, holders = self._pick(data)
        if not holders:
            return
        source = data.draw(st.sampled_from(holders))
        held = self.model[batch][source]
        account = self.holder(batch, source)
        if too_much:
            self.refused(lambda s: credits.retire(s, ADMIN, account=account,
                                                  quantity_t=held + 1, beneficiary_name="b",
                                                  purpose="voluntary", now=NOW))
            return
        amount = data.draw(st.integers(1, held))
        self.call(lambda s: credits.retire(s, ADMIN, account=account, quantity_t=amount,
                                           beneficiary_name="b", purpose="compliance",
                                           now=NOW))
        self.model[batch][source] -= amount
        self.model[batch]["retired"] += amount

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data):
        batch, holders = self._pick(data)
        if not holders:
            return
        source = data.draw(st.sampled_from(holders))
        amount = data.draw(st.integers(1, self.model[batch][source]))
        self.call(lambda s: credits.cancel(s, ADMIN, account=self.holder(batch, source),
                                           quantity_t=amount, reason="test", now=NOW))
        self.model[batch][source] -= amount
        self.model[batch]["cancelled"] += amount

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retire_buffered_or_retired_serials(self, data):
        """Naming serials that sit in the buffer or are retired is refused."""
        batch = data.draw(st.sampled_from(sorted(self.model)))
        source = self.world.collective
        for account in (f"{batch}-BUFFER", f"{batch}-RETIRED"):
            blocks = self.blocks(account)
            if blocks:
                start, _end = blocks[0]
                prefix = batch.rsplit("-", 1)[0]
                self.refused(lambda s, start=start, prefix=prefix: credits.retire(
                    s, ADMIN, account=self.holder(batch, source),
                    serial_block=serials.format_range(prefix, (start, start)),
                    beneficiary_name="b", purpose="voluntary", now=NOW))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def reversal(self, data):
        pool = sum(m["buffer"] for m in self.model.values())
        lost = data.draw(st.integers(1, pool + 5))
        if lost > pool:
            self.refused(lambda s: credits.record_reversal(
                s, ADMIN, "WM-AR-001", cause="fire", occurred_on=dt.date(2025, 3, 1),
                lost_t=lost, description="test"))
            return
        self.call(lambda s: credits.record_reversal(
            s, ADMIN, "WM-AR-001", cause="illegal_felling", occurred_on=dt.date(2025, 3, 1),
            lost_t=lost, description="test", now=NOW))
        for batch in sorted(self.model, key=lambda b: self.batch_id(b)):
            take = min(self.model[batch]["buffer"], lost)
            self.model[batch]["buffer"] -= take
            self.model[batch]["cancelled"] += take
            lost -= take

    # --- helpers and invariants --------------------------------------------------------------

    def batch_id(self, code: str) -> int:
        with self.db.session(write=False) as s:
            return s.scalar(sa.select(CarbonBatch.id).where(CarbonBatch.asset_code == code))

    def blocks(self, account: str) -> list[tuple[int, int]]:
        with self.db.session(write=False) as s:
            parsed = [serials.parse_block(b)
                      for b in registry.account_blocks(s, account)["serial_blocks"]]
            return [(b.start, b.end) for b in parsed]

    @invariant()
    def registry_and_ledger_verify(self):
        with self.db.session(write=False) as s:
            assert registry.verify(s, ADMIN) == []
            assert ledger.verify(s, ADMIN) == []

    @invariant()
    def holdings_match_the_model(self):
        with self.db.session(write=False) as s:
            for batch, expected in self.model.items():
                found: dict = defaultdict(int)
                for h in registry.holdings(s, batch, public=False):
                    if h["role"] == "tradable":
                        party = int(h["account_code"].split("-")[0][1:])
                        found[party] += h["quantity_t"]
                    else:
                        found[h["role"]] += h["quantity_t"]
                want = {k: v for k, v in expected.items() if v}
                assert dict(found) == want, batch
                assert sum(expected.values()) == self.issued[batch]


def test_registry_invariants_hold_under_random_sequences(database):
    global DATABASE
    DATABASE = database
    RegistryMachine.TestCase.settings = settings(
        max_examples=12, stateful_step_count=14, deadline=None,
        suppress_health_check=list(HealthCheck))
    RegistryMachine.TestCase().runTest()
