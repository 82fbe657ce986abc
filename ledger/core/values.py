"""Checks of plain values that services share: a word of a vocabulary, and a required text.

Each returns the value in the form the ledger keeps, or raises ``InvalidInput`` naming the field and the rule.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from ledger.core.errors import InvalidInput

Word = TypeVar("Word", bound=StrEnum)


def one_of(value: object, vocabulary: type[Word], field: str) -> Word:
    """The vocabulary's member whose text is ``value``."""
    try:
        return vocabulary(value)
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(vocabulary)}", field=field) from None


def required_text(value: object, field: str, max_length: int) -> str:
    """Text with something in it besides spaces, at most ``max_length`` characters; kept without outer spaces."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInput(f"is required, at most {max_length} characters", field=field)
    return value.strip()
