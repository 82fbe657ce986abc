"""One error shape for every answer that is not a success: RFC 9457 problem+json.

Domain errors carry a stable ``code`` and the ``field`` they concern; this module is the one place that
maps them to HTTP statuses.
"""

from __future__ import annotations

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from api.edge import limits, refusals
from api.edge.idempotency import IdempotencyKeyMissing
from ledger.core import errors as ledger_errors
from ledger.db.engine import store_unavailable

STATUS_BY_ERROR: tuple[tuple[type[ledger_errors.LedgerError], int], ...] = (
    (IdempotencyKeyMissing, 400),
    (ledger_errors.SignatureInvalid, 400),
    (ledger_errors.EventMalformed, 400),
    (ledger_errors.Unauthenticated, 401),
    (ledger_errors.Forbidden, 403),
    (ledger_errors.NotFound, 404),
    (ledger_errors.IdempotencyKeyReused, 409),
    (ledger_errors.EntryAlreadyReversed, 409),
    (ledger_errors.EntryKeptByRecord, 409),
    (ledger_errors.Conflict, 409),
    (ledger_errors.ChannelUnavailable, 503),
    (ledger_errors.LedgerError, 422),
)


def problem(status: int, detail: str, code: str, errors: dict | None = None) -> Response:
    # One title per problem type, as RFC 9457 §3.1.3 asks: the code's words, whichever layer refused.
    title = code.replace("_", " ").capitalize()
    body = {"type": f"https://fundledger.org/problems/{code}", "title": title, "status": status,
            "detail": detail, "code": code, "errors": errors or {}}
    # ASCII escapes: a field name the client sent may hold half a surrogate pair, which UTF-8 cannot carry.
    return Response(json.dumps(body, ensure_ascii=True), status=status, mimetype="application/problem+json")


def status_for(error: ledger_errors.LedgerError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


def register(app: Flask) -> None:
    @app.errorhandler(ledger_errors.LedgerError)
    def ledger_error(error: ledger_errors.LedgerError):
        errors = {error.field: [error.message]} if error.field else {}
        status = status_for(error)
        # A 422's detail names the field first, as webargs' 422s do (see _first_problem).
        detail = f"{error.field}: {error.message}" if status == 422 and error.field else error.message
        response = problem(status, detail, error.code, errors)
        refusals.record(status, error.code, detail)
        if isinstance(error, ledger_errors.Unauthenticated):
            response.headers["WWW-Authenticate"] = 'Bearer realm="fundledger"'
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        if not store_unavailable(error):
            return unexpected_error(error)
        # Down, unreachable, read-only or out of disk: nothing was written, and the same request (with the same
        # Idempotency-Key) may be sent again later.
        app.logger.warning("the database cannot take requests now: %s", error.orig)
        response = problem(503, "the ledger's database cannot take this request now; "
                           "send it again later, with the same Idempotency-Key", "store_unavailable")
        response.headers["Retry-After"] = str(app.config["STORE_RETRY_AFTER_SECONDS"])
        return response

    @app.errorhandler(Exception)
    def unexpected_error(_error: Exception):
        # Flask sends HTTPExceptions to the more specific handler below; this one sees only real failures.
        # The details go to the log, never to the client: they may hold donors' data or the schema.
        app.logger.exception("unhandled error")
        return problem(500, "the server failed to answer this request", "internal_error")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # flask-smorest attaches webargs' per-field messages to its 422s.
        messages = getattr(error, "data", {}).get("messages", {})
        fields = {}
        for location, found in messages.items():
            # A whole-body problem (JSON that does not parse) comes as a list, not per field.
            fields.update(found if isinstance(found, dict) else {location: found})
        code = "invalid_input" if error.code == 422 else (error.name or "error").lower().replace(" ", "_")
        detail = _first_problem(fields) if error.code == 422 and fields else _detail(error)
        refusals.record(error.code or 500, code, detail)
        response = problem(error.code or 500, detail, code, fields)
        if error.code == 429:  # when to come back, so a client can wait rather than hammer (RFC 9110 §10.2.3)
            response.headers["Retry-After"] = str(limits.retry_after())
        return response


def not_found(detail: str) -> Response:
    """The 404 of a public page or file, in the API's shape."""
    return problem(404, detail, "not_found")


def _detail(error: HTTPException) -> str:
    """The routing's own refusals say what was asked; the others keep the description they were raised with."""
    if isinstance(error, NotFound) and error.description == NotFound.description:
        return f"nothing here answers {request.method} {request.path}"
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        return f"{request.method} is not allowed on {request.path}: {', '.join(sorted(error.valid_methods))}"
    return error.description or ""


def _first_problem(fields: dict, path: str = "") -> str:
    """The first failing field and why, as one sentence ("amount_minor: Must be greater than or equal to 1 …");
    nested fields are named by their path (lines.0.side)."""
    name, found = next(iter(fields.items()))
    name = "the request body" if name == "_schema" else name  # marshmallow's name for the whole object
    path = f"{path}.{name}" if path else str(name)
    if isinstance(found, dict) and found:
        return _first_problem(found, path)
    message = found[0] if isinstance(found, list) and found else found
    if isinstance(message, dict) and message:
        return _first_problem(message, path)
    return f"{path}: {message}"
