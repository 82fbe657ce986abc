"""Registration numbers of organisations, validated per jurisdiction and normalised for storage.

The check-digit rules are written here, in a few lines each, rather than taken from python-stdnum, because the
core imports only the standard library. python-stdnum stays the reference: ``tests/core/test_registration.py``
checks these rules against it on thousands of generated numbers (and every EIN prefix), so a difference shows up
as a failing test.
"""

from __future__ import annotations

import re

from ledger.core.errors import JurisdictionUnknown, RegistrationNumberInvalid

JURISDICTIONS = ("CN", "US", "CA", "GB")

# The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters from this alphabet, which leaves
# out I, O, Z, S and V; the 18th is a mod-31 check character over the first 17 with these weights.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# The IRS's valid EIN prefixes (the campus that assigned the number), as published at irs.gov "How EINs are
# assigned and valid EIN prefixes".
EIN_PREFIXES = frozenset(
    "01 02 03 04 05 06 10 11 12 13 14 15 16 20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37 38 39 40 41 42 43 "
    "44 45 46 47 48 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 71 72 73 74 75 76 77 80 81 82 83 "
    "84 85 86 87 88 90 91 92 93 94 95 98 99".split())

# Charity Commission (England & Wales: 6-7 digits), OSCR (Scotland: SC + 6 digits) and the Northern
# Ireland commission (NIC + 6 digits).
_UK_CHARITY = re.compile(r"([0-9]{6,7}|SC[0-9]{6}|NIC[0-9]{6})")


class _Invalid(ValueError):
    """A number that breaks its jurisdiction's rule; the message says which part."""


def _compact(number: str) -> str:
    """Without spaces and hyphens, upper case: the form numbers are stored in."""
    return re.sub(r"[\s-]", "", number).upper()


def uscc_check_character(first_seventeen: str) -> str:
    """The check character that completes the first 17 characters of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(character) * weight
                for character, weight in zip(first_seventeen, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total) % 31]


def unified_social_credit_code(first_seventeen: str) -> str:
    """Completes 17 characters with their check character (used to make valid demo and test data)."""
    return first_seventeen + uscc_check_character(first_seventeen)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check that Canada's business numbers carry in their ninth digit."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = int(digit) * (2 if position % 2 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _china(number: str) -> str:
    compact = _compact(number)
    if len(compact) != 18:
        raise _Invalid("a unified social credit code has 18 characters")
    if not compact[:8].isdigit() or not compact[:8].isascii():
        raise _Invalid("its first 8 characters are digits")
    if any(character not in USCC_ALPHABET for character in compact[8:]):
        raise _Invalid(f"its characters come from {USCC_ALPHABET}")
    if compact[-1] != uscc_check_character(compact[:17]):
        raise _Invalid("its check character does not match")
    return compact


def _united_states(number: str) -> str:
    found = re.fullmatch(r"(?P<prefix>[0-9]{2})-?(?P<serial>[0-9]{7})", number)
    if found is None:
        raise _Invalid("an EIN is 9 digits, written 12-3456789")
    if found["prefix"] not in EIN_PREFIXES:
        raise _Invalid(f"{found['prefix']} is not a prefix the IRS assigns")
    return f"{found['prefix']}-{found['serial']}"


def _canada(number: str) -> str:
    # A registered charity's number is its business number with the RR program account (BN15).
    compact = _compact(number)
    if not re.fullmatch(r"[0-9]{9}RR[0-9]{4}", compact):
        raise _Invalid("a Canadian charity number is a 9-digit BN, RR and a 4-digit reference")
    if not luhn_valid(compact[:9]):
        raise _Invalid("the business number's check digit does not match")
    return compact


def _united_kingdom(number: str) -> str:
    compact = _compact(number)
    if not _UK_CHARITY.fullmatch(compact):
        raise _Invalid("a UK charity number is 6-7 digits, SC + 6 digits or NIC + 6 digits")
    return compact


_RULES = {"CN": _china, "US": _united_states, "CA": _canada, "GB": _united_kingdom}


def normalise_registration_number(jurisdiction: str, number: str) -> str:
    """Returns the number in its canonical form, or raises RegistrationNumberInvalid naming the rule."""
    rule = _RULES.get(jurisdiction)
    if rule is None:
        raise JurisdictionUnknown(f"jurisdiction must be one of {', '.join(JURISDICTIONS)}", field="jurisdiction")
    if not isinstance(number, str) or not number.strip():
        raise RegistrationNumberInvalid("registration number is required", field="registration_number")
    try:
        return rule(number.strip())
    except _Invalid as error:
        raise RegistrationNumberInvalid(
            f"not a valid {jurisdiction} registration number: {error}", field="registration_number") from None
