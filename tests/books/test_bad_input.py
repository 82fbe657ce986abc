"""Bad input is refused with a typed error, a stable code and the field at fault, and nothing is written.

Each case arranges what it needs (a closed fund, an earlier entry, money in the bank), snapshots the books
of the organisations involved, makes one bad call, and checks the refusal and that the snapshot is unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.books.entries import post_entries, post_entry
from ledger.books.organisations import create_organisation, set_fund_status
from ledger.books.periods import close_period
from ledger.core import recipes
from ledger.core.chart import Role
from ledger.core.drafts import MAX_ENTRIES_PER_CALL, MAX_POSTINGS_PER_ENTRY, EntryDraft
from ledger.core.errors import (
    AccountLimitExceeded,
    AmountInvalid,
    CurrencyMismatch,
    CurrencyUnknown,
    EntryEmpty,
    EntryUnbalanced,
    FundClosed,
    IdempotencyKeyReused,
    InvalidInput,
    JurisdictionUnknown,
    LedgerError,
    NotFound,
    OrganisationMismatch,
    PeriodClosed,
    RegistrationNumberInvalid,
    SameAccount,
    TooMany,
)
from ledger.core.money import Money
from ledger.core.recipes import JournalLine
from ledger.db.engine import Database
from ledger.db.models import Account, Balance, Entry, Fund, Organisation, Posting
from tests.builders import USCC_ALPHABET, Books, fresh_uscc, key, new_books, particulars

UNKNOWN_ID = 10**12


@dataclass(frozen=True)
class Snapshot:
    """What an organisation's books hold: row counts of entries and postings, and every balance row."""

    entries: int
    postings: int
    balances: tuple[tuple[int, int, str, int, int], ...]


def snapshot(db: Database, organisation_id: int) -> Snapshot:
    with db.read() as session:
        def count(model) -> int:
            return session.scalar(select(func.count()).select_from(model).where(
                model.organisation_id == organisation_id))

        balances = session.execute(
            select(Balance.account_id, Balance.fund_id, Balance.currency, Balance.debits_minor,
                   Balance.credits_minor).where(Balance.organisation_id == organisation_id)
            .order_by(Balance.account_id, Balance.fund_id, Balance.currency)).all()
        return Snapshot(count(Entry), count(Posting), tuple(tuple(row) for row in balances))


def cny(amount_minor: int) -> Money:
    return Money(amount_minor, "CNY")


def gift(books: Books, **posting_changes) -> EntryDraft:
    """A valid bank gift of CNY 100 into the open fund, with the named posting fields changed."""
    draft = recipes.offline_donation(books.chart, books.open_fund, cny(10_000), "bank", particulars())
    return replace(draft, postings=(replace(draft.postings[0], **posting_changes),))


def post(db: Database, draft: EntryDraft):
    return db.write(lambda session: post_entry(session, draft))


# --- arrangements: the state a case needs before the bad call ------------------------------------------------


def close_the_open_fund(db: Database, books: Books, _other: Books) -> None:
    db.write(lambda session: set_fund_status(session, books.organisation_id, books.open_fund, "closed"))


def close_october(db: Database, books: Books, _other: Books) -> None:
    db.write(lambda session: close_period(session, books.organisation_id, 2026, 10, "closer@example.org"))


REUSED_KEY = "gift-from-bank-statement-line-42"


def gift_under_reused_key(db: Database, books: Books, _other: Books) -> None:
    post(db, replace(gift(books), idempotency_key=REUSED_KEY))


def fund_and_approve_a_grant(db: Database, books: Books, _other: Books, approved_minor: int = 5_000) -> None:
    """The open fund holds CNY 100 and owes ``approved_minor`` to a grantee."""
    post(db, gift(books, amount_minor=10_000))
    post(db, recipes.grant_approved(books.chart, books.open_fund, cny(approved_minor), "charitable_activities",
                                    particulars()))


# --- the cases ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad call: ``act`` runs in a write transaction and must raise ``error`` with ``code`` and ``field``."""

    act: Callable[[Session, Books, Books], object]
    error: type[LedgerError]
    code: str
    field: str
    arrange: Callable[[Database, Books, Books], None] | None = None
    details: dict[str, Callable[[Books], object]] | None = None


