"""The edge's own tables: the answers kept for Idempotency-Key retries, and the audit log of every write.

They describe HTTP requests, not the books, so they live here rather than in ``ledger.db.models``; they share the
ledger's ``MetaData`` (their foreign keys name users and organisations) and are built by the same migrations.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.base import Base
from ledger.db.types import Id, UtcDateTime


class KeptAnswer(Base):
    """The first answer to a write sent with an Idempotency-Key, kept so that a retry gets it again.
    request_digest tells a retry (same method, path and body) from a reuse of the key for another request."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_digest: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AuditRecord(Base):
    """One write by a person: who (user; none for the operator at the console), when, from which address, what
    (method, path, action, status, and the request's body with its answer). Append-only: the database refuses
    to change or delete a record."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_organisation_id_id", "organisation_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    remote_addr: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(100))
    status_code: Mapped[int] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text)
