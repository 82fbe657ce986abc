"""The ledger's tables, as typed SQLAlchemy 2 models.

The schema itself is built only by the Alembic migrations in ``migrations/``; these models describe it for
queries, and a test proves the two agree. Rows of ``entries``, ``postings`` and ``seal_batches`` are
never updated or deleted: the database's triggers refuse it (see the first migration).

Several foreign keys are composite and include ``organisation_id``: they make the database itself
guarantee that a posting's accounts, fund and entry all belong to one organisation, and (through
``currency``) that a posting is in its fund's currency, whatever the application does.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.core.chart import AccountType, BalanceLimit, Side
from ledger.core.vocabulary import (
    DonationChannel,
    DonorKind,
    EventStatus,
    FundKind,
    FundStatus,
    GiftStatus,
    GrantCategory,
    GrantStatus,
    MemberRole,
    OrganisationKind,
    PayeeKind,
    PaymentChannelName,
    PeriodStatus,
)
from ledger.db.base import Base
from ledger.db.types import Id, UtcDateTime


def one_of(column: str, vocabulary: type[StrEnum]) -> CheckConstraint:
    """The CHECK that keeps a column within its vocabulary (the migrations spell out the same list)."""
    words = ", ".join(f"'{word.value}'" for word in vocabulary)
    return CheckConstraint(f"{column} IN ({words})", name=column)

class Organisation(Base):
    """A legal entity with its own books.

    kind: foundation (基金会) or charity (慈善组织); base_currency: the currency its reports are in;
    jurisdiction: ISO 3166 country whose rules apply; registration_number: canonical form, validated for
    the jurisdiction (the unified social credit code in China).
    """

    __tablename__ = "organisations"
    __table_args__ = (
        UniqueConstraint("jurisdiction", "registration_number"),
        one_of("kind", OrganisationKind),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    base_currency: Mapped[str] = mapped_column(String(3))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    registration_number: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Grants above this amount need two approvers; none means one approver is always enough.
    dual_approval_threshold_minor: Mapped[int | None] = mapped_column(BigInteger)
    # Grows whenever the chart gains an account or a role's default moves: each process caches charts, and a
    # cached chart whose version is behind is read again.
    chart_version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # No entry may be dated before this day (kept as a closed period too, which the database's guard enforces).
    books_opened_on: Mapped[dt.date] = mapped_column(Date)
    # Public-fundraising status (公开募捐资格): China's rule on yearly spending judges such organisations by their
    # last year's income, the others by their net assets (ledger.reports.disclosure).
    public_fundraising: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Fund(Base):
    """A self-balancing sub-ledger of an organisation.

    code: short unique name within the organisation; kind: general, community or project; restricted:
    whether donors restricted its use (限定性); status: open or closed (a closed fund takes no postings);
    currency: the one currency its postings are in.
    """

    __tablename__ = "funds"
    __table_args__ = (
        UniqueConstraint("organisation_id", "code"),
        UniqueConstraint("organisation_id", "id", "currency"),
        one_of("kind", FundKind),
        one_of("status", FundStatus),
        CheckConstraint("giving_min_minor > 0 AND giving_max_minor >= giving_min_minor", name="giving_bounds"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    restricted: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The smallest and largest gift its donation page takes, in minor units of its currency.
    giving_min_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("100"))
    giving_max_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("10000000"))


class Account(Base):
    """A line of an organisation's chart of accounts (see ``ledger.core.chart`` for the fields' meaning).

    role: what the recipes use it for, if anything; several accounts may hold one role, and role_default marks
    the one a recipe takes when its caller names none (at most one per role, by a partial unique index).
    """

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("organisation_id", "code"),
        UniqueConstraint("organisation_id", "id"),
        one_of("type", AccountType),
        one_of("normal_balance", Side),
        one_of("balance_limit", BalanceLimit),
        Index("uq_accounts_role_default", "organisation_id", "role", unique=True,
              sqlite_where=text("role_default"), postgresql_where=text("role_default")),
        # What a day's row copies its limit from (DayBalance): a foreign key needs the pair unique.
        Index("uq_accounts_id_balance_limit", "id", "balance_limit", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    code: Mapped[str] = mapped_column(String(20))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    normal_balance: Mapped[str] = mapped_column(String(6))
    balance_limit: Mapped[str] = mapped_column(String(40))
    role: Mapped[str | None] = mapped_column(String(40))
    role_default: Mapped[bool] = mapped_column(Boolean, server_default=false())


class Entry(Base):
    """One balanced journal entry: one or more postings that stand or fall together.

    kind: the recipe that built it; effective_date: when it happened (reports use it); posted_at: when it
    was recorded (audits use both); idempotency_key: the caller's key, unique per organisation;
    payload_digest: SHA-256 of the entry's content, to tell a retry from a reuse of the key;
    recorded_by: who recorded it; reverses_entry_id: the entry this one reverses, if it is a reversal.
    """

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("organisation_id", "idempotency_key"),
        UniqueConstraint("organisation_id", "id", "effective_date"),
        ForeignKeyConstraint(["reverses_entry_id"], ["entries.id"], name="fk_entries_reverses_entry_id_entries"),
        Index("uq_entries_reverses_entry_id", "reverses_entry_id", unique=True,
              sqlite_where=text("reverses_entry_id IS NOT NULL"),
              postgresql_where=text("reverses_entry_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(40))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    posted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    description: Mapped[str] = mapped_column(String(500))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    payload_digest: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(200))
    reverses_entry_id: Mapped[int | None] = mapped_column(Id)


class Posting(Base):
    """One line of an entry: ``amount_minor`` of ``currency`` moved inside ``fund_id`` from
    ``credit_account_id`` to ``debit_account_id``. Balanced by construction, so every fund balances.

    effective_date repeats the entry's date (a foreign key keeps them equal) so that statements and
    as-of balances read one index instead of joining entries.
    """

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        ForeignKeyConstraint(
            ["organisation_id", "entry_id", "effective_date"],
            ["entries.organisation_id", "entries.id", "entries.effective_date"],
            name="fk_postings_entry_entries",
        ),
        ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_postings_fund_funds",
        ),
        ForeignKeyConstraint(
            ["organisation_id", "debit_account_id"], ["accounts.organisation_id", "accounts.id"],
            name="fk_postings_debit_account_accounts",
        ),
        ForeignKeyConstraint(
            ["organisation_id", "credit_account_id"], ["accounts.organisation_id", "accounts.id"],
            name="fk_postings_credit_account_accounts",
        ),
        Index("ix_postings_entry_id", "entry_id"),
        # Reports of one organisation or one fund as of a date read only their own postings.
        Index("ix_postings_organisation_fund_date", "organisation_id", "fund_id", "effective_date"),
        Index("ix_postings_debit_account", "debit_account_id", "fund_id", "effective_date", "id"),
        Index("ix_postings_credit_account", "credit_account_id", "fund_id", "effective_date", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entry_id: Mapped[int] = mapped_column(Id)
    organisation_id: Mapped[int] = mapped_column(Id)
    effective_date: Mapped[dt.date] = mapped_column(Date)
    fund_id: Mapped[int] = mapped_column(Id)
    debit_account_id: Mapped[int] = mapped_column(Id)
    credit_account_id: Mapped[int] = mapped_column(Id)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class Balance(Base):
    """Cumulative debits and credits of one (account, fund, currency): a cache of the postings.

    Both totals only ever grow (a trigger refuses a decrease); the balance is their difference, read in
    O(1). The integrity check recomputes them from the postings.
    """

    __tablename__ = "balances"
    __table_args__ = (
        CheckConstraint("debits_minor >= 0 AND credits_minor >= 0", name="totals_not_negative"),
        CheckConstraint("month_debits_minor BETWEEN 0 AND debits_minor AND month_credits_minor BETWEEN 0 AND "
                        "credits_minor AND (month IS NOT NULL OR (month_debits_minor = 0 AND month_credits_minor = 0))",
                        name="month_within_totals"),
        ForeignKeyConstraint(
            ["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
            name="fk_balances_account_accounts",
        ),
        ForeignKeyConstraint(
            ["organisation_id", "fund_id", "currency"],
            ["funds.organisation_id", "funds.id", "funds.currency"],
            name="fk_balances_fund_funds",
        ),
        # The account's limit on each balance row, kept equal by the cascade, so that the guards are conditions on
        # the row (revision 0018).
        ForeignKeyConstraint(["account_id", "balance_limit"], ["accounts.id", "accounts.balance_limit"],
                             name="fk_balances_limit_accounts", onupdate="CASCADE"),
        Index("ix_balances_organisation_id_fund_id", "organisation_id", "fund_id"),
    )

    account_id: Mapped[int] = mapped_column(Id, primary_key=True)
    fund_id: Mapped[int] = mapped_column(Id, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    debits_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)
    # The latest effective date of a posting on the balance (it never goes back): the balance's totals are that
    # day's, which ``daily_balances`` therefore does not keep (``ledger.db.store``).
    last_day: Mapped[dt.date | None] = mapped_column(Date)
    # ``last_day`` as it was before the balance's latest write, set by that write: the day it closed, if it moved on.
    last_day_before: Mapped[dt.date | None] = mapped_column(Date)
    balance_limit: Mapped[str] = mapped_column(String(40))
    # The balance's current month (its first day) and what the store's one-entry writes added to it; the rest of the
    # month's totals, and every other month's, are in ``monthly_balances`` (revision 0020; read them as
    # ``month_totals``). The month only moves forward; within it the totals only grow.
    month: Mapped[dt.date | None] = mapped_column(Date)
    month_debits_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    month_credits_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class DayBalance(Base):
    """A balance's cumulative debits and credits at the end of one day, for accounts with a limit: one row per day
    the balance moved before its last day (that day's totals are the balance's own). A backdated entry adds to its
    day's row and every later one, and a trigger refuses any row that breaks the account's limit, so the limit
    holds on every date (``ledger.core.limits``). Rebuilt from the postings when an account's limit changes."""

    __tablename__ = "daily_balances"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                             name="fk_daily_balances_account_accounts"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"],
                             name="fk_daily_balances_fund_funds"),
        ForeignKeyConstraint(["account_id", "balance_limit"], ["accounts.id", "accounts.balance_limit"],
                             onupdate="CASCADE", name="fk_daily_balances_limit_accounts"),
    )

    account_id: Mapped[int] = mapped_column(Id, primary_key=True)
    fund_id: Mapped[int] = mapped_column(Id, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    debits_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)
    # The account's, kept equal by the foreign key (a change cascades): the guards judge a day on its own row.
    balance_limit: Mapped[str] = mapped_column(String(40))


