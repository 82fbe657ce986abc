"""Refused writes and failed sign-ins in the audit log: who (when known), when, from which address, what was asked
(the body, secrets redacted) and the refusal's code. Written in a transaction of its own, after the write's own
transaction rolled back, so the refusal stays on record though nothing of the write does.

The writing is rate-limited per address (``RATELIMIT_REFUSALS_AUDITED``) and in all
(``RATELIMIT_REFUSALS_AUDITED_ALL``), counted where the rate limits are (Redis when configured), and a refused body
is kept to its first 2,000 characters: a flood of refusals stops being recorded once past the limits (the service
log says so) rather than filling the disk. A refusal names an organisation only when the caller belongs to it, so a
stranger cannot write into an organisation's log. Only answers of 400 to 422 are recorded: a 429 is the limiter's
own answer to a flood, and a 5xx is the service's failure, not the caller's refusal.
"""

from __future__ import annotations

import json

from flask import Flask, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from api.edge import audit
from api.edge.session import database
from ledger.access.policy import Need

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


MAX_BODY = 2_000  # characters of a refused body kept: enough to see what was asked, too few to fill a disk


def register(app: Flask) -> None:
    limiter = app.extensions["ledger_limiter"]
    app.extensions["ledger_refusal_limit"] = (FixedWindowRateLimiter(limiter.limiter.storage),
                                              parse(app.config["RATELIMIT_REFUSALS_AUDITED"]),
                                              parse(app.config["RATELIMIT_REFUSALS_AUDITED_ALL"]),
                                              FixedWindowRateLimiter(MemoryStorage()))


def _within_allowance() -> bool:
    """Counted where the rate limits are; while that store (Redis) cannot be reached, in this process's memory, as
    the limiter itself then counts: the refusal is still answered, and still recorded within the allowance."""
    shared, per_address, in_all, local = current_app.extensions["ledger_refusal_limit"]
    try:
        return shared.hit(per_address, "refusals-audited", get_remote_address()) and \
            shared.hit(in_all, "refusals-audited-all")
    except Exception as error:  # the storage's own errors (redis' ConnectionError, …): the limits library has no base
        current_app.logger.warning("the rate limits' storage cannot be reached (%s): counting in memory", error)
        return local.hit(per_address, "refusals-audited", get_remote_address()) and \
            local.hit(in_all, "refusals-audited-all")


def record(status: int, code: str, detail: str) -> None:
    """Records the refusal of the current request, if it is a write the API knows and the address is within its
    allowance."""
    if request.method not in WRITES or request.url_rule is None or not 400 <= status <= 422:
        return
    if not _within_allowance():
        current_app.logger.warning("refusal not audited: %s %s from %s, over the allowance", request.method,
                                   request.path, get_remote_address())
        return
    values = dict(user_id=_signed_in_user(), organisation_id=_organisation(),
                  remote_addr=request.remote_addr or "", method=request.method, path=request.path,
                  action=_action(), status_code=status,
                  details={"body": _body(),
                           "refusal": {"code": code, "detail": _storable(detail)}})
    try:
        try:
            _write(values)
        except IntegrityError:  # an organisation that does not exist: the record names none
            _write({**values, "organisation_id": None})
    except Exception:  # the refusal is answered whatever becomes of its record
        current_app.logger.exception("refusal not audited")


def _body():
    try:
        body = _storable(request.get_json(silent=True))
    except HTTPException:  # a body too large to read (413): the record says what was refused without it
        return None
    text = json.dumps(body, ensure_ascii=False)
    return body if len(text) <= MAX_BODY else {"truncated": True, "length": len(text), "start": text[:MAX_BODY]}


def _storable(value):
    """What was asked, as text both engines store: a refused body may hold what the API refuses to store (half
    a surrogate pair, NUL), kept escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_storable(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _write(values: dict) -> None:
    database().write(lambda session: audit.record(session, **values), attempts=1)


def _organisation() -> int | None:
    """The organisation the refused request named, when the caller belongs to it: a stranger's attempt is on record
    (with no organisation) but cannot write into an organisation's own log."""
    organisation_id = (request.view_args or {}).get("organisation_id")
    principal = g.get("principal")
    if organisation_id is None or principal is None or not principal.signed_in:
        return None
    return organisation_id if principal.allows(Need.MEMBER_READ, organisation_id) else None


def _signed_in_user() -> int | None:
    principal = g.get("principal")
    return principal.user_id if principal is not None and principal.signed_in else None


def _action() -> str:
    """The write's name in the log (``donation.record``), as its ``@perform`` gives it; the route's otherwise."""
    view = current_app.view_functions.get(request.endpoint)
    handler = getattr(getattr(view, "view_class", None), request.method.lower(), view)
    return getattr(handler, "audit_action", None) or f"{request.endpoint}.{request.method.lower()}"
