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
from reportlab import rl_config
from reportlab.lib.pagesizes import A5, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ledger.core.money import currency_exponent
from receipts.numerals import capital_amount

# Streams compressed and kept binary, not ASCII85-encoded as well: a fifth smaller, and the encoding was a tenth of a
# receipt's time. (Set for the process: reportlab reads it when a document is written; receipts are its only user.)
rl_config.useA85 = 0
FONT_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc")
LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
QR_MASK = 2


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
    official_bill: tuple[str, str, str, str] = ()  # CN: the e-bill's code, number, check code and date, once known
    issuer_address: str = ""  # where the receipt is issued from
    signatory: str = ""  # who signs for the organisation
    gift_aid: str = ""  # UK: the donor's Gift Aid declaration, as the receipt states it
    advantage_minor: int = 0  # what the donor received in return, at its good-faith value


LABELS = {
    "zh-CN": {"title": "捐赠收据", "number": "收据编号", "date": "开具日期", "donor": "捐赠人", "address": "地址",
              "tax_id": "证件号码", "fund": "受赠基金", "amount": "金额", "capital": "金额（大写）",
              "gifts": "捐赠明细", "organisation": "受赠单位", "registration": "统一社会信用代码",
              "replaces": "本收据替代", "verify": "扫码或访问以下网址核验本收据", "copy": "副本",
              "voided": "已作废", "replaced": "已被替代", "bill_code": "财政电子票据代码", "bill_number": "票据号码",
              "check_code": "校验码", "bill_date": "开票日期", "issued_at": "开具地点", "signed": "经办人",
              "gift_aid": "Gift Aid 声明"},
    "en": {"title": "Donation receipt", "number": "Receipt number", "date": "Date issued", "donor": "Donor",
           "address": "Address", "tax_id": "Tax number", "fund": "Fund", "amount": "Amount",
           "capital": "Amount in Chinese capitals", "gifts": "Gifts", "organisation": "Received by",
           "registration": "Registration number", "replaces": "This receipt replaces", "verify":
           "Scan the code or open this address to verify this receipt", "copy": "COPY", "voided": "VOID",
           "replaced": "REPLACED", "bill_code": "Official e-bill code", "bill_number": "E-bill number",
           "check_code": "Check code", "bill_date": "E-bill date",
           "ca_title": "Official receipt for income tax purposes",
           "eligible": "Eligible amount of gift", "advantage": "Amount of advantage", "received": "Date received",
           "cra": "Canada Revenue Agency: canada.ca/charities-giving", "issued_at": "Issued at",
           "signed": "Authorized signature", "gift_aid": "Gift Aid"},
}
# What each jurisdiction's receipt must state (DESIGN.md §8), in the receipt's language.
NOTES = {
    ("CN", "zh-CN"): "本收据为受赠单位出具的捐赠确认；公益事业捐赠票据以财政部门电子票据为准。",
    ("CN", "en"): "An acknowledgement by the recipient; the official donation e-bill is the finance department's.",
    ("US", "en"): "No goods or services were provided in return for this gift.",
    ("US", "zh-CN"): "本捐赠未获得任何商品或服务作为回报。",
    ("CA", "en"): "No goods or services were provided in return for this gift; the eligible amount is the whole gift.",
    ("UK", "en"): "Thank you. Where you have made a Gift Aid declaration, we may claim 25p for every £1 you gave.",
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
    name_size = _fitted(view.organisation_name, font, 15, width - 72)
    canvas.setFont(font, name_size)
    canvas.drawCentredString(width / 2, height - 34, view.organisation_name)
    canvas.setFont(font, 13)
    canvas.drawCentredString(width / 2, height - 54, labels["title"])
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
    rows += _jurisdiction_rows(view, labels)
    rows += [(labels["issued_at"], view.issuer_address)] if view.issuer_address else []
    rows += [(labels["signed"], view.signatory)] if view.signatory else []
    rows += [(labels["gift_aid"], view.gift_aid)] if view.gift_aid else []
    y = height - 80
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
    canvas.drawString(36, 40, _note(view))


def _note(view: ReceiptView) -> str:
    """What the receipt must state at its foot: for goods or services given in return, their good-faith value and
    what is deductible (the US's quid pro quo disclosure); else the jurisdiction's note."""
    if view.advantage_minor and view.jurisdiction in ("US", "CA") and view.language == "en":
        given = money_text(view.advantage_minor, view.currency, view.language)
        left = money_text(view.amount_minor - view.advantage_minor, view.currency, view.language)
        return f"In return for this gift, goods or services with a good-faith value of {given} were provided; " \
               f"the deductible amount is {left}."
    return NOTES.get((view.jurisdiction, view.language), "")


def _fitted(text: str, font: str, size: float, room: float) -> float:
    """The font size at which the text fits the room (a long organisation name is set smaller, never cut)."""
    return min(size, size * room / max(pdfmetrics.stringWidth(text, font, size), 1))


def _jurisdiction_rows(view: ReceiptView, labels: dict) -> list[tuple[str, str]]:
    """What a jurisdiction adds: China's official e-bill once attached; Canada's official receipt fields (the
    gift's eligible amount: no advantage is recorded, so all of it)."""
    if view.official_bill:
        code, number, check, day = view.official_bill
        return [(labels["bill_code"], code), (labels["bill_number"], number), (labels["check_code"], check),
                (labels["bill_date"], day)]
    if view.jurisdiction == "CA" and "ca_title" in labels:
        first = min((line[0] for line in view.lines), default=view.issued_on)
        return [(labels["ca_title"], labels["cra"]),
                (labels["eligible"], money_text(view.amount_minor - view.advantage_minor, view.currency,
                                                view.language)),
                (labels["advantage"], money_text(view.advantage_minor, view.currency, view.language)),
                (labels["received"], first.isoformat())]
    return []


def _qr(canvas: Canvas, text: str, *, x: float, y: float, size: float) -> None:
    """The QR code as filled squares: one ``re`` operator per horizontal run of dark modules, in a coordinate system
    of one unit per module (integers: written as they are), so a code costs a few hundred short operators.

    The mask is fixed (any of the eight is a valid code; segno's search for the best one took ~17 ms a receipt,
    most of a receipt's time, for a code that scans as well on a printed page)."""
    matrix = segno.make(text, error="m", micro=False, mask=QR_MASK).matrix
    modules = len(matrix)
    unit = size / (modules + 8)  # (the quiet zone: four modules each side)
    operators = []
    for row_index, row in enumerate(matrix):
        line, start = modules - 1 - row_index, None
        for column, dark in enumerate((*row, 0)):
            if dark and start is None:
                start = column
            elif not dark and start is not None:
                operators.append(f"{start} {line} {column - start} 1 re")
                start = None
    canvas.saveState()
    canvas.setFillColorRGB(0, 0, 0)
    canvas.transform(unit, 0, 0, unit, x + 4 * unit, y + 4 * unit)
    canvas.addLiteral("\n".join([*operators, "f"]))
    canvas.restoreState()


def _stamp(canvas: Canvas, mark: str, font: str, width: float, height: float) -> None:
    canvas.saveState()
    canvas.setFillColorRGB(0.8, 0.1, 0.1)
    canvas.setFillAlpha(0.25)
    canvas.setFont(font, 64)
    canvas.translate(width / 2, height / 2)
    canvas.rotate(20)
    canvas.drawCentredString(0, -20, mark)
    canvas.restoreState()
