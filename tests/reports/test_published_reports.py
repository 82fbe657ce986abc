"""Published reports: a manager publishes a period's report (figures, seal, Merkle root); the same period again is
refused unless it is a correction with its explanation, and every version stays public; the files are the figures
as published; and a donor's receipt gets a proof that the standalone script checks, which fails for an altered
proof."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.books.integrity import last_batch, seal_pending
from tests.api.support import snapshot
from tests.reports.test_public_figures import YEAR, give, the_year

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_inclusion.py"
SPRING = {"period_start": f"{YEAR}-03-01", "period_end": f"{YEAR}-06-30"}


def publish(world, role: str = "org_admin", **body):
    return world.call(role, "POST", world.url("/reports"), json={**SPRING, **body}, key=uuid.uuid4().hex)


def test_a_report_is_published_with_its_figures_seal_and_root(world):
    the_year(world)
    seal_pending(world.db)

    answer = publish(world)

    report = answer.json
    assert answer.status_code == 201, report
    assert (report["version"], report["replaces_id"], report["donation_count"]) == (1, None, 4)
    figures = report["figures"]
    assert (figures["income_minor"], figures["spending_minor"], figures["closing_net_assets_minor"]) == (
        37_000, 25_000, 12_000)
    assert figures["gifts"] == {"count": 4, "amount_minor": 47_000, "merkle_root": report["merkle_root"]}
    assert [(grant["payee"], grant["amount_minor"]) for grant in figures["grants"]] == [
        ("孙*", 20_000), ("玉林长者食堂", 5_000)]
    with world.db.read() as session:
        batch = last_batch(session, world.org)
    assert (report["seal_batch_hash"], report["sealed_through_entry_id"]) == (batch.batch_hash, batch.last_entry_id)


def test_the_same_period_again_needs_a_correction_and_every_version_stays_public(world):
    the_year(world)
    first = publish(world).json
    before = snapshot(world.db)

    again = publish(world)
    manager = publish(world, "fund_manager", correction_note="x")
    refused = [publish(world, **body) for body in (
        {"period_start": f"{YEAR}-03-02"}, {"period_end": f"{YEAR}-06-29"}, {"period_end": f"{YEAR}-02-28"},
        {"period_end": "2999-12-31"}, {"period_start": "1999-01-01", "period_end": "1999-12-31"},
        {"period_start": f"{YEAR}-07-01", "period_end": f"{YEAR}-07-31", "correction_note": "nothing to correct"})]

    assert again.status_code == 409 and "correction_note" in again.json["errors"]
    assert manager.status_code == 403
    assert [(answer.status_code, next(iter(answer.json["errors"]))) for answer in refused] == [
        (422, "period_start"), (422, "period_end"), (422, "period_end"), (422, "period_end"), (422, "period_end"),
        (422, "correction_note")]
    assert snapshot(world.db) == before
    world.call("org_admin", "POST", world.url("/donations"), {
        "fund_id": world.fund, "amount_minor": 900, "currency": "CNY", "channel": "cash",
        "received_on": f"{YEAR}-05-20"}, key=uuid.uuid4().hex)

    corrected = publish(world, correction_note="补录 5 月 20 日现金捐赠 a cash gift of 20 May was missing")
    listed = world.call(None, "GET", world.url("/reports")).json
    page = world.app.test_client().get(f"/o/{world.org}?lang=en").get_data(as_text=True)

    assert corrected.status_code == 201
    assert (corrected.json["version"], corrected.json["replaces_id"]) == (2, first["id"])
    assert corrected.json["donation_count"] == 5 and corrected.json["merkle_root"] != first["merkle_root"]
    assert [report["id"] for report in listed] == [corrected.json["id"], first["id"]]
    assert f'data-report="{first["id"]}"' in page and "a cash gift of 20 May was missing" in page


def test_the_reports_files_are_the_figures_as_published(world):
    the_year(world)
    report = publish(world).json
    client = world.app.test_client()

    document = client.get(f"/reports/{world.org}/{report['id']}.json").json
    pdf = client.get(f"/reports/{world.org}/{report['id']}.pdf?lang=en")
    again = client.get(f"/reports/{world.org}/{report['id']}.pdf?lang=en")

    assert hashlib.sha256(document["figures_canonical"].encode()).hexdigest() == report["figures_sha256"]
    assert json.loads(document["figures_canonical"]) == report["figures"] == document["figures"]
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data == again.data
    words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "CN¥370.00" in words and "CN¥250.00" in words and report["merkle_root"] in words.replace("\n", "")
    assert client.get(f"/reports/{world.other_org}/{report['id']}.json").status_code == 404


def test_the_published_row_cannot_be_changed(world):
    the_year(world)
    report = publish(world).json

    with pytest.raises(DBAPIError, match="append-only"), world.db.engine.begin() as connection:
        connection.execute(text("UPDATE published_reports SET merkle_root = 'x' WHERE id = :id"), {"id": report["id"]})
    with pytest.raises(DBAPIError, match="append-only"), world.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM published_reports WHERE id = :id"), {"id": report["id"]})


def inclusion_for(world, receipt: dict):
    parts = urlsplit(receipt["verify_url"])
    return world.app.test_client().get(f"{parts.path}/inclusion.json?{parts.query}")


def test_a_donors_gift_is_proven_in_the_report_by_the_standalone_script(world, tmp_path):
    the_year(world)
    report = publish(world).json
    receipts = world.call("org_admin", "GET", world.url("/receipts")).json["items"]
    receipt = next(item for item in receipts if item["amount_minor"] == 10_000)
    (tmp_path / "report.json").write_bytes(
        world.app.test_client().get(f"/reports/{world.org}/{report['id']}.json").data)

    answer = inclusion_for(world, receipt)
    (tmp_path / "proof.json").write_bytes(answer.data)
    checked = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "proof.json"), str(tmp_path / "report.json")],
                             capture_output=True, text=True)

    assert answer.status_code == 200 and answer.headers["Content-Disposition"].startswith("attachment")
    [gift] = answer.json["gifts"]
    assert gift["leaf_fields"][5:7] == ["10000", "CNY"] and len(gift["proofs"]) == 1
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"included in report {report['id']}" in checked.stdout
    for tamper in (lambda proof: proof["gifts"][0]["leaf_fields"].__setitem__(5, "10001"),
                   lambda proof: proof["gifts"][0]["leaf_fields"].__setitem__(4, "999"),
                   lambda proof: proof["gifts"][0]["proofs"][0].__setitem__("index", 1),
                   lambda proof: proof["gifts"][0]["proofs"][0]["path"].reverse()):
        altered = answer.json
        tamper(altered)
        (tmp_path / "altered.json").write_text(json.dumps(altered))
        refused = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "altered.json"),
                                  str(tmp_path / "report.json")], capture_output=True, text=True)
        assert refused.returncode == 1 and "NOT PROVEN" in refused.stdout


def test_a_gift_no_report_holds_yet_is_told_apart_and_fails_against_a_report(world, tmp_path):
    the_year(world)
    report = publish(world).json
    (tmp_path / "report.json").write_bytes(
        world.app.test_client().get(f"/reports/{world.org}/{report['id']}.json").data)
    li = world.call("org_admin", "GET", world.url("/donors")).json["items"][0]["id"]
    summer = give(world, 700, f"{YEAR}-07-15", li)  # after the report's period
    [receipt] = world.call("org_admin", "GET", world.url(f"/receipts?donation_id={summer['id']}")).json["items"]
    outside = inclusion_for(world, receipt)
    (tmp_path / "proof.json").write_bytes(outside.data)
    alone, against = (subprocess.run([sys.executable, str(SCRIPT), *files], capture_output=True, text=True)
                      for files in ([tmp_path / "proof.json"], [tmp_path / "proof.json", tmp_path / "report.json"]))

    count = len(outside.json["gifts"])
    assert (alone.returncode, alone.stdout.splitlines()[-1]) == (
        1, f"0 proof(s) hold, 0 failed, {count} gift(s) in no report yet")
    assert (against.returncode, against.stdout.splitlines()[-1]) == (1, f"0 proof(s) hold, {count} failed")
    assert f"NOT PROVEN for report {report['id']}" in against.stdout


def test_the_proof_needs_the_receipts_own_token(world):
    the_year(world)
    publish(world)
    receipt = world.call("org_admin", "GET", world.url("/receipts")).json["items"][0]
    base = receipt["verify_url"].split("?")[0]

    forged = world.app.test_client().get(f"{urlsplit(base).path}/inclusion.json?t=AAAA")

    assert forged.status_code == 404 and receipt["number"] not in forged.get_data(as_text=True)


def test_the_console_seals_then_publishes_and_names_a_refusals_field(world):
    the_year(world)
    runner = world.app.test_cli_runner()

    published = runner.invoke(args=["reports", "publish", "--organisation", str(world.org), "--from",
                                    f"{YEAR}-03-01", "--to", f"{YEAR}-06-30"])
    again = runner.invoke(args=["reports", "publish", "--organisation", str(world.org), "--from",
                                f"{YEAR}-03-01", "--to", f"{YEAR}-06-30"])
    corrected = runner.invoke(args=["reports", "publish", "--organisation", str(world.org), "--from",
                                    f"{YEAR}-03-01", "--to", f"{YEAR}-06-30", "--correction", "a typo in a name"])
    crooked = runner.invoke(args=["reports", "publish", "--organisation", str(world.org), "--from",
                                  f"{YEAR}-03-02", "--to", f"{YEAR}-06-30"])

    assert published.exit_code == 0 and "version 1" in published.output and "4 gift(s)" in published.output
    assert again.exit_code == 2 and "correction_note" in again.output
    assert corrected.exit_code == 0 and "version 2" in corrected.output
    assert crooked.exit_code == 2 and "period_start" in crooked.output
    listed = world.call(None, "GET", world.url("/reports")).json
    with world.db.read() as session:
        batch = last_batch(session, world.org)
    assert listed[0]["seal_batch_hash"] == batch.batch_hash  # sealed first: the report names the latest entries
