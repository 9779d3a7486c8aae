"""Serial numbers of credits and the block arithmetic behind holdings, pure.

A serial block names the programme, the county, the project, the vintage and an INCLUSIVE
range of serial numbers, e.g.

    QXN-522326-WM-AR-001-2023-000001-001000     (1,000 tonnes: 1 ... 1000)

Numbers are at least six digits wide (zero-padded) and unique within (project, vintage): a
second batch of the same project and vintage continues after the first batch's last number.
A holding is a list of disjoint blocks `(start, end)`; moving credits takes them from the
lowest serials first (or exactly the serials named) and merges adjacent blocks at the
receiving end, so an account's blocks are always sorted, disjoint and non-adjacent.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

PROGRAMME = "QXN"
MIN_DIGITS = 6
MAX_SERIAL = 10**12 - 1
PROJECT_CODE_RE = re.compile(r"^[A-Z0-9](?:[A-Z0-9-]{0,14}[A-Z0-9])?$")
_BLOCK_RE = re.compile(
    rf"^{PROGRAMME}-(\d{{6}})-([A-Z0-9](?:[A-Z0-9-]*[A-Z0-9])?)-(\d{{4}})-(\d{{6,12}})-(\d{{6,12}})$")

Range = tuple[int, int]


class SerialError(ValueError):
    """A serial block that is malformed or names no credits."""


@dataclasses.dataclass(frozen=True)
class SerialBlock:
    county_code: str
    project_code: str
    vintage_year: int
    start: int
    end: int

    @property
    def quantity_t(self) -> int:
        return size((self.start, self.end))

    @property
    def prefix(self) -> str:
        return prefix(self.county_code, self.project_code, self.vintage_year)

    def __str__(self) -> str:
        return format_block(self.county_code, self.project_code, self.vintage_year, self.start,
                            self.end)


def prefix(county_code: str, project_code: str, vintage_year: int) -> str:
    return f"{PROGRAMME}-{county_code}-{project_code}-{vintage_year:04d}"


def number(value: int) -> str:
    return f"{value:0{MIN_DIGITS}d}"


def format_block(county_code: str, project_code: str, vintage_year: int, start: int,
                 end: int) -> str:
    """The serial block as text; refuses an empty or reversed range."""
    if not 1 <= start <= end <= MAX_SERIAL:
        raise SerialError(f"{start}-{end} is not an inclusive range of serial numbers")
    return f"{prefix(county_code, project_code, vintage_year)}-{number(start)}-{number(end)}"


def format_range(block_prefix: str, block: Range) -> str:
    return f"{block_prefix}-{number(block[0])}-{number(block[1])}"


def parse_block(text: object) -> SerialBlock:
    """A serial block from its text; SerialError saying what is wrong."""
    if not isinstance(text, str):
        raise SerialError("a serial block is text such as QXN-522326-WM-AR-001-2023-000001-000100")
    match = _BLOCK_RE.match(text.strip())
    if match is None:
        raise SerialError(f"{text[:80]!r} is not a serial block "
                          f"({PROGRAMME}-<county>-<project>-<vintage>-<start>-<end>, numbers of "
                          f"{MIN_DIGITS} to 12 digits)")
    county, project, vintage, start, end = match.groups()
    first, last = int(start), int(end)
    if first < 1:
        raise SerialError("serial numbers start at 000001")
    if last < first:
        raise SerialError(f"the block ends ({end}) before it starts ({start})")
    return SerialBlock(county, project, int(vintage), first, last)


def size(block: Range) -> int:
    """Tonnes in an inclusive block: 000001-000100 holds 100."""
    return block[1] - block[0] + 1


def total(blocks: Iterable[Range]) -> int:
    return sum(size(b) for b in blocks)


def merge(blocks: Iterable[Range]) -> list[Range]:
    """Sorted, with overlapping (a bug upstream) or adjacent blocks joined."""
    out: list[list[int]] = []
    for start, end in sorted(blocks):
        if out and start <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def take(blocks: Sequence[Range], quantity: int) -> tuple[list[Range], list[Range]]:
    """(taken, left): `quantity` tonnes from the lowest serials of sorted `blocks`, the last
    block split if needed. ValueError if the blocks hold less."""
    if quantity <= 0:
        raise ValueError("a quantity of at least one tonne")
    taken: list[Range] = []
    left: list[Range] = []
    need = quantity
    for start, end in blocks:
        if need == 0:
            left.append((start, end))
        elif size((start, end)) <= need:
            taken.append((start, end))
            need -= size((start, end))
        else:
            taken.append((start, start + need - 1))
            left.append((start + need, end))
            need = 0
    if need:
        raise ValueError(f"the blocks hold {total(blocks)} tonnes, fewer than {quantity}")
    return taken, left


def take_exact(blocks: Sequence[Range], wanted: Range) -> tuple[list[Range], list[Range]]:
    """(taken, left) for exactly the serials `wanted`, which must lie inside ONE held block
    (blocks are merged, so a held range is always inside one). ValueError otherwise."""
    start, end = wanted
    for i, (b_start, b_end) in enumerate(blocks):
        if b_start <= start and end <= b_end:
            left = [*blocks[:i]]
            if b_start < start:
                left.append((b_start, start - 1))
            if end < b_end:
                left.append((end + 1, b_end))
            left.extend(blocks[i + 1:])
            return [(start, end)], left
    raise ValueError(f"serials {start}-{end} are not all held here")


def where_held(holdings: Mapping[str, Sequence[Range]], wanted: Range) -> dict[str, int]:
    """Who holds how many of the serials `wanted` (to say why a move was refused)."""
    found: dict[str, int] = {}
    for owner, blocks in holdings.items():
        for start, end in blocks:
            overlap = min(end, wanted[1]) - max(start, wanted[0]) + 1
            if overlap > 0:
                found[owner] = found.get(owner, 0) + overlap
    return found


def partition_problems(issued: Range, holdings: Mapping[str, Sequence[Range]]) -> list[str]:
    """The blocks of every holder of one batch must cover the batch's issued range exactly:
    no overlap, no gap, nothing outside it."""
    every = sorted((start, end, owner) for owner, blocks in holdings.items()
                   for start, end in blocks)
    problems = []
    expected = issued[0]
    for start, end, owner in every:
        if end < start:
            problems.append(f"{owner}: reversed block {start}-{end}")
            continue
        if start < expected:
            problems.append(f"{owner}: block {start}-{end} overlaps serials already held")
        elif start > expected:
            problems.append(f"serials {expected}-{start - 1} are held by no account")
        expected = max(expected, end + 1)
    if expected <= issued[1]:
        problems.append(f"serials {expected}-{issued[1]} are held by no account")
    elif expected > issued[1] + 1:
        problems.append(f"serials {issued[1] + 1}-{expected - 1} lie outside the batch")
    return problems
