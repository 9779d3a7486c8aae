"""The rate limiter's default storage: limits' moving window in memory, with one sweeper
thread instead of a timer thread started per request."""

from __future__ import annotations

import threading
import time

from limits import parse
from limits.strategies import MovingWindowRateLimiter

from ecovalue.ratelimit import SweptMemoryStorage, limiter


def test_the_limiter_uses_the_swept_storage(app):
    assert isinstance(limiter.storage, SweptMemoryStorage)


def test_counting_starts_no_thread_per_request_and_keeps_the_moving_window():
    storage = SweptMemoryStorage("ecovalue-memory://")
    window = MovingWindowRateLimiter(storage)
    three = parse("3 per second")
    threads = threading.active_count()
    assert [window.hit(three, "token:1") for _ in range(4)] == [True, True, True, False]
    assert window.hit(three, "token:2")  # another key counts on its own
    assert threading.active_count() == threads  # the library's timer would be one more
    assert storage.timer.is_alive()


def test_the_sweeper_drops_expired_entries(monkeypatch):
    monkeypatch.setattr(SweptMemoryStorage, "SWEEP_SECONDS", 0.05)
    storage = SweptMemoryStorage("ecovalue-memory://")
    window = MovingWindowRateLimiter(storage)
    short = parse("2 per second")
    assert window.hit(short, "token:1") and window.hit(short, "token:1")
    assert not window.hit(short, "token:1")
    assert len(storage.events["LIMITER/token:1/2/1/second"]) == 2  # held while they count
    deadline = time.monotonic() + 5
    while any(storage.events.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(storage.events.values())  # expired after a second, then swept
    assert window.hit(short, "token:1")
