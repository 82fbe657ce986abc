"""Who may use the ledger: users with passwords, and the API tokens they issue to programs.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's recommendations). A
token is ``fl_<prefix>_<secret>``: the prefix finds the row, and the SHA-256 of the whole token is compared
in constant time. A 256-bit random secret cannot be guessed, so a slow hash would buy nothing and cost
every request its time (DESIGN.md §9). The token is shown once, when issued; only its hash is kept.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.db.models import ApiToken, Fund, FundAssignment, Membership, User

MIN_PASSWORD_LENGTH = 12
MAX_TOKEN_DAYS = 366
_hasher = PasswordHasher()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back the UTC time it stored without its zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def normalise_email(email: object) -> str:
    if not isinstance(email, str) or "@" not in email.strip() or len(email.strip()) > 320:
        raise InvalidInput("must be an email address", field="email")
    return email.strip().lower()


def create_user(session: Session, *, email: str, password: str, display_name: str = "",
                platform_admin: bool = False) -> User:
    email = normalise_email(email)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"must be at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict("a user with this email exists", field="email")
    user = User(email=email, display_name=display_name or email, password_hash=_hasher.hash(password),
                platform_admin=platform_admin, created_at=_now())
    session.add(user)
    session.flush()
    return user


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalise_email(email))).first()


def find_user_by_password(session: Session, email: str, password: str) -> User | None:
    """The enabled user with this email and password, else None (without saying which was wrong)."""
    user = find_user_by_email(session, email)
    if user is None:
        _hasher.hash(password)  # spend the same time as a real check, so timing does not reveal the email
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)  # the hasher's parameters grew since this hash was made
    return user if user.disabled_at is None else None


def issue_token(session: Session, user_id: int, name: str, days: int = 90) -> tuple[str, ApiToken]:
    """Creates a token for the user; returns the token itself (shown once) and its stored row."""
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    if not (isinstance(days, int) and 1 <= days <= MAX_TOKEN_DAYS):
        raise InvalidInput(f"must be between 1 and {MAX_TOKEN_DAYS} days", field="days")
    prefix = secrets.token_hex(6)
    token = f"fl_{prefix}_{secrets.token_urlsafe(32)}"
    now = _now()
    row = ApiToken(user_id=user_id, name=name or "token", prefix=prefix, secret_sha256=_digest(token),
                   created_at=now, expires_at=now + dt.timedelta(days=days))
    session.add(row)
    session.flush()
    return token, row


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _prefix(token: object) -> str | None:
    if not isinstance(token, str) or token.count("_") < 2 or not token.startswith("fl_"):
        return None
    return token.split("_", 2)[1]


def _live(token: str, secret_sha256: str, expires_at: dt.datetime, revoked_at: dt.datetime | None,
          disabled_at: dt.datetime | None) -> bool:
    return (hmac.compare_digest(secret_sha256, _digest(token)) and revoked_at is None
            and _aware(expires_at) > _now() and disabled_at is None)


def find_user_by_token(session: Session, token: object) -> User | None:
    """The enabled user a live token belongs to, else None: unknown, malformed, expired or revoked."""
    prefix = _prefix(token)
    found = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.prefix == prefix)).first() if prefix else None
    if found is None or not _live(token, found.ApiToken.secret_sha256, found.ApiToken.expires_at,
                                  found.ApiToken.revoked_at, found.User.disabled_at):
        return None
    return found.User


def revoke_token(session: Session, prefix: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).first()
    if row is None:
        raise NotFound("no token has this prefix", field="prefix")
    if row.revoked_at is None:
        row.revoked_at = _now()
        session.flush()


ROLES = ("org_admin", "fund_manager", "auditor")


class Need(enum.Enum):
    """What an operation needs of its caller. Each route of the API names one (see api/authz.py)."""

    PUBLIC = "public"                    # anyone, signed in or not; nothing private is shown
    SIGNED_IN = "signed_in"              # any user, about themselves
    PLATFORM_ADMIN = "platform_admin"    # runs the platform: creates organisations and users
    ORG_ADMIN = "org_admin"              # runs one organisation: funds, members, periods, settings
    ORG_READ = "org_read"                # reads the whole organisation: its admins and auditors
    MEMBER_READ = "member_read"          # anyone with a role in the organisation (the chart, donors)
    MEMBER_WRITE = "member_write"        # its admins and fund managers (records donors)
    FUND_READ = "fund_read"              # the whole organisation's readers, or the managers of the funds
    FUND_WRITE = "fund_write"            # its admins, or the managers of the funds


READ_ROLES = {"org_admin", "auditor"}
WRITE_ROLES = {"org_admin", "fund_manager"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, with their roles: organisation id → role, and for fund managers the funds assigned."""

    user_id: int | None = None
    email: str = ""
    platform_admin: bool = False
    roles: dict[int, str] = field(default_factory=dict)
    funds: dict[int, frozenset[int]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    def role_in(self, organisation_id: int) -> str | None:
        return "org_admin" if self.platform_admin else self.roles.get(organisation_id)

    def allows(self, need: Need, organisation_id: int | None = None) -> bool:
        """Whether the role allows the operation at all; for FUND_* the funds are judged by ``allows_funds``."""
        if need is Need.PUBLIC:
            return True
        if need is Need.SIGNED_IN:
            return self.signed_in
        if need is Need.PLATFORM_ADMIN:
            return self.platform_admin
        role = self.role_in(organisation_id) if organisation_id is not None else None
        return role is not None and role in {
            Need.ORG_ADMIN: {"org_admin"}, Need.ORG_READ: READ_ROLES, Need.MEMBER_READ: set(ROLES),
            Need.MEMBER_WRITE: WRITE_ROLES, Need.FUND_READ: set(ROLES), Need.FUND_WRITE: WRITE_ROLES,
        }[need]

    def allows_funds(self, organisation_id: int, fund_ids: Iterable[int], *, write: bool) -> bool:
        role = self.role_in(organisation_id)
        if role == "org_admin" or (role == "auditor" and not write):
            return True
        return role == "fund_manager" and set(fund_ids) <= self.funds.get(organisation_id, frozenset())

    def require_funds(self, organisation_id: int, fund_ids: Iterable[int], *, write: bool) -> None:
        if not self.allows_funds(organisation_id, fund_ids, write=write):
            raise Forbidden("your role does not cover this fund", field="fund_id")


ANONYMOUS = Principal()


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
    """The roles of the user a live token belongs to, in one query (every API request asks), else None."""
    prefix = _prefix(token)
    if prefix is None:
        return None
    rows = session.connection().execute(_PRINCIPAL_QUERY, {"prefix": prefix}).all()
    if not rows or not _live(token, rows[0].secret_sha256, rows[0].expires_at, rows[0].revoked_at,
                             rows[0].disabled_at):
        return None
    return _principal(rows[0].id, rows[0].email, rows[0].platform_admin, rows)


def _principal(user_id: int, email: str, platform_admin: bool, rows) -> Principal:
    funds: dict[int, set[int]] = {}
    for row in rows:
        if row.fund_id is not None:
            funds.setdefault(row.organisation_id, set()).add(row.fund_id)
    return Principal(user_id, email, platform_admin,
                     {row.organisation_id: row.role for row in rows if row.organisation_id is not None},
                     {org: frozenset(ids) for org, ids in funds.items()})


def set_membership(session: Session, organisation_id: int, user_id: int, role: str,
                   fund_ids: Iterable[int] = ()) -> Membership:
    """Gives a user one role in an organisation, replacing any earlier one; a fund manager gets the funds."""
    if role not in ROLES:
        raise InvalidInput(f"must be one of {', '.join(ROLES)}", field="role")
    fund_ids = sorted(set(fund_ids))
    if (role == "fund_manager") != bool(fund_ids):
        raise InvalidInput("a fund manager needs at least one fund; other roles take none", field="fund_ids")
    if session.get(User, user_id) is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    funds = session.execute(select(Fund.id, Fund.currency).where(
        Fund.organisation_id == organisation_id, Fund.id.in_(fund_ids))).all() if fund_ids else []
    if len(funds) != len(fund_ids):
        raise NotFound("a fund does not exist in this organisation", field="fund_ids")
    remove_membership(session, organisation_id, user_id, missing_ok=True)
    membership = Membership(user_id=user_id, organisation_id=organisation_id, role=role, created_at=_now())
    session.add(membership)
    session.flush()
    session.add_all(FundAssignment(membership_id=membership.id, fund_id=fund.id, organisation_id=organisation_id,
                                   currency=fund.currency) for fund in funds)
    session.flush()
    return membership


def remove_membership(session: Session, organisation_id: int, user_id: int, missing_ok: bool = False) -> None:
    # Plain DELETEs, not the ORM's: two admins may change one membership at once, and the loser's retry must
    # not trip over a row the winner already removed.
    membership_id = session.scalars(select(Membership.id).where(
        Membership.organisation_id == organisation_id, Membership.user_id == user_id)).first()
    if membership_id is None:
        if missing_ok:
            return
        raise NotFound(f"user {user_id} has no role in this organisation", field="user_id")
    session.execute(delete(FundAssignment).where(FundAssignment.membership_id == membership_id))
    session.execute(delete(Membership).where(Membership.id == membership_id))


def memberships(session: Session, organisation_id: int) -> list[tuple[Membership, User, list[int]]]:
    rows = session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == organisation_id).order_by(Membership.id)
    ).all()
    assigned: dict[int, list[int]] = {}
    for membership_id, fund_id in session.execute(
        select(FundAssignment.membership_id, FundAssignment.fund_id)
        .where(FundAssignment.organisation_id == organisation_id).order_by(FundAssignment.fund_id)
    ):
        assigned.setdefault(membership_id, []).append(fund_id)
    return [(m, u, assigned.get(m.id, [])) for m, u in rows]
