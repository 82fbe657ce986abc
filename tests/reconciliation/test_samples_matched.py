"""The three sample statements, each in the books of an organisation keeping its currency (a Chinese foundation's
GBK export in CNY, an American charity's OFX in USD, a British charity's camt.053 in GBP), matched automatically
to the gifts those books hold: the matches expected, and what is left for a person. A statement in another currency
than the books' is refused, naming the file, and nothing is imported."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from sqlalchemy import func, select

from ledger.books.organisations import create_organisation
from ledger.db.models import Account, BankStatement, Fund, ReconciliationMatch, StatementLine
from ledger.giving.donations import GiftRecord, record_donation
from ledger.reconciliation import matches
from tests.reconciliation.test_imports import run_import
from tests.reconciliation.test_statements import SAMPLES

REGISTRATION = {"US": lambda: f"12-{random.randrange(10**6, 10**7)}", "GB": lambda: str(random.randrange(10**6, 10**7))}


def books_in(world, currency: str, jurisdiction: str, gifts: list[tuple[int, str, str]]) -> tuple[int, int]:
    """A new organisation keeping ``currency``, its general fund holding ``gifts`` (amount, day, description) by bank;
    its id and its bank account's."""
    def build(session) -> tuple[int, int]:
        organisation = create_organisation(
            session, name=f"Charity {uuid.uuid4().hex[:6]}", kind="foundation", base_currency=currency,
            jurisdiction=jurisdiction, registration_number=REGISTRATION[jurisdiction](),
            books_opened_on=dt.date(2026, 9, 1))
        fund = session.scalars(select(Fund.id).where(Fund.organisation_id == organisation.id)).one()
        for number, (amount, day, text) in enumerate(gifts):
            record_donation(session, organisation.id, GiftRecord(fund, amount, currency, "bank",
                                                                 dt.date.fromisoformat(day), description=text),
                            idempotency_key=f"sample-{number}", recorded_by="test")
        bank = session.scalars(select(Account.id).where(Account.organisation_id == organisation.id,
                                                        Account.code == "1002")).one()
        return organisation.id, bank
    return world.db.write(build)


def matched(world, organisation: int, bank: int) -> list[tuple[str, list[int]]]:
    """Each match's rule and the amounts of its lines, as kept."""
    world.db.write(lambda session: matches.auto_match(session, organisation, bank, "test"))
    with world.db.read() as session:
        kept = session.scalars(select(ReconciliationMatch).where(ReconciliationMatch.account_id == bank)
                               .order_by(ReconciliationMatch.id)).all()
        return [(match.rule, sorted(session.scalars(select(StatementLine.amount_minor)
                                                    .where(StatementLine.match_id == match.id)))) for match in kept]


def unmatched(world, bank: int) -> list[int]:
    with world.db.read() as session:
        return sorted(session.scalars(select(StatementLine.amount_minor).where(StatementLine.account_id == bank,
                                                                               StatementLine.match_id.is_(None))))


def stated(world, bank: int) -> tuple:
    """The statement's format, currency and the balances it states (opening, closing)."""
    with world.db.read() as session:
        return tuple(session.execute(select(BankStatement.format, BankStatement.currency, BankStatement.opening_minor,
                                            BankStatement.closing_minor).where(BankStatement.account_id == bank)).one())


def test_the_chinese_banks_gbk_export_matches_its_gifts_and_a_payout_of_two(world):
    organisation, bank = world.org, None
    with world.db.read() as session:
        bank = session.scalars(select(Account.id).where(Account.organisation_id == organisation,
                                                        Account.code == "1002")).one()
    for amount, day in ((100_000, "2026-10-03"), (880_000, "2026-10-07"), (145_030, "2026-10-20"),
                        (100_000, "2026-10-20")):
        world.db.write(lambda session, amount=amount, day=day: record_donation(
            session, organisation, GiftRecord(world.fund, amount, "CNY", "bank", dt.date.fromisoformat(day)),
            idempotency_key=uuid.uuid4().hex, recorded_by="test"))

    assert run_import(world, SAMPLES / "icbc-2026-10.gbk.csv", bank).exit_code == 0

    assert matched(world, organisation, bank) == [("one_to_one", [100_000]), ("one_to_one", [880_000]),
                                                  ("one_line_many_items", [245_030])]
    assert unmatched(world, bank) == [-1_500, 1_234]  # the fee and the interest: the books lack them


def test_the_american_ofx_matches_its_gift_and_its_payout_in_dollars(world):
    organisation, bank = books_in(world, "USD", "US", [(25_000, "2026-10-05", "Jane Doe, food bank"),
                                                       (123_456, "2026-10-12", "Stripe po_1OctPayout")])

    assert run_import(world, SAMPLES / "us-bank-2026-10.ofx", bank, "--organisation", str(organisation)) \
        .exit_code == 0

    assert matched(world, organisation, bank) == [("one_to_one", [25_000]), ("one_to_one", [123_456])]
    assert unmatched(world, bank) == [-50_000, -1_200]  # the grant's payment and the fee, not yet in these books
    assert stated(world, bank) == ("ofx", "USD", None, 1_097_256)


def test_the_british_camt_053_matches_its_gift_in_pounds(world):
    organisation, bank = books_in(world, "GBP", "GB", [(30_000, "2026-10-03", "Alice Smith, Gift Aid")])

    assert run_import(world, SAMPLES / "uk-bank-2026-10.camt053.xml", bank, "--organisation",
                      str(organisation)).exit_code == 0

    assert matched(world, organisation, bank) == [("one_to_one", [30_000])]
    assert unmatched(world, bank) == [-6_950]
    assert stated(world, bank) == ("camt053", "GBP", 500_000, 523_050)


@pytest.mark.parametrize("sample", ["us-bank-2026-10.ofx", "uk-bank-2026-10.camt053.xml"])
def test_a_statement_in_another_currency_than_the_books_is_refused_and_nothing_imported(world, sample):
    with world.db.read() as session:
        bank = session.scalars(select(Account.id).where(Account.organisation_id == world.org,
                                                        Account.code == "1002")).one()
        before = session.scalar(select(func.count()).select_from(BankStatement))

    refused = run_import(world, SAMPLES / sample, bank)

    assert refused.exit_code != 0 and f"{sample}: the statement is in" in refused.output
    assert "the books in CNY" in refused.output
    with world.db.read() as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == before
