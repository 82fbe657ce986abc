"""Who may use the ledger: users with passwords, and the API tokens they issue to programs.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's recommendations). A
token is ``fl_<prefix>_<secret>``: the prefix finds the row, and the SHA-256 of the whole token is compared
in constant time. A 256-bit random secret cannot be guessed, so a slow hash would buy nothing and cost
every request its time (DESIGN.md §9). The token is shown once, when issued; only its hash is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.models import ApiToken, User

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


def find_user_by_token(session: Session, token: object) -> User | None:
    """The enabled user a live token belongs to, else None: unknown, malformed, expired or revoked."""
    if not isinstance(token, str) or token.count("_") < 2 or not token.startswith("fl_"):
        return None
    prefix = token.split("_", 2)[1]
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(token)):
        return None
    if row.revoked_at is not None or _aware(row.expires_at) <= _now():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.disabled_at is None else None


def revoke_token(session: Session, prefix: str) -> None:
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix)).first()
    if row is None:
        raise NotFound("no token has this prefix", field="prefix")
    if row.revoked_at is None:
        row.revoked_at = _now()
        session.flush()
