"""Demo data for `make run`: one foundation, three community funds (one restricted), a few dozen gifts,
online gifts with processor fees and a payout, an in-kind gift, a grant approved and paid, a transfer
between funds and a release from restriction. Deterministic, so every fresh checkout shows the same books.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.access.memberships import set_membership
from ledger.access.users import create_user
from ledger.books.charts import load_chart
from ledger.books.entries import post_entries
from ledger.books.integrity import seal_pending
from ledger.books.organisations import create_fund, create_organisation
from ledger.core.chart import Chart
from ledger.core.drafts import EntryDraft
from ledger.core.money import Money
from ledger.core.recipes import (
    Particulars,
    grant_approved,
    grant_paid,
    in_kind_donation,
    offline_donation,
    online_donation,
    payout,
    release_from_restriction,
    transfer_between_funds,
)
from ledger.core.registration import unified_social_credit_code
from ledger.db.engine import Database
from ledger.db.models import Organisation

DEMO_NAME = "成都市锦城社区发展基金会 Jincheng Community Development Foundation (demo)"
MANAGER = "demo-manager@jincheng.example.org"
# The demo's people, all with DEMO_PASSWORD: for trying the API on a laptop, never for a real deployment.
DEMO_PASSWORD = "demo-password-2026"
DEMO_PEOPLE = (
    ("demo-admin@jincheng.example.org", "org_admin", ()),
    (MANAGER, "fund_manager", ("YULIN", "WANGJIANG")),
    ("demo-auditor@jincheng.example.org", "auditor", ()),
)


def load_demo_if_empty(db: Database) -> int | None:
    """Loads the demo when the database holds no organisation; returns the new organisation's id."""
    with db.read() as session:
        if session.scalars(select(Organisation.id).limit(1)).first() is not None:
            return None
    organisation_id = db.write(_load)
    seal_pending(db)
    return organisation_id


def _load(session: Session) -> int:
    organisation = create_organisation(
        session, name=DEMO_NAME, kind="foundation", base_currency="CNY", jurisdiction="CN",
        registration_number=unified_social_credit_code("53510100MJ0123456"))
    funds = {
        code: create_fund(session, organisation.id, code=code, name=name, kind="community",
                          restricted=restricted, purpose=purpose).id
        for code, name, restricted, purpose in (
            ("YULIN", "玉林社区基金 Yulin community fund", True, "老年助餐 meals for older residents"),
            ("WANGJIANG", "望江社区基金 Wangjiang community fund", False, "社区营造 neighbourhood projects"),
            ("QINGLONG", "青龙社区基金 Qinglong community fund", False, "儿童之家 a children's centre"),
        )
    }
    chart = load_chart(session, organisation.id)
    post_entries(session, _demo_entries(chart, funds))
    for email, role, fund_codes in DEMO_PEOPLE:
        user = create_user(session, email=email, password=DEMO_PASSWORD, display_name=email.split("@")[0])
        set_membership(session, organisation.id, user.id, role, [funds[code] for code in fund_codes])
    return organisation.id


def _demo_entries(chart: Chart, funds: dict[str, int]) -> list[EntryDraft]:
    rng = random.Random(2026)
    entries = []
    start = dt.date(2026, 9, 1)
    for number in range(1, 37):
        fund = rng.choice(list(funds))
        amount = Money(rng.choice([5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 880_000]), "CNY")
        day = start + dt.timedelta(days=rng.randrange(80))
        channel = rng.choice(["bank", "bank", "cash", "cheque"])
        particulars = Particulars(day, f"demo-gift-{number:02d}", MANAGER, f"捐赠 gift #{number}")
        entries.append(offline_donation(chart, funds[fund], amount, channel, particulars))
    for number, gross in enumerate((30_000, 66_600, 12_000), start=1):
        fee = Money(gross * 6 // 1000, "CNY")  # a 0.6% processor fee, rounded down to the fen
        particulars = Particulars(dt.date(2026, 10, 10 + number), f"demo-online-{number}", "processor",
                                  f"网络捐赠 online gift #{number}")
        entries.append(online_donation(chart, funds["WANGJIANG"], Money(gross, "CNY"), fee, particulars))
    net = sum(g - g * 6 // 1000 for g in (30_000, 66_600, 12_000))
    entries += [
        payout(chart, funds["WANGJIANG"], Money(net, "CNY"),
               Particulars(dt.date(2026, 10, 20), "demo-payout-1", "processor", "支付机构结算 payout")),
        in_kind_donation(chart, funds["QINGLONG"], Money(350_000, "CNY"),
                         Particulars(dt.date(2026, 10, 8), "demo-in-kind-1", MANAGER, "图书捐赠 donated books")),
        grant_approved(chart, funds["YULIN"], Money(150_000, "CNY"), "charitable_activities",
                       Particulars(dt.date(2026, 11, 3), "demo-grant-approved-1", MANAGER,
                                   "资助 长者食堂 grant to the elders' canteen")),
        grant_paid(chart, funds["YULIN"], Money(150_000, "CNY"),
                   Particulars(dt.date(2026, 11, 10), "demo-grant-paid-1", MANAGER, "拨付资助款 grant paid")),
        transfer_between_funds(chart, funds["WANGJIANG"], funds["QINGLONG"], Money(20_000, "CNY"),
                               Particulars(dt.date(2026, 11, 12), "demo-transfer-1", MANAGER,
                                           "基金间调拨 transfer for the children's centre")),
        release_from_restriction(chart, funds["YULIN"], Money(150_000, "CNY"),
                                 Particulars(dt.date(2026, 11, 30), "demo-release-1", MANAGER,
                                             "限定性净资产解除限定 restriction met")),
    ]
    return entries
