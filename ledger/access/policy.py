"""What each role may do: the ``Need`` an operation names, and the ``Principal`` that asks.

The API's views name one need each (``api.edge.auth.requires``); fund-level needs are judged again on the funds
the operation touches, once the view knows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ledger.core.errors import Forbidden
from ledger.core.vocabulary import MemberRole


class Need(StrEnum):
    """What an operation needs of its caller. Every route of the API names one (``tests/api/test_authz.py``
    checks each against a table)."""

    PUBLIC = "public"                    # anyone, signed in or not; nothing private is shown
    SIGNED_IN = "signed_in"              # any user, about themselves
    PLATFORM_ADMIN = "platform_admin"    # runs the platform: creates organisations and users
    ORG_ADMIN = "org_admin"              # runs one organisation: funds, members, periods, settings
    ORG_READ = "org_read"                # reads the whole organisation: its admins and auditors
    MEMBER_READ = "member_read"          # anyone with a role in the organisation (the chart, donors)
    MEMBER_WRITE = "member_write"        # its admins and fund managers (records donors)
    FUND_READ = "fund_read"              # the whole organisation's readers, or the managers of the funds
    FUND_WRITE = "fund_write"            # its admins, or the managers of the funds


READ_ROLES = frozenset({MemberRole.ORG_ADMIN, MemberRole.AUDITOR})
WRITE_ROLES = frozenset({MemberRole.ORG_ADMIN, MemberRole.FUND_MANAGER})
_ROLES_BY_NEED = {
    Need.ORG_ADMIN: frozenset({MemberRole.ORG_ADMIN}), Need.ORG_READ: READ_ROLES,
    Need.MEMBER_READ: frozenset(MemberRole), Need.MEMBER_WRITE: WRITE_ROLES,
    Need.FUND_READ: frozenset(MemberRole), Need.FUND_WRITE: WRITE_ROLES,
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, with their roles: organisation id → role, and for fund managers the funds assigned."""

    user_id: int | None = None
    email: str = ""
    platform_admin: bool = False
    roles: dict[int, str] = field(default_factory=dict)
    funds: dict[int, frozenset[int]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    def role_in(self, organisation_id: int) -> str | None:
        return MemberRole.ORG_ADMIN if self.platform_admin else self.roles.get(organisation_id)

    def allows(self, need: Need, organisation_id: int | None = None) -> bool:
        """Whether the role allows the operation at all; for FUND_* the funds are judged by ``allows_funds``."""
        if need is Need.PUBLIC:
            return True
        if need is Need.SIGNED_IN:
            return self.signed_in
        if need is Need.PLATFORM_ADMIN:
            return self.platform_admin
        role = self.role_in(organisation_id) if organisation_id is not None else None
        return role is not None and role in _ROLES_BY_NEED[need]

    def allows_funds(self, organisation_id: int, fund_ids: Iterable[int], *, write: bool) -> bool:
        role = self.role_in(organisation_id)
        if role == MemberRole.ORG_ADMIN or (role == MemberRole.AUDITOR and not write):
            return True
        return role == MemberRole.FUND_MANAGER and set(fund_ids) <= self.funds.get(organisation_id, frozenset())

    def require_funds(self, organisation_id: int, fund_ids: Iterable[int], *, write: bool) -> None:
        if not self.allows_funds(organisation_id, fund_ids, write=write):
            raise Forbidden("your role does not cover this fund", field="fund_id")

    def readable_funds(self, organisation_id: int) -> frozenset[int] | None:
        """The funds whose records a list may show this caller: None for all of them (the organisation's
        readers), else the funds a fund manager was assigned (none for anyone else)."""
        if self.allows(Need.ORG_READ, organisation_id):
            return None
        return self.funds.get(organisation_id, frozenset())


ANONYMOUS = Principal()
