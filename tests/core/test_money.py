"""Money: the ledger's only number type for amounts (DESIGN.md §3: integer minor units, no float)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import AmountInvalid, CurrencyMismatch, CurrencyUnknown
from ledger.core.money import MAX_AMOUNT_MINOR, Money, check_amount_minor, check_currency, currency_exponent

# Currencies whose minor unit has 0, 2, 3 and 4 decimal places.
BOOKABLE_CURRENCIES = ("JPY", "CNY", "USD", "BHD", "CLF")


def refusal(error_type, call):
    """Runs ``call``, which must raise ``error_type``, and returns the error for its code and field."""
    with pytest.raises(error_type) as caught:
        call()
    return caught.value


# --- construction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [12.5, 12.0, True, False, "1234", None], ids=repr)
def test_money_refuses_an_amount_that_is_not_an_int(amount):
    error = refusal(AmountInvalid, lambda: Money(amount, "CNY"))
    assert error.code == "amount_invalid"
    assert error.field == "amount_minor"


@pytest.mark.parametrize("amount", [0, -1, 1234, 10**20])
def test_money_holds_any_whole_number_of_minor_units_because_balances_can_be_zero_or_negative(amount):
    assert Money(amount, "CNY").amount_minor == amount


@pytest.mark.parametrize("code", ["ABC", "cny", "Cny", "CN", "CNYY", "", None, 156])
def test_money_refuses_a_currency_code_iso_4217_does_not_know(code):
    error = refusal(CurrencyUnknown, lambda: Money(1, code))
    assert error.code == "currency_unknown"
    assert error.field == "currency"


@pytest.mark.parametrize("code", ["XAU", "XAG", "XTS", "XXX", "XDR"])
def test_money_refuses_a_code_without_a_minor_unit(code):
    error = refusal(CurrencyUnknown, lambda: Money(1, code))
    assert error.field == "currency"
    assert "minor unit" in error.message


def test_check_currency_names_the_field_it_is_given():
    error = refusal(CurrencyUnknown, lambda: check_currency("XAU", "postings[3].currency"))
    assert error.field == "postings[3].currency"


@pytest.mark.parametrize(("code", "exponent"), [("CNY", 2), ("USD", 2), ("JPY", 0), ("BHD", 3), ("CLF", 4)])
def test_currency_exponent_is_the_number_of_decimal_places_of_the_minor_unit(code, exponent):
    assert currency_exponent(code) == exponent


def test_money_is_immutable():
    money = Money(100, "CNY")
    with pytest.raises(AttributeError):
        money.amount_minor = 200  # type: ignore[misc]


# --- parse and format -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "amount_minor"),
    [
        ("12.34", "CNY", 1234),
        ("12.3", "CNY", 1230),
        ("12", "CNY", 1200),
        ("0.01", "CNY", 1),
        (" 7.50 ", "CNY", 750),
        ("1234", "JPY", 1234),
        ("1.234", "BHD", 1234),
        ("1.2", "BHD", 1200),
        ("0.0001", "CLF", 1),
    ],
)
def test_parse_reads_major_units_by_the_currencys_exponent(text, currency, amount_minor):
    assert Money.parse(text, currency) == Money(amount_minor, currency)


@pytest.mark.parametrize(("text", "currency"), [("12.345", "CNY"), ("1.5", "JPY"), ("1.2345", "BHD"), ("0.001", "USD")])
def test_parse_refuses_more_decimal_places_than_the_currency_has(text, currency):
    error = refusal(AmountInvalid, lambda: Money.parse(text, currency))
    assert error.field == "amount"


@pytest.mark.parametrize("text", ["", "-1", "+1", "1e3", "1,000", "12.", ".5", "1.2.3", "abc", "NaN", 12.5, 12])
def test_parse_refuses_anything_but_a_plain_non_negative_decimal_string(text):
    error = refusal(AmountInvalid, lambda: Money.parse(text, "CNY"))
    assert error.code == "amount_invalid"
    assert error.field == "amount"


def test_parse_refuses_an_unknown_currency():
    assert refusal(CurrencyUnknown, lambda: Money.parse("1.00", "XAU")).field == "currency"


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1234, "CNY"), "12.34"),
        (Money(5, "CNY"), "0.05"),
        (Money(0, "CNY"), "0.00"),
        (Money(-5, "CNY"), "-0.05"),
        (Money(-1234, "CNY"), "-12.34"),
        (Money(1234, "JPY"), "1234"),
        (Money(-7, "JPY"), "-7"),
        (Money(1234, "BHD"), "1.234"),
        (Money(1, "CLF"), "0.0001"),
    ],
)
def test_format_writes_major_units_with_every_decimal_place(money, text):
    assert money.format() == text


def test_str_shows_the_amount_and_the_currency():
    assert str(Money(1234, "CNY")) == "12.34 CNY"


@given(amount_minor=st.integers(min_value=0, max_value=10**18), currency=st.sampled_from(BOOKABLE_CURRENCIES))
def test_parse_reads_back_what_format_wrote(amount_minor, currency):
    money = Money(amount_minor, currency)
    assert Money.parse(money.format(), currency) == money


# --- arithmetic -------------------------------------------------------------------------------------------


def test_money_of_one_currency_adds_and_subtracts():
    assert Money(150, "CNY") + Money(25, "CNY") == Money(175, "CNY")
    assert Money(150, "CNY") - Money(175, "CNY") == Money(-25, "CNY")
    assert -Money(150, "CNY") == Money(-150, "CNY")


@pytest.mark.parametrize("combine", [lambda a, b: a + b, lambda a, b: a - b], ids=["add", "subtract"])
def test_combining_two_currencies_raises_currency_mismatch(combine):
    error = refusal(CurrencyMismatch, lambda: combine(Money(100, "CNY"), Money(100, "USD")))
    assert error.code == "currency_mismatch"


def test_adding_a_bare_number_to_money_is_a_programming_error():
    with pytest.raises(TypeError):
        Money(100, "CNY") + 1  # type: ignore[operator]


# --- the posting amount limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [1, 1234, MAX_AMOUNT_MINOR])
def test_check_amount_minor_accepts_a_positive_amount_within_the_limit(amount):
    assert check_amount_minor(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, -(10**6), MAX_AMOUNT_MINOR + 1, 10**30])
def test_check_amount_minor_refuses_zero_negative_and_too_large_amounts(amount):
    error = refusal(AmountInvalid, lambda: check_amount_minor(amount))
    assert error.field == "amount_minor"


@pytest.mark.parametrize("amount", [1.0, 0.5, True, "1", None], ids=repr)
def test_check_amount_minor_refuses_anything_but_an_int(amount):
    assert refusal(AmountInvalid, lambda: check_amount_minor(amount)).code == "amount_invalid"


def test_check_amount_minor_names_the_field_it_is_given():
    assert refusal(AmountInvalid, lambda: check_amount_minor(0, "postings[2].amount_minor")).field == (
        "postings[2].amount_minor")


# --- allocation -------------------------------------------------------------------------------------------

weights_lists = st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(sum)


@given(amount_minor=st.integers(min_value=-(10**15), max_value=10**15), weights=weights_lists)
def test_allocate_parts_sum_to_the_whole(amount_minor, weights):
    parts = Money(amount_minor, "CNY").allocate(weights)
    assert len(parts) == len(weights)
    assert sum(part.amount_minor for part in parts) == amount_minor
    assert all(part.currency == "CNY" for part in parts)


@given(amount_minor=st.integers(min_value=-(10**15), max_value=10**15), weights=weights_lists)
def test_allocate_gives_each_part_less_than_one_minor_unit_away_from_its_exact_share(amount_minor, weights):
    parts = Money(amount_minor, "CNY").allocate(weights)
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.amount_minor - Fraction(amount_minor * weight, total)) < 1


@given(amount_minor=st.integers(min_value=0, max_value=10**15), weights=weights_lists)
def test_allocate_gives_nothing_to_a_part_of_weight_zero(amount_minor, weights):
    parts = Money(amount_minor, "CNY").allocate(weights)
    assert all(part.amount_minor == 0 for part, weight in zip(parts, weights, strict=True) if weight == 0)


@given(amount_minor=st.integers(min_value=-(10**15), max_value=10**15), weights=weights_lists)
def test_allocate_is_deterministic(amount_minor, weights):
    money = Money(amount_minor, "CNY")
    assert money.allocate(list(weights)) == money.allocate(list(weights))


def test_allocate_gives_the_remainder_to_the_earliest_parts_on_a_tie():
    assert Money(100, "CNY").allocate([1, 1, 1]) == [Money(34, "CNY"), Money(33, "CNY"), Money(33, "CNY")]
    assert Money(101, "CNY").allocate([1, 1, 1]) == [Money(34, "CNY"), Money(34, "CNY"), Money(33, "CNY")]


def test_allocate_gives_the_remainder_to_the_largest_fractional_share_first():
    # 10 split 1:2 is 3⅓ and 6⅔: the second part's fraction is larger, so it takes the spare fen.
    assert Money(10, "CNY").allocate([1, 2]) == [Money(3, "CNY"), Money(7, "CNY")]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1, 2], [1, 0.5]], ids=repr)
def test_allocate_refuses_weights_that_cannot_split_an_amount(weights):
    assert refusal(AmountInvalid, lambda: Money(100, "CNY").allocate(weights)).field == "weights"
