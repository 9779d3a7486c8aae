"""What the in-process profilers (profile_ledger_post.py, profile_market_take.py) print of a
cProfile run: the database driver's calls, and the top functions by own and cumulative time."""

from __future__ import annotations

import cProfile
import io
import pstats
import re


def driver_calls(profile: cProfile.Profile) -> tuple[int, int]:
    """sqlite3 execute/executemany calls and psycopg waits for the server, in all."""
    raw = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    sqlite = sum(nc for (_file, _line, name), (_cc, nc, _tt, _ct, _c) in raw.items()
                 if re.search(r"'(execute|executemany)' of 'sqlite3", name))
    waits = sum(nc for (file, _line, name), (_cc, nc, _tt, _ct, _c) in raw.items()
                if name == "wait" and "psycopg/connection.py" in file)
    return sqlite, waits


def print_top(profile: cProfile.Profile, top: int) -> None:
    """The `top` functions by own time, then the project's own by cumulative time."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(
        r"(ecovalue|ledger|catalog)/[a-z_/]+\.py", top)
    print(out.getvalue())