class MonthBalance(Base):
    """A balance's debits and credits in one calendar month (``month``: its first day), added by the store's own
    statement as postings go in, on both engines (revision 0018), and never lowered (a trigger refuses it): the public
    figures and reports sum months, never postings. On PostgreSQL a balance's current month is on its row instead
    (``Balance.month``, revision 0020) until the row moves on: read months through ``month_totals``, which sums the two.
    The integrity check recomputes them."""

    __tablename__ = "monthly_balances"
    __table_args__ = (
        CheckConstraint("debits_minor >= 0 AND credits_minor >= 0", name="totals_not_negative"),
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                             name="fk_monthly_balances_account_accounts"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"],
                             name="fk_monthly_balances_fund_funds"),
        Index("ix_monthly_balances_fund_id_month", "fund_id", "month"),
        Index("ix_monthly_balances_organisation_id_month", "organisation_id", "month"),
    )

    account_id: Mapped[int] = mapped_column(Id, primary_key=True)
    fund_id: Mapped[int] = mapped_column(Id, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    debits_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)


# A balance's totals in each month: ``monthly_balances`` plus the balance row's current month (revision 0020). A view,
# so on a MetaData of its own: the schema comparison and the append-only guards look at tables.
views = MetaData()
month_totals = Table(
    "month_totals", views,
    Column("account_id", Id), Column("fund_id", Id), Column("currency", String(3)), Column("month", Date),
    Column("organisation_id", Id), Column("debits_minor", BigInteger), Column("credits_minor", BigInteger),
)


