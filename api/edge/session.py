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


def public_session() -> Session:
    """A session for the public's reads (the transparency pages, open data, public figures): on the read replica
    when ``DATABASE_REPLICA_URL`` names one, so a crowd of readers never slows the books' writers."""
    if "public_session" not in g:
        g.public_session_context = current_app.extensions["ledger_replica"].read()
        g.public_session = g.public_session_context.__enter__()
    return g.public_session


def close_session(_error: BaseException | None = None) -> None:
    for name in ("read_session", "public_session"):
        context = g.pop(f"{name}_context", None)
        g.pop(name, None)
        if context is not None:
            context.__exit__(None, None, None)
