"""A published report as a PDF (reportlab's page layout, the receipts' embedded CJK font), in Chinese or English.

Drawn from the report's stored figures alone, deterministically (reportlab's invariant mode): the same report gives
the same bytes every time, so a copy downloaded today and one downloaded next year can be compared by digest. Its
last lines give the figures' SHA-256, the Merkle root over the period's gifts and the seal of the books, with the
addresses where anyone can check them.
"""

from __future__ import annotations

import io
import json

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from receipts.pdf import cjk_font, money_text

SPENDING_ORDER = ("charitable_activities", "management", "fundraising", "other")  # as the standard lists them
LABELS = {
    "zh-CN": {"title": "公开报告", "number": "报告编号", "version": "版本", "period": "期间", "correction": "更正说明",
              "income": "收入（按来源）", "spending": "支出（按类别）", "total": "合计", "net_assets": "期末净资产",
              "funds": "各基金", "fund": "基金", "grants": "期间批准的资助", "payee": "受助方", "purpose": "用途",
              "gifts": "期间收到的捐赠", "count": "笔数", "amount": "金额", "proof": "核验信息",
              "sha": "数据 SHA-256", "root": "捐赠默克尔根", "seal": "账簿封存哈希（至分录 #{entry}）",
              "charitable_activities": "业务活动成本", "management": "管理费用", "fundraising": "筹资费用",
              "other": "其他费用", "closing": "期末余额", "none": "无", "income_short": "收入",
              "spending_short": "支出",
              "check": "任何人可在 {url} 下载本报告的 JSON 并核对以上数值。"},
    "en": {"title": "Published report", "number": "Report no.", "version": "Version", "period": "Period",
           "correction": "Correction", "income": "Income by source", "spending": "Spending by category",
           "total": "Total", "net_assets": "Net assets at the end", "funds": "Funds", "fund": "Fund",
           "grants": "Grants approved in the period", "payee": "To", "purpose": "For",
           "gifts": "Gifts received in the period", "count": "Number", "amount": "Amount", "proof": "To check it",
           "sha": "Figures SHA-256", "root": "Gifts' Merkle root", "seal": "Books' seal (through entry #{entry})",
           "charitable_activities": "Charitable activities", "management": "Management", "fundraising": "Fundraising",
           "other": "Other costs", "closing": "Closing balance", "none": "None", "income_short": "Income",
           "spending_short": "Spending",
           "check": "Anyone can download this report's JSON at {url} and check these figures."},
}


def render(report, language: str, json_url: str) -> bytes:
    """The report's PDF in the language (``zh-CN`` or ``en``)."""
    labels = LABELS.get(language, LABELS["en"])
    figures = json.loads(report.figures)
    font = cjk_font()
    styles = {"title": ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=6),
              "h": ParagraphStyle("h", fontName=font, fontSize=11.5, leading=16, spaceBefore=10, spaceAfter=4),
              "p": ParagraphStyle("p", fontName=font, fontSize=9, leading=13),
              "small": ParagraphStyle("small", fontName=font, fontSize=7.5, leading=10, wordWrap="CJK")}
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                                 bottomMargin=16 * mm, invariant=1, title=report.title,
                                 author=figures["organisation"]["name"])
    document.build(_story(report, figures, labels, styles, font, language, json_url))
    return buffer.getvalue()


def _story(report, figures: dict, labels: dict, styles: dict, font: str, language: str, json_url: str) -> list:
    currency = figures["currency"]

    def amount(minor: int) -> str:
        return money_text(minor, currency, language)

    story = [Paragraph(f"{labels['title']} · {report.title}", styles["title"]),
             Paragraph(f"{labels['number']} {report.id} · {labels['version']} {report.version} · "
                       f"{labels['period']} {report.period_start.isoformat()} – {report.period_end.isoformat()}",
                       styles["p"])]
    if report.correction_note:
        story.append(Paragraph(f"{labels['correction']}: {_escape(report.correction_note)}", styles["p"]))
    name = "name_zh" if language == "zh-CN" else "name_en"
    story += _table(labels["income"], [(line[name], amount(line["amount_minor"])) for line in figures["income"]]
                    + [(labels["total"], amount(figures["income_minor"]))], labels, styles, font)
    story += _table(labels["spending"], [(labels[category], amount(figures["spending"].get(category, 0)))
                                         for category in SPENDING_ORDER]
                    + [(labels["total"], amount(figures["spending_minor"]))], labels, styles, font)
    story += _table(labels["net_assets"], [(labels["closing"], amount(figures["closing_net_assets_minor"]))],
                    labels, styles, font)
    if figures.get("funds"):
        story += _table(labels["funds"], [(labels["fund"], labels["income_short"], labels["spending_short"],
                                           labels["closing"])]
                        + [(_escape(line.get("name", f"#{line['fund_id']}")), amount(line["income_minor"]),
                            amount(line["spending_minor"]), amount(line["closing_net_assets_minor"]))
                           for line in figures["funds"]], labels, styles, font)
    story += _table(labels["grants"], [(grant["approved_on"], _escape(grant["payee"]), _escape(grant["purpose"]),
                                        amount(grant["amount_minor"])) for grant in figures["grants"]],
                    labels, styles, font)
    gifts = figures["gifts"]
    story += _table(labels["gifts"], [(labels["count"], str(gifts["count"])), (labels["amount"],
                                                                               amount(gifts["amount_minor"]))],
                    labels, styles, font)
    story += [Paragraph(labels["proof"], styles["h"]),
              Paragraph(f"{labels['sha']}: {report.figures_sha256}", styles["small"]),
              Paragraph(f"{labels['root']}: {report.merkle_root}", styles["small"]),
              Paragraph(f"{labels['seal'].format(entry=report.sealed_through_entry_id)}: {report.seal_batch_hash}",
                        styles["small"]),
              Spacer(1, 4), Paragraph(labels["check"].format(url=_escape(json_url)), styles["small"])]
    return story


def _table(heading: str, rows: list[tuple], labels: dict, styles: dict, font: str) -> list:
    if not rows:
        return [Paragraph(heading, styles["h"]), Paragraph(labels["none"], styles["p"])]
    cells = [[Paragraph(str(cell), styles["p"]) if index < len(row) - 1 else str(cell)
              for index, cell in enumerate(row)] for row in rows]
    table = Table(cells, hAlign="LEFT", colWidths=None, repeatRows=0)
    table.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), font, 9), ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [Paragraph(heading, styles["h"]), table]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
