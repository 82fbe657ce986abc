"""Answers kept for writes sent with an idempotency key (DESIGN.md invariant 4, at the API's edge).

A key belongs to the user who sent it. The same key with the same request gets the first answer again,
status and body; with another request it is refused. The answer is kept in the transaction of the write it
answers, so either both commit or neither; two racing requests with one key meet at the unique key, and the
loser's retry finds the winner's answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.orm import Session

from ledger.core.errors import IdempotencyKeyReused, InvalidInput
from ledger.db.models import IdempotencyRecord

# The entry a write posts carries "api:<user id>:<key>" as its own key, which the ledger caps at 200.
MAX_KEY_LENGTH = 150
# Built once (every write runs them); parameters named for the audit record's statement to carry them along.
_KEPT_QUERY = select(IdempotencyRecord.request_digest, IdempotencyRecord.status_code,
                     IdempotencyRecord.response_body).where(IdempotencyRecord.user_id == bindparam("user_id"),
                                                            IdempotencyRecord.idempotency_key == bindparam("key"))
_KEEP = insert(IdempotencyRecord).values(
    user_id=bindparam("kept_user_id"), idempotency_key=bindparam("kept_key"), request_digest=bindparam("kept_digest"),
    status_code=bindparam("kept_status"), response_body=bindparam("kept_body"), created_at=bindparam("kept_at"))


def check_key(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"must be 1 to {MAX_KEY_LENGTH} printable characters", field="Idempotency-Key")
    return key


def request_digest(method: str, path: str, canonical_body: str) -> str:
    return hashlib.sha256("\n".join((method, path, canonical_body)).encode()).hexdigest()


def kept_answer(session: Session, user_id: int, key: str, digest: str) -> tuple[int, str] | None:
    """The (status, body) first given for this key, or None; refuses a key reused for another request."""
    row = session.connection().execute(_KEPT_QUERY, {"user_id": user_id, "key": key}).first()
    if row is None:
        return None
    if row.request_digest != digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request",
                                   field="Idempotency-Key")
    return row.status_code, row.response_body


def answer_to_keep(user_id: int, key: str, digest: str, status_code: int, body: str) -> tuple[Insert, dict]:
    """The statement that keeps an answer, and its parameters; run them with ``audit.record(..., along=…)`` to
    save a round trip."""
    return _KEEP, {"kept_user_id": user_id, "kept_key": key, "kept_digest": digest, "kept_status": status_code,
                   "kept_body": body, "kept_at": dt.datetime.now(dt.UTC)}


def keep_answer(session: Session, user_id: int, key: str, digest: str, status_code: int, body: str) -> None:
    session.connection().execute(*answer_to_keep(user_id, key, digest, status_code, body))
