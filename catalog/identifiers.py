"""Validation of Chinese identifiers (pure functions).

- Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters from
  0-9 A-H J-N P-R T-U W-Y (no I, O, Z, S, V); the last is a check character computed MOD 31
  over the first 17 with weights 3^i mod 31.
- Resident identity card number (居民身份证号码), GB 11643-1999: 17 digits and a check
  character (0-9 or X) by ISO 7064 MOD 11-2; digits 7-14 are the birth date.
- Administrative region codes, GB/T 2260 (6 digits) and the statistical codes below county
  (9 digits for townships, 12 for villages).
"""

from __future__ import annotations

import datetime as dt
import re

from ecovalue.clock import local_today

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_error(code: str) -> str | None:
    """None if `code` is a valid unified social credit code, else why it is not."""
    if not isinstance(code, str) or len(code) != 18:
        return "a unified social credit code has 18 characters"
    if not _USCC_RE.match(code):
        return "a unified social credit code uses only 0-9 and A-Y without I, O, S, V, Z"
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]!r} but should be {expected!r}"
    return None


def id_check_character(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_number_error(number: str) -> str | None:
    """None if `number` is a valid 18-digit resident ID number, else why it is not."""
    if not isinstance(number, str) or not _ID_RE.match(number):
        return "an ID-card number has 17 digits and a check digit (0-9 or X)"
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return "the birth date inside the ID-card number is not a date"
    if not dt.date(1900, 1, 1) <= birth <= local_today():
        return "the birth date inside the ID-card number is out of range"
    if number[17] != id_check_character(number[:17]):
        return "the check digit of the ID-card number is wrong"
    return None


REGION_LEVELS = {"province": 6, "prefecture": 6, "county": 6, "township": 9, "village": 12}


def region_code_error(code: str, level: str) -> str | None:
    digits = REGION_LEVELS.get(level)
    if digits is None:
        return f"unknown region level {level!r}"
    if not isinstance(code, str) or not re.fullmatch(rf"\d{{{digits}}}", code):
        return f"a {level} code has {digits} digits"
    return None


def normalize_code(value: str) -> str:
    """Credit codes and ID numbers as people type them: trimmed, inner spaces removed, upper
    case (a lower-case x check digit is common)."""
    return "".join(str(value).split()).upper()


_ACCOUNT_RE = re.compile(r"^\d{8,30}$")


def bank_account_error(account: str) -> str | None:
    """None if `account` looks like a bank account or card number (8-30 digits)."""
    if not isinstance(account, str) or not _ACCOUNT_RE.match(account):
        return "a bank account number has 8 to 30 digits"
    return None


def mask_name(name: str | None) -> str | None:
    """A person's name with the middle hidden: 王小明 -> 王*明, 王明 -> 王*, Li Ming -> L******g."""
    if not name:
        return name
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
