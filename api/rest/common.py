"""What the resources share: the amount field, list pages, the problem schema documented on every route,
and CSV answers for lists and statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import flask_smorest
from flask import request
from flask_smorest.utils import resolve_schema_instance
from marshmallow import Schema, ValidationError, fields, validate

from api.edge.csv_export import CSV as CSV
from api.edge.csv_export import csv_response as csv_response

# The problem documents are the edge's (the webhooks document them too); the resources take them from here.
from api.edge.documented import PROBLEMS as PROBLEMS
from api.edge.documented import ProblemSchema as ProblemSchema
from api.edge.documented import documents_problems as documents_problems
from api.edge.session import database, read_session
from ledger.core.money import MAX_AMOUNT_MINOR
from ledger.db.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

MAX_ID = 2**63 - 1  # ids are BIGINT on PostgreSQL, INTEGER (64-bit) on SQLite


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, which also tells a write view's ``@perform`` (under its ``@blp.response``) the
    status and schema the view declares: the write dumps its answer with that schema inside its transaction,
    where the answer is audited and kept for retries."""

    def response(self, status_code, schema=None, **kwargs):
        document = super().response(status_code, schema, **kwargs)

        def decorator(view):
            declare_answer = getattr(view, "declare_answer", None)
            if declare_answer is not None:
                declare_answer(status_code, resolve_schema_instance(schema) if schema is not None else None)
            return document(view)

        return decorator


class MinorUnits(fields.Integer):
    """A positive whole number of minor units (fen for CNY). JSON floats, strings and booleans are refused:
    an amount is never guessed from 12.5, "1250" or true."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("validate", validate.Range(min=1, max=MAX_AMOUNT_MINOR))
        kwargs.setdefault("metadata", {"description": f"whole minor units, 1 to {MAX_AMOUNT_MINOR}"})
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        return super()._validated(value)


def object_id(**kwargs) -> fields.Integer:
    """An object's id (ids are positive 64-bit integers): a number no id can be is refused with a 422 rather
    than sent to the database, which cannot hold it (SQLite raises OverflowError)."""
    return fields.Integer(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def storable(value: str) -> None:
    """Text both engines can store: PostgreSQL refuses NUL (U+0000), and half a surrogate pair is not UTF-8.
    Refused here (422, naming the field) rather than by the database (500)."""
    if "\x00" in value:
        raise ValidationError("must not contain the NUL character (U+0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError("must be valid Unicode (a lone surrogate is not)") from None


def text(max_length: int, required: bool = False, **kwargs) -> fields.String:
    if required:
        return fields.String(required=True, validate=[validate.Length(min=1, max=max_length), storable], **kwargs)
    return fields.String(load_default="", validate=[validate.Length(max=max_length), storable], **kwargs)


class PageQuerySchema(Schema):
    after = fields.Integer(validate=validate.Range(min=0, max=MAX_ID),
                           metadata={"description": "The last id of the page before"})
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item), required=True),
        "next_after": fields.Integer(allow_none=True, required=True,
                                     metadata={"description": "Pass as `after` for the next page; null at the end"}),
    }, name=name)


def today() -> dt.date:
    """The date a write takes when the request names none: today in UTC."""
    return dt.datetime.now(dt.UTC).date()


def wants_csv() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", CSV])
    return best == CSV


def every_row(fetch: Callable[..., Page], after: int | None,
              dump: Callable[[list], list[dict]]) -> Iterator[dict]:
    """Every row a list's filters select, from ``after`` on, page after page of the largest size: a CSV export
    is whole, whatever ``limit`` says, in constant memory. ``fetch(session, after)`` reads a page; each page is
    read in a short transaction of its own, so a slow download holds no connection while the client reads."""
    while True:
        with database().read() as session:
            page = fetch(session, after)
            rows = dump(page.items)
        yield from rows
        if page.next_after is None:
            return
        after = page.next_after


def page_or_csv(fetch: Callable[..., Page], query: dict, schema: type[Schema], filename: str):
    """A list's answer: the page asked for, or with ``Accept: text/csv`` every row from ``after`` on
    (``every_row``), the schema's fields as the columns."""
    if wants_csv():
        return csv_response(every_row(fetch, query.get("after"), schema(many=True).dump), list(schema().fields),
                            filename)
    return fetch(read_session(), query.get("after"), query["limit"])


# The status is an int, as @blp.response keys it: with "200" this would replace the JSON answer's documentation
# instead of adding the CSV one to it.
CSV_DOC = {"responses": {200: {"content": {CSV: {"schema": {"type": "string"}}}}}}


class _JsonBoolean(fields.Boolean):
    def _deserialize(self, value, attr, data, **kwargs):
        # 1 == True and 0 == False in Python, so truthy={True} alone would let 1 and 0 through.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def strict_boolean(**kwargs) -> fields.Boolean:
    """JSON true or false only: not "yes", 1 or "on"."""
    return _JsonBoolean(truthy={True}, falsy={False}, **kwargs)
