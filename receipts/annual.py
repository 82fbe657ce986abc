"""Annual receipts: one receipt per donor (and currency) for the year's gifts that no receipt covers yet — the
organisation's year (``fiscal_year_start_month``; January: the calendar year), named by the year it starts in.

What is owed is read in one query (each gift of the year, less its refunds and less what receipts that stand
already cover), then issued donor by donor in batches, each batch one transaction (its receipts, their lines and
their PDFs, stored). A run that stops part way leaves whole batches behind; running it again issues only what is
still owed, so nothing is issued twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy import BigInteger, cast, exists, func, select
from sqlalchemy.orm import Session

from ledger.db.models import Donation
from ledger.db.types import utc_now
from receipts.documents import line_of, store_originals
from receipts.models import ReceiptKind, ReceiptLine, ReceiptVoid
from receipts.register import Covered, fiscal_year, issue_many, lock_gifts, lock_series, settings_of

BATCH = 200  # donors a transaction: short enough to hold the series' counter briefly, long enough to be quick


@dataclass
class AnnualSummary:
    donors: int = 0
    receipts: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency → minor units receipted


def owed(session: Session, organisation_id: int, year: int,
         donation_ids: list[int] | None = None) -> list[tuple[int, str, int, int]]:
    first, last = fiscal_year(settings_of(session, organisation_id), year)
    """(donor, currency, gift, minor units owed) for the year's gifts of named donors not wholly receipted (of
    ``donation_ids`` only, if given)."""
    covered = (select(ReceiptLine.donation_id, func.sum(ReceiptLine.amount_minor).label("covered"))
               .where(~exists().where(ReceiptVoid.receipt_id == ReceiptLine.receipt_id))
               .group_by(ReceiptLine.donation_id).subquery())
    left = cast(Donation.amount_minor - Donation.refunded_minor - func.coalesce(covered.c.covered, 0), BigInteger)
    rows = session.execute(
        select(Donation.donor_id, Donation.currency, Donation.id, left)
        .outerjoin(covered, covered.c.donation_id == Donation.id)
        .where(Donation.organisation_id == organisation_id, Donation.donor_id.is_not(None),
               Donation.received_on >= first, Donation.received_on <= last,
               left > 0, *([Donation.id.in_(donation_ids)] if donation_ids is not None else []))
        .order_by(Donation.donor_id, Donation.currency, Donation.id))
    return [(donor_id, currency, donation_id, int(left)) for donor_id, currency, donation_id, left in rows]


def donors_owed(rows: list[tuple[int, str, int, int]]) -> list[list[tuple[int, str, int, int]]]:
    """The rows grouped by donor and currency: one receipt each."""
    return [list(group) for _, group in groupby(rows, key=lambda row: (row[0], row[1]))]


def issue_annual(database, organisation_id: int, year: int, *, created_by: str,
                 address_of: Callable, batches: Callable[[list], Iterator] | None = None,
                 render_processes: int = 1) -> AnnualSummary:
    """Issues the year's annual receipts; ``address_of(receipt)`` gives a receipt's verification address (for
    its QR code); ``batches`` wraps the list of batches (a progress bar); ``render_processes`` > 1 renders the
    PDFs in that many processes (rendering is most of the work, and Python's runs on one core)."""
    if render_processes > 1:
        with ProcessPoolExecutor(render_processes) as pool:
            return _issue_all(database, organisation_id, year, created_by, address_of, batches,
                              functools.partial(pool.map, chunksize=8))
    return _issue_all(database, organisation_id, year, created_by, address_of, batches, map)


def _issue_all(database, organisation_id: int, year: int, created_by: str, address_of: Callable,
               batches: Callable | None, renders: Callable) -> AnnualSummary:
    with database.read() as session:
        groups = donors_owed(owed(session, organisation_id, year))
    summary = AnnualSummary(donors=len({group[0][0] for group in groups}))
    chunks = [groups[start:start + BATCH] for start in range(0, len(groups), BATCH)]
    for chunk in (batches(chunks) if batches else chunks):
        for receipt in database.write(lambda session, chunk=chunk: _issue_batch(
                session, organisation_id, year, chunk, created_by, address_of, renders)):
            summary.receipts += 1
            summary.amounts[receipt[1]] = summary.amounts.get(receipt[1], 0) + receipt[0]
    return summary


def _issue_batch(session: Session, organisation_id: int, year: int, chunk: list, created_by: str,
                 address_of: Callable, renders: Callable) -> list[tuple[int, str]]:
    """The chunk's receipts, for what is still owed once the series is locked: a run at the same time as this
    one, or a gift's own receipt, may have covered part of it since the list was read."""
    today = utc_now().date()
    lock_series(session, organisation_id, today.year)
    lock_gifts(session, [row[2] for group in chunk for row in group])
    fresh = owed(session, organisation_id, year, [row[2] for group in chunk for row in group])
    if not fresh:
        return []
    donations = {row.id: row for row in session.scalars(select(Donation).where(
        Donation.id.in_([row[2] for row in fresh])))}
    groups = [[Covered(donations[gift_id], left) for _, _, gift_id, left in group] for group in donors_owed(fresh)]
    receipts = issue_many(session, organisation_id, groups, kind=ReceiptKind.ANNUAL, issued_on=today,
                          created_by=created_by)
    store_originals(session, [(receipt, tuple(line_of(item.donation, item.amount_minor) for item in covered))
                              for receipt, covered in zip(receipts, groups, strict=True)], address_of,
                    renders=renders)
    return [(receipt.amount_minor, receipt.currency) for receipt in receipts]