class FundFigures(Base):
    """A fund's gifts counted by the database's trigger on ``donations``: every gift, the distinct donors named, the
    anonymous gifts (refunds do not uncount a gift: it was given)."""

    __tablename__ = "fund_figures"

    fund_id: Mapped[int] = mapped_column(ForeignKey("funds.id"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    gift_count: Mapped[int] = mapped_column(BigInteger)
    donor_count: Mapped[int] = mapped_column(BigInteger)
    anonymous_gift_count: Mapped[int] = mapped_column(BigInteger)


class BankStatement(Base):
    """One statement file imported for an account of money (``account_id``: a bank account of the chart): what the
    file was (its format, name and SHA-256), the bank's number for the account, the period and the balances it
    states, how many lines it had and how many of them were new (an overlapping statement brings some again)."""

    __tablename__ = "bank_statements"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                             name="fk_bank_statements_account_accounts"),
        UniqueConstraint("organisation_id", "id"),
        CheckConstraint("format IN ('csv', 'ofx', 'camt053')", name="format"),
        CheckConstraint("period_start <= period_end", name="period_in_order"),
        CheckConstraint("new_line_count >= 0 AND new_line_count <= line_count", name="counts"),
        Index("ix_bank_statements_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    account_id: Mapped[int] = mapped_column(Id)
    currency: Mapped[str] = mapped_column(String(3))
    format: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    bank_account: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    opening_minor: Mapped[int | None] = mapped_column(BigInteger)
    closing_minor: Mapped[int | None] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    new_line_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str] = mapped_column(String(200))


class StatementLine(Base):
    """A bank's line, once per account: ``fingerprint`` (unique per account) is the bank's own id of the
    transaction when it gives one, else a digest of the line's date, amount, texts and its place among identical
    lines of the same day, so that importing the same or an overlapping statement again adds nothing."""

    __tablename__ = "statement_lines"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "statement_id"],
                             ["bank_statements.organisation_id", "bank_statements.id"],
                             name="fk_statement_lines_statement_bank_statements"),
        UniqueConstraint("account_id", "fingerprint"),
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        Index("ix_statement_lines_account_id_booked_on", "account_id", "booked_on"),
        Index("ix_statement_lines_match_id", "match_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    account_id: Mapped[int] = mapped_column(Id)
    statement_id: Mapped[int] = mapped_column(Id)
    booked_on: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(200))
    counterparty: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500))
    bank_id: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(100))
    # The match it is in, while it is matched (one at most: a line is never matched for more than it is).
    match_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_matches.id"))


