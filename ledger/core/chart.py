"""The default chart of accounts, after the Chinese nonprofit accounting standard.

《民间非营利组织会计制度》 fixes the account codes and Chinese names used here (1001 现金 … 5401 其他费用); the
English names follow the standard's official translation where one exists. A few sub-accounts that the
ledger's recipes need (processor clearing, grants payable, in-kind revenue, transfers between funds) sit
under the standard's parent codes, as the standard allows organisations to add detail accounts.

Each template line may carry a ``role``: the recipes find accounts by role, never by code, so an
organisation can renumber its chart without touching them. A role may be held by several accounts (three
banks, one clearing account per payment channel), one of them the role's default; a recipe takes the default
unless its caller names another account of the role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ledger.core.errors import InvalidInput, NotFound


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


# Short names for the template below, which reads as the standard prints it: code, names, element, side, limit.
ASSET, LIABILITY, NET_ASSETS = AccountType.ASSET, AccountType.LIABILITY, AccountType.NET_ASSETS
REVENUE, EXPENSE = AccountType.REVENUE, AccountType.EXPENSE
DEBIT, CREDIT = Side.DEBIT, Side.CREDIT
NO_OVERDRAFT = BalanceLimit.CREDITS_MUST_NOT_EXCEED_DEBITS
NO_OVERPAYMENT = BalanceLimit.DEBITS_MUST_NOT_EXCEED_CREDITS

CHINA_NONPROFIT: tuple[AccountTemplate, ...] = (
    AccountTemplate("1001", "现金", "Cash on hand", ASSET, DEBIT, NO_OVERDRAFT, Role.CASH),
    AccountTemplate("1002", "银行存款", "Bank deposits", ASSET, DEBIT, NO_OVERDRAFT, Role.BANK),
    AccountTemplate("1009", "其他货币资金", "Other monetary funds", ASSET, DEBIT),
    # No overdraft limit: a refund or a dispute after the payout takes money back from the processor's balance
    # (or its next payouts), so a fund's share of it may be below zero, owed to the processor.
    AccountTemplate("1009.01", "其他货币资金—支付机构待结算", "Payment processor clearing", ASSET, DEBIT,
                    role=Role.PROCESSOR_CLEARING),
    AccountTemplate("1101", "短期投资", "Short-term investments", ASSET, DEBIT),
    AccountTemplate("1111", "应收票据", "Notes receivable", ASSET, DEBIT),
    AccountTemplate("1121", "应收账款", "Accounts receivable", ASSET, DEBIT),
    AccountTemplate("1122", "其他应收款", "Other receivables", ASSET, DEBIT),
    AccountTemplate("1141", "预付账款", "Prepayments", ASSET, DEBIT),
    AccountTemplate("1201", "存货", "Inventories", ASSET, DEBIT, NO_OVERDRAFT, Role.INVENTORY),
    AccountTemplate("1301", "待摊费用", "Prepaid expenses", ASSET, DEBIT),
    AccountTemplate("1401", "长期股权投资", "Long-term equity investments", ASSET, DEBIT),
    AccountTemplate("1402", "长期债权投资", "Long-term debt investments", ASSET, DEBIT),
    AccountTemplate("1501", "固定资产", "Fixed assets", ASSET, DEBIT),
    AccountTemplate("1502", "累计折旧", "Accumulated depreciation", ASSET, CREDIT),
    AccountTemplate("1505", "在建工程", "Construction in progress", ASSET, DEBIT),
    AccountTemplate("1506", "文物文化资产", "Cultural relics and heritage assets", ASSET, DEBIT),
    AccountTemplate("1601", "无形资产", "Intangible assets", ASSET, DEBIT),
    AccountTemplate("1701", "受托代理资产", "Assets held as agent", ASSET, DEBIT),
    AccountTemplate("2101", "短期借款", "Short-term borrowings", LIABILITY, CREDIT),
    AccountTemplate("2201", "应付票据", "Notes payable", LIABILITY, CREDIT),
    AccountTemplate("2202", "应付账款", "Accounts payable", LIABILITY, CREDIT),
    AccountTemplate("2203", "预收账款", "Receipts in advance", LIABILITY, CREDIT),
    AccountTemplate("2204", "应付工资", "Wages payable", LIABILITY, CREDIT),
    AccountTemplate("2206", "应交税金", "Taxes payable", LIABILITY, CREDIT),
    AccountTemplate("2209", "其他应付款", "Other payables", LIABILITY, CREDIT),
    AccountTemplate("2209.01", "其他应付款—应付资助款", "Grants payable", LIABILITY, CREDIT, NO_OVERPAYMENT,
                    Role.GRANTS_PAYABLE),
    AccountTemplate("2301", "预提费用", "Accrued expenses", LIABILITY, CREDIT),
    AccountTemplate("2401", "预计负债", "Provisions", LIABILITY, CREDIT),
    AccountTemplate("2501", "长期借款", "Long-term borrowings", LIABILITY, CREDIT),
    AccountTemplate("2502", "长期应付款", "Long-term payables", LIABILITY, CREDIT),
    AccountTemplate("2601", "受托代理负债", "Liabilities held as agent", LIABILITY, CREDIT),
    AccountTemplate("3101", "非限定性净资产", "Unrestricted net assets", NET_ASSETS, CREDIT,
                    role=Role.UNRESTRICTED_NET_ASSETS),
    AccountTemplate("3102", "限定性净资产", "Restricted net assets", NET_ASSETS, CREDIT,
                    role=Role.RESTRICTED_NET_ASSETS),
    # Transfers between funds of one organisation net to zero across the organisation, but each fund must
    # show them to stay self-balancing; they are net-asset movements, not revenue or expense.
    AccountTemplate("3111", "基金间转入", "Transfers in from other funds", NET_ASSETS, CREDIT, role=Role.TRANSFERS_IN),
    AccountTemplate("3112", "基金间转出", "Transfers out to other funds", NET_ASSETS, DEBIT, role=Role.TRANSFERS_OUT),
    AccountTemplate("4101", "捐赠收入", "Donation revenue", REVENUE, CREDIT, role=Role.DONATION_REVENUE),
    AccountTemplate("4101.01", "捐赠收入—非现金", "Donation revenue in kind", REVENUE, CREDIT,
                    role=Role.IN_KIND_REVENUE),
    AccountTemplate("4201", "会费收入", "Membership dues", REVENUE, CREDIT),
    AccountTemplate("4301", "提供服务收入", "Revenue from services", REVENUE, CREDIT),
    AccountTemplate("4401", "政府补助收入", "Government grants received", REVENUE, CREDIT),
    AccountTemplate("4501", "商品销售收入", "Revenue from sales of goods", REVENUE, CREDIT),
    AccountTemplate("4601", "投资收益", "Investment income", REVENUE, CREDIT),
    AccountTemplate("4901", "其他收入", "Other revenue", REVENUE, CREDIT),
    AccountTemplate("5101", "业务活动成本", "Charitable activity costs", EXPENSE, DEBIT, role=Role.PROGRAM_EXPENSE),
    AccountTemplate("5201", "管理费用", "Management and administrative expenses", EXPENSE, DEBIT,
                    role=Role.MANAGEMENT_EXPENSE),
    AccountTemplate("5301", "筹资费用", "Fundraising expenses", EXPENSE, DEBIT, role=Role.FUNDRAISING_EXPENSE),
    AccountTemplate("5301.01", "筹资费用—支付手续费", "Payment processing fees", EXPENSE, DEBIT,
                    role=Role.PROCESSING_FEES),
    AccountTemplate("5401", "其他费用", "Other expenses", EXPENSE, DEBIT),
)


def role_shapes(template: tuple[AccountTemplate, ...]) -> dict[Role, tuple[AccountType, Side]]:
    """The element and normal side each role's accounts must have, as the template gives them: a second bank
    account is an asset carried on the debit side like the first."""
    shapes: dict[Role, tuple[AccountType, Side]] = {}
    for line in template:
        if line.role is not None:
            assert line.role not in shapes, f"role {line.role} appears twice in the template"
            shapes[line.role] = (line.type, line.normal_balance)
    return shapes


ROLE_SHAPES = role_shapes(CHINA_NONPROFIT)


@dataclass(frozen=True, slots=True)
class Chart:
    """An organisation's accounts as the recipes see them.

    organisation_id: whose chart; version: grows each time an account is added or a role's default moves, so
    that a cached chart can tell it is stale; by_role: the ids of the accounts that hold each role, the role's
    default first (a foundation with three banks has three ``bank`` accounts); by_code: every account's id by
    its code.
    """

    organisation_id: int
    version: int
    by_role: Mapping[Role, tuple[int, ...]]
    by_code: Mapping[str, int]

    def account(self, role: Role, account_id: int | None = None, field: str = "account_id") -> int:
        """The role's default account; or ``account_id``, once it is known to hold the role."""
        holders = self.by_role.get(role, ())
        if not holders:  # the chart's own gap, whatever the caller named
            raise NotFound(f"the chart has no account for {role.value}", field="account")
        if account_id is None:
            return holders[0]
        if account_id not in holders:
            raise InvalidInput(f"account {account_id} is not one of the chart's {role.value} accounts", field=field)
        return account_id
