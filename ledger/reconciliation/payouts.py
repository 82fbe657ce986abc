"""A processor's payout tied to the books: each of its balance transactions (a charge, a refund, a dispute's
withdrawal or reinstatement, anything else) to the donation it concerns, Stripe's gross, fee and net beside what the
ledger recorded, and the payout's amount beside the entries that moved it from the processor clearing account to the
bank. Whatever does not agree is listed as a **difference**, in minor units, signed as what Stripe's side holds more
than the ledger's:

- ``no_gift``: a transaction no gift of this organisation explains (Stripe's own fees, an adjustment, a payment
  made elsewhere, a gift not recorded yet or set aside for review): its whole net;
- ``currency_differs``: settled in another currency than the gift was recorded in: its whole net;
- ``amount_differs``: the gross is not what the ledger recorded (the gift, its refund, the dispute's refund);
- ``fee_differs``: Stripe's fee is not the fee the ledger recorded (the ledger's less Stripe's);
- ``refund_not_recorded``: money Stripe gave back (or a dispute took, or reinstated) that the ledger has no record
  of: its gross;
- ``transactions_differ``: the transactions' nets do not sum to the payout's amount;
- ``payout_not_posted`` / ``posted_differs``: the ledger's payout entries (``stripe-payout-<id>-<fund>``, not
  reversed) are missing, or do not sum to the payout's amount (a payout not paid, or failed, should have none).

The tie (``tie``) is pure: data in, data out. The transaction differences and the ledger's nets of the rows it ties
add up to the payout's amount, always; the two about the entries compare them with that amount on their own.
``payout_tie`` reads Stripe (through the channel's own listing) and then the books, and ties them; it writes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session, aliased

from ledger.books.charts import load_chart
from ledger.core.chart import Role
from ledger.core.errors import NotFound
from ledger.db.models import Donation, Entry, OnlineGift, Posting, Refund
from ledger.payments.stripe_channel import (
    BalanceTransaction,
    Payout,
    StripeAccount,
    dispute_fee_key,
    dispute_key,
    payout_key,
    payout_of,
    payout_transactions,
    refund_key,
)

NO_GIFT, CURRENCY_DIFFERS = "no_gift", "currency_differs"
AMOUNT_DIFFERS, FEE_DIFFERS, REFUND_NOT_RECORDED = "amount_differs", "fee_differs", "refund_not_recorded"
TRANSACTIONS_DIFFER = "transactions_differ"
PAYOUT_NOT_POSTED, POSTED_DIFFERS = "payout_not_posted", "posted_differs"
POSTING_KINDS = frozenset({PAYOUT_NOT_POSTED, POSTED_DIFFERS})


@dataclass(frozen=True, slots=True)
class RecordedGift:
    """What the ledger recorded of a payment: its donation's gross, the fee recorded with it, fund and entry."""

    intent_id: str
    donation_id: int
    fund_id: int
    currency: str
    amount_minor: int
    fee_minor: int
    entry_id: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the ledger posted for a balance transaction other than a gift's payment: the refund (negative) or its
    cancellation (positive), None when it has none; the dispute fee charged (positive) or returned; the entries."""

    amount_minor: int | None
    fee_minor: int = 0
    entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """A fund's share of the payout as the ledger posted it: to the bank positive, netted (the fund's bank paid
    its clearing account back) negative."""

    entry_id: int
    fund_id: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Row:
    transaction_id: str
    type: str
    source_id: str | None
    intent_id: str | None
    currency: str
    stripe_gross_minor: int
    stripe_fee_minor: int
    stripe_net_minor: int
    donation_id: int | None
    fund_id: int | None
    entry_ids: tuple[int, ...]
    ledger_gross_minor: int | None  # None: the ledger explains nothing of it
    ledger_fee_minor: int | None
    ledger_net_minor: int | None
    difference_minor: int  # Stripe's net less the ledger's


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    amount_minor: int
    transaction_id: str | None = None
    donation_id: int | None = None


@dataclass(frozen=True, slots=True)
class PayoutTie:
    payout: Payout
    rows: list[Row]
    transactions_net_minor: int  # Stripe's: the sum of its transactions' nets
    tied_net_minor: int  # the ledger's: the nets it recorded for them
    posted_minor: int  # the ledger's payout entries
    posted_entry_ids: list[int]
    differences: list[Difference]

    @property
    def reconciled(self) -> bool:
        return not self.differences


def tie(payout: Payout, transactions: Sequence[BalanceTransaction], gifts: Mapping[str, RecordedGift],
        recorded: Mapping[str, Recorded], posted: Sequence[PostedEntry]) -> PayoutTie:
    """The payout tied to the books: ``gifts`` by payment intent (this organisation's only), ``recorded`` by balance
    transaction, ``posted`` the payout's live entries."""
    rows, differences = [], []
    for transaction in transactions:
        gift = gifts.get(transaction.intent_id) if transaction.intent_id else None
        row, found = _tied(transaction, gift, recorded.get(transaction.id))
        rows.append(row)
        differences += [difference for difference in found if difference.amount_minor]  # (nothing owed: none)
    net = sum(row.stripe_net_minor for row in rows)
    if net != payout.amount_minor:
        differences.append(Difference(TRANSACTIONS_DIFFER, payout.amount_minor - net))
    posted_minor = sum(entry.amount_minor for entry in posted)
    differences += _posting_differences(payout, posted, posted_minor)
    return PayoutTie(payout, rows, net, sum(row.ledger_net_minor or 0 for row in rows), posted_minor,
                     sorted(entry.entry_id for entry in posted), differences)


def _tied(transaction: BalanceTransaction, gift: RecordedGift | None,
          recorded: Recorded | None) -> tuple[Row, list[Difference]]:
    if gift is None or not _explicable(transaction):
        return _row(transaction, gift, None, None), [Difference(NO_GIFT, transaction.net_minor, transaction.id)]
    if transaction.currency != gift.currency:
        return _row(transaction, gift, None, None), [
            Difference(CURRENCY_DIFFERS, transaction.net_minor, transaction.id, gift.donation_id)]
    if transaction.source_kind == "charge":
        gross, fee, kind = gift.amount_minor, gift.fee_minor, AMOUNT_DIFFERS
    else:
        recorded = recorded or Recorded(None)
        gross, fee = recorded.amount_minor, recorded.fee_minor
        kind = REFUND_NOT_RECORDED if gross is None else AMOUNT_DIFFERS
    differences = [Difference(kind, transaction.amount_minor - (gross or 0), transaction.id, gift.donation_id),
                   Difference(FEE_DIFFERS, fee - transaction.fee_minor, transaction.id, gift.donation_id)]
    entries = (gift.entry_id,) if transaction.source_kind == "charge" else recorded.entry_ids
    return _row(transaction, gift, gross or 0, fee, entries), differences


def _explicable(transaction: BalanceTransaction) -> bool:
    """Whether the ledger records anything of a transaction like this one: a gift's payment, a refund of it, a
    dispute's movements (a refund's failure, say, it does not)."""
    return {"charge": transaction.amount_minor >= 0, "refund": transaction.amount_minor <= 0,
            "dispute": True}.get(transaction.source_kind or "", False)


def _row(transaction: BalanceTransaction, gift: RecordedGift | None, gross: int | None, fee: int | None,
         entry_ids: tuple[int, ...] = ()) -> Row:
    net = None if gross is None or fee is None else gross - fee
    return Row(transaction.id, transaction.type, transaction.source_id, transaction.intent_id, transaction.currency,
               transaction.amount_minor, transaction.fee_minor, transaction.net_minor,
               gift.donation_id if gift else None, gift.fund_id if gift else None, entry_ids, gross, fee, net,
               transaction.net_minor - (net or 0))


def _posting_differences(payout: Payout, posted: Sequence[PostedEntry], posted_minor: int) -> list[Difference]:
    """The ledger posts a payout once Stripe says it is paid (and reverses it if it then fails): a payout not paid
    should have no entries."""
    due = payout.amount_minor if payout.status == "paid" else 0
    if not posted and due:
        return [Difference(PAYOUT_NOT_POSTED, due)]
    return [Difference(POSTED_DIFFERS, due - posted_minor)] if posted_minor != due else []


def payout_tie(session: Session, account: StripeAccount, organisation_id: int, payout_id: str) -> PayoutTie:
    """The payout read from Stripe (first: no transaction of the books waits on Stripe) and tied to what this
    organisation's books hold of it. A payout that holds nothing of the organisation's is not found (another
    organisation's payouts are not its to read)."""
    payout = payout_of(account, payout_id)
    transactions = payout_transactions(account, payout_id)
    gifts = recorded_gifts(session, organisation_id, {found.intent_id for found in transactions if found.intent_id})
    posted = posted_entries(session, organisation_id, payout_id)
    if not gifts and not posted:
        raise NotFound("holds nothing of this organisation's", field="payout_id")
    return tie(payout, transactions, gifts, recorded_movements(session, organisation_id, transactions), posted)


def recorded_gifts(session: Session, organisation_id: int, intent_ids: Iterable[str]) -> dict[str, RecordedGift]:
    gifts = {}
    for chunk in _chunks(sorted(intent_ids)):
        query = (select(OnlineGift.payment_id, Donation.id, Donation.fund_id, Donation.currency,
                        Donation.amount_minor, func.coalesce(OnlineGift.fee_minor, 0), Donation.entry_id)
                 .join(Donation, Donation.id == OnlineGift.donation_id)
                 .where(OnlineGift.organisation_id == organisation_id, OnlineGift.payment_id.in_(chunk)))
        gifts.update({row[0]: RecordedGift(*row) for row in session.execute(query)})
    return gifts


def recorded_movements(session: Session, organisation_id: int,
                       transactions: Sequence[BalanceTransaction]) -> dict[str, Recorded]:
    """What the books hold for each refund and dispute transaction, found by the keys the channel recorded them
    under: a refund (cancelled: nothing), a dispute's refund (its withdrawal) and that refund's cancellation (its
    reinstatement), each dispute fee."""
    refunds = _refunds(session, organisation_id, [refund_key(found.source_id) for found in transactions
                                                  if found.source_kind == "refund"] +
                       [dispute_key(found.source_id) for found in transactions if found.source_kind == "dispute"])
    fees_account = load_chart(session, organisation_id).account(Role.PROCESSING_FEES)
    fees = {key: (amount, entry_id) for entry_id, key, _fund, amount in _effects(
        session, organisation_id, fees_account,
        keys=[dispute_fee_key(found.id) for found in transactions if found.source_kind == "dispute"])}
    recorded = {}
    for found in transactions:
        if found.source_kind == "refund":
            refund = refunds.get(refund_key(found.source_id))
            live = refund is not None and refund.cancelled_entry_id is None
            recorded[found.id] = Recorded(-refund.amount_minor if live else None, 0,
                                          (refund.entry_id,) if refund else ())
        elif found.source_kind == "dispute":
            recorded[found.id] = _dispute_movement(found, refunds.get(dispute_key(found.source_id)),
                                                   fees.get(dispute_fee_key(found.id)))
    return recorded


def _dispute_movement(found: BalanceTransaction, refund: Refund | None, fee: tuple[int, int] | None) -> Recorded:
    fee_minor, fee_entries = (fee[0], (fee[1],)) if fee else (0, ())
    if found.amount_minor < 0:  # withdrawn: the dispute's refund
        return Recorded(-refund.amount_minor if refund else None, fee_minor,
                        ((refund.entry_id,) if refund else ()) + fee_entries)
    cancelled = refund is not None and refund.cancelled_entry_id is not None  # reinstated: that refund cancelled
    return Recorded(refund.amount_minor if cancelled else None, fee_minor,
                    ((refund.cancelled_entry_id,) if cancelled else ()) + fee_entries)


def _refunds(session: Session, organisation_id: int, keys: list[str]) -> dict[str, Refund]:
    found = {}
    for chunk in _chunks(keys):
        query = (select(Entry.idempotency_key, Refund).join(Refund, Refund.entry_id == Entry.id)
                 .where(Entry.organisation_id == organisation_id, Entry.idempotency_key.in_(chunk)))
        found.update({key: refund for key, refund in session.execute(query)})
    return found


def posted_entries(session: Session, organisation_id: int, payout_id: str) -> list[PostedEntry]:
    """The payout's live entries (each fund's share; a failed payout's are reversed), as they moved the processor
    clearing account: credited, the money went to the bank."""
    clearing = load_chart(session, organisation_id).account(Role.PROCESSOR_CLEARING)
    return [PostedEntry(entry_id, fund_id, -amount) for entry_id, _key, fund_id, amount in _effects(
        session, organisation_id, clearing, prefix=payout_key(payout_id))]


def _effects(session: Session, organisation_id: int, account_id: int, *, keys: list[str] | None = None,
             prefix: str | None = None) -> list[tuple[int, str, int, int]]:
    """Each live entry (neither reversed nor a reversal) of these keys, or keys with this prefix: its id, key, fund
    and net effect on the account (debits less credits)."""
    reversal = aliased(Entry)
    signed = case((Posting.debit_account_id == account_id, Posting.amount_minor), else_=0) - \
        case((Posting.credit_account_id == account_id, Posting.amount_minor), else_=0)
    query = (select(Entry.id, Entry.idempotency_key, Posting.fund_id, func.sum(signed))
             .join(Posting, Posting.entry_id == Entry.id)
             .where(Entry.organisation_id == organisation_id, Entry.reverses_entry_id.is_(None),
                    ~exists().where(reversal.reverses_entry_id == Entry.id))
             .group_by(Entry.id, Entry.idempotency_key, Posting.fund_id).order_by(Entry.id))
    if prefix is not None:
        return [tuple(row) for row in session.execute(
            query.where(Entry.idempotency_key.startswith(prefix, autoescape=True)))]
    return [tuple(row) for chunk in _chunks(keys or []) for row in session.execute(
        query.where(Entry.idempotency_key.in_(chunk)))]


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