def posting_with(**changes) -> Callable[[Session, Books, Books], object]:
    return lambda session, books, other: post_entry(session, gift(books, **changes))


def entry_with(**changes) -> Callable[[Session, Books, Books], object]:
    return lambda session, books, other: post_entry(session, replace(gift(books), **changes))


def journal(lines: Callable[[Books], list[JournalLine]]) -> Callable[[Session, Books, Books], object]:
    return lambda session, books, other: post_entry(
        session, recipes.journal_entry(books.chart, lines(books), particulars()))


def grant_paid(amount_minor: int) -> Callable[[Session, Books, Books], object]:
    return lambda session, books, other: post_entry(
        session, recipes.grant_paid(books.chart, books.open_fund, cny(amount_minor), particulars()))


def bank(books: Books) -> int:
    return books.account(Role.BANK)


def revenue(books: Books) -> int:
    return books.account(Role.DONATION_REVENUE)


AMOUNT = "postings[0].amount_minor"
CASES = {
    "zero amount": Case(posting_with(amount_minor=0), AmountInvalid, "amount_invalid", AMOUNT),
    "negative amount": Case(posting_with(amount_minor=-100), AmountInvalid, "amount_invalid", AMOUNT),
    "float amount": Case(posting_with(amount_minor=100.0), AmountInvalid, "amount_invalid", AMOUNT),
    "bool amount": Case(posting_with(amount_minor=True), AmountInvalid, "amount_invalid", AMOUNT),
    "string amount": Case(posting_with(amount_minor="100"), AmountInvalid, "amount_invalid", AMOUNT),
    "amount beyond the posting limit": Case(posting_with(amount_minor=10**14 + 1), AmountInvalid,
                                            "amount_invalid", AMOUNT),
    "unknown currency": Case(posting_with(currency="XYZ"), CurrencyUnknown, "currency_unknown",
                             "postings[0].currency"),
    "currency without minor unit": Case(posting_with(currency="XAU"), CurrencyUnknown, "currency_unknown",
                                        "postings[0].currency"),
    "lower-case currency": Case(posting_with(currency="cny"), CurrencyUnknown, "currency_unknown",
                                "postings[0].currency"),
    "currency not the fund's": Case(posting_with(currency="USD"), CurrencyMismatch, "currency_mismatch",
                                    "postings[0].currency"),
    "account of another organisation": Case(
        lambda session, books, other: post_entry(session, gift(books, debit_account_id=bank(other))),
        OrganisationMismatch, "organisation_mismatch", "postings[0].debit_account_id"),
    "fund of another organisation": Case(
        lambda session, books, other: post_entry(session, gift(books, fund_id=other.open_fund)),
        OrganisationMismatch, "organisation_mismatch", "postings[0].fund_id"),
    "unknown fund": Case(posting_with(fund_id=UNKNOWN_ID), NotFound, "not_found", "postings[0].fund_id"),
    "unknown account": Case(posting_with(credit_account_id=UNKNOWN_ID), NotFound, "not_found",
                            "postings[0].credit_account_id"),
    "id that is not an integer": Case(posting_with(fund_id="2"), InvalidInput, "invalid_input",
                                      "postings[0].fund_id"),
    "closed fund": Case(posting_with(), FundClosed, "fund_closed", "postings[0].fund_id",
                        arrange=close_the_open_fund),
    "date in a closed period": Case(entry_with(effective_date=dt.date(2026, 10, 31)), PeriodClosed,
                                    "period_closed", "effective_date", arrange=close_october),
    "effective date that is a datetime": Case(entry_with(effective_date=dt.datetime(2026, 11, 2, 12, 0)),
                                              InvalidInput, "invalid_input", "effective_date"),
    "reused idempotency key with another payload": Case(
        lambda session, books, other: post_entry(
            session, replace(gift(books, amount_minor=20_000), idempotency_key=REUSED_KEY)),
        IdempotencyKeyReused, "idempotency_key_reused", "idempotency_key", arrange=gift_under_reused_key),
    "bank overdraft in a fund": Case(
        grant_paid(15_000), AccountLimitExceeded, "account_limit_exceeded", "postings",
        arrange=lambda db, books, other: fund_and_approve_a_grant(db, books, other, approved_minor=20_000),
        details={"account_id": bank, "fund_id": lambda b: b.open_fund, "shortfall_minor": lambda b: 5_000}),
    "grants payable paid beyond what was approved": Case(
        grant_paid(8_000), AccountLimitExceeded, "account_limit_exceeded", "postings",
        arrange=fund_and_approve_a_grant,
        details={"account_id": lambda b: b.account(Role.GRANTS_PAYABLE), "fund_id": lambda b: b.open_fund,
                 "shortfall_minor": lambda b: 3_000}),
    "empty entry": Case(entry_with(postings=()), EntryEmpty, "entry_empty", "postings"),
    "unbalanced journal lines": Case(
        journal(lambda b: [JournalLine(bank(b), b.open_fund, "debit", cny(1_000)),
                           JournalLine(revenue(b), b.open_fund, "credit", cny(900))]),
        EntryUnbalanced, "entry_unbalanced", "lines"),
    "journal lines balanced only across funds": Case(
        journal(lambda b: [JournalLine(bank(b), b.open_fund, "debit", cny(1_000)),
                           JournalLine(revenue(b), b.other, "credit", cny(1_000))]),
        EntryUnbalanced, "entry_unbalanced", "lines"),
    "journal line neither debit nor credit": Case(
        journal(lambda b: [JournalLine(bank(b), b.open_fund, "dr", cny(1_000))]),
        InvalidInput, "invalid_input", "lines[0].side"),
    "journal line with a negative amount": Case(
        # Balanced in sum (100 - 50 = 50), but a negative line must not be silently dropped or netted.
        journal(lambda b: [JournalLine(bank(b), b.open_fund, "debit", cny(10_000)),
                           JournalLine(b.account(Role.CASH), b.open_fund, "debit", cny(-5_000)),
                           JournalLine(revenue(b), b.open_fund, "credit", cny(5_000))]),
        AmountInvalid, "amount_invalid", "lines[1].amount"),
    "journal lines of zero": Case(
        journal(lambda b: [JournalLine(bank(b), b.open_fund, "debit", cny(0)),
                           JournalLine(revenue(b), b.open_fund, "credit", cny(0))]),
        AmountInvalid, "amount_invalid", "lines[0].amount"),
    "same debit and credit account": Case(
        lambda session, books, other: post_entry(session, gift(books, credit_account_id=bank(books))),
        SameAccount, "posting_same_account", "postings[0].credit_account_id"),
    "too many postings": Case(
        lambda session, books, other: post_entry(
            session, replace(gift(books), postings=gift(books).postings * (MAX_POSTINGS_PER_ENTRY + 1))),
        TooMany, "limit_exceeded", "postings"),
    "too many entries in one call": Case(
        lambda session, books, other: post_entries(session, [gift(books)] * (MAX_ENTRIES_PER_CALL + 1)),
        TooMany, "limit_exceeded", "entries"),
    "over-long description": Case(entry_with(description="捐" * 501), InvalidInput, "invalid_input",
                                  "description"),
    "over-long idempotency key": Case(entry_with(idempotency_key="k" * 201), InvalidInput, "invalid_input",
                                      "idempotency_key"),
    "blank recorded_by": Case(entry_with(recorded_by="  "), InvalidInput, "invalid_input", "recorded_by"),
    "second entry of a batch in a closed fund": Case(
        lambda session, books, other: post_entries(
            session, [gift(books, fund_id=books.other), gift(books), gift(books, fund_id=books.other)]),
        FundClosed, "fund_closed", "entries[1].postings[0].fund_id", arrange=close_the_open_fund),
}
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_with_its_code_and_field_and_writes_nothing(db, case: Case):
    books, other = new_books(db), new_books(db)
    if case.arrange:
        case.arrange(db, books, other)
    before = snapshot(db, books.organisation_id), snapshot(db, other.organisation_id)

    refusal = None
    try:
        db.write(lambda session: case.act(session, books, other))
    except LedgerError as error:
        refusal = error

    assert refusal is not None, "the bad call was accepted"
    assert type(refusal) is case.error
    assert (refusal.code, refusal.field) == (case.code, case.field)
    for name, expected in (case.details or {}).items():
        assert refusal.details[name] == expected(books), name
    assert (snapshot(db, books.organisation_id), snapshot(db, other.organisation_id)) == before


