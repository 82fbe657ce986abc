"""Demo data for `make run`: one foundation, three community funds (one restricted), its three people, and books
made of real records through the same services the API uses: donors (some consenting to be named), a few dozen
gifts recorded with them, a refund, an in-kind gift, a grant requested by the fund manager, approved and paid by
the administrator, a transfer between funds and a release from restriction. Online gifts with processor fees and
their payout are posted by their recipes until online giving (issue 10) records them. Then the bank's statements
for the autumn (one a month, ledger/demo_data/, made from these books by scripts/demo_bank_statement.py) are
imported and matched, and the two things only the bank knew (its interest and a charge) are recorded from their
lines, so the bank account reconciles. Deterministic, so every fresh checkout shows the same books.
"""

from __future__ import annotations

import datetime as dt
import random
from importlib.resources import files

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.access.memberships import set_membership
from ledger.access.users import create_user
from ledger.books.adjustments import release
from ledger.books.charts import load_chart
from ledger.books.entries import post_entries
from ledger.books.integrity import seal_pending
from ledger.books.organisations import create_fund, create_organisation
from ledger.books.transfers import Transfer, transfer
from ledger.core.chart import Chart, Role
from ledger.core.drafts import EntryDraft
from ledger.core.errors import InvalidState
from ledger.core.money import Money
from ledger.core.recipes import Particulars, online_donation, payout
from ledger.core.registration import unified_social_credit_code
from ledger.db.engine import Database
from ledger.db.models import Donation, Donor, Fund, Organisation, StatementLine
from ledger.giving.donations import GiftRecord, record_donation
from ledger.giving.donors import Contact, create_donor
from ledger.giving.refunds import refund_donation
from ledger.grants.lifecycle import GrantRequest, approve_grant, pay_grant, request_grant
from ledger.reconciliation.imports import import_statement
from ledger.reconciliation.matches import FromLine, auto_match, bank_lines, entry_from_line, ledger_items, match
from ledger.reconciliation.statements import CN_BANK
from ledger.reports.publishing import Period, publish

DEMO_NAME = "成都市锦城社区发展基金会 Jincheng Community Development Foundation (demo)"
# The bank's statements for the autumn, one a month, in ledger/demo_data/ (scripts/demo_bank_statement.py makes them).
DEMO_STATEMENTS = ("jincheng-bank-2026-09.gbk.csv", "jincheng-bank-2026-10.gbk.csv", "jincheng-bank-2026-11.gbk.csv")
MANAGER = "demo-manager@jincheng.example.org"
ADMIN = "demo-admin@jincheng.example.org"
# The demo's people, all with DEMO_PASSWORD: for trying the API on a laptop, never for a real deployment.
DEMO_PASSWORD = "demo-password-2026"
DEMO_PEOPLE = (
    (ADMIN, "org_admin", ()),
    (MANAGER, "fund_manager", ("YULIN", "WANGJIANG")),
    ("demo-auditor@jincheng.example.org", "auditor", ()),
)


def demo_loaded(session: Session) -> bool:
    """Whether the demo's foundation is in the database (the root page tells how to sign in to it only then)."""
    return session.scalars(select(Organisation.id).where(Organisation.name == DEMO_NAME).limit(1)).first() is not None


def load_demo_if_empty(db: Database) -> int | None:
    """Loads the demo when the database holds no organisation; returns the new organisation's id."""
    with db.read() as session:
        if session.scalars(select(Organisation.id).limit(1)).first() is not None:
            return None
    organisation_id = db.write(_load)
    seal_pending(db)
    db.write(lambda session: _publish(session, organisation_id))
    return organisation_id


def _publish(session: Session, organisation_id: int) -> None:
    """The autumn's report, published once the books of those months are sealed, as a manager would."""
    publish(session, organisation_id, None, Period(dt.date(2026, 9, 1), dt.date(2026, 10, 31)), published_by=ADMIN)


def _load(session: Session) -> int:
    organisation_id = load_books(session)
    _reconcile(session, organisation_id)
    return organisation_id


