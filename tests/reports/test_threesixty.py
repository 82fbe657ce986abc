"""The 360Giving export, judged by the standard's own schemas (vendored in tests/fixtures/threesixty, validated offline)
and by figures worked out here from hand-made grants."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import jsonschema_rs
import pytest

from ledger.reports.public import PublicGrant
from ledger.reports.threesixty import (
    Funder,
    funder_identifier,
    grants_csv,
    grants_json,
    grants_package,
    payee_slug,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "threesixty"
GRANT_SCHEMA = json.loads((FIXTURES / "360-giving-schema.json").read_text(encoding="utf-8"))
PACKAGE_SCHEMA = json.loads((FIXTURES / "360-giving-package-schema.json").read_text(encoding="utf-8"))
PUBLISHED = dt.datetime(2025, 3, 31, 9, 30, tzinfo=dt.UTC)
USCI = "53110000500021676K"  # shaped like a social organisation's 统一社会信用代码 (18 characters)

FUNDER = Funder(organisation_id=7, name="春苗助学基金会", jurisdiction="CN", registration_number=USCI,
                base_url="https://fundledger.example/", fund_names={11: "乡村教师计划", 12: "Emergency Relief"})


def grant(grant_id: int, payee: str, amount_minor: int, *, kind: str = "organisation", fund_id: int = 11,
          paid: int = 0, cancelled: int = 0, status: str = "approved", currency: str = "CNY",
          approved_on: dt.date | None = dt.date(2025, 2, 1),
          purpose: str = "Books for a village school") -> PublicGrant:
    return PublicGrant(grant_id, fund_id, approved_on, payee, kind, purpose, "5101", status, amount_minor, paid,
                       cancelled, currency)


ODD_FEN = grant(101, "云南山区小学", 123456)  # ¥1,234.56
SAME_SCHOOL = grant(102, " 云南山区小学 ", 50_000, paid=20_000, status="partly_paid", fund_id=12, currency="USD")
PERSON = grant(103, "张*", 300_000, kind="individual", paid=300_000, status="paid", purpose="Tuition for one year")
CANCELLED = grant(104, "Hope Trust", 500_000, paid=300_000, cancelled=200_000, status="cancelled")
UNDATED = grant(105, "Never Decided", 70_000, approved_on=None)
UNKNOWN_FUND = grant(106, "Hope Trust", 1_050, fund_id=99, currency="GBP")  # £10.50, a fund with no name given
GRANTS = (ODD_FEN, SAME_SCHOOL, PERSON, CANCELLED, UNDATED, UNKNOWN_FUND)
AWARDED = tuple(g for g in GRANTS if g.approved_on is not None)


def validator() -> jsonschema_rs.Validator:
    """The package schema, its $ref to the grant schema resolved to the vendored file (registered under both the
    1.4.2 URL the package points at and its own 1.4.3 $id: the two differ only in that line); no network."""
    ref = PACKAGE_SCHEMA["properties"]["grants"]["items"]["$ref"]
    registry = jsonschema_rs.Registry([(ref, GRANT_SCHEMA), (GRANT_SCHEMA["$id"], GRANT_SCHEMA)])
    return jsonschema_rs.Draft202012Validator(PACKAGE_SCHEMA, registry=registry, validate_formats=True, offline=True)


def errors(package: dict) -> list[str]:
    return [error.message for error in validator().iter_errors(package)]


def published() -> dict:
    """The package as published: the JSON text read back (amounts as exact Decimals where fractional)."""
    return json.loads(grants_json(FUNDER, GRANTS, PUBLISHED), parse_float=Decimal)


def by_id(package: dict) -> dict[str, dict]:
    return {record["id"]: record for record in package["grants"]}


def grant_id(source: PublicGrant) -> str:
    return f"360G-fundledger-{FUNDER.organisation_id}-{source.grant_id}"


def major(minor: int) -> Decimal:
    return Decimal(minor) / 100  # every currency here has two minor digits


def test_the_package_is_valid_against_the_standards_package_schema():
    text = grants_json(FUNDER, GRANTS, PUBLISHED)

    assert errors(json.loads(text)) == []
    assert errors(json.loads(grants_json(FUNDER, GRANTS, PUBLISHED.date()))) == []


def test_each_grant_carries_exactly_one_of_the_schemas_required_sets():
    required_sets = [set(choice["required"]) for choice in GRANT_SCHEMA["oneOf"]]

    for record in published()["grants"]:
        assert sum(required <= record.keys() for required in required_sets) == 1, record["id"]
        assert record["id"].startswith("360G-")
        assert record["fundingOrganization"] == [{"id": f"CN-USCI-{USCI}", "name": FUNDER.name}]
        assert record["dataSource"] == "https://fundledger.example/o/7"
        assert record["dateModified"] == PUBLISHED.isoformat()


def test_a_grant_without_an_award_date_is_left_out_and_the_others_keep_their_ids_and_dates():
    records = by_id(published())

    assert set(records) == {grant_id(g) for g in AWARDED}
    assert grant_id(UNDATED) not in records
    assert all(records[grant_id(g)]["awardDate"] == g.approved_on.isoformat() for g in AWARDED)


def test_amounts_are_exact_and_a_cancelled_part_is_not_awarded():
    records = by_id(published())

    for source in AWARDED:
        record = records[grant_id(source)]
        assert Decimal(str(record["amountAwarded"])) == major(source.amount_minor - source.cancelled_minor)
        assert record["currency"] == source.currency
        if source.paid_minor:
            assert Decimal(str(record["amountDisbursed"])) == major(source.paid_minor)
        else:
            assert "amountDisbursed" not in record
    assert records[grant_id(ODD_FEN)]["amountAwarded"] == Decimal("1234.56")
    assert records[grant_id(CANCELLED)]["amountAwarded"] == 3000
    assert records[grant_id(UNKNOWN_FUND)]["amountAwarded"] == Decimal("10.5")


def test_the_json_text_writes_amounts_digit_for_digit():
    text = grants_json(FUNDER, [ODD_FEN], PUBLISHED)

    assert '"amountAwarded": 1234.56,' in text
    assert grants_package(FUNDER, [ODD_FEN], PUBLISHED)["grants"][0]["amountAwarded"] == Decimal("1234.56")


def test_an_individual_is_named_only_as_masked_and_is_no_organisation():
    record = by_id(published())[grant_id(PERSON)]

    assert record["recipientIndividual"] == {"id": f"360G-fundledger-7-individual-{PERSON.grant_id}",
                                             "name": PERSON.payee}
    assert record["recipientIndividual"]["name"] == "张*"
    assert "recipientOrganization" not in record


def test_a_payee_organisation_has_a_stable_internal_id_whatever_its_spacing():
    records = by_id(published())
    school = records[grant_id(ODD_FEN)]["recipientOrganization"]
    again = records[grant_id(SAME_SCHOOL)]["recipientOrganization"]
    trust = records[grant_id(CANCELLED)]["recipientOrganization"]

    assert school[0]["id"] == again[0]["id"] == f"360G-fundledger-7-payee-{payee_slug(ODD_FEN.payee)}"
    assert school[0]["name"] == ODD_FEN.payee
    assert trust[0]["id"] != school[0]["id"]
    assert payee_slug("ＨＯＰＥ  trust") == payee_slug("Hope Trust")
    assert "recipientIndividual" not in records[grant_id(CANCELLED)]


def test_the_fund_is_the_grant_programme_when_its_name_is_known():
    records = by_id(published())

    assert records[grant_id(SAME_SCHOOL)]["grantProgramme"] == [
        {"title": "Emergency Relief", "url": "https://fundledger.example/o/7/f/12"}]
    assert "grantProgramme" not in records[grant_id(UNKNOWN_FUND)]


def test_a_bare_publication_date_issues_the_package_but_claims_no_modification_time():
    package = grants_package(FUNDER, GRANTS, dt.date(2025, 3, 31))

    assert package["issued"] == "2025-03-31"
    assert all("dateModified" not in record for record in package["grants"])


def test_a_naive_moment_is_taken_as_utc():
    package = grants_package(FUNDER, GRANTS, dt.datetime(2025, 3, 31, 9, 30))

    assert package["issued"] == package["grants"][0]["dateModified"] == "2025-03-31T09:30:00+00:00"


@pytest.mark.parametrize(("jurisdiction", "number", "listed", "expected"), [
    ("CN", USCI, None, f"CN-USCI-{USCI}"),
    ("CN", "not-a-code", None, "360G-fundledger-7"),
    ("GB", "1164883", None, "GB-CHC-1164883"),
    ("UK", " 279417 ", None, "GB-CHC-279417"),
    ("GB", "SC042386", None, "GB-SC-SC042386"),
    ("GB", "09506232", None, "360G-fundledger-7"),  # 8 digits: a company number, not a charity's
    ("GB", "100019", "GB-NIC", "GB-NIC-100019"),
    ("US", "03-0413726", None, "360G-fundledger-7"),
    ("US", "03-0413726", "US-EIN", "US-EIN-03-0413726"),
    ("CA", None, None, "360G-fundledger-7"),
])
def test_the_funder_is_identified_by_its_org_id_list_or_else_by_the_publisher_prefix(jurisdiction, number, listed,
                                                                                      expected):
    funder = Funder(7, "A Funder", jurisdiction, number, "https://fundledger.example", org_id_list=listed)

    assert funder_identifier(funder) == expected


def titles(path: str) -> str:
    """A field's spreadsheet title from the schema: the titles along its JSON pointer, joined by colons."""
    node, found = GRANT_SCHEMA, []
    for step in path.split("/"):
        node = node["items"] if step.isdigit() else node["properties"][step]
        target = GRANT_SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]] if "$ref" in node else node
        if not step.isdigit():
            found.append(node.get("title") or target["title"])
        node = target
    return ":".join(found)


