"""The default chart of accounts, after the Chinese nonprofit accounting standard.

《民间非营利组织会计制度》 fixes the account codes and Chinese names used here (1001 现金 … 5401 其他费用); the
English names follow the standard's official translation where one exists. A few sub-accounts that the
ledger's recipes need (processor clearing, grants payable, in-kind revenue, transfers between funds) sit
under the standard's parent codes, as the standard allows organisations to add detail accounts.

Each template line may carry a ``role``: the recipes find accounts by role, never by code, so an
organisation can renumber its chart without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    NET_ASSETS = "net_assets"
    REVENUE = "revenue"
    EXPENSE = "expense"


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class BalanceLimit(StrEnum):
    """Which way a balance of the account may never go (TigerBeetle's account flags).

    ``credits_must_not_exceed_debits`` keeps a debit-normal account (cash, bank) at zero or above in every
    fund: a fund cannot spend money it does not hold. ``debits_must_not_exceed_credits`` keeps a
    credit-normal account (grants payable) from being paid beyond what was approved.
    """

    NONE = "none"
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class Role(StrEnum):
    """What the recipes need an account for."""

    CASH = "cash"
    BANK = "bank"
    PROCESSOR_CLEARING = "processor_clearing"
    INVENTORY = "inventory"
    GRANTS_PAYABLE = "grants_payable"
    UNRESTRICTED_NET_ASSETS = "unrestricted_net_assets"
    RESTRICTED_NET_ASSETS = "restricted_net_assets"
    TRANSFERS_IN = "transfers_in"
    TRANSFERS_OUT = "transfers_out"
    DONATION_REVENUE = "donation_revenue"
    IN_KIND_REVENUE = "in_kind_revenue"
    PROGRAM_EXPENSE = "program_expense"
    MANAGEMENT_EXPENSE = "management_expense"
    FUNDRAISING_EXPENSE = "fundraising_expense"
    PROCESSING_FEES = "processing_fees"


@dataclass(frozen=True, slots=True)
class AccountTemplate:
    """One line of a chart template.

    code: the standard's account code; name_zh / name_en: the names shown in reports; type: the element of
    the statement of financial position or of activities; normal_balance: the side on which the account
    normally carries its balance; balance_limit: the limit every (fund, currency) balance must respect;
    role: what the recipes use it for, if anything.
    """

    code: str
    name_zh: str
    name_en: str
    type: AccountType
    normal_balance: Side
    balance_limit: BalanceLimit = BalanceLimit.NONE
    role: Role | None = None


A, L, N, R, X = (AccountType.ASSET, AccountType.LIABILITY, AccountType.NET_ASSETS, AccountType.REVENUE,
                 AccountType.EXPENSE)
DR, CR = Side.DEBIT, Side.CREDIT
NO_OVERDRAFT = BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS
NO_OVERPAYMENT = BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS

CHINA_NONPROFIT: tuple[AccountTemplate, ...] = (
    AccountTemplate("1001", "现金", "Cash on hand", A, DR, NO_OVERDRAFT, Role.CASH),
    AccountTemplate("1002", "银行存款", "Bank deposits", A, DR, NO_OVERDRAFT, Role.BANK),
    AccountTemplate("1009", "其他货币资金", "Other monetary funds", A, DR),
    AccountTemplate("1009.01", "其他货币资金—支付机构待结算", "Payment processor clearing", A, DR,
                    NO_OVERDRAFT, Role.PROCESSOR_CLEARING),
    AccountTemplate("1101", "短期投资", "Short-term investments", A, DR),
    AccountTemplate("1111", "应收票据", "Notes receivable", A, DR),
    AccountTemplate("1121", "应收账款", "Accounts receivable", A, DR),
    AccountTemplate("1122", "其他应收款", "Other receivables", A, DR),
    AccountTemplate("1141", "预付账款", "Prepayments", A, DR),
    AccountTemplate("1201", "存货", "Inventories", A, DR, NO_OVERDRAFT, Role.INVENTORY),
    AccountTemplate("1301", "待摊费用", "Prepaid expenses", A, DR),
    AccountTemplate("1401", "长期股权投资", "Long-term equity investments", A, DR),
    AccountTemplate("1402", "长期债权投资", "Long-term debt investments", A, DR),
    AccountTemplate("1501", "固定资产", "Fixed assets", A, DR),
    AccountTemplate("1502", "累计折旧", "Accumulated depreciation", A, CR),
    AccountTemplate("1505", "在建工程", "Construction in progress", A, DR),
    AccountTemplate("1506", "文物文化资产", "Cultural relics and heritage assets", A, DR),
    AccountTemplate("1601", "无形资产", "Intangible assets", A, DR),
    AccountTemplate("1701", "受托代理资产", "Assets held as agent", A, DR),
    AccountTemplate("2101", "短期借款", "Short-term borrowings", L, CR),
    AccountTemplate("2201", "应付票据", "Notes payable", L, CR),
    AccountTemplate("2202", "应付账款", "Accounts payable", L, CR),
    AccountTemplate("2203", "预收账款", "Receipts in advance", L, CR),
    AccountTemplate("2204", "应付工资", "Wages payable", L, CR),
    AccountTemplate("2206", "应交税金", "Taxes payable", L, CR),
    AccountTemplate("2209", "其他应付款", "Other payables", L, CR),
    AccountTemplate("2209.01", "其他应付款—应付资助款", "Grants payable", L, CR, NO_OVERPAYMENT,
                    Role.GRANTS_PAYABLE),
    AccountTemplate("2301", "预提费用", "Accrued expenses", L, CR),
    AccountTemplate("2401", "预计负债", "Provisions", L, CR),
    AccountTemplate("2501", "长期借款", "Long-term borrowings", L, CR),
    AccountTemplate("2502", "长期应付款", "Long-term payables", L, CR),
    AccountTemplate("2601", "受托代理负债", "Liabilities held as agent", L, CR),
    AccountTemplate("3101", "非限定性净资产", "Unrestricted net assets", N, CR, role=Role.UNRESTRICTED_NET_ASSETS),
    AccountTemplate("3102", "限定性净资产", "Restricted net assets", N, CR, role=Role.RESTRICTED_NET_ASSETS),
    # Transfers between funds of one organisation net to zero across the organisation, but each fund must
    # show them to stay self-balancing; they are net-asset movements, not revenue or expense.
    AccountTemplate("3111", "基金间转入", "Transfers in from other funds", N, CR, role=Role.TRANSFERS_IN),
    AccountTemplate("3112", "基金间转出", "Transfers out to other funds", N, DR, role=Role.TRANSFERS_OUT),
    AccountTemplate("4101", "捐赠收入", "Donation revenue", R, CR, role=Role.DONATION_REVENUE),
    AccountTemplate("4101.01", "捐赠收入—非现金", "Donation revenue in kind", R, CR, role=Role.IN_KIND_REVENUE),
    AccountTemplate("4201", "会费收入", "Membership dues", R, CR),
    AccountTemplate("4301", "提供服务收入", "Revenue from services", R, CR),
    AccountTemplate("4401", "政府补助收入", "Government grants received", R, CR),
    AccountTemplate("4501", "商品销售收入", "Revenue from sales of goods", R, CR),
    AccountTemplate("4601", "投资收益", "Investment income", R, CR),
    AccountTemplate("4901", "其他收入", "Other revenue", R, CR),
    AccountTemplate("5101", "业务活动成本", "Charitable activity costs", X, DR, role=Role.PROGRAM_EXPENSE),
    AccountTemplate("5201", "管理费用", "Management and administrative expenses", X, DR,
                    role=Role.MANAGEMENT_EXPENSE),
    AccountTemplate("5301", "筹资费用", "Fundraising expenses", X, DR, role=Role.FUNDRAISING_EXPENSE),
    AccountTemplate("5301.01", "筹资费用—支付手续费", "Payment processing fees", X, DR,
                    role=Role.PROCESSING_FEES),
    AccountTemplate("5401", "其他费用", "Other expenses", X, DR),
)


def template_roles(template: tuple[AccountTemplate, ...]) -> dict[Role, str]:
    """Maps each role to its account code, checking that a role is filled at most once."""
    roles: dict[Role, str] = {}
    for line in template:
        if line.role is not None:
            assert line.role not in roles, f"role {line.role} appears twice in the template"
            roles[line.role] = line.code
    return roles
