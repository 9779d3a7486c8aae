"""The matching engine (pure: pandas in, pandas out; no database, no Flask).

A bank or treasury statement's lines are matched against the ledger's movements of the
account they mirror, by an ordered list of rules that an officer can reorder and tune (the
rules are data: `DEFAULT_RULES`, checked by `validate_rules`). Every rule works on whole
columns at once (merges, sorts, `merge_asof`), never line by line, so a million lines
against a million payments is a matter of seconds.

Both sides are signed from the account's point of view, in integer fen: a bank credit (money
in) is positive, as is a ledger credit of the (credit-normal) account; a payment out is
negative on both sides. A match always pairs equal sums exactly; nothing is rounded.

Rule kinds, in the default order:

- `reference`: the statement line names the ledger transaction: its id (a `transaction_id`
  column, or `EV-123` in the reference or memo, see `transaction_pattern`) or the payment's
  reference, with the same amount and dates at most `window_days` apart. One line to one
  payment; the only kind whose matches are *certain* (confidence 1.0) and, when the rule says
  `auto_confirm`, confirmed without an officer. Further lines with the same key and amount
  than the ledger has payments are `duplicate`.
- `counterparty`: same amount, the same counterparty once names are normalised
  (`normalize_names`: full-width forms, spaces, case, brackets, 有限公司/有限责任公司/股份有限公司
  and Co., Ltd. variants, word order), dates at most `window_days` apart: proposed.
- `amount_date`: same amount, dates at most `window_days` apart, nearest date first: proposed.
- `split`: several lines that together pay one ledger payment (same reference, or same
  counterparty and date), or one line that pays several payments (same reference, or same
  counterparty and date on the ledger side), sums equal, dates within `window_days`: proposed.

A line whose reference or transaction id is known to the ledger is matched only through that
key (by `reference` or `split`), never to another payment by amount or name. What no rule
pairs is classified at the end: a line and a payment that share a key but not the amount
(`amount_mismatch`), or the amount but not the date window (`outside_window`); lines that
repeat another line in every field (`duplicate`); the rest `only_in_statement` and
`only_in_ledger`.

The result (`MatchResult`) is two frames: `groups` (one row per finding: category, rule,
confidence, certain) and `members` (group, side `line`/`item`, id).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: the kinds of rule the engine knows, and the parameters each takes (with their defaults)
RULE_KINDS: dict[str, dict[str, Any]] = {
    "reference": {"window_days": 5, "keys": ["transaction_id", "reference"],
                  "confidence": 1.0, "auto_confirm": True},
    "counterparty": {"window_days": 7, "confidence": 0.85},
    "amount_date": {"window_days": 3, "confidence": 0.7},
    "split": {"window_days": 3, "max_parts": 20, "confidence": 0.9},
}

#: the rules a new installation starts with, in order
DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "reference", "kind": "reference", "enabled": True, **RULE_KINDS["reference"]},
    {"name": "counterparty", "kind": "counterparty", "enabled": True,
     **RULE_KINDS["counterparty"]},
    {"name": "amount_date", "kind": "amount_date", "enabled": True,
     **RULE_KINDS["amount_date"]},
    {"name": "split", "kind": "split", "enabled": True, **RULE_KINDS["split"]},
]

#: a ledger transaction id written in a reference or memo: EV-123, ev 123, EV123
TRANSACTION_PATTERN = r"(?<![A-Za-z0-9])[Ee][Vv][-\s]?(\d{1,18})(?!\d)"

CATEGORIES = ("matched", "amount_mismatch", "outside_window", "duplicate",
              "only_in_statement", "only_in_ledger")
#: categories that leave something unexplained until an officer decides
DISCREPANCIES = CATEGORIES[1:]

MAX_WINDOW_DAYS = 366
MAX_PARTS = 1000
_KEYS = ("transaction_id", "reference")
_COMMON = {"name", "kind", "enabled"}

#: legal-form words that vary between how a payer writes its name and how a bank does
_LEGAL_FORMS = re.compile(
    r"股份有限公司|有限责任公司|有限公司|责任公司|集团公司|总公司|分公司|公司"
    r"|\bco\b\.?,?\s*\bltd\b\.?|\bcompany\s+limited\b|\blimited\b|\bltd\b\.?|\binc\b\.?"
    r"|\bcorp\b\.?|\bcorporation\b")
_BRACKETS = re.compile(r"[()\[\]{}【】〔〕《》<>]")
_SEPARATORS = re.compile(r"[\s,.;:·・、，。；：'\"/\\_&\-]+")


# --- rules as data ---------------------------------------------------------------------------


def validate_rules(rules: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(rules with every parameter filled in, errors): each error names `rules.<i>.<field>`.
    Rules run in list order; names are unique; parameters are those of the rule's kind."""
    errors: list[dict[str, str]] = []

    def err(field: str, message: str) -> None:
        errors.append({"location": "json", "field": field, "message": message})

    if not isinstance(rules, list) or not rules:
        err("rules", "a non-empty list of rules")
        return [], errors
    if len(rules) > 50:
        err("rules", "at most 50 rules")
        return [], errors
    out, names = [], set()
    for i, rule in enumerate(rules):
        at = f"rules.{i}"
        if not isinstance(rule, dict):
            err(at, "a rule is an object")
            continue
        kind = rule.get("kind")
        if kind not in RULE_KINDS:
            err(f"{at}.kind", f"one of {', '.join(RULE_KINDS)}")
            continue
        name = rule.get("name", kind)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            err(f"{at}.name", "a lowercase name: a letter, then up to 39 of a-z 0-9 _")
        elif name in names:
            err(f"{at}.name", f"{name!r} is used by an earlier rule")
        names.add(name)
        filled: dict[str, Any] = {"name": name, "kind": kind, "enabled": True,
                                  **copy.deepcopy(RULE_KINDS[kind])}
        for field in rule:
            if field not in _COMMON and field not in RULE_KINDS[kind]:
                err(f"{at}.{field}", f"not a parameter of a {kind} rule")
        for field, value in rule.items():
            if field in ("name", "kind"):
                continue
            filled[field] = value
        _check_parameters(filled, at, err)
        out.append(filled)
    return (out, []) if not errors else ([], errors)