CSV_FIELDS = ("id", "title", "description", "currency", "amountAwarded", "amountDisbursed", "awardDate",
              "recipientIndividual/id", "recipientIndividual/name", "recipientOrganization/0/id",
              "recipientOrganization/0/name", "fundingOrganization/0/id", "fundingOrganization/0/name",
              "grantProgramme/0/title", "grantProgramme/0/url", "dateModified", "dataSource")


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_csv_header_uses_the_standards_titles():
    header = next(csv.reader(io.StringIO(grants_csv(FUNDER, GRANTS, PUBLISHED), newline="")))

    assert header == [titles(path) for path in CSV_FIELDS]
    assert {"Identifier", "Amount Awarded", "Award Date", "Recipient Ind:Name", "Recipient Org:Identifier",
            "Funding Org:Name", "Grant Programme:Title", "Last Modified", "Data Source"} <= set(header)


def test_the_csv_rows_carry_the_grants():
    rows = {row["Identifier"]: row for row in read_csv(grants_csv(FUNDER, GRANTS, PUBLISHED))}

    assert set(rows) == {grant_id(g) for g in AWARDED}
    for source in AWARDED:
        row = rows[grant_id(source)]
        assert Decimal(row["Amount Awarded"]) == major(source.amount_minor - source.cancelled_minor)
        disbursed = row["Amount Disbursed"]
        assert Decimal(disbursed) == major(source.paid_minor) if source.paid_minor else disbursed == ""
        assert (row["Currency"], row["Award Date"]) == (source.currency, source.approved_on.isoformat())
        assert row["Description"] == source.purpose
        assert row["Funding Org:Identifier"] == f"CN-USCI-{USCI}"
        individual = source.payee_kind == "individual"
        assert row["Recipient Ind:Name" if individual else "Recipient Org:Name"] == source.payee
        assert row["Recipient Org:Name" if individual else "Recipient Ind:Name"] == ""
        assert row["Grant Programme:Title"] == FUNDER.fund_names.get(source.fund_id, "")
        assert row["Last Modified"] == PUBLISHED.isoformat()
    assert rows[grant_id(ODD_FEN)]["Amount Awarded"] == "1234.56"


