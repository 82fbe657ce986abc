"""One way through every write: ``@perform(action)``, the decorator every write view wears under
``@blp.response``.

It runs the view in one database transaction, hands the view a ``UnitOfWork`` (the transaction's session, who
is asking, the keys to post under), dumps what the view returns with the schema the view declares in
``@blp.response`` (the blueprint tells it, see ``api.rest.common.Blueprint``), and in the same transaction writes
the audit record and, when the caller sent an ``Idempotency-Key``, the answer kept for retries
(``api.edge.idempotency``). Writes that move money must carry the key. A retry of a request already answered gets
the kept answer, marked ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, current_app, g, request
from marshmallow import Schema
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from api.edge import audit
from api.edge.auth import current_principal
from api.edge.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyKeyMissing,
    answer_to_keep,
    check_key,
    kept_answer,
    request_digest,
)
from api.edge.jobs import mail_later
from api.edge.session import database
from ledger.access.policy import Principal
from ledger.core.errors import ConcurrentWrite, LedgerError
from ledger.db.engine import unique_violation_on
from receipts.register import ISSUED as RECEIPTS_ISSUED


@dataclass(slots=True)
class UnitOfWork:
    """What a write view works with. session: the write's transaction (the view never commits); principal: who
    is asking; idempotency_key: the caller's Idempotency-Key, if sent; audited_user_id: whose write the audit log
    records, the caller unless the view says otherwise (signing in: the user who signed in)."""

    session: Session
    principal: Principal
    idempotency_key: str | None
    audited_user_id: int | None

    @property
    def entry_key(self) -> str:
        """The idempotency key of the entry the write posts: the caller's key, scoped to the caller, so that two
        users' keys never meet in the ledger."""
        return f"api:{self.principal.user_id}:{self.idempotency_key or ''}"

    @property
    def recorded_by(self) -> str:
        return self.principal.email


@dataclass(slots=True)
class Answer:
    """The success status and schema a write view declares with ``@blp.response`` (declared: whether it did)."""

    status: int = 200
    schema: Schema | None = None
    declared: bool = False

    def dump(self, result: object) -> tuple[object, str]:
        """The answer as the schema dumps it, and as the JSON text sent (and kept) for it."""
        if self.schema is None:
            return None, ""
        dumped = self.schema.dump(result)
        return dumped, current_app.json.dumps(dumped, separators=(",", ":"))


def perform(action: str, *, moves_money: bool = True, keeps_answers: bool = True):
    """The decorator of a write view: ``action`` names the write in the audit log; ``moves_money`` makes the
    Idempotency-Key required; ``keeps_answers=False`` for a write whose answer must never be stored (a new
    token: the key is then ignored)."""
    def decorate(view: Callable) -> Callable:
        answer = Answer()

        @functools.wraps(view)
        def write(*args, **kwargs) -> Response:
            return _perform(view, answer, action, moves_money, keeps_answers, args, kwargs)

        write.declare_answer = lambda status, schema: _declare(answer, status, schema)
        write.audit_action = action  # the outer decorators copy it (functools.wraps): a refusal's record names it
        if keeps_answers:
            _document_key(write, required=moves_money)
        return write
    return decorate


def _declare(answer: Answer, status: int, schema: Schema | None) -> None:
    answer.status, answer.schema, answer.declared = int(status), schema, True


def _document_key(write: Callable, *, required: bool) -> None:
    manual = write.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {})
    manual.setdefault("parameters", []).append({
        "in": "header", "name": "Idempotency-Key", "required": required,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "description": ("Required: this write moves money. " if required else "") +
                       "Unique per intended write. A retry with the same key and body gets the first answer again "
                       "(with `Idempotent-Replayed: true`); the same key with another body is a 409 "
                       "`idempotency_key_reused`."})


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """What a write needs of the HTTP request, read once before its transaction: who is asking, the
    Idempotency-Key (if sent and kept), the digest of method, path and body that tells a retry from a reuse of the
    key, and the body as sent (for the audit record)."""

    principal: Principal
    key: str | None
    digest: str | None
    body: object


