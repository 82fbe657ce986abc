"""More than one account per role: a foundation's second bank, a clearing account per payment channel; each role
keeps one default, and every process sees a change of the chart from the moment it commits."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ledger.books.charts import create_account, list_accounts, load_chart, make_role_default
from ledger.core.chart import Role
from ledger.core.errors import Conflict, InvalidInput
from ledger.db.engine import Database
from ledger.db.models import Account, Organisation
from tests.builders import new_books


def second_bank(db: Database, organisation_id: int, **options) -> int:
    return db.write(lambda session: create_account(
        session, organisation_id, code=f"1002.{uuid.uuid4().hex[:4]}", name_zh="银行存款—招商银行",
        name_en="Bank deposits, second bank", type="asset", role="bank", **options).id)


def chart_rows(db: Database, organisation_id: int) -> list[tuple]:
    with db.read() as session:
        return [(a.code, a.role, a.role_default) for a in list_accounts(session, organisation_id)] + [
            session.scalar(select(Organisation.chart_version).where(Organisation.id == organisation_id))]


def test_every_role_of_a_new_chart_has_its_one_default(db):
    books = new_books(db)

    with db.read() as session:
        accounts = list_accounts(session, books.organisation_id)
    with_roles = [account for account in accounts if account.role]
    assert with_roles and all(account.role_default for account in with_roles)
    assert not any(account.role_default for account in accounts if account.role is None)


def test_a_second_bank_account_joins_the_role_and_the_default_stays(db):
    books = new_books(db)

    added = second_bank(db, books.organisation_id)

    with db.read() as session:
        chart = load_chart(session, books.organisation_id)
    assert chart.by_role[Role.BANK] == (books.account(Role.BANK), added)
    assert chart.account(Role.BANK) == books.account(Role.BANK)
    assert chart.account(Role.BANK, added) == added


def test_a_second_account_asked_to_be_the_default_becomes_it(db):
    books = new_books(db)

    added = second_bank(db, books.organisation_id, role_default=True)

    with db.read() as session:
        assert load_chart(session, books.organisation_id).account(Role.BANK) == added


def test_every_process_sees_a_moved_default_from_the_moment_it_commits(db):
    books = new_books(db)
    added = second_bank(db, books.organisation_id)
    other_process = Database(db.engine.url.render_as_string(hide_password=False))  # an engine, and cache, of its own
    try:
        with other_process.read() as session:
            assert load_chart(session, books.organisation_id).account(Role.BANK) == books.account(Role.BANK)

        db.write(lambda session: make_role_default(session, books.organisation_id, added))

        with other_process.read() as session:
            assert load_chart(session, books.organisation_id).account(Role.BANK) == added
    finally:
        other_process.dispose()


def test_the_database_keeps_one_default_per_role(db):
    books = new_books(db)
    added = second_bank(db, books.organisation_id)

    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        db.write(lambda session: session.execute(update(Account).where(Account.id == added).values(role_default=True)))


@pytest.mark.parametrize(("changes", "error", "field"), [
    ({"type": "liability"}, InvalidInput, "type"),
    ({"normal_balance": "credit"}, InvalidInput, "normal_balance"),
    ({"role": "not_a_role"}, InvalidInput, "role"),
    ({"role": None, "role_default": True}, InvalidInput, "role_default"),
    ({"code": "1002"}, Conflict, "code"),
    ({"code": " "}, InvalidInput, "code"),
])
def test_an_account_that_cannot_join_the_chart_is_refused_and_nothing_changes(db, changes, error, field):
    books = new_books(db)
    before = chart_rows(db, books.organisation_id)
    account = {"code": "1002.09", "name_zh": "银行存款—九", "name_en": "Ninth bank", "type": "asset", "role": "bank",
               **changes}

    with pytest.raises(error) as refused:
        db.write(lambda session: create_account(session, books.organisation_id, **account))

    assert refused.value.field == field
    assert chart_rows(db, books.organisation_id) == before


def test_only_an_account_with_a_role_can_become_a_default(db):
    books = new_books(db)
    plain = books.chart.by_code["1101"]  # short-term investments: no role

    with pytest.raises(InvalidInput) as refused:
        db.write(lambda session: make_role_default(session, books.organisation_id, plain))

    assert refused.value.field == "role_default"


def test_two_admins_moving_one_roles_default_at_once_are_taken_in_turn(postgres_db):
    """The second waits for the first (the chart's version row is locked by the first change), then moves the
    default again: both succeed, and the role keeps one default, the second's."""
    import threading

    books = new_books(postgres_db)
    first, second = second_bank(postgres_db, books.organisation_id), second_bank(postgres_db, books.organisation_id)
    with postgres_db.session() as earlier:
        make_role_default(earlier, books.organisation_id, first)
        later = threading.Thread(target=lambda: postgres_db.write(
            lambda session: make_role_default(session, books.organisation_id, second)))
        later.start()
        later.join(timeout=1)
        assert later.is_alive()  # waiting for the first change to end
        earlier.commit()
    later.join(timeout=10)

    with postgres_db.read() as session:
        defaults = session.scalars(select(Account.id).where(
            Account.organisation_id == books.organisation_id, Account.role == "bank", Account.role_default)).all()
    assert defaults == [second]
