"""The languages the pages and the donors' emails are written in, and how they write an amount."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from babel.numbers import format_currency
from flask_babel import get_locale

from ledger.core.money import currency_exponent

# The URL's spelling of each language (BCP 47, as in <html lang>), and Babel's locale for it.
LANGUAGES = {"zh-CN": "zh_Hans_CN", "en": "en"}


def percent(share: Fraction | None) -> str | None:
    """A share as a percentage with two decimals, rounded half-even, computed exactly (never a float)."""
    if share is None:
        return None
    return str((Decimal(share.numerator) * 100 / Decimal(share.denominator)).quantize(Decimal("0.01")))


def money(amount_minor: int, currency: str) -> str:
    """An amount as the current language writes it (¥100.00; CN¥100.00 in English), from whole minor units."""
    return _written(amount_minor, currency, str(get_locale()))


@lru_cache(maxsize=8192)
def _written(amount_minor: int, currency: str, locale: str) -> str:
    # Babel's formatting is exact but slow (a fund's page writes fifty amounts, many of them the same): each amount
    # is worked out once per language.
    return format_currency(Decimal(amount_minor).scaleb(-currency_exponent(currency)), currency, locale=locale)