def _check_parameters(rule: dict[str, Any], at: str, err: Any) -> None:
    if not isinstance(rule["enabled"], bool):
        err(f"{at}.enabled", "true or false")
    window = rule.get("window_days")
    if not isinstance(window, int) or isinstance(window, bool) \
            or not 0 <= window <= MAX_WINDOW_DAYS:
        err(f"{at}.window_days", f"a whole number of days, 0 to {MAX_WINDOW_DAYS}")
    confidence = rule.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool) \
            or not 0 < confidence <= 1:
        err(f"{at}.confidence", "a number above 0 and at most 1")
    elif rule["kind"] != "reference" and confidence >= 1:
        err(f"{at}.confidence", "below 1: only a reference match is certain")
    if rule["kind"] == "reference":
        keys = rule.get("keys")
        if not isinstance(keys, list) or not keys or any(k not in _KEYS for k in keys) \
                or len(set(keys)) != len(keys):
            err(f"{at}.keys", f"a non-empty list of distinct keys from {', '.join(_KEYS)}")
        if not isinstance(rule.get("auto_confirm"), bool):
            err(f"{at}.auto_confirm", "true or false")
    if rule["kind"] == "split":
        parts = rule.get("max_parts")
        if not isinstance(parts, int) or isinstance(parts, bool) or not 2 <= parts <= MAX_PARTS:
            err(f"{at}.max_parts", f"a whole number, 2 to {MAX_PARTS}")


# --- normalisation (vectorised, on the distinct values only) ---------------------------------


