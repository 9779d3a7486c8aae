"""Places by name (pure): a county spreadsheet names its places in 县(市) / 乡镇 / 村 columns, or
in one 所在地 cell (望谟县石屯镇打狼村), not by code. `PlaceIndex` resolves such names within the
region hierarchy: a village under its township, a township under its county.

- Names are compared after `vocabulary.normalize_term` (full-width to half-width, spaces
  removed); when no name matches exactly, the names without their generic suffix (县, 市, 区,
  镇, 乡, 街道, 村, 社区, 村委会 ...) are compared, so 打狼 finds 打狼村.
- A name that no region has, or that several have where the other cells do not tell them
  apart, is an error naming the candidates (code and full name), never a guess.
- Codes below county level are placed by their registered parents, never by their digits.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable

from catalog.vocabulary import normalize_term

#: generic suffixes of Chinese place names, longest first (compared without them as a fallback)
_SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会", "自治县", "自治州", "特区", "林区",
             "街道", "社区", "县", "市", "区", "镇", "乡", "村", "组")
_SUFFIX_RE = re.compile("(?:" + "|".join(_SUFFIXES) + ")$")
#: levels a product may lie in, most specific last
PLACE_LEVELS = ("county", "township", "village")
#: at most this many candidates are named in a message
_SHOWN = 8


def stem(key: str) -> str:
    """A normalised name without its generic suffix (望谟县 -> 望谟); the name itself if that
    would leave nothing (县 stays 县)."""
    stripped = _SUFFIX_RE.sub("", key)
    return stripped or key


@dataclasses.dataclass(frozen=True)
class Region:
    code: str
    level: str
    name_zh: str
    parent_code: str | None


class PlaceIndex:
    """The known regions, indexed by normalised name under their parent."""

    def __init__(self, regions: Iterable[Region]) -> None:
        self.regions = {r.code: r for r in regions}
        self._key = {code: normalize_term(r.name_zh) for code, r in self.regions.items()}
        self._exact: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._stem: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._children: dict[str | None, list[str]] = defaultdict(list)
        for code, region in self.regions.items():
            key = self._key[code]
            self._exact[(region.level, key)].append(code)
            self._stem[(region.level, stem(key))].append(code)
            self._children[region.parent_code].append(code)

    # --- helpers ---------------------------------------------------------------------------

    def ancestors(self, code: str) -> list[str]:
        """The parent, its parent ... up to a province (not the region itself)."""
        chain: list[str] = []
        current = self.regions[code].parent_code
        while current is not None and current in self.regions and len(chain) < 10:
            chain.append(current)
            current = self.regions[current].parent_code
        return chain

    def is_within(self, code: str, scope: str) -> bool:
        return code == scope or scope in self.ancestors(code)

    def full_name(self, code: str) -> str:
        """县/乡镇/村 names from the county down (望谟县石屯镇打狼村)."""
        chain = [code, *self.ancestors(code)]
        names = [self.regions[c].name_zh for c in reversed(chain)
                 if self.regions[c].level in PLACE_LEVELS]
        return "".join(names)

    def describe(self, codes: Iterable[str]) -> str:
        codes = sorted(codes)
        shown = [f"{c} {self.full_name(c)}" for c in codes[:_SHOWN]]
        more = f" and {len(codes) - _SHOWN} more" if len(codes) > _SHOWN else ""
        return "; ".join(shown) + more

    def _named(self, level: str, text: str) -> list[str]:
        key = normalize_term(text)
        found = self._exact.get((level, key))
        if found:
            return list(found)
        return list(self._stem.get((level, stem(key)), []))

    # --- one name per column -------------------------------------------------------------

    def resolve_columns(self, names: dict[str, str], scope: str | None = None
                        ) -> tuple[str | None, tuple[str, str] | None]:
        """The most specific region named by `names` (level -> cell text, '' for a blank
        cell), each name looked up under the one above it; `scope` (a registrar's county)
        decides between regions of the same name elsewhere. Returns (code, None) or
        (None, (level of the cell at fault, message))."""
        parent: str | None = None
        for level in PLACE_LEVELS:
            text = names.get(level, "")
            if not text:
                continue
            candidates = self._named(level, text)
            label = {"county": "county (县/市)", "township": "township (乡镇)",
                     "village": "village (村)"}[level]
            if parent is not None:
                under = [c for c in candidates if self.is_within(c, parent)]
                if not under:
                    there = sorted(self.regions[c].name_zh for c in self._children[parent]
                                   if self.regions[c].level == level)
                    hint = (f"; {label}s there: {', '.join(there[:_SHOWN * 2])}" if there
                            else f"; no {label} is registered there")
                    elsewhere = (f"; {text!r} lies elsewhere: {self.describe(candidates)}"
                                 if candidates else "")
                    return None, (level, f"no {label} named {text!r} in "
                                         f"{self.full_name(parent)} ({parent}){hint}"
                                         f"{elsewhere}")
                candidates = under
            if not candidates:
                return None, (level, f"no {label} named {text!r} is registered")
            if len(candidates) > 1 and scope is not None:
                inside = [c for c in candidates if self.is_within(c, scope)]
                candidates = inside or candidates
            if len(candidates) > 1:
                return None, (level, f"{len(candidates)} {label}s are named {text!r}: "
                                     f"{self.describe(candidates)}; name the one above it too "
                                     f"or give the code")
            parent = candidates[0]
        return parent, None

    # --- one cell naming the whole place -------------------------------------------------

    def _consumes(self, rest: str, code: str) -> list[str]:
        """What is left of `rest` once the name of `code` is cut from its end (exact name,
        then the name without its suffix); none if it does not end with either."""
        key = self._key[code]
        left = []
        for variant in dict.fromkeys((key, stem(key))):
            if variant and rest.endswith(variant):
                left.append(rest[:-len(variant)])
        return left

    def _explains(self, rest: str, ancestors: list[str]) -> bool:
        """Whether `rest` is made of names of `ancestors` (nearest first; any may be left
        out), in order from the province down."""
        if not rest:
            return True
        for i, code in enumerate(ancestors):
            for left in self._consumes(rest, code):
                if self._explains(left, ancestors[i + 1:]):
                    return True
        return False

    def resolve_location(self, text: str, scope: str | None = None
                         ) -> tuple[str | None, str | None]:
        """The region a 所在地 cell names (望谟县石屯镇打狼村, 石屯镇打狼村, 贵州省...打狼村): the
        cell must end with the region's name and the rest must be names of its ancestors.
        Returns (code, None) or (None, message)."""
        key = normalize_term(text)
        candidates = []
        for code, region in self.regions.items():
            if region.level not in PLACE_LEVELS:
                continue
            for left in self._consumes(key, code):
                if self._explains(left, self.ancestors(code)):
                    candidates.append(code)
                    break
        if len(candidates) > 1 and scope is not None:
            candidates = [c for c in candidates if self.is_within(c, scope)] or candidates
        if len(candidates) > 1:  # the most specific reading wins only if it is alone
            deepest = max(PLACE_LEVELS.index(self.regions[c].level) for c in candidates)
            candidates = [c for c in candidates
                          if PLACE_LEVELS.index(self.regions[c].level) == deepest]
        if len(candidates) == 1:
            return candidates[0], None
        if candidates:
            return None, (f"{len(candidates)} places match {text!r}: "
                          f"{self.describe(candidates)}; write the county and township too "
                          f"or give the code")
        near = [c for c, r in self.regions.items() if r.level in PLACE_LEVELS
                and len(stem(self._key[c])) >= 2 and stem(self._key[c]) in key]
        if scope is not None:
            near = [c for c in near if self.is_within(c, scope)] or near
        hint = f"; names it contains: {self.describe(near)}" if near else ""
        return None, f"no registered place matches {text!r}{hint}"
