"""A seeded simulator (pure): a month of ledger payments of one account and the bank
statement that mirrors them, with discrepancies injected on purpose, and the findings a
correct reconciliation must report — no more, no fewer.

Injected kinds (`KINDS`): a payment the bank never shows (`missing`), a bank line posted
twice (`duplicate`), an amount typed wrong (`amount_typo`), a line dated beyond every rule's
window (`date_shift`), one payment paid in several bank lines (`split`), one bank line paying
several payments of one counterparty (`combined`), a line without reference whose payer name
is written in another order and form (`reordered_name`), and a bank charge the ledger does not
know (`bank_charge`). Every other payment appears once on the statement with its reference
(or `EV-<id>` in the memo), within a few days.

Amounts are distinct (so that no finding is ambiguous by chance), integers in fen, signed from
the account's side (money in positive). `simulate(seed)` is deterministic: a failing seed
replays exactly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

KINDS = ("missing", "duplicate", "amount_typo", "date_shift", "split", "combined",
         "reordered_name", "bank_charge")

_PLACES = ("兴义", "册亨", "望谟", "安龙", "贞丰", "普安", "晴隆", "兴仁")
_TRADES = ("电力", "林业", "碳汇服务", "水务", "建设", "农业开发", "生态旅游", "茶业")
_FORMS = ("有限公司", "有限责任公司", "股份有限公司")

Finding = tuple[str, str | None, frozenset[int], frozenset[int]]


@dataclasses.dataclass
class Simulation:
    seed: int
    period: dt.date  #: first day of the month
    #: ledger payments: transaction_id, effective_date, amount_fen, reference, counterparty
    items: pd.DataFrame
    #: statement lines: line_id, value_date, amount_fen, reference, counterparty, memo
    lines: pd.DataFrame
    expected: set[Finding]  #: every group the reconciliation must report
    injected: set[Finding]  #: the expected findings that are not a plain reference match
    opening_balance_fen: int


def _width(text: str) -> str:
    """Full-width forms of ASCII letters, digits and spaces, as some banks print them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c)
                   for c in text)


