"""Every write through the API runs here: one database transaction holding the change, its audit record
and, when the caller sent an ``Idempotency-Key``, the answer kept for retries (ledger/idempotency.py).

Writes that move money must carry the key; the header follows the IETF draft "The Idempotency-Key HTTP
Header Field": missing → 400, reused for another request → 409 (``idempotency_key_reused``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, current_app, g, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.edge import audit
from api.edge.auth import current_principal
from api.edge.idempotency import answer_to_keep, check_key, kept_answer, request_digest
from api.edge.session import database
from ledger.access.tokens import Principal
from ledger.core.errors import InvalidInput, LedgerError


class IdempotencyKeyMissing(InvalidInput):
    code = "idempotency_key_missing"


def perform(action: str, organisation_id: int | None, work: Callable[[Session, Principal], dict], *,
            status: int = 201, moves_money: bool = True) -> Response:
    """Runs ``work`` (which returns the answer's body, already dumped by its schema) in one transaction."""
    principal = current_principal()
    key = request.headers.get("Idempotency-Key")
    if key is None and moves_money:
        raise IdempotencyKeyMissing("is required on a write that moves money", field="Idempotency-Key")
    body_in = request.get_json(silent=True)
    digest = None
    if key is not None:
        key = check_key(key)
        digest = request_digest(request.method, request.path,
                                json.dumps(body_in, sort_keys=True, separators=(",", ":")))

    attempts = 0

    def unit(session: Session) -> tuple[int, str, bool]:
        # The kept answer is looked for only on a retry. A first attempt that is really a replay meets the
        # earlier answer at its unique key when it tries to keep its own (or the earlier entry at the ledger's
        # key, answering with the same rows); the transaction is rolled back, Database.write retries, and
        # the retry finds the answer. One round trip less for every write that is not a replay.
        nonlocal attempts
        attempts += 1
        if key is not None and attempts > 1:
            kept = kept_answer(session, principal.user_id, key, digest)
            if kept is not None:
                return kept[0], kept[1], True
        try:
            answer = work(session, principal)
        except LedgerError as refusal:
            # A refusal on a first attempt may be a replay meeting its own earlier effect (the grant it approved
            # is approved now, the fund it created exists, the ledger holds its entry): the kept answer, if any,
            # is the answer.
            if key is None:
                raise
            try:
                kept = kept_answer(session, principal.user_id, key, digest)
            except DBAPIError:  # the refusal came from the database and aborted the transaction: not a replay
                raise refusal from None
            if kept is None:
                raise
            return kept[0], kept[1], True
        body = current_app.json.dumps(answer, separators=(",", ":"))
        kept = answer_to_keep(principal.user_id, key, digest, status, body) if key is not None else None
        audit.record(session, user_id=principal.user_id, organisation_id=organisation_id,
                     remote_addr=request.remote_addr or "", method=request.method, path=request.path,
                     action=action, status_code=status, details={"body": body_in, "answer": answer}, along=kept)
        return status, body, False

    status_code, body, replayed = database().write(unit)
    if replayed:
        # The first answer went to this same caller, whose role the decorator has checked again; the funds it
        # touched were checked when it was first given.
        g.funds_checked = True
    response = Response(body, status=status_code, mimetype="application/json")
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def entry_key(principal: Principal) -> str:
    """The idempotency key of the entry a write posts: the caller's key, scoped to the caller, so that two
    users' keys never meet in the ledger."""
    return f"api:{principal.user_id}:{request.headers.get('Idempotency-Key', '')}"
