"""Unified social credit codes and ID-card numbers, with real published examples."""

from __future__ import annotations

import pytest

from catalog.identifiers import (
    bank_account_error,
    id_check_character,
    id_number_error,
    mask_name,
    normalize_code,
    region_code_error,
    uscc_check_character,
    uscc_error,
)

#: real enterprises' codes from the public enterprise credit register
REAL_USCC = [
    "91520000214434146R",  # 贵州茅台酒股份有限公司
    "914403001922038216",  # 华为技术有限公司
    "91330100716105852F",  # 阿里巴巴(中国)有限公司
    "91350100M000100Y43",  # a widely cited example code (Fuzhou)
]


@pytest.mark.parametrize("code", REAL_USCC)
def test_real_credit_codes_are_valid(code):
    assert uscc_error(code) is None
    assert uscc_check_character(code[:17]) == code[17]


@pytest.mark.parametrize("code, fragment", [
    ("91520000214434146X", "check character"),  # last character changed
    ("91520000214434147R", "check character"),  # one digit changed
    ("9152000021443414", "18 characters"),
    ("91520000214434146R0", "18 characters"),
    ("9152000021443414IR", "without I, O"),  # I is not in the alphabet
    ("91520000214434146r", "without I, O"),  # lower case is not normalised here
    ("", "18 characters"),
])
def test_invalid_credit_codes_say_why(code, fragment):
    assert fragment in uscc_error(code)


def test_check_character_hand_worked():
    # 9*1 + 1*3 + 3*9 + 5*27 + 1*26 + M(21)*20 + 1*8 + Y(30)*30 + 4*28 = 1640; 1640 mod 31 = 28;
    # 31 - 28 = 3 -> alphabet[3] = "3"
    first17 = "91350100M000100Y4"
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(alphabet.index(c) * w for c, w in zip(first17, weights))
    assert total == 1640
    assert alphabet[(31 - total % 31) % 31] == "3" == uscc_check_character(first17)


def test_id_number_standard_example():
    # GB 11643-1999's published example
    assert id_number_error("11010519491231002X") is None
    assert id_check_character("11010519491231002") == "X"


def test_id_number_check_digit_hand_worked():
    # the standard example: weighted sum mod 11 = 2, and position 2 of "10X98765432" is X
    first17 = "11010519491231002"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights))
    assert total == 167 and total % 11 == 2 and "10X98765432"[2] == "X"


@pytest.mark.parametrize("number, fragment", [
    ("110105194912310021", "check digit"),  # X replaced by 1
    ("11010519491331002X", "not a date"),  # month 13
    ("11010518001231002X", "out of range"),  # born before 1900
    ("1101051949123100", "17 digits"),
    ("11010519491231002x", "17 digits"),  # lower-case x: normalize_code fixes it first
    ("ABCDEFGHIJKLMNOPQR", "17 digits"),
])
def test_invalid_id_numbers_say_why(number, fragment):
    assert fragment in id_number_error(number)


def test_normalize_code_fixes_common_typing():
    assert normalize_code(" 11010519491231002x ") == "11010519491231002X"
    assert id_number_error(normalize_code("110105 19491231 002x")) is None


def test_bank_accounts_and_names():
    assert bank_account_error("6217000012345678901") is None
    assert bank_account_error("6217-0000") is not None
    assert bank_account_error("1234567") is not None
    assert mask_name("王小明") == "王*明"
    assert mask_name("王明") == "王*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_name("") == ""


def test_region_codes():
    assert region_code_error("522326", "county") is None
    assert region_code_error("522326104", "township") is None
    assert region_code_error("522326104201", "village") is None
    assert region_code_error("52232610", "township") is not None
