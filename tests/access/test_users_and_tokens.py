"""Users and API tokens: argon2id passwords, tokens shown once and stored as SHA-256, expiry and revocation."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, update

from ledger.access.tokens import issue_token, principal_for_token, revoke_token
from ledger.access.users import create_user, find_user_by_password
from ledger.core.errors import Conflict, InvalidInput
from ledger.db.models import ApiToken, User

PASSWORD = "correct horse battery staple"


def new_user(db, **overrides):
    arguments = {"email": f"Manager-{uuid.uuid4().hex[:8]}@Example.org", "password": PASSWORD, **overrides}
    return db.write(lambda session: create_user(session, **arguments))


def test_a_password_is_stored_as_an_argon2id_hash_and_checked(db):
    user = new_user(db)

    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    with db.session() as session:
        assert find_user_by_password(session, user.email.upper(), PASSWORD).id == user.id
        assert find_user_by_password(session, user.email, PASSWORD + "!") is None
        assert find_user_by_password(session, "nobody@example.org", PASSWORD) is None


def test_emails_are_unique_whatever_their_case(db):
    user = new_user(db)

    with pytest.raises(Conflict) as refused:
        new_user(db, email=user.email.upper())

    assert refused.value.field == "email"


@pytest.mark.parametrize(("overrides", "field"), [({"password": "short"}, "password"), ({"email": "nope"}, "email")])
def test_a_weak_password_or_a_bad_email_is_refused_and_nothing_is_written(db, overrides, field):
    with db.read() as session:
        before = len(session.scalars(select(User.id)).all())

    with pytest.raises(InvalidInput) as refused:
        new_user(db, **overrides)

    assert refused.value.field == field
    with db.read() as session:
        assert len(session.scalars(select(User.id)).all()) == before


def test_a_token_authenticates_its_user_and_only_its_hash_is_stored(db):
    user = new_user(db)

    token, row = db.write(lambda session: issue_token(session, user.id, "bank import", days=30))

    assert token.startswith(f"fl_{row.prefix}_")
    assert token not in row.secret_sha256 and len(row.secret_sha256) == 64
    with db.read() as session:
        assert principal_for_token(session, token).user_id == user.id
        assert principal_for_token(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert principal_for_token(session, "fl_nothing_here") is None
        assert principal_for_token(session, None) is None


def test_a_revoked_token_no_longer_authenticates(db):
    user = new_user(db)
    token, row = db.write(lambda session: issue_token(session, user.id, "laptop"))

    db.write(lambda session: revoke_token(session, row.prefix))

    with db.read() as session:
        assert principal_for_token(session, token) is None


def test_an_expired_token_no_longer_authenticates(db):
    user = new_user(db)
    token, row = db.write(lambda session: issue_token(session, user.id, "old"))

    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    db.write(lambda session: session.execute(update(ApiToken).where(ApiToken.id == row.id)
                                             .values(expires_at=yesterday)))

    with db.read() as session:
        assert principal_for_token(session, token) is None


def test_a_disabled_users_tokens_and_password_stop_working(db):
    user = new_user(db)
    token, _row = db.write(lambda session: issue_token(session, user.id, "ci"))

    db.write(lambda session: session.execute(update(User).where(User.id == user.id)
                                             .values(disabled_at=dt.datetime.now(dt.UTC))))

    with db.session() as session:
        assert principal_for_token(session, token) is None
        assert find_user_by_password(session, user.email, PASSWORD) is None


@pytest.mark.parametrize("days", [0, -1, 367, "30"])
def test_a_token_lifetime_out_of_bounds_is_refused(db, days):
    user = new_user(db)

    with pytest.raises(InvalidInput) as refused:
        db.write(lambda session: issue_token(session, user.id, "x", days=days))

    assert refused.value.field == "days"
