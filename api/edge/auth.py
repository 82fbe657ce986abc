"""Who is asking, and whether their role allows it.

Every view names what it needs with ``@requires(Need.X)`` (the authorization matrix test reads these off
the route map, so a route without a rule fails it). The decorator runs before the body is parsed, so an
unknown caller learns nothing from validation errors. For ``FUND_*`` needs the view must also name the funds
it touches through ``authorize_funds`` once it knows them; the decorator checks that it did.
"""

from __future__ import annotations

import functools

from flask import g, request

from api.edge.session import database
from ledger.access.policy import ANONYMOUS, Need, Principal
from ledger.access.tokens import principal_for_token
from ledger.books.organisations import unknown_funds
from ledger.core.errors import Forbidden, NotFound, Unauthenticated

FUND_NEEDS = (Need.FUND_READ, Need.FUND_WRITE)


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = _principal_from_request()
    return g.principal


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _principal_from_request() -> Principal:
    if "Authorization" not in request.headers:
        return ANONYMOUS
    with database().lookup() as session:
        principal = principal_for_token(session, bearer_token())
    if principal is None:
        raise Unauthenticated("the bearer token is missing, malformed, unknown, expired or revoked",
                              field="Authorization")
    return principal


def requires(need: Need):
    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            principal = current_principal()
            if need is not Need.PUBLIC and not principal.signed_in:
                raise Unauthenticated("this operation needs a bearer token", field="Authorization")
            if not principal.allows(need, kwargs.get("organisation_id")):
                raise Forbidden("your role does not allow this operation")
            g.funds_checked = need not in FUND_NEEDS
            result = view(*args, **kwargs)
            if not g.funds_checked:
                raise AssertionError(f"{view.__qualname__} did not check the funds it touches")
            return result

        guarded.need = need
        # flask-smorest reads the operation's documentation off the function; say who may call it there.
        manual = guarded.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {})
        manual["security"] = [] if need is Need.PUBLIC else [{"bearerAuth": []}]
        manual["x-fundledger-needs"] = need.value
        return guarded

    return decorate


def authorize_funds(organisation_id: int, fund_ids, *, write: bool) -> None:
    """The caller may read (or write) every one of these funds; a fund that is not the organisation's is a 404
    whoever asks. Reads look the funds up first; writes only when the caller is refused (the write's own
    transaction finds a missing fund anyway, so the hot path pays no extra query)."""
    if not write:
        _refuse_unknown_funds(organisation_id, fund_ids)
    try:
        current_principal().require_funds(organisation_id, fund_ids, write=write)
    except Forbidden:
        if write:
            _refuse_unknown_funds(organisation_id, fund_ids)
        raise
    g.funds_checked = True


def _refuse_unknown_funds(organisation_id: int, fund_ids) -> None:
    with database().lookup() as session:
        unknown = unknown_funds(session, organisation_id, fund_ids)
    if unknown:
        raise NotFound(f"fund {unknown[0]} does not exist in organisation {organisation_id}", field="fund_id")


def authorize_any_fund(organisation_id: int, fund_ids) -> None:
    """For reading a record that touches several funds (a transfer): the caller may read one of them."""
    principal = current_principal()
    if not any(principal.allows_funds(organisation_id, [fund_id], write=False) for fund_id in fund_ids):
        raise Forbidden("your role does not cover these funds", field="fund_id")
    g.funds_checked = True


def listed_funds(organisation_id: int, fund_id: int | None) -> frozenset[int] | None:
    """The funds a list may show: the one asked for (if the caller may read it); else None for all of them
    (admins, auditors), or the funds a fund manager was assigned."""
    if fund_id is not None:
        authorize_funds(organisation_id, [fund_id], write=False)
        return frozenset({fund_id})
    g.funds_checked = True
    return current_principal().readable_funds(organisation_id)


def authorize_report(organisation_id: int, fund_id: int | None) -> None:
    """For a report of one fund (its readers may) or, without a fund, of the whole organisation (only those
    who read all of it: a fund manager must name one of their funds)."""
    if fund_id is not None:
        authorize_funds(organisation_id, [fund_id], write=False)
    elif not current_principal().allows(Need.ORG_READ, organisation_id):
        raise Forbidden("a fund manager must name one of their funds", field="fund_id")
    g.funds_checked = True