@pytest.mark.parametrize("name", ["bank overdraft in a fund", "closed fund", "currency not the fund's"])
def test_a_refusal_caught_by_the_caller_leaves_nothing_for_its_commit_to_write(db, name):
    case = CASES[name]
    books, other = new_books(db), new_books(db)
    if case.arrange:
        case.arrange(db, books, other)
    before = snapshot(db, books.organisation_id)

    with db.session() as session:
        with pytest.raises(case.error):
            case.act(session, books, other)
        session.commit()  # the caller carries on after the refusal, as an import that skips a line would

    assert snapshot(db, books.organisation_id) == before


def test_the_valid_gift_the_cases_start_from_is_accepted(db):
    books = new_books(db)

    post(db, gift(books))

    assert snapshot(db, books.organisation_id) == Snapshot(1, 1, (
        (bank(books), books.open_fund, "CNY", 10_000, 0), (revenue(books), books.open_fund, "CNY", 0, 10_000)))


# --- organisations ------------------------------------------------------------------------------------------


def wrong_check_character(code: str) -> str:
    """The code with another (still well-formed) check character."""
    return code[:-1] + next(c for c in USCC_ALPHABET if c != code[-1])


ORGANISATION_CASES = {
    "bad USCC check character": ({"registration_number": wrong_check_character(fresh_uscc())},
                                 RegistrationNumberInvalid, "registration_number_invalid", "registration_number"),
    "USCC of the wrong length": ({"registration_number": fresh_uscc()[:-1]}, RegistrationNumberInvalid,
                                 "registration_number_invalid", "registration_number"),
    "unknown jurisdiction": ({"jurisdiction": "XX"}, JurisdictionUnknown, "jurisdiction_unknown",
                             "jurisdiction"),
    "unknown base currency": ({"base_currency": "ZZZ"}, CurrencyUnknown, "currency_unknown", "base_currency"),
    "unknown kind": ({"kind": "company"}, InvalidInput, "invalid_input", "kind"),
    "blank name": ({"name": " "}, InvalidInput, "invalid_input", "name"),
}


