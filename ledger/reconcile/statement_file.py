"""Reading a bank or treasury statement file (pure: bytes in, lines and problems out).

The file goes through the shell's one reader (`ecovalue.spreadsheet`: CSV in UTF-8 or GBK, or
XLSX). Columns are recognised by the canonical field names, their usual Chinese and English
headers (`ALIASES`), and the headers a bank's saved mapping adds. Amounts are yuan with at most
two decimals (`1,234.56`, `¥1234.5`, `(15.00)` for a payment out), read exactly into fen; a
statement has either one signed amount column or a money-in (贷方/收入) and a money-out
(借方/支出) column.

Balances: the opening and closing balance come from the import request, else from rows
marked 期初余额/期末余额 (opening/closing balance), else from the running balance column (the
first line's balance less its amount, the last line's balance). Every problem of the file is
collected (`Problem`), like a compiler: unknown columns, an unreadable encoding, missing
columns, bad dates or amounts, dates outside the month, duplicated lines (a bank serial twice,
or a line repeated exactly), a running balance that does not follow, and a closing balance
that does not follow from the opening balance and the lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ecovalue import spreadsheet
from ecovalue.printable import yuan_grouped as _yuan

#: canonical field -> headers banks use for it (compared without case, spaces, width)
ALIASES: dict[str, tuple[str, ...]] = {
    "value_date": ("交易日期", "记账日期", "日期", "入账日期", "date", "value date",
                   "booking date"),
    "amount": ("金额", "发生额", "交易金额", "amount", "amount_yuan"),
    "credit": ("贷方金额", "贷方发生额", "收入", "收入金额", "credit", "money in"),
    "debit": ("借方金额", "借方发生额", "支出", "支出金额", "debit", "money out"),
    "balance": ("余额", "账户余额", "balance"),
    "bank_serial": ("流水号", "交易流水号", "银行流水号", "serial", "bank serial"),
    "reference": ("附言", "用途", "参考号", "业务参考号", "reference", "ref"),
    "counterparty": ("对方户名", "对方名称", "对方账户名称", "对方单位", "counterparty",
                     "payer", "payee"),
    "memo": ("摘要", "备注", "memo", "description"),
    "transaction_id": ("账本交易号", "ledger transaction", "ledger transaction id"),
}
FIELDS = tuple(ALIASES)
#: the words of a row that states a balance instead of a movement
OPENING_WORDS = ("期初余额", "上期余额", "承前页", "opening balance")
CLOSING_WORDS = ("期末余额", "本期余额", "closing balance")
MAX_LINES = 200_000
MAX_TEXT = {"bank_serial": 100, "reference": 200, "counterparty": 200, "memo": 500}
_AMOUNT = re.compile(r"^(-)?(\d+)(?:\.(\d{1,2}))?$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A bad line or a problem of the whole file (`row` 0)."""

    row: int
    field: str
    code: str
    message: str

    def as_error(self) -> dict[str, Any]:
        return {"location": "file", "row": self.row, "field": self.field, "code": self.code,
                "message": self.message}


@dataclasses.dataclass(frozen=True)
class Line:
    row: int
    value_date: dt.date
    amount_fen: int
    balance_fen: int | None
    bank_serial: str | None
    reference: str | None
    transaction_id: int | None
    counterparty: str | None
    memo: str | None
    fingerprint: str


@dataclasses.dataclass
class ParsedStatement:
    format: str
    encoding: str
    rows_read: int
    lines: list[Line]
    opening_balance_fen: int | None
    closing_balance_fen: int | None
    problems: list[Problem]