def test_the_csv_and_the_json_say_the_same():
    rows = read_csv(grants_csv(FUNDER, GRANTS, PUBLISHED))
    records = by_id(published())

    for row in rows:
        record = records[row["Identifier"]]
        for path in CSV_FIELDS:
            value = record
            for step in path.split("/"):
                value = value.get(step) if isinstance(value, dict) else value[int(step)] if value else None
            assert row[titles(path)] == ("" if value is None else str(value)), path


def test_a_package_missing_a_required_field_fails_validation():
    package = json.loads(grants_json(FUNDER, GRANTS, PUBLISHED))
    del package["grants"][0]["awardDate"]

    assert errors(package)


def test_a_grant_to_both_an_organisation_and_an_individual_fails_validation():
    package = json.loads(grants_json(FUNDER, GRANTS, PUBLISHED))
    package["grants"][0]["recipientIndividual"] = {"id": "360G-fundledger-7-individual-1", "name": "李*"}

    assert errors(package)


def test_a_package_without_grants_is_invalid_so_none_is_made():
    assert errors({"grants": []})
    with pytest.raises(ValueError, match="no awarded grants"):
        grants_package(FUNDER, [UNDATED], PUBLISHED)
    assert read_csv(grants_csv(FUNDER, [UNDATED], PUBLISHED)) == []


def test_a_long_purpose_gives_a_short_title_and_the_whole_description():
    long = grant(107, "Hope Trust", 100, purpose="为山区学校购买图书和教具。" * 20)
    record = grants_package(FUNDER, [long], PUBLISHED)["grants"][0]

    assert len(record["title"]) < 140
    assert record["description"] == long.purpose


def test_an_unknown_currency_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="JPY"):
        grants_package(FUNDER, [grant(108, "Hope Trust", 1000, currency="JPY")], PUBLISHED)