def organisation_rows(db: Database, name: str, registration_number: str) -> tuple[int, int, int]:
    """(organisations, funds, accounts) that carry this name or registration number."""
    with db.read() as session:
        ids = select(Organisation.id).where(
            (Organisation.name == name) | (Organisation.registration_number == registration_number))
        return (session.scalar(select(func.count()).select_from(ids.subquery())),
                session.scalar(select(func.count()).where(Fund.organisation_id.in_(ids))),
                session.scalar(select(func.count()).where(Account.organisation_id.in_(ids))))


@pytest.mark.parametrize(("changes", "error", "code", "field"), ORGANISATION_CASES.values(),
                         ids=ORGANISATION_CASES.keys())
def test_invalid_organisation_input_is_refused_and_writes_nothing(db, changes, error, code, field):
    arguments = {"name": f"坏数据基金会 {key()}", "kind": "foundation", "base_currency": "CNY",
                 "jurisdiction": "CN", "registration_number": fresh_uscc(), **changes}

    with pytest.raises(error) as refused:
        db.write(lambda session: create_organisation(session, **arguments))

    assert type(refused.value) is error
    assert (refused.value.code, refused.value.field) == (code, field)
    assert organisation_rows(db, arguments["name"], arguments["registration_number"]) == (0, 0, 0)


def test_the_valid_organisation_the_cases_start_from_is_created_with_its_chart(db):
    name, number = f"好数据基金会 {key()}", fresh_uscc()

    db.write(lambda session: create_organisation(session, name=name, kind="foundation", base_currency="CNY",
                                                 jurisdiction="CN", registration_number=number))

    organisations, funds, accounts = organisation_rows(db, name, number)
    assert (organisations, funds) == (1, 1)
    assert accounts > 0
