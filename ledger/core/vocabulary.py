"""The ledger's closed vocabularies: every kind, status and role a row can hold, as a StrEnum.

Each value is what the database stores (its CHECK constraints list the same words) and what the API shows, so a
member compares equal to its text: ``FundStatus.OPEN == "open"``.
"""

from __future__ import annotations

from enum import StrEnum


class OrganisationKind(StrEnum):
    FOUNDATION = "foundation"  # 基金会
    CHARITY = "charity"  # 慈善组织 other than a foundation


class FundKind(StrEnum):
    GENERAL = "general"  # the organisation's unrestricted general fund, made with it
    COMMUNITY = "community"  # a community fund (社区基金) for one neighbourhood
    PROJECT = "project"  # a named project's fund


class FundStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # takes no postings until opened again


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # accepts no posting dated inside it


class MemberRole(StrEnum):
    """A user's role in one organisation."""

    ORG_ADMIN = "org_admin"  # runs the organisation: funds, members, periods, settings
    FUND_MANAGER = "fund_manager"  # records and reads the funds assigned to them
    AUDITOR = "auditor"  # reads everything of the organisation, changes nothing


class DonorKind(StrEnum):
    INDIVIDUAL = "individual"  # a person: the name is public only with consent
    ORGANISATION = "organisation"  # a company or another organisation: its name is public


class PayeeKind(StrEnum):
    """Who a grant is paid to: an organisation (named on the public pages) or a person (masked there, 张*)."""

    ORGANISATION = "organisation"
    INDIVIDUAL = "individual"


class DonationChannel(StrEnum):
    """How a gift arrived: recorded by a fund manager (all but online), or given on a donation page (online)."""

    BANK = "bank"
    CHEQUE = "cheque"
    CASH = "cash"
    IN_KIND = "in_kind"  # goods or services, at a stated value
    ONLINE = "online"  # through a payment processor, from a fund's donation page (``ledger.payments``)


class GrantStatus(StrEnum):
    REQUESTED = "requested"  # awaiting approval; nothing posted
    APPROVED = "approved"  # the cost and the amount owed are posted
    PARTLY_PAID = "partly_paid"  # some of the amount owed has left the bank
    PAID = "paid"  # all of it has left the bank
    CANCELLED = "cancelled"  # approved, then cancelled before it was wholly paid: the unpaid part posted back
    REJECTED = "rejected"  # withdrawn or refused before approval; nothing posted


class GrantCategory(StrEnum):
    """What a grant's cost is, in the statement of activities (业务活动成本, 管理费用, 筹资费用)."""

    CHARITABLE_ACTIVITIES = "charitable_activities"
    MANAGEMENT = "management"
    FUNDRAISING = "fundraising"


class EntryKind(StrEnum):
    """The recipe that built an entry (``ledger.core.recipes``); reports group entries by it."""

    DONATION = "donation"
    ONLINE_DONATION = "online_donation"
    IN_KIND_DONATION = "in_kind_donation"
    REFUND = "refund"
    PROCESSOR_FEE = "processor_fee"
    PAYOUT = "payout"
    GRANT_APPROVED = "grant_approved"
    GRANT_PAID = "grant_paid"
    GRANT_CANCELLED = "grant_cancelled"
    TRANSFER = "transfer"
    RELEASE_FROM_RESTRICTION = "release_from_restriction"
    JOURNAL = "journal"
    REVERSAL = "reversal"


class EventStatus(StrEnum):
    """What became of an event a payment processor sent, once stored."""

    RECEIVED = "received"  # stored and acknowledged; its effect not yet in the books
    APPLIED = "applied"  # its effect is in the books
    IGNORED = "ignored"  # a kind of event the ledger does not act on (acknowledged and logged)
    FAILED = "failed"  # applying it failed: kept, to be applied again


class GiftStatus(StrEnum):
    """Where a gift started on a donation page stands."""

    PENDING = "pending"  # the donor is paying, or has not yet
    SUCCEEDED = "succeeded"  # paid: recorded as a donation
    FAILED = "failed"  # the payment failed
    EXPIRED = "expired"  # the donor left without paying
    REVIEW = "review"  # what was paid differs from what was asked: a manager decides, nothing is posted


class PaymentChannelName(StrEnum):
    """Who takes a gift's payment."""

    STRIPE = "stripe"
    DEMO = "demo"  # the demo's stand-in, when no processor is configured: no money moves
