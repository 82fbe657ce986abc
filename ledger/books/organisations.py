"""Organisations, their funds and their chart of accounts."""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ledger.core.chart import CHINA_NONPROFIT, AccountTemplate, BalanceLimit, Role
from ledger.core.errors import Conflict, InvalidInput, NotFound
from ledger.core.money import check_currency
from ledger.core.registration import normalise_registration_number
from ledger.db.models import Account, Balance, Fund, Organisation

ORGANISATION_KINDS = ("foundation", "charity")
FUND_KINDS = ("general", "community", "project")
GENERAL_FUND_CODE = "GENERAL"


@dataclass(frozen=True, slots=True)
class Chart:
    """An organisation's accounts as the recipes see them: by role, and by code."""

    organisation_id: int
    by_role: dict[Role, int]
    by_code: dict[str, int]

    def account(self, role: Role) -> int:
        try:
            return self.by_role[role]
        except KeyError:
            raise NotFound(f"the chart has no account for {role.value}", field="account") from None


def _choice(value: object, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"must be one of {', '.join(allowed)}", field=field)
    return value  # type: ignore[return-value]


def _name(value: object, field: str, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidInput(f"is required, at most {max_length} characters", field=field)
    return value.strip()


def create_organisation(
    session: Session, *, name: str, kind: str, base_currency: str, jurisdiction: str, registration_number: str,
    template: tuple[AccountTemplate, ...] = CHINA_NONPROFIT,
) -> Organisation:
    """Creates an organisation with its chart of accounts (from ``template``) and its general fund."""
    number = normalise_registration_number(jurisdiction, registration_number)
    if session.scalars(select(Organisation.id).where(Organisation.jurisdiction == jurisdiction,
                                                     Organisation.registration_number == number)).first():
        raise Conflict("an organisation with this registration number exists", field="registration_number")
    organisation = Organisation(
        name=_name(name, "name"), kind=_choice(kind, ORGANISATION_KINDS, "kind"),
        base_currency=check_currency(base_currency, "base_currency"), jurisdiction=jurisdiction,
        registration_number=number, created_at=dt.datetime.now(dt.UTC),
    )
    session.add(organisation)
    session.flush()
    session.execute(insert(Account), [
        {"organisation_id": organisation.id, "code": line.code, "name_zh": line.name_zh,
         "name_en": line.name_en, "type": line.type.value, "normal_balance": line.normal_balance.value,
         "balance_limit": line.balance_limit.value, "role": line.role.value if line.role else None}
        for line in template
    ])
    create_fund(session, organisation.id, code=GENERAL_FUND_CODE, name="非限定性基金 General fund",
                kind="general", restricted=False)
    return organisation


def create_fund(
    session: Session, organisation_id: int, *, code: str, name: str, kind: str, restricted: bool,
    currency: str | None = None, purpose: str = "",
) -> Fund:
    organisation = get_organisation(session, organisation_id)
    if not isinstance(restricted, bool):
        raise InvalidInput("must be true or false", field="restricted")
    if session.scalars(select(Fund.id).where(Fund.organisation_id == organisation_id, Fund.code == code)).first():
        raise Conflict(f"the organisation already has a fund {code}", field="code")
    fund = Fund(
        organisation_id=organisation_id, code=_name(code, "code", 40), name=_name(name, "name"),
        kind=_choice(kind, FUND_KINDS, "kind"), restricted=restricted, status="open",
        currency=check_currency(currency or organisation.base_currency), purpose=purpose,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(fund)
    session.flush()
    return fund


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(f"organisation {organisation_id} does not exist", field="organisation_id")
    return organisation


def get_fund(session: Session, organisation_id: int, fund_id: int) -> Fund:
    fund = session.get(Fund, fund_id)
    if fund is None or fund.organisation_id != organisation_id:
        raise NotFound(f"fund {fund_id} does not exist", field="fund_id")
    return fund


_FUND_CURRENCY = select(Fund.currency).where(Fund.id == bindparam("fund_id"),
                                             Fund.organisation_id == bindparam("organisation_id"))


def fund_currency(session: Session, organisation_id: int, fund_id: int) -> str:
    """The currency of one of the organisation's funds: one plain read, for the hot write paths (whether the
    fund is open is judged with the posting itself)."""
    currency = session.connection().execute(_FUND_CURRENCY, {"fund_id": fund_id, "organisation_id": organisation_id}
                                            ).scalar()
    if currency is None:
        raise NotFound(f"fund {fund_id} does not exist", field="fund_id")
    return currency


def set_fund_status(session: Session, organisation_id: int, fund_id: int, status: str) -> Fund:
    """Closes or reopens a fund; a closed fund accepts no postings."""
    fund = get_fund(session, organisation_id, fund_id)
    fund.status = _choice(status, ("open", "closed"), "status")
    session.flush()
    return fund


def set_account_limit(session: Session, organisation_id: int, account_id: int, limit: str) -> None:
    """Changes an account's limit; refused while a balance of the account already breaks the new one."""
    limit = _choice(limit, tuple(item.value for item in BalanceLimit), "balance_limit")
    breaking = {
        BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS: Balance.credits_minor > Balance.debits_minor,
        BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS: Balance.debits_minor > Balance.credits_minor,
    }.get(BalanceLimit(limit))
    if breaking is not None and session.scalars(
        select(Balance.fund_id).where(Balance.account_id == account_id, breaking).limit(1)
    ).first() is not None:
        raise Conflict(f"a balance of account {account_id} already breaks the limit {limit}", field="balance_limit")
    changed = session.execute(
        update(Account).where(Account.id == account_id, Account.organisation_id == organisation_id)
        .values(balance_limit=limit)
    ).rowcount
    if not changed:
        raise NotFound(f"account {account_id} does not exist", field="account_id")


# An organisation's chart is written once, with the organisation, and its accounts' ids, codes and roles never
# change (limits do, but the chart does not carry them), so each engine keeps the charts it has read: every
# recipe needs one, and every gift recorded through the API would otherwise read ~40 rows for it.
_charts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def load_chart(session: Session, organisation_id: int) -> Chart:
    cache = _charts.setdefault(session.get_bind(), {})
    chart = cache.get(organisation_id)
    if chart is None:
        chart = cache[organisation_id] = _read_chart(session, organisation_id)
    return chart


def _read_chart(session: Session, organisation_id: int) -> Chart:
    rows = session.execute(
        select(Account.id, Account.code, Account.role).where(Account.organisation_id == organisation_id)
    ).all()
    if not rows:
        raise NotFound(f"organisation {organisation_id} has no chart of accounts", field="organisation_id")
    return Chart(
        organisation_id=organisation_id,
        by_role={Role(row.role): row.id for row in rows if row.role},
        by_code={row.code: row.id for row in rows},
    )
