"""Registration numbers of organisations, validated per jurisdiction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.ca import bn
from stdnum.cn import uscc
from stdnum.us import ein

from ledger.core.errors import RegistrationNumberInvalid
from ledger.core.registration import (
    EIN_PREFIXES,
    luhn_valid,
    normalise_registration_number,
    unified_social_credit_code,
    uscc_check_character,
)
from tests.builders import USCC_ALPHABET

# A USCC: registration authority and kind (2), region code (6 digits), organisation code (9), check (1).
# The first eight are digits; the organisation code may use the USCC alphabet.
FOUNDATION_BODY = "53510100" + "MJ0123456"

uscc_bodies = st.builds(
    str.__add__, st.text("0123456789", min_size=8, max_size=8), st.text(USCC_ALPHABET, min_size=9, max_size=9)
)


def refused(jurisdiction, number, code: str = "registration_number_invalid") -> RegistrationNumberInvalid:
    with pytest.raises(RegistrationNumberInvalid) as caught:
        normalise_registration_number(jurisdiction, number)
    assert caught.value.code == code
    return caught.value


def with_check_character(code: str, character: str) -> str:
    return code[:-1] + character


# --- China: the unified social credit code ----------------------------------------------------------------


def test_china_accepts_a_uscc_with_its_check_character():
    code = unified_social_credit_code(FOUNDATION_BODY)
    assert normalise_registration_number("CN", code) == code


@given(body=uscc_bodies)
def test_china_accepts_every_uscc_completed_by_its_check_character(body):
    code = unified_social_credit_code(body)
    assert len(code) == 18
    assert normalise_registration_number("CN", code) == code


@given(body=uscc_bodies, data=st.data())
def test_china_refuses_a_uscc_whose_check_character_is_wrong(body, data):
    code = unified_social_credit_code(body)
    wrong = data.draw(st.sampled_from([c for c in USCC_ALPHABET if c != code[-1]]))
    assert refused("CN", with_check_character(code, wrong)).field == "registration_number"


def test_china_stores_the_compact_upper_case_form():
    code = unified_social_credit_code(FOUNDATION_BODY)
    spaced = f" {code[:6]} {code[6:12]}-{code[12:]} ".lower()
    assert normalise_registration_number("CN", spaced) == code


@pytest.mark.parametrize(
    "mangle", [lambda code: code[:17], lambda code: code[:10], lambda code: code + "0"],
    ids=["17 characters", "10 characters", "19 characters"],
)
def test_china_refuses_a_uscc_of_the_wrong_length(mangle):
    assert refused("CN", mangle(unified_social_credit_code(FOUNDATION_BODY))).field == "registration_number"


def test_china_refuses_letters_the_uscc_alphabet_leaves_out():
    # I, O, S, V and Z are excluded because they are easily confused with 1, 0, 5, U and 2.
    code = unified_social_credit_code(FOUNDATION_BODY)
    assert refused("CN", code[:10] + "O" + code[11:]).field == "registration_number"


# --- United States: the employer identification number ----------------------------------------------------


@pytest.mark.parametrize("number", ["04-1234567", "041234567", " 04-1234567 "])
def test_united_states_accepts_an_ein_and_formats_it_with_a_hyphen(number):
    assert normalise_registration_number("US", number) == "04-1234567"


@pytest.mark.parametrize("number", ["00-1234567", "04-123456", "04-12345678", "AB-1234567", "04_1234567"])
def test_united_states_refuses_an_ein_of_the_wrong_shape_or_an_unknown_campus_prefix(number):
    assert refused("US", number).field == "registration_number"


# --- Canada: the charity's business number with its RR program account ------------------------------------

# 123456782 passes the Luhn check that guards the nine-digit business number.
CANADIAN_BN9 = "123456782"


@pytest.mark.parametrize("number", [CANADIAN_BN9 + "RR0001", "12345 6782 RR 0001"])
def test_canada_accepts_a_bn15_with_the_rr_program_account(number):
    assert normalise_registration_number("CA", number) == CANADIAN_BN9 + "RR0001"


@pytest.mark.parametrize(
    "number",
    [
        CANADIAN_BN9,  # a business number without the charity program account
        CANADIAN_BN9 + "RC0001",  # the corporate income tax account, not the charity one
        "123456783RR0001",  # Luhn check fails
        CANADIAN_BN9 + "RR001",  # program account number too short
    ],
)
def test_canada_refuses_anything_but_a_valid_bn15_with_rr(number):
    assert refused("CA", number).field == "registration_number"


# --- United Kingdom: charity commission numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "canonical"),
    [("1234567", "1234567"), ("123456", "123456"), ("SC012345", "SC012345"), ("sc 012345", "SC012345"),
     ("NIC100002", "NIC100002"), ("nic-100002", "NIC100002")],
)
def test_united_kingdom_accepts_england_scotland_and_northern_ireland_numbers(number, canonical):
    assert normalise_registration_number("GB", number) == canonical


@pytest.mark.parametrize("number", ["12345", "12345678", "SC01234", "SC0123456", "NI100002", "AB123456"])
def test_united_kingdom_refuses_other_shapes(number):
    assert refused("GB", number).field == "registration_number"


# --- every jurisdiction ------------------------------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", ["FR", "cn", "", None])
def test_an_unknown_jurisdiction_is_refused_naming_the_jurisdiction(jurisdiction):
    assert refused(jurisdiction, "1234567", code="jurisdiction_unknown").field == "jurisdiction"


@pytest.mark.parametrize("jurisdiction", ["CN", "US", "CA", "GB"])
@pytest.mark.parametrize("number", ["", "   ", None])
def test_a_missing_number_is_refused_naming_the_registration_number(jurisdiction, number):
    assert refused(jurisdiction, number).field == "registration_number"


# --- the rules against python-stdnum, which the core does not import but is checked against -------------------

def _accepts(jurisdiction: str, number: str) -> bool:
    try:
        normalise_registration_number(jurisdiction, number)
    except RegistrationNumberInvalid:
        return False
    return True


@given(uscc_bodies)
def test_the_uscc_check_character_is_python_stdnums(body):
    assert uscc_check_character(body) == uscc.calc_check_digit(body)


@given(st.text("0123456789ABCDEFGHJKLMNPQRTUWXY IOZSV-", min_size=16, max_size=20))
def test_a_uscc_is_accepted_exactly_when_python_stdnum_accepts_it(number):
    assert _accepts("CN", number) == uscc.is_valid(number)


def test_the_ein_prefixes_are_python_stdnums_campuses():
    valid = {f"{prefix:02d}" for prefix in range(100) if ein.is_valid(f"{prefix:02d}1234567")}

    assert valid == EIN_PREFIXES


@given(st.text("0123456789-", min_size=8, max_size=11))
def test_an_ein_is_accepted_exactly_when_python_stdnum_accepts_it(number):
    assert _accepts("US", number) == ein.is_valid(number)


@given(st.text("0123456789", min_size=9, max_size=9))
def test_the_business_number_check_digit_is_python_stdnums(digits):
    assert luhn_valid(digits) == bn.is_valid(digits)
