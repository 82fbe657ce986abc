"""Keyset pagination: pages ordered by id, the next page starting after the last id seen. Unlike an
offset, it costs the same on page 1 and page 10,000 and never skips or repeats a row inserted meanwhile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_after: int | None


def check_limit(limit: object) -> int:
    if not (isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_PAGE_SIZE):
        raise InvalidInput(f"must be between 1 and {MAX_PAGE_SIZE}", field="limit")
    return limit


def keyset_page(session: Session, query: Select, id_column, after: int | None, limit: int) -> Page:
    """The rows of ``query`` with an id above ``after``, at most ``limit`` of them, in id order."""
    check_limit(limit)
    if after is not None:
        query = query.where(id_column > after)
    rows = session.scalars(query.order_by(id_column).limit(limit + 1)).all()
    return Page(list(rows[:limit]), rows[limit - 1].id if len(rows) > limit else None)
