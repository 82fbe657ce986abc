"""Money: an integer number of minor units in one ISO 4217 currency.

This module owns the only number type the ledger uses for amounts. CNY 12.34 is ``Money(1234, "CNY")``.
Nothing here accepts a float: a float near money is a bug, so it is refused at the boundary rather than
rounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.core.currencies import EXPONENTS, NO_MINOR_UNIT
from ledger.core.errors import AmountInvalid, CurrencyMismatch, CurrencyUnknown

# The largest amount one posting may carry: a trillion yuan in fen fits comfortably in a signed 64-bit
# column even after cumulative totals add up years of postings (TigerBeetle's "limit everything").
MAX_AMOUNT_MINOR = 10**14

_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def currency_exponent(code: str) -> int:
    """Number of decimal places of the currency's minor unit (CNY 2, JPY 0, BHD 3)."""
    exponent = EXPONENTS.get(code) if isinstance(code, str) else None
    if exponent is not None:
        return exponent
    if isinstance(code, str) and code in NO_MINOR_UNIT:
        # Funds, precious metals and testing codes (XAU, XTS) have no minor unit and can't be booked.
        raise CurrencyUnknown(f"'{code}' has no minor unit and cannot carry money", field="currency")
    raise CurrencyUnknown(f"'{code}' is not an ISO 4217 currency code", field="currency")


def check_currency(code: object, field: str = "currency") -> str:
    """Returns the code if it names a bookable ISO 4217 currency, else raises CurrencyUnknown."""
    if isinstance(code, str) and code in EXPONENTS:  # every posting passes here: the common case first
        return code
    if not isinstance(code, str) or len(code) != 3 or not code.isupper():
        raise CurrencyUnknown("currency must be a three-letter upper-case ISO 4217 code", field=field)
    try:
        currency_exponent(code)
    except CurrencyUnknown as error:
        raise CurrencyUnknown(error.message, field=field) from None
    return code


def check_amount_minor(amount_minor: object, field: str = "amount_minor") -> int:
    """Returns the amount if it is a positive whole number of minor units within the posting limit."""
    # bool is an int subclass; True is not one fen.
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise AmountInvalid(
            f"amount must be a whole number of minor units, not {type(amount_minor).__name__}", field=field
        )
    if amount_minor <= 0:
        raise AmountInvalid("amount must be greater than zero", field=field)
    if amount_minor > MAX_AMOUNT_MINOR:
        raise AmountInvalid(f"amount must not exceed {MAX_AMOUNT_MINOR} minor units", field=field)
    return amount_minor


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money.

    amount_minor: whole minor units (fen for CNY, cents for USD); may be negative or zero for a balance.
    currency: the ISO 4217 code.
    """

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise AmountInvalid(
                f"amount must be a whole number of minor units, not {type(self.amount_minor).__name__}",
                field="amount_minor",
            )
        check_currency(self.currency)

    @classmethod
    def positive(cls, amount_minor: object, currency: object, field: str = "amount_minor") -> Money:
        """An amount to move (a gift, a grant, a posting): a positive whole number of minor units within the
        posting limit, refused naming ``field`` otherwise."""
        return cls(check_amount_minor(amount_minor, field), currency)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Reads a decimal string in major units ("12.34" CNY → 1234 fen), refusing excess precision."""
        exponent = currency_exponent(check_currency(currency))
        match = _DECIMAL.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise AmountInvalid(f"'{text}' is not a plain decimal amount", field="amount")
        fraction = match["fraction"] or ""
        if len(fraction) > exponent:
            raise AmountInvalid(
                f"{currency} has {exponent} decimal places; '{text}' has {len(fraction)}", field="amount"
            )
        return cls(int(match["whole"] + fraction.ljust(exponent, "0")), currency)

    def format(self) -> str:
        """The amount in major units as a plain decimal string (1234 CNY → "12.34")."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        digits = str(abs(self.amount_minor)).rjust(exponent + 1, "0")
        if exponent == 0:
            return sign + digits
        return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}", field="currency")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def allocate(self, weights: list[int]) -> list[Money]:
        """Splits the amount in proportion to whole-number weights, losing no minor unit.

        The remainder left by integer division goes one minor unit at a time to the parts with the largest
        fractional share, earliest first on ties (the largest-remainder method), so the parts always sum
        to the whole and the split is deterministic.
        """
        if not weights or any(not isinstance(w, int) or w < 0 for w in weights) or sum(weights) == 0:
            raise AmountInvalid("weights must be non-negative whole numbers with a positive sum", field="weights")
        total = sum(weights)
        shares = [self.amount_minor * w // total for w in weights]
        remainders = [self.amount_minor * w % total for w in weights]
        left_over = self.amount_minor - sum(shares)
        for index in sorted(range(len(weights)), key=lambda i: -remainders[i])[:left_over]:
            shares[index] += 1
        return [Money(share, self.currency) for share in shares]
