"""One error shape for every answer that is not a success: RFC 9457 problem+json.

Domain errors carry a stable ``code`` and the ``field`` they concern; this module is the one place that
maps them to HTTP statuses.
"""

from __future__ import annotations

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from ledger import errors as ledger_errors

STATUS_BY_ERROR: tuple[tuple[type[ledger_errors.LedgerError], int], ...] = (
    (ledger_errors.NotFound, 404),
    (ledger_errors.IdempotencyKeyReused, 409),
    (ledger_errors.EntryAlreadyReversed, 409),
    (ledger_errors.Conflict, 409),
    (ledger_errors.LedgerError, 422),
)


def problem(status: int, title: str, detail: str, code: str, errors: dict | None = None) -> Response:
    body = {"type": f"https://fundledger.org/problems/{code}", "title": title, "status": status,
            "detail": detail, "code": code, "errors": errors or {}}
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def status_for(error: ledger_errors.LedgerError) -> int:
    return next(status for kind, status in STATUS_BY_ERROR if isinstance(error, kind))


def register(app: Flask) -> None:
    @app.errorhandler(ledger_errors.LedgerError)
    def ledger_error(error: ledger_errors.LedgerError):
        errors = {error.field: [error.message]} if error.field else {}
        return problem(status_for(error), error.code.replace("_", " ").capitalize(), error.message,
                       error.code, errors)

    @app.errorhandler(Exception)
    def unexpected_error(_error: Exception):
        # Flask sends HTTPExceptions to the more specific handler below; this one sees only real failures.
        # The details go to the log, never to the client: they may hold donors' data or the schema.
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error", "the server failed to answer this request", "internal_error")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        # flask-smorest attaches webargs' per-field messages to its 422s.
        messages = getattr(error, "data", {}).get("messages", {})
        fields = {field: found for location in messages.values() for field, found in location.items()}
        code = (error.name or "error").lower().replace(" ", "_")
        return problem(error.code or 500, error.name, error.description or "", code, fields)
