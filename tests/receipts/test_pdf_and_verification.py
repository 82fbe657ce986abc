"""A receipt's PDF and its public verification: the text of the Chinese and the English PDF (pypdf) holds every
field; the same receipt renders to the same bytes; a reprint says COPY; the QR code, read off the rendered page
(pdftoppm, then zbarimg), is the verification address, whose page shows the receipt only for its true token; the
offline script agrees with the page."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader

from tests.conftest import missing_service
from tests.receipts.test_register import donor, give, key, receipts_of

ROOT = Path(__file__).resolve().parents[2]


def pdf_of(world, receipt_id: int, version: str = "original") -> bytes:
    answer = world.call("auditor", "GET", world.url(f"/receipts/{receipt_id}/pdf?version={version}"))
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    return answer.get_data()


def text_of(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def receipt_in(world, language: str, amount: int = 10_000, jurisdiction: str = "CN") -> dict:
    world.call("org_admin", "PUT", world.url("/receipt-settings"), {
        "prefix": f"V{uuid.uuid4().hex[:6].upper()}", "timing": "per_donation", "jurisdiction": jurisdiction,
        "language": language}, key=key())
    [receipt] = receipts_of(world, give(world, amount, donor(world))["id"])
    return receipt


def test_the_chinese_receipt_holds_every_field(world):
    receipt = receipt_in(world, "zh-CN", 12_345_67)
    with world.db.read() as session:
        from ledger.books.organisations import get_organisation

        registration = get_organisation(session, world.org).registration_number

    text = text_of(pdf_of(world, receipt["id"])).replace(" ", "")

    for field in ("捐赠收据", receipt["number"], "张三", "成都市锦江区", "510104199001011234", "MINE", "¥12,345.67",
                  "壹万贰仟叁佰肆拾伍元陆角柒分", registration, "统一社会信用代码", "财政部门电子票据"):
        assert field in text, field


def test_the_english_receipt_holds_every_field(world):
    receipt = receipt_in(world, "en", 5_000)

    text = text_of(pdf_of(world, receipt["id"]))

    for field in ("Donation receipt", receipt["number"], "Receipt number", "Date issued", "CN¥50.00",
                  "伍拾元整", "Registration number", receipt["issued_on"]):
        assert field in text, field


@pytest.mark.parametrize(("jurisdiction", "fields"), [
    ("US", ("No goods or services were provided in return for this gift.",)),
    ("CA", ("Official receipt for income tax purposes", "Eligible amount of gift", "Amount of advantage",
            "Date received", "canada.ca/charities-giving")),
])
def test_each_jurisdictions_receipt_says_what_its_rules_require(world, jurisdiction, fields):
    receipt = receipt_in(world, "en", 25_000, jurisdiction)

    text = text_of(pdf_of(world, receipt["id"]))

    assert receipt["jurisdiction"] == jurisdiction and receipt["number"] in text
    for field in fields:
        assert field in text, field


def test_the_same_receipt_renders_to_the_same_bytes_and_a_reprint_says_copy(world):
    from receipts.documents import receipt_view
    from receipts.pdf import render
    from receipts.register import get_receipt

    receipt = receipt_in(world, "zh-CN")
    with world.db.read() as session:
        view = receipt_view(session, get_receipt(session, world.org, receipt["id"]), receipt["verify_url"])
    first, second = render(view), render(view)

    assert first == second and first == pdf_of(world, receipt["id"])
    assert "副本" in text_of(pdf_of(world, receipt["id"], "copy")) and "副本" not in text_of(first)


def test_the_qr_code_read_off_the_page_is_the_verification_address(world, tmp_path):
    if not (shutil.which("pdftoppm") and shutil.which("zbarimg")):
        missing_service("pdftoppm (poppler-utils) and zbarimg (zbar-tools) are needed: .ci/run installs them")
    receipt = receipt_in(world, "zh-CN")
    (tmp_path / "receipt.pdf").write_bytes(pdf_of(world, receipt["id"]))

    subprocess.run(["pdftoppm", "-r", "200", "-png", str(tmp_path / "receipt.pdf"), str(tmp_path / "page")],
                   check=True)
    [page] = sorted(tmp_path.glob("page*.png"))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True, text=True, check=True)

    assert decoded.stdout.strip() == receipt["verify_url"]
    assert "Valid" in page_for(world, decoded.stdout.strip()).get_data(as_text=True)  # (the code's page answers)


def page_for(world, address: str):
    parts = urlsplit(address)
    return world.app.test_client().get(f"{parts.path}?{parts.query}&lang=en")


def test_the_verification_page_shows_the_receipt_only_for_its_true_token(world):
    receipt = receipt_in(world, "zh-CN", 8_800)
    other = receipt_in(world, "zh-CN", 100)
    token = receipt["verify_url"].split("?t=")[1]
    base = receipt["verify_url"].split("?")[0]
    digest = __import__("hashlib").sha256(pdf_of(world, receipt["id"])).hexdigest()

    shown = page_for(world, receipt["verify_url"]).get_data(as_text=True)
    refused = [page_for(world, address) for address in (
        f"{base}?t={'B' if token[0] == 'A' else 'A'}{token[1:]}", f"{base}?t=",
        f"{base}?t={other['verify_url'].split('?t=')[1]}",
        receipt["verify_url"].replace(receipt["number"], other["number"]))]

    assert "Valid" in shown and receipt["number"] in shown and "CN¥88.00" in shown and "张*" in shown
    assert digest in shown and "张三" not in shown and "510104199001011234" not in shown
    for answer in refused:
        text = answer.get_data(as_text=True).split("<main>")[1].split("</main>")[0]  # (the switch repeats the URL)
        assert answer.status_code == 404 and receipt["number"] not in text and "88.00" not in text


def test_a_void_receipts_page_says_so(world):
    receipt = receipt_in(world, "en")
    world.call("org_admin", "POST", world.url(f"/receipts/{receipt['id']}/void"), {"reason": "wrong donor"},
               key=key())

    assert "Void" in page_for(world, receipt["verify_url"]).get_data(as_text=True)


def test_the_offline_script_agrees_with_the_page(world):
    receipt = receipt_in(world, "zh-CN", 4_200)
    public_key = world.call(None, "GET", world.url("/receipt-key")).json["public_key"]

    def check(amount: str) -> int:
        # (--key=…: a base64url key may begin with "-", which argparse would take for an option)
        return subprocess.run([sys.executable, str(ROOT / "scripts/verify_receipt.py"), f"--key={public_key}",
                               "--organisation", str(world.org), "--url", receipt["verify_url"], "--amount", amount,
                               "--currency", "CNY", "--date", receipt["issued_on"]], capture_output=True).returncode

    assert (check("42.00"), check("4200.00"), check("42.01")) == (0, 1, 1)
