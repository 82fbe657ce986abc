"""One answer for a fund that is not there: every route that takes a fund id answers 404, naming `fund_id`, for a
fund of another organisation or of none — whoever asks, reads and writes alike — and writes nothing."""

from __future__ import annotations

import uuid

import pytest

from ledger.books.charts import load_chart
from ledger.core.chart import Role
from tests.api.support import snapshot

DAY = "2026-11-20"
MISSING = 9_000_000_000


def _requests(world, fund: int) -> list[tuple[str, str, dict | None]]:
    bank, revenue = world.db.write(lambda session: (load_chart(session, world.org).account(Role.BANK),
                                                    load_chart(session, world.org).by_code["4901"]))
    line = {"fund_id": fund, "amount_minor": 1, "currency": "CNY"}
    return [
        ("GET", f"/donations?fund_id={fund}", None),
        ("GET", f"/grants?fund_id={fund}", None),
        ("GET", f"/entries?fund_id={fund}", None),
        ("GET", f"/transfers?fund_id={fund}", None),
        ("GET", f"/trial-balance?fund_id={fund}", None),
        ("GET", f"/accounts/{bank}/statement?fund_id={fund}", None),
        ("GET", f"/funds/{fund}/balances", None),
        ("GET", f"/funds/{fund}", None),
        ("POST", "/donations", {**line, "channel": "bank", "received_on": DAY}),
        ("POST", "/grants", {**line, "payee": "p", "purpose": "p", "category": "management"}),
        ("POST", "/transfers", {"from_fund_id": fund, "to_fund_id": world.fund, "amount_minor": 1, "currency": "CNY",
                                "effective_date": DAY}),
        ("POST", "/transfers", {"from_fund_id": world.fund, "to_fund_id": fund, "amount_minor": 1, "currency": "CNY",
                                "effective_date": DAY}),
        ("POST", f"/funds/{fund}/releases", {"amount_minor": 1, "currency": "CNY", "effective_date": DAY}),
        ("POST", "/entries", {"effective_date": DAY, "description": "d", "lines": [
            {**line, "account_id": bank, "side": "debit"}, {**line, "account_id": revenue, "side": "credit"}]}),
    ]


@pytest.mark.parametrize("caller", ["org_admin", "fund_manager", "auditor"])
def test_a_fund_of_no_organisation_or_of_another_is_a_404_on_every_route(world, caller):
    before = snapshot(world.db)
    wrong = []
    for fund in (MISSING, world.foreign_fund):
        for method, path, body in _requests(world, fund):
            if method == "POST" and (caller == "auditor" or (caller == "fund_manager" and path == "/entries")):
                continue  # an auditor writes nothing, a fund manager no manual entry: 403 whatever the fund
            response = world.call(caller, method, world.url(path), json=body, key=uuid.uuid4().hex)
            if response.status_code != 404 or response.json["errors"].get("fund_id") is None:
                wrong.append(f"{caller} {method} {path}: {response.status_code} "
                             f"{response.get_data(as_text=True)[:200]}")
    assert not wrong, "\n".join(wrong)
    assert snapshot(world.db) == before
