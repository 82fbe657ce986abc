"""The per-request database session: opened on first use, closed when the request ends."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from ledger.db.engine import Database


def database() -> Database:
    return current_app.extensions["ledger_db"]


def read_session() -> Session:
    """A session for the request's reads, opened on first use; its transaction ends at teardown (with COMMIT:
    see ``Database.read``)."""
    if "read_session" not in g:
        g.read_session_context = database().read()
        g.read_session = g.read_session_context.__enter__()
    return g.read_session


def close_session(_error: BaseException | None = None) -> None:
    context = g.pop("read_session_context", None)
    g.pop("read_session", None)
    if context is not None:
        context.__exit__(None, None, None)
