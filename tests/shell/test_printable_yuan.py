"""The house's one rendering of fen as yuan (ecovalue.printable), plain and grouped."""

import pytest

from ecovalue.printable import yuan, yuan_grouped


@pytest.mark.parametrize(("fen", "plain", "grouped"), [
    (0, "0.00", "0.00"), (5, "0.05", "0.05"), (-5, "-0.05", "-0.05"),
    (123_456, "1234.56", "1,234.56"), (-123_456_789, "-1234567.89", "-1,234,567.89"),
    (2**63 - 1, "92233720368547758.07", "92,233,720,368,547,758.07")])
def test_fen_as_yuan_exactly(fen, plain, grouped):
    assert yuan(fen) == plain and yuan_grouped(fen) == grouped == yuan(fen, grouped=True)