def simulate(seed: int, *, payments: tuple[int, int] = (20, 60),
             period: dt.date = dt.date(2026, 11, 1), first_id: int = 1000) -> Simulation:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(*payments))
    counts = {kind: int(rng.integers(0, 3)) for kind in KINDS}
    # distinct amounts, far apart from each other's typos: multiples of 7 fen plus an offset
    pool = pd.unique(rng.integers(0, 70_000_000, size=8 * n + 400)) * 7 + 10_000
    amounts = iter(pool.tolist())
    companies = [f"{p} {t}" for p in _PLACES for t in _TRADES]
    rng.shuffle(companies)
    company_iter = iter(companies[16:])

    items: list[dict] = []
    lines: list[dict] = []
    expected: set[Finding] = set()
    injected: set[Finding] = set()
    next_tx = first_id
    next_line = 1

    def day(offset: int) -> dt.date:
        return period + dt.timedelta(days=offset)

    def item(amount: int, counterparty: str, offset: int) -> dict:
        nonlocal next_tx
        next_tx += 1
        row = {"transaction_id": next_tx, "effective_date": day(offset), "amount_fen": amount,
               "reference": f"PAY-{seed}-{next_tx}", "counterparty": counterparty}
        items.append(row)
        return row

    def line(amount: int, offset: int, *, reference: str | None, counterparty: str,
             memo: str | None = None) -> dict:
        nonlocal next_line
        row = {"line_id": next_line, "value_date": day(offset), "amount_fen": amount,
               "reference": reference, "counterparty": counterparty, "memo": memo}
        next_line += 1
        lines.append(row)
        return row

    def signed(amount: int) -> int:
        return amount if rng.random() < 0.6 else -amount

    def name() -> str:
        return f"{next(companies_cycle)} {_FORMS[int(rng.integers(len(_FORMS)))]}"

    common = companies[:16]
    companies_cycle = iter(common * (n + 10))
    plan = ["clean"] * n
    for kind, count in counts.items():
        plan += [kind] * count
    rng.shuffle(plan)

    def add(kind: str, finding: Finding) -> None:
        expected.add(finding)
        if kind != "clean":
            injected.add(finding)

    for kind in plan:
        offset = int(rng.integers(0, 14))
        if kind in ("clean", "duplicate"):
            it = item(signed(next(amounts)), name(), offset)
            by_id = rng.random() < 0.3
            ln = line(it["amount_fen"], offset + int(rng.integers(0, 3)),
                      reference=None if by_id else it["reference"],
                      counterparty=it["counterparty"],
                      memo=f"EV-{it['transaction_id']} 付款" if by_id else None)
            add("clean", ("matched", "reference", frozenset({ln["line_id"]}),
                          frozenset({it["transaction_id"]})))
            if kind == "duplicate":
                copy = line(ln["amount_fen"], (ln["value_date"] - period).days,
                            reference=ln["reference"], counterparty=ln["counterparty"],
                            memo=ln["memo"])
                add(kind, ("duplicate", "reference", frozenset({copy["line_id"]}), frozenset()))
        elif kind == "missing":
            it = item(signed(next(amounts)), name(), offset)
            add(kind, ("only_in_ledger", None, frozenset(), frozenset({it["transaction_id"]})))
        elif kind == "amount_typo":
            it = item(signed(next(amounts)), name(), offset)
            wrong = it["amount_fen"] + int(np.sign(it["amount_fen"])) * int(rng.integers(1, 7))
            ln = line(wrong, offset, reference=it["reference"], counterparty=it["counterparty"])
            add(kind, ("amount_mismatch", None, frozenset({ln["line_id"]}),
                       frozenset({it["transaction_id"]})))
        elif kind == "date_shift":
            it = item(signed(next(amounts)), name(), offset)
            ln = line(it["amount_fen"], offset + int(rng.integers(10, 16)),
                      reference=it["reference"], counterparty=it["counterparty"])
            add(kind, ("outside_window", None, frozenset({ln["line_id"]}),
                       frozenset({it["transaction_id"]})))
        elif kind == "split":
            it = item(signed(next(amounts)), name(), offset)
            parts = int(rng.integers(2, 4))
            total = abs(it["amount_fen"])
            cuts = np.sort(pd.unique(rng.integers(1, total, size=parts + 8))[:parts - 1])
            pieces = np.diff(np.concatenate([[0], cuts, [total]])) * int(np.sign(it["amount_fen"]))
            ids = [line(int(p), offset + int(rng.integers(0, 2)), reference=it["reference"],
                        counterparty=it["counterparty"])["line_id"] for p in pieces]
            add(kind, ("matched", "split", frozenset(ids), frozenset({it["transaction_id"]})))
        elif kind == "combined":
            payer = f"{next(company_iter)} {_FORMS[0]}"
            parts = int(rng.integers(2, 4))
            sign = 1 if rng.random() < 0.5 else -1
            paid = [item(sign * next(amounts), payer, offset) for _ in range(parts)]
            ln = line(sum(p["amount_fen"] for p in paid), offset + int(rng.integers(0, 2)),
                      reference=None, counterparty=_width(payer))
            add(kind, ("matched", "split", frozenset({ln["line_id"]}),
                       frozenset(p["transaction_id"] for p in paid)))
        elif kind == "reordered_name":
            it = item(signed(next(amounts)), name(), offset)
            words = it["counterparty"].split()
            place, trade = words[0], words[1]
            written = f"{_width(trade)}  {place}" + ("有限公司" if words[2] != "有限公司"
                                                     else "有限责任公司")
            ln = line(it["amount_fen"], offset + int(rng.integers(0, 3)), reference=None,
                      counterparty=written, memo="货款")
            add(kind, ("matched", "counterparty", frozenset({ln["line_id"]}),
                       frozenset({it["transaction_id"]})))
        elif kind == "bank_charge":
            ln = line(-(next(amounts) % 5_000 + 1), offset, reference=None,
                      counterparty="中国农业银行", memo="手续费")
            add(kind, ("only_in_statement", None, frozenset({ln["line_id"]}), frozenset()))
    item_frame = pd.DataFrame(items, columns=["transaction_id", "effective_date", "amount_fen",
                                              "reference", "counterparty"])
    line_frame = pd.DataFrame(lines, columns=["line_id", "value_date", "amount_fen", "reference",
                                              "counterparty", "memo"])
    return Simulation(seed, period, item_frame, line_frame, expected, injected,
                      int(rng.integers(0, 10**9)))


def precision_recall(found: set[Finding], injected: set[Finding],
                     expected: set[Finding]) -> tuple[float, float]:
    """Over the injected findings: precision (of what the run reports beyond plain reference
    matches, the share that was injected) and recall (of what was injected, the share found)."""
    reported = found - (expected - injected)
    hits = len(reported & injected)
    precision = hits / len(reported) if reported else 1.0
    recall = hits / len(injected) if injected else 1.0
    return precision, recall