def _read_request(moves_money: bool, keeps_answers: bool) -> WriteRequest:
    principal = current_principal()
    key = request.headers.get("Idempotency-Key") if keeps_answers else None
    if key is None and moves_money:
        raise IdempotencyKeyMissing("is required on a write that moves money", field="Idempotency-Key")
    body = request.get_json(silent=True)
    digest = None
    if key is not None:
        key = check_key(key)
        digest = request_digest(request.method, request.path, json.dumps(body, sort_keys=True, separators=(",", ":")))
    return WriteRequest(principal, key, digest, body)


def _perform(view: Callable, answer: Answer, action: str, moves_money: bool, keeps_answers: bool, args: tuple,
             kwargs: dict) -> Response:
    if not answer.declared:  # a programming error: the answer would go out, audited and kept, as an empty 200
        raise AssertionError(f"{view.__qualname__}: @perform must sit under the @blp.response of an "
                             "api.rest.common.Blueprint, which tells it the answer's status and schema")
    write_request = _read_request(moves_money, keeps_answers)
    attempts = 0
    issued_receipts = False

    def unit_of_work(session: Session) -> tuple[int, str, bool]:
        # The kept answer is looked for only on a retry. A first attempt that is really a replay meets the
        # earlier answer at its unique key when it tries to keep its own (or the earlier entry at the ledger's
        # key, answering with the same rows); the transaction is rolled back, Database.write retries, and
        # the retry finds the answer. One round trip less for every write that is not a replay.
        nonlocal attempts, issued_receipts
        attempts += 1
        if write_request.key is not None and attempts > 1:
            kept = kept_answer(session, write_request.principal.user_id, write_request.key, write_request.digest)
            if kept is not None:
                return (*kept, True)
        unit = UnitOfWork(session, write_request.principal, write_request.key, write_request.principal.user_id)
        try:
            result = view(*args, unit=unit, **kwargs)
        except LedgerError as refusal:
            return _replay_of_refusal(session, write_request, refusal)
        dumped, body = answer.dump(result)
        _record(unit, write_request, action, kwargs.get("organisation_id"), answer.status, dumped, body)
        issued_receipts = session.info.pop(RECEIPTS_ISSUED, False)
        return answer.status, body, False

    status, body, replayed = database().write(unit_of_work)
    if issued_receipts and not replayed:
        mail_later()  # (their emails, once this transaction is committed and the answer sent)
    response = Response(body, status=status, mimetype="application/json")
    if replayed:
        # The first answer went to this same caller, whose role the decorator has checked again; the funds it
        # touched were checked when it was first given.
        g.funds_checked = True
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _replay_of_refusal(session: Session, write_request: WriteRequest, refusal: LedgerError) -> tuple[int, str, bool]:
    """A refusal on a first attempt may be a replay meeting its own earlier effect (the grant it approved is
    approved now, the fund it created exists, the ledger holds its entry): the kept answer, if any, is the
    answer. Otherwise the refusal stands."""
    if write_request.key is None:
        raise refusal
    try:
        kept = kept_answer(session, write_request.principal.user_id, write_request.key, write_request.digest)
    except DBAPIError:  # the refusal came from the database and aborted the transaction: not a replay
        raise refusal from None
    if kept is None:
        raise refusal
    return (*kept, True)


def _record(unit: UnitOfWork, write_request: WriteRequest, action: str, organisation_id: int | None, status: int,
            dumped: object, body: str) -> None:
    """The audit record, and the kept answer with it; a racing request that kept its answer under the same key
    first makes this one a ConcurrentWrite, whose retry finds that answer."""
    kept = answer_to_keep(unit.principal.user_id, write_request.key, write_request.digest, status, body) \
        if write_request.key is not None else None
    try:
        audit.record(unit.session, user_id=unit.audited_user_id, organisation_id=organisation_id,
                     remote_addr=request.remote_addr or "", method=request.method, path=request.path, action=action,
                     status_code=status, details={"body": write_request.body, "answer": dumped}, along=kept)
    except IntegrityError as error:
        if kept is not None and unique_violation_on(error, "idempotency_records"):
            raise ConcurrentWrite("a request with this Idempotency-Key was answered meanwhile",
                                  field="Idempotency-Key") from error
        raise
