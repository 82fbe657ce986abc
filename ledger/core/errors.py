"""The ledger's domain errors.

Every refusal is one of these: a stable snake_case ``code`` that clients can rely on, a message that says
what rule was broken, and the ``field`` it concerns. The API maps codes to HTTP statuses in one place; the
ledger never knows about HTTP.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal by the ledger: nothing was written when one is raised."""

    code = "ledger_error"

    def __init__(self, message: str, *, field: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"{self.code}{where}: {self.message}"


class InvalidInput(LedgerError):
    """Input the ledger cannot take: a field missing, too long, of the wrong type, or outside its vocabulary."""

    code = "invalid_input"


class AmountInvalid(InvalidInput):
    """An amount that is not a positive whole number of minor units within the posting limit (a float, zero,
    a negative, a boolean, more than 10^14)."""

    code = "amount_invalid"


class CurrencyUnknown(InvalidInput):
    """A code that is not an ISO 4217 currency with a minor unit (XAU and the testing codes have none)."""

    code = "currency_unknown"


class CurrencyMismatch(InvalidInput):
    """Money in one currency where another is kept: a posting into a fund of another currency, or Money
    of two currencies added together."""

    code = "currency_mismatch"


class RegistrationNumberInvalid(InvalidInput):
    """A registration number that breaks its jurisdiction's rule (length, shape or check character)."""

    code = "registration_number_invalid"


class JurisdictionUnknown(RegistrationNumberInvalid):
    """No rule for registration numbers is known for the jurisdiction (and so none can be validated)."""

    code = "jurisdiction_unknown"


class EntryEmpty(InvalidInput):
    """An entry without postings."""

    code = "entry_empty"


class EntryUnbalanced(InvalidInput):
    """A manual journal entry whose debits and credits differ within a fund and currency."""

    code = "entry_unbalanced"


class SameAccount(InvalidInput):
    """A posting from an account to itself."""

    code = "posting_same_account"


class TooMany(InvalidInput):
    """More than a limit allows: postings in an entry, entries in a call, rows in a page."""

    code = "limit_exceeded"


class NotFound(LedgerError):
    """No such object in this organisation (another organisation's object is as unknown as a missing one)."""

    code = "not_found"


class OrganisationMismatch(LedgerError):
    """An account, fund or entry named in a request belongs to another organisation."""

    code = "organisation_mismatch"


class FundClosed(LedgerError):
    """A posting into a closed fund, or a grant requested from one."""

    code = "fund_closed"


class PeriodClosed(LedgerError):
    """An entry dated inside a closed month; ``details`` name the month's first and last day when the ledger
    (rather than the database's trigger, mid-write) refused it."""

    code = "period_closed"


class IdempotencyKeyReused(LedgerError):
    """An idempotency key already used for other content: a client's mistake, not a retry."""

    code = "idempotency_key_reused"


class AccountLimitExceeded(LedgerError):
    """A posting that would take a balance past its account's limit: a fund's cash below zero, a grant paid
    beyond what is owed. ``details`` name the account, the fund and the shortfall."""

    code = "account_limit_exceeded"


class EntryAlreadyReversed(LedgerError):
    """An entry already reversed (by another key): an entry is reversed once."""

    code = "entry_already_reversed"


class EntryKeptByRecord(LedgerError):
    """The entry records a gift, a refund or a grant's step: reversing it alone would leave that record
    claiming money the books no longer hold. It is undone through the record (a refund, say)."""

    code = "entry_kept_by_record"


class Conflict(LedgerError):
    """The request conflicts with what the ledger holds: a name or number already taken, a limit a balance
    already breaks."""

    code = "conflict"


class ConcurrentWrite(Conflict):
    """Another transaction got to a unique key first, between this one's read and its write: the same idempotency
    key, a reversal of the same entry, a kept answer under the same Idempotency-Key. Raised where the row is
    written; ``Database.write`` retries the work, which then answers with the committed row or a typed refusal."""

    code = "concurrent_write"


class Unauthenticated(LedgerError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    code = "unauthenticated"


class Forbidden(LedgerError):
    """The caller is known but their role does not allow this."""

    code = "forbidden"


class SeparationOfDuties(Forbidden):
    """The rule that one person may not both ask for money and approve it."""

    code = "separation_of_duties"


class InvalidState(Conflict):
    """The object is not in a state that allows this step (paying a grant not yet approved, say)."""

    code = "invalid_state"


class SignatureInvalid(LedgerError):
    """A message that says it comes from a payment processor but whose signature does not prove it: missing,
    not matching the body, or dated too long ago or in the future (a replay)."""

    code = "signature_invalid"


class EventMalformed(InvalidInput):
    """A signed processor event the ledger cannot read: not JSON, or without the fields every event has."""

    code = "event_malformed"


class ChannelUnavailable(LedgerError):
    """The payment channel could not be reached or refused the call: nothing was charged; try again later."""

    code = "channel_unavailable"