class ReconciliationMatch(Base):
    """Statement lines and entries found to be the same money on one account: their amounts sum alike. Kept when
    unmatched (``unmatched_at``), with the lines and entries it held (JSON lists of ids), for the record."""

    __tablename__ = "reconciliation_matches"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                             name="fk_reconciliation_matches_account_accounts"),
        CheckConstraint("(unmatched_at IS NULL) = (unmatched_by IS NULL)", name="unmatched_by_someone"),
        Index("ix_reconciliation_matches_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    account_id: Mapped[int] = mapped_column(Id)
    rule: Mapped[str] = mapped_column(String(30))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    line_ids: Mapped[str] = mapped_column(Text)
    entry_ids: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    unmatched_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    unmatched_by: Mapped[str | None] = mapped_column(String(200))


class MatchedEntry(Base):
    """An entry matched on an account, while it is (its primary key: an entry is matched once per account)."""

    __tablename__ = "matched_entries"

    account_id: Mapped[int] = mapped_column(Id, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_matches.id"))
    organisation_id: Mapped[int] = mapped_column(Id)


class StatementMapping(Base):
    """A bank's CSV layout saved by an organisation under a name (``ledger.reconciliation.statements.CsvMapping``'s
    fields as JSON)."""

    __tablename__ = "statement_mappings"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    mapping: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))