def load_books(session: Session) -> int:
    """The demo's books, without its bank statements (which scripts/demo_bank_statement.py makes from them)."""
    organisation = create_organisation(
        session, name=DEMO_NAME, kind="foundation", base_currency="CNY", jurisdiction="CN",
        registration_number=unified_social_credit_code("53510100MJ0123456"), books_opened_on=dt.date(2026, 9, 1),
        created_by="demo")
    funds = {
        code: create_fund(session, organisation.id, code=code, name=name, kind="community",
                          restricted=restricted, purpose=purpose).id
        for code, name, restricted, purpose in (
            ("YULIN", "玉林社区基金 Yulin community fund", True, "老年助餐 meals for older residents"),
            ("WANGJIANG", "望江社区基金 Wangjiang community fund", False, "社区营造 neighbourhood projects"),
            ("QINGLONG", "青龙社区基金 Qinglong community fund", False, "儿童之家 a children's centre"),
        )
    }
    people = {}
    for email, role, fund_codes in DEMO_PEOPLE:
        user = create_user(session, email=email, password=DEMO_PASSWORD, display_name=email.split("@")[0])
        set_membership(session, organisation.id, user.id, role, [funds[code] for code in fund_codes])
        people[role] = user.id
    _gifts(session, organisation.id, funds)
    _grant(session, organisation.id, funds["YULIN"], people)
    transfer(session, organisation.id, Transfer(funds["WANGJIANG"], funds["QINGLONG"], 20_000, "CNY",
                                                dt.date(2026, 11, 12), "基金间调拨 transfer for the children's centre"),
             idempotency_key="demo-transfer-1", recorded_by=MANAGER)
    release(session, organisation.id, funds["YULIN"], amount_minor=150_000, currency="CNY",
            effective_date=dt.date(2026, 11, 20), description="限定性净资产解除限定 restriction met",
            idempotency_key="demo-release-1", recorded_by=ADMIN)
    post_entries(session, _online_entries(load_chart(session, organisation.id), funds["WANGJIANG"]))
    return organisation.id


DONORS = (  # name, kind, whether the name may be shown publicly
    ("张伟", "individual", True), ("李娜", "individual", False), ("王芳", "individual", True),
    ("刘洋", "individual", False), ("陈静", "individual", False),
    ("成都锦城科技有限公司 Jincheng Tech Co.", "organisation", True),
)


def _gifts(session: Session, organisation_id: int, funds: dict[str, int]) -> None:
    donors = [create_donor(session, organisation_id, kind=kind, name=name, created_by=MANAGER,
                           public_name_consent=consent,
                           contact=Contact(email=f"donor{number}@example.org") if kind == "individual" else Contact())
              .id for number, (name, kind, consent) in enumerate(DONORS, start=1)]
    rng, donor_rng = random.Random(2026), random.Random(7)  # two streams: the gifts as they always were
    start, first = dt.date(2026, 9, 1), None
    for number in range(1, 37):
        fund = rng.choice(list(funds))
        amount = rng.choice([5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 880_000])
        day = start + dt.timedelta(days=rng.randrange(80))
        channel = rng.choice(["bank", "bank", "cash", "cheque"])
        donor = donor_rng.choice([*donors, None])  # some gifts come without a name
        gift = record_donation(session, organisation_id,
                               GiftRecord(funds[fund], amount, "CNY", channel, day, donor,
                                          description=f"捐赠 gift #{number}"),
                               idempotency_key=f"demo-gift-{number:02d}", recorded_by=MANAGER)
        first = first or gift
    refund_donation(session, organisation_id, first.id, amount_minor=first.amount_minor // 2,
                    refunded_on=first.received_on + dt.timedelta(days=3), reason="捐赠人误转 the donor sent it twice",
                    idempotency_key="demo-refund-1", recorded_by=MANAGER)
    record_donation(session, organisation_id,
                    GiftRecord(funds["QINGLONG"], 350_000, "CNY", "in_kind", dt.date(2026, 10, 8), donors[-1],
                               description="图书捐赠 donated books",
                               in_kind_description="儿童图书 600 册 600 children's books",
                               valuation_basis="发票价格 invoice price"),
                    idempotency_key="demo-in-kind-1", recorded_by=MANAGER)