def _distinct(values: np.ndarray, *, sparse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) of an object array; code -1 where the value is missing.
    `sparse`: most values are missing (memos), so only the others are hashed (a hash table
    sized for every row would be mostly empty)."""
    if sparse:
        present = ~pd.isna(values)
        if 2 * int(np.count_nonzero(present)) < len(values):
            codes = np.full(len(values), -1, dtype=np.intp)
            codes[present], uniques = pd.factorize(values[present], use_na_sentinel=True)
            return codes, np.asarray(uniques, dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _spread(codes: np.ndarray, per_distinct: list[Any]) -> np.ndarray:
    """The per-distinct results back on every row (None where the value was missing)."""
    return np.array([*per_distinct, None], dtype=object)[codes]


def _reference_key(value: Any) -> str | None:
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if " " in text or "\t" in text or "\n" in text:
        text = "".join(text.split())
    return text.upper() or None


#: the Chinese legal forms, longest first (有限公司 inside 股份有限公司 goes with it)
_CHINESE_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "责任公司", "集团公司", "总公司",
                  "分公司", "公司")
_LATIN = re.compile(r"[a-z]")


def _name_key_of(value: Any) -> str | None:
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    for form in _CHINESE_FORMS:
        if form in text:
            text = text.replace(form, " ")
    text = _BRACKETS.sub(" ", text)
    if _LATIN.search(text):
        text = _LEGAL_FORMS.sub(" ", text)
    return _name_key(_SEPARATORS.sub(" ", text).split())


def _name_key(words: list[str]) -> str | None:
    """Latin words in sorted order, then the other characters (Chinese) in sorted order: a
    space inside a Chinese name means nothing (州 财政局 is 州财政局), and the parts of a name
    may come in either order (电力 兴义 is 兴义电力)."""
    latin = sorted(w for w in words if w.isascii())
    chinese = "".join(sorted("".join(w for w in words if not w.isascii())))
    key = " ".join(latin) + ("|" + chinese if chinese else "")
    return key or None


def _transaction_of(value: Any, pattern: re.Pattern[str]) -> int | None:
    text = str(value)
    found = pattern.search(text if text.isascii() else unicodedata.normalize("NFKC", text))
    return int(found[1]) if found else None


def _mapped(values: pd.Series, function: Any) -> pd.Series:
    codes, uniques = _distinct(values.to_numpy(dtype=object))
    return pd.Series(_spread(codes, [function(u) for u in uniques]), index=values.index,
                     dtype=object)


def normalize_names(names: pd.Series) -> pd.Series:
    """A comparison key per counterparty name: full-width forms as ASCII (NFKC), case folded,
    brackets, punctuation, spaces and legal-form words (有限公司, 有限责任公司, 股份有限公司,
    公司, Co., Ltd. ...) removed, Latin words and Chinese characters each in sorted order (so
    that a reordered or re-spaced name compares equal). Missing or empty names are None."""
    return _mapped(names, _name_key_of)


def normalize_references(references: pd.Series) -> pd.Series:
    """References compared without case, spaces or full-width forms; empty ones are None."""
    return _mapped(references, _reference_key)


def transaction_ids(*texts: pd.Series, pattern: str = TRANSACTION_PATTERN) -> pd.Series:
    """The ledger transaction id written in the first of `texts` that has one (`EV-123`)."""
    compiled = re.compile(pattern)
    found = pd.Series(pd.NA, index=texts[0].index, dtype="Int64")
    for text in texts:
        number = _mapped(text, lambda u: _transaction_of(u, compiled))
        found = found.fillna(pd.Series(pd.array(number.tolist(), dtype="Int64"),
                                       index=found.index))
    return found


# --- the engine ------------------------------------------------------------------------------


@dataclasses.dataclass
class MatchResult:
    """`groups`: group, category, rule, confidence, certain, gap_days, difference_fen (lines
    minus payments), related (for a duplicate: the line or payment it repeats). `members`:
    group, side (`line` or `item`), id (line id or ledger transaction id)."""

    groups: pd.DataFrame
    members: pd.DataFrame

    def findings(self) -> set[tuple[str, str | None, frozenset[int], frozenset[int]]]:
        """(category, rule, line ids, transaction ids) of every group: what tests compare."""
        lines = self.members[self.members.side == "line"].groupby("group")["id"].apply(frozenset)
        items = self.members[self.members.side == "item"].groupby("group")["id"].apply(frozenset)
        out = set()
        for row in self.groups.itertuples():
            rule = row.rule if isinstance(row.rule, str) else None
            out.add((row.category, rule, lines.get(row.group, frozenset()),
                     items.get(row.group, frozenset())))
        return out


class _Book:
    """The two sides as the rules see them (integer numpy columns, one dict per side), and
    the groups found so far. Counterparty names are coded only for the rows a rule asks
    about (`_NameCodes`): after the reference rule few lines are left for the name rules."""

    def __init__(self, lines: pd.DataFrame, items: pd.DataFrame, pattern: str) -> None:
        self.lines, self.items = _prepare(lines, items, re.compile(pattern))
        self.names = _NameCodes(_column(lines, "counterparty"), _column(items, "counterparty"))
        self.line_open = np.ones(len(self.lines["id"]), dtype=bool)
        self.item_open = np.ones(len(self.items["id"]), dtype=bool)
        #: per `add`: (group, category, rule, the figures given: arrays or scalars)
        self._groups: list[tuple[np.ndarray, str, str | None, dict[str, np.ndarray]]] = []
        #: per `add`: (group, is a line, id) per side with members, and whether each group
        #: has one line and one payment, groups in increasing order (no sort needed)
        self._members: list[tuple[list[tuple[np.ndarray, bool, np.ndarray]], bool]] = []
        self._next = 0
        line_tx, line_ref = self.lines["tx"], self.lines["ref"]
        known_tx = (line_tx >= 0) & _isin(line_tx, self.items["tx"])
        known_ref = (line_ref >= 0) & _isin(line_ref, self.items["ref"])
        #: lines whose key names a ledger payment: matched only through that key
        self.keyed = known_tx | known_ref

    def _frame(self, side: str, mask: np.ndarray,
               columns: Sequence[str] | None) -> pd.DataFrame:
        table = self.lines if side == "line" else self.items
        positions = np.flatnonzero(mask)
        wanted = _COLUMNS if columns is None else columns
        return pd.DataFrame({
            c: self.names.of(side, positions) if c == "name"
            else positions if c == "pos" else table[c][positions]
            for c in wanted if c in table or c in ("name", "pos")},
            index=positions)

    def open_lines(self, *, unkeyed: bool = False,
                   columns: Sequence[str] | None = None) -> pd.DataFrame:
        mask = self.line_open & ~self.keyed if unkeyed else self.line_open
        return self._frame("line", mask, columns)

    def open_items(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self._frame("item", self.item_open, columns)

    def add(self, category: str, rule: str | None, *, line_groups: Any, item_groups: Any,
            info: Any, close: bool = True) -> None:
        """Record groups: `info` has one row per new group (column `g`, local numbering, and
        confidence, certain, gap_days, difference_fen, related); `line_groups` and
        `item_groups` map local group -> row position (`pos`) on each side. Each is a frame or
        a dict of arrays (a scalar stands for a whole column). The group rows are kept as
        arrays (a scalar as it came) and become one frame in `result`."""
        g = np.asarray(info["g"]) if "g" in info else np.zeros(0, dtype=np.int64)
        n = len(g)
        if not n:
            return
        offset = self._next
        self._next += int(g.max()) + 1
        values = {name: np.asarray(info[name]) for name in _INFO if name in info}
        group = g + offset
        self._groups.append((group, category, rule, values))
        sides, pairs = [], True
        for side, frame, table, open_ in (("line", line_groups, self.lines, self.line_open),
                                          ("item", item_groups, self.items, self.item_open)):
            positions = np.asarray(frame["pos"]).astype(np.int64, copy=False)
            if not len(positions):
                pairs = False
                continue
            members = np.asarray(frame["g"])
            pairs &= members is g  # (a rule's groups, one member each: one pair per group)
            sides.append((group if members is g else
                          members.astype(np.int64, copy=False) + offset,
                          side == "line", table["id"][positions]))
            if close:
                open_[positions] = False
        if sides:
            self._members.append((sides, pairs and bool((g[1:] > g[:-1]).all())))

    def _group_frame(self) -> pd.DataFrame:
        """The groups recorded, one row each, as one frame: each column filled piece by piece
        into one array (no frame per `add` to concatenate), with the dtypes a concatenation
        of one frame per `add` has."""
        pieces = self._groups
        sizes = [len(group) for group, *_ in pieces]
        total = sum(sizes)
        bounds = np.cumsum([0, *sizes])
        columns: dict[str, Any] = {"group": np.concatenate([group for group, *_ in pieces])}
        columns["category"] = pd.array(np.repeat(np.array(
            [category for _, category, _, _ in pieces], dtype=object), sizes), dtype="str")
        rules = [rule for _, _, rule, _ in pieces]
        # (a rule's name is text; with a group no rule made, the column is of objects)
        columns["rule"] = np.repeat(np.array(rules, dtype=object), sizes)
        if all(isinstance(rule, str) for rule in rules):
            columns["rule"] = pd.array(columns["rule"], dtype="str")
        for name, default in _INFO.items():
            given = [values.get(name, default) for *_, values in pieces]
            dtypes = {value.dtype for value in given}
            if len(dtypes) > 1 and np.dtype(object) in dtypes:  # related: NA or a line id
                dtypes = {np.dtype(object)}
            if len(dtypes) != 1:  # (never so far: then as a concatenation would do it)
                columns[name] = pd.concat([pd.Series(np.broadcast_to(v, (k,)))
                                           for v, k in zip(given, sizes, strict=True)],
                                          ignore_index=True).to_numpy()
                continue
            out = np.empty(total, dtype=dtypes.pop())
            for value, low, high in zip(given, bounds[:-1], bounds[1:], strict=True):
                out[low:high] = value
            columns[name] = out
        return pd.DataFrame({  # (object columns stay object: no text inferred from them)
            name: pd.Series(values, dtype=object, copy=False)
            if isinstance(values, np.ndarray) and values.dtype == object else values
            for name, values in columns.items()}, copy=False)

    def result(self) -> MatchResult:
        groups = self._group_frame() if self._groups else pd.DataFrame(
            columns=["group", "category", "rule", "confidence", "certain", "gap_days",
                     "difference_fen", "related"])
        if self._members:
            # by group, side ("item" before "line") and id: each `add` numbers its groups
            # after the last one's, so the adds' members are sorted one by one into place
            total = sum(len(ids) for sides, _ in self._members for *_, ids in sides)
            key, ids = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)
            at = 0
            for sides, pairs in self._members:
                at = _place_members(sides, pairs, key, ids, at)
            members = pd.DataFrame({
                "group": key >> 1,
                "side": np.array(["item", "line"], dtype=object)[key & 1],
                "id": ids}, copy=False)
        else:
            members = pd.DataFrame(columns=["group", "side", "id"])
        if not groups["group"].is_monotonic_increasing:  # (they come in order)
            groups = groups.sort_values("group", kind="stable")
        groups = groups.reset_index(drop=True)
        groups["group"] = groups["group"].astype("int64")
        members["group"] = members["group"].astype("int64")
        members["id"] = members["id"].astype("int64")
        return MatchResult(groups, members)


def _place_members(sides: list[tuple[np.ndarray, bool, np.ndarray]], pairs: bool,
                   key: np.ndarray, ids: np.ndarray, at: int) -> int:
    """Write one `add`'s members into `key` (2 * group + is a line) and `ids` from `at`,
    sorted by key and id; the position after them. `pairs`: one line and one payment per
    group, groups increasing (the reference rule's): interleaved, no sort."""
    if pairs:
        (line_group, _, line_ids), (_, _, item_ids) = sides
        n = len(line_group)
        pair_key = key[at:at + 2 * n]
        np.multiply(line_group, 2, out=pair_key[0::2])
        np.add(pair_key[0::2], 1, out=pair_key[1::2])
        ids[at:at + 2 * n:2] = item_ids
        ids[at + 1:at + 2 * n:2] = line_ids
        return at + 2 * n
    # one stable sort of group and side (runs in order: merged in linear time), and ids
    # sorted only where a side of a group has several
    part_key = np.concatenate([group * 2 + is_line for group, is_line, _ in sides])
    part_ids = np.concatenate([side_ids for *_, side_ids in sides])
    order = np.argsort(part_key, kind="stable")
    part_key, part_ids = part_key[order], part_ids[order]
    tied = part_key[1:] == part_key[:-1]
    if tied.any():
        shared = np.zeros(len(part_key), dtype=bool)
        shared[1:] = tied
        shared[:-1] |= tied
        rows = np.flatnonzero(shared)
        part_ids[rows] = part_ids[rows[np.lexsort((rows, part_ids[rows], part_key[rows]))]]
    key[at:at + len(part_key)] = part_key
    ids[at:at + len(part_ids)] = part_ids
    return at + len(part_key)


#: a group's figures beside category and rule, and their values when a rule gives none
_INFO: dict[str, np.ndarray] = {
    "confidence": np.asarray(np.nan), "certain": np.asarray(False),
    "gap_days": np.asarray(0, dtype=np.int64), "difference_fen": np.asarray(0, dtype=np.int64),
    "related": np.asarray(pd.NA, dtype=object)}


#: the columns of a side as the rules see them (memo: lines only)
_COLUMNS = ("id", "pos", "day", "amount", "ref", "name", "tx", "memo")


def _isin(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """`np.isin` of integers: a lookup table where they are dense (codes), else a hash table
    (pandas), never a sort."""
    if not len(values) or not len(among):
        return np.zeros(len(values), dtype=bool)
    low = min(int(values.min()), int(among.min()))
    high = max(int(values.max()), int(among.max()))
    if high - low <= 4 * (len(values) + len(among)):
        table = np.zeros(high - low + 1, dtype=bool)
        table[among - low] = True
        return table[values - low]
    return pd.Series(values).isin(among).to_numpy()


class _NameCodes:
    """Normalised counterparty names as integer codes, equal where the keys are equal (-1:
    missing), worked out for the rows asked about only and kept for the next question."""

    def __init__(self, lines: np.ndarray, items: np.ndarray) -> None:
        self.raw = {"line": lines, "item": items}
        self.codes = {"line": np.full(len(lines), -2, dtype=np.int64),
                      "item": np.full(len(items), -2, dtype=np.int64)}
        self.known: dict[str, int] = {}

    def of(self, side: str, positions: np.ndarray) -> np.ndarray:
        codes = self.codes[side]
        todo = positions[codes[positions] == -2]
        if len(todo):
            raw, uniques = _distinct(self.raw[side][todo])
            known = self.known
            key_codes = np.array(
                [-1 if k is None else known.setdefault(k, len(known))
                 for k in _name_keys(uniques)] + [-1], dtype=np.int64)
            codes[todo] = key_codes[raw]
        return codes[positions]


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[D]").view(np.int64)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column as an object array (missing values as they come: None or NaN, which the
    coding treats alike), or all None when the frame has no such column."""
    if name in frame:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)


def _shared_codes(left: np.ndarray, right: np.ndarray, key: Any) -> tuple[
        np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Integer codes of `key(value)` on both sides, equal where the keys are equal; -1 where
    the value is missing or its key is None; and, for more work per distinct value, the raw
    values' codes on the left side, the distinct keys and whether one of them may hold
    `EV` (`key` returns the keys, or None when every value is its own key, and that). The
    key is computed once per distinct value (names and references repeat), and the rules
    then compare integers."""
    raw, uniques = _distinct(np.concatenate([left, right]))
    computed, ev = key(uniques)
    if computed is None:  # every distinct value is its own key: the codes are the raw ones
        keys = np.concatenate([uniques, np.array([None], dtype=object)])
        codes = raw.astype(np.int64, copy=False)
    else:
        keys = np.array([*computed, None], dtype=object)
        key_codes, _ = pd.factorize(keys, use_na_sentinel=True)
        codes = key_codes.astype(np.int64, copy=False)[raw]
    return codes[:len(left)], codes[len(left):], raw[:len(left)], keys, ev


#: separates the distinct values joined into one text, so that each normalisation step runs
#: once over all of them (C speed) instead of once per value; no cell holds it
_SEP = "\x1e"
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
_BATCH_LEGAL = re.compile(_LEGAL_FORMS.pattern.replace(r"\s", " "))
_BATCH_SEPARATORS = re.compile(r"[ \t\n\r\f\v,.;:·・、，。；：'\"/\\_&\-]+")
_UPPER_EV = re.compile(r"(?<![A-Z0-9])EV-?(\d{1,18})(?!\d)")


def _all_text(values: np.ndarray) -> bool:
    """Whether every value is a text (one pass in C)."""
    return bool(len(values)) and pd.api.types.infer_dtype(values, skipna=False) == "string"


def _joined(values: np.ndarray) -> tuple[str | None, bool]:
    """(the distinct values as one text, or None when one of them holds the separator;
    whether every value is a text)."""
    text = _all_text(values)
    texts = values.tolist() if text else [v if isinstance(v, str) else str(v) for v in values]
    joined = _SEP.join(texts)
    return (None if joined.count(_SEP) != len(texts) - 1 else joined), text


def _reference_keys(values: np.ndarray) -> tuple[list[str | None] | None, bool]:
    """(`_reference_key` of every value, as a batch, or None when every value is a text that
    is its own key already (upper case ASCII, no spaces, not empty), as references mostly
    are; whether a key may hold `EV`, a ledger id)."""
    joined, text = _joined(values) if len(values) else (None, False)
    if joined is None:
        return [_reference_key(v) for v in values], True
    if joined.isascii() and not _SPACES.search(joined) and joined.upper() == joined \
            and _SEP * 2 not in joined and not joined.startswith(_SEP) \
            and not joined.endswith(_SEP) and text:
        return None, "EV" in joined
    if not joined.isascii():
        joined = unicodedata.normalize("NFKC", joined)
    joined = _SPACES.sub("", joined).upper()
    return [p or None for p in joined.split(_SEP)], "EV" in joined


def _name_keys(values: np.ndarray) -> list[str | None]:
    """`_name_key_of` of every value, as a batch."""
    joined = _joined(values)[0] if len(values) else None
    if joined is None:
        return [_name_key_of(v) for v in values]
    if not joined.isascii():
        joined = unicodedata.normalize("NFKC", joined)
    joined = joined.casefold()
    for form in _CHINESE_FORMS:
        joined = joined.replace(form, " ")
    joined = _BRACKETS.sub(" ", joined)
    joined = _BATCH_LEGAL.sub(" ", joined)
    joined = _BATCH_SEPARATORS.sub(" ", joined)
    return [_name_key(part.split()) for part in joined.split(_SEP)]


def _reference_ids(keys: np.ndarray) -> np.ndarray:
    """Per normalised reference (upper case, no spaces): the ledger id it names, or -1; one
    regular-expression scan over all of them."""
    out = np.full(len(keys), -1, dtype=np.int64)
    filled = np.where(pd.isna(keys), "", keys)
    texts = filled.tolist() if _all_text(filled) else \
        [k if isinstance(k, str) else "" for k in keys]
    joined = _SEP.join(texts)
    if not texts or "EV" not in joined:
        return out
    hits = [(found.start(), int(found[1])) for found in _UPPER_EV.finditer(joined)]
    if not hits:
        return out
    starts, numbers = (np.array(column, dtype=np.int64) for column in zip(*hits))
    ends = np.cumsum([len(t) + 1 for t in texts])
    index = np.searchsorted(ends, starts, side="right")
    first = _firsts(index)  # the first id in a reference counts
    out[index[first]] = numbers[first]
    return out


def _firsts(index: np.ndarray) -> np.ndarray:
    """Where a sorted `index` takes a value for the first time."""
    first = np.ones(len(index), dtype=bool)
    first[1:] = index[1:] != index[:-1]
    return first


def _written_ids(texts: np.ndarray, pattern: re.Pattern[str], *,
                 upper: bool = False) -> np.ndarray:
    """Per distinct text: the ledger id it names (EV-n), or -1 (`upper`: already in upper
    case, as normalised references are)."""
    out = np.full(len(texts), -1, dtype=np.int64)
    if upper:
        chosen = [i for i, t in enumerate(texts) if isinstance(t, str) and "EV" in t]
    else:
        chosen = [i for i, t in enumerate(texts)
                  if isinstance(t, str) and ("EV" in (u := t.upper()) or "ＥＶ" in u)]
    if not chosen:
        return out
    candidates = [texts[i] for i in chosen]
    joined = _SEP.join(candidates)
    if joined.count(_SEP) == len(candidates) - 1:
        # one scan over all of them: each text normalised as the one-by-one search does, a
        # match counted only inside one text (the separator is neither a letter nor a digit)
        normal = joined if joined.isascii() else unicodedata.normalize("NFKC", joined)
        parts = normal.split(_SEP)
        if len(parts) == len(candidates):
            hits = [(found.start(), found.end(), int(found[1]))
                    for found in pattern.finditer(normal)]
            if not hits:
                return out
            starts, stops, numbers = (np.array(column, dtype=np.int64)
                                      for column in zip(*hits))
            ends = np.cumsum([len(part) + 1 for part in parts]) - 1
            index = np.searchsorted(ends, starts, side="right")
            inside = stops <= ends[index]
            index, numbers = index[inside], numbers[inside]
            first = _firsts(index)  # the first id in a text counts (EV-0 names nothing)
            out[np.asarray(chosen, dtype=np.int64)[index[first]]] = \
                np.where(numbers[first] != 0, numbers[first], -1)
            return out
    for i, text in zip(chosen, candidates, strict=True):
        out[i] = _transaction_of(text, pattern) or -1
    return out


def _prepare(lines: pd.DataFrame, items: pd.DataFrame,
             pattern: re.Pattern[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both sides as integer columns: id, pos, day, amount, ref, tx (and memo for lines);
    references coded jointly, so equal keys have equal codes on both sides."""
    sides = []
    for frame, id_column, date_column in ((lines, "line_id", "value_date"),
                                          (items, "transaction_id", "effective_date")):
        sides.append({
            "id": frame[id_column].to_numpy(dtype=np.int64),
            "day": _days(frame[date_column]) if len(frame) else np.zeros(0, dtype=np.int64),
            "amount": frame["amount_fen"].to_numpy(dtype=np.int64)})
    left, right = sides
    left["ref"], right["ref"], raw_refs, ref_keys, ev = _shared_codes(
        _column(lines, "reference"), _column(items, "reference"), _reference_keys)
    # a statement line's ledger id: its transaction_id column, else EV-n in reference or memo
    if "transaction_id" in lines:
        stated = pd.to_numeric(pd.Series(_column(lines, "transaction_id")), errors="coerce")
        tx = stated.fillna(-1).to_numpy(dtype=np.int64)
    else:
        tx = np.full(len(lines), -1, dtype=np.int64)
    if pattern.pattern != TRANSACTION_PATTERN:
        tx = np.where(tx >= 0, tx, _written_ids(ref_keys, pattern, upper=True)[raw_refs])
    elif ev:  # (a reference without EV names no ledger id)
        tx = np.where(tx >= 0, tx, _reference_ids(ref_keys)[raw_refs])
    memo_codes, memo_uniques = _distinct(_column(lines, "memo"), sparse=True)
    memo_ids = _written_ids(np.array([*memo_uniques, None], dtype=object), pattern)
    tx = np.where(tx >= 0, tx, memo_ids[memo_codes])
    left["tx"] = tx
    left["memo"] = memo_codes.astype(np.int64, copy=False)
    right["tx"] = right["id"]
    return left, right


def _combined_key(*columns: np.ndarray) -> np.ndarray:
    """One int64 per row, ordered as the rows' `columns` are lexicographically (non-negative
    codes and amounts), so that equal tuples have equal keys and a sort by the key is a sort
    by the columns."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        low, high = (int(column.min()), int(column.max())) if len(column) else (0, 0)
        width = high - low + 1
        if span * width >= 2 ** 62:  # too wide to multiply out: rank what there is first
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
            span = int(key.max()) + 1 if len(key) else 1
            column = np.unique(column, return_inverse=True)[1].astype(np.int64)
            low, width = 0, int(column.max()) + 1 if len(column) else 1
        key = key * width + (column - low)
        span *= width
    return key


def _ranked(key: np.ndarray, day: np.ndarray, ids: np.ndarray, *,
            rank: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(order, k): the rows sorted by key, day, id and position, and each row's rank (in that
    order) among those of its key (`rank`: else None). One sort of the key; only rows sharing
    a key with another row are sorted again."""
    n = len(key)
    order = np.argsort(key, kind="stable")  # (runs of sorted keys merge in linear time)
    sorted_key = key[order]
    change = np.ones(n, dtype=bool)
    change[1:] = sorted_key[1:] != sorted_key[:-1]
    shared = ~change
    shared[:-1] |= ~change[1:]
    if shared.any():
        rows = order[shared]
        order[shared] = rows[np.lexsort((rows, ids[rows], day[rows], key[rows]))]
    del sorted_key, shared
    if not rank:
        return order, None
    index = np.arange(n)
    starts = np.where(change, index, 0)
    if n:
        np.maximum.accumulate(starts, out=starts)
    index -= starts
    return order, index


def _pair_keys(left: np.ndarray, left_amount: np.ndarray, lp: np.ndarray,
               right: np.ndarray, right_amount: np.ndarray,
               rp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_combined_key` of (code, amount) at rows `lp` on the left and `rp` on the right, as
    one key space, computed side by side (no concatenated copy)."""
    code_l, code_r = left[lp], right[rp]
    amount_l, amount_r = left_amount[lp], right_amount[rp]
    lows = [min(int(a.min()), int(b.min())) for a, b in ((code_l, code_r), (amount_l, amount_r))]
    highs = [max(int(a.max()), int(b.max())) for a, b in ((code_l, code_r), (amount_l, amount_r))]
    code_width, amount_width = (high - low + 1 for low, high in zip(lows, highs, strict=True))
    if code_width * amount_width >= 2 ** 62:  # too wide to multiply out: rank them jointly
        both = _combined_key(np.concatenate([code_l, code_r]),
                             np.concatenate([amount_l, amount_r]))
        return both[:len(lp)], both[len(lp):]
    out = []
    for code, amount in ((code_l, amount_l), (code_r, amount_r)):
        code -= lows[0]
        code *= amount_width
        amount -= lows[1]
        code += amount
        out.append(code)
    return out[0], out[1]


def _confidence(base: float, gap: np.ndarray) -> np.ndarray:
    return np.round(np.clip(base - 0.02 * gap, 0.05, 0.99 if base < 1 else 1.0), 2)


def _pairs_info(pairs: pd.DataFrame, confidence: np.ndarray, certain: Any) -> tuple[
        pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = len(pairs)
    g = np.arange(n, dtype=np.int64)
    info = pd.DataFrame({"g": g, "confidence": confidence, "certain": certain,
                         "gap_days": pairs["gap"].to_numpy(),
                         "difference_fen": (pairs["amount_l"] - pairs["amount_i"]).to_numpy()})
    return (pd.DataFrame({"g": g, "pos": pairs["pos_l"].to_numpy()}),
            pd.DataFrame({"g": g, "pos": pairs["pos_i"].to_numpy()}), info)


def _reference_rule(book: _Book, rule: dict[str, Any]) -> None:
    """One line to one payment with the same key and amount, the k-th line of a key and
    amount (by date, then id) to the k-th payment; further lines repeat a matched one."""
    window = rule["window_days"]
    lines_all, items_all = book.lines, book.items
    for key in rule["keys"]:
        column = "tx" if key == "transaction_id" else "ref"
        lp = np.flatnonzero(book.line_open & (lines_all[column] >= 0))
        ip = np.flatnonzero(book.item_open & (items_all[column] >= 0))
        if not len(lp) or not len(ip):
            continue
        # one key for (column, amount) on both sides; only keys on both sides can pair
        lk, ik = _pair_keys(lines_all[column], lines_all["amount"], lp,
                            items_all[column], items_all["amount"], ip)
        # (a key on one side only pairs nothing: when one side is much the smaller, the
        # other is cut down to its keys before sorting; ranks within a key do not change)
        if 2 * len(lp) < len(ip):
            keep = _isin(ik, lk)
            ip, ik = ip[keep], ik[keep]
        elif 2 * len(ip) < len(lp):
            keep = _isin(lk, ik)
            lp, lk = lp[keep], lk[keep]
        if not len(lp) or not len(ip):
            continue
        l_order, l_rank = _ranked(lk, lines_all["day"][lp], lines_all["id"][lp])
        assert l_rank is not None
        i_order, _ = _ranked(ik, items_all["day"][ip], items_all["id"][ip], rank=False)
        lp, lk = lp[l_order], lk[l_order]
        ip, ik = ip[i_order], ik[i_order]
        # the k-th line of a key pairs with the k-th payment of that key: the payments are
        # sorted by key and rank, so that one sits `k` places after its key's first payment
        first_item = np.searchsorted(ik, lk, side="left")
        counts = np.searchsorted(ik, lk, side="right") - first_item
        paired = l_rank < counts
        pl, pi = lp[paired], ip[first_item[paired] + l_rank[paired]]
        gap = lines_all["day"][pl]
        gap -= items_all["day"][pi]
        np.abs(gap, out=gap)
        within = gap <= window
        pk = lk[paired]
        if not within.all():
            pl, pi, gap, pk = pl[within], pi[within], gap[within], pk[within]
        certain = bool(rule["auto_confirm"]) & (np.asarray(rule["confidence"]) >= 1)
        g = np.arange(len(pl), dtype=np.int64)
        book.add("matched", rule["name"], line_groups={"g": g, "pos": pl},
                 item_groups={"g": g, "pos": pi},
                 info={"g": g, "confidence": float(rule["confidence"]), "certain": certain,
                       "gap_days": gap, "difference_fen": np.int64(0)})
        # lines beyond the payments of their key and amount repeat the key's first match
        extra = np.flatnonzero(l_rank >= counts)
        if not len(extra) or not len(pk):
            continue
        first = np.minimum(np.searchsorted(pk, lk[extra], side="left"), len(pk) - 1)
        has = pk[first] == lk[extra]
        extra, first = extra[has], first[has]
        open_ = book.line_open[lp[extra]]
        extra, first = extra[open_], first[open_]
        if len(extra):
            g = np.arange(len(extra), dtype=np.int64)
            book.add("duplicate", rule["name"],
                     line_groups=pd.DataFrame({"g": g, "pos": lp[extra]}),
                     item_groups=pd.DataFrame(columns=["g", "pos"]),
                     info=pd.DataFrame({"g": g, "related": items_all["id"][pi[first]]}))


def _nearest(lines: pd.DataFrame, items: pd.DataFrame, by: list[str], window: int,
             rounds: int = 4) -> pd.DataFrame:
    """One-to-one pairs equal in `by` with dates at most `window` days apart, nearest first
    (`merge_asof` per round; a payment claimed by two lines goes to the nearer, and the other
    line tries again next round). Columns: pos_l, pos_i, amount_l, amount_i, gap."""
    found = []
    keys = [c for c in by if c != "amount"]  # coded keys: -1 is missing
    if keys:
        lines = lines[(lines[keys] >= 0).all(axis=1)]
        items = items[(items[keys] >= 0).all(axis=1)]
    for _ in range(rounds):
        if lines.empty or items.empty:
            break
        left = lines.sort_values("day", kind="stable")
        right = items[[*by, "day", "pos"]].sort_values("day", kind="stable")
        right = right.assign(day_i=right["day"])
        joined = pd.merge_asof(left, right, on="day", by=by, tolerance=window,
                               direction="nearest", suffixes=("_l", "_i"))
        joined = joined[joined["pos_i"].notna()]
        if joined.empty:
            break
        joined = joined.assign(pos_i=joined["pos_i"].astype(np.int64),
                               gap=(joined["day"] - joined["day_i"]).abs().astype(np.int64))
        joined = joined.sort_values(["gap", "id"], kind="stable") \
            .drop_duplicates("pos_i", keep="first")
        amount = joined["amount"].to_numpy()
        found.append(pd.DataFrame({"pos_l": joined["pos_l"].to_numpy(),
                                   "pos_i": joined["pos_i"].to_numpy(),
                                   "amount_l": amount, "amount_i": amount,
                                   "gap": joined["gap"].to_numpy()}))
        lines = lines[~lines["pos"].isin(joined["pos_l"])]
        items = items[~items["pos"].isin(joined["pos_i"])]
    if not found:
        return pd.DataFrame(columns=["pos_l", "pos_i", "amount_l", "amount_i", "gap"],
                            dtype=np.int64)
    return pd.concat(found, ignore_index=True)


def _proximity_rule(book: _Book, rule: dict[str, Any], by: list[str]) -> None:
    lines = book.open_lines(unkeyed=True, columns=["pos", "id", "day", *by])
    items = book.open_items(columns=["pos", "day", *by])
    pairs = _nearest(lines, items, by, rule["window_days"])
    line_groups, item_groups, info = _pairs_info(
        pairs, _confidence(float(rule["confidence"]), pairs["gap"].to_numpy()), False)
    book.add("matched", rule["name"], line_groups=line_groups, item_groups=item_groups,
             info=info)


def _split_rule(book: _Book, rule: dict[str, Any]) -> None:
    """Many lines -> one payment, then one line -> many payments: grouped by reference, then
    by counterparty and date; a group's sum must equal the one side's amount exactly."""
    window, parts = rule["window_days"], rule["max_parts"]
    for many_side in ("line", "item"):
        for key in (["ref"], ["name", "day"]):
            columns = ["id", "pos", "day", "amount", *key]  # (names coded only when asked)
            lines = book.open_lines(columns=columns) if key == ["ref"] \
                else book.open_lines(unkeyed=True, columns=columns)
            items = book.open_items(columns=columns)
            many, one = (lines, items) if many_side == "line" else (items, lines)
            many = many[many[key[0]] >= 0]
            one = one[one[key[0]] >= 0]
            if many.empty or one.empty:
                continue
            sizes = many.groupby(key)["pos"].transform("size")
            many = many[(sizes >= 2) & (sizes <= parts)]
            if many.empty:
                continue
            sums = many.groupby(key, sort=False).agg(
                amount=("amount", "sum"), first=("day", "min"), last=("day", "max"),
                head=("id", "min")).reset_index()
            sums["g"] = np.arange(len(sums), dtype=np.int64)
            on = [key[0], "amount"]
            candidates = sums[[*on, "g", "first", "last", "head"]].merge(
                one[[*on, "pos", "day", "id"]], on=on)
            gap = np.maximum((candidates["last"] - candidates["day"]).abs(),
                             (candidates["first"] - candidates["day"]).abs())
            candidates = candidates.assign(gap=gap)
            candidates = candidates[candidates["gap"] <= window]
            candidates = candidates.sort_values(["gap", "head", "id"], kind="stable")
            chosen = candidates.drop_duplicates("g").drop_duplicates("pos")
            if chosen.empty:
                continue
            new_g = np.arange(len(chosen), dtype=np.int64)
            renumber = pd.DataFrame({"g": chosen["g"].to_numpy(), "g_new": new_g})
            members = many.merge(sums[[*key, "g"]], on=key).merge(renumber, on="g")
            many_groups = pd.DataFrame({"g": members["g_new"].to_numpy(),
                                        "pos": members["pos"].to_numpy()})
            one_groups = pd.DataFrame({"g": new_g, "pos": chosen["pos"].to_numpy()})
            info = pd.DataFrame({
                "g": new_g,
                "confidence": _confidence(float(rule["confidence"]), chosen["gap"].to_numpy()),
                "certain": False, "gap_days": chosen["gap"].to_numpy(), "difference_fen": 0})
            line_groups, item_groups = (many_groups, one_groups) if many_side == "line" \
                else (one_groups, many_groups)
            book.add("matched", rule["name"], line_groups=line_groups,
                     item_groups=item_groups, info=info)


def _classify_rest(book: _Book, rules: Sequence[dict[str, Any]]) -> None:
    """Name what no rule matched: key pairs that differ (amount or date), repeated lines, and
    what is only on one side."""
    windows = [r["window_days"] for r in rules if r["kind"] == "reference" and r["enabled"]]
    window = max(windows) if windows else RULE_KINDS["reference"]["window_days"]
    keys = ["id", "pos", "day", "amount", "ref", "tx"]
    for column in ("tx", "ref"):
        lines = book.open_lines(columns=keys)
        items = book.open_items(columns=keys)
        lines = lines[lines[column] >= 0]
        items = items[items[column] >= 0]
        if lines.empty or items.empty:
            continue
        lines = lines[lines.groupby(column)["pos"].transform("size") == 1]
        items = items[items.groupby(column)["pos"].transform("size") == 1]
        pairs = lines.merge(items, on=column, suffixes=("_l", "_i"))
        if pairs.empty:
            continue
        pairs["gap"] = (pairs["day_l"] - pairs["day_i"]).abs()
        for category, mask in (
                ("amount_mismatch", pairs["amount_l"] != pairs["amount_i"]),
                ("outside_window", (pairs["amount_l"] == pairs["amount_i"])
                 & (pairs["gap"] > window))):
            chosen = pairs[mask]
            line_groups, item_groups, info = _pairs_info(
                chosen, np.full(len(chosen), np.nan), False)
            book.add(category, None, line_groups=line_groups, item_groups=item_groups,
                     info=info)
    # a line equal in every field to an earlier line (matched or not) repeats it
    # (only lines that share day, amount, reference and memo with another can: their names
    # are the only ones coded here)
    table = book.lines
    same = pd.Series(_combined_key(table["day"], table["amount"])) \
        .duplicated(keep=False).to_numpy()
    candidates = book._frame("line", same, ["id", "pos", "day", "amount", "ref", "name",
                                            "memo"])
    ordered = candidates.assign(open=book.line_open[same]) \
        .sort_values(["day", "id"], kind="stable")
    by = ["day", "amount", "ref", "name", "memo"]  # integers; -1 (missing) equals itself
    grouped = ordered.groupby(by, sort=False)
    ordered = ordered.assign(k=grouped.cumcount(), first=grouped["id"].transform("first"))
    repeats = ordered[(ordered["k"] > 0) & ordered["open"]]
    if not repeats.empty:
        g = np.arange(len(repeats), dtype=np.int64)
        book.add("duplicate", None,
                 line_groups=pd.DataFrame({"g": g, "pos": repeats["pos"].to_numpy()}),
                 item_groups=pd.DataFrame(columns=["g", "pos"]),
                 info=pd.DataFrame({"g": g, "related": repeats["first"].to_numpy()}))
    for side, frame in (("line", book.open_lines(columns=["pos", "amount"])),
                        ("item", book.open_items(columns=["pos", "amount"]))):
        g = np.arange(len(frame), dtype=np.int64)
        groups = pd.DataFrame({"g": g, "pos": frame["pos"].to_numpy()})
        empty = pd.DataFrame(columns=["g", "pos"])
        book.add("only_in_statement" if side == "line" else "only_in_ledger", None,
                 line_groups=groups if side == "line" else empty,
                 item_groups=groups if side == "item" else empty,
                 info=pd.DataFrame({"g": g, "difference_fen": frame["amount"].to_numpy()
                                    * (1 if side == "line" else -1)}))


def match(lines: pd.DataFrame, items: pd.DataFrame,
          rules: Iterable[dict[str, Any]] | None = None) -> MatchResult:
    """Match statement `lines` (line_id, value_date, amount_fen, and optionally reference,
    transaction_id, counterparty, memo) against ledger `items` (transaction_id,
    effective_date, amount_fen, and optionally reference, counterparty) with `rules` (default
    `DEFAULT_RULES`; validated). Every line and every item ends in exactly one group, except
    that a `duplicate` line names the payment or line it repeats in `related`."""
    checked, errors = validate_rules(list(rules) if rules is not None else DEFAULT_RULES)
    if errors:
        raise ValueError(f"invalid rules: {errors}")
    pattern = TRANSACTION_PATTERN
    book = _Book(lines, items, pattern)
    for rule in checked:
        if not rule["enabled"]:
            continue
        if rule["kind"] == "reference":
            _reference_rule(book, rule)
        elif rule["kind"] == "counterparty":
            _proximity_rule(book, rule, ["amount", "name"])
        elif rule["kind"] == "amount_date":
            _proximity_rule(book, rule, ["amount"])
        else:
            _split_rule(book, rule)
    _classify_rest(book, checked)
    return book.result()


def summary(result: MatchResult) -> dict[str, int]:
    """Groups per category."""
    counts = result.groups["category"].value_counts()
    return {category: int(counts.get(category, 0)) for category in CATEGORIES}
