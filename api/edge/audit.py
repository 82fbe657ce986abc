"""The audit log: every write by a person, with who, when, from which address and what. Written in the
same database transaction as the write itself, so a write without its record (or the reverse) cannot
commit; append-only, enforced by the database's triggers (migration 0003)."""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.orm import Session

from api.edge.tables import AuditRecord
from ledger.db.listing import Page, keyset_page
from ledger.db.types import utc_now

MAX_DETAILS = 20_000
# Secrets never go into the log, whoever reads it later: a new user's password, a token just issued.
SECRET_KEYS = frozenset({"password", "token", "secret"})


def redacted(value):
    if isinstance(value, dict):
        return {key: "[redacted]" if key in SECRET_KEYS else redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


def _details_text(details: dict) -> str:
    """The details as JSON; when too long, still JSON: the start of the text, its length and its SHA-256."""
    text = json.dumps(redacted(details), ensure_ascii=False, sort_keys=True, default=str)
    if len(text) <= MAX_DETAILS:
        return text
    return json.dumps({"truncated": True, "length": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest(),
                       "start": text[:MAX_DETAILS // 2]}, ensure_ascii=False)


_COLUMNS = ("occurred_at", "user_id", "organisation_id", "remote_addr", "method", "path", "action", "status_code",
            "details")
_RECORD = insert(AuditRecord).values({column: bindparam(f"audit_{column}") for column in _COLUMNS})
_WITH_ALONG: dict[int, Insert] = {}  # the record's statement with another insert as a CTE, by that insert


class CompanionInsert(NamedTuple):
    """Another insert of the same write, to run with the audit record (a kept answer), and its parameters."""

    statement: Insert
    parameters: dict


def record(session: Session, *, user_id: int | None, organisation_id: int | None, remote_addr: str, method: str,
           path: str, action: str, status_code: int, details: dict,
           along: CompanionInsert | None = None) -> None:
    """Adds the record. ``along``: another insert of the same write and its parameters (a kept answer); on
    PostgreSQL both go in one statement (a data-modifying CTE), one round trip fewer while the write holds its
    row locks. The statements are built once and run on the session's connection, past the ORM: they are on
    every write's path."""
    values = (utc_now(), user_id, organisation_id, (remote_addr or "")[:64], method, path[:500],
              action[:100], status_code, _details_text(details))
    parameters = {f"audit_{column}": value for column, value in zip(_COLUMNS, values, strict=True)}
    statement = _RECORD
    if along is not None and session.get_bind().dialect.name == "postgresql":
        statement = _WITH_ALONG.get(id(along.statement))
        if statement is None:
            statement = _WITH_ALONG[id(along.statement)] = _RECORD.add_cte(along.statement.cte("along"))
        parameters.update(along.parameters)
    elif along is not None:
        session.connection().execute(along.statement, along.parameters)
    session.connection().execute(statement, parameters)


def organisation_log(session: Session, organisation_id: int, *, after: int | None, limit: int) -> Page:
    """A page of the organisation's records, oldest first."""
    return keyset_page(session, select(AuditRecord).where(AuditRecord.organisation_id == organisation_id),
                       AuditRecord.id, after, limit)
