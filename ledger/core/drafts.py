"""Entries and postings as values: drafts a recipe builds, and the entries the ledger holds.

A posting moves ``amount_minor`` of ``currency`` inside one fund from a credit account to a debit account, so it
balances by construction (DESIGN.md §3); an entry is one or more postings that stand or fall together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

# Limits on everything (TigerBeetle's style): an entry of a hundred postings is already a large manual journal,
# and ten thousand entries is a chunk of a bulk import.
MAX_POSTINGS_PER_ENTRY = 100
MAX_ENTRIES_PER_CALL = 10_000


@dataclass(frozen=True, slots=True)
class PostingDraft:
    """One posting to be written: ``amount_minor`` of ``currency`` inside ``fund_id``, from the credit
    account to the debit account."""

    fund_id: int
    debit_account_id: int
    credit_account_id: int
    amount_minor: int
    currency: str

    def reversed(self) -> PostingDraft:
        """The posting that undoes this one: the same amount, from the debit account back to the credit one."""
        return PostingDraft(self.fund_id, self.credit_account_id, self.debit_account_id, self.amount_minor,
                            self.currency)


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry as a recipe builds it, before the ledger accepts it.

    organisation_id: whose books; kind: the recipe that built it (``EntryKind``); effective_date: when it
    happened (reports use it); description: what a reader of the books sees; idempotency_key: unique per
    organisation, so that a retry finds the entry instead of posting it twice; recorded_by: who recorded it;
    postings: what it moves; reverses_entry_id: the entry it reverses, if it is a reversal.
    """

    organisation_id: int
    kind: str
    effective_date: dt.date
    description: str
    idempotency_key: str
    recorded_by: str
    postings: tuple[PostingDraft, ...]
    reverses_entry_id: int | None = None

    def digest(self) -> str:
        """SHA-256 of everything that makes the entry what it is, but not who recorded it: a retry by
        another worker of the same request is still the same entry. The fields go in through repr(), which
        quotes every string, so no text can pass for a field boundary."""
        # str(kind): a kind is an EntryKind member or its text, and both must give the digest the ledger has
        # always given (the digests of entries already posted are what a replay is compared with).
        content = (self.organisation_id, str(self.kind), self.effective_date.isoformat(), self.description,
                   self.reverses_entry_id,
                   tuple((posting.fund_id, posting.debit_account_id, posting.credit_account_id,
                          posting.amount_minor, posting.currency) for posting in self.postings))
        return hashlib.sha256(repr(content).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """An entry the ledger holds (the draft's fields, its ``id`` and when it was ``posted_at``). ``replayed`` is
    true when the call that returned it was a retry of an earlier one."""

    id: int
    organisation_id: int
    kind: str
    effective_date: dt.date
    posted_at: dt.datetime
    description: str
    idempotency_key: str
    recorded_by: str
    reverses_entry_id: int | None
    postings: tuple[PostingDraft, ...]
    replayed: bool = False

    @classmethod
    def from_draft(cls, draft: EntryDraft, entry_id: int, posted_at: dt.datetime) -> PostedEntry:
        return cls(id=entry_id, organisation_id=draft.organisation_id, kind=draft.kind,
                   effective_date=draft.effective_date, posted_at=posted_at, description=draft.description,
                   idempotency_key=draft.idempotency_key, recorded_by=draft.recorded_by,
                   reverses_entry_id=draft.reverses_entry_id, postings=draft.postings)

    def fund_ids(self) -> frozenset[int]:
        return frozenset(posting.fund_id for posting in self.postings)
