"""What the database itself holds of the register: receipts and what hangs on them are never changed or deleted,
whatever the application does; and numbers stay gap-free when many gifts are receipted at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from receipts.models import Receipt, ReceiptCounter
from tests.db.test_database_guards import execute_and_roll_back
from tests.receipts.test_register import YEAR, donor, give, key, receipts_of


@pytest.fixture
def receipted(world) -> dict:
    """A receipt voided (so every table of the register has a row), its PDF kept."""
    [receipt] = receipts_of(world, give(world, 5_000, donor(world))["id"])
    world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/void"), {"reason": "test"}, key=key())
    assert world.call("auditor", "GET", world.url(f"/receipts/{receipt['id']}/pdf?version=original")).status_code == 200
    return receipt


@pytest.mark.parametrize("statement", [
    "UPDATE receipts SET amount_minor = 1 WHERE id = :id",
    "UPDATE receipts SET donor_name = 'someone else' WHERE id = :id",
    "DELETE FROM receipts WHERE id = :id",
    "UPDATE receipt_lines SET amount_minor = 1 WHERE receipt_id = :id",
    "DELETE FROM receipt_lines WHERE receipt_id = :id",
    "DELETE FROM receipt_voids WHERE receipt_id = :id",
    "UPDATE receipt_voids SET reason = 'nothing happened' WHERE receipt_id = :id",
    "UPDATE receipt_documents SET sha256 = 'x' WHERE receipt_id = :id",
    "DELETE FROM receipt_documents WHERE receipt_id = :id",
])
def test_the_database_refuses_to_change_or_delete_the_register(world, receipted, statement):
    with pytest.raises(DatabaseError, match="append-only"):
        execute_and_roll_back(world.db, statement, {"id": receipted["id"]})


def test_postgresql_refuses_to_truncate_the_register(postgres_db):
    for table in ("receipts CASCADE", "receipt_lines", "receipt_voids", "receipt_documents"):
        with pytest.raises(DatabaseError, match="append-only"):
            execute_and_roll_back(postgres_db, f"TRUNCATE {table}")


def test_gifts_receipted_by_many_writers_at_once_get_numbers_without_gap_or_repeat(postgres_db):
    from tests.api.support import make_app, make_world

    app = make_app(postgres_db)
    world = make_world(app)
    who = donor(world)

    with ThreadPoolExecutor(8) as pool:
        gifts = list(pool.map(lambda amount: give(world, amount, who), range(1_000, 1_048)))

    with world.db.read() as session:
        sequences = sorted(session.scalars(select(Receipt.sequence).where(Receipt.organisation_id == world.org,
                                                                          Receipt.year == YEAR)))
        last = session.scalar(select(ReceiptCounter.last_number).where(ReceiptCounter.organisation_id == world.org,
                                                                       ReceiptCounter.year == YEAR))
        numbered = session.scalar(text("SELECT count(DISTINCT number) FROM receipts WHERE organisation_id = :o"),
                                  {"o": world.org})
    assert len(gifts) == 48 and sequences == list(range(1, 49)) and last == 48 and numbered == 48
    app.extensions["ledger_db"].dispose()