def _grant(session: Session, organisation_id: int, fund_id: int, people: dict[str, int]) -> None:
    """Requested by the fund manager, approved and paid by the administrator: never by the requester."""
    grant = request_grant(session, organisation_id,
                          GrantRequest(fund_id, 150_000, "CNY", "玉林长者食堂 Yulin elders' canteen",
                                       "老年助餐 meals for older residents", "charitable_activities"),
                          requested_by_user_id=people["fund_manager"])
    approve_grant(session, organisation_id, grant.id, approver_user_id=people["org_admin"],
                  effective_date=dt.date(2026, 11, 3), idempotency_key="demo-grant-approved-1", recorded_by=ADMIN)
    pay_grant(session, organisation_id, grant.id, paid_on=dt.date(2026, 11, 10), idempotency_key="demo-grant-paid-1",
              recorded_by=ADMIN, paid_by_user_id=people["org_admin"])


def _online_entries(chart: Chart, fund_id: int) -> list[EntryDraft]:
    entries = []
    for number, gross in enumerate((30_000, 66_600, 12_000), start=1):
        fee = Money(gross * 6 // 1000, "CNY")  # a 0.6% processor fee, rounded down to the fen
        particulars = Particulars(dt.date(2026, 10, 10 + number), f"demo-online-{number}", "processor",
                                  f"网络捐赠 online gift #{number}")
        entries.append(online_donation(chart, fund_id, Money(gross, "CNY"), fee, particulars))
    net = sum(g - g * 6 // 1000 for g in (30_000, 66_600, 12_000))
    entries.append(payout(chart, fund_id, Money(net, "CNY"),
                          Particulars(dt.date(2026, 10, 20), "demo-payout-1", "processor", "支付机构结算 payout")))
    return entries


# 《民间非营利组织会计制度》, 5301 筹资费用: a bank's charges are fundraising costs, and interest on deposits is
# credited to the same account (冲减筹资费用), not to revenue. Both are the foundation's own: its general fund's.
FUNDRAISING_COSTS = "5301"
BANK_ONLY_LINES = {"利息": "存款利息 interest on deposits", "手续费": "银行手续费 bank charges"}


def _reconcile(session: Session, organisation_id: int) -> None:
    """The autumn's statements imported for the bank account and matched by the administrator, as a foundation does
    before it publishes; what the bank alone knew is then recorded from its lines, so every line is matched."""
    bank = load_chart(session, organisation_id).account(Role.BANK)
    for name in DEMO_STATEMENTS:
        content = (files("ledger") / "demo_data" / name).read_bytes()
        import_statement(session, organisation_id, bank, filename=name, content=content, file_format="csv",
                         mapping=CN_BANK, imported_by=ADMIN)
    auto_match(session, organisation_id, bank, matched_by=ADMIN)
    _match_by_payer(session, organisation_id, bank)
    general = session.scalars(select(Fund.id).where(Fund.organisation_id == organisation_id,
                                                    Fund.kind == "general")).one()
    costs = load_chart(session, organisation_id).by_code[FUNDRAISING_COSTS]
    for line in bank_lines(session, organisation_id, bank):
        what = next((text for word, text in BANK_ONLY_LINES.items() if word in line.text), None)
        if what is None:  # the statement and the books have parted: scripts/demo_bank_statement.py remakes it
            raise InvalidState(f"the demo's statement line {line.text!r} of {line.day} matches nothing in the books",
                               field="statement")
        entry_from_line(session, organisation_id, line.id, FromLine("entry", general, costs, description=what),
                        recorded_by=ADMIN)


def _match_by_payer(session: Session, organisation_id: int, bank: int) -> None:
    """The lines the matcher leaves for a person, because two gifts fit one alike (the same amount, the same days),
    the administrator tells apart by the payer's name the bank shows, the earliest gift first."""
    gifts: dict[tuple[int, str], list[int]] = {}
    for item in ledger_items(session, organisation_id, bank):
        gift = session.scalars(select(Donation).where(Donation.entry_id == item.id)).first()
        if gift is not None and gift.donor_id is not None:
            payer = session.get(Donor, gift.donor_id).name.split(" ")[0]  # (its Chinese words, as the bank prints it)
            gifts.setdefault((item.amount_minor, payer), []).append(item.id)
    for line in session.scalars(select(StatementLine).where(
            StatementLine.account_id == bank, StatementLine.match_id.is_(None))
            .order_by(StatementLine.booked_on, StatementLine.id)).all():
        found = gifts.get((line.amount_minor, line.counterparty))
        if found:
            match(session, organisation_id, bank, [line.id], [found.pop(0)], matched_by=ADMIN)