def aliases_with(mapping: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """The default aliases plus a bank's own headers (which take precedence)."""
    merged: dict[str, tuple[str, ...]] = {}
    for field in FIELDS:
        own = tuple((mapping or {}).get(field, ()))
        merged[field] = own + ALIASES[field]
    return merged


def validate_mapping(columns: Any) -> list[dict[str, str]]:
    """Errors of a bank's column mapping: {field: [header, ...]} with known fields."""
    errors = []
    if not isinstance(columns, dict) or not columns:
        return [{"location": "json", "field": "columns",
                 "message": "an object: canonical field -> list of header texts"}]
    for field, headers in columns.items():
        if field not in ALIASES:
            errors.append({"location": "json", "field": f"columns.{field}",
                           "message": f"not a field; one of {', '.join(FIELDS)}"})
        elif not isinstance(headers, list) or not headers or not all(
                isinstance(h, str) and 0 < len(h.strip()) <= 100 for h in headers) \
                or len(headers) > 20:
            errors.append({"location": "json", "field": f"columns.{field}",
                           "message": "a list of 1 to 20 header texts of 1 to 100 characters"})
    return errors


def parse_yuan(value: Any) -> int | None:
    """Fen from a yuan amount as a cell holds it; None when it is not one (more than two
    decimals, text that is no number). Parentheses or a trailing minus mean negative."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 100
    if isinstance(value, float | Decimal):
        try:
            exact = Decimal(str(value)) if isinstance(value, float) else value
        except InvalidOperation:
            return None
        if not exact.is_finite() or exact != exact.quantize(Decimal("0.01")):
            return None
        return int(exact * 100)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = text.replace(",", "").replace("¥", "").replace("￥", "").replace("元", "")
    text = text.replace(" ", "")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.endswith("-"):
        negative, text = True, text[:-1]
    if text.startswith("+"):
        text = text[1:]
    match = _AMOUNT.match(text)
    if not match:
        return None
    fen = int(match[2]) * 100 + int((match[3] or "0").ljust(2, "0"))
    return -fen if negative != bool(match[1]) else fen


def parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = text.split(" ")[0].split("T")[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:MAX_TEXT[field]] or None if field in MAX_TEXT else text or None


def month_end(period: dt.date) -> dt.date:
    if period.month == 12:  # also for December 9999, whose next month does not exist
        return period.replace(day=31)
    return period.replace(month=period.month + 1, day=1) - dt.timedelta(days=1)


EARLIEST_PERIOD = dt.date(1990, 1, 1)


def period_problem(period: dt.date, today: dt.date) -> str | None:
    """Why a month cannot be reconciled: before 1990, or not begun yet."""
    if period < EARLIEST_PERIOD:
        return "a month from 1990-01 on"
    if period > today.replace(day=1):
        return "a month that has begun (not in the future)"
    return None


def _fingerprint(parts: Sequence[Any]) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts)
                          .encode()).hexdigest()




def parse_statement(data: bytes, *, period: dt.date,
                    mapping: Mapping[str, Sequence[str]] | None = None,
                    opening_balance_fen: int | None = None,
                    closing_balance_fen: int | None = None,
                    max_lines: int = MAX_LINES) -> ParsedStatement:
    """Every line of a statement file for the month starting `period`, with every problem."""
    problems: list[Problem] = []
    try:
        sheet = spreadsheet.read_spreadsheet(data, aliases_with(mapping),
                                             required=("value_date",), max_rows=max_lines)
    except spreadsheet.TooManyRows as exc:
        return ParsedStatement("", "", 0, [], None, None, [Problem(
            0, "file", "too-many-lines", f"more than {exc.limit} lines: split the statement")])
    except spreadsheet.NotASpreadsheet as exc:
        return ParsedStatement("", "", 0, [], None, None, [Problem(
            0, "file", "encoding", f"{exc.message} (statements are CSV in UTF-8 or GBK, or "
            "XLSX)")])
    except spreadsheet.SpreadsheetError as exc:
        return ParsedStatement("", "", 0, [], None, None,
                               [Problem(0, "file", "empty", exc.message)])
    for header in sheet.ignored:
        problems.append(Problem(sheet.header_row, header, "unknown-column",
                                f"column {header!r} is not a statement field: remove it, or "
                                "save it in the bank's column mapping"))
    for header, field in sheet.duplicates:
        problems.append(Problem(sheet.header_row, header, "duplicate-column",
                                f"column {header!r} names {field} a second time"))
    for field in sheet.missing:
        problems.append(Problem(sheet.header_row, field, "missing-column",
                                f"no column for {field}"))
    has_amount = "amount" in sheet.headers
    has_sides = "credit" in sheet.headers or "debit" in sheet.headers
    if not has_amount and not has_sides:
        problems.append(Problem(sheet.header_row, "amount", "missing-column",
                                "no amount column (one signed amount, or money in 贷方/收入 and "
                                "money out 借方/支出)"))
    elif has_amount and has_sides:
        problems.append(Problem(sheet.header_row, "amount", "ambiguous-columns",
                                "both a signed amount and debit/credit columns: keep one form"))
    for error in sheet.errors:
        problems.append(Problem(error.row, "row", "unreadable", error.message))

    first, last = period, month_end(period)
    lines: list[Line] = []
    stated_opening = stated_closing = None
    serials: dict[str, int] = {}
    contents: dict[tuple, int] = {}
    occurrences: Counter[tuple] = Counter()
    structural = bool(problems) and any(p.code in ("missing-column", "ambiguous-columns")
                                        for p in problems)
    for number, cells in ([] if structural else sheet.rows()):
        words = " ".join(str(cells.get(f) or "") for f in ("memo", "reference", "counterparty"))
        folded = unicodedata.normalize("NFKC", words).casefold()
        balance_cell = cells.get("balance")
        if any(w in folded for w in OPENING_WORDS) or any(w in folded for w in CLOSING_WORDS):
            value = parse_yuan(balance_cell if balance_cell is not None
                               else cells.get("amount") or cells.get("credit"))
            if value is None:
                problems.append(Problem(number, "balance", "invalid-amount",
                                        "a balance row needs its balance in yuan"))
            elif any(w in folded for w in OPENING_WORDS):
                stated_opening = value
            else:
                stated_closing = value
            continue
        day = parse_date(cells.get("value_date")) if cells.get("value_date") is not None \
            else None
        if cells.get("value_date") is None:
            problems.append(Problem(number, "value_date", "required", "no date"))
        elif day is None:
            problems.append(Problem(number, "value_date", "invalid-date",
                                    f"{cells.get('value_date')!r} is not a date (2026-11-05)"))
        elif not first <= day <= last:
            problems.append(Problem(number, "value_date", "date-outside-period",
                                    f"{day.isoformat()} is outside {first:%Y-%m} "
                                    f"({first.isoformat()} to {last.isoformat()})"))
        amount = _amount(cells, number, has_amount, problems)
        balance = None
        if balance_cell is not None:
            balance = parse_yuan(balance_cell)
            if balance is None:
                problems.append(Problem(number, "balance", "invalid-amount",
                                        f"{balance_cell!r} is not an amount in yuan"))
        tx_cell = cells.get("transaction_id")
        tx_id = None
        if tx_cell is not None:
            text = str(tx_cell).strip().removeprefix("EV-").removeprefix("EV")
            if text.isdigit() and len(text) <= 18:
                tx_id = int(text)
            else:
                problems.append(Problem(number, "transaction_id", "invalid-id",
                                        f"{tx_cell!r} is not a ledger transaction id"))
        values = {f: _text(cells.get(f), f) for f in MAX_TEXT}
        for field, limit in MAX_TEXT.items():
            if cells.get(field) is not None and len(str(cells[field]).strip()) > limit:
                problems.append(Problem(number, field, "too-long",
                                        f"more than {limit} characters"))
        serial = values["bank_serial"]
        if serial is not None:
            if serial in serials:
                problems.append(Problem(number, "bank_serial", "duplicate-line",
                                        f"serial {serial} is also row {serials[serial]}"))
            serials.setdefault(serial, number)
        if day is None or amount is None:
            continue
        content = (day.isoformat(), amount, values["reference"], values["counterparty"],
                   values["memo"], tx_id)
        if serial is None:
            if content in contents:
                problems.append(Problem(number, "row", "duplicate-line",
                                        f"the same line as row {contents[content]} (give "
                                        "each line its bank serial if both are real)"))
            contents.setdefault(content, number)
        occurrences[content] += 1
        fingerprint = _fingerprint(("serial", serial) if serial is not None else
                                   ("line", *content, occurrences[content]))
        lines.append(Line(number, day, amount, balance, serial, values["reference"], tx_id,
                          values["counterparty"], values["memo"], fingerprint))
    opening, closing = _balances(lines, opening_balance_fen, closing_balance_fen,
                                 stated_opening, stated_closing, problems)
    return ParsedStatement(sheet.format, sheet.encoding, len(sheet), lines, opening, closing,
                           problems)


def _amount(cells: Mapping[str, Any], number: int, has_amount: bool,
            problems: list[Problem]) -> int | None:
    if has_amount:
        raw = cells.get("amount")
        if raw is None:
            problems.append(Problem(number, "amount", "required", "no amount"))
            return None
        value = parse_yuan(raw)
        if value is None or value == 0:
            problems.append(Problem(number, "amount", "invalid-amount",
                                    f"{raw!r} is not a non-zero amount in yuan (two decimals "
                                    "at most)"))
            return None
        return value
    credit, debit = cells.get("credit"), cells.get("debit")
    parsed = {}
    for field, raw in (("credit", credit), ("debit", debit)):
        if raw is None:
            continue
        value = parse_yuan(raw)
        if value is None or value < 0:
            problems.append(Problem(number, field, "invalid-amount",
                                    f"{raw!r} is not a positive amount in yuan"))
            return None
        if value:
            parsed[field] = value
    if len(parsed) != 1:
        problems.append(Problem(number, "amount", "invalid-amount",
                                "exactly one of money in (credit) and money out (debit)"))
        return None
    return parsed.get("credit", 0) - parsed.get("debit", 0)


def _balances(lines: list[Line], opening: int | None, closing: int | None,
              stated_opening: int | None, stated_closing: int | None,
              problems: list[Problem]) -> tuple[int | None, int | None]:
    with_balance = [ln for ln in lines if ln.balance_fen is not None]
    running_opening = running_closing = None
    if lines and len(with_balance) == len(lines):
        running_opening = lines[0].balance_fen - lines[0].amount_fen  # type: ignore[operator]
        running_closing = lines[-1].balance_fen
        running = running_opening
        for ln in lines:
            running += ln.amount_fen
            if ln.balance_fen != running:
                problems.append(Problem(ln.row, "balance", "balance-mismatch",
                                        f"the balance {_yuan(ln.balance_fen or 0)} does not "
                                        f"follow from the line before ({_yuan(running)} "
                                        "expected)"))
                break
    opening = next((v for v in (opening, stated_opening, running_opening) if v is not None),
                   None)
    closing = next((v for v in (closing, stated_closing, running_closing) if v is not None),
                   None)
    if opening is None:
        problems.append(Problem(0, "opening_balance_fen", "missing-balance",
                                "no opening balance: give it with the import, a 期初余额 row, "
                                "or a balance column"))
    if closing is None:
        problems.append(Problem(0, "closing_balance_fen", "missing-balance",
                                "no closing balance: give it with the import, a 期末余额 row, "
                                "or a balance column"))
    return opening, closing


def closing_problem(opening: int, closing: int, amounts: Sequence[int]) -> Problem | None:
    """The closing balance must be the opening balance plus every line (of the whole month:
    the lines already held and the new ones)."""
    expected = opening + sum(amounts)
    if expected == closing:
        return None
    return Problem(0, "closing_balance_fen", "closing-balance",
                   f"the closing balance {_yuan(closing)} does not follow from the opening "
                   f"balance {_yuan(opening)} and the {len(amounts)} lines "
                   f"({_yuan(expected)}, a difference of {_yuan(closing - expected)})")
