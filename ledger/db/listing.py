"""Reading rows: one row of an organisation (with its chart's version, for a write that posts), or a keyset
page of many.

Keyset pagination orders a page by id and starts the next page after the last id seen. Unlike an offset, it
costs the same on page 1 and page 10,000 and never skips or repeats a row inserted meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput, NotFound
from ledger.db.models import Organisation

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class Page:
    """items: at most a page of rows, in id order; next_after: the id to pass as ``after`` for the next page,
    None on the last one."""

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


def get_owned(session: Session, model: type[Row], organisation_id: int, row_id: int, noun: str) -> Row:
    """The organisation's ``model`` row with this id. Another organisation's row is as unknown as a missing
    one: NotFound either way, naming the field ``<noun>_id``."""
    row = session.get(model, row_id)
    if row is None or row.organisation_id != organisation_id:
        raise NotFound(f"{noun} {row_id} does not exist", field=f"{noun}_id")
    return row


class OwnedRow(NamedTuple):
    """A row of an organisation, and the version of that organisation's chart, read together."""

    row: Any
    chart_version: int


def get_owned_with_chart(session: Session, model: type, organisation_id: int, row_id: int, noun: str, *,
                         for_update: bool = False) -> OwnedRow:
    """``get_owned``, and in the same read the organisation's chart version, which a write that posts needs to
    know whether its cached chart is current (``ledger.books.charts.load_chart``). ``for_update`` locks the row
    (not the organisation's) until the transaction ends, and reads it afresh."""
    query = (select(model, Organisation.chart_version).join(Organisation, Organisation.id == model.organisation_id)
             .where(model.id == row_id))
    if for_update:
        query = query.with_for_update(of=model).execution_options(populate_existing=True)
    found = session.execute(query).first()
    if found is None or found[0].organisation_id != organisation_id:
        raise NotFound(f"{noun} {row_id} does not exist", field=f"{noun}_id")
    return OwnedRow(*found)
