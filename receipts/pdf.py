"""A receipt as a PDF (reportlab): one A5 page, in Chinese or English, deterministic (the same receipt renders to
the same bytes: reportlab's invariant mode fixes the dates and the document id), with a QR code to its
verification page drawn as vector squares from segno's matrix (reportlab's own QR widget drew ~27 receipts/s).

Chinese needs a font with its characters: a TrueType CJK font is embedded (subset) when one is installed —
Debian's fonts-wqy-microhei, or the file ``RECEIPT_FONT`` names — and reportlab's built-in ``STSong-Light`` (a
CID font the reader supplies, not embedded) otherwise. The Noto CJK fonts are OpenType with CFF outlines, which
reportlab cannot embed.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import segno
from babel.numbers import format_currency
from reportlab.lib.pagesizes import A5, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ledger.core.money import currency_exponent
from receipts.numerals import capital_amount

FONT_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc")
LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """Everything a receipt's page shows, already read from the register."""

    number: str
    issued_on: dt.date
    language: str
    jurisdiction: str
    organisation_name: str
    registration_number: str
    fund_name: str
    donor_name: str
    donor_address: str
    donor_tax_id: str
    amount_minor: int
    currency: str
    lines: tuple[tuple[dt.date, int, str], ...]  # each gift: received on, amount (minor units), what it was
    verify_url: str
    replaces_number: str = ""
    status: str = "issued"  # issued, voided, replaced: a reprint of a void receipt says so across the page


LABELS = {
    "zh-CN": {"title": "捐赠收据", "number": "收据编号", "date": "开具日期", "donor": "捐赠人", "address": "地址",
              "tax_id": "证件号码", "fund": "受赠基金", "amount": "金额", "capital": "金额（大写）",
              "gifts": "捐赠明细", "organisation": "受赠单位", "registration": "统一社会信用代码",
              "replaces": "本收据替代", "verify": "扫码或访问以下网址核验本收据", "copy": "副本",
              "voided": "已作废", "replaced": "已被替代"},
    "en": {"title": "Donation receipt", "number": "Receipt number", "date": "Date issued", "donor": "Donor",
           "address": "Address", "tax_id": "Tax number", "fund": "Fund", "amount": "Amount",
           "capital": "Amount in Chinese capitals", "gifts": "Gifts", "organisation": "Received by",
           "registration": "Registration number", "replaces": "This receipt replaces", "verify":
           "Scan the code or open this address to verify this receipt", "copy": "COPY", "voided": "VOID",
           "replaced": "REPLACED"},
}
# What each jurisdiction's receipt must state (DESIGN.md §8), in the receipt's language.
NOTES = {
    ("CN", "zh-CN"): "本收据为受赠单位出具的捐赠确认；公益事业捐赠票据以财政部门电子票据为准。",
    ("CN", "en"): "An acknowledgement by the recipient; the official donation e-bill is the finance department's.",
    ("US", "en"): "No goods or services were provided in return for this gift.",
    ("US", "zh-CN"): "本捐赠未获得任何商品或服务作为回报。",
}


@functools.cache
def cjk_font() -> str:
    """The name of the font that writes Chinese: an embedded TrueType font if one is installed, else STSong-Light."""
    for path in filter(None, (os.environ.get("FUNDLEDGER_RECEIPT_FONT"), *FONT_CANDIDATES)):
        if Path(path).is_file():
            pdfmetrics.registerFont(TTFont("ReceiptCJK", path, subfontIndex=0))
            return "ReceiptCJK"
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def money_text(amount_minor: int, currency: str, language: str) -> str:
    return format_currency(Decimal(amount_minor).scaleb(-currency_exponent(currency)), currency,
                           locale=LOCALES.get(language, "en"))


def render(view: ReceiptView, *, copy: bool = False) -> bytes:
    """The receipt's PDF; ``copy`` marks a reprint (副本 / COPY)."""
    buffer = io.BytesIO()
    width, height = landscape(A5)
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1, pageCompression=1)
    canvas.setTitle(f"{view.number}")
    canvas.setAuthor(view.organisation_name)
    font, labels = cjk_font(), LABELS.get(view.language, LABELS["en"])
    _body(canvas, view, font, labels, width, height)
    _qr(canvas, view.verify_url, x=width - 130, y=40, size=100)
    canvas.setFont(font, 6.5)
    canvas.drawRightString(width - 30, 30, labels["verify"])
    canvas.drawString(36, 18, view.verify_url[:140])
    for mark in ([labels["copy"]] if copy else []) + ([labels[view.status]] if view.status != "issued" else []):
        _stamp(canvas, mark, font, width, height)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _body(canvas: Canvas, view: ReceiptView, font: str, labels: dict, width: float, height: float) -> None:
    canvas.setFont(font, 16)
    canvas.drawCentredString(width / 2, height - 40, f"{view.organisation_name} · {labels['title']}")
    rows = [(labels["number"], view.number), (labels["date"], view.issued_on.isoformat()),
            (labels["donor"], view.donor_name)]
    rows += [(labels["address"], view.donor_address)] if view.donor_address else []
    rows += [(labels["tax_id"], view.donor_tax_id)] if view.donor_tax_id else []
    rows += [(labels["fund"], view.fund_name),
             (labels["amount"], money_text(view.amount_minor, view.currency, view.language))]
    if view.currency == "CNY":
        rows.append((labels["capital"], capital_amount(view.amount_minor)))
    rows += [(labels["organisation"], view.organisation_name),
             (labels["registration"], view.registration_number)]
    rows += [(labels["replaces"], view.replaces_number)] if view.replaces_number else []
    y = height - 70
    for label, value in rows:
        canvas.setFont(font, 8.5)
        canvas.drawString(36, y, label)
        canvas.setFont(font, 10.5)
        canvas.drawString(150, y, value[:70])
        y -= 17
    canvas.setFont(font, 8.5)
    canvas.drawString(36, y - 4, labels["gifts"])
    for received_on, amount_minor, what in view.lines[:6]:
        y -= 13
        amount = money_text(amount_minor, view.currency, view.language)
        canvas.drawString(150, y - 4, f"{received_on.isoformat()}  {amount}  {what[:40]}")
    canvas.setFont(font, 7.5)
    canvas.drawString(36, 40, NOTES.get((view.jurisdiction, view.language), ""))


def _qr(canvas: Canvas, text: str, *, x: float, y: float, size: float) -> None:
    """The QR code as filled squares, one rectangle per horizontal run of dark modules (a few dozen path
    operators rather than an image)."""
    matrix = segno.make(text, error="m", micro=False).matrix
    modules = len(matrix) + 8  # (the quiet zone: four modules each side)
    unit = size / modules
    path = canvas.beginPath()
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 4 + 1) * unit
        start = None
        for column, dark in enumerate((*row, 0)):
            if dark and start is None:
                start = column
            elif not dark and start is not None:
                path.rect(x + (start + 4) * unit, top, (column - start) * unit, unit)
                start = None
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)


def _stamp(canvas: Canvas, mark: str, font: str, width: float, height: float) -> None:
    canvas.saveState()
    canvas.setFillColorRGB(0.8, 0.1, 0.1)
    canvas.setFillAlpha(0.25)
    canvas.setFont(font, 64)
    canvas.translate(width / 2, height / 2)
    canvas.rotate(20)
    canvas.drawCentredString(0, -20, mark)
    canvas.restoreState()
