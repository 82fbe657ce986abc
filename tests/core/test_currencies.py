"""The core's ISO 4217 table agrees with the ``iso4217`` package, code by code: the table is data kept in the
core (which imports only the standard library), and this test is how a new edition of the list is noticed."""

from __future__ import annotations

from iso4217 import Currency

from ledger.core.currencies import EXPONENTS, NO_MINOR_UNIT


def test_every_currency_with_a_minor_unit_has_its_decimal_places():
    expected = {currency.code: currency.exponent for currency in Currency if currency.exponent is not None}

    assert expected == EXPONENTS


def test_every_code_without_a_minor_unit_is_known_as_such():
    expected = {currency.code for currency in Currency if currency.exponent is None}

    assert expected == NO_MINOR_UNIT
    assert not NO_MINOR_UNIT & set(EXPONENTS)
