"""API tokens: long random secrets a program presents instead of a password, and the principal behind one.

A token is ``fl_<prefix>_<secret>``: the prefix finds the row, and the SHA-256 of the whole token is compared
in constant time. A 256-bit random secret cannot be guessed, so a slow hash would buy nothing and cost every
request its time (DESIGN.md §9). The token is shown once, when issued; only its hash is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ledger.access.policy import Principal
from ledger.core.errors import InvalidInput, NotFound
from ledger.db.models import ApiToken, FundAssignment, Membership, User
from ledger.db.types import utc_now

MAX_TOKEN_DAYS = 366


def issue_token(session: Session, user_id: int, name: str, days: int = 90) -> tuple[str, ApiToken]:
    """Creates a token for the user; returns the token itself (shown once) and its stored row."""
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    if not (isinstance(days, int) and 1 <= days <= MAX_TOKEN_DAYS):
        raise InvalidInput(f"must be between 1 and {MAX_TOKEN_DAYS} days", field="days")
    prefix = secrets.token_hex(6)
    token = f"fl_{prefix}_{secrets.token_urlsafe(32)}"
    now = utc_now()
    row = ApiToken(user_id=user_id, name=name or "token", prefix=prefix, secret_sha256=_digest(token),
                   created_at=now, expires_at=now + dt.timedelta(days=days))
    session.add(row)
    session.flush()
    return token, row


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: object) -> str | None:
    """The public part of a token that finds its row, or None for anything not shaped like a token."""
    if not isinstance(token, str) or token.count("_") < 2 or not token.startswith("fl_"):
        return None
    return token.split("_", 2)[1]


def revoke_token(session: Session, prefix: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).first()
    if row is None:
        raise NotFound("no token has this prefix", field="prefix")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        session.flush()


# Built once: building a SQLAlchemy statement costs about as much as running it, and this one runs on every
# request that carries a token.
_PRINCIPAL_QUERY = (
    select(ApiToken.secret_sha256, ApiToken.expires_at, ApiToken.revoked_at, User.id, User.email,
           User.platform_admin, User.disabled_at, Membership.organisation_id, Membership.role, FundAssignment.fund_id)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(FundAssignment, FundAssignment.membership_id == Membership.id)
    .where(ApiToken.prefix == bindparam("prefix"))
)


def principal_for_token(session: Session, token: object) -> Principal | None:
    """The roles of the enabled user a live token belongs to, in one query (every API request asks); None for a
    token that is unknown, malformed, wrong, expired or revoked, or whose user is disabled."""
    prefix = token_prefix(token)
    if prefix is None:
        return None
    rows = session.connection().execute(_PRINCIPAL_QUERY, {"prefix": prefix}).all()
    if not rows or not _live(token, rows[0]):
        return None
    funds: dict[int, set[int]] = {}
    for row in rows:
        if row.fund_id is not None:
            funds.setdefault(row.organisation_id, set()).add(row.fund_id)
    return Principal(rows[0].id, rows[0].email, rows[0].platform_admin,
                     {row.organisation_id: row.role for row in rows if row.organisation_id is not None},
                     {organisation_id: frozenset(ids) for organisation_id, ids in funds.items()})


def _live(token: str, row) -> bool:
    return (hmac.compare_digest(row.secret_sha256, _digest(token)) and row.revoked_at is None
            and row.expires_at > utc_now() and row.disabled_at is None)