class ReconciliationClose(Base):
    """An account's month closed as reconciled: the month's reconciliation report as it stood (``report``, canonical
    JSON; ``sha256`` its digest), ``version`` counting the closes of that month (reopened and closed again: the next
    one). Append-only (triggers)."""

    __tablename__ = "reconciliation_closes"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"],
                             name="fk_reconciliation_closes_account_accounts"),
        UniqueConstraint("account_id", "month", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("length(sha256) = 64", name="sha256_whole"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    account_id: Mapped[int] = mapped_column(Id)
    month: Mapped[dt.date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    closed_by: Mapped[str] = mapped_column(String(200))


class PublicVersion(Base):
    """A number the database's triggers raise whenever what an organisation's public pages show changes without an
    entry (the organisation, a fund or an account edited or added, a donor edited, a report published): with the
    newest entry's id it tells a cached public page whether it is still true."""

    __tablename__ = "public_versions"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class PublishedReport(Base):
    """A period's figures as published: numbered by ``id``, one ``version`` of a ``series`` (an organisation's or a
    fund's period), a correction replacing the version before with its explanation. ``figures``: the canonical
    JSON snapshot (``figures_sha256`` its digest); ``leaves``: the Merkle leaves of the period's gifts, 32 bytes
    each, in order, whose RFC 6962 root is ``merkle_root``; ``seal_batch_hash``: the organisation's latest sealed
    batch when it was computed, covering entries through ``sealed_through_entry_id``. Append-only (triggers)."""

    __tablename__ = "published_reports"
    __table_args__ = (
        UniqueConstraint("organisation_id", "series", "version", name="uq_published_reports_series_version"),
        UniqueConstraint("replaces_id"),
        CheckConstraint("period_start <= period_end", name="period_in_order"),
        CheckConstraint("version >= 1 AND (version = 1) = (replaces_id IS NULL)", name="versions_chain"),
        CheckConstraint("(version = 1) = (correction_note = '')", name="correction_explained"),
        CheckConstraint("length(leaves) = 32 * donation_count", name="leaves_whole"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    fund_id: Mapped[int | None] = mapped_column(ForeignKey("funds.id"))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    series: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("published_reports.id"))
    correction_note: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(String(300))
    figures: Mapped[str] = mapped_column(Text)
    figures_sha256: Mapped[str] = mapped_column(String(64))
    donation_count: Mapped[int] = mapped_column(BigInteger)
    merkle_root: Mapped[str] = mapped_column(String(64))
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    seal_batch_hash: Mapped[str] = mapped_column(String(64))
    sealed_through_entry_id: Mapped[int] = mapped_column(Id)
    published_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    published_by: Mapped[str] = mapped_column(String(200))


class Period(Base):
    """An accounting month of an organisation. A closed period accepts no posting dated inside it."""

    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("organisation_id", "start_date"),
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
        one_of("status", PeriodStatus),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    changed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    changed_by: Mapped[str] = mapped_column(String(200))


class SealBatch(Base):
    """A sealed, hashed run of one organisation's entries (DESIGN.md invariant 7).

    Covers that organisation's entries with ids first_entry_id..last_entry_id and their postings.
    leaves: the leaf hashes in order, each 41 bytes (kind byte, 8-byte id, 32-byte SHA-256), so that the
    integrity check can name the very row that changed; merkle_root: RFC 6962 root over the leaf hashes;
    batch_hash: SHA-256 over the previous batch's hash and this batch's fields, chaining the batches.
    """

    __tablename__ = "seal_batches"
    __table_args__ = (UniqueConstraint("organisation_id", "sequence_no"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    sequence_no: Mapped[int] = mapped_column(Integer)
    first_entry_id: Mapped[int] = mapped_column(Id)
    last_entry_id: Mapped[int] = mapped_column(Id)
    entry_count: Mapped[int] = mapped_column(Integer)
    posting_count: Mapped[int] = mapped_column(Integer)
    leaves: Mapped[bytes] = mapped_column(LargeBinary)
    merkle_root: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    batch_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class User(Base):
    """A person who signs in: a fund manager, an auditor, an administrator.

    email: lower-cased, unique; password_hash: argon2id (PHC string); platform_admin: may administer every
    organisation; disabled_at: set when the account is switched off (its tokens stop working with it).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    platform_admin: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A long random secret a program presents instead of a password, shown once when issued.

    prefix: the token's public start, unique, to find the row without a scan; secret_sha256: SHA-256 of the
    whole token (a 256-bit secret needs no slow hash, and a slow one would cap every request, DESIGN §9);
    expires_at / revoked_at: after either, the token no longer authenticates.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class Membership(Base):
    """A user's role in one organisation: org_admin (runs it), fund_manager (only the funds assigned in
    ``fund_assignments``) or auditor (reads everything of it, changes nothing)."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "organisation_id"),
        UniqueConstraint("id", "organisation_id"),
        one_of("role", MemberRole),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class FundAssignment(Base):
    """A fund a fund manager manages. The composite keys keep the fund in the membership's organisation."""

    __tablename__ = "fund_assignments"
    __table_args__ = (
        ForeignKeyConstraint(["membership_id", "organisation_id"], ["memberships.id", "memberships.organisation_id"],
                             name="fk_fund_assignments_membership_memberships", ondelete="CASCADE"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"],
                             name="fk_fund_assignments_fund_funds"),
    )

    membership_id: Mapped[int] = mapped_column(Id, primary_key=True)
    fund_id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    currency: Mapped[str] = mapped_column(String(3))


class Donor(Base):
    """Someone who gives. email, phone, address and tax_id are personal data: they never leave through a
    public answer. public_name_consent: whether the name may be published (masked otherwise, 张*)."""

    __tablename__ = "donors"
    __table_args__ = (
        UniqueConstraint("organisation_id", "id"),
        one_of("kind", DonorKind),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    tax_id: Mapped[str | None] = mapped_column(String(40))
    public_name_consent: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Donation(Base):
    """A gift recorded in the books: who (donor_id, none when anonymous), which fund, how much, by which
    channel (bank, cheque, cash, in_kind), and the entry that recorded it, dated the day it was received.
    In-kind gifts carry a description and the basis of their valuation. refunded_minor grows with refunds
    and never passes the amount."""

    __tablename__ = "donations"
    __table_args__ = (
        UniqueConstraint("organisation_id", "id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refunds_within_amount"),
        CheckConstraint("goods_value_minor >= 0 AND goods_value_minor <= amount_minor",
                        name="goods_value_within_amount"),
        one_of("channel", DonationChannel),
        CheckConstraint("channel <> 'in_kind' OR (in_kind_description <> '' AND valuation_basis <> '')",
                        name="in_kind_described"),
        ForeignKeyConstraint(["organisation_id", "donor_id"], ["donors.organisation_id", "donors.id"],
                             name="fk_donations_donor_donors"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"], name="fk_donations_fund_funds"),
        ForeignKeyConstraint(["organisation_id", "entry_id", "received_on"],
                             ["entries.organisation_id", "entries.id", "entries.effective_date"],
                             name="fk_donations_entry_entries"),
        Index("ix_donations_organisation_id_fund_id", "organisation_id", "fund_id"),
        Index("ix_donations_donor_id", "donor_id"),
        # A fund's latest gifts, a period's gifts (published reports), and whether a donor gave to a fund before.
        Index("ix_donations_fund_id_received_on_id", "fund_id", "received_on", "id"),
        Index("ix_donations_organisation_id_received_on_id", "organisation_id", "received_on", "id"),
        Index("ix_donations_fund_id_donor_id", "fund_id", "donor_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    fund_id: Mapped[int] = mapped_column(Id)
    donor_id: Mapped[int | None] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    received_on: Mapped[dt.date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500))
    in_kind_description: Mapped[str] = mapped_column(String(500))
    valuation_basis: Mapped[str] = mapped_column(String(200))
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    # The good-faith value of goods or services the donor received in return (a dinner's meal, say): receipts deduct
    # it (the US's quid pro quo statement, Canada's advantage).
    goods_value_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    entry_id: Mapped[int] = mapped_column(Id, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Refund(Base):
    """Money given back for a donation, recorded by its own entry."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        ForeignKeyConstraint(["organisation_id", "donation_id"], ["donations.organisation_id", "donations.id"],
                             name="fk_refunds_donation_donations"),
        ForeignKeyConstraint(["organisation_id", "entry_id", "refunded_on"],
                             ["entries.organisation_id", "entries.id", "entries.effective_date"],
                             name="fk_refunds_entry_entries"),
        Index("ix_refunds_donation_id", "donation_id"),
        Index("uq_refunds_cancelled_entry_id", "cancelled_entry_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    donation_id: Mapped[int] = mapped_column(Id)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(500))
    entry_id: Mapped[int] = mapped_column(Id, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    # A refund recorded by mistake is cancelled through this record: its entry reversed, when, by whom, why.
    cancelled_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(200))
    cancel_reason: Mapped[str] = mapped_column(String(500), server_default="")


class Grant(Base):
    """Money leaving a fund for a payee: requested, then approved (by one person, or two above the
    organisation's threshold; never by the requester), then paid, at once or in parts (never by the requester).
    Approval posts the cost and the amount owed, each payment the money leaving the bank; cancelling posts the
    unpaid part back. Rejected grants post nothing. paid_minor and cancelled_minor never pass the amount."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("id", "requested_by_user_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        one_of("category", GrantCategory),
        one_of("status", GrantStatus),
        one_of("payee_kind", PayeeKind),
        CheckConstraint("approvals_required IN (1, 2)", name="approvals_required"),
        CheckConstraint("(status IN ('approved', 'partly_paid', 'paid', 'cancelled'))"
                        " = (approved_entry_id IS NOT NULL)", name="approved_posted"),
        CheckConstraint("paid_minor >= 0 AND cancelled_minor >= 0 AND paid_minor + cancelled_minor <= amount_minor",
                        name="paid_within_amount"),
        CheckConstraint("(status IN ('requested', 'rejected', 'approved') AND paid_minor = 0)"
                        " OR (status = 'partly_paid' AND paid_minor > 0 AND paid_minor < amount_minor)"
                        " OR (status = 'paid' AND paid_minor = amount_minor)"
                        " OR (status = 'cancelled' AND paid_minor + cancelled_minor = amount_minor)",
                        name="paid_matches_status"),
        CheckConstraint("(status = 'cancelled') = (cancelled_entry_id IS NOT NULL AND cancelled_minor > 0)",
                        name="cancelled_posted"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"], name="fk_grants_fund_funds"),
        Index("ix_grants_organisation_id_status", "organisation_id", "status"),
        Index("ix_grants_fund_id_id", "fund_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    fund_id: Mapped[int] = mapped_column(Id)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payee: Mapped[str] = mapped_column(String(200))
    # An individual payee's name is masked on the public pages (PayeeKind).
    payee_kind: Mapped[str] = mapped_column(String(20), server_default="organisation")
    purpose: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    approvals_required: Mapped[int] = mapped_column(Integer)
    requested_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    approved_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    paid_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cancelled_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    cancelled_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cancelled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(String(500), server_default="")


class GrantPayment(Base):
    """One payment of a grant, with its entry. The database refuses the grant's requester as payer (the composite
    key copies the requester from the grant); a payment without a payer must say so (``payer_unknown``, set only by
    revision 0005 for payments whose payer was never recorded)."""

    __tablename__ = "grant_payments"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("paid_by_user_id <> requested_by_user_id", name="not_the_requester"),
        CheckConstraint("(paid_by_user_id IS NULL) = payer_unknown", name="payer_known"),
        ForeignKeyConstraint(["grant_id", "requested_by_user_id"], ["grants.id", "grants.requested_by_user_id"],
                             name="fk_grant_payments_grant_grants"),
        ForeignKeyConstraint(["organisation_id", "entry_id", "paid_on"],
                             ["entries.organisation_id", "entries.id", "entries.effective_date"],
                             name="fk_grant_payments_entry_entries"),
        Index("ix_grant_payments_grant_id", "grant_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    grant_id: Mapped[int] = mapped_column(Id)
    requested_by_user_id: Mapped[int] = mapped_column(Id)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    entry_id: Mapped[int] = mapped_column(Id, unique=True)
    paid_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # True only for payments recorded before revision 0005 whose payer nobody recorded.
    payer_unknown: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class GrantApproval(Base):
    """One person's approval of a grant. The database itself refuses the requester as approver (the
    composite key copies the requester from the grant) and the same approver twice (the primary key)."""

    __tablename__ = "grant_approvals"
    __table_args__ = (
        CheckConstraint("user_id <> requested_by_user_id", name="not_the_requester"),
        ForeignKeyConstraint(["grant_id", "requested_by_user_id"], ["grants.id", "grants.requested_by_user_id"],
                             name="fk_grant_approvals_grant_grants"),
    )

    grant_id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    requested_by_user_id: Mapped[int] = mapped_column(Id)
    approved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ProcessorEvent(Base):
    """An event a payment processor sent (a Stripe webhook event), stored once by its id, in the transaction that
    acknowledges it: a second delivery finds it there and changes nothing. ``payload``: the body exactly as it was
    signed; ``created_at``: when the processor says the event happened; ``status``: what became of it."""

    __tablename__ = "processor_events"
    __table_args__ = (
        UniqueConstraint("channel", "event_id"),
        one_of("status", EventStatus),
        Index("ix_processor_events_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))


class OnlineGift(Base):
    """A gift started on a fund's donation page: what the donor filled in, who takes the payment, and where it
    stands (``GiftStatus``). It becomes a donation (``donation_id``) once paid, and only then; ``token`` names it in
    its pages' URLs (random: gifts cannot be enumerated); ``fee_minor``: the processor's fee, once known."""

    __tablename__ = "online_gifts"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        one_of("channel", PaymentChannelName),
        one_of("status", GiftStatus),
        CheckConstraint("(status = 'succeeded') = (donation_id IS NOT NULL)", name="donation_once_succeeded"),
        ForeignKeyConstraint(["organisation_id", "fund_id", "currency"],
                             ["funds.organisation_id", "funds.id", "funds.currency"],
                             name="fk_online_gifts_fund_funds"),
        ForeignKeyConstraint(["organisation_id", "donation_id"], ["donations.organisation_id", "donations.id"],
                             name="fk_online_gifts_donation_donations"),
        UniqueConstraint("token"),
        UniqueConstraint("donation_id"),
        Index("ix_online_gifts_organisation_id_status", "organisation_id", "status"),
        ForeignKeyConstraint(["plan_id"], ["online_gifts.id"], name="fk_online_gifts_plan_id_online_gifts"),
        UniqueConstraint("invoice_id"),
        CheckConstraint("plan_id IS NULL OR invoice_id IS NOT NULL", name="instalment_of_a_plan"),
        Index("ix_online_gifts_subscription_id", "subscription_id"),
        Index("ix_online_gifts_payment_id", "payment_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id)
    fund_id: Mapped[int] = mapped_column(Id)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    donor_name: Mapped[str] = mapped_column(String(200))
    donor_email: Mapped[str] = mapped_column(String(320))
    donor_address: Mapped[str] = mapped_column(String(500))
    donor_tax_id: Mapped[str] = mapped_column(String(40))
    name_public: Mapped[bool] = mapped_column(Boolean)
    dedication: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(String(255))
    fee_minor: Mapped[int | None] = mapped_column(BigInteger)
    # What the channel reported paid (it may differ from what was asked: then the gift is set aside for review).
    paid_minor: Mapped[int | None] = mapped_column(BigInteger)
    paid_currency: Mapped[str | None] = mapped_column(String(3))
    paid_on: Mapped[dt.date | None] = mapped_column(Date)
    review_reason: Mapped[str] = mapped_column(String(500))
    donation_id: Mapped[int | None] = mapped_column(Id)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # A monthly gift: the first month's gift is the plan (its subscription at the processor, and when it was
    # cancelled); each later month's is a gift of its own naming the plan and the invoice it paid (once).
    monthly: Mapped[bool] = mapped_column(Boolean, server_default=false())
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    plan_id: Mapped[int | None] = mapped_column(Id)
    invoice_id: Mapped[str | None] = mapped_column(String(255))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # When the donor's confirmation email went (None: still to send, retried until it goes).
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    confirmation_claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
