"""The ledger's fast schema paths (issue 15) agree with marshmallow: `TransactionInSchema.load`
on a plain body returns what marshmallow's load returns (same keys, same order, same values),
and anything it does not read itself goes to marshmallow; `TransactionSchema.dump` renders
what marshmallow's dump renders, byte for byte as JSON."""

from __future__ import annotations

import datetime as dt
import json

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecovalue.auth import system_principal
from ledger.core import schemas, services
from ledger.core.views import PostingView, TransactionView
from tests.ledger.conftest import NOW, transfer

SYS = system_principal("test")
LOAD = schemas.TransactionInSchema()
DUMP = schemas.TransactionSchema()


def _marshmallow_load(data):
    return ma.Schema.load(LOAD, data)


def _marshmallow_dump(obj, many=False):
    """marshmallow's own dump, the nested postings included (not through the compiled one)."""
    if many:
        return [_marshmallow_dump(o) for o in obj]
    out = ma.Schema.dump(DUMP, obj)
    out["postings"] = [ma.Schema.dump(schemas.PostingSchema(), p) for p in obj.postings]
    return out


def _posting(account="ALICE", asset="CNY", direction="debit", amount=5):
    return {"account": account, "asset": asset, "direction": direction, "amount": amount}


PLAIN = {"type": "transfer", "postings": [_posting(), _posting("PLANT", direction="credit")]}

#: values a body's fields may take: plain ones, and ones only marshmallow may judge
texts = st.one_of(st.sampled_from(["", "a", "x" * 40, "x" * 41, "x" * 100, "x" * 101,
                                   "x" * 500, "x" * 501, "a\x00b", "望谟"]),
                  st.text(max_size=5), st.none(), st.integers(-2, 2), st.booleans(),
                  st.floats(allow_nan=False), st.just([]), st.just({}))
accounts = st.one_of(texts, st.integers(-1, 2**63), st.just(2**63 - 1))
postings = st.fixed_dictionaries(
    {"account": accounts, "asset": texts, "direction": st.one_of(
        st.sampled_from(["debit", "credit", "Debit"]), texts), "amount": st.one_of(
        st.integers(-3, 3), st.none(), st.floats(allow_nan=False), st.text(max_size=2))},
    optional={"extra": st.integers()})
bodies = st.fixed_dictionaries(
    {"type": texts, "postings": st.one_of(st.lists(postings, max_size=4), texts)},
    optional={"memo": texts, "pending": st.one_of(st.booleans(), texts),
              "effective_date": st.one_of(st.none(), st.just("2024-03-20"), texts),
              "metadata": st.one_of(st.none(), st.just({"a": 1}), texts),
              "expires_at": st.one_of(st.none(), st.just("2030-01-01T00:00:00+08:00")),
              "unknown": st.integers()})


def _agrees(body) -> None:
    fast = schemas.plain_transaction(body)
    try:
        expected = _marshmallow_load(body)
    except ma.ValidationError:
        assert fast is None, body
        with pytest.raises(ma.ValidationError):
            LOAD.load(body)
        return
    assert LOAD.load(body) == expected
    if fast is not None:
        assert fast == expected and list(fast) == list(expected)
        assert [list(p) for p in fast["postings"]] == [list(p) for p in expected["postings"]]


@pytest.mark.parametrize("body", [
    PLAIN, {**PLAIN, "memo": "付款"}, {**PLAIN, "memo": ""}, {**PLAIN, "memo": None},
    {**PLAIN, "pending": True}, {**PLAIN, "pending": False},
    {**PLAIN, "postings": [_posting(account=7), _posting(account=8, direction="credit")]},
    {**PLAIN, "effective_date": "2024-03-20"}, {**PLAIN, "metadata": {"k": "v"}},
    {**PLAIN, "pending": "true"}, {**PLAIN, "memo": "x" * 501}, {**PLAIN, "type": ""},
    {**PLAIN, "postings": PLAIN["postings"][:1]}, {**PLAIN, "bogus": 1},
    {**PLAIN, "postings": [_posting(account=True), _posting(direction="credit")]},
    {**PLAIN, "postings": [_posting(amount=None), _posting(direction="credit")]},
    {**PLAIN, "postings": [_posting(amount=1.5), _posting(amount="2", direction="credit")]},
])
def test_plain_bodies_load_as_marshmallow_loads_them(body):
    _agrees(body)


def test_the_plain_path_is_taken_for_a_plain_body():
    assert schemas.plain_transaction(PLAIN) is not None
    assert schemas.plain_transaction({**PLAIN, "effective_date": "2024-03-20"}) is None


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_any_body_loads_as_marshmallow_loads_it(body):
    _agrees(body)


def _view(**changes) -> TransactionView:
    view = TransactionView(
        id=1, type="transfer", phase="posted", status="posted",
        effective_date=dt.date(2024, 3, 20), memo=None, metadata=None, author="system:test",
        created_at=dt.datetime(2024, 3, 20, 1, 2, 3, 456789, tzinfo=dt.UTC),
        reverses_id=None, reversed_by_id=None, pending_id=None, resolved_by_id=None,
        expires_at=None, batch_id=None, idempotency_key=None,
        postings=[PostingView(None, 1, "ALICE", "CNY", "debit", 5),
                  PostingView(9, 2, "PLANT", "CNY", "credit", 5)])
    return TransactionView(**{**view.__dict__, **changes})


@pytest.mark.parametrize("view", [
    _view(), _view(memo="付款", metadata={"a": [1, {"b": None}]}, reverses_id=3,
                   reversed_by_id=4, pending_id=5, resolved_by_id=6, batch_id=7,
                   idempotency_key="k-1", phase="pending", status="pending",
                   expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))),
    _view(postings=[]), _view(replayed=True),
])
def test_views_dump_as_marshmallow_dumps_them(view):
    expected = _marshmallow_dump(view)
    assert json.dumps(DUMP.dump(view), ensure_ascii=False) == json.dumps(expected,
                                                                         ensure_ascii=False)
    assert DUMP.dump([view, view], many=True) == _marshmallow_dump([view, view], many=True)
    page = schemas.TransactionSchema(many=True)
    assert page.dump([view]) == [expected]
    assert schemas.TransactionSchema(only=("id",)).dump(view) == {"id": 1}


def test_stored_transactions_dump_as_marshmallow_dumps_them(world, database):
    with database.unit_of_work() as s:
        services.create_transaction(s, SYS, transfer("BANK", "ALICE", 100), now=NOW)
        posted = services.create_transaction(s, SYS, transfer("ALICE", "PLANT", 5, memo="m"),
                                             now=NOW)
        pending = services.create_transaction(
            s, SYS, transfer("ALICE", "PLANT", 5, pending=True,
                             expires_at=NOW + dt.timedelta(days=1)), now=NOW)
        reversal = services.reverse_transaction(s, SYS, posted.id, now=NOW)
    fresh = [posted, pending, reversal]
    with database.session() as s:
        stored = services.load_views(s, [v.id for v in fresh], now=NOW)
    for view in fresh + stored:
        assert json.dumps(DUMP.dump(view)) == json.dumps(_marshmallow_dump(view))
