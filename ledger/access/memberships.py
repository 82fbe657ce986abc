"""Memberships: a user's one role in an organisation, and for a fund manager the funds they manage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from ledger.core.errors import InvalidInput, NotFound
from ledger.core.values import one_of
from ledger.core.vocabulary import MemberRole
from ledger.db.engine import dialect_insert
from ledger.db.models import Fund, FundAssignment, Membership, User
from ledger.db.types import utc_now


@dataclass(frozen=True, slots=True)
class Member:
    """Who has a role in an organisation: the user, the role, and (for a fund manager) the funds, in id order."""

    user_id: int
    email: str
    display_name: str
    role: str
    fund_ids: list[int]


def set_membership(session: Session, organisation_id: int, user_id: int, role: str,
                   fund_ids: Iterable[int] = ()) -> Member:
    """Gives a user one role in an organisation, replacing any earlier one; a fund manager gets the funds."""
    role = one_of(role, MemberRole, "role")
    fund_ids = sorted(set(fund_ids))
    if (role == MemberRole.FUND_MANAGER) != bool(fund_ids):
        raise InvalidInput("a fund manager needs at least one fund; other roles take none", field="fund_ids")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    funds = session.execute(select(Fund.id, Fund.currency).where(
        Fund.organisation_id == organisation_id, Fund.id.in_(fund_ids))).all() if fund_ids else []
    if len(funds) != len(fund_ids):
        raise NotFound("a fund does not exist in this organisation", field="fund_ids")
    # One upsert at the membership's unique key: two admins changing one membership at once both succeed, the
    # later one's role and funds standing.
    values = {"role": role, "created_at": utc_now()}
    membership_id = session.execute(
        dialect_insert(session)(Membership).values(user_id=user_id, organisation_id=organisation_id, **values)
        .on_conflict_do_update(index_elements=["user_id", "organisation_id"], set_=values)
        .returning(Membership.id)).scalar_one()
    session.execute(delete(FundAssignment).where(FundAssignment.membership_id == membership_id))
    if funds:
        session.execute(insert(FundAssignment), [
            {"membership_id": membership_id, "fund_id": fund.id, "organisation_id": organisation_id,
             "currency": fund.currency} for fund in funds])
    return Member(user.id, user.email, user.display_name, role, fund_ids)


def remove_membership(session: Session, organisation_id: int, user_id: int) -> None:
    """Takes the user's role in the organisation away (and a fund manager's funds with it)."""
    # Plain DELETEs, not the ORM's: two admins may remove one membership at once, and the later one must not trip
    # over a row the earlier one already removed.
    membership_id = session.scalars(select(Membership.id).where(
        Membership.organisation_id == organisation_id, Membership.user_id == user_id)).first()
    if membership_id is None:
        raise NotFound(f"user {user_id} has no role in this organisation", field="user_id")
    session.execute(delete(FundAssignment).where(FundAssignment.membership_id == membership_id))
    session.execute(delete(Membership).where(Membership.id == membership_id))


def list_members(session: Session, organisation_id: int) -> list[Member]:
    rows = session.execute(
        select(Membership.id, Membership.role, User.id.label("user_id"), User.email, User.display_name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == organisation_id).order_by(Membership.id)).all()
    assigned: dict[int, list[int]] = {}
    for membership_id, fund_id in session.execute(
        select(FundAssignment.membership_id, FundAssignment.fund_id)
        .where(FundAssignment.organisation_id == organisation_id).order_by(FundAssignment.fund_id)
    ):
        assigned.setdefault(membership_id, []).append(fund_id)
    return [Member(row.user_id, row.email, row.display_name, row.role, assigned.get(row.id, [])) for row in rows]
