"""Users: the people who sign in (fund managers, auditors, administrators), with argon2id passwords.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's recommendations).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.db.engine import insert_unless_taken
from ledger.db.models import User
from ledger.db.types import utc_now

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


def normalise_email(email: object) -> str:
    if not isinstance(email, str) or "@" not in email.strip() or len(email.strip()) > 320:
        raise InvalidInput("must be an email address", field="email")
    return email.strip().lower()


def create_user(session: Session, *, email: str, password: str, display_name: str = "",
                platform_admin: bool = False) -> User:
    """Creates a user; an email already in use (in any case) is a Conflict."""
    email = normalise_email(email)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"must be at least {MIN_PASSWORD_LENGTH} characters", field="password")
    user = insert_unless_taken(session, User, dict(
        email=email, display_name=display_name or email, password_hash=_hasher.hash(password),
        platform_admin=platform_admin, created_at=utc_now()), key=("email",))
    if user is None:
        raise Conflict("a user with this email exists", field="email")
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


def disable_user(session: Session, email: str) -> User:
    """Switches a user off: their password and every token they hold stop working at once."""
    user = find_user_by_email(session, email)
    if user is None:
        raise NotFound("no user has this email", field="email")
    if user.disabled_at is None:
        session.execute(update(User).where(User.id == user.id).values(disabled_at=utc_now())
                        .execution_options(synchronize_session=False))
        session.expire(user)
    return user
