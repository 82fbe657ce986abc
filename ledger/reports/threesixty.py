"""An organisation's public grants in the 360Giving Data Standard (1.4): a JSON package and the flat CSV.

Pure: it is handed the grants the public pages already show (``PublicGrant``: an individual's name already masked)
and touches no database and no web. Money stays exact: minor units become a ``Decimal`` (``123456`` fen →
``1234.56``), written into the JSON text digit for digit, never through a float.

Identifiers follow the standard's guidance (documentation/technical/identifiers.md in ThreeSixtyGiving/standard):
grants and anything without an official number get a publisher prefix starting ``360G-``; organisations with an
official number get an org-id.guide list code. ``360G-fundledger`` is a prefix of FundLedger's own making, scoped by
organisation id: a publisher that registers its own prefix with 360Giving should have it put here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ledger.reports.public import PublicGrant

PREFIX = "360G-fundledger"
VERSION = "1.4"  # the package's "version" is major.minor; the vendored schemas are 1.4.3
TITLE_LIMIT = 140  # the standard asks for titles "under 140 characters"
_MINOR_DIGITS = {"CNY": 2, "USD": 2, "CAD": 2, "GBP": 2}
_INDIVIDUAL, _ORGANISATION = "individual", "organisation"  # PayeeKind's values (ledger.core.vocabulary)

# org-id.guide list codes by jurisdiction, each with the shape of number it can hold (from the org-id register,
# github.com/org-id/register, lists/*/*.json). China: CN-USCI, "Unified Social Credit Identifier" (统一社会信用代码),
# confirmed, primary, for charities and companies: 18 characters of digits and capitals without I, O, S, V, Z
# (GB 32100-2015). Britain: GB-CHC is the Charity Commission for England and Wales (6 or 7 digits); GB-SC the
# Scottish Charity Register ("SC" and 6 digits). A Northern Irish charity (GB-NIC, also 6 digits), or a company number
# (GB-COH), cannot be told apart from these by its shape: such a funder names its list in ``Funder.org_id_list``.
_LISTS = {
    "CN": (("CN-USCI", re.compile(r"[0-9A-HJ-NP-RTUWXY]{18}")),),
    "GB": (("GB-CHC", re.compile(r"\d{6,7}")), ("GB-SC", re.compile(r"SC\d{6}"))),
}
_JURISDICTIONS = {"UK": "GB"}  # "UK" is ISO 3166's exceptionally reserved alias for GB

CSV_COLUMNS = (  # the standard's titles, in the order of its template's "grants" sheet
    "Identifier", "Title", "Description", "Currency", "Amount Awarded", "Amount Disbursed", "Award Date",
    "Recipient Ind:Identifier", "Recipient Ind:Name", "Recipient Org:Identifier", "Recipient Org:Name",
    "Funding Org:Identifier", "Funding Org:Name", "Grant Programme:Title", "Grant Programme:URL",
    "Last Modified", "Data Source",
)


@dataclass(frozen=True, slots=True)
class Funder:
    """The organisation publishing its grants. ``registration_number`` is its official number (a charity's
    charity number, a Chinese organisation's USCI); ``org_id_list`` names its org-id.guide list when the
    jurisdiction alone cannot (e.g. "GB-NIC", "GB-COH", "US-EIN")."""

    organisation_id: int
    name: str
    jurisdiction: str
    registration_number: str | None
    base_url: str
    fund_names: Mapping[int, str] = field(default_factory=dict)
    org_id_list: str | None = None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}-{self.organisation_id}"

    @property
    def page(self) -> str:
        """The organisation's public page: where the data comes from."""
        return f"{self.base_url.rstrip('/')}/o/{self.organisation_id}"


def funder_identifier(funder: Funder) -> str:
    """The funder's org-id: list code and official number when the number fits a known list; otherwise, as the
    standard asks for organisations without one, the publisher prefix with an internal id. (Not an invented
    "XI-..." code: XI- codes are org-id.guide's registered international lists, and FundLedger is none of them.)"""
    number = re.sub(r"\s+", "", funder.registration_number or "").upper()
    if number and funder.org_id_list:
        return f"{funder.org_id_list}-{number}"
    jurisdiction = funder.jurisdiction.strip().upper()
    for code, shape in _LISTS.get(_JURISDICTIONS.get(jurisdiction, jurisdiction), ()):
        if shape.fullmatch(number):
            return f"{code}-{number}"
    return funder.prefix


def publisher(funder: Funder) -> dict:
    """The package's publisher block (its website is the charity's own, which the ledger does not hold)."""
    return {"identifier": funder_identifier(funder), "name": funder.name}


def grants_package(funder: Funder, grants: Sequence[PublicGrant], published: dt.date | dt.datetime) -> dict:
    """A 360Giving package of the grants awarded (those with an award date); amounts are ``int`` or ``Decimal``,
    so write it with ``dumps``. The package schema wants at least one grant: with none, there is nothing to publish."""
    records = [_grant(funder, grant, published) for grant in awarded(grants)]
    if not records:
        raise ValueError("no awarded grants to publish: a 360Giving package needs at least one")
    return {"version": VERSION, "issued": _moment(published) or published.isoformat(),
            "publisher": publisher(funder), "accessURL": funder.page, "grants": records}


def grants_json(funder: Funder, grants: Sequence[PublicGrant], published: dt.date | dt.datetime) -> str:
    return dumps(grants_package(funder, grants, published))


def grants_csv(funder: Funder, grants: Sequence[PublicGrant], published: dt.date | dt.datetime) -> str:
    """The same grants as the standard's flat sheet, one grant a row (no grant: the header alone)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for grant in awarded(grants):
        writer.writerow(_cell(value) for value in _row(_grant(funder, grant, published)))
    return out.getvalue()


def awarded(grants: Sequence[PublicGrant]) -> list[PublicGrant]:
    """Award Date is required: a grant with no decision date is left out rather than dated by guess."""
    return [grant for grant in grants if grant.approved_on is not None]


def amount(minor: int, currency: str) -> int | Decimal:
    """Minor units as a number of major units, exactly: an int when whole, else a Decimal (123456 → 1234.56)."""
    if currency not in _MINOR_DIGITS:
        raise ValueError(f"no minor-unit exponent known for {currency}")
    value = Decimal(minor).scaleb(-_MINOR_DIGITS[currency])
    return int(value) if value == value.to_integral_value() else value.normalize()  # 1234.50 → 1234.5


def dumps(value) -> str:
    """JSON text with Decimals written as they are (``1234.56``): the json module would need a float for them."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _grant(funder: Funder, grant: PublicGrant, published: dt.date | dt.datetime) -> dict:
    record = {
        "id": f"{funder.prefix}-{grant.grant_id}",
        "title": _title(grant),
        "description": grant.purpose.strip() or _title(grant),
        "currency": grant.currency,
        # What was awarded is what stands: a cancelled part was never given (as the fund's "granted" counts it).
        "amountAwarded": amount(grant.amount_minor - grant.cancelled_minor, grant.currency),
        "awardDate": grant.approved_on.isoformat(),
        **_recipient(funder, grant),
        "fundingOrganization": [{"id": funder_identifier(funder), "name": funder.name}],
        "dataSource": funder.page,
    }
    if grant.paid_minor > 0:
        record["amountDisbursed"] = amount(grant.paid_minor, grant.currency)
    if grant.fund_id in funder.fund_names:
        record["grantProgramme"] = [{"title": funder.fund_names[grant.fund_id],
                                     "url": f"{funder.page}/f/{grant.fund_id}"}]
    if moment := _moment(published):
        record["dateModified"] = moment
    return record


def _recipient(funder: Funder, grant: PublicGrant) -> dict:
    """Either an individual or an organisation, never both (the schema's oneOf). An individual's id is per grant,
    not per person, so that one person's grants cannot be linked together; the name is the masked one as given.
    A payee organisation's registry number is not held, so its id is internal: a stable hash of its name."""
    if grant.payee_kind == _INDIVIDUAL:
        return {"recipientIndividual": {"id": f"{funder.prefix}-individual-{grant.grant_id}", "name": grant.payee}}
    if grant.payee_kind == _ORGANISATION:
        return {"recipientOrganization": [{"id": f"{funder.prefix}-payee-{payee_slug(grant.payee)}",
                                           "name": grant.payee}]}
    raise ValueError(f"unknown payee kind {grant.payee_kind!r} on grant {grant.grant_id}")


def payee_slug(name: str) -> str:
    """Twelve hex digits of the name's SHA-256, after folding width, case and spacing, so "ＡＢＣ  Trust" and
    "abc trust" are one payee. A hash, not the name itself: Chinese names make no ASCII slug."""
    folded = " ".join(unicodedata.normalize("NFKC", name).casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()[:12]


def _title(grant: PublicGrant) -> str:
    purpose = " ".join(grant.purpose.split())
    if not purpose:
        return f"Grant {grant.grant_id}"
    return purpose if len(purpose) < TITLE_LIMIT else purpose[:TITLE_LIMIT - 2] + "…"


def _moment(published: dt.date | dt.datetime) -> str | None:
    """A full date-time (what "Last Modified" must be), naive taken as UTC as the ledger stores them; None for a
    bare date, which has no time to give."""
    if not isinstance(published, dt.datetime):
        return None
    aware = published if published.tzinfo else published.replace(tzinfo=dt.UTC)
    return aware.isoformat(timespec="seconds")


def _row(record: dict) -> tuple:
    """A grant record flattened to ``CSV_COLUMNS``' order."""
    person = record.get("recipientIndividual", {})
    organisation = record.get("recipientOrganization", [{}])[0]
    funding = record["fundingOrganization"][0]
    programme = record.get("grantProgramme", [{}])[0]
    return (record["id"], record["title"], record["description"], record["currency"], record["amountAwarded"],
            record.get("amountDisbursed"), record["awardDate"], person.get("id"), person.get("name"),
            organisation.get("id"), organisation.get("name"), funding["id"], funding["name"],
            programme.get("title"), programme.get("url"), record.get("dateModified"), record["dataSource"])


def _cell(value) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)
