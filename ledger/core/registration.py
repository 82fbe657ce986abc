"""Registration numbers of organisations, validated per jurisdiction.

The check-digit arithmetic comes from python-stdnum, which keeps these algorithms for dozens of countries;
this module only decides which rule applies where, and normalises the number for storage.
"""

from __future__ import annotations

import re

from stdnum.ca import bn
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError
from stdnum.us import ein

from ledger.core.errors import JurisdictionUnknown, RegistrationNumberInvalid

JURISDICTIONS = ("CN", "US", "CA", "GB")

# Charity Commission (England & Wales: 6-7 digits), OSCR (Scotland: SC + 6 digits) and the Northern
# Ireland commission (NIC + 6 digits, or its older 100xxx series). stdnum has no rule for these.
_UK_CHARITY = re.compile(r"^(\d{6,7}|SC\d{6}|NIC\d{6})$")


def _china(number: str) -> str:
    # The 18-character unified social credit code (统一社会信用代码) with its mod-31 check character.
    return uscc.validate(number)


def _united_states(number: str) -> str:
    return ein.format(ein.validate(number))


def _canada(number: str) -> str:
    # A registered charity's number is its business number with the RR program account (BN15). stdnum knows
    # only the RC, RM, RP and RT program accounts, so it checks the 9-digit BN and this rule checks the rest.
    compact = re.sub(r"[\s-]", "", number).upper()
    if not re.fullmatch(r"\d{9}RR\d{4}", compact):
        raise ValidationError("a Canadian charity number is a 9-digit BN, RR and a 4-digit reference")
    bn.validate(compact[:9])
    return compact


def _united_kingdom(number: str) -> str:
    compact = re.sub(r"[\s-]", "", number).upper()
    if not _UK_CHARITY.match(compact):
        raise ValidationError("a UK charity number is 6-7 digits, SC + 6 digits or NIC + 6 digits")
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
    except ValidationError as error:
        raise RegistrationNumberInvalid(
            f"not a valid {jurisdiction} registration number: {error}", field="registration_number"
        ) from None


def unified_social_credit_code(first_seventeen: str) -> str:
    """Completes 17 characters with their check character (used to make valid demo and test data)."""
    return first_seventeen + uscc.calc_check_digit(first_seventeen)
