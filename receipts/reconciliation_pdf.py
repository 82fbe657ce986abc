"""A reconciliation report as a PDF (reportlab's page layout, the receipts' embedded CJK font), its labels in Chinese
and English side by side: the bank's closing balance and the books', what only each side has, the difference they
explain and what is left unexplained; a closed month's frozen report also gives when it was closed and its SHA-256.

Drawn from the report alone, deterministically (reportlab's invariant mode): the same report gives the same bytes.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from receipts.pdf import cjk_font, money_text

LABELS = {
    "title": "银行存款余额调节表 Bank reconciliation", "account": "账户 Account", "period": "期间 Period",
    "bank": "银行对账单余额 Bank statement balance", "books": "账面余额 Books balance",
    "bank_only": "银行已记、账簿未记 In the bank only", "books_only": "账簿已记、银行未记 In the books only",
    "difference": "差额 Difference (bank − books)", "explained": "已说明差额 Explained difference",
    "unexplained": "未说明差额 Unexplained remainder", "reconciled": "是否平衡 Reconciled",
    "matched": "已匹配 Matched", "lines": "笔 lines", "yes": "是 Yes", "no": "否 No",
    "not_stated": "未列明 Not stated", "none": "无 None", "day": "日期 Date", "id": "编号 No.",
    "text": "摘要 Description", "amount": "金额 Amount", "total": "合计 Total", "summary": "汇总 Summary",
    "frozen": "已结账（冻结） Closed and frozen", "closed_at": "结账时间 Closed at", "version": "版本 Version",
    "sha": "SHA-256", "live": "未结账：按当前数据生成 Not closed: as the books and statements stand now",
}
WIDTH = A4[0] - 36 * mm


def render(report) -> bytes:
    """The report's PDF (``ledger.reconciliation.closes.ShownReport``)."""
    font = cjk_font()
    styles = {"title": ParagraphStyle("title", fontName=font, fontSize=15, leading=21, spaceAfter=4),
              "h": ParagraphStyle("h", fontName=font, fontSize=11, leading=15, spaceBefore=10, spaceAfter=4),
              "p": ParagraphStyle("p", fontName=font, fontSize=9, leading=13, wordWrap="CJK"),
              "small": ParagraphStyle("small", fontName=font, fontSize=7.5, leading=10, wordWrap="CJK")}
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                                 bottomMargin=16 * mm, invariant=1, author=report.organisation_name,
                                 title=f"{report.account_code} {report.start.isoformat()} – {report.end.isoformat()}")
    document.build(_story(report, styles, font))
    return buffer.getvalue()


def _story(report, styles: dict, font: str) -> list:
    def amount(minor: int | None) -> str:
        if minor is None:
            return LABELS["not_stated"]
        return money_text(minor, report.currency, "zh-CN" if report.currency == "CNY" else "en")

    account = " ".join(filter(None, (report.account_code, report.account_name_zh, report.account_name_en)))
    story = [Paragraph(escape(report.organisation_name), styles["title"]),
             Paragraph(LABELS["title"], styles["h"]),
             Paragraph(f"{LABELS['account']}: {escape(account)}", styles["p"]),
             Paragraph(f"{LABELS['period']}: {report.start.isoformat()} – {report.end.isoformat()}", styles["p"])]
    story += _summary(report, amount, styles, font)
    for key, rows in (("bank_only", report.unmatched_lines), ("books_only", report.unmatched_items)):
        story += _items(LABELS[key], rows, amount, styles, font)
    return story + _seal(report, styles)


def _summary(report, amount, styles: dict, font: str) -> list:
    bank_only = sum(line.amount_minor for line in report.unmatched_lines)
    books_only = sum(item.amount_minor for item in report.unmatched_items)
    stated = report.bank_closing_minor
    rows = [(LABELS["bank"], amount(stated)), (LABELS["books"], amount(report.books_closing_minor)),
            (LABELS["difference"], amount(None if stated is None else stated - report.books_closing_minor)),
            (LABELS["bank_only"], amount(bank_only)), (LABELS["books_only"], amount(books_only)),
            (LABELS["explained"], amount(bank_only - books_only)),
            (LABELS["unexplained"], amount(report.unexplained_minor)),
            (LABELS["reconciled"], LABELS["yes"] if report.reconciled else LABELS["no"]),
            (LABELS["matched"], f"{report.matched_lines} {LABELS['lines']} · {amount(report.matched_minor)}")]
    return [Paragraph(LABELS["summary"], styles["h"]),
            _table([(Paragraph(label, styles["p"]), value) for label, value in rows], [WIDTH * 0.6, WIDTH * 0.4],
                   font)]


def _items(heading: str, rows: list, amount, styles: dict, font: str) -> list:
    if not rows:
        return [Paragraph(heading, styles["h"]), Paragraph(LABELS["none"], styles["p"])]
    cells = [(LABELS["day"], LABELS["id"], LABELS["text"], LABELS["amount"])]
    cells += [(row.day.isoformat(), str(row.id), Paragraph(escape(row.text), styles["p"]), amount(row.amount_minor))
              for row in rows]
    cells.append(("", "", LABELS["total"], amount(sum(row.amount_minor for row in rows))))
    return [Paragraph(heading, styles["h"]),
            _table(cells, [WIDTH * 0.15, WIDTH * 0.1, WIDTH * 0.5, WIDTH * 0.25], font, header=True)]


def _seal(report, styles: dict) -> list:
    if not report.frozen:
        return [Paragraph(LABELS["live"], styles["h"])]
    return [Paragraph(LABELS["frozen"], styles["h"]),
            Paragraph(f"{LABELS['closed_at']}: {report.closed_at.isoformat(timespec='seconds')}", styles["p"]),
            Paragraph(f"{LABELS['version']}: {report.version}", styles["p"]),
            Paragraph(f"{LABELS['sha']}: {report.sha256}", styles["small"])]


def _table(cells: list, widths: list, font: str, *, header: bool = False) -> Table:
    table = Table(cells, colWidths=widths, hAlign="LEFT")
    style = [("FONT", (0, 0), (-1, -1), font, 9), ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
             ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        style.append(("LINEBELOW", (0, 0), (-1, 0), 0.75, colors.grey))
    table.setStyle(TableStyle(style))
    return table
