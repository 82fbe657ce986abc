"""Answers kept for writes sent with an Idempotency-Key (DESIGN.md invariant 4, at the API's edge).

The header follows the IETF draft "The Idempotency-Key HTTP Header Field". A key belongs to the user who sent
it. The same key with the same request gets the first answer again, status and body; with another request it is
refused (409 ``idempotency_key_reused``). The answer is kept in the transaction of the write it answers, so
either both commit or neither; two racing requests with one key meet at the unique key, and the loser's retry
finds the winner's answer.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from api.edge.audit import CompanionInsert
from api.edge.tables import KeptAnswer
from ledger.core.errors import IdempotencyKeyReused, InvalidInput
from ledger.db.types import utc_now

# The entry a write posts carries "api:<user id>:<key>" as its own key, which the ledger caps at 200.
MAX_KEY_LENGTH = 150
# Built once (every write runs them); parameters named for the audit record's statement to carry them along.
_KEPT_QUERY = select(KeptAnswer.request_digest, KeptAnswer.status_code, KeptAnswer.response_body).where(
    KeptAnswer.user_id == bindparam("user_id"), KeptAnswer.idempotency_key == bindparam("key"))
_KEEP = insert(KeptAnswer).values(
    user_id=bindparam("kept_user_id"), idempotency_key=bindparam("kept_key"), request_digest=bindparam("kept_digest"),
    status_code=bindparam("kept_status"), response_body=bindparam("kept_body"), created_at=bindparam("kept_at"))


class IdempotencyKeyMissing(InvalidInput):
    """A write that moves money came without an Idempotency-Key: without one, a retry could post it twice."""

    code = "idempotency_key_missing"


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


def answer_to_keep(user_id: int, key: str, digest: str, status_code: int, body: str) -> CompanionInsert:
    """The statement that keeps an answer, with its parameters; run it with ``audit.record(..., along=…)`` to
    save a round trip."""
    return CompanionInsert(_KEEP, {"kept_user_id": user_id, "kept_key": key, "kept_digest": digest,
                         "kept_status": status_code, "kept_body": body, "kept_at": utc_now()})
