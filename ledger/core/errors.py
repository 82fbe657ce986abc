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
    code = "invalid_input"


class AmountInvalid(InvalidInput):
    code = "amount_invalid"


class CurrencyUnknown(InvalidInput):
    code = "currency_unknown"


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"


class RegistrationNumberInvalid(InvalidInput):
    code = "registration_number_invalid"


class JurisdictionUnknown(RegistrationNumberInvalid):
    """No rule for registration numbers is known for the jurisdiction (and so none can be validated)."""

    code = "jurisdiction_unknown"


class EntryEmpty(InvalidInput):
    code = "entry_empty"


class EntryUnbalanced(InvalidInput):
    code = "entry_unbalanced"


class SameAccount(InvalidInput):
    code = "posting_same_account"


class TooMany(InvalidInput):
    code = "limit_exceeded"


class NotFound(LedgerError):
    code = "not_found"


class OrganisationMismatch(LedgerError):
    """An account, fund or entry named in a request belongs to another organisation."""

    code = "organisation_mismatch"


class FundClosed(LedgerError):
    code = "fund_closed"


class PeriodClosed(LedgerError):
    code = "period_closed"


class IdempotencyKeyReused(LedgerError):
    code = "idempotency_key_reused"


class AccountLimitExceeded(LedgerError):
    code = "account_limit_exceeded"


class EntryAlreadyReversed(LedgerError):
    code = "entry_already_reversed"


class EntryKeptByRecord(LedgerError):
    """The entry records a gift, a refund or a grant's step: reversing it alone would leave that record
    claiming money the books no longer hold. It is undone through the record (a refund, say)."""

    code = "entry_kept_by_record"


class Conflict(LedgerError):
    code = "conflict"


class ConcurrentWrite(Conflict):
    """Another transaction committed the same idempotency key between this one's read and its write.
    ``Database.write`` retries the work, which then answers with the committed entry."""

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
