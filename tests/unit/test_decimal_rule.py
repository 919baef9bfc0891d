"""docs/bson_types.md states where a Decimal128 lands with examples; the code places each of them so."""

from __future__ import annotations

import re
from decimal import Decimal

from ingestion.mongo.bson_types import decimal_fits
from tests.conftest import REPO


def _rule_row() -> str:
    return next(line for line in (REPO / "docs" / "bson_types.md").read_text().splitlines() if line.startswith("| Decimal128 |"))


def test_the_documented_examples_are_placed_as_documented():
    row = _rule_row()
    fits_part, _, other_part = row.partition("any other value")
    fitting = re.findall(r"`(-?[0-9][0-9.E+-]*)`", fits_part)
    other = re.findall(r"`(-?[0-9][0-9.E+-]*|NaN)`", other_part.split("goes to")[0])
    assert {"0.00123400000", "0E+6111", "-0", "1E+28"} <= set(fitting), fitting
    assert {"0.0000000011", "1E+29"} <= set(other), other
    assert [text for text in fitting if not decimal_fits(Decimal(text))] == []
    assert [text for text in other if decimal_fits(Decimal(text))] == []


def test_the_rule_at_its_edges():
    assert decimal_fits(Decimal("99999999999999999999999999999.999999999"))  # 29 + 9 digits
    assert not decimal_fits(Decimal("100000000000000000000000000000"))  # 30 integer digits
    assert decimal_fits(Decimal("0.000000001")) and not decimal_fits(Decimal("0.0000000001"))
    assert decimal_fits(Decimal("1.500000000000000000000"))  # zeros past the 9th place are the same number
    assert not decimal_fits(Decimal("Infinity")) and not decimal_fits(Decimal("NaN"))
