"""A running application on the test database and a small world to call it in: two organisations, their
funds, and one user per role, each with a token. Tests isolate themselves by building a fresh world."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import func, select

from api import create_app
from api.edge.tables import KeptAnswer
from ledger.access.memberships import set_membership
from ledger.access.tokens import issue_token
from ledger.books.organisations import create_fund, create_organisation
from ledger.db.engine import Database
from ledger.db.models import (
    Account,
    Balance,
    Donation,
    Donor,
    Entry,
    Grant,
    GrantApproval,
    GrantPayment,
    Posting,
    PublishedReport,
    Refund,
    User,
)
from receipts.models import Receipt, ReceiptCounter, ReceiptLine, ReceiptVoid
from tests.builders import BOOKS_OPENED, chart_general, fresh_uscc

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = PasswordHasher().hash(PASSWORD)  # hashed once: argon2 is slow on purpose
ROLES = ("platform_admin", "org_admin", "second_admin", "fund_manager", "auditor", "other_admin", "no_role", "spare")


def make_app(db: Database, **config) -> Flask:
    return create_app({"DATABASE_URL": db.engine.url.render_as_string(hide_password=False), "TESTING": True,
                       "RATELIMIT_DEFAULT": "100000 per second", "RATELIMIT_SIGN_IN": "100000 per second",
                       "RATELIMIT_GIVING": "100000 per second", "DEMO_CHECKOUT": "on",
                       # The webhook applies an event before answering: the tests read what became of it.
                       "STRIPE_APPLY": "inline", **config})


@dataclass
class World:
    """``org``: the organisation under test with funds ``fund`` and ``general`` (its fund manager's) and
    ``other_fund`` (not theirs); ``other_org`` with ``foreign_fund``: an organisation none of org's people
    belong to. ``spare`` is an auditor whose role tests may take away and give back."""

    app: Flask
    db: Database
    org: int
    fund: int
    other_fund: int
    general: int
    other_org: int
    foreign_fund: int
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def call(self, role: str | None, method: str, path: str, json=None, key: str | None = None,
             headers: dict | None = None, **options):
        sent = dict(headers or {})
        if role is not None:
            sent["Authorization"] = f"Bearer {self.tokens[role]}"
        if key is not None:
            sent["Idempotency-Key"] = key
        # Buffered, as a server sends a streamed answer (a CSV export) whole before the next request on its thread.
        options.setdefault("buffered", True)
        return self.app.test_client().open(path, method=method, json=json, headers=sent, **options)

    def url(self, path: str, org: int | None = None) -> str:
        return f"/api/v1/organisations/{org or self.org}{path}"


def _user(session, role: str) -> int:
    user = User(email=f"{role}-{uuid.uuid4().hex[:8]}@example.org", display_name=role, password_hash=_PASSWORD_HASH,
                platform_admin=role == "platform_admin", created_at=dt.datetime.now(dt.UTC))
    session.add(user)
    session.flush()
    return user.id


def make_world(app: Flask) -> World:
    db = app.extensions["ledger_db"]

    def build(session) -> World:
        orgs = [create_organisation(session, name=f"基金会 {uuid.uuid4().hex[:6]}", kind="foundation",
                                    base_currency="CNY", jurisdiction="CN", registration_number=fresh_uscc(),
                                    books_opened_on=BOOKS_OPENED)
                for _ in range(2)]
        funds = [create_fund(session, orgs[index].id, code=code, name=code, kind="community", restricted=False)
                 for index, code in ((0, "MINE"), (0, "NOT_MINE"), (1, "FOREIGN"))]
        world = World(app, db, orgs[0].id, funds[0].id, funds[1].id, chart_general(session, orgs[0].id),
                      orgs[1].id, funds[2].id)
        for role in ROLES:
            world.users[role] = _user(session, role)
            world.tokens[role] = issue_token(session, world.users[role], "test")[0]
        for role, org, name, fund_ids in (("org_admin", world.org, "org_admin", ()),
                                          ("second_admin", world.org, "org_admin", ()),
                                          ("fund_manager", world.org, "fund_manager", (world.fund, world.general)),
                                          ("auditor", world.org, "auditor", ()),
                                          ("spare", world.org, "auditor", ()),
                                          ("other_admin", world.other_org, "org_admin", ())):
            set_membership(session, org, world.users[role], name, fund_ids)
        return world

    return db.write(build)


# The audit log is not counted: a refusal is recorded there, in a transaction of its own (tests/api/test_refusals.py).
COUNTED = (Entry, Posting, Donation, Donor, Refund, Grant, GrantApproval, GrantPayment, KeptAnswer, Account, Receipt,
           ReceiptLine, ReceiptVoid, ReceiptCounter, PublishedReport)


def snapshot(db: Database) -> dict:
    """Row counts of every table a write can touch, and every cached balance: equal snapshots before and
    after a refused request prove that it wrote nothing."""
    with db.read() as session:
        counts = {model.__tablename__: session.scalar(select(func.count()).select_from(model)) for model in COUNTED}
        counts["balances"] = sorted(tuple(row) for row in session.execute(
            select(Balance.account_id, Balance.fund_id, Balance.debits_minor, Balance.credits_minor)))
        counts["role_defaults"] = sorted(session.scalars(select(Account.id).where(Account.role_default)))
        return counts
