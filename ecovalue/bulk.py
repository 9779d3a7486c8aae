"""Helpers for the bulk paths (a distribution to 100,000 households, a batch of 100,000 legs)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a bulk operation builds and drops
    hundreds of thousands of acyclic rows (tuples, specs): each allocation burst would
    otherwise trigger collections that re-scan every live row, which cost as much as the
    building itself. Reference counting still frees everything at once; the collector is
    re-enabled on the way out (only if it was enabled on the way in, so nesting and a
    process that disabled it on purpose are respected)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
