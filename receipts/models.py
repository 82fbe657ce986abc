"""The receipt register's tables, on the ledger's one MetaData (``ledger.db.base``): compared with the migrations
like every other table.

A receipt, its lines (which gifts it covers), its voiding and each rendering of its PDF are rows that are never
changed or deleted (the database refuses it: revision 0012's triggers). What changes is told by new rows: a void
names its reason, a replacement names the receipt it replaces, an official bill attached is a new PDF version.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.base import Base
from ledger.db.models import one_of
from ledger.db.types import Id, UtcDateTime


class ReceiptTiming(StrEnum):
    """When an organisation issues receipts."""

    PER_DONATION = "per_donation"  # as soon as each gift is recorded (the default)
    ANNUAL = "annual"  # one per donor per year, for the gifts no receipt covers yet
    ON_REQUEST = "on_request"  # only when a manager asks


class ReceiptJurisdiction(StrEnum):
    CN = "CN"
    US = "US"
    CA = "CA"
    UK = "UK"


class ReceiptKind(StrEnum):
    DONATION = "donation"  # one gift
    ANNUAL = "annual"  # a donor's gifts of a year


class ReceiptLanguage(StrEnum):
    ZH_CN = "zh-CN"
    EN = "en"


class ReceiptSettings(Base):
    """An organisation's receipts: the numbers' prefix (unique across the deployment, so a number names one
    receipt), when they are issued, whose rules they follow and their language."""

    __tablename__ = "receipt_settings"
    __table_args__ = (
        UniqueConstraint("prefix"),
        one_of("timing", ReceiptTiming),
        one_of("jurisdiction", ReceiptJurisdiction),
        one_of("language", ReceiptLanguage),
        CheckConstraint("length(prefix) BETWEEN 1 AND 20", name="prefix_length"),
        CheckConstraint("fiscal_year_start_month BETWEEN 1 AND 12", name="fiscal_year_start_month"),
    )

    organisation_id: Mapped[int] = mapped_column(Id, ForeignKey("organisations.id"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20))
    timing: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(10))
    # The month the organisation's year starts (annual receipts cover that year); where receipts are issued from
    # and who signs them (Canada's official receipts name both).
    fiscal_year_start_month: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    issuer_address: Mapped[str] = mapped_column(String(300), server_default="")
    signatory: Mapped[str] = mapped_column(String(200), server_default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(200))


class ReceiptCounter(Base):
    """The last number issued in an organisation's series of a year: incremented in the transaction that issues
    the receipt (its row locked until that commits), so numbers have no gaps and no repeats."""

    __tablename__ = "receipt_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    organisation_id: Mapped[int] = mapped_column(Id, ForeignKey("organisations.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


class Receipt(Base):
    """A receipt as issued: its number, for whom (the donor's name, address and tax id as they were), for how much
    and which gifts (``ReceiptLine``), in which language and under whose rules. ``replaces_receipt_id``: the
    receipt this one replaces (voided with it)."""

    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("number"),
        UniqueConstraint("organisation_id", "year", "sequence"),
        UniqueConstraint("replaces_receipt_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("advantage_minor >= 0 AND advantage_minor <= amount_minor", name="advantage_within_amount"),
        CheckConstraint("sequence > 0", name="sequence_positive"),
        CheckConstraint("period_start <= period_end", name="period_ordered"),
        one_of("kind", ReceiptKind),
        one_of("jurisdiction", ReceiptJurisdiction),
        one_of("language", ReceiptLanguage),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id, ForeignKey("organisations.id"), index=True)
    number: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    donor_id: Mapped[int] = mapped_column(Id, ForeignKey("donors.id"), index=True)
    fund_id: Mapped[int | None] = mapped_column(Id, ForeignKey("funds.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # What the donor received in return, at its good-faith value (of the gifts covered): the deductible part is the
    # amount less this.
    advantage_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    replaces_receipt_id: Mapped[int | None] = mapped_column(Id, ForeignKey("receipts.id"))
    jurisdiction: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(10))
    donor_name: Mapped[str] = mapped_column(String(200))
    donor_address: Mapped[str] = mapped_column(String(500))
    donor_tax_id: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class ReceiptLine(Base):
    """A gift a receipt covers, and how much of it (what was not refunded when the receipt was issued)."""

    __tablename__ = "receipt_lines"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    receipt_id: Mapped[int] = mapped_column(Id, ForeignKey("receipts.id"), primary_key=True)
    donation_id: Mapped[int] = mapped_column(Id, ForeignKey("donations.id"), primary_key=True, index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class ReceiptVoid(Base):
    """A receipt voided: why, when, by whom; ``refund_id`` when a refund of a gift it covers voided it."""

    __tablename__ = "receipt_voids"

    receipt_id: Mapped[int] = mapped_column(Id, ForeignKey("receipts.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    refund_id: Mapped[int | None] = mapped_column(Id, ForeignKey("refunds.id"))
    voided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    voided_by: Mapped[str] = mapped_column(String(200))


class ReceiptDocument(Base):
    """A rendering of a receipt's PDF: the first when it was issued, a later version when something was attached
    (the official bill). Its SHA-256 is what the verification page shows."""

    __tablename__ = "receipt_documents"
    __table_args__ = (CheckConstraint("version > 0", name="version_positive"),)

    receipt_id: Mapped[int] = mapped_column(Id, ForeignKey("receipts.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent (at ``due_at``: later after a failure)
    SENDING = "sending"  # claimed by a sender
    SENT = "sent"
    SKIPPED = "skipped"  # the receipt was voided before its email went


class ReceiptDelivery(Base):
    """A receipt's email to its donor: the one mutable row of the register, as its delivery goes (``receipts
    .delivery``)."""

    __tablename__ = "receipt_deliveries"
    __table_args__ = (one_of("status", DeliveryStatus), Index("ix_receipt_deliveries_status_due_at", "status",
                                                             "due_at"))

    receipt_id: Mapped[int] = mapped_column(Id, ForeignKey("receipts.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class OfficialBill(Base):
    """The finance department's official donation e-bill (公益事业捐赠票据) for a receipt, once that system has
    issued it: its code, number, check code and date. Attached once; the receipt's PDF is rendered again with it,
    as a new version."""

    __tablename__ = "receipt_official_bills"

    receipt_id: Mapped[int] = mapped_column(Id, ForeignKey("receipts.id"), primary_key=True)
    bill_code: Mapped[str] = mapped_column(String(40))
    bill_number: Mapped[str] = mapped_column(String(40))
    check_code: Mapped[str] = mapped_column(String(40))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    attached_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    attached_by: Mapped[str] = mapped_column(String(200))


class GiftAidDeclaration(Base):
    """A UK donor's Gift Aid declaration: the charity may claim basic-rate tax back on the donor's gifts from
    ``effective_from`` (a declaration may reach back four years) until it is ``cancelled_on``."""

    __tablename__ = "gift_aid_declarations"
    __table_args__ = (
        CheckConstraint("cancelled_on IS NULL OR cancelled_on >= effective_from", name="cancelled_after_start"),
        CheckConstraint("effective_from <= declared_on", name="effective_from_before_declared"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(Id, ForeignKey("organisations.id"))
    donor_id: Mapped[int] = mapped_column(Id, ForeignKey("donors.id"), index=True)
    declared_on: Mapped[dt.date] = mapped_column(Date)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    cancelled_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
